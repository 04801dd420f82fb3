"""Run the ``driftd`` CLI and SIGKILL it at its K-th database statement or commit.

``python crash_hook.py K PREFIX driftd-args...`` counts the statements SQLAlchemy is about
to execute (only those starting with PREFIX when PREFIX is not empty) and the commits it
is about to send; the process kills itself, with no chance to clean up, just before the
K-th one. This puts crashes inside transactions deterministically, where a kill from
outside lands wherever the scheduler happens to be. K = 0 never kills.

:func:`forked` runs the same in a process forked from a server that has imported driftd
once: a real process, killed for real, without paying Python's and driftd's start-up
(about 1.5 s, most of each killed run) for every one of the dozens of kills.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine


def install(at: int, prefix: str) -> None:
    """SIGKILL this process just before its ``at``-th statement starting with ``prefix``
    (any statement, and commits too, when ``prefix`` is empty)."""
    prefix = prefix.upper()
    seen = 0

    def tick() -> None:
        nonlocal seen
        seen += 1
        if seen == at:
            os.kill(os.getpid(), signal.SIGKILL)

    def before_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith(prefix):
            tick()

    event.listen(Engine, "before_cursor_execute", before_execute)
    if not prefix:
        event.listen(Engine, "commit", lambda conn: tick())


def main() -> None:
    at, prefix = int(sys.argv[1]), sys.argv[2]
    del sys.argv[1:3]
    install(at, prefix)

    from driftd.cli import main as cli

    cli()


def _forked_cli(at: int, prefix: str, args: list[str], output: str) -> None:
    for fd, suffix in ((1, ".out"), (2, ".err")):
        with open(output + suffix, "wb") as fh:
            os.dup2(fh.fileno(), fd)
    sys.argv = ["driftd", *args]
    install(at, prefix)

    from driftd.cli import main as cli

    cli()


def forked(at: int, prefix: str, args: list[str], output: Path) -> BaseProcess:
    """Start ``driftd ARGS`` as ``main`` does, with stdout and stderr written to
    ``OUTPUT.out`` and ``OUTPUT.err``; the process's ``exitcode`` is -9 when killed."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["crash_hook", "driftd.cli", "driftd.app", "psycopg"])
    process = context.Process(target=_forked_cli, args=(at, prefix, args, str(output)))
    process.start()
    return process


if __name__ == "__main__":
    main()
