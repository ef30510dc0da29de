"""Prefect's temporary server, started early so that its start overlaps the CLI's own.

Without a configured ``PREFECT_API_URL``, a flow's first API call starts Prefect's temporary
(ephemeral) server, a uvicorn subprocess, and waits for it: 5-15 s on two cores, after the CLI
has imported the flows (~4 s) and started the local cluster. Started here first, in a background
thread, the server boots while those run; Prefect's client then finds the very same server
(``SubprocessASGIServer`` is one instance per port) already up. Nothing changes for a configured
server. This module imports nothing heavy until :func:`prestart` runs.
"""

from __future__ import annotations

import threading

_thread: threading.Thread | None = None


def prestart() -> None:
    """Start Prefect's temporary server in the background when no server is configured (once per process)."""
    global _thread
    if _thread is not None:
        return
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        return
    # imported here, in the calling thread: the background thread then imports nothing, so it
    # cannot race the caller's imports of the same modules
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()

    def start() -> None:
        try:
            server.start()
        except Exception:  # noqa: BLE001 - not started: the flow's own client tries again and reports it
            return

    _thread = threading.Thread(target=start, name="laion-lake-prefect-server", daemon=True)
    _thread.start()


def wait_until_started() -> None:
    """Block until a :func:`prestart` has finished (the server answers, or it failed to start)."""
    if _thread is not None:
        _thread.join()
