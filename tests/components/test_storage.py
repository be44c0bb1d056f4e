"""ctx.storage: upload/download/delete in a folder, and keys that try to leave it."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import pytest

from ductape_cli.errors import InvalidInput

STORAGE = """
[storage.documents]
path = "storage/documents"
max_size = 1000

[storage.invoices]
path = "storage/invoices"
[storage.invoices.events.upload-invoice]
prefix = "invoices/"
[storage.invoices.events.get-invoice]
prefix = "invoices/"
"""


def test_upload_download_delete_in_a_workflow(make: Any, journal: Any) -> None:
    engine = make(
        STORAGE,
        """
        import base64
        from ductape_cli import workflow

        @workflow("files")
        async def files(ctx):
            pdf = base64.b64encode(b"%PDF-1.4 \\x00\\xff binary").decode()
            up = await ctx.storage.upload(storage="invoices", event="upload-invoice",
                                          input={"buffer": pdf, "fileName": f"invoice-{ctx.input['id']}.pdf", "mimeType": "application/pdf"})
            down = await ctx.storage.download(storage="invoices", event="get-invoice", input={"file_key": f"invoice-{ctx.input['id']}.pdf"})
            note = await ctx.storage.upload(storage="documents", input={"content": "héllo", "fileName": "notes/a.txt"})
            text = await ctx.storage.download(storage="documents", input={"file_key": "notes/a.txt"})
            gone = await ctx.storage.delete(storage="documents", input={"file_key": "notes/a.txt"})
            again = await ctx.storage.delete(storage="documents", input={"file_key": "notes/a.txt"})
            return {"up": up, "down": down, "note": note, "text": text, "gone": gone, "again": again}
    """,
    )
    result = engine.run("files", {"id": 42})
    assert result["status"] == "completed", result["error"]
    out = result["output"]
    root = Path(engine.config.root)
    pdf = root / "storage" / "invoices" / "invoices" / "invoice-42.pdf"
    assert out["up"] == {
        "storage": "invoices",
        "file_key": "invoices/invoice-42.pdf",
        "url": pdf.resolve().as_uri(),
        "size": 18,
        "mime_type": "application/pdf",
    }
    assert pdf.read_bytes() == b"%PDF-1.4 \x00\xff binary"
    assert out["down"]["encoding"] == "base64"
    assert base64.b64decode(out["down"]["content"]) == pdf.read_bytes()
    assert (out["down"]["size"], out["down"]["mime_type"]) == (18, "application/pdf")
    assert out["note"]["size"] == len("héllo".encode())
    assert (out["text"]["content"], out["text"]["encoding"], out["text"]["mime_type"]) == (
        "héllo",
        "utf-8",
        "text/plain",
    )
    assert out["gone"]["deleted"] is True and out["again"]["deleted"] is False
    # The step records what was uploaded, not the file itself.
    assert journal(engine, result["workflow_id"])["storage:invoices:upload-invoice"].input[
        "input"
    ] == {
        "fileName": "invoice-42.pdf",
        "mimeType": "application/pdf",
        "size": 18,
    }


@pytest.mark.parametrize(
    "key",
    [
        "../escape.txt",
        "a/../../escape.txt",
        "/etc/passwd",
        "..\\escape.txt",
        "C:/Windows/x",
        "a//b",
        "./a",
        "a/./b",
        "",
    ],
)
@pytest.mark.parametrize("operation", ["upload", "download", "delete"])
def test_keys_that_leave_the_folder_are_refused(runtime: Any, key: str, operation: str) -> None:
    rt = runtime(STORAGE)
    field = "fileName" if operation == "upload" else "file_key"
    with pytest.raises(InvalidInput):
        getattr(rt.storage, operation)(
            storage="documents",
            input={field: key, "content": "x"} if key else {field: "", "content": "x"},
        )
    assert not (rt.config.root / "escape.txt").exists()


def test_symlinks_pointing_out_are_refused(
    runtime: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    rt = runtime(STORAGE)
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret.txt").write_text("top secret")
    folder = rt.config.root / "storage" / "documents"
    folder.mkdir(parents=True)
    (folder / "out").symlink_to(outside, target_is_directory=True)
    (folder / "secret-link.txt").symlink_to(outside / "secret.txt")
    (folder / "inside.txt").write_text("fine")
    (folder / "ok-link.txt").symlink_to(folder / "inside.txt")
    with pytest.raises(InvalidInput, match="resolves outside the storage folder"):
        rt.storage.upload(storage="documents", input={"fileName": "out/new.txt", "content": "x"})
    with pytest.raises(InvalidInput, match="resolves outside the storage folder"):
        rt.storage.download(storage="documents", input={"file_key": "secret-link.txt"})
    with pytest.raises(InvalidInput):
        rt.storage.delete(storage="documents", input={"file_key": "out/secret.txt"})
    assert (outside / "secret.txt").read_text() == "top secret"
    assert not (outside / "new.txt").exists()
    assert (
        asyncio.run(rt.storage.download(storage="documents", input={"file_key": "ok-link.txt"}))[
            "content"
        ]
        == "fine"
    )


def test_bad_uploads(runtime: Any) -> None:
    rt = runtime(STORAGE)
    with pytest.raises(InvalidInput, match="over max_size 1000"):
        rt.storage.upload(storage="documents", input={"fileName": "big.txt", "content": "x" * 1001})
    with pytest.raises(InvalidInput, match="base64"):
        rt.storage.upload(storage="documents", input={"fileName": "b.bin", "buffer": "not base64!"})
    with pytest.raises(InvalidInput, match="pass event="):
        rt.storage.upload(storage="invoices", input={"fileName": "x.pdf", "content": "x"})
    from ductape_cli.components import StorageError

    with pytest.raises(StorageError, match="no file 'missing.txt'"):
        asyncio.run(rt.storage.download(storage="documents", input={"file_key": "missing.txt"}))


BIG_FLOW = """
import hashlib
from ductape_cli import workflow

