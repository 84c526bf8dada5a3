"""``appbook serve`` starts JupyterLab with the extension, prints its URL, stops on Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.serving import free_port, sigint_default


def fetch_json(request: urllib.request.Request, deadline: float = 30.0) -> object:
    """The server may print its URL a moment before it accepts: retry refusals until a deadline."""
    end = time.monotonic() + deadline
    while True:
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.load(response)
        except urllib.error.URLError as exc:
            if not isinstance(exc.reason, ConnectionRefusedError) or time.monotonic() > end:
                raise
            time.sleep(0.1)


@pytest.mark.slow
def test_serve_prints_url_and_token_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "APPBOOK_HOME": str(tmp_path / "home"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"),
    }
    env.pop("APPBOOK_DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "appbook", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=sigint_default,
    )
    try:
        assert proc.stdout is not None
        url = None
        deadline = time.monotonic() + 60
        lines = []
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            match = re.search(rf"(http://127\.0\.0\.1:{port}/lab\?token=([0-9a-f]+))", line)
            if match:
                url, token = match.group(1), match.group(2)
        assert url is not None, "".join(lines)
        assert any(
            "appbook.extension | extension was successfully loaded" in line for line in lines
        )
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/appbook/api/health",
            headers={"Authorization": f"token {token}"},
        )
        assert fetch_json(request) == {"status": "ok", "checks": {}}
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail("no exit 30 s after Ctrl-C:\n" + "".join(lines) + proc.stdout.read())
        assert code == 0
        assert (tmp_path / "home" / "appbook.db").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
