"""Run the ``driftd`` CLI and SIGKILL it at its K-th database statement or commit.

``python crash_hook.py K PREFIX driftd-args...`` counts the statements SQLAlchemy is about
to execute (only those starting with PREFIX when PREFIX is not empty) and the commits it
is about to send; the process kills itself, with no chance to clean up, just before the
K-th one. This puts crashes inside transactions deterministically, where a kill from
outside lands wherever the scheduler happens to be. K = 0 never kills.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine


def main() -> None:
    at, prefix = int(sys.argv[1]), sys.argv[2].upper()
    del sys.argv[1:3]
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

    from driftd.cli import main as cli

    cli()


if __name__ == "__main__":
    main()
