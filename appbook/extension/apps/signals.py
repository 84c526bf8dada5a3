"""Keep the server's Ctrl-C and SIGTERM handling while Voilà runs app notebooks.

Voilà runs an app notebook with nbclient, whose ``async_setup_kernel`` installs its own
SIGINT and SIGTERM handlers on the event loop for as long as the notebook runs (a preheated
app kernel runs it until a request arrives) and, when it ends, resets them to Python's
defaults. In a server extension that means Ctrl-C would only stop one app kernel, and
SIGTERM would kill the server without shutting its kernels down. Standalone Voilà has one
kernel per process and does not notice; a server with many must. The watcher sets the
server's handlers once the loop runs and puts them back whenever they changed.

When its standard input is not a terminal, jupyter_server leaves SIGINT to Python, whose
KeyboardInterrupt stops the loop without shutting kernels down (and the process then waits
at exit on nbclient's clean-up of the app kernels it was running). Appbook makes Ctrl-C a
clean stop there, as SIGTERM already is.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from typing import Any


def keep_server_signals(serverapp: Any, interval: float = 0.5) -> asyncio.Task[None]:
    """Install the server's handlers and keep them (call from the running loop)."""
    loop = asyncio.get_running_loop()
    interactive = signal.getsignal(signal.SIGINT) == serverapp._handle_sigint
    wanted: dict[int, Any] = {
        signal.SIGINT: serverapp._handle_sigint if interactive else serverapp._signal_stop,
        signal.SIGTERM: serverapp._signal_stop,
    }
    restore(loop, wanted)
    return loop.create_task(_watch(loop, wanted, interval))


def restore(loop: asyncio.AbstractEventLoop, wanted: dict[int, Any]) -> bool:
    """Put the remembered handlers back if something replaced them; True if it did."""
    changed = False
    for sig, handler in wanted.items():
        current = signal.getsignal(sig)
        if current == handler or (interactive_handler(current) and interactive_handler(handler)):
            continue
        with contextlib.suppress(ValueError, RuntimeError):
            loop.remove_signal_handler(sig)  # nbclient's, if it used the loop
        signal.signal(sig, _as_handler(handler))
        changed = True
    return changed


async def _watch(loop: asyncio.AbstractEventLoop, wanted: dict[int, Any], interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        restore(loop, wanted)


def interactive_handler(handler: Any) -> bool:
    """jupyter_server's Ctrl-C handlers swap each other (ask, then stop on a second Ctrl-C):
    either is the server's own."""
    return getattr(handler, "__name__", "") in ("_handle_sigint", "_signal_stop")


def _as_handler(handler: Any) -> Callable[..., Any] | int:
    return signal.SIG_DFL if handler is None else handler
