"""A TCP relay on loopback that can turn into a black hole, as a dropped NAT entry or a firewall
that starts discarding packets does.

:class:`Relay` forwards every connection it accepts to ``target``, byte for byte, until
:meth:`Relay.black_hole`: from then on it reads what either side sends and discards it, closes
nothing and passes on no close (each end learns of the loss only by the silence, e.g. from missed
heartbeats), and a connection accepted later reaches nothing either. :meth:`Relay.close` closes
every socket.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from urllib.parse import urlsplit, urlunsplit


class Relay:
    """A threaded TCP relay from ``127.0.0.1:port`` to ``target``."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self._holed = threading.Event()
        self._closed = False
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def url(self, url: str) -> str:
        """``url`` (user, password, path kept) with this relay as its host and port."""
        parts = urlsplit(url)
        userinfo, at, _ = parts.netloc.rpartition("@")
        return urlunsplit(parts._replace(netloc=f"{userinfo}{at}127.0.0.1:{self.port}"))

    def black_hole(self) -> None:
        """Forward nothing more, either way, on any connection, open or still to come."""
        self._holed.set()

    @property
    def holed(self) -> bool:
        return self._holed.is_set()

    def close(self) -> None:
        """Closes the listener and every connection, and waits for the relay's threads."""
        with self._lock:
            self._closed = True
            sockets = [self.listener, *self._sockets]
            self._sockets.clear()
            threads = list(self._threads)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes a thread blocked on it
            sock.close()
        for thread in threads:
            thread.join(5)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                if self._closed:
                    client.close()
                    return
                self._sockets.append(client)
            if self.holed:
                self._start(client, None)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._closed:
                    client.close()
                    upstream.close()
                    return
                self._sockets.append(upstream)
            self._start(client, upstream)
            self._start(upstream, client)

    def _start(self, source: socket.socket, sink: socket.socket | None) -> None:
        thread = threading.Thread(target=self._pump, args=(source, sink), daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _pump(self, source: socket.socket, sink: socket.socket | None) -> None:
        """Copies ``source`` to ``sink`` until the black hole, then discards what arrives; an end
        of ``source`` is passed on (as a close of ``sink``) only before the black hole."""
        try:
            while data := source.recv(65536):
                if sink is not None and not self.holed:
                    sink.sendall(data)
        except OSError:
            pass
        if sink is not None and not self.holed:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
