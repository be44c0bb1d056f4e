"""Find and import workflow modules, each under its own module name, and collect their definitions."""

from __future__ import annotations

import importlib.util
import sys
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from ductape_cli import definition as definition_module
from ductape_cli.definition import WorkflowDefinition
from ductape_cli.digest import sha256
from ductape_cli.errors import DefinitionError, WorkflowNotFound

_MODULE_PREFIX = "ductape_workflows"
# Importing swaps the process-wide definition collector: one import at a time (engines on several threads).
_IMPORT_LOCK = threading.RLock()


@dataclass
class ModuleError:
    path: Path
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else str(self.path)
        return f"{where}: {self.message}"


@dataclass
class LoadedModule:
    path: Path
    source_hash: str
    definitions: list[WorkflowDefinition]


@dataclass
class Registry:
    """The workflows of a project: what imported, and what failed to."""

    folder: Path
    modules: list[LoadedModule] = field(default_factory=list)
    errors: list[ModuleError] = field(default_factory=list)
    by_tag: dict[str, WorkflowDefinition] = field(default_factory=dict)
    module_of: dict[str, LoadedModule] = field(default_factory=dict)

    def get(self, tag: str) -> WorkflowDefinition:
        if tag in self.by_tag:
            return self.by_tag[tag]
        for error in self.errors:
            if isinstance(error, ModuleError) and "defined twice" not in error.message:
                raise DefinitionError(
                    f"unknown workflow {tag!r}; a workflow module failed to import: {error}"
                )
        known = ", ".join(sorted(self.by_tag)) or "none"
        raise WorkflowNotFound(f"unknown workflow {tag!r} (defined in {self.folder}: {known})")

    def add(self, module: LoadedModule) -> None:
        self.modules.append(module)
        for wf in module.definitions:
            if wf.tag in self.by_tag:
                other = self.module_of[wf.tag].path
                self.errors.append(
                    ModuleError(
                        module.path,
                        wf.source_line,
                        f"workflow {wf.tag!r} defined twice: here and in {other}",
                    )
                )
                continue
            self.by_tag[wf.tag] = wf
            self.module_of[wf.tag] = module


def module_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.rglob("*.py")
        if not any(
            part.startswith((".", "_")) and part != "__init__.py"
            for part in p.relative_to(folder).parts
        )
        and p.name != "__init__.py"
    )


def source_hash(path: Path) -> str:
    return sha256(path.read_bytes()).hexdigest()[:16]


def import_module_file(path: Path, folder: Path) -> LoadedModule:
    """Import one file as ``ductape_workflows.<relative.name>``; raise ModuleError-bearing DefinitionError."""
    relative = path.relative_to(folder).with_suffix("")
    name = ".".join((_MODULE_PREFIX, *relative.parts)).replace("-", "_")
    project_root = str(folder.parent)
    if project_root not in sys.path:
        sys.path.insert(0, project_root)
    with _IMPORT_LOCK:
        return _import_locked(path, folder, name)


def _import_locked(path: Path, folder: Path, name: str) -> LoadedModule:
    collected: list[WorkflowDefinition] = []
    previous = definition_module._collector
    definition_module._collector = collected
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise DefinitionError(f"{path}: cannot be imported")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        # No bytecode cache for workflow modules: an edit within the same second and
        # size as the cached one (common under `ductape dev`) would load stale code.
        writes_bytecode, sys.dont_write_bytecode = sys.dont_write_bytecode, True
        try:
            spec.loader.exec_module(module)
        except BaseException as exc:
            sys.modules.pop(name, None)
            if isinstance(exc, KeyboardInterrupt):
                raise
            raise _module_error(path, exc) from None
        finally:
            sys.dont_write_bytecode = writes_bytecode
    finally:
        definition_module._collector = previous
    return LoadedModule(path=path, source_hash=source_hash(path), definitions=collected)


class ModuleImportError(DefinitionError):
    def __init__(self, error: ModuleError) -> None:
        super().__init__(f"workflow module failed to import: {error}")
        self.error = error


def _module_error(path: Path, exc: BaseException) -> ModuleImportError:
    if (
        isinstance(exc, SyntaxError)
        and exc.filename
        and Path(exc.filename).resolve() == path.resolve()
    ):
        return ModuleImportError(ModuleError(path, exc.lineno, f"SyntaxError: {exc.msg}"))
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename).resolve() == path.resolve():
            line = frame.lineno
    message = exc.message if isinstance(exc, DefinitionError) else str(exc)
    one_line = " ".join(message.split())
    return ModuleImportError(ModuleError(path, line, f"{type(exc).__name__}: {one_line}"))


def discover(folder: Path) -> Registry:
    """Import every workflow module under `folder`; failures are collected, not raised."""
    registry = Registry(folder=folder)
    for path in module_files(folder):
        try:
            registry.add(import_module_file(path, folder))
        except ModuleImportError as exc:
            registry.errors.append(exc.error)
    return registry


def load_one(folder: Path, path: Path) -> Registry:
    """Import just one module (the fast path when the store already knows where a tag lives)."""
    registry = Registry(folder=folder)
    registry.add(import_module_file(path, folder))
    return registry


def trusted_module(folder: Path, hint: str | None) -> Path | None:
    """The workflow module at `hint` (a path the store remembered) if discovery would import it too.

    The store must never choose which code runs: the hint is resolved (no
    `..`, no symlink out) and accepted only when it is one of the modules
    under the workflows folder; otherwise None (full discovery decides).
    """
    if not hint:
        return None
    try:
        path = Path(hint).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    root = folder.resolve()
    if not path.is_relative_to(root):
        return None
    return path if path in {p.resolve() for p in module_files(root)} else None
