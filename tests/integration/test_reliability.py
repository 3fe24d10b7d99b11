"""The delivery policy, driven through the sandbox over real sockets, sync and async.

Every fault the sandbox can inject is checked for the exception raised, the attempts made, the
time waited (a fake clock and fake sleeps injected into the provider) and the invitation emails the
sandbox counted. Interleavings that sockets cannot make deterministic (a pause beginning while
callers wait for their rate-limit slot) are checked on the sans-I/O steps directly.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from _support.vendors import VENDORS, vendor_config

import invites
from invites import (
    AttemptEvent,
    AuthenticationFailed,
    ConnectionFailed,
    Invitee,
    InviteError,
    OutcomeUnknown,
    ProviderUnavailable,
    RateLimited,
    ResendResult,
    UnexpectedResponse,
)
from invites.errors import AlreadyVerified, InvalidRequest
from invites.sandbox import (
    ECOSUITE_TOKEN,
    ECOSUITE_USER_1,
    SOFTWAREONE_ACCOUNT_ID,
    SOFTWAREONE_TOKEN,
    SOFTWAREONE_USER_ACTIVE,
    SOFTWAREONE_USER_INVITED,
    TENANT_API_KEY,
    TENANT_USER_INVITED,
    EcosuiteSandbox,
    Fault,
    RunningSandbox,
    Sandbox,
    serve,
)
from invites.testing import ResendSteps, Send, Sleep

MODES = ("sync", "async")
USERS = {
    "ecosuite": ECOSUITE_USER_1,
    "softwareone": SOFTWAREONE_USER_INVITED,
    "tenant_api": TENANT_USER_INVITED,
}
TOKENS = (ECOSUITE_TOKEN, SOFTWAREONE_TOKEN, TENANT_API_KEY)
#: Obviously fake; the sandbox refuses it.
WRONG_TOKEN = "not-the-sandbox-token"
ROTATED_TOKEN = "sandbox-ecosuite-token-rotated"


# -- fakes -------------------------------------------------------------------------------------


class FakeTime:
    """A monotonic clock that moves only when the provider sleeps (``frozen``: not even then)."""

    def __init__(self, *, frozen: bool = False) -> None:
        self.now = 1000.0
        self.frozen = frozen
        self.waits: list[float] = []
        self._lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.waits.append(seconds)
            if not self.frozen:
                self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)


class JumpingTime(FakeTime):
    """A clock that jumps ``jump`` seconds beyond every sleep (a suspended laptop, a stalled VM)."""

    def __init__(self, jump: float) -> None:
        super().__init__()
        self.jump = jump

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        self.now += self.jump


class ServerHold:
    """The sandbox's sleep for ``Fault.SLOW``: returns at once unless held."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.released.set()

    async def __call__(self, seconds: float) -> None:
        while not self.released.is_set():
            await asyncio.sleep(0.005)


HOLD = ServerHold()


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served() -> Iterator[RunningSandbox]:
    """One sandbox server for the module (``Fault.SLOW`` passes straight through by default)."""
    with serve(Sandbox(slow_seconds=0.0, sleep=HOLD)) as running:
        yield running


@pytest.fixture
def server(served: RunningSandbox) -> Iterator[RunningSandbox]:
    """The module's server, with its sandbox reset before each test."""
    sandbox = served.sandbox
    sandbox.reset()
    try:
        yield served
    finally:
        HOLD.released.set()
        sandbox.retry_after = 1
        sandbox.reset()


@pytest.fixture
def sandbox(server: RunningSandbox) -> Sandbox:
    return server.sandbox


# -- helpers -----------------------------------------------------------------------------------


def make(
    vendor: str,
    base_url: str,
    fake: FakeTime | None = None,
    *,
    client: httpx.Client | None = None,
    async_client: httpx.AsyncClient | None = None,
    jitter: Callable[[float], float] | None = None,
    **overrides: Any,
) -> invites.BaseProvider:
    """The configured provider, rebuilt on the fake clock and sleeps when ``fake`` is given."""
    configured = invites.from_config(
        vendor_config(vendor, base_url, **overrides), client=client, async_client=async_client
    )
    if fake is None:
        return configured
    return type(configured)(
        configured.settings,
        client=client,
        async_client=async_client,
        clock=fake.clock,
        sleep=fake.sleep,
        async_sleep=fake.async_sleep,
        jitter=jitter,
    )


def invitee(vendor: str, user_id: str | None = None) -> Invitee:
    """An invitee complete enough that no vendor needs a read before the resend."""
    user_id = user_id or USERS[vendor]
    if vendor == "ecosuite":
        return Invitee(user_id=user_id, email="ada@example.com", first_name="Ada", last_name="L")
    return Invitee(user_id=user_id)


Result = ResendResult | InviteError


def run(
    mode: str, provider: invites.BaseProvider, *items: Invitee | str, keep_open: bool = False
) -> list[Result]:
    """Resend to each item in turn with the sync or the async driver; errors are returned.

    The provider is closed afterwards, unless ``keep_open``.
    """
    if mode == "sync":
        results: list[Result] = []
        try:
            for item in items:
                try:
                    results.append(provider.resend_invite(item))
                except InviteError as exc:
                    results.append(exc)
        finally:
            if not keep_open:
                provider.close()
        return results

    async def go() -> list[Result]:
        results: list[Result] = []
        try:
            for item in items:
                try:
                    results.append(await provider.aresend_invite(item))
                except InviteError as exc:
                    results.append(exc)
        finally:
            if not keep_open:
                await provider.aclose()
        return results

    return asyncio.run(go())


def one(
    mode: str, provider: invites.BaseProvider, item: Invitee | str, *, keep_open: bool = False
) -> Result:
    return run(mode, provider, item, keep_open=keep_open)[0]


def one_sync(provider: invites.BaseProvider, item: Invitee | str) -> Result:
    try:
        return provider.resend_invite(item)
    except InviteError as exc:
        return exc


def failure(result: Result, cls: type[InviteError]) -> Any:
    assert isinstance(result, cls), f"expected {cls.__name__}, got {result!r}"
    return result


