"""ductape.toml's parse cache (toml_cache.py) and the sha256 that avoids hashlib (digest.py)."""

from __future__ import annotations

import hashlib
import json
import math
import tomllib
from pathlib import Path

import pytest

from ductape_cli.digest import sha256
from ductape_cli.toml_cache import CACHE_NAME, parse_toml

DOC = (
    '[project]\nname = "p"\nratio = 0.5\nbig = 12345678901234567890\n\n[envs.dev]\nactive = true\n'
)


def test_a_hit_is_what_tomllib_gives(tmp_path: Path) -> None:
    (tmp_path / ".ductape").mkdir()
    first = parse_toml(DOC, tmp_path)
    cache = tmp_path / ".ductape" / CACHE_NAME
    assert cache.stat().st_mode & 0o777 == 0o600
    kept = json.loads(cache.read_text(encoding="utf-8"))
    kept["doc"]["project"]["name"] = "from the cache"  # proves the next call reads it
    cache.write_text(json.dumps(kept), encoding="utf-8")
    assert first == tomllib.loads(DOC)
    assert parse_toml(DOC, tmp_path)["project"]["name"] == "from the cache"


def test_any_edit_is_a_miss(tmp_path: Path) -> None:
    (tmp_path / ".ductape").mkdir()
    parse_toml(DOC, tmp_path)
    edited = DOC.replace('"p"', '"q"')  # same length: timestamps and sizes would not tell
    assert parse_toml(edited, tmp_path)["project"]["name"] == "q"


def test_values_survive_the_json_round_trip(tmp_path: Path) -> None:
    (tmp_path / ".ductape").mkdir()
    text = "a = inf\nb = -0.0\nc = 1.0\nd = [1, 'x', {e = false}]\n"
    parse_toml(text, tmp_path)
    again = parse_toml(text, tmp_path)
    assert again == tomllib.loads(text)
    assert (
        math.isinf(again["a"]) and math.copysign(1, again["b"]) == -1 and type(again["c"]) is float
    )


def test_dates_and_no_folder_mean_no_cache(tmp_path: Path) -> None:
    assert parse_toml(DOC, tmp_path) == tomllib.loads(DOC)
    assert not (tmp_path / ".ductape").exists()  # never created here
    (tmp_path / ".ductape").mkdir()
    assert parse_toml("when = 2026-11-30\n", tmp_path) == tomllib.loads("when = 2026-11-30\n")
    assert not (tmp_path / ".ductape" / CACHE_NAME).exists()


def test_a_broken_cache_is_parsed_over_and_bad_toml_still_raises(tmp_path: Path) -> None:
    (tmp_path / ".ductape").mkdir()
    (tmp_path / ".ductape" / CACHE_NAME).write_text("{not json", encoding="utf-8")
    assert parse_toml(DOC, tmp_path) == tomllib.loads(DOC)
    with pytest.raises(tomllib.TOMLDecodeError):
        parse_toml("[project\n", tmp_path)


def test_sha256_is_hashlibs() -> None:
    data = b"ductape" * 1000
    assert sha256(data).hexdigest() == hashlib.sha256(data).hexdigest()
    digest = sha256(b"a")
    digest.update(b"b")
    assert digest.hexdigest() == hashlib.sha256(b"ab").hexdigest()
