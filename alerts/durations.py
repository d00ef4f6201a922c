"""Human durations (``90s``, ``5m``, ``2h``, ``1d``) used by the rules file and the CLI.

>>> parse_duration_s("5m")
300
>>> parse_duration_s("1h30m")
5400
>>> parse_duration_s(45)
45
>>> format_duration_s(5400)
'1h30m'
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["format_duration_s", "parse_duration_s"]

_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART: Final = re.compile(r"(\d+)([smhdw])")


def parse_duration_s(value: str | int | float) -> int:
    """Seconds in ``value``: a number of seconds or a string like ``2h`` or ``1h30m``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"duration {value} is negative")
        return int(value)
    text = str(value).strip().lower().replace(" ", "")
    if text.isdigit():
        return int(text)
    parts = _PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{value!r} is not a duration: use e.g. 90s, 5m, 2h, 1d or 1h30m")
    return sum(int(n) * _UNITS[u] for n, u in parts)


def format_duration_s(seconds: int) -> str:
    """The shortest ``1d2h3m4s`` spelling of ``seconds``."""
    if seconds <= 0:
        return "0s"
    out = []
    for unit in ("d", "h", "m", "s"):
        n, seconds = divmod(seconds, _UNITS[unit])
        if n:
            out.append(f"{n}{unit}")
    return "".join(out)
