"""`ctx.transform`: small data helpers from the seed. `now`, `uuid` and `random` are journaled."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ductape_cli.engine.marks import Marks

# The seed's date tokens, longest first so "YYYY" wins over "YY".
_DATE_TOKENS = [
    ("YYYY", "%Y"),
    ("YY", "%y"),
    ("MM", "%m"),
    ("DD", "%d"),
    ("HH", "%H"),
    ("mm", "%M"),
    ("ss", "%S"),
]
_TOKEN_RE = re.compile("|".join(t for t, _ in _DATE_TOKENS))


class Transform:
    def __init__(self, marks: Marks) -> None:
        self._marks = marks

    @staticmethod
    def upper(value: Any) -> str:
        return str(value).upper()

    @staticmethod
    def lower(value: Any) -> str:
        return str(value).lower()

    @staticmethod
    def trim(value: Any) -> str:
        return str(value).strip()

    @staticmethod
    def parse_json(text: str) -> Any:
        return json.loads(text)

    parseJson = parse_json  # noqa: N815 - the seed's spelling

    @staticmethod
    def stringify(value: Any) -> str:
        return json.dumps(value, separators=(",", ":"))

    def now(self) -> int:
        """Milliseconds since the epoch, journaled so replay sees the same value."""
        clock = self._marks.clock
        return int(self._marks.value("now", lambda: int(clock.now() * 1000)))

    def uuid(self) -> str:
        import uuid  # here, not at the top: `uuid` imports `platform`, start-up `run` need not pay

        return str(self._marks.value("uuid", lambda: str(uuid.uuid4())))

    def random(self) -> float:
        import random  # here, not at the top, like `uuid`

        return float(self._marks.value("random", random.random))

    @staticmethod
    def format_date(value: Any, fmt: str = "YYYY-MM-DD") -> str:
        """Format ms-since-epoch, an ISO string or a datetime with tokens YYYY MM DD HH mm ss."""
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, (int, float)):
            moment = datetime.fromtimestamp(value / 1000, tz=UTC)
        else:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        strftime = dict(_DATE_TOKENS)
        return _TOKEN_RE.sub(lambda m: moment.strftime(strftime[m.group(0)]), fmt)

    formatDate = format_date  # noqa: N815

    @staticmethod
    def length(value: Any) -> int:
        return len(value) if value is not None else 0

    @staticmethod
    def size(value: Any) -> int:
        return len(value) if value is not None else 0

    @staticmethod
    def split(value: str, separator: str = ",") -> list[str]:
        return str(value).split(separator)

    @staticmethod
    def join(values: Any, separator: str = ",") -> str:
        return separator.join(str(v) for v in values)
