"""asyncio imported without ssl (cli/lazy_ssl.py): TLS still works, through asyncio and through httpx."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

CLIENT = """
import sys
from ductape_cli.cli.lazy_ssl import deferred, import_asyncio

import_asyncio()
import asyncio
print("before", "ssl" in sys.modules, deferred())


async def main(port):
    # ssl=True: asyncio itself makes the context, with nobody having imported ssl
    reader, writer = await asyncio.open_connection("localhost", port, ssl=True)
    writer.write(b"GET / HTTP/1.1\\r\\nHost: localhost\\r\\n\\r\\n")
    await writer.drain()
    print("asyncio", (await reader.read()).decode().rsplit("\\n", 1)[-1])
    writer.close()
    import os, ssl
    import httpx  # what the action and notification components call with

    trust = ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    async with httpx.AsyncClient(verify=trust) as client:
        print("httpx", (await client.get(f"https://localhost:{port}/")).text)


asyncio.run(main(int(sys.argv[1])))
print("after", "ssl" in sys.modules, deferred())
"""


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A local HTTPS server with a self-signed certificate for `localhost` (made with the openssl CLI)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"]
        + ["-addext", "subjectAltName=DNS:localhost"],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(4096)
                    tls.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                    )
            except (OSError, ssl.SSLError):
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], cert
    server.close()


def test_tls_works_after_asyncio_was_imported_without_ssl(tls_server: tuple[int, Path]) -> None:
    port, cert = tls_server
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "SSL_CERT_FILE": str(cert)}
    done = subprocess.run(
        [sys.executable, "-c", CLIENT, str(port)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:4] == [
        "before False True",
        "asyncio ok",
        "httpx ok",
        "after True False",
    ]


def test_plain_sockets_work_while_ssl_is_deferred() -> None:
    """The `sock_*` calls check `isinstance(sock, ssl.SSLSocket)`: that loads ssl, and nothing breaks."""
    probe = """
import socket, sys
from ductape_cli.cli.lazy_ssl import deferred, import_asyncio
import_asyncio()
import asyncio
assert "ssl" not in sys.modules and deferred()
async def main():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_sendall(a, b"ping")
    print((await loop.sock_recv(b, 4)).decode(), deferred())
asyncio.run(main())
"""
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ping False"


def test_nothing_is_deferred_when_ssl_is_already_loaded() -> None:
    probe = (
        "import ssl, sys\n"
        "from ductape_cli.cli.lazy_ssl import deferred, import_asyncio\n"
        "import_asyncio()\n"
        "import asyncio.base_events as b\n"
        "print(deferred(), b.ssl is ssl)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == "False True", done.stderr
