"""``driftd serve`` as an operator runs it: a real uvicorn on 127.0.0.1, killed with
SIGKILL under load and started again, then ``driftd ingest`` on what it logged."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from driftd.cli import app
from driftd.demo.data import FEATURES
from tests.serve.conftest import features

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_configs(root: Path, db: str, models: dict[str, Path], port: int) -> tuple[Path, Path]:
    """The serving config, and the daemon's (the same without `serve:`)."""
    config: dict[str, Any] = {
        "model": {"name": "fraud"},
        "sources": {"predictions": [{"paths": ["logs/predictions-*.jsonl"]}]},
        "schema": dict(FEATURES),
        "storage": {"url": db},
        "workspace": ".",
    }
    (root / "driftd.yaml").write_text(yaml.safe_dump(config))
    serving = {
        **config,
        "experiment": {"challenger_share": 0.5},
        "serve": {
            "port": port,
            "models": {alias: str(path) for alias, path in models.items()},
            "log": {"path": "logs/predictions.jsonl"},
        },
    }
    (root / "serve.yaml").write_text(yaml.safe_dump(serving))
    return root / "serve.yaml", root / "driftd.yaml"


class Server:
    def __init__(self, config: Path, port: int, root: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.stderr = open(root / "serve.err", "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from driftd.cli import main; main()",
                "serve",
                "-c",
                str(config),
            ],
            stdout=subprocess.DEVNULL,
            stderr=self.stderr,
            cwd=root,
        )
        self.root = root
        deadline = time.monotonic() + 120
        while True:
            assert self.process.poll() is None, (root / "serve.err").read_text()
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "driftd serve did not answer within 120 s"
            time.sleep(0.1)

    def stop(self, sig: int) -> int:
        self.process.send_signal(sig)
        code = self.process.wait(timeout=60)
        self.stderr.close()
        return code


def load(
    url: str, worker: int, answered: list[str], unanswered: list[str], stop: threading.Event
) -> None:
    """Requests one after the other on a keep-alive connection until ``stop`` or failure."""
    with httpx.Client(base_url=url, timeout=30) as client:
        i = 0
        while not stop.is_set():
            rid = f"w{worker}-{i}"
            try:
                response = client.post("/predict", json={"id": rid, "features": features(i)})
            except httpx.TransportError:
                unanswered.append(rid)
                return
            assert response.status_code == 200, response.text
            answered.append(rid)
            i += 1


def test_every_served_prediction_is_logged_once_across_a_kill_and_ingested_once(
    tmp_path: Path, sqlite_url: str, model_files: dict[str, Path]
) -> None:
    port = free_port()
    serve_yaml, driftd_yaml = write_configs(tmp_path, sqlite_url, model_files, port)

    server = Server(serve_yaml, port, tmp_path)
    answered: list[str] = []
    unanswered: list[str] = []
    stop = threading.Event()
    workers = [
        threading.Thread(target=load, args=(server.url, w, answered, unanswered, stop))
        for w in range(4)
    ]
    for w in workers:
        w.start()
    deadline = time.monotonic() + 120
    while len(answered) < 60:  # kill it under load, requests in flight
        assert time.monotonic() < deadline and all(w.is_alive() for w in workers)
        time.sleep(0.01)
    assert server.stop(signal.SIGKILL) == -signal.SIGKILL
    stop.set()
    for w in workers:
        w.join(timeout=60)
    before_kill = list(answered)

    server = Server(serve_yaml, port, tmp_path)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for rid in unanswered:  # the clients retry what got no answer, with the same id
            assert (
                client.post("/predict", json={"id": rid, "features": features()}).status_code == 200
            )
        after = [f"new-{i}" for i in range(20)]
        for rid in after:
            assert (
                client.post("/predict", json={"id": rid, "features": features()}).status_code == 200
            )
        refused = [
            client.post(
                "/predict", json={"id": "bad-1", "features": {**features(), "amount": "x"}}
            ),
            client.post("/predict", json={"id": "bad-2", "features": {"amount": 1.0}}),
            client.post("/predict", content=b"{" + b" " * (70 << 10) + b"}"),
        ]
    assert [r.status_code for r in refused] == [422, 422, 413]
    assert "amount" in refused[0].text and "hour" in refused[1].text
    # uvicorn finishes the requests in flight, runs the shutdown, then dies of the signal
    assert server.stop(signal.SIGTERM) == -signal.SIGTERM
    logged_now = len(unanswered) + len(after)
    assert (
        f"stopped serving: {logged_now} predictions logged" in (tmp_path / "serve.err").read_text()
    )

    lines = []
    for path in sorted((tmp_path / "logs").glob("predictions-*.jsonl")):
        data = path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]  # a torn last line is never ingested
        lines += [orjson.loads(line) for line in complete.splitlines()]
    counts = Counter(line["id"] for line in lines)
    sent = set(before_kill) | set(unanswered) | set(after)
    assert set(counts) <= sent  # nothing refused, nothing invented
    assert all(counts[rid] == 1 for rid in before_kill + after)  # served: logged exactly once
    assert all(1 <= counts[rid] <= 2 for rid in unanswered)  # retried: once, or a duplicate
    assert {line["variant"] for line in lines} == {"champion", "challenger"}

    result = CliRunner().invoke(app, ["ingest", "-c", str(driftd_yaml), "--json"])
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    assert report["rows"] == len(counts)
    assert report["duplicates"] == len(lines) - len(counts)
    assert report["quarantined"] == 0
    engine = create_engine(sqlite_url)
    with engine.connect() as conn:
        stored = dict(conn.execute(text("SELECT id, variant FROM predictions")).all())
    engine.dispose()
    assert stored == {line["id"]: line["variant"] for line in lines}


def test_serve_without_model_files_and_an_empty_registry_says_what_to_do(
    tmp_path: Path, sqlite_url: str
) -> None:
    serve_yaml, _ = write_configs(tmp_path, sqlite_url, {}, free_port())
    result = CliRunner().invoke(app, ["serve", "-c", str(serve_yaml)])
    assert result.exit_code == 1
    assert "registry 'fraud' has no champion to serve" in result.output
    assert "driftd models register" in result.output
