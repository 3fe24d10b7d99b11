"""Per-call overhead: one resend through ``invites`` vs the same request through raw httpx.

Both sides use a client on one in-process ``httpx.MockTransport`` answering a prepared body, so
only client-side work is timed. The raw side does the honest equivalent of a resend: it builds
the same request (URL, headers with the credential, JSON body), sends it, checks the status,
parses the JSON and builds a small result object. Before timing, one request from each side is
captured and compared, so the two sides are known to send the same thing.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

import attrs
import httpx
from _harness import Row, alternate, at_most, median, paired_ratios

import invites
from invites import Access, Invitee
from invites.sandbox import (
    ECOSUITE_PROFILES,
    ECOSUITE_TOKEN,
    ECOSUITE_USER_1,
    SOFTWAREONE_ACCOUNT_ID,
    SOFTWAREONE_TOKEN,
    SOFTWAREONE_USER_INVITED,
    TENANT_API_KEY,
    TENANT_ID,
    TENANT_USER_INVITED,
)

BASE_URL = "https://vendor.example"
#: Information with a guard: what a vendor's latency dwarfs (see bench_vendor for what users pay).
TARGETS = {"tenant_api": 1.25, "ecosuite": 1.25, "softwareone": 1.25}


@attrs.frozen
class RawResult:
    """What the raw side keeps from an accepted resend (mirrors a minimal result object)."""

    user_id: str
    status_code: int
    message: str | None = None
    invitation_status: str | None = None


def _circular() -> dict[str, str]:
    return {str(index): char for index, char in enumerate("[Circular Reference]")}


def account_user() -> dict[str, Any]:
    """A realistic SoftwareOne account-user object (the shape of seed 003), about 4 KB."""
    at = "2025-10-24T20:57:56.471Z"
    return {
        "id": "AUSR-0000-0001",
        "status": "Invited",
        "audit": {
            "created": {"at": at, "by": _circular()},
            "updated": {"at": at, "by": _circular()},
            "invitationAcceptedAt": None,
            "access": {"at": None},
            "joined": {"at": None},
        },
        "$meta": {"omitted": ["settings"]},
        "user": {"id": SOFTWAREONE_USER_INVITED, "icon": None, "name": "Alan Turing"},
        "groups": [
            {
                "id": f"UGR-0000-000{index}",
                "name": name,
                "description": f"{name} of the account: users, access and API tokens.",
                "logo": None,
                "isDefault": index == 1,
            }
            for index, name in enumerate(("Administrators", "Buyers", "Auditors"), start=1)
        ],
        "buyers": [
            {"id": f"BUY-0000-000{index}", "icon": None, "name": f"Sandbox Buyer {index}"}
            for index in (1, 2)
        ],
        "modules": [
            {
                "id": f"MOD-0000-000{index}",
                "description": f"{name}: everything the account does with it.",
                "name": name,
                "filters": {"group.buyers": ["BUY-0000-0001", "BUY-0000-0002"]},
                "settings": {
                    "configurable": True,
                    "default": index == 1,
                    "paid": False,
                    "type": ["Client"],
                    "obsolete": False,
                    "eligibility": {"multi": True, "single": True},
                },
            }
            for index, name in enumerate(
                ("Access Management", "Procurement", "Billing", "Subscriptions"), start=1
            )
        ],
        "account": {
            "id": SOFTWAREONE_ACCOUNT_ID,
            "icon": None,
            "type": "Client",
            "status": "Active",
            "name": "Sandbox Client",
        },
        "invitation": {
            "url": "https://portal.sandbox.invalid/invitations/0123456789abcdef01234567",
            "status": "Invited",
        },
        "lastLoginAt": None,
    }


class Vendor:
    """One vendor's two sides: the ``invites`` config and argument, and the raw request."""

    name: ClassVar[str]
    body: ClassVar[bytes]
    config: ClassVar[dict[str, Any]]
    argument: Any
    headers: dict[str, str]

    def raw(self, client: httpx.Client) -> RawResult:
        raise NotImplementedError

    async def araw(self, client: httpx.AsyncClient) -> RawResult:
        raise NotImplementedError


