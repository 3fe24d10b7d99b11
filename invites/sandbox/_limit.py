"""A vendor's hidden rate limit, as ASGI middleware around the sandbox: `HiddenLimit`, `LimitGate`.

`HiddenLimit` is a token bucket of `rate` requests per second holding `burst` (one second's worth
unless told otherwise). Beyond it a request is answered 429 with ``Retry-After`` in the vendor's
error shape, before the vendor sees it (no email). It can announce its budget in the headers of
every answer (`announce`): ``"ietf"`` (the current draft: ``RateLimit-Policy`` and ``RateLimit``),
``"draft"`` (the earlier ``RateLimit-Limit/-Remaining/-Reset``) or ``"x"``
(``X-RateLimit-Limit/-Remaining/-Reset``); ``None`` keeps it hidden, as the three vendors do. Its
rate can change while it serves: `set_rate`, a `schedule` of ``(seconds after start, rate)``, or
``POST /__sandbox__/limit`` with ``{"rate": R}``. ``GET /__sandbox__/limit`` answers its counts
and a per-second timeline of admitted and refused requests (``POST /__sandbox__/limit/reset``
starts both afresh).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._core import RESERVED_PREFIX, Sandbox
from ._vendor import json_failure

__all__ = ["ANNOUNCE_STYLES", "LIMIT_PATH", "HiddenLimit", "LimitGate", "parse_schedule"]

Announce = Literal["ietf", "draft", "x"]
ANNOUNCE_STYLES: tuple[Announce, ...] = ("ietf", "draft", "x")
LIMIT_PATH = f"{RESERVED_PREFIX}/limit"


class HiddenLimit:
    """A token bucket standing for a vendor's rate limit; see the module's docstring."""

    def __init__(
        self,
        rate: float,
        *,
        burst: float | None = None,
        announce: Announce | None = None,
        schedule: Sequence[tuple[float, float]] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not rate > 0 or (burst is not None and not burst >= 1):
            raise ValueError("rate must be positive and burst at least 1")
        if announce is not None and announce not in ANNOUNCE_STYLES:
            raise ValueError(f"announce must be one of {', '.join(ANNOUNCE_STYLES)}")
        self.announce = announce
        self._burst_given = burst
        self._initial = rate
        self._schedule = sorted(schedule)
        self._clock = clock
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """A full bucket at the initial rate, the schedule from now, no counts."""
        with self._lock:
            self._set(self._initial)
            self._tokens = self.burst
            self.started = self._refilled = self._clock()
            self._pending = list(self._schedule)
            self._timeline: dict[int, list[int]] = {}
            self.changes: list[tuple[float, float]] = []

    def _set(self, rate: float) -> None:
        self.rate = rate
        self.burst = self._burst_given if self._burst_given is not None else max(1.0, rate)

    def set_rate(self, rate: float) -> None:
        """From now on admit `rate` requests per second (the bucket keeps what it holds, at most
        its new size)."""
        if not rate > 0:
            raise ValueError("rate must be positive")
        with self._lock:
            self._change(rate, self._clock())

    def _change(self, rate: float, now: float) -> None:
        self._refill(now)
        self._set(rate)
        self._tokens = min(self._tokens, self.burst)
        self.changes.append((now - self.started, rate))

    def _refill(self, now: float) -> None:
        while self._pending and now - self.started >= self._pending[0][0]:
            _, rate = self._pending.pop(0)
            self._change(rate, now)
        elapsed = max(0.0, now - self._refilled)
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        self._refilled = now

    def admit(self) -> tuple[int | None, list[tuple[str, str]]]:
        """Take a token: (None, announced headers) when admitted, else (Retry-After seconds,
        headers)."""
        with self._lock:
            now = self._clock()
            self._refill(now)
            second = self._timeline.setdefault(int(now - self.started), [0, 0])
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                second[0] += 1
                retry_after = None
            else:
                second[1] += 1
                retry_after = max(1, math.ceil((1.0 - self._tokens) / self.rate))
            return retry_after, self._announced()

    def _announced(self) -> list[tuple[str, str]]:
        if self.announce is None:
            return []
        quota = max(1, round(self.burst))
        window = max(1, round(self.burst / self.rate))
        left = max(0, math.floor(self._tokens))
        reset = max(0, math.ceil((self.burst - self._tokens) / self.rate))
        if self.announce == "ietf":
            return [
                ("RateLimit-Policy", f'"default";q={quota};w={window}'),
                ("RateLimit", f'"default";r={left};t={reset}'),
            ]
        prefix = "RateLimit" if self.announce == "draft" else "X-RateLimit"
        limit = f"{quota}, {quota};w={window}" if self.announce == "draft" else str(quota)
        return [
            (f"{prefix}-Limit", limit),
            (f"{prefix}-Remaining", str(left)),
            (f"{prefix}-Reset", str(reset)),
        ]

    def stats(self) -> dict[str, Any]:
        """The rate now, its changes, the counts, and the timeline (one [admitted, refused] pair
        per second since the start)."""
        with self._lock:
            last = max(self._timeline, default=-1)
            timeline = [self._timeline.get(second, [0, 0]) for second in range(last + 1)]
            return {
                "rate": self.rate,
                "burst": self.burst,
                "announce": self.announce,
                "changes": list(self.changes),
                "admitted": sum(pair[0] for pair in timeline),
                "refused": sum(pair[1] for pair in timeline),
                "timeline": timeline,
            }


class LimitGate:
    """ASGI middleware putting `limit` in front of `app` (a sandbox app: `create_app`).

    The sandbox's own paths pass untouched; ``/__sandbox__/limit`` is the limit's own endpoint.
    """

    def __init__(self, app: ASGIApp, limit: HiddenLimit, sandbox: Sandbox) -> None:
        self.app = app
        self.limit = limit
        self.sandbox = sandbox

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path.startswith(LIMIT_PATH):
            await self._admin(scope, receive, send)
            return
        if path.startswith(RESERVED_PREFIX):
            await self.app(scope, receive, send)
            return
        retry_after, headers = self.limit.admit()
        if retry_after is None:
            await self.app(scope, receive, _with_headers(send, headers))
            return
        vendor = self.sandbox.vendor_of(path)
        failure = dict(headers, **{"Retry-After": str(retry_after)})
        if vendor is None:
            response = json_failure(429, "rate_limited", "Too Many Requests", failure)
        else:
            response = vendor.failure(429, "rate_limited", "Too Many Requests", failure)
        await response(scope, receive, send)

    async def _admin(self, scope: Scope, receive: Receive, send: Send) -> None:
        status, body = 200, b""
        if scope["method"] == "POST":
            while True:
                message = await receive()
                body += message.get("body", b"")
                if not message.get("more_body", False):
                    break
            status = self._post(scope["path"], body)
        answer = json.dumps(self.limit.stats() if status == 200 else {"error": "bad request"})
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": answer.encode()})

    def _post(self, path: str, body: bytes) -> int:
        if path == LIMIT_PATH + "/reset":
            self.limit.reset()
            return 200
        try:
            rate = float(json.loads(body or b"{}")["rate"])
            self.limit.set_rate(rate)
        except (ValueError, KeyError, TypeError):
            return 400
        return 200


def _with_headers(send: Send, headers: list[tuple[str, str]]) -> Send:
    if not headers:
        return send
    extra = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return sending


def parse_schedule(text: str) -> list[tuple[float, float]]:
    """``"20:20,40:40"`` -> ``[(20.0, 20.0), (40.0, 40.0)]``: at 20 s the rate becomes 20/s, ..."""
    steps = []
    for part in text.split(","):
        at, _, rate = part.partition(":")
        try:
            steps.append((float(at), float(rate)))
        except ValueError:
            raise ValueError(f"expected SECONDS:RATE[,SECONDS:RATE...], got {part!r}") from None
        if steps[-1][0] < 0 or not steps[-1][1] > 0:
            raise ValueError(f"a step needs seconds >= 0 and a positive rate, got {part!r}")
    return steps
