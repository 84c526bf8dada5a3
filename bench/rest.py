"""Benchmark of the REST API under load, next to a bare jupyter_server handler.

Usage (run by hand on an idle machine; see bench/README.md for the figures)::

    apt-get install -y wrk nginx        # Debian packages: the load generator and the proxy
    .venv/bin/python bench/rest.py      # everything: about 8 minutes
    .venv/bin/python bench/rest.py --backends sqlite --threads 8 --no-cluster --duration 5

Everything listens on 127.0.0.1 only. The script starts, as subprocesses:

* the peers (``bench/_rest_peers.py``): a bare jupyter_server (no other extension) whose one
  authenticated ``APIHandler`` answers a constant JSON, and a plain tornado handler;
* ``appbook serve`` on a throwaway SQLite folder, then on a fresh PostgreSQL schema, once
  per ``--threads`` value (``--AppbookApp.db_threads``); it publishes a small component
  through ``POST /appbook/api/publications`` and imports ``--records`` records;
* with ``--cluster`` (the default when PostgreSQL is measured): nginx (``-c``/``-p`` in a
  temporary folder, not the system service) in front of one, then two, ``appbook serve``
  processes sharing one PostgreSQL schema.

``wrk`` drives ``--connections`` connections for ``--duration`` seconds per figure (after a
two-second warm-up): the constant handlers, GET of a random record id, and a query (where +
order_by + limit 50). Each figure gives requests/s, p50 and p99 latency; Appbook's figures
are also given as a ratio to the bare jupyter_server handler of the same run. Every process
is stopped at the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import load_average, machine, temporary_database

BENCH = Path(__file__).resolve().parent
PYTHON = sys.executable
TOKEN = secrets.token_hex(16)
COMPONENT = "invoices"
DEFINITION = """\
name: invoices
title: Invoices
fields:
  number:   {type: string, required: true, unique: true, min_length: 2}
  title:    {type: string, required: true, max_length: 200}
  amount:   {type: number, min: 0, indexed: true}
  due_date: {type: datetime, indexed: true}
  status:   {type: enum, choices: {0: Under Review, 1: Accepted, 2: Rejected, 3: Paid}, default: 0}
"""
RECORDS_PATH = f"/appbook/api/components/{COMPONENT}/records"
QUERY = {
    "where": json.dumps({"amount": {"gt": 5000}, "status": {"in": [0, 1]}}),
    "order_by": "-due_date",
    "limit": "50",
}
QUERY_PATH = f"{RECORDS_PATH}?{urllib.parse.urlencode(QUERY)}"
# nginx as a reverse proxy over the appbook serve processes, on 127.0.0.1 only; run in the
# foreground by this script (-p/-c), never as the system service.
NGINX_CONF = """\
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    upstream appbook {{ {servers}keepalive 64; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://appbook;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
        }}
    }}
}}
"""
CONSTANT_PATH = "/bench/constant"
BARE = "bare jupyter_server handler"
IN_APPBOOK = "same handler inside appbook serve"
HEALTH = "Appbook /health (no database)"
GET = "Appbook GET records/{id}"
QUERY_NAME = "Appbook query (where, order, 50)"
INSTALL_HINT = "install them with: apt-get install -y wrk nginx (Debian/Ubuntu packages)"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def call(port: int, method: str, path: str, body: bytes | None = None) -> Any:
    """One authenticated request; the JSON answer (raises on a non-2xx status)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=body,
        method=method,
        headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        data = response.read()
    return json.loads(data) if data else None


