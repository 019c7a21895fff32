"""`memberbot serve --workers N`: N serving processes on one port (SO_REUSEPORT), watched.

The parent only starts, restarts and stops its children: each child is a whole `memberbot
serve` with its own database pool, cache connection and event loop. SIGINT/SIGTERM are passed
on, and the parent returns once every child has stopped (each within its own bound). A child
that dies is started again; one that fails right after starting (a wrong setting, the port
taken by something else) stops them all, with its own one-line reason already printed.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import signal
import sys
import time

from bot.cli.runtime import Failed

log = logging.getLogger("memberbot")

EARLY_EXIT_SECONDS = 10.0  # a child gone this soon after its start is a failure, not a crash
RESTART_DELAY_SECONDS = 1.0
PR_SET_PDEATHSIG = 1  # prctl(2)


def _die_with_parent() -> None:
    """In the child, before it runs: SIGTERM it when the supervisor dies, even by SIGKILL,
    so no serving process is left behind holding the port (Linux; elsewhere a no-op)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


async def _start(host: str, port: int) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "serve",
        "--reuse-port",
        "--host",
        host,
        "--port",
        str(port),
        preexec_fn=_die_with_parent,
    )


async def supervise(workers: int, host: str, port: int) -> int:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    log.info("serving host=%s port=%d workers=%d", host, port, workers)
    children = [asyncio.create_task(_keep(n, host, port, stopping)) for n in range(workers)]
    done, _ = await asyncio.wait(children, return_when=asyncio.FIRST_EXCEPTION)
    failed = [t.exception() for t in done if t.exception() is not None]
    stopping.set()
    await asyncio.gather(*children, return_exceptions=True)
    if failed:
        raise Failed(str(failed[0]))
    return 0


async def _keep(number: int, host: str, port: int, stopping: asyncio.Event) -> None:
    """Run child `number` until stopping; start it again when it dies on its own."""
    while True:
        started = time.monotonic()
        child = await _start(host, port)
        exited = asyncio.create_task(child.wait())
        stop = asyncio.create_task(stopping.wait())
        await asyncio.wait([exited, stop], return_when=asyncio.FIRST_COMPLETED)
        if stopping.is_set():
            stop.cancel()
            if child.returncode is None:
                child.send_signal(signal.SIGTERM)
            await exited
            return
        stop.cancel()
        code = child.returncode
        # An error exit soon after starting is a setting or the port: restarting cannot help.
        # Killed by a signal (negative code) is a crash, whenever it happens.
        if code is not None and code > 0 and time.monotonic() - started < EARLY_EXIT_SECONDS:
            raise RuntimeError(f"serving process {number} failed at start (exit {code})")
        log.warning("serving process %d exited (exit %s): starting it again", number, code)
        await asyncio.sleep(RESTART_DELAY_SECONDS)
