"""The weekly summary reaches Slack through the alerts pipeline: the real slack_sdk
client against the local fake Slack, exactly once per result."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from report_seed import AS_OF, Seeded

from alerts.sinks import SlackSink, web_clients
from driftd.app import App
from driftd.report import generate, parse_week

ALERTS_TESTS = str(Path(__file__).resolve().parents[1] / "alerts")
if ALERTS_TESTS not in sys.path:
    sys.path.insert(0, ALERTS_TESTS)

from fake_slack import FakeSlack  # noqa: E402

CHANNEL = "#ml-reports"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_summary_is_one_slack_message_with_five_lines_and_the_link(seeded: Seeded) -> None:
    week = parse_week("2026-W46", "Europe/Berlin")
    with FakeSlack(channels={CHANNEL}) as slack:
        client, poster = web_clients(slack.token, base_url=slack.base_url, timeout=2)
        sink = SlackSink(client=client, poster=poster, channel=CHANNEL)
        with App(seeded.app.config, sink=sink, clock=lambda: AS_OF) as app:
            written = generate(app, week)
            generate(app, week)  # the same numbers: not announced again
        [message] = slack.messages(CHANNEL)
    assert message.text == "driftd weekly report: fraud 2026-W46"
    assert message.blocks is not None
    header, summary, links = message.blocks
    assert header["text"]["text"] == "driftd weekly report: fraud 2026-W46"
    assert summary["text"]["text"].splitlines() == written.document["summary"]
    assert len(written.document["summary"]) == 5
    assert links["elements"][0]["text"] == f"detail report: {written.html}"
    assert message.metadata is not None  # the outbox id: delivery in doubt is checked
