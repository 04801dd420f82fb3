"""Alerts as an operator meets them through the CLI, with the real Slack clients.

The workspace holds a reference table and a day of card-fraud predictions that drift at
noon (see :mod:`driftd.demo.data`), in four 6-hour windows; ``driftd once`` then finds
real drift, and alerts go to a local fake Slack (``tests/alerts/fake_slack.py``) through
``slack_sdk``'s own ``WebClient`` and ``WebhookClient``.
"""

from __future__ import annotations

import json
import logging
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import create_engine, inspect, text
from typer.testing import CliRunner, Result

from driftd import cli, cli_common
from driftd.demo import data

ALERTS_TESTS = str(Path(__file__).resolve().parents[1] / "alerts")
if ALERTS_TESTS not in sys.path:
    sys.path.insert(0, ALERTS_TESTS)

from fake_slack import FakeSlack, Message  # noqa: E402

runner = CliRunner()

CHANNEL = "#ml-alerts"
START = datetime(2026, 11, 2, tzinfo=UTC)
HOURS, DRIFT_AT = 24, 12  # four 6-hour windows, the last two drifted
DRIFTED = ("amount", "merchant_category", "card_present")  # column drift that is announced


@dataclass(frozen=True)
class Production:
    reference_csv: str
    predictions: bytes  # JSON lines, a few malformed


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Production:
    """One seeded day of production, generated once for the module (about 2 s)."""
    model = data.train_baseline(data.make_reference(2000, seed=7), seed=7)
    reference = data.make_reference(2000, seed=8)
    reference["score"] = data.score(model, reference)
    reference["prediction"] = (reference["score"] >= 0.5).astype(int)
    stream = data.ProductionStream(
        model=model, start=START, rows_per_hour=200, drift_at_hour=DRIFT_AT, seed=7
    )
    path = tmp_path_factory.mktemp("production") / "predictions.jsonl"
    for h in range(HOURS):
        batch = stream.hour(h)
        data.write_jsonl(path, [*batch.predictions, *batch.malformed])
    return Production(reference.to_csv(index=False), path.read_bytes())


def write_workspace(
    root: Path,
    production: Production,
    *,
    storage_url: str,
    alerts: dict[str, Any],
    reference: bool = True,
    reports: str = "none",
) -> str:
    """A driftd workspace in ``root``; the path of its config file."""
    (root / "logs").mkdir(parents=True, exist_ok=True)
    (root / "logs" / "predictions.jsonl").write_bytes(production.predictions)
    config: dict[str, Any] = {
        "model": {"name": "card-fraud"},
        "sources": {"predictions": [{"paths": ["logs/predictions*.jsonl"]}]},
        "windows": {"size": "6h"},
        "drift": {"drift_share": 0.3, "reports": reports},
        "storage": {"url": storage_url},
        "alerts": alerts,
    }
    if reference:
        (root / "reference.csv").write_text(production.reference_csv)
        config["reference"] = {
            "path": "reference.csv",
            "target": data.TARGET,
            "score_column": "score",
            "prediction_column": "prediction",
        }
    path = root / "driftd.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


