"""The sandbox's hidden rate limit: a token bucket in front, its announced budget, its changes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

import invites
from invites._pacing.announced import announced_rate
from invites.sandbox import (
    TENANT_API_KEY,
    TENANT_ID,
    TENANT_USER_INVITED,
    Sandbox,
    create_app,
)
from invites.sandbox.__main__ import _limit, _parser
from invites.sandbox._limit import HiddenLimit, LimitGate, parse_schedule


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


class Client:
    """A blocking client of the gated sandbox, in process (each call runs its own event loop)."""

    def __init__(self, limit: HiddenLimit) -> None:
        sandbox = Sandbox()
        self.app = LimitGate(create_app(sandbox), limit, sandbox)

    def _call(self, method: str, path: str, **options: Any) -> httpx.Response:
        async def call() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.test") as c:
                return await c.request(method, path, **options)

        return asyncio.run(call())

    def get(self, path: str) -> httpx.Response:
        return self._call("GET", path)

    def post(self, path: str, **options: Any) -> httpx.Response:
        return self._call("POST", path, **options)


gated: Callable[[HiddenLimit], Client] = Client


PATH = "/__sandbox__/stats"  # passes the gate untouched
VENDOR_PATH = "/api/v1/tenants/t/users/u/invitation/resend"


def test_beyond_the_bucket_a_429_with_retry_after_and_no_vendor_call() -> None:
    clock = Clock()
    limit = HiddenLimit(2.0, clock=clock)
    client = gated(limit)
    answers = [client.post(VENDOR_PATH) for _ in range(3)]
    assert [answer.status_code != 429 for answer in answers] == [True, True, False]
    assert answers[2].headers["retry-after"] == "1"
    assert "ratelimit" not in " ".join(answers[0].headers).lower()  # hidden
    clock.now += 1.0  # two tokens back
    assert client.post(VENDOR_PATH).status_code != 429
    assert client.get(PATH).status_code == 200  # the sandbox's own paths are never limited
    stats = client.get("/__sandbox__/limit").json()
    assert (stats["admitted"], stats["refused"], stats["timeline"]) == (3, 1, [[2, 1], [1, 0]])


@pytest.mark.parametrize("style", ["ietf", "draft", "x"])
def test_the_budget_is_announced_in_each_style(style: str) -> None:
    clock = Clock()
    client = gated(HiddenLimit(40.0, announce=style, clock=clock))  # type: ignore[arg-type]
    for _ in range(30):
        answer = client.post(VENDOR_PATH)
    fields = [(name.encode(), value.encode()) for name, value in answer.headers.items()]
    rate = announced_rate(fields)
    # The current draft and the earlier one say the policy (40 per second); the X- fields say
    # only what is left (10) until the bucket is full again (1 s).
    assert rate == (10.0 if style == "x" else 40.0)


def test_the_limit_changes_by_endpoint_and_by_schedule() -> None:
    clock = Clock()
    limit = HiddenLimit(10.0, schedule=[(5.0, 1.0)], clock=clock)
    client = gated(limit)
    assert client.post("/__sandbox__/limit", json={"rate": 4}).json()["rate"] == 4.0
    assert limit.burst == 4.0
    assert client.post("/__sandbox__/limit", json={"rate": "fast"}).status_code == 400
    clock.now += 5.0
    client.post(VENDOR_PATH)
    assert limit.rate == 1.0
    assert [rate for _, rate in limit.changes] == [4.0, 1.0]
    client.post("/__sandbox__/limit/reset")
    assert (limit.rate, limit.changes) == (10.0, [])


def test_the_command_line_builds_the_limit() -> None:
    args = _parser("sandbox").parse_args(
        ["--hidden-limit", "40", "--announce-budget", "ietf", "--limit-schedule", "20:20"]
    )
    limit = _limit(args)
    assert limit is not None
    assert (limit.rate, limit.announce) == (40.0, "ietf")
    assert parse_schedule("20:20,30:40") == [(20.0, 20.0), (30.0, 40.0)]
    with pytest.raises(ValueError, match="SECONDS:RATE"):
        parse_schedule("soon")
    with pytest.raises(ValueError, match="need --hidden-limit"):
        _limit(_parser("sandbox").parse_args(["--announce-budget", "x"]))


def test_auto_pacing_learns_the_announced_budget_through_the_gate() -> None:
    sandbox = Sandbox()
    app = LimitGate(create_app(sandbox), HiddenLimit(40.0, announce="ietf"), sandbox)
    config = {"provider": "tenant_api", "token": TENANT_API_KEY, "tenant_id": TENANT_ID}

    async def main() -> float:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport) as http:
            provider = invites.from_config(
                {**config, "base_url": "http://sandbox.test", "rate_limit": "auto",
                 "allow_insecure_http": True},
                async_client=http,
            )  # fmt: skip
            await provider.aresend_invite(TENANT_USER_INVITED)
            rate: float = provider._pacer.rate  # type: ignore[attr-defined]
            await provider.aclose()
            return rate

    assert asyncio.run(main()) == pytest.approx(38.0)