def requests_for(sandbox: Sandbox, user_id: str) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in sandbox.requests if f"/{user_id}" in r.path]


def statuses(events: list[AttemptEvent]) -> list[int | str | None]:
    return [event.status_code or event.error for event in events]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def exact_backoff(top: float) -> float:
    """A jitter that takes the randomness out of the backoff: each wait is its upper bound."""
    return top


# -- retried: 429 and 503 ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("vendor", VENDORS)
def test_a_429_is_retried_after_retry_after_and_sends_one_email(
    server: RunningSandbox, sandbox: Sandbox, vendor: str, mode: str
) -> None:
    fake, events = FakeTime(), list[invites.AttemptEvent]()
    provider = make(vendor, server.url, fake, on_attempt=events.append)
    sandbox.inject(USERS[vendor], Fault.RATE_LIMIT)

    result = one(mode, provider, invitee(vendor))

    assert isinstance(result, ResendResult)
    assert fake.waits == [1.0]
    assert statuses(events) == [429, 200]
    assert [(e.attempt, e.will_retry, e.wait) for e in events] == [(1, True, 1.0), (2, False, None)]
    assert len(requests_for(sandbox, USERS[vendor])) == 2
    assert sandbox.emails_sent(USERS[vendor]) == 1


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("vendor", VENDORS)
def test_a_503_is_retried_until_it_succeeds(
    server: RunningSandbox, sandbox: Sandbox, vendor: str, mode: str
) -> None:
    fake, events = FakeTime(), list[invites.AttemptEvent]()
    provider = make(vendor, server.url, fake, on_attempt=events.append)
    sandbox.inject(USERS[vendor], Fault.UNAVAILABLE, Fault.UNAVAILABLE)

    result = one(mode, provider, invitee(vendor))

    assert isinstance(result, ResendResult)
    assert fake.waits == [1.0, 1.0]
    assert statuses(events) == [503, 503, 200]
    assert sandbox.emails_sent(USERS[vendor]) == 1


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("fault", "cls", "status"),
    [(Fault.UNAVAILABLE, ProviderUnavailable, 503), (Fault.RATE_LIMIT, RateLimited, 429)],
)
@pytest.mark.parametrize("vendor", VENDORS)
def test_retries_end_at_max_attempts_with_the_facts_on_the_error(
    server: RunningSandbox,
    sandbox: Sandbox,
    vendor: str,
    fault: Fault,
    cls: type[InviteError],
    status: int,
    mode: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeTime()
    provider = make(vendor, server.url, fake)
    sandbox.inject(USERS[vendor], fault, fault, fault, fault)

    with caplog.at_level(logging.INFO, logger="invites"):
        error = failure(one(mode, provider, invitee(vendor)), cls)

    assert error.status_code == status
    assert error.attempts == 3
    assert error.retryable is True
    assert error.retry_after == 1.0
    assert fake.waits == [1.0, 1.0]
    assert len(requests_for(sandbox, USERS[vendor])) == 3
    assert sandbox.emails_sent(USERS[vendor]) == 0
    [gave_up, warning] = caplog.records
    assert gave_up.levelno == logging.INFO
    assert gave_up.attempt == 3  # type: ignore[attr-defined]
    assert gave_up.error == f"HTTP {status}"  # type: ignore[attr-defined]
    assert warning.levelno == logging.WARNING
    assert warning.outcome == "failed"  # type: ignore[attr-defined]
    assert warning.attempts == 3  # type: ignore[attr-defined]
    assert warning.error_type == cls.__name__  # type: ignore[attr-defined]
    assert warning.status_code == status  # type: ignore[attr-defined]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fault", [Fault.RATE_LIMIT, Fault.UNAVAILABLE])
@pytest.mark.parametrize("vendor", ["ecosuite", "tenant_api"])
def test_retry_after_as_an_http_date_is_honoured(
    server: RunningSandbox, sandbox: Sandbox, vendor: str, fault: Fault, mode: str
) -> None:
    fake = FakeTime()
    provider = make(vendor, server.url, fake)
    # An HTTP date 30 s ahead, whole seconds; the sandbox sends retry_after as given.
    sandbox.retry_after = email.utils.formatdate(int(time.time()) + 30, usegmt=True)  # type: ignore[assignment]
    sandbox.inject(USERS[vendor], fault)

    result = one(mode, provider, invitee(vendor))

    assert isinstance(result, ResendResult)
    [wait] = fake.waits
    assert 28.0 < wait <= 30.0
    assert sandbox.emails_sent(USERS[vendor]) == 1


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fault", [Fault.RATE_LIMIT, Fault.UNAVAILABLE])
def test_an_unreadable_retry_after_falls_back_to_the_backoff(
    server: RunningSandbox, sandbox: Sandbox, fault: Fault, mode: str
) -> None:
    fake = FakeTime()
    provider = make("tenant_api", server.url, fake, jitter=exact_backoff)
    sandbox.retry_after = "soon"  # type: ignore[assignment]
    sandbox.inject(TENANT_USER_INVITED, fault)

    assert isinstance(one(mode, provider, TENANT_USER_INVITED), ResendResult)
    assert fake.waits == [0.5]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("vendor", VENDORS)
def test_a_429_beyond_max_retry_after_ends_at_once_and_pauses_the_provider(
    server: RunningSandbox, sandbox: Sandbox, vendor: str, mode: str
) -> None:
    fake = FakeTime()
    provider = make(vendor, server.url, fake, max_retry_after=60)
    sandbox.retry_after = 120
    sandbox.inject(USERS[vendor], Fault.RATE_LIMIT)

    first, second = run(mode, provider, invitee(vendor), invitee(vendor))

    error = failure(first, RateLimited)
    assert (error.status_code, error.retry_after, error.attempts) == (429, 120.0, 1)
    assert fake.waits == []
    # The vendor asked the whole client to wait 120 s: the next resend, which may not wait that
    # long either, fails at once without sending anything.
    later = failure(second, RateLimited)
    assert later.status_code is None
    assert later.retry_after == 120.0
    assert later.attempts == 0
    assert "nothing was sent" in str(later)
    assert len(requests_for(sandbox, USERS[vendor])) == 1
    assert sandbox.emails_sent(USERS[vendor]) == 0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("vendor", ["ecosuite", "softwareone"])
def test_a_503_beyond_max_retry_after_is_not_retried_and_pauses_nothing(
    server: RunningSandbox, sandbox: Sandbox, vendor: str, mode: str
) -> None:
    fake = FakeTime()
    provider = make(vendor, server.url, fake, max_retry_after=60)
    sandbox.retry_after = 120
    sandbox.inject(USERS[vendor], Fault.UNAVAILABLE)

    first, second = run(mode, provider, invitee(vendor), invitee(vendor))

    error = failure(first, ProviderUnavailable)
    assert (error.status_code, error.retry_after, error.attempts) == (503, 120.0, 1)
    assert error.retryable is True
    assert isinstance(second, ResendResult)
    assert fake.waits == []
    assert sandbox.emails_sent(USERS[vendor]) == 1


# -- never retried by default ------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("vendor", VENDORS)
def test_a_500_is_provider_unavailable_after_one_attempt(
    server: RunningSandbox, sandbox: Sandbox, vendor: str, mode: str
) -> None:
    fake = FakeTime()
    provider = make(vendor, server.url, fake)
    sandbox.inject(USERS[vendor], Fault.SERVER_ERROR)

    error = failure(one(mode, provider, invitee(vendor)), ProviderUnavailable)

    assert (error.status_code, error.attempts, error.retryable) == (500, 1, False)
    assert fake.waits == []
    assert len(requests_for(sandbox, USERS[vendor])) == 1
    assert sandbox.emails_sent(USERS[vendor]) == 0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("fault", "status"), [(Fault.BAD_GATEWAY, 502), (Fault.GATEWAY_TIMEOUT, 504)]
)
@pytest.mark.parametrize("vendor", VENDORS)
def test_a_502_or_504_is_outcome_unknown_after_one_attempt(
    server: RunningSandbox, sandbox: Sandbox, vendor: str, fault: Fault, status: int, mode: str
) -> None:
    fake = FakeTime()
    provider = make(vendor, server.url, fake)
    sandbox.inject(USERS[vendor], fault)

    error = failure(one(mode, provider, invitee(vendor)), OutcomeUnknown)

    assert (error.status_code, error.attempts, error.retryable) == (status, 1, False)
    assert fake.waits == []
    assert len(requests_for(sandbox, USERS[vendor])) == 1


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("vendor", VENDORS)
def test_a_connection_dropped_after_the_vendor_acted_is_outcome_unknown_with_one_email(
    server: RunningSandbox, sandbox: Sandbox, vendor: str, mode: str
) -> None:
    fake = FakeTime()
    provider = make(vendor, server.url, fake)
    sandbox.inject(USERS[vendor], Fault.DROP_AFTER)

    error = failure(one(mode, provider, invitee(vendor)), OutcomeUnknown)

    assert error.attempts == 1
    assert isinstance(error.__cause__, httpx.RemoteProtocolError)
    assert fake.waits == []
    assert sandbox.emails_sent(USERS[vendor]) == 1


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("vendor", VENDORS)
def test_a_connection_dropped_before_the_vendor_acted_is_also_outcome_unknown(
    server: RunningSandbox, sandbox: Sandbox, vendor: str, mode: str
) -> None:
    # From the client's side the two drops look alike: the request left, no answer came.
    fake = FakeTime()
    provider = make(vendor, server.url, fake)
    sandbox.inject(USERS[vendor], Fault.DROP_BEFORE)

    error = failure(one(mode, provider, invitee(vendor)), OutcomeUnknown)

    assert error.attempts == 1
    assert isinstance(error.__cause__, httpx.RemoteProtocolError)
    assert fake.waits == []
    assert sandbox.emails_sent(USERS[vendor]) == 0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("vendor", ["softwareone", "tenant_api"])
