"""A tiny local stand-in for the sample's external APIs (inventory and payments), for offline runs.

    python workflows/_services/mock_apis.py          # serves http://127.0.0.1:8765 until Ctrl-C

Discovery skips folders starting with "_", so this is not a workflow module.
Behaviour the samples use: items named "out-of-stock" are unavailable; the
reservation of an item named "fragile" fails (so the payment is refunded); a
card "declined" is refused with 402; a receipt email without "@" is refused
with 400.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PORT = 8765


class MockApis(BaseHTTPRequestHandler):
    charges: dict[str, dict[str, Any]] = {}
    reservations: dict[str, list[Any]] = {}

    def log_message(self, format: str, *args: Any) -> None:
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}") if length else {}

    def _send(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self._body()
        path = self.path.split("?")[0]
        if path == "/inventory/availability":
            items = body.get("items") or []
            missing = [i for i in items if "out-of-stock" in str(i)]
            self._send(200, {"available": bool(items) and not missing, "missing": missing})
        elif path == "/inventory/reservations":
            items = body.get("items") or []
            if any("fragile" in str(i) for i in items):
                self._send(409, {"error": "cannot reserve fragile items today"})
                return
            reservation = f"res_{len(self.reservations) + 1}"
            self.reservations[reservation] = items
            self._send(201, {"id": reservation, "items": items})
        elif path == "/payments/charges":
            if body.get("card") == "declined":
                self._send(402, {"error": "card_declined", "message": "Card declined"})
            elif "@" not in str(body.get("receipt_email", "@")):
                self._send(
                    400,
                    {
                        "error": "invalid_email",
                        "message": f"invalid receipt email {body.get('receipt_email')!r}",
                    },
                )
            else:
                charge = {
                    "id": f"ch_{len(self.charges) + 1}",
                    "amount": body.get("amount"),
                    "status": "succeeded",
                }
                self.charges[charge["id"]] = charge
                self._send(201, charge)
        elif path.startswith("/payments/charges/") and path.endswith("/refund"):
            charge_id = path.split("/")[3]
            charge = self.charges.get(charge_id, {"id": charge_id})
            charge["status"] = "refunded"
            self._send(200, charge)
        else:
            self._send(404, {"error": f"no route {path}"})

    def do_DELETE(self) -> None:  # noqa: N802
        path = self.path.split("?")[0]
        if path.startswith("/inventory/reservations/"):
            self.reservations.pop(path.rsplit("/", 1)[1], None)
            self._send(200, {"released": path.rsplit("/", 1)[1]})
        else:
            self._send(404, {"error": f"no route {path}"})


class StandIn(ThreadingHTTPServer):
    """The server, stopped at once: `shutdown` wakes the waiting loop with one connection
    instead of waiting for `serve_forever`'s half-second poll to notice."""

    daemon_threads = True

    def __init__(self, port: int, verbose: bool) -> None:
        super().__init__(("127.0.0.1", port), MockApis)
        self.verbose = verbose
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name="mock-apis", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stopping:
            self.handle_request()  # blocks until a connection arrives; no polling

    def shutdown(self) -> None:
        self._stopping = True
        try:
            socket.create_connection(
                self.server_address[:2], timeout=5
            ).close()  # wakes handle_request
        except OSError:
            pass  # already closed
        self._thread.join(timeout=5)
        self.server_close()


def serve(port: int = PORT, *, verbose: bool = False) -> StandIn:
    """Start the mock APIs on a background thread (tests use port 0 for a free port)."""
    return StandIn(port, verbose)


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else PORT
    srv = serve(port, verbose=True)
    print(
        f"mock inventory and payments APIs on http://127.0.0.1:{srv.server_address[1]} (Ctrl-C to stop)"
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        srv.shutdown()
