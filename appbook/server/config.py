"""Where the engine finds its database, Redis and home folder.

One :class:`EngineConfig` serves the server extension, kernels, workers and the CLI. Each
value comes, in order, from explicit configuration (traitlets config or arguments), then an
``APPBOOK_*`` environment variable, then the embedded default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from traitlets import Unicode, default
from traitlets.config import Configurable


class EngineConfig(Configurable):
    """Locations of the data layer, shared by every Appbook process."""

    home = Unicode(
        help="Folder for the embedded database, the file store and the key file. "
        "Default: $APPBOOK_HOME, else .appbook/ in the working directory.",
    ).tag(config=True)

    database_url = Unicode(
        help="SQLAlchemy URL of the database, e.g. postgresql+psycopg://user@host/db. "
        "Default: $APPBOOK_DATABASE_URL, else SQLite at {home}/appbook.db.",
    ).tag(config=True)

    redis_url = Unicode(
        help="Redis URL for the event bus (redis://host:6379/0). Empty means in-process "
        "events. Default: $APPBOOK_REDIS_URL.",
    ).tag(config=True)

    files_url = Unicode(
        help="Where files are stored: a local folder path or an fsspec URL such as "
        "s3://bucket/prefix. Default: $APPBOOK_FILES_URL, else {home}/files.",
    ).tag(config=True)

    key_file = Unicode(
        help="File holding the at-rest encryption keys (created with mode 0600). "
        "Default: $APPBOOK_KEY_FILE, else {home}/keys.json.",
    ).tag(config=True)

    @default("home")
    def _default_home(self) -> str:
        return os.environ.get("APPBOOK_HOME") or str(Path.cwd() / ".appbook")

    @default("database_url")
    def _default_database_url(self) -> str:
        env = os.environ.get("APPBOOK_DATABASE_URL")
        if env:
            return env
        return f"sqlite:///{Path(self.home).resolve() / 'appbook.db'}"

    @default("redis_url")
    def _default_redis_url(self) -> str:
        return os.environ.get("APPBOOK_REDIS_URL", "")

    @default("files_url")
    def _default_files_url(self) -> str:
        return os.environ.get("APPBOOK_FILES_URL") or str(Path(self.home).resolve() / "files")

    @default("key_file")
    def _default_key_file(self) -> str:
        return os.environ.get("APPBOOK_KEY_FILE") or str(Path(self.home).resolve() / "keys.json")

    def environment(self) -> dict[str, str]:
        """The ``APPBOOK_*`` variables that let another process reach this data layer."""
        env = {
            "APPBOOK_HOME": str(Path(self.home).resolve()),
            "APPBOOK_DATABASE_URL": self.database_url,
            "APPBOOK_FILES_URL": self.files_url,
            "APPBOOK_KEY_FILE": self.key_file,
        }
        if self.redis_url:
            env["APPBOOK_REDIS_URL"] = self.redis_url
        from .outbound import OutboundConfig, SmtpConfig  # their traits read this config too

        env.update(OutboundConfig(parent=self).environment())
        env.update(SmtpConfig(parent=self).environment())
        return env

    @classmethod
    def from_values(cls, **values: Any) -> EngineConfig:
        """A config with the given values set and the rest defaulted (``None`` skipped)."""
        return cls(**{k: v for k, v in values.items() if v is not None})
