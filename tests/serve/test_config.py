"""The ``serve:`` section: defaults that close the loop, refusals that name the key."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from driftd.cli import app
from driftd.cli_serve import load_config
from driftd.config_experiment import experiment_config
from driftd.errors import ConfigError


def write(tmp_path: Path, serve: dict[str, Any] | None) -> Path:
    config: dict[str, Any] = {
        "model": {"name": "fraud"},
        "sources": {"predictions": [{"paths": ["logs/predictions*.jsonl"]}]},
        "schema": {"amount": "numeric"},
    }
    if serve is not None:
        config["serve"] = serve
    path = tmp_path / "driftd.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_defaults_listen_locally_and_log_where_the_sources_look(tmp_path: Path) -> None:
    config, serve = load_config(write(tmp_path, {"models": {"champion": "m/champion.pkl"}}))

    assert (serve.host, serve.port) == ("127.0.0.1", 8080)
    assert experiment_config(config).challenger_share == 0.1
    assert serve.max_body_bytes == 64 << 10
    assert serve.models["champion"] == tmp_path / "m" / "champion.pkl"
    assert serve.log.path == tmp_path / "logs" / "predictions.jsonl"
    assert config.model.name == "fraud"


def test_durations_read_like_the_rest_of_the_config(tmp_path: Path) -> None:
    _, serve = load_config(write(tmp_path, {"reload_interval": "30s"}))
    assert serve.reload_interval == timedelta(seconds=30)


@pytest.mark.parametrize(
    "section, message",
    [
        (
            {"challenger_share": 0.3},
            "serve.challenger_share: moved to experiment.challenger_share",
        ),
        ({"models": {"challenger": "c.pkl"}}, "serve.models: name the champion's file"),
        ({"models": {"shadow": "s.pkl"}}, "serve.models.shadow"),
        ({"log": {"max_bytes": 10}}, "serve.log.max_bytes"),
        ({"reload_interval": "soon"}, "serve.reload_interval"),
        ({"workers": 4}, "serve.workers: Extra inputs are not permitted"),
    ],
)
def test_a_bad_section_is_refused_naming_the_key(
    tmp_path: Path, section: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match="invalid configuration") as caught:
        load_config(write(tmp_path, section))
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "share, message",
    [
        (1.0, "experiment.challenger_share: Input should be less than 1"),
        (0, "experiment.challenger_share: Input should be greater than 0"),
    ],
)
def test_the_split_is_the_experiment_sections_and_has_two_arms(
    tmp_path: Path, share: float, message: str
) -> None:
    path = write(tmp_path, None)
    data = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({**data, "experiment": {"challenger_share": share}}))
    with pytest.raises(ConfigError, match="invalid configuration") as caught:
        load_config(path)
    assert message in str(caught.value)


def test_the_command_exits_2_on_a_bad_section(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["serve", "-c", str(write(tmp_path, {"port": -1}))])
    assert result.exit_code == 2
    assert "serve.port" in result.output


def test_a_champion_that_does_not_load_stops_the_start_with_its_key(tmp_path: Path) -> None:
    (tmp_path / "broken.pkl").write_bytes(b"not a pickle")
    config = write(tmp_path, {"models": {"champion": "broken.pkl"}})
    result = CliRunner().invoke(app, ["serve", "-c", str(config)])
    assert result.exit_code == 1
    assert "serve.models.champion: cannot load" in result.output
    assert "broken.pkl" in result.output


def test_the_cli_runs_without_the_ui_extra() -> None:
    """FastAPI and uvicorn are an extra: importing the CLI must not need them."""
    import json
    import subprocess
    import sys

    script = (
        "import json, sys, driftd.cli\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, check=True, text=True)
    loaded = set(json.loads(out.stdout))
    assert not loaded & {"fastapi", "uvicorn", "starlette", "sklearn", "joblib"}
