"""Sizes written for humans (``10MB``) as byte counts."""

from __future__ import annotations

import re

UNITS = {
    "": 1,
    "b": 1,
    "kb": 1024,
    "kib": 1024,
    "mb": 1024**2,
    "mib": 1024**2,
    "gb": 1024**3,
    "gib": 1024**3,
}
SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


class SizeError(ValueError):
    """A size that cannot be read."""


def parse_size(value: int | str) -> int:
    """``10MB`` -> 10485760 (KB, MB, GB are powers of 1024; KiB, MiB, GiB too)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value <= 0:
            raise SizeError(f"size must be positive, got {value}")
        return value
    match = SIZE.match(str(value))
    unit = match.group(2).lower() if match else ""
    if not match or unit not in UNITS:
        raise SizeError(f"expected a size such as 10MB or 512KB, got {value!r}")
    size = int(float(match.group(1)) * UNITS[unit])
    if size <= 0:
        raise SizeError(f"size must be positive, got {value!r}")
    return size
