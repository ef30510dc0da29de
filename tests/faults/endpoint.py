"""A TCP proxy in front of a real S3 endpoint (moto on 127.0.0.1) that can be frozen or stopped.

Frozen: it still accepts connections but forwards nothing (an endpoint that hangs). Stopped: the
port refuses connections. The S3 server behind it keeps its state, so the test can check
afterwards that the lake's last commit is intact.
"""

from __future__ import annotations

import socket
import threading


class FaultyEndpoint:
    """``http://127.0.0.1:<port>`` forwarding to ``target`` (``host:port``) until frozen or stopped."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.frozen = threading.Event()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._running = True
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while self._running:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._sockets.append(client)
            if self.frozen.is_set():
                continue  # hold the connection open, never answer
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            self._sockets.append(upstream)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                while self.frozen.is_set() and self._running:
                    self.frozen.wait(0.05) if not self.frozen.is_set() else threading.Event().wait(0.05)
                if not self._running:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def freeze(self) -> None:
        self.frozen.set()

    def thaw(self) -> None:
        self.frozen.clear()

    def stop(self) -> None:
        """Refuse connections from now on and cut the open ones."""
        self._running = False
        self.frozen.clear()
        try:
            self._listener.close()
        except OSError:
            pass
        for s in self._sockets:
            try:
                s.close()
            except OSError:
                pass