def test_a_slow_answer_past_the_read_timeout_is_outcome_unknown(
    server: RunningSandbox, sandbox: Sandbox, vendor: str, mode: str
) -> None:
    fake = FakeTime()
    provider = make(vendor, server.url, fake, timeouts={"read": 0.1})
    sandbox.slow_seconds = 1.0
    sandbox.inject(USERS[vendor], Fault.SLOW)
    HOLD.released.clear()
    try:
        error = failure(one(mode, provider, invitee(vendor)), OutcomeUnknown)
        assert sandbox.emails_sent(USERS[vendor]) == 0  # the vendor has not acted yet...
    finally:
        HOLD.released.set()

    assert error.attempts == 1
    assert isinstance(error.__cause__, httpx.ReadTimeout)
    assert fake.waits == []
    # ...and acts once it gets round to it: that is why the outcome is unknown, not failed.
    deadline = time.monotonic() + 10.0
    while sandbox.emails_sent(USERS[vendor]) == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sandbox.emails_sent(USERS[vendor]) == 1


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("vendor", VENDORS)
def test_malformed_json_in_a_200_is_an_unexpected_response(
    server: RunningSandbox, sandbox: Sandbox, vendor: str, mode: str
) -> None:
    provider = make(vendor, server.url, FakeTime())
    sandbox.inject(USERS[vendor], Fault.MALFORMED_JSON)

    error = failure(one(mode, provider, invitee(vendor)), UnexpectedResponse)

    assert (error.status_code, error.attempts) == (200, 1)
    assert error.details["body"] == '{"message": "Invite re'
    assert sandbox.emails_sent(USERS[vendor]) == 0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("vendor", VENDORS)
def test_an_html_error_page_is_provider_unavailable_with_a_short_excerpt(
    server: RunningSandbox, sandbox: Sandbox, vendor: str, mode: str
) -> None:
    provider = make(vendor, server.url, FakeTime())
    sandbox.inject(USERS[vendor], Fault.HTML_ERROR)

    error = failure(one(mode, provider, invitee(vendor)), ProviderUnavailable)

    assert (error.status_code, error.attempts) == (500, 1)
    assert "<h1>Internal Server Error</h1>" in error.details["body"]
    assert len(error.details["body"]) <= invites._delivery.answers.EXCERPT_LIMIT + 3
    text = str(error)
    assert "<" not in text
    assert "\n" not in text
    assert len(text) < 200


