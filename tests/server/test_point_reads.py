"""The event-loop point reader returns exactly what RecordStore.get returns, or steps aside."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest

from appbook.server.engine import Appbook
from appbook.server.point_reads import MISS, PointReader, point_reader


def make_reader(app: Appbook) -> PointReader:
    reader = point_reader(app.engine, app.registry)
    assert reader is not None, f"no point reader for {app.engine.url}"
    return reader


def read(reader: PointReader, name: str, record_id: int) -> Any:
    async def go() -> Any:
        try:
            return await reader.get(name, record_id)
        finally:
            await reader.close()

    return asyncio.run(go())


def test_same_record_as_the_engine_for_every_field_type(published: Appbook) -> None:
    s = published["suppliers"].create({"name": "Acme", "email": "a@acme.example"})
    full = published["items"].create(
        {
            "code": "AB-1",
            "notes": "long text",
            "qty": 3,
            "price": 9.75,
            "active": False,
            "day": "2026-11-25",
            "at_time": "13:45:00",
            "due": "2026-12-01T10:00:00+02:00",
            "status": 1,
            "colour": "green",
            "supplier": s["id"],
            "tags": ["a", "b"],
            "buyers": [s["id"]],
            "link": "https://example.org/x",
            "contact": "someone@example.org",
            "extra": {"nested": [1, 2, {"x": None}]},
        }
    )
    sparse = published["items"].create({"code": "AB-2", "active": True})
    published.registry.get("items")  # a fresh cache, as a serving process has
    for rec in (full, sparse):
        expected = published["items"].get(rec["id"])
        got = read(make_reader(published), "items", rec["id"])
        assert got == expected
        # Equal values of the same types (True == 1, but a boolean must stay a boolean).
        assert {k: type(v) for k, v in got.items()} == {k: type(v) for k, v in expected.items()}


def test_missing_record_is_none_and_unknown_or_bad_ids_step_aside(published: Appbook) -> None:
    published.registry.get("items")
    assert read(make_reader(published), "items", 999_999) is None
    assert read(make_reader(published), "items", 0) is MISS
    assert read(make_reader(published), "items", 2**63) is MISS
    assert read(make_reader(published), "nope", 1) is MISS  # the engine names known components


def test_stale_registry_steps_aside(published: Appbook) -> None:
    rec = published["suppliers"].create({"name": "Acme", "email": "a@acme.example"})
    published.registry.get("suppliers")
    published.registry._checked = 0.0  # due for its once-a-second publication check
    assert read(make_reader(published), "suppliers", rec["id"]) is MISS


def test_kept_fresh_registry_is_refreshed_in_the_background(published: Appbook) -> None:
    rec = published["suppliers"].create({"name": "Acme", "email": "a@acme.example"})
    published.registry._checked = 0.0
    reader = point_reader(published.engine, published.registry, keep_fresh=True)
    assert reader is not None

    async def go() -> list[Any]:
        try:
            first = await reader.get("suppliers", rec["id"])  # starts the refresher
            await asyncio.sleep(0.3)
            return [first, await reader.get("suppliers", rec["id"])]
        finally:
            await reader.close()

    first, second = asyncio.run(go())
    assert first is MISS
    assert isinstance(second, dict) and second["name"] == "Acme"


def test_new_publication_reads_new_fields(published: Appbook, tmp_path: Any) -> None:
    rec = published["suppliers"].create({"name": "Acme", "email": "a@acme.example"})
    published.registry.get("suppliers")
    reader = make_reader(published)

    async def go() -> tuple[Any, Any]:
        try:
            before = await reader.get("suppliers", rec["id"])
            spec = published.registry.get("suppliers").definition.model_dump(mode="json")
            spec["fields"].append({"name": "city", "type": "string"})
            published.publish_texts(
                {
                    "suppliers.yaml": _yaml(spec),
                    **{
                        f"{n}.yaml": _yaml(c.definition.model_dump(mode="json"))
                        for n, c in published.registry.all().items()
                        if n != "suppliers"
                    },
                }
            )
            published["suppliers"].update(rec["id"], {"city": "Lyon"})
            published.registry.get("suppliers")
            return before, await reader.get("suppliers", rec["id"])
        finally:
            await reader.close()

    before, after = asyncio.run(go())
    assert isinstance(before, dict) and "city" not in before
    assert isinstance(after, dict) and after["city"] == "Lyon" and after["version"] == 2


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_concurrent_reads_share_queries_and_each_gets_its_own_answer(
    published: Appbook,
) -> None:
    made = [
        published["suppliers"].create({"name": f"S{i}", "email": f"s{i}@x.example"})
        for i in range(30)
    ]
    published.registry.get("suppliers")
    reader = point_reader(published.engine, published.registry)
    assert reader is not None
    wanted = [r["id"] for r in made] + [made[0]["id"], 999_999, 999_998]

    async def go() -> list[Any]:
        try:
            return await asyncio.gather(*(reader.get("suppliers", i) for i in wanted))
        finally:
            await reader.close()

    got = asyncio.run(go())
    assert [g["name"] for g in got[:30]] == [f"S{i}" for i in range(30)]
    assert got[30] == got[0] and got[31] is None and got[32] is None
    assert reader.queries == 1  # type: ignore[attr-defined]  # 33 reads in one turn of the loop: one query


def _yaml(spec: dict[str, Any]) -> str:
    import json

    return json.dumps(spec)  # JSON is YAML


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sqlite_busy_steps_aside_instead_of_blocking(published: Appbook) -> None:
    rec = published["suppliers"].create({"name": "Acme", "email": "a@acme.example"})
    published.registry.get("suppliers")
    database = str(published.engine.url.database)
    # A writer in exclusive locking mode shuts out even WAL readers (it needs every other
    # connection closed first, so the engine's pool lets go of its own).
    published.engine.dispose()
    holder = sqlite3.connect(database, isolation_level=None, timeout=10)
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("UPDATE suppliers SET name = 'held' WHERE id = ?", (rec["id"],))
    try:
        assert read(make_reader(published), "suppliers", rec["id"]) is MISS
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    got = read(make_reader(published), "suppliers", rec["id"])
    assert isinstance(got, dict) and got["name"] == "Acme"


def test_in_memory_sqlite_has_no_point_reader(tmp_path: Any) -> None:
    from appbook.server.config import EngineConfig

    app = Appbook(EngineConfig.from_values(home=str(tmp_path), database_url="sqlite://"))
    try:
        assert point_reader(app.engine, app.registry) is None
    finally:
        app.close()
