"""A fourth vendor, Relay, written from the manual alone, registered and driven like the others.

The adapter (``fourth_vendor``) imports only the public adapter kit and the exceptions; its
sandbox module (``fourth_vendor_sandbox``) only the sandbox's public per-vendor API. Both are
driven through ``from_config`` over a real loopback socket, sync and async.
"""

from __future__ import annotations

import ast
import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from _support.fourth_vendor import RelayProvider
from _support.fourth_vendor_sandbox import (
    RELAY_ACCEPTED,
    RELAY_EXPIRED,
    RELAY_PENDING,
    RELAY_PENDING_2,
    RELAY_TOKEN,
    RELAY_WORKSPACE,
    RelaySandbox,
)

import invites
from invites import registry
from invites.adapter import ProviderSettings
from invites.ledger import provider_identity
from invites.sandbox import Fault, RunningSandbox, Sandbox, default_vendors, serve

HERE = Path(__file__).resolve().parents[1] / "_support"
MODES = ("sync", "async")


@pytest.fixture(scope="module")
def relay_served() -> Iterator[RunningSandbox]:
    with serve(Sandbox(vendors=[*default_vendors(), RelaySandbox()])) as running:
        yield running


@pytest.fixture
def relay(relay_served: RunningSandbox, monkeypatch: pytest.MonkeyPatch) -> RunningSandbox:
    """The sandbox with Relay, reset, and ``relay`` registered for this test only."""
    monkeypatch.setattr(registry, "_registered", dict(registry._registered))
    invites.register_provider("relay", RelayProvider)
    relay_served.sandbox.reset()
    return relay_served


def relay_config(base_url: str, **overrides: Any) -> dict[str, Any]:
    config = {
        "provider": "relay",
        "base_url": base_url,
        "token": RELAY_TOKEN,
        "workspace": RELAY_WORKSPACE,
        "max_attempts": 1,
        **overrides,
    }
    return {key: value for key, value in config.items() if value is not None}


def resend(provider: invites.BaseProvider, target: str, mode: str) -> invites.ResendResult:
    if mode == "sync":
        return provider.resend_invite(target)
    return asyncio.run(provider.aresend_invite(target))


def outcome(provider: invites.BaseProvider, target: str, mode: str) -> BaseException:
    with pytest.raises(invites.InviteError) as caught:
        resend(provider, target, mode)
    return caught.value


def calls(running: RunningSandbox) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in running.sandbox.requests if r.vendor == "relay"]


@pytest.mark.parametrize("mode", MODES)
def test_a_pending_invitation_is_read_then_resent_once(relay: RunningSandbox, mode: str) -> None:
    with invites.from_config(relay_config(relay.url, channel="sms")) as provider:
        assert isinstance(provider, RelayProvider)
        result = resend(provider, RELAY_PENDING, mode)

    assert (result.provider, result.user_id) == ("relay", RELAY_PENDING)
    assert result.message == "Invitation sent by sms."
    assert result.status_code == 200
    assert calls(relay) == [
        ("GET", f"/api/invitations/{RELAY_PENDING}"),
        ("POST", f"/api/invitations/{RELAY_PENDING}:resend"),
    ]
    assert relay.sandbox.emails_snapshot() == {RELAY_PENDING: 1}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("target", "expected"),
    [(RELAY_ACCEPTED, invites.AlreadyVerified), (RELAY_EXPIRED, invites.InvitationExpired)],
)
def test_an_accepted_or_expired_invitation_is_refused_without_a_resend(
    relay: RunningSandbox, mode: str, target: str, expected: type[invites.InviteError]
) -> None:
    error = outcome(invites.from_config(relay_config(relay.url)), target, mode)

    assert type(error) is expected
    assert (error.provider, error.user_id, error.attempts) == ("relay", target, 1)
    assert calls(relay) == [("GET", f"/api/invitations/{target}")]
    assert relay.sandbox.emails_snapshot() == {}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("overrides", "target", "expected", "kind", "status"),
    [
        ({}, "inv-nobody", invites.UserNotFound, "unknown_invitation", 404),
        ({"token": "relay-wrong-token-not-real"}, RELAY_PENDING, invites.AuthenticationFailed,
         "bad_token", 401),
        ({"workspace": "ws-other"}, RELAY_PENDING, invites.PermissionDenied,
         "foreign_workspace", 403),
    ],
)  # fmt: skip
def test_vendor_errors_map_into_the_shared_hierarchy(
    relay: RunningSandbox,
    mode: str,
    overrides: dict[str, Any],
    target: str,
    expected: type[invites.InviteError],
    kind: str,
    status: int,
) -> None:
    error = outcome(invites.from_config(relay_config(relay.url, **overrides)), target, mode)

    assert type(error) is expected
    assert (error.status_code, error.vendor_code, error.request_id) == (
        status,
        kind,
        f"trace-{kind}",
    )
    assert (error.provider, error.user_id) == ("relay", target)
    assert "relay-wrong-token" not in str(error)
    assert relay.sandbox.emails_snapshot() == {}


