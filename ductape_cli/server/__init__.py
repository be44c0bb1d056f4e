"""`ductape serve`: the HTTP and WebSocket front door over the engine's public API.

Imported only by `serve` (FastAPI, uvicorn and websockets are the `serve` extra).
"""
