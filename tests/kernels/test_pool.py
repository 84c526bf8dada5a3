"""The warm kernel pool: ready kernels with connected clients, one notebook each, refilled in
the background, cold starts when it runs dry, the data layer's environment, preloads."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appbook.kernels.pool import KernelPool, PoolClosed, PooledKernel, default_pool, sweep_folders

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pool() -> Iterator[KernelPool]:
    pool = KernelPool(size=2, environment={"APPBOOK_HOME": "/tmp/appbook-pool-test"})
    pool.start()
    assert pool.wait_ready(timeout=120)
    yield pool
    pool.close()


def evaluate(pool: KernelPool, kernel: PooledKernel, expression: str, code: str = "") -> Any:
    """Run ``code``, then the JSON of ``expression``, in ``kernel``."""
    reply = pool.run(
        kernel.kc.execute(
            code,
            reply=True,
            timeout=30,
            user_expressions={"value": f"__import__('json').dumps({expression})"},
        )
    )
    content = reply["content"]
    assert content["status"] == "ok", content
    value = content["user_expressions"]["value"]
    assert value["status"] == "ok", value
    return json.loads(eval(value["data"]["text/plain"]))  # the repr of a str


def test_a_take_hands_out_a_ready_kernel_and_the_pool_refills(pool: KernelPool) -> None:
    warm = pool.stats.warm
    kernel = pool.take()
    try:
        assert kernel.warm and pool.stats.warm == warm + 1
        assert kernel.language_info["name"] == "python"
        assert evaluate(pool, kernel, "1 + 1") == 2  # the client is connected and ready
        assert evaluate(pool, kernel, "os.getcwd()", "import os") == str(kernel.cwd)
    finally:
        pool.release(kernel)
    assert pool.wait_ready(timeout=120)  # a replacement was started in the background
    assert pool.ready == 2


def test_kernels_serve_once_so_no_state_is_shared(pool: KernelPool) -> None:
    first = pool.take()
    assert evaluate(pool, first, "secret", "secret = 42") == 42
    pid = evaluate(pool, first, "os.getpid()", "import os")
    pool.release(first)
    second = pool.take()
    try:
        assert evaluate(pool, second, "'secret' in globals()") is False
        assert evaluate(pool, second, "os.getpid()", "import os") != pid
    finally:
        pool.release(second)
    assert pool.run(_gone(first)), "a released kernel is shut down and its folder removed"


async def _gone(kernel: PooledKernel, timeout: float = 30.0) -> bool:
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = kernel.km.has_kernel and await kernel.km.is_alive()
        if not alive and not kernel.workdir.exists():
            return True
        await asyncio.sleep(0.05)
    return False


def test_kernels_get_the_data_layer_environment_and_the_preloads(pool: KernelPool) -> None:
    assert pool.wait_ready(timeout=120)
    kernel = pool.take()
    try:
        assert kernel.warm  # refills preload; a cold start for a take does not
        home = evaluate(pool, kernel, "os.environ.get('APPBOOK_HOME')", "import os")
        assert home == "/tmp/appbook-pool-test"
        loaded = evaluate(pool, kernel, "[m in sys.modules for m in names]", _names(pool))
        assert loaded == [True] * len(pool.preload)
        # Preloading binds no names: the notebook's namespace is as empty as a fresh one.
        assert evaluate(pool, kernel, "'pandas' in globals()") is False
        assert evaluate(pool, kernel, "'appbook' in globals()") is False
    finally:
        pool.release(kernel)
    assert "pandas" in pool.preload and "appbook.server.engine" in pool.preload


def _names(pool: KernelPool) -> str:
    return f"import sys\nnames = {pool.preload!r}"


def test_a_dry_pool_falls_back_to_cold_starts_and_counts_them() -> None:
    pool = KernelPool(size=0, preload=[])
    try:
        kernel = pool.take(timeout=120)
        try:
            assert not kernel.warm
            assert pool.stats.cold == 1 and pool.stats.warm == 0
            assert evaluate(pool, kernel, "2 * 21") == 42
        finally:
            pool.release(kernel)
        assert pool.ready == 0  # size 0 keeps nothing started
    finally:
        pool.close()
    with pytest.raises(PoolClosed):
        pool.take()


def test_takes_beyond_the_size_wait_for_starts_and_closing_stops_everything() -> None:
    pool = KernelPool(size=1, preload=[])
    pool.start()
    try:
        assert pool.wait_ready(timeout=120)
        kernels = [pool.take(timeout=120) for _ in range(3)]
        assert [k.warm for k in kernels] == [True, False, False]
        assert pool.stats.cold == 2
        assert len({k.km.kernel_id for k in kernels}) == 3
        pids = [evaluate(pool, k, "os.getpid()", "import os") for k in kernels]
    finally:
        pool.close()  # lent kernels too: nothing outlives the pool
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_the_default_pool_is_one_per_process() -> None:
    assert default_pool() is default_pool()


def test_folders_of_a_killed_pools_process_are_swept(tmp_path: Path) -> None:
    import subprocess
    import sys

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    stale = tmp_path / f"appbook-kernel-{int(dead.stdout)}-abc"
    live = tmp_path / f"appbook-kernel-{os.getpid()}-def"
    for folder in (stale, live):
        (folder / "run").mkdir(parents=True)
    assert sweep_folders(str(tmp_path)) == [stale]
    assert not stale.exists() and live.exists()
