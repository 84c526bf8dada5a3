"""The file store: files encrypted at rest, their metadata in the database.

>>> info = store.put(open("report.pdf", "rb"), name="report.pdf", folder="reports", actor="ann")
>>> store.get(info.id)[:4]
b'%PDF'

Bytes go to a local folder (the default, under ``APPBOOK_HOME``) or any fsspec URL such as
``s3://bucket/prefix``; see :mod:`.store` for the layout and :mod:`.crypto` for the format.
"""

from __future__ import annotations

from ..errors import CorruptFile, KeyFileError
from .crypto import KeyRing
from .limits import SizeError, format_size, parse_size
from .store import DEFAULT_MAX_SIZE, FileData, FileInfo, FileStore

__all__ = [
    "DEFAULT_MAX_SIZE",
    "CorruptFile",
    "FileData",
    "FileInfo",
    "FileStore",
    "KeyFileError",
    "KeyRing",
    "SizeError",
    "format_size",
    "parse_size",
]
