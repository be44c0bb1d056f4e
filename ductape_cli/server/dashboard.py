"""The dashboard's static files: `/` is the page, `/dashboard/*` its modules and stylesheet.

Public like `/sdk.js`: the page holds no data; it asks for the token and calls the API.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

WEB = Path(__file__).resolve().parent.parent / "web"


def mount(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(
            WEB / "index.html",
            media_type="text/html; charset=utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    app.mount("/dashboard", StaticFiles(directory=WEB / "dashboard"), name="dashboard")
