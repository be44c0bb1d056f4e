"""Schedules over HTTP, for the dashboard: list with next fire times, show, pause, resume."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends

if TYPE_CHECKING:
    from ductape_cli.engine.engine import Engine


def router(engine: Engine, authorize: Callable[..., None]) -> APIRouter:
    """`/api/schedules`: the same engine calls as `ductape schedules list|show|pause|resume`."""
    from ductape_cli.engine import schedules

    api = APIRouter(prefix="/api/schedules", dependencies=[Depends(authorize)], tags=["schedules"])

    @api.get("", summary="Schedules made by `ductape dispatch`, with their next fire times")
    def list_schedules() -> dict[str, Any]:
        rows = schedules.list_all(engine)
        return {"count": len(rows), "schedules": rows}

    @api.get("/{job_id}", summary="One schedule with its next five fire times")
    def show(job_id: str) -> dict[str, Any]:
        return schedules.describe(engine, schedules.get(engine, job_id), upcoming=5)

    @api.post("/{job_id}/pause", summary="Stop a schedule firing until it is resumed")
    def pause(job_id: str) -> dict[str, Any]:
        return schedules.set_paused(engine, job_id, True)

    @api.post("/{job_id}/resume", summary="Let a paused schedule fire again (from now on)")
    def resume(job_id: str) -> dict[str, Any]:
        return schedules.set_paused(engine, job_id, False)

    return api