class TenantApi(Vendor):
    name = "tenant_api"
    body = json.dumps({"message": "Invite resent."}).encode()
    config: ClassVar[dict[str, Any]] = {
        "provider": "tenant_api",
        "base_url": BASE_URL,
        "token": TENANT_API_KEY,
        "tenant_id": TENANT_ID,
    }
    argument = TENANT_USER_INVITED

    def __init__(self) -> None:
        self.headers = {**_IDENTIFYING, "X-Tenant-ID": TENANT_ID, "X-API-Key": TENANT_API_KEY}

    def _url(self, user_id: str) -> str:
        return f"{BASE_URL}/v1/users/{user_id}/resend-invite"

    def _result(self, user_id: str, response: httpx.Response) -> RawResult:
        if response.status_code != 200:
            raise RuntimeError(response.status_code)
        data = response.json()
        return RawResult(user_id, 200, message=data.get("message"))

    def raw(self, client: httpx.Client) -> RawResult:
        user_id = self.argument
        return self._result(user_id, client.post(self._url(user_id), headers=self.headers))

    async def araw(self, client: httpx.AsyncClient) -> RawResult:
        user_id = self.argument
        return self._result(user_id, await client.post(self._url(user_id), headers=self.headers))


class Ecosuite(Vendor):
    name = "ecosuite"
    body = b"{}"
    config: ClassVar[dict[str, Any]] = {
        "provider": "ecosuite",
        "base_url": BASE_URL,
        "token": ECOSUITE_TOKEN,
    }

    def __init__(self) -> None:
        profile: Any = ECOSUITE_PROFILES[ECOSUITE_USER_1]
        access: Any = profile["access"]
        self.profile = {
            "email": profile["email"],
            "firstName": profile["firstName"],
            "lastName": profile["lastName"],
            "timezone": profile["timezone"],
            "userType": profile["userType"],
            "access": dict(access),
        }
        # The caller's data, given in full: no profile GET.
        self.argument = Invitee(
            user_id=ECOSUITE_USER_1,
            email=str(profile["email"]),
            first_name=str(profile["firstName"]),
            last_name=str(profile["lastName"]),
            timezone=str(profile["timezone"]),
            user_type=str(profile["userType"]),
            access=Access(
                start_date=access["startDate"],
                end_date=access["endDate"],
                prevent_download=access["preventDownload"],
                restrict_projects=access["restrictProjects"],
            ),
        )
        self.headers = {**_IDENTIFYING, "Authorization": ECOSUITE_TOKEN}

    def _request(self) -> tuple[str, dict[str, Any]]:
        p = self.profile
        body = {
            "email": p["email"],
            "firstName": p["firstName"],
            "lastName": p["lastName"],
            "timezone": p["timezone"],
            "userType": p["userType"],
            "access": dict(p["access"]),
        }
        return f"{BASE_URL}/users/{ECOSUITE_USER_1}/resend", body

    def _result(self, response: httpx.Response) -> RawResult:
        if response.status_code != 200:
            raise RuntimeError(response.status_code)
        data = response.json()
        return RawResult(ECOSUITE_USER_1, 200, message=data.get("message"))

    def raw(self, client: httpx.Client) -> RawResult:
        url, body = self._request()
        return self._result(client.put(url, json=body, headers=self.headers))

    async def araw(self, client: httpx.AsyncClient) -> RawResult:
        url, body = self._request()
        return self._result(await client.put(url, json=body, headers=self.headers))


class SoftwareOne(Vendor):
    name = "softwareone"
    body = json.dumps(account_user()).encode()
    config: ClassVar[dict[str, Any]] = {
        "provider": "softwareone",
        "base_url": BASE_URL,
        "token": SOFTWAREONE_TOKEN,
        "account_id": SOFTWAREONE_ACCOUNT_ID,
    }
    argument = SOFTWAREONE_USER_INVITED

    def __init__(self) -> None:
        self.headers = {**_IDENTIFYING, "Authorization": "Bearer " + SOFTWAREONE_TOKEN}

    def _url(self, user_id: str) -> str:
        return (
            f"{BASE_URL}/public/v1/accounts/accounts/{SOFTWAREONE_ACCOUNT_ID}/users/{user_id}"
            "/resend-invite"
        )

    def _result(self, user_id: str, response: httpx.Response) -> RawResult:
        if response.status_code != 200:
            raise RuntimeError(response.status_code)
        data = response.json()
        invitation = data.get("invitation") or {}
        return RawResult(user_id, 200, invitation_status=invitation.get("status"))

    def raw(self, client: httpx.Client) -> RawResult:
        user_id = self.argument
        return self._result(user_id, client.post(self._url(user_id), headers=self.headers))

    async def araw(self, client: httpx.AsyncClient) -> RawResult:
        user_id = self.argument
        return self._result(user_id, await client.post(self._url(user_id), headers=self.headers))


VENDORS: tuple[type[Vendor], ...] = (TenantApi, Ecosuite, SoftwareOne)


