"""Workflow notebook steps on the warm kernel pool, next to plain papermill, in one run.

* **pooled step**: a one-step workflow whose step is a trivial notebook (``x = 1 + 1``),
  run by the engine end to end (``runs.start`` + ``runs.advance``: database writes, the
  published notebook read, papermill's ``appbook`` engine on a pooled kernel, the executed
  notebook stored encrypted in the file store). Before each step the script waits until
  the pool is full again, so this is a step that finds a ready kernel.
* **plain papermill**: ``papermill.execute_notebook`` of the same notebook, which starts a
  kernel, waits for it, runs the cell and shuts it down: what a step costs without a pool.
* **cold fallback**: the pooled step with a pool of size 0 (every take starts a kernel).
* **scheduling overhead**: a two-step workflow of trivial notebooks; from the first step's
  end (its step run's ``finished_at``) to the second notebook's first cell running (the
  time the cell itself reads), split at the second step run's ``started_at`` into the run
  machine's bookkeeping (``runs.py``) and the notebook start (the handler, papermill, the
  pool, the run context); and from the first notebook's last cell to the second's first
  cell (the whole gap between two notebooks, storing the first one's output included).
* **the same overhead on a pool that refills at once and asks kernels to shut down**
  (``fill_delay=0``, ``graceful_shutdown=True``): what the defaults are measured against.
* **typical notebook**: a step that imports appbook and pandas, connects and queries,
  on pools with and without the preloads, and with plain papermill.

Run by hand (it asserts nothing):
``.venv/bin/python bench/papermill.py [--steps 20] [--backend sqlite|postgresql]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

# This file is named papermill.py: its folder goes last on the path, so that ``import
# papermill`` finds the package, not this script.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))
sys.path.append(str(HERE))
from _common import Timings, load_average, machine, temporary_database  # noqa: E402

from appbook.kernels.pool import KernelPool, set_default_pool  # noqa: E402
from appbook.server.config import EngineConfig  # noqa: E402
from appbook.server.engine import Appbook  # noqa: E402

COMPONENT = """\
name: bench
fields:
  title: {type: string}
workflows:
  one:
    stages: [{name: s, steps: [{name: step, notebook: trivial.ipynb}]}]
  two:
    stages:
      - name: s
        steps: [{name: first, notebook: last.ipynb}, {name: second, notebook: first.ipynb}]
  typical:
    stages: [{name: s, steps: [{name: step, notebook: typical.ipynb}]}]
"""
TIMED = "import time\nfrom appbook.kernels.workflow import output\noutput('{name}', time.time())"
TYPICAL = """\
import appbook
import pandas as pd
from appbook.kernels.workflow import output
app = appbook.connect()
frame = pd.DataFrame(app["bench"].query(limit=10))
output("rows", len(frame))
"""


def write_component(folder: Path) -> dict[str, Path]:
    """The component and its notebooks; the paths of the notebooks."""
    notebooks = {
        "trivial": ["x = 1 + 1"],
        "last": ["x = 1 + 1", TIMED.format(name="t_last")],
        "first": [TIMED.format(name="t_first"), "x = 1 + 1"],
        "typical": [TYPICAL],
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bench.component.yaml").write_text(COMPONENT)
    paths = {}
    for name, cells in notebooks.items():
        nb = new_notebook(cells=[new_code_cell(c) for c in cells])
        nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "P"}
        paths[name] = folder / f"{name}.ipynb"
        nbformat.write(nb, str(paths[name]))
    return paths


def epoch(moment: datetime) -> float:
    """Seconds since the epoch of a stored time (SQLite gives them back naive, in UTC)."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


class Bench:
    """The data layer, the component, and the pools under test."""

    def __init__(self, app: Appbook, paths: dict[str, Path], folder: Path, size: int) -> None:
        self.app, self.paths, self.folder = app, paths, folder
        environment = app.config.environment()
        self.warm = KernelPool(size=size, environment=environment).start()
        self.bare = KernelPool(size=size, environment=environment, preload=[]).start()
        self.dry = KernelPool(size=0, environment=environment)
        # The pool as first written: refills at once, kernels asked to shut down.
        self.eager = KernelPool(
            size=size, environment=environment, fill_delay=0.0, graceful_shutdown=True
        ).start()

    def close(self) -> None:
        set_default_pool(None)
        for pool in (self.warm, self.bare, self.dry, self.eager):
            pool.close()

    def step(self, workflow: str, pool: KernelPool) -> dict[str, Any]:
        """One run of ``workflow`` on ``pool`` (see :meth:`ready`)."""
        set_default_pool(pool)
        started = self.app.runs.start("bench", workflow)
        run = self.app.runs.advance(int(started["id"]))
        if run["status"] != "succeeded":
            raise SystemExit(f"the {workflow} run failed: {run['error']}")
        return run

    @staticmethod
    def ready(pool: KernelPool) -> None:
        """Wait, untimed, until ``pool`` is full again (a pool of size 0 keeps nothing)."""
        if pool.size and not pool.wait_ready(timeout=300):
            raise SystemExit("the kernel pool did not fill within 300 s")

    def plain(self, name: str) -> None:
        """``papermill.execute_notebook`` of a notebook, as a step without a pool would
        (its kernel inherits the data layer's variables, as the server's kernels do)."""
        import papermill

        saved = dict(os.environ)
        os.environ.update(self.app.config.environment())
        try:
            papermill.execute_notebook(
                str(self.paths[name]),
                str(self.folder / f"{name}.out.ipynb"),
                kernel_name="python3",
                progress_bar=False,
                cwd=str(self.folder),
            )
        finally:
            os.environ.clear()
            os.environ.update(saved)


