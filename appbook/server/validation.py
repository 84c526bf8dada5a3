"""Field rules: turn an incoming value into its stored form, or say what is wrong.

The same rules check field defaults at publish time, record values on create and update,
and rows of bulk imports (which arrive as text, hence ``from_text``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

from .definitions.models import FieldDef

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
FILE_ID = re.compile(r"^[0-9a-f]{32}$")
TRUE_WORDS = frozenset({"true", "1", "yes", "y", "on"})
FALSE_WORDS = frozenset({"false", "0", "no", "n", "off"})


class Invalid(ValueError):
    """A value breaks a field rule; the message says which."""


def coerce(field: FieldDef, value: Any, *, from_text: bool = False) -> Any:
    """The stored form of ``value`` for ``field``; raises :class:`Invalid`.

    ``None`` passes through (``required`` is checked by the caller, which knows whether
    the write is partial).
    """
    if value is None or (from_text and value == ""):
        return None
    if field.type == "array":
        return _array(field, value, from_text)
    out = _SCALARS[field.type](field, value, from_text)
    _check_bounds(field, out)
    return out


def _array(field: FieldDef, value: Any, from_text: bool) -> list[Any]:
    if from_text and isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise Invalid(f"expected a JSON list, got {value!r}") from exc
    if not isinstance(value, list | tuple):
        raise Invalid(f"expected a list, got {_kind(value)}")
    item = FieldDef(type=field.of or "string", to=field.to)
    items = []
    for i, v in enumerate(value):
        if v is None:
            raise Invalid(f"item {i}: must not be null")
        try:
            items.append(_SCALARS[item.type](item, v, from_text))
        except Invalid as exc:
            raise Invalid(f"item {i}: {exc}") from None
    if field.min_length is not None and len(items) < field.min_length:
        raise Invalid(f"must have at least {field.min_length} items")
    if field.max_length is not None and len(items) > field.max_length:
        raise Invalid(f"must have at most {field.max_length} items")
    return items


def _check_bounds(field: FieldDef, value: Any) -> None:
    if field.type in ("integer", "number"):
        if field.min is not None and value < field.min:
            raise Invalid(f"must be at least {field.min}")
        if field.max is not None and value > field.max:
            raise Invalid(f"must be at most {field.max}")
    if isinstance(value, str) and field.type in ("string", "text", "email", "uri"):
        if field.min_length is not None and len(value) < field.min_length:
            raise Invalid(f"must be at least {field.min_length} characters")
        if field.max_length is not None and len(value) > field.max_length:
            raise Invalid(f"must be at most {field.max_length} characters")
        if field.pattern is not None and not compiled(field.pattern).search(value):
            raise Invalid(f"does not match the pattern {field.pattern}")


@lru_cache(maxsize=512)
def compiled(pattern: str) -> re.Pattern[str]:
    """A cached compiled regular expression."""
    return re.compile(pattern)


def _kind(value: Any) -> str:
    names = {str: "text", bool: "a boolean", int: "an integer", float: "a number"}
    name = names.get(type(value), type(value).__name__)
    return f"{name} {value!r}" if isinstance(value, str | int | float) else name


def _text(field: FieldDef, value: Any, from_text: bool) -> str:
    if not isinstance(value, str):
        raise Invalid(f"expected text, got {_kind(value)}")
    return value


def _email(field: FieldDef, value: Any, from_text: bool) -> str:
    text = _text(field, value, from_text).strip()
    if not EMAIL.match(text):
        raise Invalid(f"{value!r} is not a valid email address")
    return text


def _uri(field: FieldDef, value: Any, from_text: bool) -> str:
    text = _text(field, value, from_text).strip()
    parts = urlsplit(text)
    scheme_ok = bool(re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*$", parts.scheme))
    needs_host = parts.scheme in ("http", "https", "ftp", "ws", "wss")
    if not scheme_ok or (needs_host and not parts.netloc) or not (parts.netloc or parts.path):
        raise Invalid(f"{value!r} is not a valid URI (e.g. https://example.org/page)")
    return text


def _integer(field: FieldDef, value: Any, from_text: bool) -> int:
    if from_text and isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise Invalid(f"expected an integer, got {value!r}") from None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"expected an integer, got {_kind(value)}")
    if not INT64_MIN <= value <= INT64_MAX:
        raise Invalid(f"{value} is out of range (64-bit integers)")
    return value


def _number(field: FieldDef, value: Any, from_text: bool) -> float:
    if from_text and isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise Invalid(f"expected a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(f"expected a number, got {_kind(value)}")
    if value != value or value in (float("inf"), float("-inf")):
        raise Invalid("must be a finite number")
    return float(value)


def _boolean(field: FieldDef, value: Any, from_text: bool) -> bool:
    if isinstance(value, bool):
        return value
    if from_text and isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
        return value.strip().lower() in TRUE_WORDS
    raise Invalid(f"expected true or false, got {_kind(value)}")


def _date(field: FieldDef, value: Any, from_text: bool) -> date:
    if isinstance(value, datetime):
        raise Invalid("expected a date, got a date and time")
    if isinstance(value, date):
        return value
    parsed: date = _parse(value, date.fromisoformat, "a date (YYYY-MM-DD)")
    return parsed


def _time(field: FieldDef, value: Any, from_text: bool) -> time:
    if isinstance(value, time):
        return value
    parsed: time = _parse(value, time.fromisoformat, "a time (HH:MM[:SS])")
    return parsed


def _datetime(field: FieldDef, value: Any, from_text: bool) -> datetime:
    if not isinstance(value, datetime):
        value = _parse(value, datetime.fromisoformat, "a date and time (ISO 8601)")
    assert isinstance(value, datetime)
    # Naive datetimes are taken as UTC; everything is stored in UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _parse(value: Any, parser: Callable[[str], Any], what: str) -> Any:
    if not isinstance(value, str):
        raise Invalid(f"expected {what}, got {_kind(value)}")
    try:
        return parser(value.strip())
    except ValueError:
        raise Invalid(f"expected {what}, got {value!r}") from None


def _enum(field: FieldDef, value: Any, from_text: bool) -> int | str:
    allowed = field.choice_values()
    if from_text and isinstance(value, str) and value not in allowed:
        value = next((c.value for c in field.choices or () if c.label == value), value)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or value not in allowed:
        shown = ", ".join(f"{c.value} ({c.label})" for c in field.choices or ())
        raise Invalid(f"{value!r} is not one of the choices: {shown}")
    return value  # type: ignore[no-any-return]


def _reference(field: FieldDef, value: Any, from_text: bool) -> int:
    if isinstance(value, dict) and "id" in value:
        value = value["id"]
    try:
        return _integer(field, value, from_text)
    except Invalid:
        raise Invalid(f"expected the id of a {field.to} record, got {_kind(value)}") from None


def _file(field: FieldDef, value: Any, from_text: bool) -> str:
    if isinstance(value, dict) and "id" in value:
        value = value["id"]
    if not isinstance(value, str) or not FILE_ID.match(value):
        raise Invalid(f"expected a file id, got {_kind(value)}")
    return value


def _json(field: FieldDef, value: Any, from_text: bool) -> Any:
    if from_text and isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise Invalid(f"invalid JSON: {exc.msg} at character {exc.pos}") from None
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise Invalid(f"not JSON-serialisable: {exc}") from None
    return value


_SCALARS: dict[str, Callable[[FieldDef, Any, bool], Any]] = {
    "string": _text,
    "text": _text,
    "email": _email,
    "uri": _uri,
    "integer": _integer,
    "number": _number,
    "boolean": _boolean,
    "date": _date,
    "time": _time,
    "datetime": _datetime,
    "enum": _enum,
    "reference": _reference,
    "file": _file,
    "json": _json,
}
