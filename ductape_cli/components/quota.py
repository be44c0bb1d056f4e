"""`ctx.quota.execute(quota=, input={key})`: a token bucket of `limit` per `per`, per key.

The bucket lives in ductape's store and is taken under `BEGIN IMMEDIATE`, so
every process and worker on the same store shares it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ductape_cli.components.runtime import Component, check_mapping, seed_style
from ductape_cli.errors import InvalidInput

DEFAULT_KEY = "global"


class QuotaComponent(Component):
    kind = "quota"

    @seed_style
    def execute(
        self,
        quota: str,
        input: Mapping[str, Any] | None = None,
        *,
        timeout: int | str | None = None,
    ) -> Any:
        """Take one token for `input.key`: ``{allowed, remaining, reset_at (ms), limit, key}``.

        `timeout` is accepted for the seed's signature; the store's busy timeout bounds the wait.
        """
        spec = self.config.quota(quota)
        values = check_mapping(input, "input")
        key = values.get("key", DEFAULT_KEY)
        if not isinstance(key, (str, int)) or isinstance(key, bool) or key == "":
            raise InvalidInput(f"quota {quota}: input.key must be a string, got {key!r}")
        key = str(key)
        runtime = self.runtime

        async def work() -> Any:
            allowed, remaining, reset_at = runtime.store.take_quota(
                quota, key, spec.limit, spec.per / 1000, runtime.clock.now()
            )
            return {
                "allowed": allowed,
                "remaining": remaining,
                "reset_at": int(reset_at * 1000),
                "limit": spec.limit,
                "key": key,
            }

        return self._dispatch(f"quota:{quota}", {"quota": quota, "input": {"key": key}}, work)

    check = execute
