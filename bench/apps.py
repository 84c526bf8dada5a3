"""How fast an app opens in a real browser: Appbook's apps next to standalone Voilà.

Headless Chromium (Debian's ``chromium``, driven by Playwright) opens the invoices app's
"All invoices" page and waits until the grid shows its first row: the page is interactive.
The time is from just before the navigation starts to that moment (Playwright's
``goto`` then ``wait_for`` on the first row's button), as the user waits for it.

Each setup is measured twice:

* **warm browser cache**: a returning user, the second open of the day. One browser profile
  on disk (HTTP cache and compiled-script cache, as a real browser keeps them) opens the
  page once unmeasured, then each measured open is a new tab in it.
* **cold browser cache**: a first visit. Each open is a fresh browser context (empty cache).

Setups:

* **Appbook, preheated**: ``appbook serve`` with one preheated app kernel
  (``APPBOOK_APP_POOL_SIZE=1``), opening ``/appbook/apps/invoices?page=all``; between opens
  the script waits for the pool to refill.
* **Appbook, cold kernel**: the same with ``APPBOOK_APP_POOL_SIZE=0`` (each open starts a
  kernel).
* **Peers**: standalone ``voila`` serving a notebook that shows the same page
  (``show("invoices", "all")``) on the same database, cold, and preheated
  (``--preheat_kernel=True --pool_size=1``, which renders the whole notebook ahead).

Besides the time, each open records the page's own timeline (milliseconds from the
navigation start): the HTML's last byte, Appbook's front-end milestones
(``appbook:script``, ``:connected``, ``:models``, ``:views``), Voilà's ``load`` event, and
the moment the first row's button is in the page (``button``, a MutationObserver); the
difference to the measured time is Playwright's own round trips.

Run by hand (it asserts nothing): ``.venv/bin/python bench/apps.py [--opens 7]``. Needs
``/usr/bin/chromium`` (``apt-get install chromium``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _common import load_average, machine, percentile

ROOT = Path(__file__).parents[1]
PYTHON = sys.executable
CHROMIUM = os.environ.get("APPBOOK_BENCH_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORT = {"width": 1280, "height": 900}
TOKEN = "bench-apps-token"
READY = ".appbook-grid .widget-button >> nth=0"  # the first row's "Open" button (or a header)
# Marks the moment the first row's button is in the page (what READY waits for).
BUTTON_PROBE = """
new MutationObserver((_, observer) => {
  const button = document.querySelector('.appbook-grid .widget-button');
  if (button && button.getBoundingClientRect().width > 0) {
    performance.mark('button');
    observer.disconnect();
  }
}).observe(document, {childList: true, subtree: true, attributes: true});
"""
TIMELINE = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const out = {html: nav.responseEnd, load: nav.loadEventStart};
  for (const m of performance.getEntriesByType('mark')) {
    out[m.name.replace('appbook:', '')] = m.startTime;
  }
  const res = performance.getEntriesByType('resource');
  out.requests = res.length;
  out.kB = res.reduce((sum, r) => sum + r.transferSize, 0) / 1024;
  return out;
}"""
PEER_NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "metadata": {},
            "execution_count": None,
            "outputs": [],
            "source": ["from appbook.kernels.ui import show\n", 'show("invoices", "all")'],
        }
    ],
    "metadata": {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}
SETUPS = (
    ("Appbook app, preheated (pool 1)", "appbook", {"APPBOOK_APP_POOL_SIZE": "1"}),
    ("Appbook app, cold kernel (pool 0)", "appbook", {"APPBOOK_APP_POOL_SIZE": "0"}),
    ("standalone Voilà, preheated (pool 1)", "voila-preheat", {}),
    ("standalone Voilà, cold kernel", "voila", {}),
)
CACHES = ("warm", "cold")
MILESTONES = ("html", "script", "connected", "models", "views", "load", "button")


@dataclass
class Series:
    """The opens of one setup with one browser cache."""

    label: str
    cache: str
    seconds: list[float] = field(default_factory=list)
    timelines: list[dict[str, float]] = field(default_factory=list)