@pytest.fixture(autouse=True)
def no_secrets_from_outside(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test sets: the developer's own Slack secrets stay out."""
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    monkeypatch.delenv("SLACK_WEBHOOK_URL", raising=False)


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack(token=f"xoxb-SECRET-{uuid.uuid4().hex}") as fake:
        yield fake


class Capture(logging.Handler):
    """Every record it is handed: the message and the formatted line (with traceback)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self.messages: list[str] = []
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        self.lines.append(self.format(record))

    def text(self) -> str:
        return "\n".join(self.messages + self.lines)


@dataclass
class Logs:
    handled: Capture  # beside driftd's stderr handler: records as driftd's logging emits them
    slack_sdk: Capture  # on the slack_sdk logger: what the library said, before any handler


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Logs]:
    """Records of every logger at every level the CLI lets through.

    Each command configures logging (``dictConfig`` replaces the root handlers), so the
    capture is added to the root logger right after the CLI's own set-up.
    """
    captured = Logs(Capture(), Capture())
    setup = cli_common.setup_logging

    def setup_and_capture(level: str = "INFO") -> None:
        setup(level)
        logging.getLogger().addHandler(captured.handled)

    monkeypatch.setattr(cli_common, "setup_logging", setup_and_capture)
    sdk = logging.getLogger("slack_sdk")
    sdk.addHandler(captured.slack_sdk)
    try:
        yield captured
    finally:
        sdk.removeHandler(captured.slack_sdk)
        logging.getLogger().removeHandler(captured.handled)


@dataclass
class Operator:
    """Runs driftd commands and keeps everything they printed."""

    config: str
    outputs: list[str] = field(default_factory=list)

    def __call__(self, *args: str, exit_code: int = 0) -> Result:
        result = runner.invoke(cli.app, [*args, "-c", self.config])
        self.outputs += [result.stdout, result.stderr]
        assert result.exit_code == exit_code, (args, result.output, result.exception)
        return result

    def alerts(self) -> dict[str, Any]:
        listed: dict[str, Any] = json.loads(self("alerts", "list", "--json").stdout)
        return listed


def block_text(message: Message) -> str:
    """The words of a message's blocks, as Slack shows them."""
    words = []
    for block in message.blocks or []:
        words.append((block.get("text") or {}).get("text", ""))
        words += [f["text"] for f in block.get("fields", [])]
        words += [e["text"] for e in block.get("elements", [])]
    return "\n".join(words)


def workspace_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def database_text(url: str) -> str:
    """Every row of every table, as text."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = [
                repr(tuple(row))
                for table in inspect(conn).get_table_names()
                for row in conn.execute(text(f'SELECT * FROM "{table}"'))
            ]
    finally:
        engine.dispose()
    assert rows
    return "\n".join(rows)


def assert_nowhere(secret: str, operator: Operator, logs: Logs, root: Path, db_url: str) -> None:
    for output in operator.outputs:
        assert secret not in output
    assert secret not in logs.handled.text()
    for name, content in workspace_files(root).items():
        assert secret.encode() not in content, name
    assert secret not in database_text(db_url)


# -- 1 and 2: a drift cycle end to end, and the bot token nowhere ---------------------------


def test_drift_reaches_slack_once_grouped_and_the_token_nowhere(
    tmp_path: Path,
    db_url: str,
    production: Production,
    fake_slack: FakeSlack,
    logs: Logs,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = fake_slack.token
    monkeypatch.setenv("SLACK_BOT_TOKEN", token)
    driftd = Operator(
        write_workspace(
            tmp_path,
            production,
            storage_url=db_url,
            alerts={
                "slack": {"channel": CHANNEL, "base_url": fake_slack.base_url},
                "min_interval": 0,
            },
            reports="episode",
        )
    )

    once = driftd("once", "--json", "--log-level", "DEBUG")
    jobs = json.loads(once.stdout)
    assert {name: job["outcome"] for name, job in jobs.items()} == {
        "ingest": "ok",
        "statistics": "ok",
        "alerts": "ok",
    }
    assert len(jobs["statistics"]["summary"]["dataset_drift"]) == 2

    # one message for the whole cycle, naming the drifted columns
    [post] = fake_slack.posts
    assert fake_slack.processed["chat.postMessage"] == 1
    [message] = fake_slack.messages(CHANNEL)
    assert message.text and "card-fraud" in message.text
    words = block_text(message)
    assert "dataset drift" in words and "prediction drift score" in words
    assert all(f"column drift {column}" in words for column in DRIFTED), words
    assert "column drift country" not in words  # explained by the new category 'BR'
    assert "report" in words  # the Evidently detail report is linked

    # the message is the outbox item the incidents point to, sent with Slack's ts
    listed = driftd.alerts()
    [delivery] = listed["deliveries"]
    assert delivery["status"] == "sent" and delivery["attempts"] == 1
    assert delivery["delivery_ref"] == message.ts
    assert delivery["channel"] == FakeSlack.channel_id(CHANNEL)
    assert post.params["metadata"] == {
        "event_type": "driftd_alert",
        "event_payload": {"outbox_id": delivery["pk"]},
    }
    incidents = {f"{i['rule']}/{i['scope']}": i for i in listed["incidents"]}
    assert {i["state"] for i in incidents.values()} == {"open"}
    announced = {key for key, i in incidents.items() if i["suppressed"] is None}
    assert {"dataset_drift/dataset", "prediction_drift/score"} | {
        f"column_drift/{c}" for c in DRIFTED
    } <= announced
    assert {incidents[key]["root_pk"] for key in announced} == {delivery["pk"]}
    assert sorted(delivery["incidents"]) == sorted(incidents[key]["pk"] for key in announced)
    # a new category in country is a data-quality failure that explains its drift
    assert incidents["column_drift/country"]["suppressed"] == (
        "inhibited by data_quality/new_categories:country"
    )

    # nothing new to read, nothing new to say
    again = json.loads(driftd("once", "--json", "--log-level", "DEBUG").stdout)
    assert again["ingest"]["summary"]["rows"] == 0
    assert again["statistics"]["summary"]["alerts"]["queued"] == []
    assert len(fake_slack.posts) == 1 and not fake_slack.processed["chat.update"]

    status = json.loads(driftd("status", "--json").stdout)
    assert status["alerts"]["outbox"] == {"sent": 1}
    assert driftd("check").stdout.strip() == "healthy"

    # -- the token: sent to Slack in the Authorization header, and nowhere else
    requests = fake_slack.requests
    assert requests and all(r.headers["Authorization"] == f"Bearer {token}" for r in requests)
    for r in requests:
        others = {k: v for k, v in r.headers.items() if k != "Authorization"}
        assert token not in json.dumps([r.params, others])
    assert any("chat.postMessage" in m for m in logs.slack_sdk.messages)  # DEBUG was on
    assert any("chat.postMessage" in line for line in driftd.outputs)  # ... and shown
    assert_nowhere(token, driftd, logs, tmp_path, db_url)
    if db_url.startswith("sqlite"):
        assert (tmp_path / "driftd.db").exists()  # scanned with the workspace
    assert any(p.suffix == ".html" for p in (tmp_path / "reports").iterdir())


def test_the_webhook_url_is_a_secret_too(
    tmp_path: Path,
    sqlite_url: str,
    production: Production,
    fake_slack: FakeSlack,
    logs: Logs,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = fake_slack.webhook_url
    monkeypatch.setenv("SLACK_WEBHOOK_URL", url)
    driftd = Operator(
        write_workspace(tmp_path, production, storage_url=sqlite_url, alerts={"min_interval": 0})
    )

    test = driftd("alerts", "test", "--log-level", "DEBUG")
    assert test.stdout.strip() == "test message delivered to slack incoming webhook"
    driftd("once", "--log-level", "DEBUG")
    driftd("alerts", "list", "--json")
    driftd("status", "--json")
    assert driftd("check").stdout.strip() == "healthy"

    first, drift = fake_slack.webhook_messages
    assert "test message" in (first.text or "")
    assert "column drift amount" in block_text(drift)
    # slack_sdk does log the URL at DEBUG: driftd's logging must have hidden it
    assert any(url in m for m in logs.slack_sdk.messages)
    assert "[redacted]" in "\n".join(driftd.outputs)
    assert_nowhere(url, driftd, logs, tmp_path, sqlite_url)
    for r in fake_slack.requests:
        assert url not in json.dumps([r.params, r.headers])


# -- 3: alerts test, and check when Slack refuses ----------------------------------------------


def test_alerts_test_posts_and_says_where(
    tmp_path: Path,
    sqlite_url: str,
    production: Production,
    fake_slack: FakeSlack,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", fake_slack.token)
    alerts = {"slack": {"channel": CHANNEL, "base_url": fake_slack.base_url}}
    driftd = Operator(
        write_workspace(
            tmp_path, production, storage_url=sqlite_url, alerts=alerts, reference=False
        )
    )
    result = driftd("alerts", "test")
    [message] = fake_slack.messages(CHANNEL)
    assert result.stdout.strip() == (
        f"test message delivered to slack channel {CHANNEL} (ts {message.ts})"
    )
    assert message.text == "driftd test message for card-fraud"


def test_an_unknown_channel_fails_the_test_and_the_health_check(
    tmp_path: Path, sqlite_url: str, production: Production, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeSlack(channels={"#other"}) as fake:
        monkeypatch.setenv("SLACK_BOT_TOKEN", fake.token)
        alerts = {"slack": {"channel": CHANNEL, "base_url": fake.base_url}}
        driftd = Operator(
            write_workspace(
                tmp_path, production, storage_url=sqlite_url, alerts=alerts, reference=False
            )
        )
        driftd("ingest")  # otherwise healthy
        failed = driftd("alerts", "test", exit_code=1)
        assert failed.stderr.splitlines()[-1] == (
            f"driftd: test message to slack channel {CHANNEL} not delivered: "
            "slack chat.postMessage: channel_not_found"
        )
        assert not fake.messages()
        check = driftd("check", exit_code=1)
    [problem] = check.stdout.splitlines()
    assert problem.startswith("unhealthy: alert 1 (test, ")
    assert "undeliverable" in problem and "channel_not_found" in problem
    [delivery] = driftd.alerts()["deliveries"]
    assert (delivery["status"], delivery["attempts"]) == ("failed", 1)


def test_a_token_without_the_history_scope_is_named_by_test_and_check(
    tmp_path: Path, sqlite_url: str, production: Production, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the Slack app was installed with chat:write only: posts work, the exactly-once
    # check of a message in doubt cannot read the channel
    with FakeSlack(channels={CHANNEL}, scopes={"chat:write"}) as fake:
        monkeypatch.setenv("SLACK_BOT_TOKEN", fake.token)
        alerts = {"slack": {"channel": fake.channel_id(CHANNEL), "base_url": fake.base_url}}
        driftd = Operator(
            write_workspace(
                tmp_path, production, storage_url=sqlite_url, alerts=alerts, reference=False
            )
        )
        driftd("ingest")  # otherwise healthy
        failed = driftd("alerts", "test", exit_code=1)
        [message] = fake.messages(CHANNEL)  # the post itself worked
        check = driftd("check", exit_code=1)
        fake.scopes = {"chat:write", "channels:history"}
        assert driftd("check").stdout.strip() == "healthy"
        assert driftd("alerts", "test").stdout.startswith("test message delivered to")
    last = failed.stderr.splitlines()[-1]
    assert last.startswith("driftd: test message delivered to slack channel ")
    assert f"(ts {message.ts}), but: " in last
    assert "lacks the channels:history or groups:history scope" in last
    [problem] = check.stdout.splitlines()
    assert problem.startswith("unhealthy: ")
    assert "lacks the channels:history or groups:history scope" in problem


# -- 4: silences (configurations refused: test_config.py) -----------------------------------------------------------------------------


def test_a_silence_records_column_drift_without_posting_it(
    tmp_path: Path,
    sqlite_url: str,
    production: Production,
    fake_slack: FakeSlack,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", fake_slack.token)
    monkeypatch.setenv("LOGNAME", "oncall")
    alerts = {"slack": {"channel": CHANNEL, "base_url": fake_slack.base_url}, "min_interval": 0}
    driftd = Operator(write_workspace(tmp_path, production, storage_url=sqlite_url, alerts=alerts))

    added = driftd(
        "silence", "add", "--rule", "column_drift", "--scope", "*", "--for", "2h",
        "--comment", "campaign",
    )  # fmt: skip
    assert added.stdout.startswith("silence 1: column_drift/* until ")
    driftd("once")

    [message] = fake_slack.messages(CHANNEL)
    words = block_text(message)
    assert "dataset drift" in words and "prediction drift score" in words
    assert "column drift" not in words and "column drift" not in (message.text or "")
    listed = driftd("alerts", "list").stdout
    silenced = [line for line in listed.splitlines() if "column_drift/" in line]
    assert len(silenced) >= len(DRIFTED)
    assert all(line.endswith("(silenced by silence 1)") for line in silenced), silenced
    assert "dataset_drift/dataset" in listed and "message 1 notify sent" in listed

    [active] = driftd("silence", "list").stdout.splitlines()
    assert active.startswith("1 active  column_drift/* until ")
    assert active.endswith("by oncall: campaign")
    assert driftd("silence", "remove", "1").stdout.strip() == "silence 1 removed"
    assert driftd("silence", "list").stdout.strip() == "no silences"
    [expired] = driftd("silence", "list", "--all").stdout.splitlines()
    assert expired.startswith("1 expired column_drift/* until ")
    [record] = json.loads(driftd("silence", "list", "--all", "--json").stdout)
    assert (record["rule"], record["scope"], record["comment"]) == ("column_drift", "*", "campaign")
    gone = driftd("silence", "remove", "1", exit_code=1)
    assert gone.stderr.strip() == "driftd: no active silence 1"


def test_a_silence_needs_a_duration(
    tmp_path: Path, sqlite_url: str, production: Production
) -> None:
    driftd = Operator(write_workspace(tmp_path, production, storage_url=sqlite_url, alerts={}))
    for bad in ("soon", "0h", "2 hours"):
        refused = driftd(
            "silence", "add", "--rule", "column_drift", "--for", bad, "--comment", "x", exit_code=2
        )
        assert refused.stderr.startswith(f"driftd: --for: {bad!r} is not a duration")
    assert driftd("silence", "list", "--all").stdout.strip() == "no silences"
