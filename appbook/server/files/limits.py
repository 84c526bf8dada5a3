"""What a stored file may be: a clean name and folder, an accepted type, a size under the limit.

Names and folders are labels kept in the database; they never become storage paths (objects
are stored under their id), but they are cleaned anyway so nobody downloading a file gets a
name such as ``../../etc/passwd``.
"""

from __future__ import annotations

import mimetypes
import unicodedata
from collections.abc import Sequence
from pathlib import PurePosixPath

from ..definitions.sizes import SizeError, parse_size
from ..errors import ValidationError

__all__ = [
    "DEFAULT_MEDIA_TYPE",
    "SizeError",
    "check_accept",
    "clean_folder",
    "clean_name",
    "format_size",
    "media_type_for",
    "parse_size",
]

DEFAULT_MEDIA_TYPE = "application/octet-stream"
MAX_NAME = 255


def _printable(text: str) -> str:
    """``text`` without control and format characters (newlines, NUL, bidi overrides)."""
    return "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf"))


def clean_name(name: str, *, field: str = "name") -> str:
    """The last part of ``name`` (either slash), without control characters, at most 255.

    Raises :class:`ValidationError` when nothing usable is left.
    """
    base = _printable(str(name)).replace("\\", "/").rsplit("/", 1)[-1].strip()
    if base in ("", ".", ".."):
        raise ValidationError({field: [f"file name {name!r} is empty once cleaned"]})
    if len(base) > MAX_NAME:
        suffix = PurePosixPath(base).suffix
        suffix = suffix if len(suffix) <= 16 else ""
        base = base[: MAX_NAME - len(suffix)] + suffix
    return base


def clean_folder(folder: str, *, field: str = "folder") -> str:
    """``folder`` as ``a/b/c``: no empty or ``.`` parts, no ``..``, no control characters."""
    parts = [p.strip() for p in _printable(folder).replace("\\", "/").split("/")]
    parts = [p for p in parts if p not in ("", ".")]
    if ".." in parts:
        raise ValidationError({field: [f"folder {folder!r} may not contain '..'"]})
    cleaned = "/".join(parts)
    if len(cleaned) > MAX_NAME:
        raise ValidationError({field: [f"folder is longer than {MAX_NAME} characters"]})
    return cleaned


def media_type_for(name: str, given: str | None, *, field: str = "file") -> str:
    """The given media type (lower-cased), else one guessed from ``name``, else octet-stream."""
    if given is None or not given.strip():
        guessed, _encoding = mimetypes.guess_type(name, strict=False)
        return guessed or DEFAULT_MEDIA_TYPE
    media_type = given.strip().lower()
    base = _base_type(media_type)
    kind, _, sub = base.partition("/")
    if not kind or not sub or "*" in base or len(media_type) > MAX_NAME:
        raise ValidationError({field: [f"media type {given!r} is not of the form type/subtype"]})
    return media_type


def _base_type(media_type: str) -> str:
    return media_type.split(";", 1)[0].strip().lower()


def _accepts(pattern: str, media_type: str, name: str) -> bool:
    pattern = pattern.strip().lower()
    if pattern.startswith("."):
        return name.lower().endswith(pattern)
    if pattern in ("*", "*/*"):
        return True
    if pattern.endswith("/*"):
        return media_type.startswith(pattern[:-1])
    return media_type == _base_type(pattern)


def check_accept(
    media_type: str, name: str, accept: Sequence[str] | None, *, field: str = "file"
) -> None:
    """Refuse a type ``accept`` does not allow (exact types, ``image/*``, ``.pdf`` suffixes)."""
    if accept is None:
        return
    base = _base_type(media_type)
    if not any(_accepts(pattern, base, name) for pattern in accept):
        allowed = ", ".join(accept) or "nothing"
        raise ValidationError({field: [f"type {base} is not accepted (accepts {allowed})"]})


def format_size(size: int) -> str:
    """``10485760`` -> ``10 MB`` (1024-based, as :func:`parse_size` reads it)."""
    for unit, factor in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= factor:
            value = size / factor
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{size} B"
