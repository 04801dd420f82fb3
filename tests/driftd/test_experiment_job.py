"""The experiment job on stored rows, as the daemon runs it (SQLite and PostgreSQL; a real
MLflow store in the workspace; real scikit-learn models): the A/B analysis decides on
the logged variants, promotes (policy auto) or waits for a person (manual), stops on a
broken split, and the bake after a promotion rolls back to `previous` on a breach or
ends `done`."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from driftd.cli import app as cli
from storage.experiment_state import ExperimentStates
from tests.driftd.experiment_world import START, incidents, make_world, register

pytestmark = pytest.mark.slow

AB_SETTINGS = {"challenger_share": 0.5, "min_sample": 300, "max_duration": "7d"}
ARMS = {"champion": "weak", "challenger": "good"}


def experiment_run(application: Any) -> dict[str, Any]:
    outcome, summary = application.daemon().run_once(["experiment"])["experiment"]
    assert outcome == "ok" and summary is not None, outcome
    return dict(summary)


def mlflow_aliases(reg: Any) -> dict[str, str]:
    return {a: str(v) for a, v in reg.client.get_registered_model(reg.name).aliases.items()}


def test_a_real_difference_is_promoted_announced_and_baked(tmp_path: Path, db_url: str) -> None:
    world = make_world(
        tmp_path, db_url, {**AB_SETTINGS, "policy": "auto", "bake": {"period": "3h"}}
    )
    with world.app() as application:
        one, two = register(world, application)
        world.ab(application, two, one, START)
        world.serve(application, START, hours=4, per_hour=300, arms=ARMS)

        world.clock.now = START + timedelta(hours=2)  # half the rows matured: not enough
        first = experiment_run(application)
        assert (first["phase"], first["decision"]) == ("ab", "continue"), first

        world.clock.now = START + timedelta(hours=5)
        summary = experiment_run(application)
        assert summary["decision"] == "promote" and summary["phase"] == "baking", summary
        reg = world.registry(application)
        assert reg.aliases() == {"champion": two, "previous": one}
        assert mlflow_aliases(reg) == reg.aliases()
        move = reg.repository.alias_history(reg.name)[-1]
        assert move.moved_by == "driftd experiment"
        assert "confidence sequence" in move.reason

        exp = ExperimentStates(application.store).get("fraud", two)
        assert exp is not None and exp.phase == "baking"
        ab = exp.details["ab"]
        assert ab["justification"]["lower"] > 0, ab
        assert ab["srm"]["checked"] and ab["srm"]["p_value"] > 0.001
        promoted = incidents(application, "promotion")
        assert [scope for scope, _ in promoted] == ["promoted"]
        assert "promoted to champion" in promoted[0][1]
        assert any("promoted to champion" in line for line in world.lines)

        # the new champion serves everything; as good as the A/B measured it: done
        world.serve(
            application,
            START + timedelta(hours=5),
            hours=3,
            per_hour=300,
            arms={"champion": "good"},
            share=None,
            seed=7,
        )
        world.clock.now = START + timedelta(hours=8, minutes=30)
        application.daemon().run_once(["performance"])
        baking = experiment_run(application)
        assert baking["phase"] == "baking" and not baking["bake"]["breached"], baking
        world.clock.now = START + timedelta(hours=9)  # promoted + 3h + label delay 1h
        application.daemon().run_once(["performance"])
        done = experiment_run(application)
        assert done["phase"] == "done", done
        assert reg.aliases()["champion"] == two
        exp = ExperimentStates(application.store).get("fraud", two)
        assert exp is not None and exp.phase == "done"
        watches = exp.details["bake"]["watches"]
        realized = [w for w in watches if w["source"] == "realized"]
        assert realized and realized[0]["n"] >= 600 and not realized[0]["breached"]
        assert "baked" in [scope for scope, _ in incidents(application, "promotion")]

        # `driftd ab status` reads it back
        result = CliRunner().invoke(cli, ["ab", "status", "-c", str(world.config), "--json"])
        assert result.exit_code == 0, result.output
        import orjson

        text = CliRunner().invoke(cli, ["ab", "status", "-c", str(world.config)]).output
        assert "phase done" in text and "bake: since" in text
        assert "realized accuracy" in text and ": ok" in text
        doc = orjson.loads(result.output)
        assert doc["experiment"]["phase"] == "done"
        assert doc["serving"] == {
            "challenger_serves": False,
            "challenger_share": 0.0,
            "configured_share": 0.5,
            "champion": two,
            "challenger": None,
        }
        assert doc["ab"]["action"] == "promote" and doc["bake"]["watches"]


def test_a_guardrail_breach_in_the_bake_rolls_back_to_previous(tmp_path: Path, db_url: str) -> None:
    world = make_world(
        tmp_path, db_url, {**AB_SETTINGS, "policy": "auto", "bake": {"period": "6h"}}
    )
    with world.app() as application:
        one, two = register(world, application)
        world.ab(application, two, one, START)
        world.serve(application, START, hours=4, per_hour=300, arms=ARMS)
        world.clock.now = START + timedelta(hours=5)
        assert experiment_run(application)["phase"] == "baking"

        # the world turns: the new champion's answers are now mostly wrong
        world.serve(
            application,
            START + timedelta(hours=5),
            hours=2,
            per_hour=300,
            arms={"champion": "good"},
            share=None,
            seed=8,
            flip_labels=True,
        )
        world.clock.now = START + timedelta(hours=8)
        application.daemon().run_once(["performance"])
        summary = experiment_run(application)
        assert summary["phase"] == "rolled_back", summary
        reg = world.registry(application)
        assert reg.aliases() == {"champion": one}
        assert mlflow_aliases(reg) == {"champion": one}
        assert reg.repository.alias_history(reg.name)[-1].moved_by == "driftd bake"
        rolled = [s for scope, s in incidents(application, "promotion") if scope == "rolled_back"]
        assert len(rolled) == 1
        assert "realized accuracy" in rolled[0] and "limit: at least" in rolled[0]
        exp = ExperimentStates(application.store).get("fraud", two)
        assert exp is not None and exp.phase == "rolled_back"


def test_policy_manual_waits_for_a_person_whose_promotion_starts_the_bake(
    tmp_path: Path, db_url: str
) -> None:
    world = make_world(tmp_path, db_url, {**AB_SETTINGS, "policy": "manual"})
    with world.app() as application:
        one, two = register(world, application)
        world.ab(application, two, one, START)
        world.serve(application, START, hours=4, per_hour=300, arms=ARMS)
        world.clock.now = START + timedelta(hours=5)

        # `driftd ab status` during the A/B phase computes the reading now, moving nothing
        shown = CliRunner().invoke(cli, ["ab", "status", "-c", str(world.config)])
        assert shown.exit_code == 0, shown.output
        text = shown.output
        assert f"experiment of v{two} (against v{one}): phase ab" in text
        assert (
            "split: challenger 0.5 / champion 0.5; the challenger serves live traffic now" in text
        )
        assert "sample ratio p-value" in text and "labelled of" in text
        assert "primary accuracy: challenger" in text and "BETTER" in text
        assert "decision: promote: challenger better" in text
        assert ExperimentStates(application.store).get("fraud", two).details == {}

        summary = experiment_run(application)
        assert (summary["decision"], summary["phase"]) == ("promote", "promote"), summary
        reg = world.registry(application)
        assert reg.aliases() == {"champion": one, "challenger": two}  # nothing moved
        winner = [s for scope, s in incidents(application, "experiment") if scope == "winner"]
        assert len(winner) == 1 and "driftd models promote" in winner[0]
        assert experiment_run(application)["phase"] == "promote"  # still waiting

        result = CliRunner().invoke(
            cli,
            ["models", "promote", "--reason", "A/B won", "--by", "alice", "-c", str(world.config)],
        )
        assert result.exit_code == 0, result.output
        after = experiment_run(application)
        assert after["phase"] == "baking", after
        exp = ExperimentStates(application.store).get("fraud", two)
        assert exp is not None and "by alice" in (exp.reason or "")


def test_a_broken_split_stops_the_analysis_and_alerts(tmp_path: Path, db_url: str) -> None:
    world = make_world(tmp_path, db_url, {**AB_SETTINGS, "policy": "auto"})
    with world.app() as application:
        one, two = register(world, application)
        world.ab(application, two, one, START)
        # configured 50/50, served 35/65: e.g. a hash bug in the team's own serving
        world.serve(application, START, hours=4, per_hour=300, arms=ARMS, share=0.35)
        world.clock.now = START + timedelta(hours=5)

        summary = experiment_run(application)
        assert (summary["decision"], summary["phase"]) == ("stop", "stopped"), summary
        reg = world.registry(application)
        assert reg.aliases() == {"champion": one, "challenger": two}  # nothing decided
        stopped = [s for scope, s in incidents(application, "experiment") if scope == "stopped"]
        assert len(stopped) == 1 and "split is broken" in stopped[0]
        exp = ExperimentStates(application.store).get("fraud", two)
        assert exp is not None and exp.details["ab"]["srm"]["p_value"] < 0.001
        # a stopped experiment stays stopped: the next cycle decides nothing
        assert experiment_run(application)["phase"] is None
