"""Telemetry: OpenTelemetry spans and metrics through the SDK's in-memory exporter and reader, the
outcome records on the ``invites`` logger, ``on_outcome``, and nothing of it when unused."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _support import otel as otel_support
from _support.vendors import vendor_config
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

import invites
from invites import AlreadyVerified, Invitee, ResendResult, UserNotFound
from invites._delivery.reporting import Reporter
from invites.sandbox import (
    SOFTWAREONE_ACCOUNT_ID,
    SOFTWAREONE_TOKEN,
    SOFTWAREONE_USER_INVITED,
    TENANT_API_KEY,
    TENANT_ID,
    TENANT_USER_INVITED,
    TENANT_USER_INVITED_2,
    TENANT_USER_UNKNOWN,
    TENANT_USER_VERIFIED,
    Fault,
    RunningSandbox,
    Sandbox,
)

SECRETS = (TENANT_API_KEY, SOFTWAREONE_TOKEN)
USERS = (TENANT_USER_INVITED, TENANT_USER_VERIFIED, TENANT_USER_UNKNOWN, TENANT_USER_INVITED_2)
EMAIL = "ada@example.test"
ROUTE = "/v1/users/{user_id}/resend-invite"


class FakeTime:
    """A clock that moves only when the provider sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


class Captured:
    """The requests a caller's own client sent, headers included."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> None:
        self.requests.append(request)

    async def acall(self, request: httpx.Request) -> None:
        self.requests.append(request)


@pytest.fixture
def otel() -> Iterator[None]:
    with otel_support.recording():
        yield


def tenant_api(
    server: RunningSandbox, fake: FakeTime, **overrides: Any
) -> tuple[invites.BaseProvider, Captured]:
    captured = Captured()
    client = httpx.Client(event_hooks={"request": [captured]})
    async_client = httpx.AsyncClient(event_hooks={"request": [captured.acall]})
    configured = invites.from_config(vendor_config("tenant_api", server.url, **overrides))
    provider = type(configured)(
        configured.settings,
        client=client,
        async_client=async_client,
        clock=fake.clock,
        sleep=fake.sleep,
        async_sleep=fake.async_sleep,
    )
    configured.close()
    return provider, captured


def four_resends(provider: invites.BaseProvider, mode: str) -> list[object]:
    """Sent, already verified, not found, and a 429 then sent: results or errors, in order."""

    async def each_async() -> list[object]:
        done: list[object] = []
        for user in USERS:
            try:
                done.append(await provider.aresend_invite(Invitee(user_id=user, email=EMAIL)))
            except invites.InviteError as exc:
                done.append(exc)
        return done

    if mode == "async":
        return asyncio.run(each_async())
    done: list[object] = []
    for user in USERS:
        try:
            done.append(provider.resend_invite(Invitee(user_id=user, email=EMAIL)))
        except invites.InviteError as exc:
            done.append(exc)
    return done


def children(parent: ReadableSpan) -> list[ReadableSpan]:
    assert parent.context is not None
    return [
        span
        for span in otel_support.spans()
        if span.parent is not None and span.parent.span_id == parent.context.span_id
    ]


def all_values(span: ReadableSpan) -> list[str]:
    values = [str(value) for value in (span.attributes or {}).values()]
    for event in span.events:
        values.extend(str(value) for value in (event.attributes or {}).values())
    return [span.name, *values]


# -- traces ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_four_resends_give_four_resend_spans_and_the_retried_one_two_http_spans(
    server: RunningSandbox, sandbox: Sandbox, otel: None, mode: str
) -> None:
    fake = FakeTime()
    provider, captured = tenant_api(server, fake)
    sandbox.inject(TENANT_USER_INVITED_2, Fault.RATE_LIMIT)

    with provider:
        done = four_resends(provider, mode)

    assert isinstance(done[0], ResendResult)
    assert isinstance(done[1], AlreadyVerified)
    assert isinstance(done[2], UserNotFound)
    assert isinstance(done[3], ResendResult)
    assert fake.waits == [1.0]
    resends = otel_support.spans("invites.resend")
    assert [span.attributes["invites.outcome"] for span in resends if span.attributes] == [
        "sent",
        "already_verified",
        "failed",
        "sent",
    ]
    assert [span.attributes["invites.user_id"] for span in resends if span.attributes] == list(
        USERS
    )
    for span in resends:
        assert span.kind is SpanKind.INTERNAL
        assert span.attributes is not None
        assert span.attributes["invites.vendor"] == "tenant_api"
        assert span.attributes["invites.ledger.skipped"] is False
        assert span.attributes["invites.renewed"] is False
    sent, verified, missing, retried = resends
    assert [len(children(span)) for span in resends] == [1, 1, 1, 2]
    assert retried.attributes is not None
    assert retried.attributes["invites.attempts"] == 2
    assert missing.status.status_code is StatusCode.ERROR
    assert missing.attributes is not None
    assert missing.attributes["error.type"] == "invites.errors.UserNotFound"
    assert verified.status.status_code is not StatusCode.ERROR
    assert "error.type" not in (verified.attributes or {})
    assert sent.status.status_code is not StatusCode.ERROR

    first, second = sorted(children(retried), key=lambda span: span.start_time or 0)
    for attempt in (first, second):
        assert attempt.kind is SpanKind.CLIENT
        assert attempt.name == f"POST {ROUTE}"
        assert attempt.attributes is not None
        assert attempt.attributes["http.request.method"] == "POST"
        assert attempt.attributes["url.template"] == ROUTE
        assert attempt.attributes["server.address"] == "127.0.0.1"
        assert attempt.attributes["server.port"] == httpx.URL(server.url).port
        assert str(attempt.attributes["url.full"]).endswith(
            f"/{TENANT_USER_INVITED_2}/resend-invite"
        )
    assert first.attributes is not None
    assert second.attributes is not None
    assert first.attributes["http.response.status_code"] == 429
    assert first.attributes["error.type"] == "429"
    assert [event.name for event in first.events] == ["invites.retry"]
    assert first.events[0].attributes == {"invites.retry.wait": 1.0}
    assert second.attributes["http.response.status_code"] == 200
    assert second.attributes["http.request.resend_count"] == 1
    assert "error.type" not in second.attributes

    # Each request carried its own attempt span as the parent for the vendor and proxies.
    sent_ids = {
        request.headers["traceparent"].split("-")[2]
        for request in captured.requests
        if "traceparent" in request.headers
    }
    attempt_ids = {
        f"{span.context.span_id:016x}"
        for parent in resends
        for span in children(parent)
        if span.context is not None
    }
    assert len(captured.requests) == 5
    assert sent_ids == attempt_ids


def test_no_span_attribute_holds_a_token_or_an_email(
    server: RunningSandbox, sandbox: Sandbox, otel: None
) -> None:
    fake = FakeTime()
    provider, _ = tenant_api(server, fake)
    sandbox.inject(TENANT_USER_INVITED_2, Fault.RATE_LIMIT)
    with provider:
        four_resends(provider, "sync")
    configured = invites.from_config(vendor_config("softwareone", server.url, renew_expired=True))
    with configured:
        configured.resend_invite(SOFTWAREONE_USER_INVITED)

    recorded = otel_support.spans()
    assert len(recorded) > 10
    for span in recorded:
        for value in all_values(span):
            for secret in (*SECRETS, EMAIL, "Bearer", "invitations/"):
                assert secret not in value, (span.name, value)
    [resend] = [
        span
        for span in otel_support.spans("invites.resend")
        if span.attributes and span.attributes.get("invites.vendor") == "softwareone"
    ]
    [softwareone] = children(resend)
    assert softwareone.attributes is not None
    route = str(softwareone.attributes["url.template"])
    assert "{account_id}" in route
    assert "{user_id}" in route
    assert SOFTWAREONE_ACCOUNT_ID not in route
    assert SOFTWAREONE_USER_INVITED not in route


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_bulk_run_joins_the_callers_trace(server: RunningSandbox, otel: None, mode: str) -> None:
    provider = invites.from_config(vendor_config("tenant_api", server.url))
    tracer = trace.get_tracer("the caller")

    async def bulk_async() -> list[invites.Outcome]:
        return [each async for each in invites.aresend_many(provider, USERS[:3], concurrency=3)]

    with provider, tracer.start_as_current_span("nightly sync") as job:
        if mode == "async":
            outcomes = asyncio.run(bulk_async())
        else:
            outcomes = list(invites.resend_many(provider, USERS[:3], concurrency=3))

    assert sorted(outcome.status for outcome in outcomes) == ["already_verified", "failed", "sent"]
    resends = otel_support.spans("invites.resend")
    assert len(resends) == 3
    for span in resends:
        assert span.parent is not None
        assert span.parent.span_id == job.get_span_context().span_id
        assert span.context is not None
        assert span.context.trace_id == job.get_span_context().trace_id
        assert len(children(span)) == 1


def test_a_resend_the_ledger_settled_is_a_span_marked_skipped(
    server: RunningSandbox, otel: None, tmp_path: Path
) -> None:
    provider = invites.from_config(vendor_config("tenant_api", server.url))
    with provider, invites.open_ledger(tmp_path / "ledger.db") as ledger:
        before = otel_support.counts("invites.ledger.claims")
        for _ in range(2):
            list(invites.resend_many(provider, [TENANT_USER_INVITED], ledger=ledger, run="r1"))
        after = otel_support.counts("invites.ledger.claims")

    first, second = otel_support.spans("invites.resend")
    assert first.attributes is not None
    assert second.attributes is not None
    assert first.attributes["invites.ledger.skipped"] is False
    assert second.attributes["invites.ledger.skipped"] is True
    assert second.attributes["invites.outcome"] == "sent"
    assert len(children(first)) == 1
    assert children(second) == []
    for result in ("granted", "settled"):
        key = (("invites.claim", result), ("invites.vendor", "tenant_api"))
        assert after[key] - before.get(key, 0) == 1


# -- metrics ---------------------------------------------------------------------------------------


def test_metrics_count_resends_by_outcome_with_bounded_attributes_only(
    server: RunningSandbox, sandbox: Sandbox, otel: None
) -> None:
    fake = FakeTime()
    provider, _ = tenant_api(server, fake)
    sandbox.inject(TENANT_USER_INVITED_2, Fault.RATE_LIMIT)
    before = otel_support.counts("invites.resends")
    duration_before = otel_support.counts("invites.resend.duration")
    limited_before = otel_support.counts("invites.rate_limited")
    with provider:
        four_resends(provider, "sync")

    resends = otel_support.counts("invites.resends")
    added = {key: value - before.get(key, 0) for key, value in resends.items()}
    vendor = ("invites.vendor", "tenant_api")
    assert added[(("invites.outcome", "sent"), vendor)] == 2
    assert added[(("invites.outcome", "already_verified"), vendor)] == 1
    assert added[(("invites.outcome", "failed"), vendor)] == 1
    durations = otel_support.counts("invites.resend.duration")
    sent = (("invites.outcome", "sent"), vendor)
    assert durations[sent] - duration_before.get(sent, 0) == 2
    limited = otel_support.counts("invites.rate_limited")
    assert limited[(vendor,)] - limited_before.get((vendor,), 0) == 1
    assert otel_support.points("invites.attempts")

    allowed = {"invites.vendor", "invites.outcome", "invites.status_class", "invites.claim"}
    forbidden = (*USERS, SOFTWAREONE_ACCOUNT_ID, TENANT_ID, *SECRETS, EMAIL)
    for attributes in otel_support.all_metric_attributes():
        assert set(attributes) <= allowed
        for value in attributes.values():
            assert not any(secret in str(value) for secret in forbidden), value


def test_the_pacing_wait_is_a_metric_and_an_event(server: RunningSandbox, otel: None) -> None:
    fake = FakeTime()
    provider, _ = tenant_api(server, fake, rate_limit=1)
    before = otel_support.counts("invites.pacing.wait")
    with provider:
        provider.resend_invite(TENANT_USER_INVITED)
        provider.resend_invite(TENANT_USER_INVITED_2)

    key = (("invites.vendor", "tenant_api"),)
    assert otel_support.counts("invites.pacing.wait")[key] - before.get(key, 0) == 1
    first, second = otel_support.spans("invites.resend")
    assert first.events == ()
    assert [event.name for event in second.events] == ["invites.pacing"]
    assert second.events[0].attributes == {"invites.pacing.wait": fake.waits[0]}
    assert fake.waits[0] > 0


# -- logs and on_outcome ---------------------------------------------------------------------------


def test_the_invites_logger_has_a_null_handler() -> None:
    handlers = logging.getLogger("invites").handlers
    assert any(isinstance(handler, logging.NullHandler) for handler in handlers)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_each_outcome_is_logged_once_with_its_fields(
    server: RunningSandbox, sandbox: Sandbox, caplog: pytest.LogCaptureFixture, mode: str
) -> None:
    fake = FakeTime()
    provider, _ = tenant_api(server, fake)
    sandbox.inject(TENANT_USER_INVITED_2, Fault.RATE_LIMIT)
    with provider, caplog.at_level(logging.INFO, logger="invites"):
        four_resends(provider, mode)

    records = [record for record in caplog.records if hasattr(record, "outcome")]
    facts = [
        (r.levelno, r.vendor, r.outcome, r.user_id, r.attempts, r.error_type)  # type: ignore[attr-defined]
        for r in records
    ]
    assert facts == [
        (logging.INFO, "tenant_api", "sent", TENANT_USER_INVITED, 1, None),
        (
            logging.INFO,
            "tenant_api",
            "already_verified",
            TENANT_USER_VERIFIED,
            1,
            "AlreadyVerified",
        ),
        (logging.WARNING, "tenant_api", "failed", TENANT_USER_UNKNOWN, 1, "UserNotFound"),
        (logging.INFO, "tenant_api", "sent", TENANT_USER_INVITED_2, 2, None),
    ]
    for record in records:
        assert isinstance(record.elapsed_ms, float)  # type: ignore[attr-defined]
        assert record.elapsed_ms >= 0  # type: ignore[attr-defined]
        assert hasattr(record, "request_id")
        assert record.skipped is False  # type: ignore[attr-defined]
        for secret in (*SECRETS, EMAIL):
            assert secret not in record.getMessage()
    assert records[2].status_code == 404  # type: ignore[attr-defined]


def test_on_outcome_sees_single_resends_bulk_resends_and_ledger_replays_once_each(
    server: RunningSandbox, tmp_path: Path
) -> None:
    seen: list[invites.Outcome] = []
    ledger_path = tmp_path / "ledger.db"
    config = vendor_config(
        "tenant_api", server.url, on_outcome=seen.append, ledger=str(ledger_path)
    )
    with invites.from_config(config) as provider:
        provider.resend_invite(TENANT_USER_INVITED)
        with pytest.raises(UserNotFound):
            provider.resend_invite(TENANT_USER_UNKNOWN)
        list(invites.resend_many(provider, [TENANT_USER_VERIFIED], concurrency=1))
        provider.resend_invite(TENANT_USER_INVITED_2, idempotency_key="k-1")
        provider.resend_invite(TENANT_USER_INVITED_2, idempotency_key="k-1")

    facts = [(o.user_id, o.status, o.skipped) for o in seen]
    assert facts == [
        (TENANT_USER_INVITED, "sent", False),
        (TENANT_USER_UNKNOWN, "failed", False),
        (TENANT_USER_VERIFIED, "already_verified", False),
        (TENANT_USER_INVITED_2, "sent", False),
        (TENANT_USER_INVITED_2, "sent", True),
    ]
    assert isinstance(seen[1].error, UserNotFound)
    assert seen[0].result is not None
    assert seen[0].result.user_id == TENANT_USER_INVITED


def test_a_raising_on_outcome_hook_is_logged_and_the_outcome_stands(
    server: RunningSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    def hook(outcome: invites.Outcome) -> None:
        raise ValueError("dashboard down")

    config = vendor_config("tenant_api", server.url, on_outcome=hook)
    with invites.from_config(config) as provider, caplog.at_level(logging.WARNING):
        result = provider.resend_invite(TENANT_USER_INVITED)

    assert result.user_id == TENANT_USER_INVITED
    [warned] = [r for r in caplog.records if "on_outcome hook raised" in r.getMessage()]
    assert warned.exc_info is not None


# -- without OpenTelemetry -------------------------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import importlib.abc, logging, sys
    if sys.argv[1] == "blocked":
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name == "opentelemetry" or name.startswith("opentelemetry."):
                    raise ImportError(f"{name} is blocked")
                return None
        sys.meta_path.insert(0, Block())
    if sys.argv[1] == "api":
        import opentelemetry.trace  # the API loaded, no SDK configured
    import httpx, invites
    seen = []
    ONE, MISSING, BULK = (f"{n * 8}-{n * 4}-4{n * 3}-8{n * 3}-{n * 12}" for n in "123")
    def answer(request):
        seen.append(request)
        if MISSING in request.url.path:
            return httpx.Response(404, json={"code": "USER_NOT_FOUND", "message": "no such user"})
        return httpx.Response(200, json={"message": "Invite resent."})
    client = httpx.Client(transport=httpx.MockTransport(answer))
    config = {"provider": "tenant_api", "base_url": "https://vendor.example",
              "token": "fake-token-child", "tenant_id": sys.argv[2]}
    with invites.from_config(config, client=client) as provider:
        provider.resend_invite(ONE)
        try:
            provider.resend_invite(MISSING)
        except invites.UserNotFound:
            pass
        outcomes = list(invites.resend_many(provider, [BULK]))
    assert [o.status for o in outcomes] == ["sent"]
    assert not any("traceparent" in request.headers for request in seen)
    loaded = sorted(name for name in sys.modules if name.startswith("opentelemetry"))
    print("loaded:", ",".join(loaded) or "-")
    print("telemetry:", "invites._telemetry._otel" in sys.modules)
    """
)


