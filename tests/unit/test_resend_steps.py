"""invites.testing.ResendSteps: a vendor's resend under the delivery policy, driven by hand."""

from __future__ import annotations

import httpx
import pytest

import invites
from invites.testing import ResendSteps, Send, Sleep

TENANT = "0b7e5f8e-2a4b-4c61-9d0e-6f1a2b3c4d5e"
USER = "6c1f0d2e-8b3a-4f5c-a7d9-1e2f3a4b5c6d"


def _provider(**settings: object) -> invites.BaseProvider:
    config: dict[str, object] = {
        "provider": "tenant_api",
        "token": "fake-token-1",
        "tenant_id": TENANT,
    }
    config["base_url"] = "http://127.0.0.1:9"
    provider = invites.from_config({**config, **settings})
    assert isinstance(provider, invites.BaseProvider)
    return provider


def test_a_scripted_resend_retries_a_503_and_reads_the_answer() -> None:
    with _provider(max_attempts=2) as provider:
        steps = ResendSteps(provider, USER.upper())

        result = steps.run(
            [
                httpx.Response(503, headers={"Retry-After": "2"}),
                httpx.Response(200, json={"message": "Invitation resent"}),
            ]
        )

    assert result.user_id == USER  # the canonical id, as resend_invite would send it
    assert result.message == "Invitation resent"
    assert steps.slept == [2.0]
    assert [request.method for request in steps.requests] == ["POST", "POST"]
    assert steps.requests[0].url.path == f"/v1/users/{USER}/resend-invite"
    assert steps.requests[0].headers["X-Tenant-ID"] == TENANT


def test_advance_hands_out_each_send_and_sleep_then_none() -> None:
    with _provider() as provider:
        steps = ResendSteps(provider, USER)
        send = steps.advance()
        assert isinstance(send, Send)
        sleep = steps.advance(httpx.ConnectError("refused", request=send.request))
        assert isinstance(sleep, Sleep)
        again = steps.advance()
        assert isinstance(again, Send)
        answer = httpx.Response(200, json={"message": "ok"}, request=again.request)

        assert steps.advance(answer) is None

    assert steps.result is not None
    assert steps.result.message == "ok"


def test_the_resend_error_is_raised_as_resend_invite_raises_it() -> None:
    with _provider(max_attempts=1) as provider:
        steps = ResendSteps(provider, USER)
        with pytest.raises(invites.ConnectionFailed) as caught:
            steps.run([httpx.ConnectError("refused")])

    assert caught.value.provider == "tenant_api"
    assert caught.value.user_id == USER
    assert caught.value.attempts == 1


def test_a_script_too_short_for_the_resend_is_an_assertion_error() -> None:
    with _provider(max_attempts=3) as provider:
        steps = ResendSteps(provider, USER)
        with pytest.raises(AssertionError, match="no answer"):
            steps.run([lambda request: httpx.Response(503)])
