"""A provider's pace shared through Redis: one ``rate_limit`` and one 429 pause for every process.

Every provider with the same identity (vendor, base URL, tenant or account) that names the same
store reserves its slots from one record on the server. The reservation is a generic cell rate
algorithm (GCRA) in one Lua script (:mod:`invites._pacing.redis_script`), so it is atomic, and it
reads the server's clock (``TIME``), so the clocks of the machines involved do not matter. With
``rate_limit = "auto"`` the learned rate lives in the same record, and the script learns from
what every process saw; a budget the vendor announces is shared the same way. The record expires
once it no longer holds anything back (a learned rate: after :data:`LEARNED_TTL` unused), so idle
identities leave nothing behind.

Round trips: a reservation is one script call, and carries the answers this process saw accepted
since its last call; a 429, or an announced budget that changed, is one more.

When the store cannot be reached nothing is sent: the caller gets
:class:`~invites.ConnectionFailed` naming the store (host and port, never a password), unless a
local fallback was configured, in which case this process paces alone until the store answers
again. This module is imported only when a ``redis://`` store is configured.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Final

import httpx
import redis
import redis.asyncio
import redis.asyncio.retry
import redis.retry
from redis.backoff import NoBackoff

from .._http.loops import LoopOwned
from .._settings.fields import store_label
from ..errors import ConnectionFailed
from .adaptive import answer_of
from .control import Tuning
from .local import Learner, Pacer
from .redis_script import LEARNED_TTL
from .redis_script import SCRIPT as _SCRIPT

__all__ = ["LEARNED_TTL", "RedisPacer", "identity_key"]

logger = logging.getLogger("invites")

#: Seconds to connect to the store, and to wait for one answer: a dead store must fail fast.
CONNECT_TIMEOUT: Final = 1.0
SOCKET_TIMEOUT: Final = 1.0
#: After the store failed, a pacer with a local fallback asks it again only after this long, so a
#: dead store does not add a connect timeout to every request.
RETRY_STORE_AFTER: Final = 5.0
#: An announced budget this process already told the store is told again after this long, or
#: when it moved by more than :data:`ANNOUNCED_MOVE` of itself.
ANNOUNCED_AGAIN: Final = 1.0
ANNOUNCED_MOVE: Final = 0.02

_MICRO: Final = 1_000_000


def identity_key(prefix: str, vendor: str, identity: str) -> str:
    """The store key of one provider identity (:func:`invites.ledger.provider_identity`).

    The vendor name stays readable, for whoever inspects the store; the rest (base URL, tenant
    or account) is hashed, so the key is short and tells nothing about whose users they are.
    """
    digest = hashlib.sha256(identity.encode()).hexdigest()[:32]
    return f"{prefix}:{vendor}:{digest}"


class RedisPacer:
    """Pace shared through a Redis store; see the module's docstring.

    A :class:`invites._pacing.local.Pacer` and :class:`invites._pacing.local.Learner`:
    :meth:`reserve`, :meth:`paused_for`, :meth:`pause`, :meth:`observe`, their async twins.
    ``tuning`` (see :func:`invites._pacing.choice.tuning_of`): a fixed rate (bursts of at most
    ``max(1, int(rate))``) or a learned one (no bursts); None: pauses only. ``fallback`` paces
    this process alone while the store is unreachable; without it, every call made then raises
    :class:`~invites.ConnectionFailed`.
    """

    def __init__(
        self,
        url: str,
        key: str,
        tuning: Tuning | None,
        *,
        fallback: Pacer | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.key = key
        self.label = store_label(url)
        self._url = url
        self.learns = tuning is not None
        # The script's ARGV[2..5]: fixed rate (0: learned, -1: none), start, ceiling, burst.
        head: tuple[float, float, float, int] = (-1.0, 0.0, 0.0, 1)
        if tuning is not None:
            most = 0.0 if tuning.most == float("inf") else tuning.most
            fixed = tuning.start if tuning.fixed else 0.0
            burst = max(1, int(tuning.start)) if tuning.fixed else 1
            head = (fixed, tuning.start, most, burst)
        self._head = head
        self._pending = 0  # answers accepted, not yet told to the store
        self._told = (0.0, -float("inf"))  # the announced rate last told, and when
        self._fallback = fallback
        self._clock = clock
        self._store_down_until = 0.0
        self._lock = threading.Lock()
        self._client: redis.Redis | None = None
        self._script: Any = None
        # One async client per event loop (a redis.asyncio connection belongs to the loop that
        # opened it), with its script; closed when that loop shuts down.
        self._async: dict[asyncio.AbstractEventLoop, tuple[LoopOwned[Any], Any]] = {}

    def __repr__(self) -> str:
        return f"RedisPacer(store={self.label!r}, key={self.key!r})"

    # -- the pacer protocol -------------------------------------------------------------------

    def reserve(self) -> float:
        """Reserve the next slot; seconds to wait before sending (0: now), a pause included."""
        return self._call("reserve", *self._head, self._take_pending(), -1)

    def paused_for(self) -> float:
        """Seconds left in a provider-wide pause (0 when none is in force)."""
        return self._call("paused_for")

    def pause(self, seconds: float) -> None:
        """Hold every caller of this identity ``seconds`` from now; a longer pause in force wins."""
        if self._fallback is not None:
            self._fallback.pause(seconds)  # kept locally too: it outlives a store going away
        self._call("pause", max(0, round(seconds * _MICRO)))

    def observe(self, response: httpx.Response) -> None:
        """Learn from one vendor answer: an accepted one waits for the next reservation; a 429,
        or an announced budget that changed, goes to the store now."""
        args = self._observation(response)
        if args is not None:
            self._call("observe", *args)

    async def areserve(self) -> float:
        """:meth:`reserve` from async code."""
        return await self._acall("reserve", *self._head, self._take_pending(), -1)

    async def apaused_for(self) -> float:
        """:meth:`paused_for` from async code."""
        return await self._acall("paused_for")

    async def aobserve(self, response: httpx.Response) -> None:
        """:meth:`observe` from async code."""
        args = self._observation(response)
        if args is not None:
            await self._acall("observe", *args)

    def learned_rate(self) -> float:
        """The rate every process of this identity paces at now (requests per second)."""
        return float(self._sync_script()(keys=[self.key], args=["rate", *self._head]))

    def _take_pending(self) -> int:
        with self._lock:
            pending, self._pending = self._pending, 0
        return pending

    def _observation(self, response: httpx.Response) -> tuple[float | int, ...] | None:
        """The ``observe`` call's arguments for ``response``; None when it can wait."""
        if isinstance(self._fallback, Learner):
            self._fallback.observe(response)  # kept learning: it takes over if the store goes
        answer = answer_of(response, self._clock())
        announced = answer.announced
        if announced is not None:
            told, when = self._told
            if (
                abs(announced - told) <= ANNOUNCED_MOVE * told
                and answer.at - when < ANNOUNCED_AGAIN
            ):
                announced = None
            else:
                self._told = (announced, answer.at)
        if not answer.throttled and announced is None:
            with self._lock:
                self._pending += 1
            return None
        retry_after = -1.0 if answer.retry_after is None else answer.retry_after
        pending = self._take_pending() + answer.accepted
        ann = -1.0 if announced is None else announced
        return (*self._head, pending, ann, 1 if answer.throttled else 0, retry_after)

    async def apause(self, seconds: float) -> None:
        """:meth:`pause` from async code."""
        if self._fallback is not None:
            self._fallback.pause(seconds)
        await self._acall("pause", max(0, round(seconds * _MICRO)))

    def close(self) -> None:
        """Close the sync client, and hand each loop's async client to its loop to close (as a
        provider's ``close()`` does with its own clients)."""
        with self._lock:
            left = [owned for owned, _ in self._async.values()]
            self._async.clear()
        self._close_sync()
        for owned in left:
            owned.close_elsewhere(warn=True)

    async def aclose(self) -> None:
        """Close the running loop's async client and the sync client; other loops' clients are
        closed as their loops shut down, or by :meth:`close`."""
        with self._lock:
            entry = self._async.pop(asyncio.get_running_loop(), None)
        if entry is not None:
            await entry[0].aclose()
        self._close_sync()

    def _close_sync(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    # -- calling the store ----------------------------------------------------------------------

    def _call(self, mode: str, *args: float) -> float:
        if self._use_fallback():
            return self._local(mode, args)
        try:
            waited = self._sync_script()(keys=[self.key], args=[mode, *args])
        except redis.RedisError as exc:
            return self._store_failed(exc, mode, args)
        return int(waited) / _MICRO

    async def _acall(self, mode: str, *args: float) -> float:
        if self._use_fallback():
            return self._local(mode, args)
        try:
            waited = await self._async_script()(keys=[self.key], args=[mode, *args])
        except redis.RedisError as exc:
            return self._store_failed(exc, mode, args)
        return int(waited) / _MICRO

    def _sync_script(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    client = redis.Redis.from_url(
                        self._url, retry=redis.retry.Retry(NoBackoff(), 0), **_client_options()
                    )
                    self._script = client.register_script(_SCRIPT)
                    self._client = client
        return self._script

    def _async_script(self) -> Any:
        loop = asyncio.get_running_loop()
        entry = self._async.get(loop)
        if entry is None:
            client = redis.asyncio.Redis.from_url(
                self._url, retry=redis.asyncio.retry.Retry(NoBackoff(), 0), **_client_options()
            )
            owned = LoopOwned(client, loop, weakref.WeakMethod(self._forget))
            entry = (owned, client.register_script(_SCRIPT))
            with self._lock:
                # A loop closed without shutting down its async generators: its client is lost.
                for closed in [other for other in self._async if other.is_closed()]:
                    del self._async[closed]
                self._async[loop] = entry
            owned.watch_shutdown()
        return entry[1]

    def _forget(self, loop: asyncio.AbstractEventLoop, client: object) -> None:
        with self._lock:
            entry = self._async.get(loop)
            if entry is not None and entry[0].client is client:
                del self._async[loop]

    def _use_fallback(self) -> bool:
        return self._fallback is not None and self._clock() < self._store_down_until

    def _local(self, mode: str, args: Sequence[float]) -> float:
        fallback = self._fallback
        assert fallback is not None
        if mode == "reserve":
            return fallback.reserve()
        if mode == "paused_for":
            return fallback.paused_for()
        return 0.0  # a pause or an answer was recorded locally already

    def _store_failed(self, exc: redis.RedisError, mode: str, args: Sequence[float]) -> float:
        why = type(exc).__name__
        if self._fallback is None:
            raise ConnectionFailed(
                f"the rate-limit store {self.label} could not be used ({why}); nothing was sent"
            ) from exc
        if not self._use_fallback():
            logger.warning(
                "rate-limit store %s could not be used (%s): pacing this process alone for %.0f s",
                self.label,
                why,
                RETRY_STORE_AFTER,
                extra={"store": self.label, "error": why},
            )
        self._store_down_until = self._clock() + RETRY_STORE_AFTER
        return self._local(mode, args)


def _client_options() -> dict[str, Any]:
    # Both clients get a Retry of their own kind with no retries: a reservation must answer within
    # the timeouts, or fail closed.
    return {
        "socket_connect_timeout": CONNECT_TIMEOUT,
        "socket_timeout": SOCKET_TIMEOUT,
        "client_name": "invites-pacer",
        "health_check_interval": 0,
    }
