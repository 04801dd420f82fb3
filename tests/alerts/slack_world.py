"""The alerting of one driftd against a fake Slack, for tests: a store, an alert manager
and a dispatcher that can restart, with clocks the test moves."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fake_slack import FakeSlack, Message

from alerts.dispatch import Dispatcher
from alerts.incidents import Policy
from alerts.manager import AlertManager
from alerts.signals import Evaluation, window_evaluation
from alerts.sinks import SlackSink, web_clients
from monitor.results import ColumnResult, DriftResult, WindowResults
from storage.alerts import AlertRepository
from storage.store import Store

T0 = datetime(2026, 11, 2, tzinfo=UTC)
W = timedelta(hours=6)
MODEL = "fraud"
CHANNEL = "#ml-alerts"


def window(
    k: int,
    drifted: Sequence[str],
    *,
    columns: int = 8,
    score: float = 0.15,
    names: Sequence[str] | None = None,
    report: str | None = None,
) -> Evaluation:
    """Window ``k``'s drift evaluation: ``drifted`` among ``names`` (f0, f1, ...)."""
    names = names or [f"f{i}" for i in range(columns)]
    columns = len(names)
    return window_evaluation(
        MODEL,
        WindowResults(
            start=T0 + k * W,
            end=T0 + (k + 1) * W,
            rows=1000,
            drift=DriftResult(
                drifted=len(drifted) >= columns // 2,
                share=len(drifted) / columns,
                drift_share=0.5,
                columns=tuple(
                    ColumnResult(
                        column=c,
                        column_type="num",
                        method="wasserstein",
                        score=score if c in drifted else 0.01,
                        threshold=0.1,
                        drifted=c in drifted,
                    )
                    for c in names
                ),
            ),
            report=report or f"/reports/drift-{k}.html",
        ),
    )


@dataclass
class Clocks:
    """Wall clock for incidents and backoff, monotonic clock for pacing; both moved."""

    now: datetime = T0
    mono: float = 1000.0
    slept: list[float] = field(default_factory=list)

    def wall(self) -> datetime:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.mono += seconds


class World:
    """One driftd's alerting: a store, a manager, and a dispatcher that can restart."""

    def __init__(self, store: Store, slack: FakeSlack, policy: Policy) -> None:
        self.store = store
        self.slack = slack
        self.clocks = Clocks()
        self.repository = AlertRepository(store)
        self.manager = AlertManager(
            repository=self.repository, policy=policy, clock=self.clocks.wall
        )
        self.restart()

    def restart(self) -> None:
        """A new process: fresh clients and dispatcher, the same database."""
        client, poster = web_clients(self.slack.token, base_url=self.slack.base_url, timeout=2)
        self.dispatcher = Dispatcher(
            repository=AlertRepository(self.store),
            sink=SlackSink(client=client, poster=poster, channel=CHANNEL),
            clock=self.clocks.wall,
            sleep=self.clocks.sleep,
            monotonic=self.clocks.monotonic,
        )

    def cycle(self, *evaluations: Evaluation, after: timedelta = W) -> dict[str, Any]:
        self.clocks.now += after
        self.manager.evaluate(MODEL, list(evaluations))
        return self.dispatcher.deliver().to_dict()

    def outbox_ids(self, messages: Sequence[Message]) -> list[int]:
        return [m.metadata["event_payload"]["outbox_id"] for m in messages if m.metadata]

    def all_messages(self) -> list[Message]:
        top = self.slack.messages(CHANNEL)
        replies = [r for m in top for r in self.slack.replies(m.ts) if r.ts != m.ts]
        return top + [r for r in replies if r not in top]


def block_text(message: Message) -> str:
    parts = []
    for block in message.blocks or []:
        if "text" in block:
            parts.append(block["text"]["text"])
        parts += [f["text"] for f in block.get("fields", [])]
        parts += [e["text"] for e in block.get("elements", [])]
    return "\n".join(parts)
