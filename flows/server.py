"""Prefect's temporary server for a CLI run, started before Prefect is imported.

Without a configured ``PREFECT_API_URL``, a flow's first API call starts Prefect's temporary
(ephemeral) server, ``SubprocessASGIServer``: uvicorn serving ``prefect.server.api.server:create_app``
in a subprocess, ~7 s to answer on two quiet cores. Prefect starts it only when the flow begins, and
starting it through Prefect means importing the server module first (2-3 s in this process). The
CLI instead runs the same command itself (:func:`start`) first thing, before its pre-flight and
before it imports Prefect, so the server boots while those run and the local cluster starts;
the flow then talks to it as to a configured server (:func:`serving` sets ``PREFECT_API_URL`` for
the duration of the run). One server per process, reused by later runs in it and stopped at exit,
as Prefect's own is. This module imports only the standard library.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from importlib.util import find_spec

API_URL_ENV = "PREFECT_API_URL"
STARTUP_TIMEOUT_ENV = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
# what Prefect's SubprocessASGIServer sets for its subprocess: no UI, ephemeral (no background services)
SERVER_ENVIRONMENT = {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
PORT_IN_USE_EXIT = 3  # uvicorn's exit code when its port was taken between the pick and the bind


class _Server:
    """The temporary server's subprocess and port."""

    def __init__(self) -> None:
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.answered = False

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def spawn(self) -> None:
        self.port = _free_port()
        app_dir = os.path.dirname(find_spec("prefect").submodule_search_locations[0])  # found, not imported
        command = [sys.executable, "-m", "uvicorn", "--app-dir", app_dir, "--factory", "prefect.server.api.server:create_app",
                   "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "error", "--lifespan", "on"]  # fmt: skip
        self.process = subprocess.Popen(command, env={**os.environ, **SERVER_ENVIRONMENT}, stdin=subprocess.DEVNULL)

    def wait(self) -> None:
        """Block until the server answers ``/api/health`` (Prefect's own startup timeout applies)."""
        if self.answered:
            return
        timeout = float(os.environ.get(STARTUP_TIMEOUT_ENV) or 20)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() == PORT_IN_USE_EXIT:
                self.spawn()
            elif self.process.poll() is not None:
                raise RuntimeError(f"Prefect's temporary server exited with code {self.process.returncode} before it answered on {self.api_url}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as response:
                    if response.status == 200:
                        self.answered = True
                        return
            time.sleep(0.1)
        raise RuntimeError(f"Prefect's temporary server did not answer on {self.api_url} within {timeout:.0f} s ({STARTUP_TIMEOUT_ENV})")

    def stop(self, wait: bool = True) -> None:
        if self.process is None:
            return
        process, self.process, self.answered = self.process, None, False
        process.terminate()
        if not wait:  # still booting and unneeded: nothing to shut down cleanly, reaped later
            return
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


_server: _Server | None = None


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start() -> None:
    """Start the temporary server now, in the background, unless ``PREFECT_API_URL`` is set (once per process).

    A server configured in Prefect's profile instead is only known once Prefect is imported:
    :func:`serving` then stops this one unused.
    """
    global _server
    if os.environ.get(API_URL_ENV) or _running():
        return
    if _server is None:
        _server = _Server()
        atexit.register(stop)
    _server.spawn()


def _running() -> bool:
    return _server is not None and _server.process is not None


def is_temporary(api_url: str | None) -> bool:
    """Whether ``api_url`` is the temporary server of :func:`start` (its pages end with this process)."""
    return bool(api_url) and _running() and api_url.rstrip("/") == _server.api_url


def stop(wait: bool = True) -> None:
    """Stop the temporary server: at exit, or (``wait=False``: without waiting for it to exit) when the
    run turns out not to need it (bad input, every unit done, a configured server)."""
    if _server is not None:
        _server.stop(wait)


@contextlib.contextmanager
def serving() -> Iterator[None]:
    """For the duration: Prefect talks to the server of :func:`start`, waited for here.

    Nothing changes when Prefect has a server configured (the environment, or the profile) or none
    was started. Prefect reads the URL from its process-wide settings, refreshed from the environment
    on the way in and out (threads Prefect starts, like its log sender, see it too).
    """
    from prefect.context import refresh_global_settings_context
    from prefect.settings import PREFECT_API_URL

    if not _running() or PREFECT_API_URL.value():
        stop(wait=False)  # a configured server: the temporary one is not needed
        yield
        return
    _server.wait()
    os.environ[API_URL_ENV] = _server.api_url
    refresh_global_settings_context()
    try:
        yield
    finally:
        os.environ.pop(API_URL_ENV, None)
        refresh_global_settings_context()
