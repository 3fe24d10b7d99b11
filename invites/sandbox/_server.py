"""Serving the sandbox over real sockets with uvicorn."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn

from ._app import create_app
from ._core import Sandbox
from ._faults import ConnectionDropped


@dataclass(frozen=True)
class RunningSandbox:
    """A sandbox being served: where to reach it and its state."""

    url: str
    """Base URL of all three vendors, e.g. ``http://127.0.0.1:54321`` (no trailing slash)."""
    sandbox: Sandbox
    host: str
    port: int


class _DeliberateDrops(logging.Filter):
    """Drops uvicorn's traceback for `ConnectionDropped`: those drops are the point, not bugs."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.exc_info is None or not isinstance(record.exc_info[1], ConnectionDropped)


def quiet_deliberate_drops() -> None:
    """Keep uvicorn from logging a traceback for each deliberate drop (idempotent)."""
    uvicorn_errors = logging.getLogger("uvicorn.error")
    if not any(isinstance(existing, _DeliberateDrops) for existing in uvicorn_errors.filters):
        uvicorn_errors.addFilter(_DeliberateDrops())


def base_url(host: str, port: int) -> str:
    """``http://host:port``, with an IPv6 host in brackets."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@contextlib.contextmanager
def serve(
    sandbox: Sandbox | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    startup_timeout: float = 10.0,
) -> Iterator[RunningSandbox]:
    """Serve `sandbox` (a new default one when None) with uvicorn on a background thread.

    ``port=0`` binds a free ephemeral port; the handle's ``url`` and ``port`` carry the one
    bound. On entry it returns only once the server accepts connections; on exit it asks the
    server to stop and waits for its thread. Deliberate connection drops are not logged.

    Raises:
        RuntimeError: the server did not start (port taken, bad host) within `startup_timeout`.
    """
    sandbox = sandbox if sandbox is not None else Sandbox()
    config = uvicorn.Config(
        create_app(sandbox), host=host, port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    quiet_deliberate_drops()

    def run() -> None:
        # uvicorn exits the process when it cannot bind; here that only ends this thread.
        with contextlib.suppress(SystemExit):
            server.run()

    thread = threading.Thread(target=run, name="invites-sandbox", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the sandbox server did not start on {base_url(host, port)}")
            time.sleep(0.005)
        bound_port: int = server.servers[0].sockets[0].getsockname()[1]
        yield RunningSandbox(base_url(host, bound_port), sandbox, host, bound_port)
    finally:
        server.should_exit = True
        thread.join()