def main(argv: list[str] | None = None) -> int:
    """Measure and print Markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--opens", type=int, default=7, help="measured opens per series")
    parser.add_argument("--records", type=int, default=1000, help="invoices in the database")
    parser.add_argument("--refill", type=float, default=10.0, help="seconds between opens")
    parser.add_argument("--only", default="", help="run only setups whose label has this")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"missing {CHROMIUM}: apt-get install -y chromium", file=sys.stderr)
        return 2
    print(f"{machine()}; load average {load_average()}")
    from playwright.sync_api import sync_playwright

    results: list[Series] = []
    with tempfile.TemporaryDirectory(prefix="appbook-apps-bench-") as folder:
        work = Path(folder)
        env = seed(work, args.records)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            for label, kind, extra in SETUPS:
                if args.only not in label:
                    continue
                with serving(kind, work, {**env, **extra}) as url:
                    preheated = "preheat" in label
                    pause = args.refill if preheated else 1.0
                    if preheated:
                        time.sleep(args.refill)  # the first pool kernel starts with the server
                    for cache in CACHES:
                        series = Series(label, cache)
                        if cache == "warm":
                            profile = work / f"profile-{kind}-{len(results)}"
                            context = pw.chromium.launch_persistent_context(
                                str(profile),
                                executable_path=CHROMIUM,
                                args=FLAGS,
                                viewport=VIEWPORT,
                            )
                            open_once(context, url, pause)  # the first open of the day
                            for _ in range(args.opens):
                                record(series, open_once(context, url, pause))
                            context.close()
                        else:
                            for _ in range(args.opens):
                                context = browser.new_context(viewport=VIEWPORT)
                                record(series, open_once(context, url, pause))
                                context.close()
                        results.append(series)
                        print(
                            f"  {label:<40} {cache} cache: p50 "
                            f"{percentile(series.seconds, 50):5.2f} s",
                            flush=True,
                        )
            browser.close()
    print_tables(results)
    print(f"\nload average after: {load_average()}")
    return 0


def record(series: Series, measured: tuple[float, dict[str, float]]) -> None:
    seconds, timeline = measured
    series.seconds.append(seconds)
    series.timelines.append(timeline)


def open_once(context: Any, url: str, pause: float) -> tuple[float, dict[str, float]]:
    """Seconds from just before the navigation until the grid's first row can be clicked,
    and the page's own timeline; then the tab closes (the page stops its kernel)."""
    page = context.new_page()
    page.add_init_script(BUTTON_PROBE)
    try:
        started = time.perf_counter()
        page.goto(url, timeout=120_000)
        page.locator(READY).wait_for(timeout=120_000)
        seconds = time.perf_counter() - started
        timeline: dict[str, float] = page.evaluate(TIMELINE)
        return seconds, timeline
    finally:
        page.close(run_before_unload=True)
        time.sleep(pause)


def print_tables(results: Sequence[Series]) -> None:
    """The times, then where they go."""
    print("\n| setup | browser cache | opens | p50 s | p90 s | min s | max s |")
    print("|---|---|---|---|---|---|---|")
    for s in results:
        t = s.seconds
        print(
            f"| {s.label} | {s.cache} | {len(t)} | {percentile(t, 50):.2f} "
            f"| {percentile(t, 90):.2f} | {min(t):.2f} | {max(t):.2f} |"
        )
    print("\nMedian page timeline, ms from the navigation start (interactive: as measured):")
    print(f"\n| setup | cache | {' | '.join(MILESTONES)} | interactive | requests | kB |")
    print(f"|---|---|{'---|' * (len(MILESTONES) + 3)}")
    for s in results:
        cells = []
        for name in MILESTONES:
            values = [t[name] for t in s.timelines if t.get(name)]
            cells.append(f"{statistics.median(values):.0f}" if values else "")
        requests = statistics.median(t["requests"] for t in s.timelines)
        kb = statistics.median(t["kB"] for t in s.timelines)
        interactive = 1000 * statistics.median(s.seconds)
        print(
            f"| {s.label} | {s.cache} | {' | '.join(cells)} | {interactive:.0f} "
            f"| {requests:.0f} | {kb:.0f} |"
        )


def seed(work: Path, records: int) -> dict[str, str]:
    """Publish the examples and import ``records`` invoices; the environment that reaches them."""
    env = {
        **os.environ,
        "APPBOOK_HOME": str(work / "home"),
        "APPBOOK_DATABASE_URL": f"sqlite:///{work / 'appbook.db'}",
        "APPBOOK_REDIS_URL": "",
        "JUPYTER_RUNTIME_DIR": str(work / "rt"),
    }
    subprocess.run(
        [PYTHON, "-m", "appbook", "publish", str(ROOT / "notebooks" / "examples")],
        env=env,
        check=True,
        capture_output=True,
    )
    rows = work / "invoices.jsonl"
    with rows.open("w") as out:
        for i in range(records):
            item = {"number": f"INV-{i:06d}", "title": f"Invoice {i}", "amount": i % 5000}
            out.write(json.dumps(item) + "\n")
    subprocess.run(
        [PYTHON, "-m", "appbook", "records", "import", "invoices", str(rows)],
        env=env,
        check=True,
        capture_output=True,
    )
    (work / "peer.ipynb").write_text(json.dumps(PEER_NOTEBOOK))
    return env


@contextmanager
def serving(kind: str, work: Path, env: dict[str, str]) -> Iterator[str]:
    """Start a server of ``kind``; yield the app's address; stop it."""
    port = free_port()
    log = (work / f"{kind}-{port}.log").open("wb")
    if kind == "appbook":
        argv: Sequence[str] = [
            PYTHON, "-m", "appbook", "serve", "--port", str(port), "--no-browser",
            f"--IdentityProvider.token={TOKEN}",
        ]  # fmt: skip
        url = f"http://127.0.0.1:{port}/appbook/apps/invoices?page=all&token={TOKEN}"
        ready = f"http://127.0.0.1:{port}/appbook/api/health?token={TOKEN}"
    else:
        argv = [
            PYTHON, "-m", "voila", str(work / "peer.ipynb"), "--port", str(port),
            "--no-browser", "--Voila.ip=127.0.0.1",
        ]  # fmt: skip
        if kind == "voila-preheat":
            argv = [*argv, "--preheat_kernel=True", "--pool_size=1"]
        url = f"http://127.0.0.1:{port}/"
        ready = f"http://127.0.0.1:{port}/voila/static/voila.js"
    proc = subprocess.Popen(argv, env=env, cwd=work, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ready(proc, ready)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def wait_ready(proc: subprocess.Popen[bytes], url: str, timeout: float = 90) -> None:
    """Until ``url`` answers (or the process dies)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer in {timeout} s")


def free_port() -> int:
    """A TCP port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


if __name__ == "__main__":
    raise SystemExit(main())
