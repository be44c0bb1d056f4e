"""ductape, driven from Python the way an application would: a project folder and an `Engine`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shapes import ductape_module, toml


def write_project(folder: Path, durability: str) -> Path:
    """A project folder with ductape.toml and workflows/bench.py; returns its root."""
    (folder / "workflows").mkdir(parents=True, exist_ok=True)
    (folder / "ductape.toml").write_text(toml(durability), encoding="utf-8")
    (folder / "workflows" / "bench.py").write_text(ductape_module(), encoding="utf-8")
    return folder


class DuctapeSide:
    """One project, one store, one `Engine` (thread-safe: a store connection and loop per thread)."""

    def __init__(self, folder: Path, durability: str) -> None:
        from ductape_cli.config import load_config
        from ductape_cli.engine.engine import Engine

        self.root = write_project(folder, durability)
        self.engine = Engine(load_config(self.root))

    def warm_up(self, tags: list[str]) -> None:
        """First run of each workflow: discovery, compiling the definition, opening the store."""
        for tag in tags:
            self.run(tag)

    def run(self, tag: str, input: Any = None) -> dict[str, Any]:
        result = self.engine.run(tag, input or {})
        if result["status"] != "completed":
            raise RuntimeError(
                f"ductape run of {tag} ended {result['status']}: {result.get('error')}"
            )
        return result

    def close(self) -> None:
        self.engine.close()
