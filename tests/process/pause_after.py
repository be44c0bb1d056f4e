"""Run the ductape CLI with a pause injected after one store method returns: a crash window.

`python -m tests.process.pause_after METHOD MARKER -- ARGS...` runs `ductape ARGS...`;
the first time `SqliteStore.METHOD` returns, it writes MARKER and sleeps, so the test
can kill the process exactly between that write and whatever the command does next.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from ductape_cli.store.sqlite import SqliteStore


def pause_after(method: str, marker: Path) -> None:
    original = getattr(SqliteStore, method)

    def paused(self: SqliteStore, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        marker.write_text(method)
        time.sleep(120)  # the test kills us here
        return result

    setattr(SqliteStore, method, paused)


if __name__ == "__main__":
    method, marker, separator, *args = sys.argv[1:]
    assert separator == "--", "usage: pause_after METHOD MARKER -- ARGS..."
    pause_after(method, Path(marker))
    sys.argv = ["ductape", *args]
    from ductape_cli.cli.app import main

    main()