def timed(timings: Timings, call: Callable[[], object], pool: KernelPool | None = None) -> None:
    """Time ``call`` once, after ``pool`` (if any) is full again."""
    if pool is not None:
        Bench.ready(pool)
    timings.time(call)


def measure(bench: Bench, steps: int, log: Callable[[str], None]) -> dict[str, Timings]:
    """Every figure, pooled and plain interleaved call by call."""
    results = {
        key: Timings()
        for key in (
            "pooled",
            "plain",
            "cold",
            "overhead",
            "overhead_eager",
            "bookkeeping",
            "start",
            "gap",
            "typical_warm",
            "typical_bare",
            "typical_plain",
        )
    }
    log("warming up (imports, first kernels)")
    bench.ready(bench.warm)
    bench.step("one", bench.warm)
    bench.plain("trivial")
    for i in range(steps):
        log(f"round {i + 1}/{steps}")
        pairs: list[tuple[str, Callable[[], object], KernelPool | None]] = [
            ("pooled", lambda: bench.step("one", bench.warm), bench.warm),
            ("plain", lambda: bench.plain("trivial"), None),
        ]
        for key, call, pool in pairs if i % 2 == 0 else reversed(pairs):
            timed(results[key], call, pool)
        timed(results["cold"], lambda: bench.step("one", bench.dry))
        bench.ready(bench.eager)
        run = bench.step("two", bench.eager)
        first, _ = bench.app.runs.steps(int(run["id"]))
        t_first = run["outputs"]["second"]["t_first"]
        results["overhead_eager"].seconds.append(t_first - epoch(first["finished_at"]))
        bench.ready(bench.warm)
        run = bench.step("two", bench.warm)
        first, second = bench.app.runs.steps(int(run["id"]))
        t_first = run["outputs"]["second"]["t_first"]
        results["overhead"].seconds.append(t_first - epoch(first["finished_at"]))
        results["bookkeeping"].seconds.append(
            epoch(second["started_at"]) - epoch(first["finished_at"])
        )
        results["start"].seconds.append(t_first - epoch(second["started_at"]))
        results["gap"].seconds.append(t_first - run["outputs"]["first"]["t_last"])
        timed(results["typical_warm"], lambda: bench.step("typical", bench.warm), bench.warm)
        timed(results["typical_bare"], lambda: bench.step("typical", bench.bare), bench.bare)
        timed(results["typical_plain"], lambda: bench.plain("typical"))
    return results


def table(results: dict[str, Timings]) -> str:
    def row(label: str, key: str, peer: str | None = None) -> str:
        t = results[key]
        ratio = ""
        if peer is not None:
            ratio = f"{results[peer].ms(50) / t.ms(50):.1f}x"
        return f"| {label} | {len(t.seconds)} | {t.ms(50):.1f} | {t.ms(90):.1f} | {ratio} |"

    lines = [
        "| what | calls | p50 ms | p90 ms | plain papermill / this (p50) |",
        "|---|---|---|---|---|",
        row("trivial step, pooled (engine end to end)", "pooled", "plain"),
        row("trivial notebook, plain papermill", "plain"),
        row("trivial step, pool dry (cold fallback)", "cold", "plain"),
        row("scheduling overhead: previous step's end to first cell", "overhead"),
        row("… of which the run's bookkeeping (step end to next step start)", "bookkeeping"),
        row("… of which the notebook start (step start to first cell)", "start"),
        row("scheduling overhead, refill at once + polite shutdown", "overhead_eager"),
        row("gap: previous notebook's last cell to next first cell", "gap"),
        row("typical step, pooled with preloads", "typical_warm", "typical_plain"),
        row("typical step, pooled without preloads", "typical_bare", "typical_plain"),
        row("typical notebook, plain papermill", "typical_plain"),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="rounds of every measurement")
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--pool-size", type=int, default=2, help="kernels the pools keep")
    args = parser.parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    with temporary_database(args.backend) as (url, home), tempfile.TemporaryDirectory() as tmp:
        config = EngineConfig.from_values(home=str(home), database_url=url, redis_url="")
        app = Appbook(config, actor="bench")
        folder = Path(tmp) / "component"
        paths = write_component(folder)
        app.publish(folder)
        app["bench"].create({"title": "one"})
        bench = Bench(app, paths, Path(tmp), args.pool_size)
        try:
            results = measure(bench, args.steps, log)
            stats = bench.warm.stats
        finally:
            bench.close()
            app.close()
    print(f"{machine()}; load average {load_average()}; {args.backend}; {args.steps} rounds")
    print(table(results))
    starts = sorted(stats.start_seconds)
    if starts:
        print(f"pool kernel start with preloads (background): p50 {starts[len(starts) // 2]:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
