"""Run by the lock tests in a separate process: take the training lock, say whether it
was taken (a file), and keep it until told to let go (another file)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from retrain.lock import single_flight
from storage.store import Store


def main(url: str, workspace: str, model: str, state: str, release: str) -> None:
    store = Store(url)
    with single_flight(store, model, workspace=Path(workspace)) as held:
        # written aside and renamed: the test never reads a half-written file
        Path(state + ".tmp").write_text("held" if held else "busy")
        os.replace(state + ".tmp", state)
        deadline = time.monotonic() + 60
        while not Path(release).exists():  # the test's signal, not a timing guess
            if time.monotonic() > deadline:
                sys.exit("never told to release the lock")
            time.sleep(0.01)
    store.dispose()


if __name__ == "__main__":
    main(*sys.argv[1:])
