"""The token (every API route refuses without it), CORS, `[serve]` config, and the `serve` command."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import Project, ductape_cmd, ductape_subprocess_env
from tests.server.conftest import Served, tls


def api_routes(served: Served) -> list[tuple[str, str]]:
    import httpx

    schema = httpx.get(served.url + "/api/openapi.json", headers=served.headers()).json()
    routes = []
    for path, methods in schema["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        routes.extend((method.upper(), concrete) for method in methods)
    return routes


def test_every_api_route_refuses_a_missing_or_wrong_token(served: Served) -> None:
    import httpx

    routes = api_routes(served)
    assert len(routes) >= 20
    with httpx.Client(
        verify=tls()
    ) as client:  # no token of its own: each request sends its headers
        for method, path in routes:
            for headers in (
                {},
                {"Authorization": "Bearer wrong-token-wrong-token"},
                {"Authorization": "Basic abc"},
            ):
                response = client.request(method, served.url + path, headers=headers, json={})
                assert response.status_code == 401, (method, path, response.text)
                assert response.json()["error"]["code"] == "UNAUTHORIZED"
                assert response.headers["www-authenticate"] == "Bearer"


def test_public_files_need_no_token(served: Served) -> None:
    import httpx

    sdk = httpx.get(served.url + "/sdk.js")
    assert sdk.status_code == 200 and sdk.headers["content-type"].startswith("text/javascript")
    assert "export class Ductape" in sdk.text
    assert (
        httpx.get(served.url + "/api/openapi.json").status_code == 401
    )  # the schema is part of the API
    assert (
        httpx.get(served.url + "/api/docs").status_code == 404
    )  # no pages that load scripts from a CDN
    assert httpx.get(served.url + "/").status_code == 200  # the dashboard (issue 21)


def test_cors_preflight_and_simple_requests(served: Served) -> None:
    import httpx

    preflight = {
        "Origin": "http://app.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    allowed = httpx.options(served.url + "/api/workflows/runs", headers=preflight)
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "http://app.example"
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert "POST" in allowed.headers["access-control-allow-methods"]
    refused = httpx.options(
        served.url + "/api/workflows/runs", headers={**preflight, "Origin": "http://evil.example"}
    )
    assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
    listed = httpx.get(
        served.url + "/api/workflows/runs",
        headers={**served.headers(), "Origin": "http://app.example"},
    )
    assert (
        listed.status_code == 200
        and listed.headers["access-control-allow-origin"] == "http://app.example"
    )


def test_token_is_made_once_with_mode_0600_or_taken_from_the_environment(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ductape_cli.config import load_config
    from ductape_cli.errors import InvalidInput
    from ductape_cli.server.settings import settings_for, token_path

    monkeypatch.delenv("DUCTAPE_TOKEN", raising=False)
    config = load_config(project.root)
    first, created = settings_for(config, "127.0.0.1")
    assert created and first.token and len(first.token) >= 32
    path = token_path(config)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, created_again = settings_for(config, "127.0.0.1")
    assert not created_again and again.token == first.token
    monkeypatch.setenv("DUCTAPE_TOKEN", "from-the-environment-123")
    assert settings_for(config, "0.0.0.0")[0].token == "from-the-environment-123"
    monkeypatch.setenv("DUCTAPE_TOKEN", "short")
    with pytest.raises(InvalidInput, match="at least 16"):
        settings_for(config, "127.0.0.1")
    assert settings_for(config, "::1", auth=False)[0].token is None
    with pytest.raises(InvalidInput, match="without a token"):
        settings_for(config, "0.0.0.0", auth=False)


@pytest.mark.parametrize(
    "table, message",
    [
        ('[serve]\ncors = "http://x"\n', "cors must be a list"),
        ("[serve]\nmax_body_bytes = 0\n", "max_body_bytes must be a positive integer"),
        ("[serve]\nport = 1\n", "unknown key 'port'"),
    ],
)
def test_bad_serve_table_is_a_config_error_with_its_line(
    project: Project, table: str, message: str
) -> None:
    from ductape_cli.config import load_config
    from ductape_cli.errors import ConfigError
    from ductape_cli.server.settings import settings_for

    with open(project.root / "ductape.toml", "a", encoding="utf-8") as handle:
        handle.write("\n" + table)
    with pytest.raises(ConfigError, match=message) as error:
        settings_for(load_config(project.root), "127.0.0.1")
    assert "ductape.toml:" in error.value.message


def test_serve_off_loopback_without_a_token_is_refused(cli: Any, project: Project) -> None:
    result = cli("serve", "--host", "0.0.0.0", "--no-auth")
    assert result.exit_code == 2
    assert "without a token" in result.stderr and "Traceback" not in result.stderr


def test_other_commands_do_not_import_the_server() -> None:
    code = "import sys; from ductape_cli.cli.app import build; build(); print(sorted(m for m in ('fastapi', 'uvicorn', 'starlette', 'ductape_cli.server') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_serve_command_prints_the_new_token_once(project: Project) -> None:
    """`ductape serve` as a process: the first start prints the token, the second does not; SIGTERM stops it."""
    import socket

    import httpx

    from tests.process.helpers import wait_for

    project.write(
        "flows",
        "from ductape_cli import workflow\n\n@workflow('noop')\nasync def noop(ctx):\n    return 1\n",
    )
    env = {k: v for k, v in ductape_subprocess_env(project.root).items() if k != "DUCTAPE_TOKEN"}
    outputs = []
    for _ in range(2):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        proc = subprocess.Popen(
            ductape_cmd("serve", "--port", str(port), "--no-worker"),
            cwd=project.root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:

            def up(port: int = port) -> bool:
                try:
                    return (
                        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
                    )
                except httpx.HTTPError:
                    return False

            wait_for(up, timeout=60, what="serve to listen")
        finally:
            proc.terminate()
            out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        outputs.append(out)
    token = (project.root / ".ductape" / "serve.token").read_text().strip()
    assert token in outputs[0] and "shown only this once" in outputs[0]
    assert token not in outputs[1] and "serving http://127.0.0.1:" in outputs[1]


def test_serve_without_its_extra_is_one_line_and_writes_nothing(
    project: Any, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a)
    )
    result = cli("serve", "--port", "0")
    assert result.exit_code == 2
    assert (
        result.stderr.strip()
        == "ductape: ductape serve needs uvicorn: pip install 'ductape[serve]'"
    )
    assert not (project.root / ".ductape").exists()  # no token made, no store