@workflow("big")
async def big(ctx):
    f = await ctx.storage.download(storage="files", input={"file_key": "big.bin"})
    await ctx.wait_for_signal("go")
    digest = await ctx.step("digest", lambda: hashlib.sha256(f["content"].encode()).hexdigest())
    return {"digest": digest, "size": f["size"], "sha256": f["sha256"]}
"""


def test_a_large_download_is_journaled_as_a_reference_and_read_back_on_replay(make: Any) -> None:
    import base64
    import hashlib
    import os

    engine = make('[storage.files]\npath = "files"\n', BIG_FLOW)
    folder = Path(engine.config.root) / "files"
    folder.mkdir()
    data = os.urandom(5_000_000)
    (folder / "big.bin").write_bytes(data)
    started = engine.run("big", {})
    assert started["status"] == "running"
    stored = sum(p.stat().st_size for p in Path(engine.store_path).parent.glob("state.db*"))
    step = next(
        r
        for r in engine.store.load_journal(started["workflow_id"]).values()
        if r.tag == "storage:files:download"
    )
    assert step.output["content"] is None and step.output["size"] == 5_000_000
    assert step.output["sha256"] == hashlib.sha256(data).hexdigest()
    assert stored < 1_000_000  # not 6.7 MB of base64

    # The handler runs again from the top after the signal: the download replays from the reference.
    done = engine.signal(started["workflow_id"], "go")
    assert done["status"] == "completed", done["error"]
    expected = hashlib.sha256(base64.b64encode(data)).hexdigest()
    assert done["output"] == {
        "digest": expected,
        "size": 5_000_000,
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def test_a_referenced_download_that_changed_fails_the_replay(make: Any) -> None:
    engine = make('[storage.files]\npath = "files"\njournal_limit = 10\n', BIG_FLOW)
    folder = Path(engine.config.root) / "files"
    folder.mkdir()
    (folder / "big.bin").write_bytes(b"first version of the file")
    started = engine.run("big", {})
    (folder / "big.bin").write_bytes(b"someone replaced the file")
    done = engine.signal(started["workflow_id"], "go")
    assert done["status"] == "failed"
    assert "'big.bin' changed since this run downloaded it" in done["error"]["message"]


def test_a_small_download_keeps_its_content_in_the_journal(runtime: Any) -> None:
    rt = runtime('[storage.files]\npath = "files"\n')
    asyncio.run(rt.storage.upload(storage="files", input={"fileName": "a.txt", "content": "hello"}))
    got = asyncio.run(rt.storage.download(storage="files", input={"file_key": "a.txt"}))
    assert (got["content"], got["encoding"], got["size"]) == ("hello", "utf-8", 5)
    assert "content_ref" not in got
