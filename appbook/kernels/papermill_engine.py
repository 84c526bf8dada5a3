"""papermill's ``appbook`` engine: notebooks run on pooled kernels instead of one each.

Registered through papermill's entry point group ``papermill.engine``, so
``papermill.execute_notebook(..., engine_name="appbook")`` keeps everything papermill does:
parameters injected after the ``parameters`` cell, cell metadata and timings, execution
stopping at the first error, and the output notebook written with the failing cell marked
before :class:`~papermill.exceptions.PapermillExecutionError` (cell index, exception name
and value, traceback) is raised. Only where the kernel comes from changes: a
:class:`~appbook.kernels.pool.KernelPool` lends one (see :mod:`.pooled_client`).

papermill loads its entry points while it is itself being imported, so the class named
there, :class:`AppbookEngine`, imports papermill's machinery (and :mod:`.pooled_client`,
which subclasses it) only when papermill calls it.

Extra keyword arguments of ``papermill.execute_notebook`` for this engine: ``pool`` (a
:class:`~appbook.kernels.pool.KernelPool`; default: the process's
:func:`~appbook.kernels.pool.default_pool`), ``begin`` (code run silently before the first
cell), ``notebook_timeout`` (seconds for the whole notebook), ``metadata`` (the notebook's
``appbook`` metadata), ``input_label`` (recorded as the input path instead of a
temporary file's) and ``stop`` (a :class:`threading.Event` that stops the notebook at the
cell that runs once it is set).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nbformat import NotebookNode

    from .pool import KernelPool

ENGINE = "appbook"


class AppbookEngine:
    """The ``appbook`` engine papermill finds by name; it hands over to
    :class:`~appbook.kernels.pooled_client.PooledEngine`."""

    @classmethod
    def execute_notebook(cls, nb: NotebookNode, kernel_name: str, **kwargs: Any) -> Any:
        """Run ``nb`` on a pooled kernel (papermill's ``Engine.execute_notebook``)."""
        from .pooled_client import PooledEngine

        return PooledEngine.execute_notebook(nb, kernel_name, **kwargs)

    @classmethod
    def nb_kernel_name(cls, nb: NotebookNode, name: str | None = None) -> Any:
        """The kernel name papermill would use for ``nb``."""
        from papermill.utils import nb_kernel_name

        return nb_kernel_name(nb, name)

    @classmethod
    def nb_language(cls, nb: NotebookNode, language: str | None = None) -> Any:
        """The language papermill would use for ``nb``."""
        from papermill.utils import nb_language

        return nb_language(nb, language)


def register() -> None:
    """Make sure papermill knows the ``appbook`` engine (its entry point registers it when
    the package is installed; this covers running from a source tree)."""
    from papermill.engines import papermill_engines
    from papermill.exceptions import PapermillException

    try:
        papermill_engines.get_engine(ENGINE)
    except PapermillException:
        papermill_engines.register(ENGINE, AppbookEngine)


@dataclass
class Executed:
    """A notebook run: the output notebook as papermill saved it, and how it ended."""

    notebook: bytes  # the output notebook (on failure, with the failing cell marked)
    document: dict[str, Any]  # the same, parsed
    error: Any  # papermill's PapermillExecutionError, or None

    @property
    def timed_out(self) -> float | None:
        """The timeout the notebook ran past, if it did."""
        value = self._appbook.get("timed_out")
        return None if value is None else float(value)

    @property
    def cancelled(self) -> bool:
        """Whether ``stop`` ended the notebook (its run was cancelled)."""
        return bool(self._appbook.get("cancelled"))

    @property
    def _appbook(self) -> dict[str, Any]:
        """The notebook's ``appbook`` metadata (how the pooled client ended it)."""
        found: dict[str, Any] = self.document.get("metadata", {}).get("appbook", {})
        return found


def execute(
    nb: NotebookNode,
    *,
    parameters: dict[str, Any] | None = None,
    begin: str = "",
    timeout: float | None = None,
    pool: KernelPool | None = None,
    metadata: dict[str, Any] | None = None,
    label: str | None = None,
    workdir: Path,
    stop: threading.Event | None = None,
) -> Executed:
    """Run ``nb`` with papermill on a pooled kernel; the output notebook and its failure
    (papermill's error, or None). ``workdir`` holds papermill's input and output files.
    Errors other than a failing cell (no kernel could start, say) are raised."""
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from .pool import default_pool

    register()
    pool = pool if pool is not None else default_pool()
    source, target = workdir / "input.ipynb", workdir / "output.ipynb"
    nbformat.write(nb, str(source))  # type: ignore[no-untyped-call]
    error = None
    try:
        papermill.execute_notebook(
            str(source),
            str(target),
            parameters=parameters or None,
            engine_name=ENGINE,
            request_save_on_cell_execute=False,  # saved once, at the end (in the file store)
            kernel_name=pool.kernel_name,
            language="python",
            progress_bar=False,
            start_timeout=pool.startup_timeout,
            pool=pool,
            begin=begin,
            notebook_timeout=timeout,
            metadata=metadata,
            input_label=label,
            stop=stop,
        )
    except PapermillExecutionError as exc:
        error = exc
    data = target.read_bytes()
    return Executed(data, json.loads(data), error)
