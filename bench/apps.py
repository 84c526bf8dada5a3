"""How fast an app opens in a real browser: Appbook's apps next to standalone Voilà.

Headless Chromium (Debian's ``chromium``, driven by Playwright) opens the invoices app's
"All invoices" page and waits until the grid shows its first row: the page is interactive.
The time is from the navigation start to that moment, in a fresh browser context each time.

* **Appbook, preheated**: ``appbook serve`` with one preheated app kernel
  (``APPBOOK_APP_POOL_SIZE=1``), opening ``/appbook/apps/invoices?page=all``; between opens
  the script waits for the pool to refill.
* **Appbook, cold**: the same with ``APPBOOK_APP_POOL_SIZE=0`` (each open starts a kernel).
* **Peers**: standalone ``voila`` serving a notebook that shows the same page
  (``show("invoices", "all")``) on the same database, cold, and preheated
  (``--preheat_kernel=True --pool_size=1``, which renders the whole notebook ahead).

Run by hand (it asserts nothing): ``.venv/bin/python bench/apps.py [--opens 5]``. Needs
``/usr/bin/chromium`` (``apt-get install chromium``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _common import load_average, machine, percentile

ROOT = Path(__file__).parents[1]
PYTHON = sys.executable
CHROMIUM = os.environ.get("APPBOOK_BENCH_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TOKEN = "bench-apps-token"
READY = ".appbook-grid .widget-button >> nth=0"  # the first row's "Open" button (or a header)
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


def main(argv: list[str] | None = None) -> int:
    """Measure and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--opens", type=int, default=5, help="page opens per setup")
    parser.add_argument("--records", type=int, default=1000, help="invoices in the database")
    parser.add_argument("--refill", type=float, default=10.0, help="seconds between opens")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"missing {CHROMIUM}: apt-get install -y chromium", file=sys.stderr)
        return 2
    print(f"{machine()}; load average {load_average()}")
    from playwright.sync_api import sync_playwright

    results: list[tuple[str, list[float]]] = []
    with tempfile.TemporaryDirectory(prefix="appbook-apps-bench-") as folder:
        work = Path(folder)
        env = seed(work, args.records)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            setups = (
                ("Appbook app, preheated (pool 1)", "appbook", {"APPBOOK_APP_POOL_SIZE": "1"}),
                ("Appbook app, cold (pool 0)", "appbook", {"APPBOOK_APP_POOL_SIZE": "0"}),
                ("standalone Voilà, preheated (pool 1)", "voila-preheat", {}),
                ("standalone Voilà, cold", "voila", {}),
            )
            for label, kind, extra in setups:
                with serving(kind, work, {**env, **extra}) as url:
                    preheated = "preheat" in label
                    if preheated:
                        time.sleep(args.refill)  # the first pool kernel starts with the server
                    times = [
                        open_once(browser, url, args.refill if preheated else 1.0)
                        for _ in range(args.opens)
                    ]
                results.append((label, times))
                print(f"  {label:<40} p50 {percentile(times, 50):6.2f} s", flush=True)
            browser.close()
    print()
    print("| setup | opens | p50 s | min s | max s |")
    print("|---|---|---|---|---|")
    for label, times in results:
        print(
            f"| {label} | {len(times)} | {percentile(times, 50):.2f} "
            f"| {min(times):.2f} | {max(times):.2f} |"
        )
    print(f"\nload average after: {load_average()}")
    return 0


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


def open_once(browser: Any, url: str, pause: float) -> float:
    """Seconds from navigation start until the grid's first row can be clicked."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        started = time.perf_counter()
        page.goto(url, timeout=120_000)
        page.locator(READY).wait_for(timeout=120_000)
        return time.perf_counter() - started
    finally:
        context.close()  # Voilà's page asks the server to shut its kernel down on unload
        time.sleep(pause)


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
        url = ready = f"http://127.0.0.1:{port}/"
    proc = subprocess.Popen(argv, env=env, cwd=work, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ready(
            proc, ready if kind == "appbook" else f"http://127.0.0.1:{port}/voila/static/voila.js"
        )
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