# -- retry_unknown and reads -------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fault", [Fault.BAD_GATEWAY, Fault.GATEWAY_TIMEOUT, Fault.DROP_BEFORE])
@pytest.mark.parametrize("vendor", ["softwareone", "tenant_api"])
def test_retry_unknown_opts_in_to_retrying_unknown_outcomes(
    server: RunningSandbox, sandbox: Sandbox, vendor: str, fault: Fault, mode: str
) -> None:
    fake, events = FakeTime(), list[invites.AttemptEvent]()
    provider = make(
        vendor,
        server.url,
        fake,
        jitter=exact_backoff,
        retry_unknown=True,
        on_attempt=events.append,
    )
    sandbox.inject(USERS[vendor], fault)

    result = one(mode, provider, invitee(vendor))

    assert isinstance(result, ResendResult)
    assert fake.waits == [0.5]
    assert [e.will_retry for e in events] == [True, False]
    assert sandbox.emails_sent(USERS[vendor]) == 1


@pytest.mark.parametrize("mode", MODES)
def test_retry_unknown_can_send_twice_which_is_why_it_is_off_by_default(
    server: RunningSandbox, sandbox: Sandbox, mode: str
) -> None:
    provider = make("tenant_api", server.url, FakeTime(), retry_unknown=True)
    sandbox.inject(TENANT_USER_INVITED, Fault.DROP_AFTER)

    assert isinstance(one(mode, provider, TENANT_USER_INVITED), ResendResult)
    assert sandbox.emails_sent(TENANT_USER_INVITED) == 2


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fault", [Fault.BAD_GATEWAY, Fault.GATEWAY_TIMEOUT, Fault.DROP_BEFORE])
def test_the_ecosuite_profile_read_is_retried_on_unknown_outcomes(
    server: RunningSandbox, sandbox: Sandbox, fault: Fault, mode: str
) -> None:
    fake, events = FakeTime(), list[invites.AttemptEvent]()
    provider = make("ecosuite", server.url, fake, jitter=exact_backoff, on_attempt=events.append)
    sandbox.inject(ECOSUITE_USER_1, fault, fault)

    result = one(mode, provider, ECOSUITE_USER_1)  # no email or names: the profile is read

    assert isinstance(result, ResendResult)
    assert [(e.method, e.attempt) for e in events] == [
        ("GET", 1),
        ("GET", 2),
        ("GET", 3),
        ("PUT", 1),
    ]
    assert fake.waits == [0.5, 1.0]
    assert sandbox.emails_sent(ECOSUITE_USER_1) == 1


@pytest.mark.parametrize("mode", MODES)
def test_the_softwareone_state_read_is_retried_and_classifies_the_refusal(
    server: RunningSandbox, sandbox: Sandbox, mode: str
) -> None:
    fake, events = FakeTime(), list[invites.AttemptEvent]()
    provider = make("softwareone", server.url, fake, on_attempt=events.append)
    # SLOW (with no delay) lets the resend through; the state read then meets a 502.
    sandbox.inject(SOFTWAREONE_USER_ACTIVE, Fault.SLOW, Fault.BAD_GATEWAY)

    error = failure(one(mode, provider, SOFTWAREONE_USER_ACTIVE), AlreadyVerified)

    assert [(e.method, e.status_code) for e in events] == [
        ("POST", 400),
        ("GET", 502),
        ("GET", 200),
    ]
    assert error.attempts == 3
    assert len(fake.waits) == 1


@pytest.mark.parametrize("mode", MODES)
def test_an_unreadable_softwareone_state_keeps_the_original_refusal(
    server: RunningSandbox, sandbox: Sandbox, mode: str
) -> None:
    provider = make("softwareone", server.url, FakeTime())
    sandbox.inject(SOFTWAREONE_USER_ACTIVE, Fault.SLOW, *[Fault.DROP_BEFORE] * 3)

    error = failure(one(mode, provider, SOFTWAREONE_USER_ACTIVE), InvalidRequest)

    assert error.status_code == 400
    assert error.attempts == 4  # every request made for this resend: 1 POST, 3 GETs
    assert len(requests_for(sandbox, SOFTWAREONE_USER_ACTIVE)) == 4


# -- connection failures and the deadline ------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("vendor", ["ecosuite", "tenant_api"])
def test_a_refused_connection_is_retried_with_backoff_then_connection_failed(
    vendor: str, mode: str
) -> None:
    fake, events = FakeTime(), list[invites.AttemptEvent]()
    provider = make(
        vendor,
        f"http://127.0.0.1:{closed_port()}",
        fake,
        jitter=exact_backoff,
        max_attempts=4,
        on_attempt=events.append,
    )

    error = failure(one(mode, provider, invitee(vendor)), ConnectionFailed)

    assert error.attempts == 4
    assert error.retryable is True
    assert isinstance(error.__cause__, httpx.ConnectError)
    assert fake.waits == [0.5, 1.0, 2.0]
    assert [(e.status_code, e.error, e.will_retry) for e in events] == [
        (None, "ConnectError", True),
        (None, "ConnectError", True),
        (None, "ConnectError", True),
        (None, "ConnectError", False),
    ]


@pytest.mark.parametrize("mode", MODES)
def test_backoff_waits_are_full_jitter_below_the_exponential_bound(mode: str) -> None:
    fake = FakeTime()
    provider = make("tenant_api", f"http://127.0.0.1:{closed_port()}", fake, max_attempts=6)

    failure(one(mode, provider, TENANT_USER_INVITED), ConnectionFailed)

    assert len(fake.waits) == 5
    for n, wait in enumerate(fake.waits):
        assert 0.0 <= wait <= 0.5 * 2**n