@dataclass
class Server:
    """A process started by :class:`Processes`, listening on ``port``."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    stop_signal: int = signal.SIGTERM


class Processes:
    """Starts servers and stops every one it started (newest first) when the block ends."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.servers: list[Server] = []

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        # A second Ctrl-C must not leave servers behind: finish stopping first.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            while self.servers:
                self.stop(self.servers[-1])
        finally:
            signal.signal(signal.SIGINT, previous)

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        port: int,
        env: dict[str, str] | None = None,
        ready: str | None = "/api/status",
        stop_signal: int = signal.SIGTERM,
    ) -> Server:
        """Start ``argv`` (output to a log file) and wait until ``ready`` answers 200."""
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                list(argv),
                cwd=self.workdir,
                env={**os.environ, **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us only; we stop them in order
            )
        server = Server(name, port, process, log, stop_signal)
        self.servers.append(server)
        self._wait_ready(server, ready)
        return server

    def stop(self, server: Server, timeout: float = 30) -> None:
        """Stop ``server`` gracefully, or kill it after ``timeout`` seconds."""
        if server.process.poll() is None:
            server.process.send_signal(server.stop_signal)
            try:
                server.process.wait(timeout)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()
        self.servers.remove(server)

    def _wait_ready(self, server: Server, path: str | None, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                break
            try:
                if path is None:
                    socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
                else:
                    call(server.port, "GET", path)
                return
            except (OSError, urllib.error.URLError):
                time.sleep(0.2)
        tail = server.log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{server.name} did not start on port {server.port}:\n{tail}")


def cpu_seconds(servers: Sequence[Server]) -> float:
    """User + system CPU seconds the ``servers`` processes (all threads) have used so far."""
    ticks = 0
    for server in servers:
        fields = Path(f"/proc/{server.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class Figure:
    """One load run: what was measured, what wrk saw, and the servers' CPU per request."""

    target: str
    backend: str
    setup: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_ms: float


UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def parse_wrk(output: str) -> dict[str, float]:
    """requests, requests/s, p50 and p99 (ms) and failures from ``wrk --latency`` output."""
    found = re.search(r"(\d+) requests in .*\n(?s:.*)Requests/sec:\s+([\d.]+)", output)
    if found is None:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    latency = {
        int(m[1]): float(m[2]) * UNITS[m[3]]
        for m in re.finditer(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M)
    }
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses:\s+(\d+)", output))
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return {
        "requests": int(found[1]),
        "rps": float(found[2]),
        "p50": latency[50],
        "p99": latency[99],
        "errors": errors,
    }


@dataclass
class Load:
    """How wrk drives each figure."""

    duration: int
    connections: int
    threads: int
    workdir: Path

    def run(
        self, port: int, path: str, servers: Sequence[Server], ids: Sequence[int] | None = None
    ) -> dict[str, float]:
        """Warm up for 2 s, then measure ``path`` (random record ids when ``ids`` given).

        Besides wrk's figures, ``cpu_ms``: the CPU the ``servers`` used per request.
        """
        argv = ["wrk", f"-t{self.threads}", f"-c{self.connections}", "--latency", "--timeout=10s"]
        argv += ["-H", f"Authorization: token {TOKEN}"]
        if ids:
            argv += ["-s", str(self._random_ids_script(path, ids))]
        url = f"http://127.0.0.1:{port}{path}"
        subprocess.run([*argv, "-d2s", url], check=True, capture_output=True)
        before = cpu_seconds(servers)
        done = subprocess.run(
            [*argv, f"-d{self.duration}s", url], check=True, capture_output=True, text=True
        )
        used = cpu_seconds(servers) - before
        figures = parse_wrk(done.stdout)
        figures["cpu_ms"] = used * 1000 / max(figures["requests"], 1)
        return figures

    def _random_ids_script(self, path: str, ids: Sequence[int]) -> Path:
        script = self.workdir / "random_ids.lua"
        script.write_text(
            f"local ids = {{{','.join(map(str, ids))}}}\n"
            "math.randomseed(os.time())\n"
            "request = function()\n"
            f'  return wrk.format("GET", "{path}/" .. ids[math.random(#ids)])\n'
            "end\n"
        )
        return script


class Bench:
    """The runs of one invocation, and the figures they produced."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.load = Load(args.duration, args.connections, args.wrk_threads, workdir)
        self.figures: list[Figure] = []
        self.bare: dict[str, Figure] = {}
        self.peer_servers: dict[str, Server] = {}
        config = workdir / "jupyter-config"
        config.mkdir(exist_ok=True)
        # appbook serve also loads the constant handler, to tell server set-up from Appbook.
        (config / "jupyter_server_config.json").write_text(
            json.dumps({"ServerApp": {"jpserver_extensions": {"_rest_peers": True}}})
        )

    def measure(
        self,
        target: str,
        backend: str,
        setup: str,
        path: str,
        servers: Sequence[Server],
        *,
        via: Server | None = None,
        ids: Sequence[int] | None = None,
    ) -> Figure:
        """Load ``path`` on ``via`` (default: the first server); print and keep the figure."""
        port = (via or servers[0]).port
        got = self.load.run(port, path, servers, ids)
        figure = Figure(
            target,
            backend,
            setup,
            got["rps"],
            got["p50"],
            got["p99"],
            int(got["errors"]),
            got["cpu_ms"],
        )
        self.figures.append(figure)
        print(
            f"  {target:<36} {setup:<24} {figure.rps:7,.0f} req/s  p50 {figure.p50_ms:6.2f} ms"
            f"  p99 {figure.p99_ms:6.2f} ms  cpu {figure.cpu_ms:5.2f} ms/req"
            f"  errors {figure.errors}",
            flush=True,
        )
        return figure

    def peers(self, procs: Processes) -> None:
        """Start the bare jupyter_server and the plain tornado app."""
        port = free_port()
        self.peer_servers["bare"] = procs.start(
            "bare-jupyter-server",
            [
                PYTHON,
                "-m",
                "jupyter_server",
                f"--port={port}",
                "--ServerApp.port_retries=0",
                "--ServerApp.ip=127.0.0.1",
                "--no-browser",
                "--allow-root",
                f"--IdentityProvider.token={TOKEN}",
                '--ServerApp.jpserver_extensions={"_rest_peers": True}',
            ],
            port=port,
            env={
                "PYTHONPATH": str(BENCH),
                "JUPYTER_NO_CONFIG": "1",
                "JUPYTER_RUNTIME_DIR": str(self.workdir / "rt-bare"),
            },
        )
        plain_port = free_port()
        self.peer_servers["plain"] = procs.start(
            "plain-tornado",
            [PYTHON, str(BENCH / "_rest_peers.py"), str(plain_port)],
            port=plain_port,
            ready=None,
        )

    def measure_peers(self, label: str) -> None:
        """The peers' figures, measured again next to each backend."""
        bare, plain = self.peer_servers["bare"], self.peer_servers["plain"]
        self.bare[label] = self.measure(BARE, label, "bare jupyter_server", CONSTANT_PATH, [bare])
        self.measure(
            "jupyter_server /api/status", label, "bare jupyter_server", "/api/status", [bare]
        )
        self.measure("plain tornado handler", label, "tornado", CONSTANT_PATH, [plain])

    def start_appbook(
        self, procs: Processes, name: str, database_url: str, home: Path, db_threads: int
    ) -> Server:
        """``appbook serve`` on ``database_url`` (with the constant handler loaded too)."""
        port = free_port()
        return procs.start(
            name,
            [
                PYTHON,
                "-m",
                "appbook",
                "serve",
                "--port",
                str(port),
                "--no-browser",
                "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={TOKEN}",
                f"--AppbookApp.db_threads={db_threads}",
            ],
            port=port,
            env={
                "APPBOOK_HOME": str(home / "appbook"),
                "APPBOOK_DATABASE_URL": database_url,
                "APPBOOK_REDIS_URL": "",
                # A checkout given in $PYTHONPATH wins over the installed appbook.
                "PYTHONPATH": os.pathsep.join(
                    filter(None, [str(BENCH), os.environ.get("PYTHONPATH")])
                ),
                # REST figures only: no preheated app kernels starting beside the load.
                "APPBOOK_APP_POOL_SIZE": "0",
                "JUPYTER_RUNTIME_DIR": str(self.workdir / f"rt-{name}"),
                "JUPYTER_CONFIG_DIR": str(self.workdir / "jupyter-config"),
            },
        )

    def seed(self, server: Server) -> list[int]:
        """Publish the component and import ``--records`` records; their ids."""
        published = json.dumps({"files": {"invoices.component.yaml": DEFINITION}}).encode()
        call(server.port, "POST", "/appbook/api/publications", published)
        rows = (
            json.dumps(
                {
                    "number": f"INV-{i:06d}",
                    "title": f"Invoice {i} for office supplies",
                    "amount": (i * 7919) % 10_000 + 0.5,
                    "due_date": f"2026-{i % 12 + 1:02d}-{i % 28 + 1:02d}T00:00:00Z",
                    "status": i % 4,
                }
            )
            for i in range(self.args.records)
        )
        body = "\n".join(rows).encode()
        call(server.port, "POST", f"{RECORDS_PATH}:import?format=jsonl", body)
        page = call(server.port, "GET", f"{RECORDS_PATH}?fields=id&limit=10000")
        return [item["id"] for item in page["items"]]

    def backend(self, backend: str) -> None:
        """The peers, then Appbook at each ``--threads`` value, on one backend."""
        print(f"\n{backend}", flush=True)
        self.measure_peers(backend)
        with temporary_database(backend) as (url, home):
            ids: list[int] = []
            for n in self.args.threads:
                with Processes(self.workdir) as procs:
                    app = self.start_appbook(procs, f"appbook-{backend}-{n}", url, home, n)
                    setup = f"1 process, {n} db threads"
                    if not ids:
                        ids = self.seed(app)
                        # Once per backend: the same server without Appbook's work.
                        self.measure(IN_APPBOOK, backend, setup, CONSTANT_PATH, [app])
                        self.measure(HEALTH, backend, setup, "/appbook/api/health", [app])
                    self.measure(GET, backend, setup, RECORDS_PATH, [app], ids=ids)
                    self.measure(QUERY_NAME, backend, setup, QUERY_PATH, [app])

    def cluster(self) -> None:
        """nginx over one, then two, ``appbook serve`` on one PostgreSQL schema."""
        print("\npostgresql behind nginx", flush=True)
        threads = max(self.args.threads)
        with temporary_database("postgresql") as (url, home), Processes(self.workdir) as procs:
            first = self.start_appbook(procs, "appbook-node-1", url, home, threads)
            ids = self.seed(first)
            second = self.start_appbook(procs, "appbook-node-2", url, home, threads)
            for nodes in ([first], [first, second]):
                proxy = self.start_nginx(procs, nodes)
                setup = f"nginx, {len(nodes)} process{'es' if len(nodes) > 1 else ''}"
                self.measure(GET, "postgresql", setup, RECORDS_PATH, nodes, via=proxy, ids=ids)
                self.measure(QUERY_NAME, "postgresql", setup, QUERY_PATH, nodes, via=proxy)
                procs.stop(proxy)

    def start_nginx(self, procs: Processes, nodes: Sequence[Server]) -> Server:
        """nginx on 127.0.0.1 balancing over ``nodes``, from a config in the work folder."""
        prefix = self.workdir / f"nginx-{len(nodes)}"
        prefix.mkdir(exist_ok=True)
        port = free_port()
        conf = prefix / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(
                prefix=prefix,
                port=port,
                servers="".join(f"server 127.0.0.1:{n.port}; " for n in nodes),
            )
        )
        return procs.start(
            f"nginx-{len(nodes)}",
            ["nginx", "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
            port=port,
            ready="/appbook/api/health",
            stop_signal=signal.SIGQUIT,
        )

    def report(self) -> str:
        """A Markdown table of every figure; throughput also as a ratio to the bare handler."""
        head = (
            "| target | backend | setup | req/s | p50 ms | p99 ms | req/s ÷ bare "
            "| server CPU ms/req | errors |"
        )
        lines = [head, "|---|---|---|---|---|---|---|---|---|"]
        for f in self.figures:
            bare = self.bare.get(f.backend)
            ratio = f"{f.rps / bare.rps:.2f}" if bare and f is not bare else ""
            lines.append(
                f"| {f.target} | {f.backend} | {f.setup} | {f.rps:,.0f} | {f.p50_ms:.2f} "
                f"| {f.p99_ms:.2f} | {ratio} | {f.cpu_ms:.2f} | {f.errors} |"
            )
        return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgresql", type=lambda s: s.split(","))
    parser.add_argument(
        "--threads",
        default=[1, 4, 8],
        type=lambda s: [int(n) for n in s.split(",")],
        help="db_threads values to measure (comma-separated)",
    )
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--duration", type=int, default=10, help="seconds per figure")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument(
        "--no-cluster", dest="cluster", action="store_false", help="skip the nginx runs"
    )
    return parser.parse_args(argv)


def warn_other_load() -> None:
    """Say so when other benchmarks or test runs share the machine: they skew the figures."""
    found = subprocess.run(
        ["pgrep", "-af", r"bench/records\.py|pytest"], capture_output=True, text=True
    ).stdout.strip()
    if found:
        print(f"WARNING: other work is running, figures will be skewed:\n{found}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    needed = ["wrk"] + (["nginx"] if args.cluster and "postgresql" in args.backends else [])
    missing = [tool for tool in needed if shutil.which(tool) is None]
    if missing:
        print(f"missing: {', '.join(missing)}; {INSTALL_HINT}", file=sys.stderr)
        return 2
    print(f"{machine()}; load average {load_average()}")
    print(
        f"wrk: {args.connections} connections, {args.wrk_threads} thread(s), "
        f"{args.duration} s per figure after a 2 s warm-up"
    )
    warn_other_load()
    with tempfile.TemporaryDirectory(prefix="appbook-rest-bench-") as folder:
        workdir = Path(folder)
        bench = Bench(args, workdir)
        try:
            with Processes(workdir) as peers:
                bench.peers(peers)
                for backend in args.backends:
                    bench.backend(backend)
                if args.cluster and "postgresql" in args.backends:
                    bench.cluster()
        except KeyboardInterrupt:
            print("\ninterrupted: every server was stopped", file=sys.stderr)
            return 130
        finally:
            if bench.figures:
                print("\n" + bench.report())
    print(f"load average after: {load_average()}")
    warn_other_load()
    return 0


if __name__ == "__main__":
    sys.exit(main())
