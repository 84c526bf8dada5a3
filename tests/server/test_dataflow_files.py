"""XLSX import and export, and PDFs from render_template, on SQLite and PostgreSQL: real
workbooks written and read with openpyxl, real PDFs made by WeasyPrint and read back with
pypdf, a real HTTP server on loopback counting the requests a PDF render makes."""

from __future__ import annotations

import base64
import http.server
import io
import json
import threading
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook
from pypdf import PdfReader

from appbook.server.definitions import load_texts
from appbook.server.engine import Appbook
from appbook.server.errors import DefinitionError, ValidationError
from appbook.server.expressions import ExpressionError
from tests.conftest import FIXTURES

PNG = base64.b64decode(  # a 1x1 red pixel
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)


@pytest.fixture
def shop(app: Appbook) -> Appbook:
    app.publish(FIXTURES / "dataflow_files")
    rows = [
        ("A-1", 10.5, 1, True, date(2024, 1, 2), datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("B-2", 20.0, 2, False, date(2024, 2, 29), None),
        ("=HYPERLINK(1)", None, 3, None, None, datetime(2023, 12, 31, 23, 59, tzinfo=UTC)),
    ]
    for code, price, qty, active, day, due in rows:
        app["products"].create(
            {
                "code": code,
                "price": price,
                "qty": qty,
                "active": active,
                "day": day,
                "due": due,
                "tags": ["x", code],
                "extra": {"n": qty},
            }
        )
    return app


def workbook(sheets: dict[str, list[list[Any]]], formats: dict[str, str] | None = None) -> bytes:
    """An xlsx file with these sheets and rows (a date-only format on every date cell)."""
    book = Workbook()
    book.remove(book.active)  # type: ignore[arg-type]
    for title, rows in sheets.items():
        ws = book.create_sheet(title)
        for row in rows:
            ws.append(row)
        for row in ws.iter_rows():
            for cell in row:
                if isinstance(cell.value, datetime):
                    cell.number_format = (formats or {}).get(title, "yyyy-mm-dd h:mm:ss")
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def put(app: Appbook, data: bytes, name: str = "prices.xlsx") -> str:
    return app.files.put(data, name=name).id


# --- xlsx import ----------------------------------------------------------------------------


def test_xlsx_import_keeps_cell_types_and_reads_the_chosen_sheet(shop: Appbook) -> None:
    q1: list[list[Any]] = [
        ["name", "price", "qty", "ok", "when", "day", "at"],
        ["tea", 2.5, 3, True, datetime(2024, 5, 6, 7, 8, 9), date(2024, 5, 6), time(7, 30)],
        ["coffee", None, 0, False, None, None, None],
        [None, None, None, None, None, None, None],  # an empty row: skipped
        ["milk", 1, 2, None, None, None, None],
        [],
        [],
    ]
    book = workbook({"Q1": q1, "Q2": [["code"], ["only in Q2"]]})
    file_id = put(shop, book)
    rows = shop["products"].run_dataflow("import_rows", {"file": file_id}).value
    assert rows[0] == {
        "name": "tea",
        "price": 2.5,
        "qty": 3,
        "ok": True,
        "when": datetime(2024, 5, 6, 7, 8, 9),
        "day": date(2024, 5, 6),  # a midnight value with a date-only format is a date
        "at": time(7, 30),
    }
    assert [r["name"] for r in rows] == ["tea", "coffee", "milk"]
    assert rows[1]["price"] is None and rows[1]["ok"] is False and rows[1]["qty"] == 0
    assert shop["products"].run_dataflow("import_q2", {"file": file_id}).value == [
        {"code": "only in Q2"}
    ]


def test_xlsx_import_streams_2500_rows_in_chunks(shop: Appbook) -> None:
    rows: list[list[Any]] = [["code", "price", "qty"]]
    rows += [[f"P-{i:04}", i / 4, i] for i in range(2500)]
    file_id = put(shop, workbook({"Sheet": rows}))
    result = shop["products"].run_dataflow("import_products", {"file": file_id})
    assert result.value == 2500
    steps = {s["step"]: s for s in result.steps}
    assert steps["rows"]["out"] == 2500 and steps["rows"]["max_chunk"] == 1000
    assert steps["made"]["in"] == 2500
    assert shop["products"].count() == 2503
    last = shop["products"].query({"code": "P-2499"})[0]
    assert (last["price"], last["qty"]) == (2499 / 4, 2499)


@pytest.mark.parametrize(
    ("data", "flow", "message"),
    [
        (b"name,price\ntea,1\n", "import_products", "prices.xlsx: not a valid xlsx file"),
        (
            workbook({"Q1": [["a"]], "Q2": [["b"]]}),
            "import_q9",
            "prices.xlsx: no sheet 'Q9' (sheets: 'Q1', 'Q2')",
        ),
        (
            workbook({"Q1": [["code", "price", None, "qty"], ["a", 1, 2, 3]]}),
            "import_products",
            "prices.xlsx, sheet 'Q1', row 1 column C: empty header",
        ),
        (
            workbook({"Q1": [[None], ["code", "price", "code"]]}),
            "import_products",
            "prices.xlsx, sheet 'Q1', row 2 column C: duplicate header 'code' (also column A)",
        ),
    ],
)
def test_bad_xlsx_files_are_refused_naming_file_sheet_and_cell(
    shop: Appbook, data: bytes, flow: str, message: str
) -> None:
    with pytest.raises(ValidationError) as info:
        shop["products"].run_dataflow(flow, {"file": put(shop, data)})
    assert message in info.value.message, info.value.message
    assert "step rows" in info.value.message
    assert shop["products"].count() == 3


def test_a_sheet_of_a_csv_file_is_refused(shop: Appbook) -> None:
    file_id = put(shop, b"code\nA\n", name="prices.csv")
    with pytest.raises(
        ValidationError, match=r"prices.csv: only xlsx files have sheets, not 'csv'"
    ):
        shop["products"].run_dataflow("import_q9", {"file": file_id})


def test_a_bad_row_late_in_the_sheet_rolls_back_the_rows_before_it(shop: Appbook) -> None:
    rows: list[list[Any]] = [["code", "price", "qty"]]
    rows += [[f"P-{i}", 1, 1] for i in range(1500)]
    rows.append(["late", 1, 1, "stray"])
    with pytest.raises(
        ValidationError, match=r"row 1 column D: empty header \(row 1502 has a value under it\)"
    ):
        shop["products"].run_dataflow("import_products", {"file": put(shop, workbook({"S": rows}))})
    assert shop["products"].count() == 3  # the first 1,000 rows were created, then undone


# --- xlsx export ----------------------------------------------------------------------------


def test_xlsx_export_round_trips_through_import(shop: Appbook) -> None:
    result = shop["products"].run_dataflow("export_products", {"tag": "all"})
    out = result.files["sheet"]
    assert out["name"] == "products-all.xlsx" and out["items"] == 3 and out["folder"] == "exports"
    assert out["media_type"].endswith("spreadsheetml.sheet")
    assert result.actions == [{"action": "open_file", "file": out["id"]}]
    data = shop.files.get(out["id"])
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        sheet_xml = z.read("xl/worksheets/sheet1.xml").decode()
        assert "<f>" not in sheet_xml  # "=HYPERLINK(1)" is text, not a formula
        assert 'name="Products"' in z.read("xl/workbook.xml").decode()
    back = shop["products"].run_dataflow("import_rows", {"file": out["id"]}).value
    wanted = []
    for record in shop["products"].query(order_by="code"):
        due = record["due"]
        wanted.append(
            {
                "code": record["code"],
                "price": record["price"],
                "qty": record["qty"],
                "active": record["active"],
                "day": record["day"],
                "due": due.astimezone(UTC).replace(tzinfo=None) if due else None,
                "tags": json.dumps(record["tags"]),
                "extra": json.dumps(record["extra"]),
            }
        )
    assert back == wanted
    assert back[0]["code"] == "=HYPERLINK(1)" and back[1]["day"] == date(2024, 1, 2)


def test_xlsx_export_of_all_columns_streams_and_a_failing_step_stores_nothing(
    shop: Appbook,
) -> None:
    shop["products"].import_rows([{"code": f"X-{i}", "qty": i} for i in range(1200)])
    result = shop["products"].run_dataflow("export_all_columns")
    assert result.files["sheet"]["items"] == 1203
    assert max(s["max_chunk"] for s in result.steps) == 500
    back = shop["products"].run_dataflow("import_rows", {"file": result.files["sheet"]["id"]})
    assert len(back.value) == 1203 and {"id", "code", "version"} <= set(back.value[0])
    with pytest.raises(ExpressionError, match="step bad"):
        shop["products"].run_dataflow("export_then_fail")
    assert [f.name for f in shop.files.list("exports")] == ["all.xlsx"]


def test_a_value_xlsx_cannot_hold_names_the_item_and_stores_nothing(shop: Appbook) -> None:
    shop["products"].create({"code": "Z-9 bell\x07"})
    with pytest.raises(ValidationError) as info:
        shop["products"].run_dataflow("export_products", {"tag": "x"})
    message = info.value.message
    assert "step sheet, item 4 (id 4)" in message, message
    assert "'Z-9 bell\\x07': control characters cannot be written to xlsx" in message, message
    assert shop.files.list() == []


# --- PDF ------------------------------------------------------------------------------------


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def pdf_images(data: bytes) -> int:
    return sum(len(page.images) for page in PdfReader(io.BytesIO(data)).pages)


def test_render_template_to_pdf_stores_a_pdf_after_the_commit(shop: Appbook) -> None:
    result = shop["products"].run_dataflow("pdf_report")
    report = result.files["report"]
    assert report["name"] == "report-3.pdf" and report["folder"] == "reports"
    assert report["media_type"] == "application/pdf" and report["items"] == 3
    assert result.actions == [{"action": "open_file", "file": report["id"]}]
    data = shop.files.get(report["id"])
    assert data.startswith(b"%PDF")
    text = pdf_text(data)
    assert "Product list" in text and "A-1 costs 10.5" in text and "=HYPERLINK(1)" in text


def test_per_item_pdfs_one_per_item(shop: Appbook) -> None:
    result = shop["products"].run_dataflow("pdf_each")
    assert result.value == 3
    labels = result.files["labels"]  # per_item: {items, files: [one per item]}
    names = ["label-=HYPERLINK(1).pdf", "label-A-1.pdf", "label-B-2.pdf"]  # code order
    assert labels["items"] == 3 and [f["name"] for f in labels["files"]] == names
    assert "Label for B-2" in pdf_text(shop.files.get(labels["files"][2]["id"]))
    assert len(shop.files.list("labels")) == 3


def test_a_failing_render_names_the_step_and_item_and_stores_nothing(shop: Appbook) -> None:
    with pytest.raises(ExpressionError, match=r"step labels, item 3 \(id \d+\): .*ZeroDivision"):
        shop["products"].run_dataflow("pdf_fail")
    assert shop["products"].count() == 3 and shop.files.list() == []


class _Counting(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()
        self.wfile.write(PNG)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def counting_server() -> Iterator[str]:
    _Counting.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_pdf_renders_fetch_nothing_but_data_urls(
    shop: Appbook, counting_server: str, tmp_path: Path
) -> None:
    image = tmp_path / "secret.png"
    image.write_bytes(PNG)
    inputs = {
        "css": f"{counting_server}/style.css",
        "file": image.as_uri(),
        "http": f"{counting_server}/pixel.png",
    }
    result = shop["products"].run_dataflow("pdf_fetch", inputs)
    data = shop.files.get(result.files["page"]["id"])
    assert data.startswith(b"%PDF") and "Nothing fetched" in pdf_text(data)
    assert _Counting.hits == []  # neither the stylesheet nor the image was asked for
    assert pdf_images(data) == 0  # the file:// image was not read either
    # the same image as a data: URL is embedded, so the two checks above can fail
    data_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    result = shop["products"].run_dataflow("pdf_fetch", {**inputs, "data": data_url})
    assert pdf_images(shop.files.get(result.files["page"]["id"])) == 1
    assert _Counting.hits == []
    # and the counting server does count a real request
    from urllib.request import urlopen

    with urlopen(f"{counting_server}/probe") as answer:
        assert answer.status == 200
    assert _Counting.hits == ["/probe"]


def test_the_fetcher_refuses_file_and_http_urls() -> None:
    from appbook.server.dataflows.pdf import data_only_fetcher

    fetcher = data_only_fetcher()
    for url in ("file:///etc/passwd", "http://127.0.0.1:9/x", "FILE:///etc/hostname", "ftp://x/"):
        with pytest.raises(ValueError, match="only data: URLs are fetched"):
            fetcher.fetch(url)
    assert fetcher.fetch("data:text/plain,hi").read() == b"hi"


# --- publish-time checks (no database) -------------------------------------------------------

HEAD = """\
name: docs
fields:
  code: {type: string}
dataflows:
  flow:
    stages:
      - name: main
        steps:
          - {name: a, action_model: {}}
"""


def problems(*steps: str) -> list[str]:
    text = HEAD + "".join(f"          - {s}\n" for s in steps)
    with pytest.raises(DefinitionError) as info:
        load_texts({"docs.component.yaml": text})
    return [str(p) for p in info.value.problems]


def test_good_file_steps_load() -> None:
    steps = [
        '{name: b, render_template: {to: pdf, name: "r-{{ items | length }}.pdf", template: x}}',
        "{name: c, form_action: {action: open_file, export: b}}",
        "{name: d, export_file: {format: xlsx, name: x.xlsx, sheet: Cars, fields: [code]}}",
        "{name: e, form_action: {action: open_file, export: d}}",
        "{name: f, import_file: {file: inputs.f, sheet: Q1}}",
    ]
    load_texts({"docs.component.yaml": HEAD + "".join(f"          - {s}\n" for s in steps)})


@pytest.mark.parametrize(
    ("step", "path", "message"),
    [
        (
            "{name: b, render_template: {to: pdf, template: x}}",
            "render_template.name",
            "to: pdf needs name",
        ),
        (
            '{name: b, render_template: {to: pdf, template: x, name: "{{"}}',
            "render_template.name",
            "not a valid template",
        ),
        (
            "{name: b, render_template: {template: x, name: a.pdf}}",
            "render_template.to",
            "name and folder are for to: pdf",
        ),
        (
            "{name: b, export_file: {format: csv, name: x.csv, sheet: S}}",
            "export_file.sheet",
            "only xlsx files have sheets",
        ),
        (
            "{name: b, export_file: {format: xlsx, name: x.xlsx, sheet: 'a/b'}}",
            "export_file.sheet",
            "'a/b': a sheet name has 1 to 31 characters, none of [ ] : * ? / \\",
        ),
        (
            "{name: b, import_file: {file: inputs.f, format: json, sheet: S}}",
            "import_file.sheet",
            "only xlsx files have sheets",
        ),
        (
            "{name: b, form_action: {action: open_file, export: a}}",
            "form_action.export",
            "not an export_file or render_template (to: pdf) step before this one",
        ),
    ],
)
def test_bad_file_steps_name_file_line_and_path(step: str, path: str, message: str) -> None:
    found = problems(step)
    wanted = f"docs.component.yaml:10 dataflows.flow.stages[0].steps[1].{path}"
    assert any(p.startswith(wanted) and message in p for p in found), found


def test_open_file_of_per_item_pdfs_is_refused() -> None:
    found = problems(
        "{name: b, render_template: {to: pdf, per_item: true, name: x.pdf, template: x}}",
        "{name: c, form_action: {action: open_file, export: b}}",
    )
    wanted = "docs.component.yaml:11 dataflows.flow.stages[0].steps[2].form_action.export"
    assert any(p.startswith(wanted) and "one PDF per item" in p for p in found), found
