"""`ctx.fallback.execute(fallback=, input=, timeout=)`: try each provider's action in order.

The first provider that answers wins: ``{provider: {app, event}, result,
failed: [...]}``. When all fail, `FallbackError` lists each provider's error.
`input` is the action input (`body`, `params`, `query`, `headers`); a plain
object without those keys is sent as the body. `timeout` applies to each
provider's call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ductape_cli.components.action import INPUT_KEYS, Request, recorded_input, send
from ductape_cli.components.errors import ActionError, FallbackError, scrub
from ductape_cli.components.runtime import Component, check_mapping, seed_style, without_secrets


class FallbackComponent(Component):
    kind = "fallback"

    @seed_style
    def execute(
        self,
        fallback: str,
        input: Mapping[str, Any] | None = None,
        *,
        timeout: int | str | None = None,
    ) -> Any:
        spec = self.config.fallback(fallback)
        values = check_mapping(input, "input")
        if values and not set(values) <= set(INPUT_KEYS):
            values = {"body": values}
        action = self.runtime.action
        requests: list[Request] = [
            action.prepare(
                p.app,
                p.event,
                values,
                retries=p.retries,
                timeout=timeout if timeout is not None else p.timeout,
            )
            for p in spec.providers
        ]
        # Any provider's `secret` fields are secret for all: the same input goes to each.
        fields = [f for r in requests for f in r.secret_fields]
        secrets = [s for r in requests for s in r.secrets]
        recorded = {"fallback": fallback, "input": recorded_input(values, fields, secrets)}

        async def work() -> Any:
            failed: list[dict[str, Any]] = []
            for request in requests:
                try:
                    result = await send(request)
                except ActionError as exc:
                    error = scrub(exc.message, secrets)
                    failed.append(
                        {
                            "app": request.app,
                            "event": request.event,
                            "error": error,
                            "status_code": exc.status_code,
                        }
                    )
                    continue
                return {
                    "provider": {"app": request.app, "event": request.event},
                    "result": result,
                    "failed": failed,
                }
            lines = "; ".join(f"{f['app']}.{f['event']}: {f['error']}" for f in failed)
            raise FallbackError(
                scrub(f"fallback {fallback}: all {len(failed)} providers failed: {lines}", secrets),
                failed,
            )

        return self._dispatch(
            f"fallback:{fallback}", recorded, without_secrets(work, fields, secrets)
        )
