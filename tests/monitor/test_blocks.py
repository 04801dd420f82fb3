"""Feature blocks: folding ingestion's columnar blocks gives the states the rows' JSON does."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
import yaml
from sqlalchemy import delete, insert, select, update

from driftd.app import App
from driftd.config import load
from monitor import blocks
from monitor.drift.profile import fit_profile
from monitor.drift.runs import decode_run
from monitor.drift.state import partial, row_keys
from monitor.records import FeatureType
from monitor.statistics import FeatureDecoder, StatisticsEngine
from monitor.window_values import present_sorted
from storage import schema
from storage.rows import StoredRows

SCHEMA = {
    "amount": FeatureType.NUMERIC,
    "visits": FeatureType.NUMERIC,
    "country": FeatureType.CATEGORICAL,
    "is_new": FeatureType.BOOLEAN,
}


def profile_of(rng: np.random.Generator) -> Any:
    n = 2000
    columns = {
        "amount": rng.normal(50, 10, n),
        "visits": rng.poisson(3, n).astype(float),
        "country": np.array(rng.choice(["DE", "FR", "3"], n), dtype=object),
        "is_new": np.array(rng.random(n) < 0.3, dtype=object),
        "@score": rng.random(n),
    }
    schema_ = {**SCHEMA, "@score": FeatureType.NUMERIC}
    return fit_profile(columns, schema_, model_version="v1", bins=20, sample_rows=50)


ODD = [None, True, False, "7", {"a": 1}, [1], 2**60, -0.0, 0.0, 3, 3.0, "DE", "ZZ", "true", 1e300]


@pytest.mark.parametrize(
    "encoder",
    [
        blocks.BlockEncoder(list(SCHEMA), numeric={"amount"}),
        blocks.BlockEncoder(list(SCHEMA)),
        blocks.BlockEncoder(),
    ],
    ids=[
        "schema features, as ingestion encodes (a numeric one as a run)",
        "schema features",
        "every feature found",
    ],
)
def test_a_block_folds_to_the_state_of_its_rows_whatever_the_values(encoder: Any) -> None:
    """Every kind of value a stored row can hold, in every kind of column: numbers, ints
    beyond float64's exact range, booleans and text in numeric columns, numbers and
    booleans in categorical ones, objects, missing features: the same state, bit for bit,
    and the same sorted values, as decoding the rows' JSON."""
    rng = np.random.default_rng(5)
    profile = profile_of(rng)
    rows = []
    for i in range(600):
        features: dict[str, Any] = {
            "amount": float(rng.normal(52, 10)) if i % 7 else int(rng.integers(0, 90)),
            "visits": ODD[i % len(ODD)] if i % 3 == 0 else int(rng.poisson(3)),
            "country": ODD[i % len(ODD)] if i % 4 == 0 else str(rng.choice(["DE", "FR", "NL"])),
            "is_new": ODD[(i * 5) % len(ODD)],
            "extra": "not profiled",
        }
        if i % 11 == 0:
            del features["amount"]
        rows.append(
            {
                "id": f"row-{i}",
                "features": orjson.dumps(features).decode(),
                "prediction": None if i % 9 == 0 else orjson.dumps(i % 2).decode(),
                "score": None if i % 13 == 0 else float(rng.random()),
            }
        )
    encoded = encoder(rows)
    assert encoded is not None
    assert set(encoded.runs) == encoder.numeric
    block = decode(encoded)
    assert block.rows == len(rows)
    kinds = {name: c.floats is not None for name, c in block.columns.items()}
    assert kinds["amount"] and kinds["@score"]  # plain numbers travel as float64
    assert not kinds["visits"] and not kinds["country"]  # mixed values, as values

    batch = StoredRows(
        list(range(len(rows))),
        [r["id"] for r in rows],
        [datetime(2026, 11, 2, tzinfo=UTC)] * len(rows),
        [r["features"] for r in rows],
        [r["prediction"] for r in rows],
        [r["score"] for r in rows],
    )
    decoded = FeatureDecoder(list(profile.columns)).columns(batch, range(len(rows)))
    for below in (None, int(np.sort(block.keys)[100])):
        ordered_rows: dict[str, np.ndarray] = {}
        ordered_block: dict[str, np.ndarray] = {}
        from_rows = partial(
            decoded, row_keys(batch.ids), profile, sample_size=40, ordered=ordered_rows, below=below
        )
        from_block = partial(
            block.columns, block.keys, profile, sample_size=40, ordered=ordered_block, below=below
        )
        assert orjson.dumps(from_block.to_dict()) == orjson.dumps(from_rows.to_dict())
        assert ordered_block.keys() == ordered_rows.keys()
        for name, values in ordered_rows.items():
            np.testing.assert_array_equal(ordered_block[name], values)
    state = from_rows.columns
    assert state["visits"].type_errors > 0 and state["is_new"].type_errors > 0
    assert state["country"].unseen and state["amount"].missing == 55