@pytest.mark.parametrize("mode", MODES)
def test_an_unreadable_state_is_recovered_by_an_unconditional_resend(
    relay: RunningSandbox, mode: str
) -> None:
    # The read's connection drops before its body: thrown into the flow as ConnectionFailed.
    relay.sandbox.inject(RELAY_PENDING, Fault.DROP_BEFORE)
    with invites.from_config(relay_config(relay.url)) as provider:
        result = resend(provider, RELAY_PENDING, mode)

    assert result.message == "Invitation sent by email."
    assert relay.sandbox.fault_log == [(RELAY_PENDING, Fault.DROP_BEFORE)]
    assert [method for method, _ in calls(relay)] == ["GET", "POST"]
    assert relay.sandbox.emails_snapshot() == {RELAY_PENDING: 1}


@pytest.mark.parametrize("mode", MODES)
def test_a_lost_resend_is_an_unknown_outcome_and_not_retried(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "_registered", dict(registry._registered))
    invites.register_provider("relay", RelayProvider)
    # Random faults hit only routes that may send: the read passes, every resend is answered
    # and then its connection dropped.
    lossy = Sandbox(vendors=[RelaySandbox()], fault_rate=1.0, faults=[Fault.DROP_AFTER], seed=1)
    with serve(lossy) as running:
        provider = invites.from_config(relay_config(running.url, max_attempts=3))
        error = outcome(provider, RELAY_PENDING, mode)

    assert type(error) is invites.OutcomeUnknown
    assert [method for method, _ in calls(running)] == ["GET", "POST"]
    assert lossy.emails_snapshot() == {RELAY_PENDING: 1}


def test_an_injected_503_answers_in_relays_error_shape(relay: RunningSandbox) -> None:
    relay.sandbox.inject(RELAY_PENDING_2, Fault.UNAVAILABLE)
    error = outcome(invites.from_config(relay_config(relay.url)), RELAY_PENDING_2, "sync")

    assert type(error) is invites.ProviderUnavailable
    assert (error.status_code, error.vendor_code, error.retryable) == (503, "unavailable", True)
    assert relay.sandbox.emails_snapshot() == {}


def test_a_bulk_run_reaches_seeded_users_once_each(relay: RunningSandbox) -> None:
    users = [f"inv-bulk-{n:03d}" for n in range(40)]
    relay.sandbox.add_users("relay", users)
    with invites.from_config(relay_config(relay.url)) as provider:
        outcomes = list(invites.resend_many(provider, [*users, RELAY_ACCEPTED], concurrency=8))

    by_status = {o.user_id: o.status for o in outcomes}
    assert by_status == {**dict.fromkeys(users, "sent"), RELAY_ACCEPTED: "already_verified"}
    assert relay.sandbox.emails_snapshot() == dict.fromkeys(users, 1)


