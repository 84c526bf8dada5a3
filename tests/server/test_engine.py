"""The engine as a whole: events from writes, files in fields, faults, schema revision."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from appbook.server.config import EngineConfig
from appbook.server.engine import Appbook
from appbook.server.errors import Conflict, PayloadTooLarge, ServiceUnavailable, ValidationError
from appbook.server.events import RecordEvent, Subscription
from appbook.server.schema import HEAD, MIGRATIONS, VERSION_TABLE, SchemaOutdated


def drain(sub: Subscription, count: int, deadline: float = 10.0) -> list[RecordEvent]:
    """Wait (with a deadline, no sleeps) for ``count`` events."""
    events: list[RecordEvent] = []
    end = time.monotonic() + deadline
    while len(events) < count and time.monotonic() < end:
        event = sub.get(timeout=0.2)
        if event is not None:
            events.append(event)
    return events


def test_every_write_appends_an_event(published: Appbook) -> None:
    with published.bus.subscribe(component="items", since=0) as sub:
        items = published["items"]
        rec = items.create({"code": "E1", "qty": 1})
        items.update(rec["id"], {"qty": 2}, version=1)
        items.delete(rec["id"])
        events = drain(sub, 3)
    assert [(e.op, e.record_id, e.version, e.changed) for e in events] == [
        ("create", rec["id"], 1, ("active", "code", "price", "qty", "status")),
        ("update", rec["id"], 2, ("qty",)),
        ("delete", rec["id"], 3, ()),
    ]
    assert {e.actor for e in events} == {"tester"}
    assert events[0].seq < events[1].seq < events[2].seq


def test_failed_writes_append_no_event(published: Appbook) -> None:
    with pytest.raises(ValidationError):
        published["items"].create({"qty": -1})
    with published.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM appbook_events")).scalar_one() == 0


def test_catch_up_across_processes(published: Appbook, config: EngineConfig) -> None:
    """Another process writes while this one is away; it then catches up by seq."""
    seq = published.bus.subscribe(since=0)
    seq.close()
    start = 0
    code = textwrap.dedent(
        f"""
        from appbook.server.config import EngineConfig
        from appbook.server.engine import Appbook
        cfg = EngineConfig.from_values(home={config.home!r}, database_url={config.database_url!r}, redis_url="")
        with Appbook(cfg, actor="other") as app:
            for i in range(5):
                app["suppliers"].create({{"name": f"S{{i}}"}})
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    with published.bus.subscribe(component="suppliers", since=start) as sub:
        events = drain(sub, 5)
    assert [e.op for e in events] == ["create"] * 5
    assert {e.actor for e in events} == {"other"}
    assert len({e.record_id for e in events}) == 5


def test_live_events_from_another_process(published: Appbook, config: EngineConfig) -> None:
    with published.bus.subscribe(component="suppliers") as sub:
        code = textwrap.dedent(
            f"""
            from appbook.server.config import EngineConfig
            from appbook.server.engine import Appbook
            cfg = EngineConfig.from_values(home={config.home!r}, database_url={config.database_url!r}, redis_url="")
            with Appbook(cfg, actor="kernel") as app:
                app["suppliers"].create({{"name": "Live"}})
            """
        )
        subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
        (event,) = drain(sub, 1)
    assert (event.op, event.actor) == ("create", "kernel")


def test_file_fields_hold_stored_files(published: Appbook) -> None:
    info = published.files.put(b"%PDF-1.4 fake", name="scan.pdf", folder="items")
    assert info.created_by == "tester" and info.media_type == "application/pdf"
    rec = published["items"].create({"code": "F1", "scan": info.id})
    assert published.files.get(rec["scan"]) == b"%PDF-1.4 fake"
    assert [f.id for f in published.files.list("items")] == [info.id]
    with pytest.raises(PayloadTooLarge):
        published.files.put(io.BytesIO(b"x" * 2048), name="big.bin", max_size=1024)