def decode(encoded: Any) -> blocks.Block:
    """A block as the fold reads it: with the runs ingestion stored with it."""
    return blocks.decode(encoded.payload, {n: p for n, (_, p) in encoded.runs.items()})


def test_rows_a_block_cannot_hold_are_left_to_their_json() -> None:
    rows = [{"id": "a", "features": '{"x": 1}', "prediction": "0", "score": 0.5}]
    encode = blocks.BlockEncoder()
    assert encode(rows) is not None
    assert encode([*rows, {**rows[0], "id": "b", "features": "[1, 2]"}]) is None


# -- end to end: ingestion writes blocks, the statistics job folds them ------------------


def write_workspace(root: Path, db_url: str, rng: np.random.Generator) -> None:
    frame = {
        "amount": rng.normal(50, 10, 3000),
        "visits": rng.poisson(3, 3000),
        "country": rng.choice(["DE", "FR", "NL"], 3000),
        "is_new": rng.random(3000) < 0.3,
        "label": np.zeros(3000, dtype=int),
    }
    pd.DataFrame(frame).to_csv(root / "reference.csv", index=False)
    start = datetime(2026, 11, 2, tzinfo=UTC)
    lines = []
    for i in range(1500):
        # in time order mostly; every 17th row is late, into an earlier window
        hour = (i // 300) if i % 17 else max(i // 300 - 2, 0)
        features = {
            "amount": float(rng.normal(55, 10)) if i % 5 else int(rng.integers(0, 99)),
            "visits": int(rng.poisson(3)) if i % 23 else None,
            "country": str(rng.choice(["DE", "FR", "NL", "BR"])) if i % 29 else 7,
            "is_new": bool(rng.random() < 0.3),
        }
        ts = start + timedelta(hours=hour, seconds=i)
        record = {"id": f"r{i % 1400}", "ts": ts.isoformat(), "features": features}
        record |= {"prediction": int(i % 3 == 0), "score": float(rng.random())}
        lines.append(json.dumps(record))  # ids repeat after 1400: duplicates
    (root / "logs").mkdir()
    (root / "logs" / "p.jsonl").write_text("\n".join(lines) + "\n")
    config = {
        "model": {"name": "m"},
        "reference": {"path": "reference.csv", "target": "label"},
        "sources": {"predictions": [{"paths": ["logs/*.jsonl"]}]},
        "ingest": {"chunk_rows": 200},
        "drift": {"reports": "none"},
        "storage": {"url": db_url},
    }
    (root / "driftd.yaml").write_text(yaml.safe_dump(config))


def states(app: App) -> dict[datetime, Any]:
    w = schema.windows
    with app.store.connect("test") as conn:
        rows = conn.execute(select(w.c.start, w.c.state).where(w.c.model == "m")).all()
    return {start: json.loads(state) for start, state in rows if state}


def block_rows(app: App) -> list[dict[str, Any]]:
    b = schema.feature_blocks
    with app.store.connect("test") as conn:
        return [dict(r._mapping) for r in conn.execute(select(b).order_by(b.c.pk))]


def ingested_runs(app: App) -> list[dict[str, Any]]:
    """The runs of numeric values ingestion wrote with the blocks."""
    v = schema.window_values
    with app.store.connect("test") as conn:
        found = conn.execute(select(v).where(v.c.upto_pk.is_not(None)).order_by(v.c.pk))
        return [dict(r._mapping) for r in found]


def exact_values(app: App) -> dict[tuple[datetime, str], list[float]]:
    """Each window's numeric values as finalize reads them for exact scores."""
    repository = app.statistics_repository
    folded = repository.cursor("m")
    out = {}
    for start, state in states(app).items():
        for name in ("amount", "visits"):
            runs = repository.window_value_runs("m", start, folded)
            payloads = repository.window_value_payloads([pk for pk, n in runs if n == name])
            values = present_sorted([decode_run(p)[name] for p in payloads])
            assert values.size == state["columns"][name]["n"]
            out[start, name] = values.tolist()
    return out


def refold(
    app: App, position: int, saved: list[dict[str, Any]], runs: list[dict[str, Any]]
) -> StatisticsEngine:
    """Forget every window state and value, put the cursor at ``position`` and the
    feature blocks ``saved`` back with their ``runs``: the next fold starts over from
    there."""
    w, c = schema.windows, schema.cursors
    with app.store.transaction("test") as conn:
        conn.execute(update(w).values(state=None, finalized_at=None))
        conn.execute(delete(schema.window_values))
        conn.execute(delete(schema.feature_blocks))
        conn.execute(update(c).where(c.c.name == "statistics").values(position=position))
        if saved:
            conn.execute(insert(schema.feature_blocks), saved)
            uptos = {b["upto_pk"] for b in saved}
            kept = [r for r in runs if r["upto_pk"] in uptos]
            if kept:
                conn.execute(insert(schema.window_values), kept)
    engine = app.statistics_engine
    engine.block_rows = 500  # several fold transactions
    return engine


def test_the_statistics_job_folds_blocks_as_it_folds_rows(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks written by ingestion give the states the rows give, and the same values for
    exact scores (late rows, duplicate ids, several windows per chunk, several chunks per
    fold step); a backlog partly without blocks (rows stored before blocks existed) is
    folded from rows up to the first block, then from blocks; a chunk whose rows were
    partly folded from their JSON is finished from the JSON. Blocks are deleted once
    folded; the runs of numeric values ingestion wrote with them stay, as the window's
    values, unless their rows were folded from their JSON (which stores its own)."""
    write_workspace(tmp_path, db_url, np.random.default_rng(3))
    with App(load(tmp_path / "driftd.yaml")) as app:
        report = app.ingest()
        assert report.rows == 1400 and report.duplicates == 100
        saved, runs = block_rows(app), ingested_runs(app)
        assert sum(b["rows"] for b in saved) == 1400
        # one group per chunk of 200 lines but the last (all duplicates: nothing stored)
        assert len({b["upto_pk"] for b in saved}) == 7
        assert len(saved) > 8  # late rows: some chunks span two windows
        # a run per numeric feature and block, of all its rows
        assert len(runs) == 2 * len(saved)
        assert sum(r["rows"] for r in runs if r["name"] == "amount") == 1400

        engine = refold(app, 0, saved, runs)
        read = engine.repository.rows_batch_after

        def no_rows(*args: Any, **kwargs: Any) -> StoredRows:
            batch = read(*args, **kwargs)
            assert not len(batch), "rows read from their JSON"
            return batch

        with monkeypatch.context() as m:
            m.setattr(engine.repository, "rows_batch_after", no_rows)
            assert engine.fold().rows == 1400
        from_blocks, values_from_blocks = states(app), exact_values(app)
        assert block_rows(app) == [] and ingested_runs(app) == runs
        assert refold(app, 0, [], []).fold().rows == 1400
        from_rows, values_from_rows = states(app), exact_values(app)
        assert from_blocks == from_rows and len(from_rows) == 5
        assert values_from_blocks == values_from_rows

        # the first three chunks' blocks missing: rows first, then the blocks
        missing = {b["upto_pk"] for b in saved[:3]}
        engine = refold(app, 0, [b for b in saved if b["upto_pk"] not in missing], runs)
        assert engine.fold().rows == 1400
        assert states(app) == from_rows and exact_values(app) == values_from_rows

        # the cursor inside a chunk (its first rows folded from JSON): the rest of it
        # from JSON, the chunks after from their blocks; the same as rows from there
        middle = saved[0]["after_pk"] + 37
        engine = refold(app, middle, saved, runs)
        assert engine.fold().rows == 1400 - 37
        partly, values_partly = states(app), exact_values(app)
        assert {r["upto_pk"] for r in ingested_runs(app)} == {r["upto_pk"] for r in runs} - {
            saved[0]["upto_pk"]
        }
        refold(app, middle, [], []).fold()
        assert partly == states(app) and values_partly == exact_values(app)
        assert block_rows(app) == []

        # another model's rows between the cursor and this model's first chunk
        first = saved[0]
        gap = first["after_pk"] + 5
        p = schema.predictions
        with app.store.transaction("test") as conn:
            between = (p.c.pk > first["after_pk"]) & (p.c.pk <= gap)
            conn.execute(update(p).where(between).values(model="other"))
        moved = [dict(b, after_pk=gap) if b["upto_pk"] == first["upto_pk"] else b for b in saved]
        engine = refold(app, first["after_pk"], moved, runs)
        assert engine.fold().rows == 1400  # all from blocks
        assert states(app) == from_rows and exact_values(app) == values_from_rows


def test_a_second_ingest_appends_blocks_after_the_cursor(tmp_path: Path, sqlite_url: str) -> None:
    """Folding, then ingesting more: the new rows arrive as blocks and are folded once."""
    write_workspace(tmp_path, sqlite_url, np.random.default_rng(4))
    log = tmp_path / "logs" / "p.jsonl"
    lines = log.read_text().splitlines()
    log.write_text("\n".join(lines[:700]) + "\n")
    with App(load(tmp_path / "driftd.yaml")) as app:
        app.ingest()
        assert app.statistics_engine.fold().rows == 700
        with open(log, "a") as fh:
            fh.write("\n".join(lines[700:]) + "\n")
        app.ingest()
        assert {b["rows"] for b in block_rows(app)} and app.statistics_engine.fold().rows == 700
        assert block_rows(app) == []
        assert sum(r["rows"] for r in ingested_runs(app) if r["name"] == "amount") == 1400
        assert app.statistics_engine.fold().rows == 0
        total = sum(s["rows"] for s in states(app).values())
        assert total == 1400


def test_without_a_reference_no_blocks_are_written(tmp_path: Path, sqlite_url: str) -> None:
    """No reference, no statistics job to fold and delete them: blocks would pile up."""
    write_workspace(tmp_path, sqlite_url, np.random.default_rng(5))
    config = yaml.safe_load((tmp_path / "driftd.yaml").read_text())
    del config["reference"]
    config["schema"] = {name: str(kind) for name, kind in SCHEMA.items()}
    (tmp_path / "driftd.yaml").write_text(yaml.safe_dump(config))
    with App(load(tmp_path / "driftd.yaml")) as app:
        assert app.ingest().rows == 1400
        assert block_rows(app) == [] and ingested_runs(app) == []


def test_a_chunk_whose_blocks_pass_the_listing_limit_is_folded_whole(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fold step lists a bounded number of blocks; a chunk cut by that limit is left
    for the next step, or read whole when it is the first: no block is deleted unfolded."""
    from storage import statistics

    write_workspace(tmp_path, sqlite_url, np.random.default_rng(6))
    with App(load(tmp_path / "driftd.yaml")) as app:
        app.ingest()
        saved, runs = block_rows(app), ingested_runs(app)
        assert app.statistics_engine.fold().rows == 1400
        from_blocks, values = states(app), exact_values(app)
        counts = {u: sum(b["upto_pk"] == u for b in saved) for u in {b["upto_pk"] for b in saved}}
        assert max(counts.values()) >= 2  # a chunk of several windows, to be cut
        for limit in (1, 2, 3):
            monkeypatch.setattr(statistics, "BLOCK_HEADS", limit)
            assert refold(app, 0, saved, runs).fold().rows == 1400
            assert states(app) == from_blocks and exact_values(app) == values
            assert block_rows(app) == []
