"""Publications: diffs, destructive refusal, rollback, no-op, concurrency, history."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
import sqlalchemy as sa

from appbook.server.config import EngineConfig
from appbook.server.engine import Appbook
from appbook.server.errors import DefinitionError, DestructiveChange, PublishError

V1 = """\
name: invoices
fields:
  number: {type: string, required: true, unique: true}
  amount: {type: number}
  notes:  {type: text}
"""


def write(folder: Path, text: str, name: str = "invoices") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.component.yaml").write_text(text)
    return folder


def columns(app: Appbook, table: str) -> dict[str, str]:
    with app.engine.connect() as conn:
        return {c["name"]: str(c["type"]) for c in sa.inspect(conn).get_columns(table)}


def indexes(app: Appbook, table: str) -> dict[str, bool]:
    with app.engine.connect() as conn:
        return {i["name"]: bool(i["unique"]) for i in sa.inspect(conn).get_indexes(table)}


def test_first_publication_creates_tables_and_indexes(app: Appbook, tmp_path: Path) -> None:
    result = app.publish(write(tmp_path / "d", V1))
    assert (result.number, result.changed, result.kind) == (1, True, "publish")
    assert "create table invoices" in result.migration
    assert set(columns(app, "invoices")) >= {
        "id",
        "version",
        "created_by",
        "number",
        "amount",
        "notes",
    }
    assert indexes(app, "invoices") == {"ux_invoices_number": True}
    app.registry.refresh(force=True)  # field order survives the round trip through the database
    assert list(app["invoices"].definition.fields) == ["number", "amount", "notes"]


def test_same_content_is_a_noop(app: Appbook, tmp_path: Path) -> None:
    app.publish(write(tmp_path / "d", V1))
    again = app.publish(write(tmp_path / "e", "# reformatted\n" + V1, name="renamed"))
    assert (again.number, again.changed) == (1, False)
    assert len(app.publications()) == 1


def test_add_field_index_and_reference(app: Appbook, tmp_path: Path) -> None:
    folder = write(tmp_path / "d", V1)
    app.publish(folder)
    app["invoices"].create({"number": "A-1", "amount": 5})
    write(folder, "name: suppliers\nfields:\n  name: {type: string}\n", name="suppliers")
    write(
        folder,
        V1 + "  due: {type: date, indexed: true}\n  supplier: {type: reference, to: suppliers}\n",
    )
    result = app.publish(folder)
    assert result.number == 2
    assert "add column invoices.due DATE" in result.migration
    assert "create index ix_invoices_due on invoices (due, id)" in result.migration
    assert "create table suppliers" in result.migration
    assert any(line.startswith("add foreign key fk_invoices_supplier") for line in result.migration)
    assert app["invoices"].count() == 1  # data kept
    with app.engine.connect() as conn:
        fks = sa.inspect(conn).get_foreign_keys("invoices")
    assert [(f["referred_table"], f["constrained_columns"]) for f in fks] == [
        ("suppliers", ["supplier"])
    ]


def test_dropping_a_field_with_data_is_refused_then_allowed(app: Appbook, tmp_path: Path) -> None:
    folder = write(tmp_path / "d", V1)
    app.publish(folder)
    app["invoices"].create({"number": "A-1", "notes": "important"})
    write(folder, V1.replace("  notes:  {type: text}\n", ""))
    with pytest.raises(DestructiveChange) as info:
        app.publish(folder)
    assert info.value.changes == ["field invoices.notes was removed: 1 records have a value"]
    assert "--allow-destructive" in info.value.message
    assert "notes" in columns(app, "invoices") and len(app.publications()) == 1
    result = app.publish(folder, allow_destructive=True)
    assert "drop column invoices.notes" in result.migration
    assert "notes" not in columns(app, "invoices")


def test_dropping_an_empty_field_needs_no_flag(app: Appbook, tmp_path: Path) -> None:
    folder = write(tmp_path / "d", V1)
    app.publish(folder)
    app["invoices"].create({"number": "A-1"})
    write(folder, V1.replace("  notes:  {type: text}\n", ""))
    assert "drop column invoices.notes" in app.publish(folder).migration


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("amount: {type: number}", "amount: {type: integer}"),
            "field invoices.amount changes type",
        ),
        (
            ("notes:  {type: text}", "notes:  {type: text, required: true}"),
            "field invoices.notes becomes required: 1 records have no value",
        ),
    ],
)
def test_narrowing_is_refused(
    app: Appbook, tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    folder = write(tmp_path / "d", V1)
    app.publish(folder)
    app["invoices"].create({"number": "A-1", "amount": 2.5})
    write(folder, V1.replace(*change))
    with pytest.raises(DestructiveChange, match=message):
        app.publish(folder)
    assert len(app.publications()) == 1


def test_removing_enum_choices_in_use_is_refused(app: Appbook, tmp_path: Path) -> None:
    text = V1 + "  status: {type: enum, choices: {0: New, 1: Paid}}\n"
    folder = write(tmp_path / "d", text)
    app.publish(folder)
    app["invoices"].create({"number": "A-1", "status": 1})
    write(folder, text.replace(", 1: Paid", ""))
    with pytest.raises(DestructiveChange, match="loses choices 1: 1 records use them"):
        app.publish(folder)


def test_widening_needs_no_flag(app: Appbook, tmp_path: Path) -> None:
    text = V1.replace("amount: {type: number}", "amount: {type: integer}")
    folder = write(tmp_path / "d", text)
    app.publish(folder)
    app["invoices"].create({"number": "A-1", "amount": 2})
    write(folder, V1)
    app.publish(folder)
    assert app["invoices"].query()[0]["amount"] == 2.0


def test_unique_over_duplicates_fails_clearly_and_changes_nothing(
    app: Appbook, tmp_path: Path
) -> None:
    folder = write(tmp_path / "d", V1)
    app.publish(folder)
    for n in ("A-1", "A-2"):
        app["invoices"].create({"number": n, "notes": "same"})
    write(folder, V1.replace("notes:  {type: text}", "notes:  {type: text, unique: true}"))
    with pytest.raises(
        PublishError,
        match=r"cannot make invoices.notes unique: duplicate values 'same' \(2 times\)",
    ):
        app.publish(folder)
    assert len(app.publications()) == 1
    assert "ux_invoices_notes" not in indexes(app, "invoices")


def test_invalid_definitions_publish_nothing(app: Appbook, tmp_path: Path) -> None:
    folder = write(tmp_path / "d", V1.replace("type: number", "type: numbr"))
    with pytest.raises(DefinitionError, match=r"invoices.component.yaml:4 fields.amount.type"):
        app.publish(folder)
    assert app.publications() == []
    assert app.components() == []


def test_rollback_returns_to_old_definitions_keeping_data(app: Appbook, tmp_path: Path) -> None:
    folder = write(tmp_path / "d", V1)
    app.publish(folder)
    write(folder, V1 + "  extra: {type: string}\n")
    app.publish(folder)
    app["invoices"].create({"number": "A-1", "extra": "kept"})
    result = app.rollback(1)
    assert (result.number, result.kind) == (3, "rollback")
    assert "extra" not in app["invoices"].definition.fields
    assert "extra" in columns(app, "invoices")  # the data column stays
    assert "extra" not in app["invoices"].get(1)
    app.rollback(2)  # and forward again: the value is still there
    assert app["invoices"].get(1)["extra"] == "kept"
    assert [p.number for p in app.publications()] == [4, 3, 2, 1]


def test_publications_are_immutable_history(app: Appbook, tmp_path: Path) -> None:
    app.publish(write(tmp_path / "d", V1))
    (pub,) = app.publications()
    assert pub.created_by == "tester" and len(pub.content_hash) == 64
    assert pub.components == ["invoices"]


def _publish_in_child(args: tuple[str, str, str]) -> int:
    home, url, folder = args
    with Appbook(EngineConfig.from_values(home=home, database_url=url), actor="child") as app:
        return app.publish(folder).number


def test_concurrent_publishes_serialise(app: Appbook, tmp_path: Path, database_url: str) -> None:
    folders = []
    for i in range(4):
        folders.append(str(write(tmp_path / f"d{i}", V1 + f"  f{i}: {{type: integer}}\n")))
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        numbers = pool.map(
            _publish_in_child, [(str(tmp_path / "home"), database_url, f) for f in folders]
        )
    assert sorted(numbers) == [1, 2, 3, 4]
    assert [p.number for p in app.publications()] == [4, 3, 2, 1]
