"""The example notebooks run under papermill against a real kernel and data layer."""

from __future__ import annotations

from pathlib import Path

import pytest

from appbook.server.config import EngineConfig
from appbook.server.engine import Appbook

EXAMPLES = Path(__file__).parent.parent.parent / "notebooks" / "examples"


@pytest.mark.slow
def test_invoice_notebook_runs_twice_on_the_shared_data_layer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    papermill = pytest.importorskip("papermill")
    home = tmp_path / "home"
    monkeypatch.setenv("APPBOOK_HOME", str(home))
    monkeypatch.delenv("APPBOOK_DATABASE_URL", raising=False)
    monkeypatch.delenv("APPBOOK_REDIS_URL", raising=False)
    with Appbook(EngineConfig.from_values(home=str(home))) as app:
        app.publish(EXAMPLES)
    notebook = EXAMPLES / "invoices" / "invoices.ipynb"
    for _ in range(2):  # get-or-create: a second run must not fail on unique numbers
        papermill.execute_notebook(
            str(notebook),
            str(tmp_path / "out.ipynb"),
            parameters={"prefix": "T"},
            cwd=str(tmp_path),
            kernel_name="python3",
            progress_bar=False,
        )
    with Appbook(EngineConfig.from_values(home=str(home))) as app:
        invoices = app["invoices"].query(order_by="number")
        assert [r["number"] for r in invoices] == ["T-1", "T-2", "T-3", "T-4"]
        assert invoices[1]["status"] == 1 and invoices[1]["version"] == 3  # one real update per run
        assert invoices[1]["amount"] == 15_402.0
        assert {r["created_by"] for r in invoices} == {app.actor}
