"""Plain lines for the operations commands: prune, import, store backup and vacuum."""

from __future__ import annotations

from typing import Any


def exact(ms: int) -> str:
    """A duration in the largest unit that divides it exactly, as users write it: 30d, 36h, 90m, 1500ms."""
    for unit, size in (
        ("w", 604_800_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ):
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def prune_lines(report: dict[str, Any]) -> list[str]:
    verb = "would remove" if report["dry_run"] else "removed"
    age = exact(report["older_than_ms"])
    lines = [
        f"{verb} {report['count']} run{'s' if report['count'] != 1 else ''} ended more than {age} ago"
    ]
    for tag, count in report["by_workflow"].items():
        lines.append(f"  {tag}: {count}")
    if report["by_status"]:
        lines.append(
            "  by status: "
            + ", ".join(f"{status} {count}" for status, count in report["by_status"].items())
        )
    return lines


def import_lines(report: dict[str, Any]) -> list[str]:
    lines = [
        f"imported {len(report['imported'])} run{'s' if len(report['imported']) != 1 else ''}: {', '.join(report['imported'])}"
    ]
    for old, new in report["renamed"].items():
        lines.append(f"  {old} → {new} (id was taken)")
    lines.append(f"definitions: {report['definitions']}")
    return lines


def size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"
