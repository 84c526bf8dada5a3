"""REST: dataflows that make XLSX files and PDFs, run through a real jupyter_server on
SQLite and PostgreSQL; one with a script runs in the child process (with its memory limit)
and its files are downloaded through the files API."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader
from traitlets.config import Config

from appbook.server.engine import Appbook
from tests.conftest import FIXTURES

Api = Any


@pytest.fixture
def jp_server_config(jp_server_config: Config) -> Config:
    jp_server_config.ServerApp.tornado_settings = {"appbook_dataflow_memory": 1024**3}
    return jp_server_config


@pytest.fixture
def engine(jp_serverapp: Any) -> Appbook:
    app: Appbook = jp_serverapp.web_app.settings["appbook_engine"]
    app.publish(FIXTURES / "dataflow_files")
    for code in ("b-2", "a-1"):
        app["products"].create({"code": code, "price": 1.5})
    return app


async def test_pdfs_and_a_sheet_made_in_the_child_are_downloadable(
    api: Api, engine: Appbook
) -> None:
    response = await api("POST", "dataflows/products/pdf_scripted/run")
    assert response.code == 200, response.body
    files = json.loads(response.body)["files"]
    labels = files["labels"]
    assert labels["items"] == 2 and [f["name"] for f in labels["files"]] == ["A-1.pdf", "B-2.pdf"]
    pdf = await api("GET", f"files/{labels['files'][1]['id']}")
    assert pdf.code == 200 and pdf.headers["Content-Type"] == "application/pdf"
    assert "Label B-2" in PdfReader(io.BytesIO(pdf.body)).pages[0].extract_text()
    sheet = await api("GET", f"files/{files['sheet']['id']}")
    assert sheet.code == 200
    rows = list(load_workbook(io.BytesIO(sheet.body), read_only=True).active.values)  # type: ignore[union-attr]
    assert rows == [("code",), ("A-1",), ("B-2",)]


async def test_a_bad_xlsx_upload_is_a_422_naming_the_cell(api: Api, engine: Appbook) -> None:
    from openpyxl import Workbook

    book = Workbook()
    book.active.append(["code", ""])  # type: ignore[union-attr]
    book.active.append(["x", 1])  # type: ignore[union-attr]
    data = io.BytesIO()
    book.save(data)
    info = engine.files.put(data.getvalue(), name="bad.xlsx")
    response = await api(
        "POST", "dataflows/products/import_products/run", json_body={"inputs": {"file": info.id}}
    )
    assert response.code == 422, response.body
    message = json.loads(response.body)["error"]["message"]
    wanted = "bad.xlsx, sheet 'Sheet', row 1 column B: empty header (row 2 has a value under it)"
    assert wanted in message, message
    assert engine["products"].count() == 2