@pytest.mark.parametrize("mode", MODES)
def test_a_clock_jump_past_the_deadline_stops_the_retries(mode: str) -> None:
    fake = JumpingTime(jump=100.0)
    provider = make(
        "tenant_api", f"http://127.0.0.1:{closed_port()}", fake, max_attempts=10, deadline=60
    )

    error = failure(one(mode, provider, TENANT_USER_INVITED), ConnectionFailed)

    assert error.attempts == 2
    assert len(fake.waits) == 1


@pytest.mark.parametrize("mode", MODES)
def test_a_retry_after_past_the_deadline_is_not_waited_for(
    server: RunningSandbox, sandbox: Sandbox, mode: str
) -> None:
    fake = FakeTime()
    provider = make("ecosuite", server.url, fake, deadline=5)
    sandbox.retry_after = 10
    sandbox.inject(ECOSUITE_USER_1, Fault.UNAVAILABLE)

    error = failure(one(mode, provider, invitee("ecosuite")), ProviderUnavailable)

    assert (error.attempts, error.retry_after) == (1, 10.0)
    assert fake.waits == []


@pytest.mark.parametrize(
    ("exc", "cls", "attempts"),
    [
        (httpx.ConnectTimeout("timed out"), ConnectionFailed, 3),
        (httpx.PoolTimeout("no connection free"), ConnectionFailed, 3),
        (httpx.ReadTimeout("timed out"), OutcomeUnknown, 1),
        (httpx.WriteTimeout("timed out"), OutcomeUnknown, 1),
        (httpx.RemoteProtocolError("peer closed"), OutcomeUnknown, 1),
    ],
)
@pytest.mark.parametrize("mode", MODES)
def test_transport_failures_are_retried_only_when_nothing_was_sent(
    exc: Exception, cls: type[InviteError], attempts: int, mode: str
) -> None:
    seen: list[httpx.Request] = []

    def fail(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        raise exc

    fake = FakeTime()
    kwargs: dict[str, Any] = (
        {"client": httpx.Client(transport=httpx.MockTransport(fail))}
        if mode == "sync"
        else {"async_client": httpx.AsyncClient(transport=httpx.MockTransport(fail))}
    )
    provider = make("tenant_api", "http://127.0.0.1:9", fake, **kwargs)

    error = failure(one(mode, provider, TENANT_USER_INVITED), cls)

    assert error.attempts == attempts == len(seen)
    assert error.__cause__ is exc
    assert len(fake.waits) == attempts - 1


# -- token refresh ----------------------------------------------------------------------------


class Tokens:
    """A token provider handing out ``values`` in turn (the last one from then on)."""

    def __init__(self, *values: str) -> None:
        self.values = list(values)
        self.calls = 0

    def __call__(self) -> str:
        value = self.values[min(self.calls, len(self.values) - 1)]
        self.calls += 1
        return value


@pytest.mark.parametrize("mode", MODES)
def test_a_401_refreshes_the_token_once_without_using_an_attempt(
    server: RunningSandbox, sandbox: Sandbox, mode: str
) -> None:
    fake, events, tokens = (
        FakeTime(),
        list[invites.AttemptEvent](),
        Tokens(WRONG_TOKEN, ECOSUITE_TOKEN),
    )
    provider = make(
        "ecosuite", server.url, fake, token=None, token_provider=tokens, on_attempt=events.append
    )
    # The refused request passes; then two 503s. Had the 401 used an attempt, the second 503
    # would be the third and last attempt.
    sandbox.inject(ECOSUITE_USER_1, Fault.SLOW, Fault.UNAVAILABLE, Fault.UNAVAILABLE)

    result = one(mode, provider, invitee("ecosuite"))

    assert isinstance(result, ResendResult)
    assert tokens.calls == 2
    assert [(e.status_code, e.attempt) for e in events] == [(401, 1), (503, 1), (503, 2), (200, 3)]
    assert fake.waits == [1.0, 1.0]
    assert sandbox.emails_sent(ECOSUITE_USER_1) == 1


@pytest.mark.parametrize("mode", MODES)
def test_an_async_token_provider_is_awaited(server: RunningSandbox, mode: str) -> None:
    calls = []

    async def token() -> str:
        calls.append(1)
        return WRONG_TOKEN if len(calls) == 1 else ECOSUITE_TOKEN

    provider = make("ecosuite", server.url, FakeTime(), token=None, token_provider=token)

    result = one(mode, provider, invitee("ecosuite"))

    if mode == "async":
        assert isinstance(result, ResendResult)
        assert len(calls) == 2
    else:
        error = failure(result, AuthenticationFailed)
        assert "awaitable" in str(error)


@pytest.mark.parametrize("mode", MODES)
def test_a_second_401_is_authentication_failed(
    server: RunningSandbox, sandbox: Sandbox, mode: str
) -> None:
    tokens = Tokens(WRONG_TOKEN)
    provider = make("ecosuite", server.url, FakeTime(), token=None, token_provider=tokens)

    error = failure(one(mode, provider, invitee("ecosuite")), AuthenticationFailed)

    assert (error.status_code, error.attempts) == (401, 2)
    assert tokens.calls == 2
    assert sandbox.emails_sent(ECOSUITE_USER_1) == 0


@pytest.mark.parametrize("mode", MODES)
def test_a_failing_token_provider_is_authentication_failed_before_any_request(
    server: RunningSandbox, sandbox: Sandbox, mode: str
) -> None:
    def broken() -> str:
        raise RuntimeError("vault unreachable at https://vault.example/secret/token")

    provider = make("ecosuite", server.url, FakeTime(), token=None, token_provider=broken)

    error = failure(one(mode, provider, invitee("ecosuite")), AuthenticationFailed)

    assert error.attempts == 0
    assert isinstance(error.__cause__, RuntimeError)
    assert "vault" not in str(error)
    assert sandbox.requests == []


@pytest.mark.parametrize("mode", MODES)
def test_a_token_provider_failing_on_refresh_is_authentication_failed(
    server: RunningSandbox, sandbox: Sandbox, mode: str
) -> None:
    calls = []

    def once() -> str:
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("refresh failed")
        return WRONG_TOKEN

    provider = make("ecosuite", server.url, FakeTime(), token=None, token_provider=once)

    error = failure(one(mode, provider, invitee("ecosuite")), AuthenticationFailed)

    assert error.attempts == 1
    assert isinstance(error.__cause__, RuntimeError)
    assert len(calls) == 2
    assert sandbox.emails_sent(ECOSUITE_USER_1) == 0


class RotatingTokens:
    """Hands out the sandbox's token, then the rotated one; the refresh waits for ``refused``."""

    def __init__(self, refused: int) -> None:
        self.calls = 0
        self.refused = refused
        self.seen_401 = 0
        self.all_refused = threading.Event()
        self.waited = False

    def on_attempt(self, event: AttemptEvent) -> None:
        if event.status_code == 401:
            self.seen_401 += 1
            if self.seen_401 == self.refused:
                self.all_refused.set()

    def __call__(self) -> str:
        self.calls += 1
        if self.calls == 1:
            return ECOSUITE_TOKEN
        # Every caller must have met its 401 before the new token exists.
        self.waited = self.all_refused.wait(timeout=10.0)
        return ROTATED_TOKEN


CONCURRENT = 8


def test_concurrent_threads_share_one_token_refresh(
    server: RunningSandbox, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = RotatingTokens(refused=CONCURRENT)
    provider = make(
        "ecosuite", server.url, token=None, token_provider=tokens, on_attempt=tokens.on_attempt
    )
    with provider:
        provider.resend_invite(invitee("ecosuite"))
        provider.resend_invite(invitee("ecosuite"))
        assert tokens.calls == 1  # cached
        # The token expires.
        monkeypatch.setattr(sandbox.vendor(EcosuiteSandbox), "token", ROTATED_TOKEN)

        outcomes = list(
            invites.resend_many(
                provider, [invitee("ecosuite")] * CONCURRENT, concurrency=CONCURRENT
            )
        )

    assert [o.status for o in outcomes] == ["sent"] * CONCURRENT
    assert tokens.waited
    assert tokens.calls == 2
    assert sandbox.emails_sent(ECOSUITE_USER_1) == 2 + CONCURRENT


def test_concurrent_tasks_share_one_token_refresh(
    server: RunningSandbox, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = {"calls": 0, "seen_401": 0}

    async def go() -> list[str]:
        all_refused = asyncio.Event()

        def on_attempt(event: AttemptEvent) -> None:
            if event.status_code == 401:
                state["seen_401"] += 1
                if state["seen_401"] == CONCURRENT:
                    all_refused.set()

        async def token() -> str:
            state["calls"] += 1
            if state["calls"] == 1:
                return ECOSUITE_TOKEN
            await asyncio.wait_for(all_refused.wait(), timeout=10.0)
            return ROTATED_TOKEN

        provider = make(
            "ecosuite", server.url, token=None, token_provider=token, on_attempt=on_attempt
        )
        async with provider:
            await provider.aresend_invite(invitee("ecosuite"))
            monkeypatch.setattr(sandbox.vendor(EcosuiteSandbox), "token", ROTATED_TOKEN)
            items = [invitee("ecosuite")] * CONCURRENT
            return [
                o.status
                async for o in invites.aresend_many(provider, items, concurrency=CONCURRENT)
            ]

    assert asyncio.run(go()) == ["sent"] * CONCURRENT
    assert state == {"calls": 2, "seen_401": CONCURRENT}
    assert sandbox.emails_sent(ECOSUITE_USER_1) == 1 + CONCURRENT


# -- rate limit and the provider-wide pause ----------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("vendor", ["ecosuite", "tenant_api"])
def test_the_rate_limit_allows_a_burst_then_one_request_per_interval(
    server: RunningSandbox, vendor: str, mode: str
) -> None:
    fake = FakeTime()
    sent_at: list[float] = []
    provider = make(
        vendor, server.url, fake, rate_limit=2, on_attempt=lambda e: sent_at.append(fake.now)
    )

    results = run(mode, provider, *[invitee(vendor)] * 5)

    assert all(isinstance(r, ResendResult) for r in results)
    assert [t - 1000.0 for t in sent_at] == [0.0, 0.0, 0.5, 1.0, 1.5]
    assert fake.waits == [0.5, 0.5, 0.5]


def test_the_rate_limit_holds_across_threads(server: RunningSandbox, sandbox: Sandbox) -> None:
    fake = FakeTime(frozen=True)  # every caller asks at the same instant
    provider = make("ecosuite", server.url, fake, rate_limit=2)
    with provider:
        outcomes = list(invites.resend_many(provider, [invitee("ecosuite")] * 8, concurrency=8))

    assert [o.status for o in outcomes] == ["sent"] * 8
    # A burst of two, then one slot every 0.5 s: each caller waits for its own slot.
    assert sorted(fake.waits) == [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]


def test_the_rate_limit_holds_across_tasks(server: RunningSandbox) -> None:
    fake = FakeTime(frozen=True)
    provider = make("tenant_api", server.url, fake, rate_limit=0.5)

    async def go() -> list[str]:
        async with provider:
            items = [TENANT_USER_INVITED] * 4
            return [o.status async for o in invites.aresend_many(provider, items, concurrency=4)]

    assert asyncio.run(go()) == ["sent"] * 4
    assert sorted(fake.waits) == [2.0, 4.0, 6.0]  # a burst of one, then every 2 s


@pytest.mark.parametrize("mode", MODES)
def test_retries_count_against_the_rate_limit(
    server: RunningSandbox, sandbox: Sandbox, mode: str
) -> None:
    fake = FakeTime(frozen=True)
    provider = make("tenant_api", server.url, fake, rate_limit=1)
    sandbox.retry_after = 0
    sandbox.inject(TENANT_USER_INVITED, Fault.UNAVAILABLE)

    assert isinstance(one(mode, provider, TENANT_USER_INVITED), ResendResult)
    assert fake.waits == [0.0, 1.0]  # Retry-After: 0, then the next rate-limit slot


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("vendor", VENDORS)
def test_a_429_pauses_every_later_call_even_with_one_attempt(
    server: RunningSandbox, sandbox: Sandbox, vendor: str, mode: str
) -> None:
    fake = FakeTime()
    sent_at: list[float] = []
    provider = make(
        vendor, server.url, fake, max_attempts=1, on_attempt=lambda e: sent_at.append(fake.now)
    )
    sandbox.retry_after = 7
    sandbox.inject(USERS[vendor], Fault.RATE_LIMIT)

    first, second = run(mode, provider, invitee(vendor), invitee(vendor))

    error = failure(first, RateLimited)
    assert (error.attempts, error.retry_after) == (1, 7.0)
    assert isinstance(second, ResendResult)
    assert fake.waits == [7.0]  # the second resend waited out the first one's 429
    assert [t - 1000.0 for t in sent_at] == [0.0, 7.0]
    assert provider._pacer.paused_for() == 0.0
    assert sandbox.emails_sent(USERS[vendor]) == 1


def test_a_429_pause_is_seen_by_another_thread(server: RunningSandbox, sandbox: Sandbox) -> None:
    fake = FakeTime()
    provider = make("tenant_api", server.url, fake, max_attempts=1)
    sandbox.retry_after = 7
    sandbox.inject(TENANT_USER_INVITED, Fault.RATE_LIMIT)
    seen: list[float] = []
    with provider:
        failure(one_sync(provider, TENANT_USER_INVITED), RateLimited)
        thread = threading.Thread(target=lambda: seen.append(provider._pacer.paused_for()))
        thread.start()
        thread.join()
        provider.resend_invite(TENANT_USER_INVITED)

    assert seen == [7.0]
    assert fake.waits == [7.0]


def _response(status: int, request: httpx.Request, **headers: str) -> httpx.Response:
    return httpx.Response(status, headers=headers, json={"message": "ok"}, request=request)


def _steps(provider: invites.BaseProvider) -> ResendSteps:
    """One resend of the invited tenant-API user, driven by the test."""
    return ResendSteps(provider, TENANT_USER_INVITED)


def test_slots_reserved_before_a_pause_are_retaken_after_it() -> None:
    # Three callers of a 1/s provider: A sends at once, B and C hold the slots at +1 s and +2 s.
    # A meets a 429 asking for 10 s. B and C must not both send when the pause ends.
    fake = FakeTime()
    provider = make("tenant_api", "http://127.0.0.1:9", fake, rate_limit=1, max_attempts=1)
    a, b, c = (_steps(provider) for _ in range(3))
    send_a = a.advance()
    assert isinstance(send_a, Send)
    assert b.advance() == Sleep(1.0)
    assert c.advance() == Sleep(2.0)

    with pytest.raises(RateLimited):
        a.advance(_response(429, send_a.request, **{"Retry-After": "10"}))

    fake.now += 1.0  # B slept its 1 s: the pause holds it, and it takes a new slot
    assert b.advance() == Sleep(9.0)
    fake.now += 1.0  # C slept its 2 s: its new slot comes one interval after B's
    assert c.advance() == Sleep(9.0)
    fake.now += 8.0  # t = 10: the pause ends and B sends...
    assert isinstance(b.advance(), Send)
    fake.now += 1.0  # ...and C one interval later, not in the same instant
    assert isinstance(c.advance(), Send)
    provider.close()


def test_a_429_without_retry_after_pauses_for_the_backoff_it_reports() -> None:
    fake, events = FakeTime(), list[invites.AttemptEvent]()
    provider = make("tenant_api", "http://127.0.0.1:9", fake, on_attempt=events.append)
    steps = _steps(provider)
    send = steps.advance()
    assert isinstance(send, Send)

    wait = steps.advance(_response(429, send.request))

    [event] = events
    assert event.will_retry
    assert event.wait is not None
    assert isinstance(wait, Sleep)
    assert wait.seconds == pytest.approx(event.wait)
    assert provider._pacer.paused_for() == pytest.approx(event.wait)
    provider.close()


@pytest.mark.parametrize("mode", MODES)
def test_an_integer_clock_is_a_clock_too(server: RunningSandbox, mode: str) -> None:
    ticks = {"now": 1000, "waits": 0}

    def sleep(seconds: float) -> None:
        ticks["waits"] += 1
        ticks["now"] += int(seconds)

    async def async_sleep(seconds: float) -> None:
        sleep(seconds)

    configured = make("tenant_api", server.url, rate_limit=1)
    provider = type(configured)(
        configured.settings, clock=lambda: ticks["now"], sleep=sleep, async_sleep=async_sleep
    )

    results = run(mode, provider, TENANT_USER_INVITED, TENANT_USER_INVITED)

    assert all(isinstance(r, ResendResult) for r in results)
    assert ticks == {"now": 1001, "waits": 1}


# -- timeouts ---------------------------------------------------------------------------------


TIMEOUT_CASES = [
    ({"timeout": 5}, {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 5.0}),
    (
        {"timeouts": {"connect": 1, "read": 2, "write": 3, "pool": 4}},
        {"connect": 1.0, "read": 2.0, "write": 3.0, "pool": 4.0},
    ),
    (
        {"timeout": 5, "timeouts": {"read": 2}},
        {"connect": 5.0, "read": 2.0, "write": 5.0, "pool": 5.0},
    ),
]


@pytest.mark.parametrize(("config", "expected"), TIMEOUT_CASES)
@pytest.mark.parametrize("mode", MODES)
def test_an_injected_client_gets_the_configured_timeouts_per_request(
    server: RunningSandbox, config: dict[str, Any], expected: dict[str, float], mode: str
) -> None:
    seen: list[dict[str, float]] = []

    def record(request: httpx.Request) -> None:
        seen.append(request.extensions["timeout"])

    async def arecord(request: httpx.Request) -> None:
        record(request)

    if mode == "sync":
        client = httpx.Client(timeout=99, event_hooks={"request": [record]})
        provider = make("tenant_api", server.url, client=client, **config)
    else:
        aclient = httpx.AsyncClient(timeout=99, event_hooks={"request": [arecord]})
        provider = make("tenant_api", server.url, async_client=aclient, **config)

    assert isinstance(one(mode, provider, TENANT_USER_INVITED), ResendResult)
    assert seen == [expected]


@pytest.mark.parametrize(("config", "expected"), TIMEOUT_CASES)
@pytest.mark.parametrize("mode", MODES)
def test_the_providers_own_client_gets_the_configured_timeouts(
    server: RunningSandbox,
    monkeypatch: pytest.MonkeyPatch,
    config: dict[str, Any],
    expected: dict[str, float],
    mode: str,
) -> None:
    seen: list[dict[str, float]] = []
    send = httpx.Client.send
    asend = httpx.AsyncClient.send

    def spy(self: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return send(self, request, **kwargs)

    async def aspy(self: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> Any:
        seen.append(request.extensions["timeout"])
        return await asend(self, request, **kwargs)

    monkeypatch.setattr(httpx.Client, "send", spy)
    monkeypatch.setattr(httpx.AsyncClient, "send", aspy)
    provider = make("softwareone", server.url, **config)

    assert isinstance(one(mode, provider, SOFTWAREONE_USER_INVITED), ResendResult)
    assert seen == [expected]


# -- observability ----------------------------------------------------------------------------


def _record_text(record: logging.LogRecord) -> str:
    return " ".join(
        [record.getMessage(), repr(record.args), *(repr(v) for v in vars(record).values())]
    )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("vendor", VENDORS)
def test_one_debug_record_per_attempt_with_extra_fields_and_no_secrets(
    server: RunningSandbox,
    sandbox: Sandbox,
    vendor: str,
    mode: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    events: list[AttemptEvent] = []
    provider = make(vendor, server.url, FakeTime(), on_attempt=events.append)
    user_id = USERS[vendor]
    sandbox.inject(user_id, Fault.UNAVAILABLE)

    with caplog.at_level(logging.DEBUG, logger="invites"):
        assert isinstance(one(mode, provider, invitee(vendor)), ResendResult)

    levels = [r.levelno for r in caplog.records if r.name == "invites"]
    assert levels == [logging.DEBUG, logging.DEBUG, logging.INFO]  # INFO: the outcome
    records = [r for r in caplog.records if r.levelno == logging.DEBUG]
    facts = [
        (r.vendor, r.method, r.path, r.status_code, r.attempt, r.will_retry)  # type: ignore[attr-defined]
        for r in records
    ]
    path = requests_for(sandbox, user_id)[0][1]
    method = "PUT" if vendor == "ecosuite" else "POST"
    assert facts == [
        (vendor, method, path, 503, 1, True),
        (vendor, method, path, 200, 2, False),
    ]
    assert user_id in path
    for event in events:  # the route names no user or account
        assert "{user_id}" in event.route
        assert user_id not in event.route
        assert SOFTWAREONE_ACCOUNT_ID not in event.route
        assert event.route == event.path.replace(user_id, "{user_id}").replace(
            SOFTWAREONE_ACCOUNT_ID, "{account_id}"
        )
    for record, event in zip(records, events, strict=True):
        assert isinstance(record.elapsed_ms, float)  # type: ignore[attr-defined]
        assert record.elapsed_ms >= 0  # type: ignore[attr-defined]
        assert (event.provider, event.method, event.path, event.status_code, event.attempt) == (
            record.vendor,  # type: ignore[attr-defined]
            record.method,  # type: ignore[attr-defined]
            record.path,  # type: ignore[attr-defined]
            record.status_code,  # type: ignore[attr-defined]
            record.attempt,  # type: ignore[attr-defined]
        )
        assert event.user_id == user_id
    for record in caplog.records:
        text = _record_text(record)
        for secret in (*TOKENS, "invitations/", "Authorization", "X-API-Key"):
            assert secret not in text


@pytest.mark.parametrize("mode", MODES)
def test_failures_and_refreshes_log_no_token_and_warn_of_the_failed_outcome(
    server: RunningSandbox, sandbox: Sandbox, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    tokens = Tokens(WRONG_TOKEN, SOFTWAREONE_TOKEN)
    provider = make("softwareone", server.url, FakeTime(), token=None, token_provider=tokens)
    sandbox.inject(SOFTWAREONE_USER_INVITED, Fault.SLOW, *[Fault.UNAVAILABLE] * 3)

    with caplog.at_level(logging.DEBUG, logger="invites"):
        failure(one(mode, provider, SOFTWAREONE_USER_INVITED, keep_open=True), ProviderUnavailable)
        sandbox.reset()
        assert isinstance(one(mode, provider, SOFTWAREONE_USER_INVITED), ResendResult)

    levels = [(r.levelno, getattr(r, "status_code", None)) for r in caplog.records]
    assert levels == [
        (logging.DEBUG, 401),
        (logging.DEBUG, 503),
        (logging.DEBUG, 503),
        (logging.DEBUG, 503),
        (logging.INFO, None),  # giving up
        (logging.WARNING, 503),  # the outcome: failed
        (logging.DEBUG, 200),
        (logging.INFO, None),  # the outcome: sent
    ]
    for record in caplog.records:
        text = _record_text(record)
        for secret in (*TOKENS, WRONG_TOKEN, "invitations/", "Bearer"):
            assert secret not in text


@pytest.mark.parametrize("asynchronous", [False, True])
def test_an_answer_a_callers_client_cannot_process_after_sending_is_an_unknown_outcome(
    asynchronous: bool,
) -> None:
    """A caller's own client parses a 3xx's Location after the request left: when it cannot, the
    invitation may have been sent, so the outcome is unknown and nothing is sent again."""
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(301, headers={"location": "A:!"}, json={})

    config = vendor_config("tenant_api", "https://vendor.example")
    if asynchronous:

        async def resend() -> None:
            async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as client:
                provider = invites.from_config(config, async_client=client)
                await provider.aresend_invite(TENANT_USER_INVITED)

        with pytest.raises(OutcomeUnknown, match="InvalidURL"):
            asyncio.run(resend())
    else:
        with httpx.Client(transport=httpx.MockTransport(answer)) as client:
            provider = invites.from_config(config, client=client)
            with pytest.raises(OutcomeUnknown, match="InvalidURL"):
                provider.resend_invite(TENANT_USER_INVITED)
    assert len(sent) == 1