def test_database_down_is_service_unavailable(tmp_path: Path) -> None:
    config = EngineConfig.from_values(
        home=str(tmp_path),
        database_url="postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2",
    )
    with pytest.raises(
        ServiceUnavailable,
        match=r"database postgresql\+psycopg://postgres@127.0.0.1:1/none.* is not reachable",
    ):
        Appbook(config)


def test_password_is_not_shown_when_database_is_down(tmp_path: Path) -> None:
    url = "postgresql+psycopg://postgres:s3cret@127.0.0.1:1/none?connect_timeout=2"
    with pytest.raises(ServiceUnavailable) as info:
        Appbook(EngineConfig.from_values(home=str(tmp_path), database_url=url))
    assert "s3cret" not in str(info.value)


def test_outdated_schema_names_the_fix(app: Appbook) -> None:
    with app.engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = '0000'"))
    with pytest.raises(SchemaOutdated, match="run `appbook db upgrade`"):
        Appbook(app.config)


def test_head_matches_the_migration_scripts() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD


def test_connect_finds_the_data_layer_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import appbook
    from appbook.kernels.client import disconnect_all

    monkeypatch.setenv("APPBOOK_HOME", str(tmp_path / "envhome"))
    monkeypatch.delenv("APPBOOK_DATABASE_URL", raising=False)
    monkeypatch.delenv("APPBOOK_REDIS_URL", raising=False)
    try:
        app = appbook.connect()
        assert app is appbook.connect()
        assert str(tmp_path / "envhome" / "appbook.db") in str(app.engine.url)
        assert appbook.connect(actor="ann").actor == "ann"
    finally:
        disconnect_all()


def test_redis_bus_carries_record_events_between_engines(
    published: Appbook, redis_url: str
) -> None:
    """Two engines (as two kernels would) meet on Redis: a write in one reaches the other."""
    cfg = published.config
    reader = Appbook(
        EngineConfig.from_values(home=cfg.home, database_url=cfg.database_url, redis_url=redis_url)
    )
    writer = Appbook(
        EngineConfig.from_values(home=cfg.home, database_url=cfg.database_url, redis_url=redis_url)
    )
    try:
        with reader.bus.subscribe(component="suppliers") as sub:
            rec = writer["suppliers"].create({"name": "Via Redis"})
            (event,) = drain(sub, 1)
        assert (event.record_id, event.op) == (rec["id"], "create")
    finally:
        writer.close()
        reader.close()


def test_attach_enforces_the_field_limits(published: Appbook) -> None:
    items = published["items"]
    rec = items.create({"code": "AT"})
    saved = items.attach(rec["id"], "scan", b"%PDF-1.4", name="a.pdf", version=1)
    assert published.files.stat(saved["scan"]).name == "a.pdf" and saved["version"] == 2
    with pytest.raises(ValidationError, match="type text/plain is not accepted"):
        items.attach(rec["id"], "scan", b"hello", name="notes.txt")
    with pytest.raises(PayloadTooLarge):
        items.attach(rec["id"], "scan", b"x" * (1024 * 1024 + 1), name="big.pdf")
    with pytest.raises(Conflict):
        items.attach(rec["id"], "scan", b"%PDF-1.4", name="b.pdf", version=1)  # stale
    assert [f.name for f in published.files.list("items")] == ["a.pdf"]  # nothing left over
    with pytest.raises(ValidationError, match="not a file field"):
        items.attach(rec["id"], "code", b"x", name="x.pdf")


def test_record_writes_check_the_stored_file_against_the_field(published: Appbook) -> None:
    text = published.files.put(b"plain", name="notes.txt")
    with pytest.raises(ValidationError) as info:
        published["items"].create({"code": "FT", "scan": text.id})
    assert info.value.errors == {
        "scan": [
            "file 'notes.txt': type text/plain is not accepted (accepts application/pdf, image/*)"
        ]
    }
