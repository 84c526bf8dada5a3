"""Benchmark of dataflow files: records exported to XLSX and imported back, next to the same
with CSV, on PostgreSQL.

Usage (run by hand; see bench/README.md for the figures)::

    .venv/bin/python bench/files.py --rows 100000

The table is filled with one SQL statement. Each way then runs in a fresh child process (so
one way's peak memory is not another's leftover), timed on the wall clock with its peak RSS
sampled every 20 ms above the child's size just before the run (Appbook open, csv and
openpyxl imported):

* ``export``: ``query`` (keyset pages of 1,000) → ``export_file`` (5 columns: id, two
  numbers, text and a datetime), stored in the file store after the commit;
* ``import``: ``import_file`` of that file → ``filter: "false"`` (every row read, parsed,
  typed and dropped: the reading alone, no writes).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import load_average, machine, server_version, temporary_database
from dataflows import ITEMS, fill, measured

from appbook.server.config import EngineConfig
from appbook.server.engine import Appbook

COMPONENT = (
    ITEMS
    + """\
dataflows:
  export_csv:
    stages:
      - name: s
        steps:
          - {name: all, query: {chunk_size: 1000}}
          - name: out
            export_file: {format: csv, name: items.csv, fields: [id, n, price, tag, updated_at]}
  export_xlsx:
    stages:
      - name: s
        steps:
          - {name: all, query: {chunk_size: 1000}}
          - name: out
            export_file: {format: xlsx, name: items.xlsx, fields: [id, n, price, tag, updated_at]}
  read:
    stages:
      - name: s
        steps:
          - {name: rows, import_file: {file: "inputs.file"}}
          - {name: drop, filter: "false"}
"""
)


def child(url: str, home: str, way: str, file_id: str | None) -> None:
    """Run one way in this process and print its figures as JSON."""
    import csv  # noqa: F401  (imported before measuring, like openpyxl)

    import openpyxl  # noqa: F401

    config = EngineConfig.from_values(home=home, database_url=url, redis_url="")
    app = Appbook(config, actor="bench")
    try:
        report: dict[str, object] = {}

        def work() -> int:
            if way.startswith("export"):
                result = app["items"].run_dataflow(way)
                report["file"] = result.files["out"]["id"]
                report["size"] = result.files["out"]["size"]
                return int(result.files["out"]["items"])
            result = app["items"].run_dataflow("read", {"file": file_id})
            return next(int(s["out"]) for s in result.steps if s["step"] == "rows")

        items, seconds, peak = measured(work)
        print(json.dumps({**report, "items": items, "seconds": seconds, "peak": peak}))
    finally:
        app.close()


def run_child(url: str, home: Path, way: str, file_id: str | None = None) -> dict[str, object]:
    command = [sys.executable, __file__, "--child", way, "--url", url, "--home", str(home)]
    if file_id is not None:
        command += ["--file", file_id]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    figures: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--home", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.url, args.home, args.child, args.file)
        return
    with temporary_database("postgresql") as (url, home):
        config = EngineConfig.from_values(home=str(home), database_url=url, redis_url="")
        app = Appbook(config, actor="bench")
        try:
            app.publish_texts({"items.component.yaml": COMPONENT})
            fill(app, args.rows)
            print(f"# {machine()}; {server_version(app.engine)}; load {load_average()}")
        finally:
            app.close()
        print("| format | way | rows | seconds | rows/s | file size | peak RSS above start |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
        for fmt in ("csv", "xlsx"):
            exported = run_child(url, home, f"export_{fmt}")
            imported = run_child(url, home, "read", str(exported["file"]))
            size = f"{int(str(exported['size'])) / 2**20:.1f} MiB"
            for way, figures in (("export", exported), ("import", imported)):
                rows, seconds = int(str(figures["items"])), float(str(figures["seconds"]))
                print(
                    f"| {fmt} | {way} | {rows:,} | {seconds:.1f} | {rows / seconds:,.0f} | "
                    f"{size} | {float(str(figures['peak'])):.0f} MiB |"
                )
                sys.stdout.flush()


if __name__ == "__main__":
    main()
