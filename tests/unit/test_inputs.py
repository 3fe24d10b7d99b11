"""What a caller hands a resend: an access window as a mapping, and bulk input that is no list of
invitees."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

import invites
from invites import Access, InvalidInvitee, Invitee
from invites.testing import FakeProvider

# -- Invitee.access ------------------------------------------------------------------------------


def test_an_access_mapping_becomes_an_access() -> None:
    invitee = Invitee(user_id="u-1", access={"prevent_download": "yes", "end_date": "2026-12-31"})
    assert invitee.access == Access(prevent_download="yes", end_date="2026-12-31")


def test_an_access_mapping_reaches_the_ecosuite_body() -> None:
    bodies: list[Any] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json={})

    provider = invites.from_config(
        {"provider": "ecosuite", "token": "test-token-not-real"},
        client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    invitee = Invitee(
        user_id="u-1",
        email="ada@example.com",
        first_name="Ada",
        last_name="Lovelace",
        access={"prevent_download": "yes"},
    )
    provider.resend_invite(invitee)
    assert bodies[0]["access"] == {"preventDownload": "yes", "restrictProjects": "no"}


@pytest.mark.parametrize(
    ("access", "problem"),
    [
        ({"prevent_downloads": "yes"}, "unknown keys: 'prevent_downloads'"),
        ({1: "yes"}, "unknown keys: 1"),
        (["prevent_download"], "got list"),
        ("yes", "got str"),
        ({"start_date": 20260101}, "start_date must be a string"),
    ],
)
def test_an_unusable_access_is_refused_when_the_invitee_is_built(access: Any, problem: str) -> None:
    with pytest.raises(InvalidInvitee, match=problem):
        Invitee(user_id="u-1", access=access)


# -- bulk input ----------------------------------------------------------------------------------


def test_an_item_that_is_no_invitee_fails_with_a_readable_user_id() -> None:
    fake = FakeProvider()
    (outcome,) = invites.resend_many(fake, [{"user_id": "u-1", "token": "test-token-not-real"}])  # type: ignore[list-item]
    assert outcome.status == "failed"
    assert outcome.user_id == "<dict>"
    assert isinstance(outcome.error, TypeError)
    assert fake.calls == []


@pytest.mark.parametrize("invitees", [{"u-1": "a", "u-2": "b"}, "u-1", b"u-1"])
def test_input_that_is_no_list_of_invitees_is_refused_up_front(invitees: Any) -> None:
    fake = FakeProvider()
    with pytest.raises(TypeError, match="iterable of Invitees or user ids"):
        invites.resend_many(fake, invitees)

    async def run() -> None:
        async for _ in invites.aresend_many(fake, invitees):
            pass

    with pytest.raises(TypeError, match="iterable of Invitees or user ids"):
        asyncio.run(run())
    assert fake.calls == []
