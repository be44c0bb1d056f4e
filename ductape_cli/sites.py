"""A place in the code (`file:line`) as people read it: relative to the working directory."""

from __future__ import annotations

from pathlib import Path


def display_path(site: str) -> str:
    """A ``file:line`` shown relative to the working directory when inside it."""
    path, _, line = site.rpartition(":")
    if not line.isdigit():
        path, line = site, ""
    try:
        shown = str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        shown = path
    return f"{shown}:{line}" if line else shown
