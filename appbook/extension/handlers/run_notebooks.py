"""``runs/{id}/steps/{step_run_id}/notebook[.html]``: the notebook a step executed.

The ``.ipynb`` leaves as a download. The HTML view is rendered by nbconvert's
``HTMLExporter`` and served under a Content-Security-Policy that allows no script, no
connection and no embedding elsewhere, in a sandbox: a notebook's outputs may hold any HTML
(a step's own, or a record value it printed), and it must not run in the server's origin.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.decorator import authorized
from tornado import web

from ...server.errors import NotFound
from ..openapi import operation
from .workflows import RUN, TAGS, _RunsBase, run_number

STEP = r"(?P<step_run_id>[0-9]+)"
IPYNB = "application/x-ipynb+json"
# Styles and images inline (nbconvert embeds them), nothing else.
SANDBOXED = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; "
    "frame-ancestors 'self'; base-uri 'none'; form-action 'none'; sandbox"
)


class _NotebookBase(_RunsBase):
    def executed(self, run_id: str, step_run_id: str) -> tuple[dict[str, Any], bytes]:
        """The step run and its executed notebook's bytes (call in the pool); NotFound
        naming what is missing."""
        run = run_number(run_id)
        step_id = int(step_run_id)
        engine = self.engine
        steps = engine.runs.steps(run)  # NotFound-free: an unknown run has no steps
        found = next((s for s in steps if int(s["id"]) == step_id), None)
        if found is None:
            engine.runs.get(run)  # an unknown run is named as such
            raise NotFound(f"workflow run {run} has no step run {step_id}")
        if not found["notebook_file"]:
            raise NotFound(f"step run {step_id} ({found['step']}) executed no notebook")
        return found, engine.files.get(found["notebook_file"])

    @staticmethod
    def file_name(run_id: str, step: dict[str, Any], suffix: str) -> str:
        """``run-7-scan-2.ipynb``: run, step and attempt."""
        return f"run-{run_id}-{step['step']}-{step['attempt']}{suffix}"


class NotebookHandler(_NotebookBase):
    """The executed notebook as a download."""

    @web.authenticated
    @authorized
    @operation(
        "The notebook a step executed (.ipynb, as an attachment)",
        response={"type": "string", "format": "binary"},
        response_types=(IPYNB,),
        errors=(403, 404, 503),
        tags=TAGS,
    )
    async def get(self, run_id: str, step_run_id: str) -> None:
        """The .ipynb bytes."""
        step, data = await self.run(self.executed, run_id, step_run_id)
        name = self.file_name(run_id, step, ".ipynb")
        self.set_header("Content-Disposition", f'attachment; filename="{name}"')
        self.finish(data, set_content_type=IPYNB)


class NotebookHtmlHandler(_NotebookBase):
    """The executed notebook rendered as HTML, sandboxed."""

    @property
    def content_security_policy(self) -> str:
        return SANDBOXED

    @web.authenticated
    @authorized
    @operation(
        "The notebook a step executed, rendered as HTML (no scripts run)",
        response={"type": "string"},
        response_types=("text/html",),
        errors=(403, 404, 503),
        tags=TAGS,
    )
    async def get(self, run_id: str, step_run_id: str) -> None:
        """HTML from nbconvert, under a sandboxing Content-Security-Policy."""
        _step, data = await self.run(self.executed, run_id, step_run_id)
        page = await self.run(render_html, data)
        self.finish(page, set_content_type="text/html; charset=utf-8")


def render_html(data: bytes) -> str:
    """An .ipynb as a standalone HTML page (nbconvert is imported here: it is slow to load)."""
    import nbformat
    from nbconvert import HTMLExporter

    notebook = nbformat.reads(data.decode("utf-8"), as_version=4)  # type: ignore[no-untyped-call]
    exporter = HTMLExporter()  # type: ignore[no-untyped-call]
    body, _resources = exporter.from_notebook_node(notebook)
    return str(body)


routes = [
    (rf"/appbook/api/runs/{RUN}/steps/{STEP}/notebook", NotebookHandler),
    (rf"/appbook/api/runs/{RUN}/steps/{STEP}/notebook\.html", NotebookHtmlHandler),
]
