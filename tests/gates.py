"""Named events that workflow code under test waits on, so a test holds a step open exactly as long
as it needs instead of sleeping (each engine re-imports the workflow files; this module stays)."""

from __future__ import annotations

import threading
from collections import defaultdict

_events: defaultdict[str, threading.Event] = defaultdict(threading.Event)


def gate(name: str) -> threading.Event:
    return _events[name]


def release_all() -> None:
    """Open every gate (a step still waiting must not outlive its test) and forget them."""
    for event in _events.values():
        event.set()
    _events.clear()
