"""Async clients owned for one event loop, closed when that loop shuts down.

An async client (httpx's, redis-py's) belongs to the event loop that opened its connections. A
client the library creates for a loop is wrapped in a :class:`LoopOwned`, whose closer is an async
generator started in that loop: ``asyncio.run`` and ``asyncio.Runner`` close every async
generator a loop has started before closing the loop, the one shutdown hook a loop offers, and
asyncio schedules a dropped generator's close in its loop.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

if TYPE_CHECKING:  # synchronous programs never load asyncio
    from asyncio import AbstractEventLoop

__all__ = ["AsyncClosable", "LoopOwned"]


class AsyncClosable(Protocol):
    async def aclose(self) -> None: ...


_Client = TypeVar("_Client", bound=AsyncClosable)


class LoopOwned(Generic[_Client]):
    """A client owned for one event loop, and the generator that closes it with the loop.

    ``forget`` is a weak reference to the owner's method that drops the client from its books,
    called with (the loop, the client) as the client closes: the closer keeps no owner alive.
    """

    __slots__ = ("client", "closer", "loop")

    def __init__(
        self,
        client: _Client,
        loop: AbstractEventLoop,
        forget: Callable[[], Callable[[AbstractEventLoop, _Client], None] | None],
    ) -> None:
        self.client = client
        self.loop = loop
        self.closer = _close_at_shutdown(client, loop, forget)

    def watch_shutdown(self) -> None:
        """Start the closer in the running loop, up to its one ``yield`` (nothing is awaited)."""
        with contextlib.suppress(StopIteration):  # the generator stopped at its yield
            self.closer.asend(None).send(None)

    async def aclose(self) -> None:
        """Close the client now (call it in its loop)."""
        await self.closer.aclose()

    def close_elsewhere(self, warn: bool) -> None:
        """Have the client's loop close it; warn when that may not happen soon."""
        loop = self.loop
        if loop.is_closed():
            return  # its connections went with it
        if warn and not loop.is_running():
            warnings.warn(
                f"{_named(self.client)} created for {loop!r} closes only when that loop runs "
                "again: close the provider with aclose() inside each event loop it used",
                ResourceWarning,
                stacklevel=4,
            )
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(_start_closing, loop, self.client)


def _named(client: object) -> str:
    kind = type(client)
    return f"a {kind.__module__.partition('.')[0]}.{kind.__name__}"


#: Closes started by :func:`_start_closing`, kept until done (a loop holds its tasks weakly).
_closing: set[object] = set()


def _start_closing(loop: AbstractEventLoop, client: AsyncClosable) -> None:
    task = loop.create_task(client.aclose())
    _closing.add(task)
    task.add_done_callback(_closing.discard)


async def _close_at_shutdown(
    client: _Client,
    loop: AbstractEventLoop,
    forget: Callable[[], Callable[[AbstractEventLoop, _Client], None] | None],
) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        owner_forget = forget()
        if owner_forget is not None:
            owner_forget(loop, client)
        await client.aclose()  # a no-op when it was closed already
