"""Dependency direction (DESIGN.md): driftd -> retrain, alerts -> monitor -> storage.

Two checks: importing the light packages in a fresh interpreter loads no heavy
dependency (click's ``tests/test_imports.py`` does this for click), and no module
imports a package above its own layer (read from the source with :mod:`ast`).

The fresh interpreters are forked, one per import, from a Python that has loaded numpy,
pandas and scipy.stats and nothing else of its own: those light dependencies take
about half a second to load, and there are 70 imports to check. None of them is heavy,
so a heavy module in a child can only come from the import under test.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

HEAVY = ["tensorflow", "sqlalchemy", "slack_sdk", "apscheduler", "pyspark", "mlflow", "fastapi"]

# package -> the driftd packages it must not import
FORBIDDEN = {
    "storage": {"monitor", "alerts", "retrain", "driftd"},
    "monitor": {"alerts", "retrain", "driftd"},
    "monitor/drift": {"storage", "alerts", "retrain", "driftd"},  # pure statistics
    "monitor/concept": {"storage", "alerts", "retrain", "driftd"},
    "alerts": {"driftd"},
    "retrain": {"driftd"},
}


# Reads one statement (JSON) a line; runs each in a forked child, which answers with
# the top-level names of its modules, or the error, on a line starting with MARK.
MARK = "loaded-after: "
FORKING = f"""
import json, os, sys, traceback
sys.path.insert(0, {str(ROOT)!r})
import numpy, pandas, scipy.stats
for line in sys.stdin:
    sys.stdout.flush()
    pid = os.fork()
    if pid == 0:
        try:
            exec(json.loads(line), {{}})
            answer = {{"loaded": sorted({{name.split(".")[0] for name in sys.modules}})}}
        except BaseException:
            answer = {{"error": traceback.format_exc()}}
        sys.stdout.write({MARK!r} + json.dumps(answer) + "\\n")
        sys.stdout.flush()
        os._exit(0)
    os.waitpid(pid, 0)
"""

_forking: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True, scope="module")
def _stop_forking() -> Iterator[None]:
    yield
    for proc in _forking:
        proc.communicate(timeout=60)  # end of input: it exits
    _forking.clear()


def loaded_after(statement: str) -> set[str]:
    """Top-level names of the modules loaded by ``statement`` in a fresh interpreter
    (forked: see the module's docstring)."""
    if not _forking:
        _forking.append(
            subprocess.Popen(
                [sys.executable, "-c", FORKING],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                cwd=ROOT,
            )
        )
    proc = _forking[0]
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(statement) + "\n")
    proc.stdin.flush()
    for line in proc.stdout:
        if line.startswith(MARK):
            answer = json.loads(line[len(MARK) :])
            assert "error" not in answer, answer["error"]
            return set(answer["loaded"])
    raise AssertionError(f"the forking interpreter ended (exit code {proc.wait()})")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def monitor_modules() -> list[str]:
    return sorted(
        _module_name(path)
        for path in (ROOT / "monitor").rglob("*.py")
        if path.name != "spark.py"  # the Spark backend: pyspark is what it is for
    )


@pytest.mark.parametrize("module", monitor_modules())
def test_no_monitor_module_loads_a_heavy_dependency(module: str) -> None:
    loaded = loaded_after(f"import {module}")
    assert "monitor" in loaded
    assert loaded.isdisjoint(HEAVY), sorted(loaded.intersection(HEAVY))


@pytest.mark.parametrize(
    "module", sorted(_module_name(path) for path in (ROOT / "alerts").rglob("*.py"))
)
def test_no_alerts_module_loads_a_heavy_dependency(module: str) -> None:
    """alerts works through its protocol (alerts/abc.py) on SQLAlchemy-free rows and
    results; the Slack client is loaded by the sink that sends."""
    loaded = loaded_after(f"import {module}")
    assert loaded.isdisjoint(HEAVY), sorted(loaded.intersection(HEAVY))


# what alerts may import of storage: rows, results and errors, no repository
ALERTS_STORAGE = {"storage.alert_rows", "storage.results", "storage.errors"}


def test_alerts_depends_on_no_concrete_storage_class() -> None:
    found = []
    for path in sorted((ROOT / "alerts").rglob("*.py")):
        module = _module_name(path)
        source = path.read_text(encoding="utf-8")
        for name in set(imported_modules(source, module, is_package=path.name == "__init__.py")):
            if name.split(".")[0] == "storage" and not any(
                name == allowed or name.startswith(f"{allowed}.") for allowed in ALERTS_STORAGE
            ):
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    assert sorted(found) == []


def test_the_spark_backend_loads_pyspark_and_no_other_heavy_dependency() -> None:
    loaded = loaded_after("import monitor.spark")
    others = set(HEAVY) - {"pyspark"}
    assert loaded.isdisjoint(others), sorted(loaded.intersection(others))


def test_storage_package_loads_no_sqlalchemy() -> None:
    loaded = loaded_after("import storage, storage.errors")
    assert "storage" in loaded
    assert "sqlalchemy" not in loaded
    assert loaded.isdisjoint(HEAVY), sorted(loaded.intersection(HEAVY))


def imported_modules(source: str, module: str, *, is_package: bool = False) -> Iterator[str]:
    """Absolute names of the modules that ``source`` (the code of ``module``) imports.

    Relative imports are resolved against ``module``; ``importlib.import_module("x")``
    and ``__import__("x")`` with a literal name count as imports too.
    """
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            yield name
            yield from (f"{name}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            arg = node.args[0]
            if called in {"import_module", "__import__"} and isinstance(arg, ast.Constant):
                if isinstance(arg.value, str):
                    yield arg.value


def violations(package: str) -> list[str]:
    """Imports of the packages ``package`` (a folder: ``monitor/drift``) must not use."""
    found = []
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no Python files under {package}/"
    for path in files:
        module = _module_name(path)
        source = path.read_text(encoding="utf-8")
        is_package = path.name == "__init__.py"
        for name in set(imported_modules(source, module, is_package=is_package)):
            top = name.split(".")[0]
            if top in FORBIDDEN[package]:
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    return sorted(found)


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_dependencies_point_one_way(package: str) -> None:
    assert violations(package) == []


@pytest.mark.parametrize(
    ("source", "module", "expected"),
    [
        ("import driftd.cli", "storage.x", {"driftd.cli"}),
        ("from monitor import records", "storage.x", {"monitor", "monitor.records"}),
        ("from . import schema", "storage.x", {"storage", "storage.schema"}),
        ("from ..monitor import ingest", "storage.x", {"monitor", "monitor.ingest"}),
        ("import importlib\nimportlib.import_module('alerts.slack')", "monitor.x",
         {"importlib", "alerts.slack"}),
        ("def f():\n    from driftd import config\n", "retrain.x", {"driftd", "driftd.config"}),
    ],
)  # fmt: skip
def test_the_import_reader(source: str, module: str, expected: set[str]) -> None:
    assert set(imported_modules(source, module)) == expected
