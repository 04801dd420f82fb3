"""A promotion is one recorded decision: driftd's alias log first, then MLflow. When the
process dies (or MLflow fails) between the two, the next start makes MLflow match
driftd's record, so there is exactly one champion, the same in both; an MLflow that is
still down at the start is logged and caught up at a later run."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from retrain.errors import RetrainError
from tests.driftd.experiment_world import START, make_world, register

pytestmark = pytest.mark.slow


def champions(reg: Any) -> list[str]:
    """The MLflow versions that carry the champion alias."""
    found = [reg.client.get_model_version(reg.name, v.version) for v in reg.versions()]
    return [str(v.version) for v in found if "champion" in (v.aliases or [])]


def mlflow_aliases(reg: Any) -> dict[str, str]:
    return {a: str(v) for a, v in reg.client.get_registered_model(reg.name).aliases.items()}


class FlakyAliases:
    """MLflow's ``set_registered_model_alias`` failing from the ``fail_from``-th call on
    (a crash or an outage in the middle of a promotion)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fail_from: int) -> None:
        from mlflow import MlflowClient

        self.calls = 0
        self.fail_from = fail_from
        real = MlflowClient.set_registered_model_alias

        def flaky(client: Any, name: str, alias: str, version: Any) -> None:
            self.calls += 1
            if self.calls >= self.fail_from:
                raise ConnectionError("MLflow tracking server unreachable")
            real(client, name, alias, version)

        monkeypatch.setattr(MlflowClient, "set_registered_model_alias", flaky)


def test_a_crash_between_driftds_log_and_mlflow_is_repaired_at_the_next_start(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    world = make_world(tmp_path, db_url, {"challenger_share": 0.5})
    with world.app() as application:
        one, two = register(world, application)
        reg = world.registry(application)
        assert champions(reg) == [one]
        flaky = FlakyAliases(monkeypatch, fail_from=2)  # champion moves in MLflow, then it fails
        with pytest.raises(RetrainError, match="MLflow was not updated"):
            reg.promote(by="alice", reason="won the A/B test")
        assert reg.aliases() == {"champion": two, "previous": one}  # the decision is recorded
        assert mlflow_aliases(reg) != reg.aliases()  # MLflow is half-way

    # restart while MLflow is still down: the start logs it and the jobs run anyway
    flaky.fail_from = 0
    with world.app() as application:
        results = application.daemon().run_once(["ingest"])
        assert results["ingest"][0] == "ok"
        assert "MLflow was not updated" in caplog.text
        assert mlflow_aliases(world.registry(application)) != {"champion": two, "previous": one}

    # MLflow is back: the next start repairs it
    monkeypatch.undo()
    with world.app() as application:
        application.daemon().run_once(["ingest"])
        reg = world.registry(application)
        assert reg.aliases() == {"champion": two, "previous": one}
        assert mlflow_aliases(reg) == reg.aliases()
        assert champions(reg) == [two]


def test_an_automatic_promotion_stands_when_mlflow_fails_and_is_caught_up_next_run(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_world(
        tmp_path, db_url, {"challenger_share": 0.5, "min_sample": 300, "policy": "auto"}
    )
    with world.app() as application:
        one, two = register(world, application)
        world.ab(application, two, one, START)
        world.serve(
            application,
            START,
            hours=4,
            per_hour=300,
            arms={"champion": "weak", "challenger": "good"},
        )
        world.clock.now = START + timedelta(hours=5)
        FlakyAliases(monkeypatch, fail_from=1)
        outcome, summary = application.daemon().run_once(["experiment"])["experiment"]
        assert outcome == "ok" and summary is not None
        assert summary["phase"] == "baking" and "MLflow not updated yet" in summary["mlflow"]
        reg = world.registry(application)
        assert reg.aliases() == {"champion": two, "previous": one}
        assert champions(reg) == [one]

        monkeypatch.undo()
        outcome, summary = application.daemon().run_once(["experiment"])["experiment"]
        assert outcome == "ok" and summary is not None and summary["mlflow_in_step"]
        assert champions(reg) == [two] and mlflow_aliases(reg) == reg.aliases()
