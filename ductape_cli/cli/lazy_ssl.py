"""Import asyncio without importing `ssl` (~7 ms of `ductape run`); the real `ssl` loads on first use.

asyncio's base_events, selector_events and sslproto each do `try: import ssl /
except ImportError: ssl = None` and use the module only inside functions;
sslproto also derives `SSLAgainErrors` from it at import. With `ssl` blocked
while asyncio imports, those three hold None; `import_asyncio` then gives them
`_DeferredSsl`, which on its first attribute access (a TLS connection, the
`isinstance(sock, ssl.SSLSocket)` check of the `sock_*` calls) imports the real
`ssl` and puts it, and `SSLAgainErrors`, back in place. Code that imports
`ssl` itself gets the real module as always. Where asyncio looks different
(another Python), or asyncio or ssl is already loaded, nothing is deferred.
"""

from __future__ import annotations

import sys
import threading
import types
from importlib.util import find_spec
from typing import Any

_HOLDERS = ("asyncio.base_events", "asyncio.selector_events", "asyncio.sslproto")
_lock = threading.Lock()


class _DeferredSsl(types.ModuleType):
    """Stands in for `ssl` inside asyncio until something asks it for a name."""

    def __getattr__(self, name: str) -> Any:
        return getattr(restore(), name)


def restore() -> types.ModuleType:
    """Import the real `ssl` and give it back to asyncio (idempotent, thread-safe)."""
    import ssl

    with _lock:
        for name in _HOLDERS:
            holder = sys.modules[name]
            if holder.__dict__.get("ssl") is not ssl:
                vars(holder)["ssl"] = ssl
        sslproto = sys.modules["asyncio.sslproto"]
        if not hasattr(sslproto, "SSLAgainErrors"):
            vars(sslproto)["SSLAgainErrors"] = (ssl.SSLWantReadError, ssl.SSLSyscallError)
    return ssl


def deferred() -> bool:
    """Whether asyncio is still without the real `ssl`."""
    holder = sys.modules.get("asyncio.base_events")
    return holder is not None and isinstance(holder.__dict__.get("ssl"), _DeferredSsl)


def import_asyncio() -> None:
    """`import asyncio`, leaving `ssl` out until asyncio (or anything else) needs it."""
    if "asyncio" in sys.modules or "ssl" in sys.modules or find_spec("_ssl") is None:
        import asyncio  # noqa: F401 - nothing to gain (or no ssl to defer): the plain import

        return
    modules: dict[str, Any] = sys.modules
    modules["ssl"] = None  # `import ssl` raises ImportError
    try:
        import asyncio  # noqa: F401
    finally:
        if "ssl" in modules and modules["ssl"] is None:
            del modules["ssl"]
    holders = [sys.modules.get(name) for name in _HOLDERS]
    expected = all(h is not None and h.__dict__.get("ssl", False) is None for h in holders)
    if not expected or hasattr(sys.modules["asyncio.sslproto"], "SSLAgainErrors"):
        restore()  # not the asyncio this was written against: give it ssl now
        return
    stand_in = _DeferredSsl("ssl")
    for holder in holders:
        vars(holder)["ssl"] = stand_in
