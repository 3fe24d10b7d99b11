"""The per-call shortcuts agree with the checks they stand for, and are taken.

Each shortcut answers the common case (a printable ASCII id, plain vendor text, an id with nothing
to percent-encode, an answer the policy always delivers, a provider with nothing to pace or
report) without the general path; these tests hold each one to the general path's answers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from _support.vendors import vendor_config
from hypothesis import given
from hypothesis import strategies as st

import invites
from invites import InvalidInvitee, Invitee
from invites._delivery.answers import NOT_JSON, json_body, segment
from invites._delivery.credentials import Credentials
from invites._delivery.policy import DECIDED_STATUSES, DELIVER, RetryPolicy
from invites._http.bodies import JSON_TYPED, fits
from invites._settings.secret import Secret
from invites.errors import MESSAGE_LIMIT, one_line
from invites.models import as_invitee, check_user_id
from invites.sandbox import TENANT_API_KEY, TENANT_ID, TENANT_USER_INVITED

BASE_URL = "https://vendor.example"

#: Text that reaches every branch: printable ASCII, spaces, dots, links, controls, non-ASCII.
_ALPHABET = st.sampled_from(
    [*" .%:/abcXYZ09-_~", "https://", "\t", "\n", "\x00", "\u00e9", "\uff0e", "\u202e", "\u2028"]
)
TEXTS = st.one_of(
    st.text(),
    st.lists(_ALPHABET, max_size=12).map("".join),
    st.integers(1, 300).map(lambda n: "a" * n),
    st.integers(1, 300).map(lambda n: "a" + " " * n + "b"),
)


class _Text(str):
    """A str that the shortcuts, which take exactly ``str``, leave to the general path."""

    __slots__ = ()


@given(TEXTS)
def test_the_id_shortcut_accepts_exactly_what_the_refusals_accept(user_id: str) -> None:
    refusal: str | None = None
    try:
        check_user_id(_Text(user_id))
    except InvalidInvitee as exc:
        refusal = str(exc)
    if refusal is None:
        assert check_user_id(user_id) == user_id
        assert as_invitee(user_id) == Invitee(user_id=user_id)
        return
    with pytest.raises(InvalidInvitee) as shortcut:
        check_user_id(user_id)
    assert str(shortcut.value) == refusal
    with pytest.raises(InvalidInvitee):
        as_invitee(user_id)


def test_a_bare_id_becomes_the_invitee_its_constructor_builds() -> None:
    bare = as_invitee("u-1")
    built = Invitee(user_id="u-1")
    assert (bare, hash(bare), repr(bare)) == (built, hash(built), repr(built))
    assert as_invitee(built) is built


#: The tenant API's ids as RFC 9562 reads them: hex digits compared without case.
_UUID_WITHOUT_CASE = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE
)
_UUID_LIKE = st.one_of(
    TEXTS,
    st.sampled_from([TENANT_USER_INVITED, TENANT_USER_INVITED.upper(), TENANT_ID]),
    st.lists(st.sampled_from([*"0123456789abcdefABCDEFgG-", "\u212a", "\u0130"]), max_size=40).map(
        "".join
    ),
)


@given(_UUID_LIKE)
def test_the_tenant_id_shortcuts_agree_with_a_uuid_compared_without_case(user_id: str) -> None:
    from providers.tenant_api import _UUID

    provider = invites.from_config(vendor_config("tenant_api", BASE_URL))
    is_uuid = _UUID_WITHOUT_CASE.fullmatch(user_id) is not None
    assert (_UUID.fullmatch(user_id) is not None) == is_uuid
    assert provider.canonical_user_id(user_id) == (user_id.lower() if is_uuid else user_id)


@given(st.text(alphabet='abcXYZ019_-.:%\\/"+ ', max_size=60))
def test_a_token_is_found_as_the_general_pattern_finds_it(text: str) -> None:
    tokens = ("Sk-Test.1", "other+token", TENANT_API_KEY)
    credentials = Credentials(Secret(tokens[0]), None)
    for token in tokens[1:]:
        credentials._use(token)
    body = (text + tokens[len(text) % 3].swapcase() * (len(text) % 2) + text).encode()
    assert credentials._spellings is not None
    assert credentials._mentioned(body) == (credentials._spellings[0].search(body) is not None)


@given(TEXTS, st.sampled_from([5, 40, MESSAGE_LIMIT]))
def test_the_plain_text_shortcut_gives_what_the_general_path_gives(text: str, limit: int) -> None:
    assert one_line(text, limit) == one_line(_Text(text), limit)


@given(TEXTS)
def test_the_segment_shortcut_encodes_as_quote_does(text: str) -> None:
    assert segment(text) == quote(text, safe="")


@pytest.mark.parametrize("status", [*range(100, 600)])
def test_every_status_outside_the_decided_ones_is_delivered_whatever_the_attempt(
    status: int,
) -> None:
    if status in DECIDED_STATUSES:
        return
    answer = httpx.Response(status, request=httpx.Request("POST", BASE_URL))
    for policy in (RetryPolicy(), RetryPolicy(retry_unknown=True)):
        for reads_only in (False, True):
            for attempt in (1, 2, 3):
                decided = policy.decide(
                    answer,
                    reads_only=reads_only,
                    attempt=attempt,
                    elapsed=0.0,
                    refreshable=True,
                )
                assert decided is DELIVER


@pytest.mark.parametrize(
    "headers",
    [
        {"content-type": "application/json"},
        {"content-type": "application/problem+JSON; charset=utf-8"},
        {"content-type": "text/html"},
        {},
        [("content-type", "text/plain"), ("content-type", "application/json")],
    ],
)
def test_the_type_noted_by_the_size_check_is_the_header_s(headers: Any) -> None:
    body = b'{"message": "hi"}'
    response = httpx.Response(200, headers=headers, stream=httpx.ByteStream(body))
    response.headers["content-length"] = str(len(body))
    assert fits(response)
    response.read()
    noted = json_body(response)
    del response.extensions[JSON_TYPED]
    assert json_body(response) == noted
    named = "json" in ", ".join(response.headers.get_list("content-type")).lower()
    assert (noted is not NOT_JSON) is named


def _still() -> float:
    return 1000.0


def _provider(
    clock: Callable[[], float], on_attempt: Callable[[invites.AttemptEvent], None] | None = None
) -> invites.BaseProvider:
    answer = httpx.Response(200, json={"message": "Invite resent."})
    client = httpx.Client(transport=httpx.MockTransport(lambda request: answer))
    configured = invites.from_config(
        vendor_config("tenant_api", BASE_URL, on_attempt=on_attempt), client=client
    )
    return type(configured)(configured.settings, client=client, clock=clock)


def test_a_reported_resend_times_its_attempt(caplog: pytest.LogCaptureFixture) -> None:
    events = list[invites.AttemptEvent]()
    provider = _provider(_still, on_attempt=events.append)
    provider.resend_invite(TENANT_USER_INVITED)
    [event] = events
    assert (event.status_code, event.attempt, event.will_retry) == (200, 1, False)

    quiet = _provider(_still)
    with caplog.at_level(logging.DEBUG, logger="invites"):
        quiet.resend_invite(TENANT_USER_INVITED)
    assert any("-> 200 (attempt 1" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize(
    "client_headers",
    [{}, {"Content-Type": "application/vnd.caller+json"}, {"content-type": "text/plain"}],
)
def test_a_json_body_is_typed_as_setdefault_would(client_headers: dict[str, str]) -> None:
    """A JSON call's request gets ``Content-Type: application/json`` exactly when neither the
    client's default headers nor the call's own carry one."""
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    client = httpx.Client(transport=httpx.MockTransport(answer), headers=client_headers)
    config = vendor_config("ecosuite", BASE_URL, token="fake-token-ct")
    invitee = Invitee(user_id="user-1", email="user@example.com", first_name="A", last_name="B")
    with client, invites.from_config(config, client=client) as provider:
        provider.resend_invite(invitee)
    expected = httpx.Headers(client_headers)
    expected.setdefault("Content-Type", "application/json")
    assert seen[-1].content  # the JSON call
    assert seen[-1].headers.get_list("content-type") == expected.get_list("content-type")
