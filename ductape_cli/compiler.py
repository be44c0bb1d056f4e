"""`ductape define`: turn a workflow definition into a stored, versioned schema."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ductape_cli.definition import WorkflowDefinition


def source_hash_of(wf: WorkflowDefinition) -> str:
    """Hash of the module source and options: when it changes, the definition is stale."""
    digest = hashlib.sha256()
    if wf.source_file and Path(wf.source_file).is_file():
        digest.update(Path(wf.source_file).read_bytes())
    else:
        digest.update(getattr(wf.handler, "__qualname__", wf.tag).encode())
    digest.update(json.dumps(wf.options_summary(), sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def compile_definition(wf: WorkflowDefinition, source_hash: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "tag": wf.tag,
        "name": wf.name,
        "options": wf.options_summary(),
        "source_file": wf.source_file,
        "source_line": wf.source_line,
        "steps": [],
    }
    schema["version"] = hashlib.sha256(json.dumps(schema, sort_keys=True, default=str).encode()).hexdigest()[:16]
    schema["source_hash"] = source_hash or source_hash_of(wf)
    return schema