def _child(how: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(  # noqa: S603 (this interpreter, this test's own script)
        [sys.executable, "-c", _CHILD, how, TENANT_ID],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_without_opentelemetry_installed_resends_work_and_nothing_tries_to_load_it() -> None:
    child = _child("blocked")

    assert child.returncode == 0, child.stderr
    assert "loaded: -" in child.stdout
    assert "telemetry: False" in child.stdout
    # No logging configured: the failed outcome's WARNING goes nowhere, not to stderr.
    assert child.stderr == ""


def test_an_application_that_never_loads_opentelemetry_does_not_load_it_through_invites() -> None:
    child = _child("unused")

    assert child.returncode == 0, child.stderr
    assert "loaded: -" in child.stdout


def test_the_api_without_an_sdk_records_nothing_and_adds_no_header() -> None:
    child = _child("api")

    assert child.returncode == 0, child.stderr
    assert "telemetry: True" in child.stdout  # the no-op API in use: no traceparent (asserted)


# -- route templates -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "user_id", "ids", "route"),
    [
        ("/v1/users/u-1/resend-invite", "u-1", {}, "/v1/users/{user_id}/resend-invite"),
        # The last segment naming the user is the user's: "v1" here is also the API version.
        ("/v1/users/v1/resend-invite", "v1", {}, "/v1/users/{user_id}/resend-invite"),
        ("/users/a%2Fb/resend", "a/b", {}, "/users/{user_id}/resend"),
        (
            "/public/v1/accounts/accounts/ACC-1/users/USR-1/resend-invite",
            "USR-1",
            {"account_id": "ACC-1"},
            "/public/v1/accounts/accounts/{account_id}/users/{user_id}/resend-invite",
        ),
        ("/users/u-2", "u-1", {}, "/users/u-2"),  # another user's path is left as it is
    ],
)
def test_a_route_template_names_the_ids_instead_of_holding_them(
    path: str, user_id: str, ids: dict[str, str], route: str
) -> None:
    reporter = Reporter("vendor", None, ids)

    assert reporter.route(httpx.Request("GET", "https://vendor.example" + path), user_id) == route


# -- the manual's example --------------------------------------------------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs" / "observability.md"


def test_the_manuals_console_exporter_example_prints_the_resend_spans_and_metrics(
    server: RunningSandbox, sandbox: Sandbox, tmp_path: Path
) -> None:
    text = DOCS.read_text(encoding="utf-8")
    start = text.index("```python\nimport logging\n\nfrom opentelemetry import metrics")
    example = text[start + len("```python\n") : text.index("```\n", start + 10)]
    sandbox.inject(TENANT_USER_INVITED_2, Fault.RATE_LIMIT)
    config = vendor_config("tenant_api", server.url)
    script = tmp_path / "example.py"
    script.write_text(f"CONFIG = {config!r}\nUSERS = {list(USERS)!r}\n" + example, "utf-8")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}

    child = subprocess.run(  # noqa: S603 (this interpreter, the manual's own example)
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )

    assert child.returncode == 0, child.stderr
    assert child.stdout.count('"name": "invites.resend"') == 4
    assert child.stdout.count('"url.template": "/v1/users/{user_id}/resend-invite"') == 5
    assert '"name": "invites.resends"' in child.stdout
    assert '"name": "invites.resend.duration"' in child.stdout
    assert TENANT_API_KEY not in child.stdout + child.stderr
