"""SHA-256 for the definition and module hashes `run` checks, without `hashlib`'s start-up.

`import hashlib` loads OpenSSL's libcrypto (~3 ms, most of it on a short
`ductape run` that otherwise never touches OpenSSL). CPython's own SHA-256
module gives the same digests; `hashlib` stays the fallback where that module
is missing or named differently.
"""

from __future__ import annotations

from typing import Any


def sha256(data: bytes = b"") -> Any:
    """A `hashlib.sha256`-compatible hash object."""
    try:
        from _sha256 import sha256 as builtin  # CPython 3.11
    except ImportError:
        try:
            from _sha2 import sha256 as builtin  # CPython 3.12+
        except ImportError:
            from hashlib import sha256 as builtin
    return builtin(data)
