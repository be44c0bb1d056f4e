"""`ctx.storage.upload/download/delete`: files in a folder per storage (`[storage.X] path`).

Keys are relative paths inside that folder; a key that could leave it (`..`,
an absolute path, a symlink pointing out) is refused with `InvalidInput`.
Text comes back as text, anything else as base64 (`encoding` says which), so
results stay JSON for the journal. A download over `journal_limit` bytes
(default 64 KiB) is journaled as ``{file_key, size, sha256}`` without the
content, which is read back from the folder when the call is replayed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import inspect
import mimetypes
import os
import re
import secrets
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from ductape_cli.components.errors import StorageError
from ductape_cli.components.runtime import Component, check_mapping, check_retries, seed_style
from ductape_cli.errors import InvalidInput

_TEXT_TYPES = ("application/json", "application/xml", "application/javascript", "image/svg+xml")


class StorageComponent(Component):
    kind = "storage"

    @seed_style
    def upload(
        self,
        storage: str,
        event: str | None = None,
        input: Mapping[str, Any] | None = None,
        *,
        retries: int | None = None,
    ) -> Any:
        """Write `input.buffer` (bytes or base64) or `input.content` (text) as `input.fileName`.

        Returns ``{url, file_key, size, mime_type, storage}``.
        """
        check_retries(retries)
        root, prefix = self._root(storage, event)
        values = check_mapping(input, "input")
        key = prefix + _key(values, "fileName", "file_name", "file_key", "key")
        data = _content(values)
        limit = self.config.storage(storage).max_size
        if limit is not None and len(data) > limit:
            raise InvalidInput(f"storage {storage}: {len(data)} bytes is over max_size {limit}")
        mime = values.get("mimeType") or values.get("mime_type") or _guess(key)
        target = safe_path(root, key)
        recorded_input = {k: v for k, v in values.items() if k not in ("buffer", "content")}
        recorded_input["size"] = len(data)
        recorded = {"storage": storage, "event": event, "input": recorded_input}

        async def work() -> Any:
            await asyncio.to_thread(_write, root, target, data)
            return {
                "storage": storage,
                "file_key": key,
                "url": target.as_uri(),
                "size": len(data),
                "mime_type": mime,
            }

        return self._dispatch(self._label(storage, event, "upload"), recorded, work)

    def _locate(
        self, storage: str, event: str | None, input: Mapping[str, Any] | None
    ) -> tuple[Mapping[str, Any], str, Any]:
        """The call's input, the file key it names, and its path inside the storage folder (never outside)."""
        root, prefix = self._root(storage, event)
        values = check_mapping(input, "input")
        key = prefix + _key(values, "file_key", "fileKey", "key", "fileName")
        return values, key, safe_path(root, key)

    @seed_style
    def download(
        self, storage: str, event: str | None = None, input: Mapping[str, Any] | None = None
    ) -> Any:
        """Read `input.file_key`: ``{file_key, content, encoding, size, mime_type, url, sha256}``.

        A file over the storage's `journal_limit` is journaled as a reference
        (no `content`); the handler still gets the content, read back from the
        folder (and checked against the sha256) when the call is replayed.
        """
        values, key, target = self._locate(storage, event, input)
        limit = self.config.storage(storage).journal_limit
        fresh: dict[str, Any] = {}

        async def work() -> Any:
            data = await asyncio.to_thread(_read, storage, key, target)
            mime = _guess(key)
            content, encoding = _encode(data, mime)
            result = {
                "storage": storage,
                "file_key": key,
                "content": content,
                "encoding": encoding,
                "size": len(data),
                "mime_type": mime,
                "url": target.as_uri(),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
            if len(data) <= limit:
                return result
            fresh["content"] = content
            return {**result, "content": None, "content_ref": True}

        def restore(result: Any) -> Any:
            if not (isinstance(result, dict) and result.get("content_ref")):
                return result
            content = fresh.pop("content", None)
            if content is None:  # replayed: the journal has the reference only
                data = _read(storage, key, target)
                if hashlib.sha256(data).hexdigest() != result["sha256"]:
                    raise StorageError(
                        f"storage {storage}: {key!r} changed since this run downloaded it (sha256 differs)"
                    )
                content = _encode(data, result["mime_type"])[0]
            return {k: v for k, v in result.items() if k != "content_ref"} | {"content": content}

        called = self._dispatch(
            self._label(storage, event, "download"),
            {"storage": storage, "event": event, "input": values},
            work,
        )
        if inspect.isawaitable(called):
            return _then(called, restore)
        return restore(called)

    @seed_style
    def delete(
        self, storage: str, event: str | None = None, input: Mapping[str, Any] | None = None
    ) -> Any:
        """Remove `input.file_key`; ``{file_key, deleted}`` (False when it was not there)."""
        values, key, target = self._locate(storage, event, input)

        async def work() -> Any:
            try:
                await asyncio.to_thread(target.unlink)
            except FileNotFoundError:
                return {"storage": storage, "file_key": key, "deleted": False}
            return {"storage": storage, "file_key": key, "deleted": True}

        return self._dispatch(
            self._label(storage, event, "delete"),
            {"storage": storage, "event": event, "input": values},
            work,
        )

    def _root(self, storage: str, event: str | None) -> tuple[Path, str]:
        spec = self.config.storage(storage)
        prefix = ""
        if spec.events:
            if event is None:
                raise InvalidInput(
                    f"storage {storage} declares events; pass event= (one of {', '.join(spec.events)})"
                )
            prefix = self.config.event("storage", storage, spec, event).prefix
        return self.config.path(spec.path), prefix

    @staticmethod
    def _label(storage: str, event: str | None, operation: str) -> str:
        return f"storage:{storage}:{event or operation}"


async def _then(called: Any, restore: Any) -> Any:
    result = await called
    if isinstance(result, dict) and result.get("content_ref"):
        return await asyncio.to_thread(restore, result)
    return result


def _read(storage: str, key: str, target: Path) -> bytes:
    try:
        return target.read_bytes()
    except FileNotFoundError:
        raise StorageError(f"storage {storage}: no file {key!r}") from None
    except IsADirectoryError:
        raise StorageError(f"storage {storage}: {key!r} is a folder") from None


def _key(values: dict[str, Any], *names: str) -> str:
    for name in names:
        if values.get(name):
            key = values[name]
            if not isinstance(key, str):
                raise InvalidInput(f"{name} must be a string, got {type(key).__name__}")
            return key
    raise InvalidInput(f"input needs {names[0]}")


def safe_path(root: Path, key: str) -> Path:
    """The file for `key` inside `root`; refuses anything that could land outside it."""
    if not key or "\x00" in key:
        raise InvalidInput(f"invalid file key {key!r}")
    normal = key.replace("\\", "/")
    if (
        normal.startswith("/")
        or re.match(r"^[A-Za-z]:", normal)
        or PurePosixPath(normal).is_absolute()
    ):
        raise InvalidInput(
            f"file key {key!r} is an absolute path; keys are relative to the storage folder"
        )
    parts = normal.split("/")
    if ".." in parts:
        raise InvalidInput(f"file key {key!r} escapes the storage folder ('..' is not allowed)")
    if any(p in ("", ".") for p in parts):
        raise InvalidInput(f"invalid file key {key!r} (empty or '.' path segment)")
    base = root.resolve()
    target = base.joinpath(*parts)
    # Follows symlinks already on disk: a link (or linked folder) pointing out is refused.
    if not target.resolve().is_relative_to(base):
        raise InvalidInput(f"file key {key!r} resolves outside the storage folder (symlink)")
    return target


def _content(values: dict[str, Any]) -> bytes:
    if "buffer" in values and values["buffer"] is not None:
        buffer = values["buffer"]
        if isinstance(buffer, (bytes, bytearray, memoryview)):
            return bytes(buffer)
        if isinstance(buffer, str):
            try:
                return base64.b64decode(buffer, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidInput("input.buffer must be bytes or a base64 string") from None
        raise InvalidInput(
            f"input.buffer must be bytes or a base64 string, got {type(buffer).__name__}"
        )
    content = values.get("content")
    if isinstance(content, str):
        if values.get("encoding") == "base64":
            try:
                return base64.b64decode(content, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidInput("input.content is not valid base64") from None
        return content.encode("utf-8")
    if isinstance(content, (bytes, bytearray)):
        return bytes(content)
    raise InvalidInput("upload needs input.buffer (bytes or base64) or input.content (text)")


def _guess(key: str) -> str:
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


def _encode(data: bytes, mime: str) -> tuple[str, str]:
    if mime.startswith("text/") or mime in _TEXT_TYPES or mime == "application/octet-stream":
        try:
            return data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            pass
    return base64.b64encode(data).decode("ascii"), "base64"


def _write(root: Path, target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.parent.resolve().is_relative_to(root.resolve()):  # a link swapped in meanwhile
        raise InvalidInput(f"file key resolves outside the storage folder: {target}")
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, target)
