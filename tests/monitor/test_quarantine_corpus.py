"""A corpus of malformed logs: every bad record is quarantined under its reason, once, at its
line, and every good record around it is stored.

The corpus holds every kind of damage the log contract names, in JSON Lines, CSV and
Parquet prediction sources and a JSON Lines label source: bad JSON, bytes that are not
UTF-8, records that are not objects, missing or bad ids and timestamps, features that are
missing or of the wrong type, NaN and infinities where numbers are required, scores that
are not probabilities, a line over the size limit, plus blank lines, a byte order mark,
CRLF line ends, an empty file, a last line still waiting for its newline and files that
disappear while ingestion runs. What a user checks is asserted: the counts
``driftd ingest --json`` prints, the quarantine table, and the rows stored.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from ingest_corpus import (
    Corpus,
    Entry,
    assert_stored_exactly,
    bad,
    config,
    good,
    label,
    prediction,
    quarantine_rows,
    stored_labels,
    union,
)
from quarantine_records import CSV_HEADER, TS, csv_row, parquet_table, raw, record
from sqlalchemy import select

from storage import schema
from storage.store import Store

CLI = [sys.executable, "-c", "from driftd.cli import main; main()"]
BOM = b"\xef\xbb\xbf"
MiB = 1 << 20


def malformed_predictions() -> list[Entry]:
    def sized(rid: str, size: int) -> dict[str, Any]:
        """A record whose JSON text is ``size`` bytes long."""
        padding = size - len(json.dumps(record(rid, country="")))
        return record(rid, country="X" * padding)

    return [
        # not JSON at all, or not UTF-8
        bad('{"id": "j-trunc", "ts": "2026-11-28T10:00:00Z", "features": {"amo', "bad_json"),
        bad("{'id': 'j-single-quotes', 'ts': '2026-11-28T10:00:00Z'}", "bad_json"),
        bad('{"id":"j-trailing-comma","ts":"2026-11-28T10:00:00Z",}', "bad_json"),
        bad(BOM + json.dumps(record("j-mid-bom")).encode(), "bad_json"),
        bad("garbage that is not json", "bad_json"),
        bad(raw("j-utf8", '"country":"\udcff\udcfe"'), "invalid_utf8"),  # bytes ff fe
        bad(
            json.dumps(record("j-latin1", country="München"), ensure_ascii=False).encode("latin-1"),
            "invalid_utf8",
        ),
        bad(b"\xc3\x28\xa0\xa1", "invalid_utf8"),
        # valid JSON that is not a record
        bad("[1, 2, 3]", "not_an_object"),
        bad('"just text"', "not_an_object"),
        bad("42", "not_an_object"),
        bad("null", "not_an_object"),
        # ids
        bad(record(id=...), "missing_id"),
        bad(record(id=""), "missing_id"),
        bad(record(id=None), "missing_id"),
        bad(record(id=1.5), "bad_id"),
        bad(record(id=["j-list"]), "bad_id"),
        bad(record(id=True), "bad_id"),
        bad(record("j" * 201), "bad_id"),
        # timestamps
        bad(record("j-no-ts", ts=...), "missing_ts"),
        bad(record("j-null-ts", ts=None), "missing_ts"),
        bad(record("j-ts-words", ts="yesterday"), "bad_ts"),
        bad(record("j-ts-month13", ts="2026-13-45T10:00:00Z"), "bad_ts"),
        bad(record("j-ts-dmy", ts="28/11/2026 10:00"), "bad_ts"),
        bad(record("j-ts-empty", ts=""), "bad_ts"),
        bad(record("j-ts-bool", ts=True), "bad_ts"),
        bad(record("j-ts-object", ts={"iso": TS}), "bad_ts"),
        bad(record("j-ts-epoch-huge", ts=1e20), "bad_ts"),
        # features
        bad(record("j-feat-text", features="amount=3"), "missing_features"),
        bad(record("j-feat-list", features=[12.5, "DE", False]), "missing_features"),
        bad(record("j-feat-number", features=42), "missing_features"),
        bad(record("j-amount-text", amount="129.50"), "bad_feature_type"),
        bad(record("j-amount-bool", amount=True), "bad_feature_type"),
        bad(record("j-amount-object", amount={"value": 12.5}), "bad_feature_type"),
        bad(record("j-amount-list", amount=[12.5]), "bad_feature_type"),
        bad(record("j-country-list", country=["DE"]), "bad_feature_type"),
        bad(record("j-country-float", country=1.5), "bad_feature_type"),
        bad(record("j-is-new-text", is_new="yes"), "bad_feature_type"),
        bad(record("j-is-new-int", is_new=1), "bad_feature_type"),
        bad(record("j-extra-object", extra={"nested": 1}), "bad_feature_type"),
        # NaN and infinities where a number is required
        bad(raw("j-nan", '"amount":NaN'), "non_finite"),
        bad(raw("j-inf", '"amount":Infinity'), "non_finite"),
        bad(raw("j-minus-inf", '"amount":-Infinity'), "non_finite"),
        bad(raw("j-1e999", '"amount":1e999'), "non_finite"),
        bad(json.dumps(record("j-score-inf")).replace("0.75", "-Infinity"), "non_finite"),
        bad(json.dumps(record("j-score-1e999")).replace("0.75", "1e999"), "non_finite"),
        bad(
            json.dumps(record("j-pred-nan")).replace('"prediction": 1', '"prediction": NaN'),
            "non_finite",
        ),
        # what the model served
        bad(record("j-no-prediction", prediction=...), "missing_prediction"),
        bad(record("j-null-prediction", prediction=None), "missing_prediction"),
        bad(record("j-score-high", score=1.5), "bad_score"),
        bad(record("j-score-negative", score=-0.01), "bad_score"),
        bad(record("j-score-text", score="0.8"), "bad_score"),
        bad(record("j-score-bool", score=True), "bad_score"),
        bad(record("j-probs-list", probabilities=[0.1, 0.9]), "bad_score"),
        bad(record("j-probs-text", probabilities={"fraud": "high"}), "bad_score"),
        # over the default 1 MiB line limit
        bad(json.dumps(sized("j-just-over", MiB + 2)), "line_too_long"),  # + CR: 3 over
        bad(json.dumps(sized("j-long", 2 * MiB)), "line_too_long"),
    ]


def good_predictions(rng: random.Random) -> list[Entry]:
    records = [prediction(rng, n, rid=f"j-{n:04d}") for n in range(300)]
    special = [
        record(id=987654321),
        record("j-epoch-ts", ts=1795860000),
        record("j-naive-ts", ts="2026-11-28T10:00:00"),
        record("j-offset-ts", ts="2026-11-28T12:00:00+02:00"),
        record("j-probabilities", score=..., probabilities={"fraud": 0.2, "ok": 0.8}),
        record("j-null-features", amount=None, country=None, is_new=None),
        record("j-int-amount", amount=12, country=7),
        record("j-extra-scalar", extra="browser=firefox"),
        record("j-unicode", country="Zürich ☃"),
        record("j-near-limit", country="Y" * (MiB - 200)),  # under the limit with its CR
        {**prediction(rng, 9000, rid="j-0007"), "score": 0.01},  # a repeated id: a duplicate
    ]
    return [good(r) for r in records + special]


def blank() -> list[Entry]:
    return [Entry(b""), Entry(b"   "), Entry(b"\t")]


def malformed_labels() -> list[Entry]:
    lab = {"id": "j-0001", "label": 1, "ts": TS}
    return [
        bad({k: v for k, v in lab.items() if k != "label"}, "missing_label"),
        bad({**lab, "label": None}, "missing_label"),
        bad({**lab, "label": [0, 1]}, "missing_label"),
        bad({**lab, "label": {"y": 1}}, "missing_label"),
        bad(json.dumps(lab).replace('"label": 1', '"label": NaN'), "non_finite"),
        bad({k: v for k, v in lab.items() if k != "id"}, "missing_id"),
        bad({**lab, "id": 3.5}, "bad_id"),
        bad({**lab, "ts": "not a time"}, "bad_ts"),
        bad({k: v for k, v in lab.items() if k != "ts"}, "missing_ts"),
        bad('{"id": "j-0002", "label": ', "bad_json"),
        bad(b'{"id":"j-0003","label":"\xff","ts":"2026-11-28T10:00:00Z"}', "invalid_utf8"),
        bad("[1]", "not_an_object"),
    ]


# country last: a CRLF line end left on the last field would show up in the stored rows
def csv_entries() -> list[Entry]:
    """Lines after the header: 40 good rows with bad ones and a blank line in between."""
    entries: list[Entry] = []
    for n in range(40):
        rec = {
            "id": f"c-{n:03d}",
            "ts": f"2026-11-28T11:{n:02d}:00Z",
            "features": {
                "amount": n + 0.5,
                "country": "FR" if n % 2 else "D,E",
                "is_new": n % 3 == 0,
            },
            "prediction": n % 2,
            "score": n / 40,
        }
        line = csv_row(
            rec["id"],
            ts=rec["ts"],
            amount=n + 0.5,
            is_new="true" if n % 3 == 0 else "false",
            prediction=n % 2,
            score=n / 40,
            country="FR" if n % 2 else '"D,E"',
        )
        entries.append(Entry(line.encode(), record=rec))
    bad_rows = [
        bad(f"c-few,{TS},1.5,false,1,0.5", "bad_csv_row"),
        bad(csv_row("c-many") + ",extra", "bad_csv_row"),
        bad(csv_row("c-amount-text", amount="abc"), "bad_feature_type"),
        bad(csv_row("c-is-new-maybe", is_new="maybe"), "bad_feature_type"),
        bad(csv_row(""), "missing_id"),
        bad(csv_row("c-no-ts", ts=""), "missing_ts"),
        bad(csv_row("c-ts-soon", ts="soon"), "bad_ts"),
        bad(csv_row("c-score-high", score=1.7), "bad_score"),
        bad(csv_row("c-score-nan", score="nan"), "non_finite"),
        bad(csv_row("c-no-prediction", prediction=""), "missing_prediction"),
        bad(csv_row("c-latin1", country="M\xfcnchen").encode("latin-1"), "invalid_utf8"),
    ]
    rng = random.Random(5)
    for entry in bad_rows + [Entry(b"")]:
        entries.insert(rng.randrange(len(entries) + 1), entry)
    return entries


def parquet_rows() -> tuple[list[dict[str, Any]], dict[int, str]]:
    """Flat rows of the first Parquet file, and the reasons of the bad ones by row number."""
    rows = [
        {
            "id": f"p-{n:03d}",
            "ts": f"2026-11-28T12:{n:02d}:00Z",
            "amount": float(n),
            "country": "NL",
            "is_new": n % 2 == 0,
            "prediction": 1,
            "score": 0.5,
        }
        for n in range(50)
    ]
    damage = {
        3: ({"id": None}, "missing_id"),
        11: ({"ts": None}, "missing_ts"),
        17: ({"ts": "not a time"}, "bad_ts"),
        26: ({"score": 1.5}, "bad_score"),
        31: ({"score": float("nan")}, "non_finite"),
        44: ({"prediction": None}, "missing_prediction"),
    }
    for i, (change, _) in damage.items():
        rows[i].update(change)
    return rows, {i + 1: reason for i, (_, reason) in damage.items()}


def flat_record(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "ts": row["ts"],
        "features": {k: row[k] for k in ("amount", "country", "is_new")},
        "prediction": row["prediction"],
        "score": row["score"],
    }


class Logs:
    """The whole corpus on disk, and what each source must end up with."""

    def __init__(self, root: Path) -> None:
        rng = random.Random(20261128)
        self.dir = root / "logs"
        self.dir.mkdir()
        self.jsonl = Corpus()
        self.csv = Corpus()
        self.parquet = Corpus()
        self.labels = Corpus()

        entries = good_predictions(rng) + malformed_predictions() + blank()
        rng.shuffle(entries)
        # a BOM and CRLF line ends; the BOM belongs to the first line, which must be good
        first = next(i for i, e in enumerate(entries) if e.record and len(e.data) < 1000)
        entries.insert(0, entries.pop(first))
        self.jsonl.write(self.dir / "predictions-1.jsonl", entries, prefix=BOM, newline=b"\r\n")
        (self.dir / "predictions-2.jsonl").write_bytes(b"")  # empty
        self.jsonl.touch(self.dir / "predictions-2.jsonl")
        tail = [good(prediction(rng, n, rid=f"t-{n}")) for n in range(5)]
        self.jsonl.write(self.dir / "predictions-3.jsonl", tail)
        self.partial = prediction(rng, 99, rid="t-partial")
        with open(self.dir / "predictions-3.jsonl", "ab") as fh:
            fh.write(json.dumps(self.partial).encode())  # no newline yet
        self.jsonl.touch(self.dir / "predictions-3.jsonl")

        lines = csv_entries()
        self.csv.write(
            self.dir / "predictions.csv", [Entry(CSV_HEADER), *lines], prefix=BOM, newline=b"\r\n"
        )

        rows, reasons = parquet_rows()
        path = self.dir / "predictions-1.parquet"
        pq.write_table(parquet_table(rows, pa.float64()), path, row_group_size=16)
        for i, row in enumerate(rows, start=1):
            if i in reasons:
                self.parquet.quarantined[(str(path), i)] = reasons[i]
            else:
                self.parquet.rows[row["id"]] = flat_record(row)
        self.parquet.touch(path)
        path = self.dir / "predictions-2.parquet"
        text_amounts = [dict(r, id=f"p-text-{i}", amount=str(i)) for i, r in enumerate(rows[:5])]
        pq.write_table(parquet_table(text_amounts, pa.string()), path)
        for i in range(1, 6):
            self.parquet.quarantined[(str(path), i)] = "bad_feature_type"
        self.parquet.touch(path)

        good_labels = [good(label(rng, n)) for n in range(120)]
        good_labels[7] = good({"id": "j-0007", "label": "fraud", "ts": TS})
        good_labels[8] = good({"id": "j-0008", "label": True, "ts": TS})
        entries = good_labels + malformed_labels() + [good({"id": "j-0007", "label": 0, "ts": TS})]
        rng.shuffle(entries)
        self.labels.write(self.dir / "labels.jsonl", entries, newline=b"\r\n")

    def config(self, root: Path, url: str) -> dict[str, Any]:
        d = self.dir
        return config(
            root,
            [],
            url=url,
            sources={
                "predictions": [
                    {"paths": [str(d / "predictions-*.jsonl")], "name": "jsonl"},
                    {"paths": [str(d / "*.csv")], "format": "csv", "name": "csv"},
                    {"paths": [str(d / "*.parquet")], "format": "parquet", "name": "parquet"},
                ],
                "labels": [{"paths": [str(d / "labels*.jsonl")]}],
            },
            chunk_rows=64,
        )

    def expected_report(self) -> dict[str, dict[str, Any]]:
        def source(corpus: Corpus, files: int, matched: int | None = None) -> dict[str, Any]:
            return {
                "matched": files if matched is None else matched,
                "files": files,
                "rows": len(corpus.rows),
                "duplicates": corpus.duplicates,
                "quarantined": dict(sorted(corpus.reasons.items())),
                "restarted": 0,
            }

        return {
            "jsonl": source(self.jsonl, 2, matched=3),  # the empty file is not read
            "csv": source(self.csv, 1),
            "parquet": source(self.parquet, 2),
            "labels": source(self.labels, 1),
        }


def assert_positions_and_excerpts(store: Store) -> None:
    """A quarantined line's offset is where it starts in its text file, its number counts
    the lines before it, and its excerpt is its start (without line end), as text."""
    t = schema.quarantine
    with store.connect() as conn:
        rows = conn.execute(select(t.c.path, t.c.line, t.c.byte_offset, t.c.excerpt)).all()
    contents = {
        p: Path(p).read_bytes() for p in {r.path for r in rows} if not p.endswith(".parquet")
    }
    assert len(contents) == 3  # predictions-1.jsonl, predictions.csv, labels.jsonl
    for path, number, offset, excerpt in rows:
        if path not in contents:
            continue
        data = contents[path]
        assert offset == 0 or data[offset - 1 : offset] == b"\n", (path, number)
        assert data[:offset].count(b"\n") + 1 == number, (path, number)
        line = data[offset : data.index(b"\n", offset)].removesuffix(b"\r")
        assert excerpt == line[:200].decode("utf-8", "backslashreplace"), (path, number)


def run_cli(cfg: dict[str, Any], root: Path) -> dict[str, Any]:
    path = root / "driftd.yaml"
    path.write_text(yaml.safe_dump(cfg))
    done = subprocess.run(
        [*CLI, "ingest", "-c", str(path), "--json", "--log-level", "WARNING"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def without_bytes(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: {k: v for k, v in s.items() if k != "bytes"} for name, s in report["sources"].items()
    }


def test_every_reason_counted_and_every_good_row_stored(tmp_path: Path, db_url: str) -> None:
    logs = Logs(tmp_path)
    cfg = logs.config(tmp_path, db_url)
    # every kind of damage is in the corpus
    assert set(logs.jsonl.reasons) == {
        "bad_json", "invalid_utf8", "not_an_object", "missing_id", "bad_id", "missing_ts",
        "bad_ts", "missing_features", "bad_feature_type", "non_finite", "missing_prediction",
        "bad_score", "line_too_long",
    }  # fmt: skip

    report = run_cli(cfg, tmp_path)

    assert without_bytes(report) == logs.expected_report()
    jsonl_bytes = sum(Path(p).stat().st_size for p in logs.jsonl.files) - len(
        json.dumps(logs.partial)
    )
    assert report["sources"]["jsonl"]["bytes"] == jsonl_bytes
    assert report["rows"] == sum(
        len(c.rows) for c in (logs.jsonl, logs.csv, logs.parquet, logs.labels)
    )
    store = Store(db_url)
    try:
        predictions = union(logs.jsonl, logs.csv, logs.parquet)
        labels = logs.labels
        everything = union(predictions, Corpus(quarantined=labels.quarantined))
        assert_stored_exactly(store, everything)
        assert stored_labels(store) == {rid: r["label"] for rid, r in labels.rows.items()}
        assert_positions_and_excerpts(store)

        # the partial last line is stored once its newline arrives, and only then
        with open(logs.dir / "predictions-3.jsonl", "ab") as fh:
            fh.write(b"\n")
        report = run_cli(cfg, tmp_path)
        assert (report["rows"], report["duplicates"], report["quarantined"]) == (1, 0, 0)
        everything.rows["t-partial"] = logs.partial
        assert_stored_exactly(store, everything)

        # nothing new: nothing changes
        report = run_cli(cfg, tmp_path)
        assert (report["rows"], report["duplicates"], report["quarantined"]) == (0, 0, 0)
        assert len(quarantine_rows(store)) == len(everything.quarantined)
    finally:
        store.dispose()
