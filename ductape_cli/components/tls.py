"""One verifying TLS context per process for outgoing HTTP (actions, webhooks).

httpx builds a new context for every client, loading the whole CA bundle
(~25 ms of CPU), so a workflow calling an API once per run paid that on every
call. The context is built on first use and honours SSL_CERT_FILE and
SSL_CERT_DIR as httpx does.
"""

from __future__ import annotations

import functools
import ssl


@functools.cache
def client_context() -> ssl.SSLContext:
    import httpx

    return httpx.create_ssl_context()