def _transport(body: bytes, seen: list[httpx.Request] | None = None) -> httpx.MockTransport:
    headers = {"content-type": "application/json"}

    def answer(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            request.read()
            seen.append(request)
        return httpx.Response(200, headers=headers, content=body)

    return httpx.MockTransport(answer)


_COMPARED_HEADERS = (
    "authorization",
    "x-api-key",
    "x-tenant-id",
    "content-type",
    "user-agent",
    "accept",
)
# What every request of the library says of itself; the raw side sends the same.
_IDENTIFYING = {
    "User-Agent": f"invites/{invites.__version__} httpx/{httpx.__version__}",
    "Accept": "application/json",
}


def _same_request(vendor: Vendor) -> str | None:
    """Capture one request from each side; return how they differ, or None."""
    seen: list[httpx.Request] = []
    with httpx.Client(transport=_transport(vendor.body, seen)) as client:
        provider = invites.from_config(vendor.config, client=client)
        provider.resend_invite(vendor.argument)
        vendor.raw(client)
    ours, theirs = seen
    problems = []
    if (ours.method, str(ours.url)) != (theirs.method, str(theirs.url)):
        problems.append(f"{ours.method} {ours.url} != {theirs.method} {theirs.url}")
    for name in _COMPARED_HEADERS:
        if ours.headers.get(name) != theirs.headers.get(name):
            problems.append(f"header {name} differs")
    ours_body = json.loads(ours.content) if ours.content else None
    theirs_body = json.loads(theirs.content) if theirs.content else None
    if ours_body != theirs_body:
        problems.append("JSON bodies differ")
    return "; ".join(problems) or None


def _timed(call: Callable[[], object], calls: int) -> Callable[[], float]:
    """A side for :func:`alternate`: CPU microseconds per call over ``calls`` calls."""

    def side() -> float:
        started = time.thread_time()
        for _ in range(calls):
            call()
        return (time.thread_time() - started) / calls * 1e6

    return side


def _atimed(
    loop: asyncio.AbstractEventLoop, call: Callable[[], Awaitable[object]], calls: int
) -> Callable[[], float]:
    """The async twin of :func:`_timed`: the calls are awaited one after another in ``loop``."""

    async def calls_in_a_row() -> float:
        started = time.thread_time()
        for _ in range(calls):
            await call()
        return (time.thread_time() - started) / calls * 1e6

    def side() -> float:
        return loop.run_until_complete(calls_in_a_row())

    return side


def _sync_sides(vendor: Vendor, rounds: int, calls: int) -> dict[str, list[float]]:
    with httpx.Client(transport=_transport(vendor.body)) as client:
        provider = invites.from_config(vendor.config, client=client)
        argument = vendor.argument
        resend = provider.resend_invite

        def ours() -> object:
            return resend(argument)

        def theirs() -> object:
            return vendor.raw(client)

        sides = {"invites": _timed(ours, calls), "raw": _timed(theirs, calls)}
        for side in sides.values():  # warm up both paths
            side()
        return alternate(sides, rounds)


def _async_sides(vendor: Vendor, rounds: int, calls: int) -> dict[str, list[float]]:
    loop = asyncio.new_event_loop()
    try:
        client = httpx.AsyncClient(transport=_transport(vendor.body))
        provider = invites.from_config(vendor.config, async_client=client)
        argument = vendor.argument
        resend = provider.aresend_invite

        def ours() -> Awaitable[object]:
            return resend(argument)

        def theirs() -> Awaitable[object]:
            return vendor.araw(client)

        sides = {"invites": _atimed(loop, ours, calls), "raw": _atimed(loop, theirs, calls)}
        for side in sides.values():
            side()
        results = alternate(sides, rounds)
        loop.run_until_complete(client.aclose())
        return results
    finally:
        loop.close()


def run(quick: bool) -> list[Row]:
    rounds, calls = (6, 50) if quick else (40, 100)
    rows = []
    for vendor_class in VENDORS:
        vendor = vendor_class()
        mismatch = _same_request(vendor)
        target = TARGETS[vendor.name]
        for mode, measure in (("sync", _sync_sides), ("async", _async_sides)):
            results = measure(vendor, rounds, calls)
            ratio = median(paired_ratios(results["invites"], results["raw"]))
            note = (
                f"CPU time, {rounds} alternated rounds x {calls} calls; "
                "ratio = median of per-round ratios"
            )
            if mismatch:
                note += f"; REQUESTS DIFFER: {mismatch}"
            rows.append(
                Row(
                    benchmark=f"overhead {vendor.name} {mode}",
                    invites=median(results["invites"]),
                    raw=median(results["raw"]),
                    unit="us/call",
                    ratio=ratio,
                    target=f"<= {target:.2f}x",
                    passed=bool(at_most(ratio, target)) and not mismatch,
                    note=note,
                    detail=results,
                )
            )
    return rows