def test_mock_answers_map_by_kind_then_status(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_registered", dict(registry._registered))
    invites.register_provider("relay", RelayProvider)
    answers = iter(
        [
            httpx.Response(200, json={"id": "i-1", "state": "pending", "revision": 4}),
            httpx.Response(409, json={"error": {"kind": "stale_revision", "detail": "changed"}}),
            httpx.Response(200, json={"id": "i-1", "state": "pending", "revision": 5}),
            httpx.Response(500, html="<h1>oops</h1>"),
            httpx.Response(200, json=["not", "an", "object"]),
        ]
    )
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return next(answers)

    provider = invites.from_config(
        relay_config("https://relay.example"),
        client=httpx.Client(transport=httpx.MockTransport(answer)),
    )
    with pytest.raises(invites.InviteRejected) as stale:
        provider.resend_invite("i-1")
    with pytest.raises(invites.ProviderUnavailable) as broken:
        provider.resend_invite("i-1")
    with pytest.raises(invites.UnexpectedResponse):
        provider.resend_invite("i-1")

    assert type(stale.value) is invites.InviteRejected
    assert (stale.value.vendor_code, stale.value.message) == ("stale_revision", "changed")
    assert json.loads(sent[1].content) == {"channel": "email", "revision": 4}
    assert sent[1].url.raw_path == b"/api/invitations/i-1:resend"
    assert sent[1].headers["X-Api-Token"] == RELAY_TOKEN
    assert sent[1].headers["X-Relay-Workspace"] == RELAY_WORKSPACE
    assert "authorization" not in sent[1].headers
    assert "oops" in broken.value.details["body"]


def test_its_settings_are_checked_like_any_vendors(relay: RunningSandbox) -> None:
    with pytest.raises(invites.ConfigurationError) as caught:
        invites.from_config(
            relay_config(relay.url, workspace=None, channel="fax", chanel="sms", timeout=0)
        )

    problems = "\n".join(caught.value.problems)
    assert "workspace: is required" in problems
    assert "channel: " in problems
    assert "fax" not in problems  # values are never echoed
    assert "chanel" in problems
    assert "did you mean 'channel'" in problems
    assert "timeout: must be greater than 0" in problems


def test_the_workspace_is_part_of_the_ledger_identity(relay: RunningSandbox) -> None:
    here = provider_identity(invites.from_config(relay_config(relay.url)))
    there = provider_identity(invites.from_config(relay_config(relay.url, workspace="ws-2")))

    assert json.loads(here)["workspace"] == RELAY_WORKSPACE
    assert here != there
    assert RELAY_TOKEN not in here


@pytest.mark.parametrize(
    ("module", "allowed"),
    [
        ("fourth_vendor.py", {"invites.adapter", "invites.errors"}),
        ("fourth_vendor_sandbox.py", {"invites.sandbox"}),
    ],
)
def test_the_plug_in_uses_only_the_public_kits(module: str, allowed: set[str]) -> None:
    tree = ast.parse((HERE / module).read_text(encoding="utf-8"))
    imported = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module is not None
    }
    imported |= {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }

    assert {name for name in imported if name.startswith("invites")} == allowed


@pytest.mark.parametrize("mode", MODES)
def test_a_gateway_timeout_on_the_read_is_unavailable_not_unknown(
    relay: RunningSandbox, mode: str
) -> None:
    relay.sandbox.inject(RELAY_PENDING, Fault.GATEWAY_TIMEOUT)
    error = outcome(invites.from_config(relay_config(relay.url)), RELAY_PENDING, mode)

    # Nothing was sent: the read's 504 cannot have emailed anyone.
    assert type(error) is invites.ProviderUnavailable
    assert (error.status_code, error.vendor_code) == (504, "gateway_timeout")
    assert calls(relay) == [("GET", f"/api/invitations/{RELAY_PENDING}")]


def test_a_plug_in_key_without_a_default_is_reported_as_required_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    @attrs.frozen(kw_only=True)
    class PlainSettings(ProviderSettings):
        workspace: str

    class PlainProvider(RelayProvider):
        name = "plain"
        settings_class = PlainSettings  # type: ignore[assignment]

    monkeypatch.setattr(registry, "_registered", dict(registry._registered))
    invites.register_provider("plain", PlainProvider)
    config = {"provider": "plain", "token": RELAY_TOKEN, "base_url": "https://relay.example"}
    with pytest.raises(invites.ConfigurationError) as caught:
        invites.from_config(config)

    assert caught.value.problems == ["workspace: is required"]


def test_a_plug_in_without_a_default_base_url_requires_one(relay: RunningSandbox) -> None:
    config = relay_config(relay.url)
    del config["base_url"]
    with pytest.raises(invites.ConfigurationError) as caught:
        invites.from_config(config)

    assert caught.value.problems == ["base_url: is required"]
    assert caught.value.provider == "relay"
