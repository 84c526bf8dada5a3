"""HTML to PDF through WeasyPrint, fetching nothing.

A template's HTML may name any URL (``<img src="file:///etc/passwd">``, a stylesheet on an
inside host); WeasyPrint would fetch it while laying out the page, reading server files or
reaching the network from the server. :class:`DataOnlyFetcher` refuses every URL except
``data:`` (inline images and fonts): a refused resource is simply left out of the PDF.
"""

from __future__ import annotations

import logging
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from ..errors import DataflowFailed
from .context import Chunks, StepCall
from .files import MEDIA, SPOOL, store_after_commit

PDF = MEDIA["pdf"]

log = logging.getLogger(__name__)


@cache  # one class, defined on first use (WeasyPrint is imported only when a PDF is made)
def _fetcher_class() -> type[Any]:
    from weasyprint.urls import URLFetcher  # type: ignore[import-untyped]

    class DataOnlyFetcher(URLFetcher):  # type: ignore[misc]
        """WeasyPrint's fetcher limited to ``data:`` URLs, without redirects or proxies."""

        def __init__(self) -> None:
            super().__init__(allowed_protocols=("data",), allow_redirects=False)

        def fetch(self, url: str, headers: Any = None) -> Any:
            # checked here as well as by allowed_protocols: this line is the guarantee
            if not url.lower().startswith("data:"):
                log.info("render_template: not fetching %s (only data: URLs)", url[:200])
                raise ValueError(f"only data: URLs are fetched, not {url[:200]!r}")
            return super().fetch(url, headers)

    return DataOnlyFetcher


def data_only_fetcher() -> Any:
    """A WeasyPrint URL fetcher that fetches ``data:`` URLs only."""
    return _fetcher_class()()


def html_to_pdf(html: str) -> bytes:
    """The PDF of ``html`` (no base URL: relative links resolve to nothing); DataflowFailed
    if WeasyPrint fails (the runner adds the step and the item)."""
    from weasyprint import HTML  # type: ignore[import-untyped]

    try:
        return bytes(HTML(string=html, url_fetcher=data_only_fetcher()).write_pdf())
    except Exception as exc:  # WeasyPrint's own errors have no common base class
        raise DataflowFailed(f"could not make a PDF: {type(exc).__name__}: {exc}") from exc


def render_pdfs(call: StepCall) -> Chunks:
    """``render_template`` with ``to: pdf``: one PDF of all items (or one per item), each
    stored after the commit; the items go on. Per-item PDFs wait in a temporary folder,
    so a long run holds none of them in memory."""
    from ..expressions import render

    config = call.config
    if not config.per_item:
        items = call.all_items()
        names = call.flow.names(items=items)
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL, mode="w+b")  # noqa: SIM115
        spool.write(html_to_pdf(render(config.template, names, html=True)))
        store_after_commit(call, spool, str(render(config.name, names)), PDF, len(items))
        if items:
            yield items
        return
    folder = tempfile.TemporaryDirectory(prefix="appbook-pdf-")
    for chunk, each in call.items():
        for item in each:
            names = call.flow.names(item=item)
            path = Path(folder.name) / f"{call.item_number}.pdf"
            path.write_bytes(html_to_pdf(render(config.template, names, html=True)))
            store_after_commit(call, path, str(render(config.name, names)), PDF, 1, many=True)
        yield chunk
    call.flow.state.writer.after_commit.append(folder.cleanup)
