"""Hostile and arbitrary answers: every vendor gives a ResendResult or an InviteError, nothing else.

Answers come from an ``httpx.MockTransport`` as streams without a content length, so they take the
bounded-read path of the transport. Deterministic cases pin the limits (1 MiB bodies, 2 KiB
excerpts, compressed bodies, deep JSON, bad encodings); hypothesis then feeds arbitrary statuses,
headers and bodies, and SoftwareOne answers generated from its published schema.

Profiles: ``ci`` (the default, 60 examples per test, derandomized) and ``fuzz`` (10,000 arbitrary
answers per vendor configuration, 2,000 for the narrower properties), chosen with
``HYPOTHESIS_PROFILE=fuzz``. They apply to this module's tests only.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import json
import os
import pickle
import tracemalloc
import unicodedata
import warnings
import zlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import httpx
import pytest
from _support.vendors import vendor_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import invites
from invites import (
    InvalidRequest,
    Invitee,
    InviteError,
    OutcomeUnknown,
    ProviderUnavailable,
    ResendResult,
    UnexpectedResponse,
)
from invites._delivery.answers import EXCERPT_LIMIT
from invites._http.bodies import BODY_LIMIT
from invites.errors import MESSAGE_LIMIT

_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=_QUIET,
)
settings.register_profile(
    "fuzz", max_examples=10_000, deadline=None, database=None, suppress_health_check=_QUIET
)
#: The selected profile, applied to this module's property tests only (not loaded globally, so the
#: rest of the suite keeps its own settings).
PROFILE = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
#: For the narrower properties (documented successes, schema-generated answers): a fifth as many.
NARROW = settings(PROFILE, max_examples=max(60, PROFILE.max_examples // 5))

BASE_URL = "https://vendor.example"
TOKEN = "FAKE-FUZZ-TOKEN-0d41"
#: The secret part of the invitation links the fake vendors put in their answers.
INVITE_SECRET = "FAKE-INVITE-LINK-8b2e"
INVITE_URL = f"https://portal.vendor.example/invitations/{INVITE_SECRET}"
TENANT_USER = "a3e8b3cd-92f7-4c96-8976-5afdb2e921bc"
FULL_INVITEE = Invitee(user_id="eco-1", email="ada@example.com", first_name="Ada", last_name="L")

#: key -> (provider name, configuration, target, most requests one resend may make)
VENDORS: dict[str, tuple[str, dict[str, Any], Invitee | str, int]] = {
    "ecosuite": ("ecosuite", vendor_config("ecosuite", BASE_URL), "eco-1", 2),
    "ecosuite-full": ("ecosuite", vendor_config("ecosuite", BASE_URL), FULL_INVITEE, 1),
    "softwareone": ("softwareone", vendor_config("softwareone", BASE_URL), "USR-0000-0001", 2),
    "softwareone-legacy": (
        "softwareone",
        vendor_config("softwareone", BASE_URL, account_id=None),
        "AUSR-0000-0001",
        2,
    ),
    "tenant_api": ("tenant_api", vendor_config("tenant_api", BASE_URL), TENANT_USER, 1),
}
for _vendor in VENDORS.values():
    _vendor[1].update(token=TOKEN, max_attempts=1)

Answer = tuple[int, list[tuple[bytes, bytes]], list[bytes]]
"""(status, headers, body chunks) of one fake answer."""


class Body(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body streamed in chunks, with no content length; counts what was read."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.read = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.read += 1
            yield chunk

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            self.read += 1
            yield chunk


@functools.cache
def _built(key: str) -> tuple[type[invites.BaseProvider], Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        provider = invites.from_config(VENDORS[key][1])
    return type(provider), provider.settings


def _quietly(cls: type[invites.BaseProvider], provider_settings: Any, **kwargs: Any) -> Any:
    """Build a provider without the legacy endpoint's DeprecationWarning (tested elsewhere)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return cls(provider_settings, **kwargs)


def _no_sleep(seconds: float) -> None:
    pass


async def _no_async_sleep(seconds: float) -> None:
    pass


def resend(
    key: str, answers: list[Answer], mode: str = "sync"
) -> tuple[object, list[httpx.Request], list[Body]]:
    """One resend against ``answers`` (served in order, the last repeated): outcome, requests."""
    cls, provider_settings = _built(key)
    target = VENDORS[key][2]
    sent: list[httpx.Request] = []
    bodies: list[Body] = []
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        status, headers, chunks = queue.pop(0) if len(queue) > 1 else queue[0]
        body = Body(chunks)
        bodies.append(body)
        return httpx.Response(status, headers=headers, stream=body)

    transport = httpx.MockTransport(handler)
    outcome: object
    if mode == "sync":
        provider = _quietly(
            cls, provider_settings, client=httpx.Client(transport=transport), sleep=_no_sleep
        )
        try:
            outcome = provider.resend_invite(target)
        except InviteError as exc:
            outcome = exc
        return outcome, sent, bodies

    async def main() -> object:
        async with httpx.AsyncClient(transport=transport) as client:
            provider = _quietly(
                cls, provider_settings, async_client=client, async_sleep=_no_async_sleep
            )
            try:
                return await provider.aresend_invite(target)
            except InviteError as exc:
                return exc

    return asyncio.run(main()), sent, bodies


_UNPRINTABLE = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def check_outcome(key: str, outcome: object, sent: list[httpx.Request]) -> None:
    """What holds for every answer whatsoever."""
    name, _, target, most = VENDORS[key]
    user_id = target.user_id if isinstance(target, Invitee) else target
    assert 1 <= len(sent) <= most
    assert all(request.url.host == "vendor.example" for request in sent)
    if isinstance(outcome, ResendResult):
        assert (outcome.provider, outcome.user_id, outcome.status_code) == (name, user_id, 200)
        surfaces = [repr(outcome)]
    else:
        assert isinstance(outcome, InviteError), repr(outcome)
        assert (outcome.provider, outcome.user_id) == (name, user_id)
        text = str(outcome)
        assert not any(unicodedata.category(c) in _UNPRINTABLE for c in text), text
        assert len(outcome.message) <= MESSAGE_LIMIT
        assert len(text) <= MESSAGE_LIMIT + 1024
        details = json.dumps(outcome.details)
        assert len(details) <= 64 * 1024
        if "body" in outcome.details:
            assert len(outcome.details["body"]) <= EXCERPT_LIMIT
        copy = pickle.loads(pickle.dumps(outcome))  # noqa: S301  (our own bytes)
        assert type(copy) is type(outcome)
        assert str(copy) == text
        assert copy.details == outcome.details
        surfaces = [text, repr(outcome), details]
    for surface in surfaces:
        assert INVITE_SECRET not in surface
        assert TOKEN not in surface


def _json_answer(status: int, value: Any, **headers: str) -> Answer:
    encoded = [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
    return (
        status,
        [(b"content-type", b"application/json"), *encoded],
        [json.dumps(value).encode()],
    )


def _chunked(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)] or [b""]


MODES = ["sync", "async"]


# -- deterministic hostile answers -----------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("key", VENDORS)
def test_a_body_over_the_limit_is_refused_after_reading_at_most_the_limit(
    key: str, mode: str
) -> None:
    chunk = b"x" * 65536
    chunks = [chunk] * (2 * BODY_LIMIT // len(chunk))
    outcome, sent, bodies = resend(
        key, [(200, [(b"content-type", b"application/json")], chunks)], mode
    )
    assert isinstance(outcome, UnexpectedResponse)
    assert "larger than" in outcome.message
    assert bodies[-1].read <= BODY_LIMIT // len(chunk) + 1
    check_outcome(key, outcome, sent)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("key", VENDORS)
def test_a_declared_length_over_the_limit_is_not_trusted(key: str, mode: str) -> None:
    chunks = [b"{}"] + [b" " * 65536] * 20
    headers = [(b"content-type", b"application/json"), (b"content-length", b"1310722")]
    outcome, sent, bodies = resend(key, [(200, headers, chunks)], mode)
    assert isinstance(outcome, UnexpectedResponse)
    assert bodies[-1].read < len(chunks)
    check_outcome(key, outcome, sent)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("key", VENDORS)
def test_a_big_error_page_keeps_a_short_link_free_excerpt(key: str, mode: str) -> None:
    page = (f"<html><a href='{INVITE_URL}'>accept</a>" * 4000 + "</html>").encode()
    answer: Answer = (500, [(b"content-type", b"text/html")], _chunked(page, 4096))
    outcome, sent, _ = resend(key, [answer], mode)
    assert isinstance(outcome, ProviderUnavailable)
    body = outcome.details["body"]
    assert len(body) <= EXCERPT_LIMIT
    assert body.startswith("<html><a href='<url>'>accept</a>")
    assert body.endswith("...")
    check_outcome(key, outcome, sent)


LINK_SPELLINGS = [
    INVITE_URL,
    INVITE_URL.replace("/", "\\/"),  # JSON may escape slashes
    INVITE_URL.replace("/", "\\u002f"),
    INVITE_URL.upper().replace(INVITE_SECRET.upper(), INVITE_SECRET),
    INVITE_URL.replace("://", "%3A%2F%2F"),
]


@pytest.mark.parametrize("link", LINK_SPELLINGS)
@pytest.mark.parametrize("key", ["ecosuite-full", "softwareone", "tenant_api"])
def test_no_spelling_of_an_invitation_link_survives_in_an_error(key: str, link: str) -> None:
    raw = (
        '{"message": "go to LINK", "detail": "go to LINK", "title": "LINK", "traceId": "LINK", '
        '"code": "LINK", "notices": ["LINK"], "details": {"LINK": ["LINK"]}, '
        '"errors": {"url": ["LINK"]}}'
    ).replace("LINK", link)
    for body in (raw.encode(), raw.replace('"', "'").encode()):
        for content_type in (b"application/json", b"text/plain"):
            answer: Answer = (400, [(b"content-type", content_type)], [body])
            outcome, sent, _ = resend(key, [answer])
            assert isinstance(outcome, InviteError)
            check_outcome(key, outcome, sent)


@pytest.mark.parametrize("key", ["ecosuite-full", "tenant_api"])
def test_a_success_message_keeps_no_link_and_stays_short(key: str) -> None:
    message = f"sent, see {INVITE_URL}\r\nX-Forged: 1 " + "a" * 5000
    outcome, sent, _ = resend(key, [_json_answer(200, {"message": message})])
    assert isinstance(outcome, ResendResult)
    assert outcome.message is not None
    assert outcome.message.startswith("sent, see <url>  X-Forged: 1 aaa")
    assert len(outcome.message) == MESSAGE_LIMIT
    check_outcome(key, outcome, sent)


def test_a_huge_vendor_message_is_cut_to_one_short_line() -> None:
    message = "bad\nrequest " * 50_000
    outcome, sent, _ = resend("ecosuite-full", [_json_answer(400, {"message": message})])
    assert isinstance(outcome, InvalidRequest)
    assert outcome.message.startswith("bad request bad request")
    assert len(outcome.message) == MESSAGE_LIMIT
    check_outcome("ecosuite-full", outcome, sent)


def test_huge_vendor_details_are_bounded() -> None:
    nested: Any = "leaf"
    for _ in range(100):
        nested = {"k": [nested, "x" * 1000]}
    body = {
        "code": "x" * 10_000,
        "message": "no",
        "notices": ["n" * 1000] * 200,
        "details": nested,
    }
    outcome, sent, _ = resend("tenant_api", [_json_answer(422, body, x_request_id="r" * 10_000)])
    assert isinstance(outcome, InvalidRequest)
    assert outcome.vendor_code is not None
    assert len(outcome.vendor_code) <= 200
    assert len(json.dumps(outcome.details)) <= 8 * 1024
    check_outcome("tenant_api", outcome, sent)


def _deep(depth: int) -> bytes:
    return b'{"message": ' + b"[" * depth + b"]" * depth + b"}"


BROKEN_200S: list[tuple[str, list[tuple[bytes, bytes]], bytes]] = [
    ("empty", [(b"content-type", b"application/json")], b""),
    ("no content type", [], b'{"message": "ok"}'),
    ("html", [(b"content-type", b"text/html")], b'{"message": "ok"}'),
    ("invalid utf-8", [(b"content-type", b"application/json")], b'{"message": "\xff\xfe"}'),
    ("utf-16", [(b"content-type", b"application/json")], '{"a": 1}'.encode("utf-16")),
    ("bom", [(b"content-type", b"application/json")], b'\xef\xbb\xbf{"message": "ok"}'),
    ("deep", [(b"content-type", b"application/json")], _deep(200_000)),
    ("truncated", [(b"content-type", b"application/json")], b'{"message": "o'),
    ("a list", [(b"content-type", b"application/json")], b"[]"),
    ("a string", [(b"content-type", b"application/json")], b'"ok"'),
    ("huge number", [(b"content-type", b"application/json")], b"1" * 100_000),
    ("nan", [(b"content-type", b"application/json")], b"NaN"),
    (
        "bad gzip",
        [(b"content-type", b"application/json"), (b"content-encoding", b"gzip")],
        b"not gzip at all",
    ),
    (
        "bad deflate",
        [(b"content-type", b"application/json"), (b"content-encoding", b"deflate")],
        b"\x00\x01\x02",
    ),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("name", "headers", "body"), BROKEN_200S, ids=[b[0] for b in BROKEN_200S])
@pytest.mark.parametrize("key", ["ecosuite-full", "softwareone", "tenant_api"])
def test_a_broken_200_is_an_unexpected_response(
    key: str, name: str, headers: list[tuple[bytes, bytes]], body: bytes, mode: str
) -> None:
    outcome, sent, _ = resend(key, [(200, headers, _chunked(body, 1000))], mode)
    assert isinstance(outcome, UnexpectedResponse), outcome
    assert outcome.status_code == 200
    check_outcome(key, outcome, sent)


#: Bodies that can be read, however broken; an undecodable compressed body is UnexpectedResponse.
READABLE = [b for b in BROKEN_200S if not b[0].startswith("bad ")]


@pytest.mark.parametrize(("name", "headers", "body"), READABLE, ids=[b[0] for b in READABLE])
@pytest.mark.parametrize("key", VENDORS)
def test_a_broken_error_body_still_maps_by_status(
    key: str, name: str, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    outcome, sent, _ = resend(key, [(403, headers, _chunked(body, 1000))])
    assert isinstance(outcome, invites.PermissionDenied), outcome
    assert outcome.status_code == 403
    check_outcome(key, outcome, sent)


def _gzip_bomb(size: int) -> list[bytes]:
    return _chunked(gzip.compress(b"\0" * size, compresslevel=9), 1024)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("key", ["ecosuite-full", "softwareone", "tenant_api"])
def test_a_compressed_body_over_the_limit_is_refused(key: str, mode: str) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-encoding", b"gzip")]
    outcome, sent, _ = resend(key, [(200, headers, _gzip_bomb(4 * BODY_LIMIT))], mode)
    assert isinstance(outcome, UnexpectedResponse)
    check_outcome(key, outcome, sent)


def test_a_small_compressed_answer_is_understood() -> None:
    body = gzip.compress(json.dumps({"message": "Invite resent."}).encode())
    headers = [(b"content-type", b"application/json"), (b"content-encoding", b"gzip")]
    outcome, _, _ = resend("tenant_api", [(200, headers, _chunked(body, 7))])
    assert isinstance(outcome, ResendResult)
    assert outcome.message == "Invite resent."


def test_a_gzip_bomb_is_refused_without_inflating_it() -> None:
    headers = [(b"content-type", b"application/json"), (b"content-encoding", b"gzip")]
    bomb = _gzip_bomb(32 * 1024 * 1024)
    tracemalloc.start()
    try:
        outcome, _, _ = resend("tenant_api", [(200, headers, bomb)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(outcome, UnexpectedResponse)
    assert peak < 16 * 1024 * 1024


@pytest.mark.parametrize("status", [200, 400, 429, 503])
@pytest.mark.parametrize("value", [b"\xb2", b"1\xb2", b"\xc2\xb2"])
def test_an_odd_retry_after_is_ignored(status: int, value: bytes) -> None:
    answer: Answer = (status, [(b"content-type", b"text/plain"), (b"retry-after", value)], [b"x"])
    outcome, sent, _ = resend("tenant_api", [answer])
    check_outcome("tenant_api", outcome, sent)
    assert isinstance(outcome, InviteError)
    assert outcome.retry_after is None


@pytest.mark.parametrize("mode", MODES)
def test_a_redirect_setting_a_non_ascii_cookie_is_an_invite_error(mode: str) -> None:
    location = f"/v1/users/{TENANT_USER}/elsewhere".encode()  # within the cookie's default path
    headers = [(b"location", location), (b"set-cookie", b"session=\x80")]
    outcome, sent, _ = resend("tenant_api", [(302, headers, [b""])], mode)
    check_outcome("tenant_api", outcome, sent)
    # A caller's own client fails on the cookie after the request left: it may have been acted on.
    assert isinstance(outcome, OutcomeUnknown)
    assert "UnicodeEncodeError" in str(outcome)
    assert len(sent) == 1


# -- strategies ------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
vendor_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            "Invalid status value",
            "User is already verified",
            INVITE_URL,
            f"open {INVITE_URL} to accept",
            "line one\nline two",
            "\u202eoverride",
        ]
    ),
)
texty = vendor_text | json_values
membership_states = st.sampled_from(["Invited", "Active", "InvitationExpired", "Deleted"]) | texty

ecosuite_bodies = st.fixed_dictionaries(
    {},
    optional={
        "message": texty,
        "email": st.sampled_from(["ada@example.com", "not an email", ""]) | texty,
        "firstName": texty,
        "lastName": texty,
        "timezone": texty,
        "userType": texty,
        "access": st.fixed_dictionaries(
            {},
            optional={
                "startDate": st.sampled_from(["2025-01-06", "2025-13-99"]) | texty,
                "endDate": texty,
                "preventDownload": st.sampled_from(["no", "yes", "maybe"]) | texty,
                "restrictProjects": st.sampled_from(["no", "portfolios", "yes"]) | texty,
            },
        )
        | texty,
    },
)
softwareone_bodies = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "id": texty,
            "status": membership_states,
            "invitation": st.fixed_dictionaries(
                {}, optional={"url": st.none() | st.just(INVITE_URL), "status": membership_states}
            )
            | texty,
        },
    ),
    st.fixed_dictionaries(
        {},
        optional={
            "type": texty,
            "title": texty,
            "status": st.integers(100, 599) | texty,
            "detail": texty,
            "traceId": texty,
            "errors": st.dictionaries(st.text(max_size=8), st.lists(texty, max_size=3) | texty)
            | st.lists(
                st.fixed_dictionaries({}, optional={"message": texty, "id": texty}) | texty,
                max_size=4,
            )
            | texty,
        },
    ),
    st.fixed_dictionaries({}, optional={"message": texty, "statusCode": st.integers() | texty}),
)
tenant_bodies = st.fixed_dictionaries(
    {},
    optional={
        "code": st.sampled_from(
            ["already_verified", "tenant_mismatch", "not_found", "invite_cooldown", "unauthorized"]
        )
        | texty,
        "message": texty,
        "details": texty,
        "notices": st.lists(texty, max_size=4) | texty,
    },
)
NEAR_VALID = {
    "ecosuite": ecosuite_bodies,
    "softwareone": softwareone_bodies,
    "tenant_api": tenant_bodies,
}


BODY_KINDS = st.sampled_from(
    ["json", "json", "near", "near", "near", "bytes", "deep", "gzip", "deflate", "broken"]
)
STATUSES = st.sampled_from(
    [200, 200, 200, 400, 401, 403, 404, 409, 410, 422, 429, 500, 502, 503, 504, 302]
) | st.integers(100, 999)
header_bytes = st.binary(max_size=40).map(
    lambda b: bytes(c for c in b if c >= 0x20 and c != 0x7F).strip()
)
CONTENT_TYPES = (
    st.sampled_from(
        [
            b"application/json",
            b"application/json",
            b"application/problem+json",
            b"application/json; charset=utf-8",
            b"Application/JSON",
            b"text/html",
            b"text/plain",
            b"",
        ]
    )
    | header_bytes
)
ENCODINGS = st.sampled_from([b"gzip", b"deflate", b"br", b"identity", b"x"])
RETRY_AFTERS = (
    st.sampled_from(
        [b"0", b"1", b"120", b"-1", b"1.5", b"1e999", b"inf", b"nan", b"\xb2", b"\xd9\xa3"]
    )
    | st.sampled_from(
        [b"Wed, 21 Oct 2015 07:28:00 GMT", b"Fri, 31 Dec 9999 23:59:59 GMT", b"Mon, 99 Foo"]
    )
    | header_bytes
)
BAD_LENGTHS = st.sampled_from([b"0", b"-1", b"abc", b"9" * 30])
EXTRA_HEADERS = st.lists(
    st.tuples(st.sampled_from([b"x-request-id", b"location", b"set-cookie", b"x-y"]), header_bytes),
    max_size=3,
)


@st.composite
def body_bytes(draw: st.DrawFn, near_valid: st.SearchStrategy[Any]) -> tuple[bytes, bytes | None]:
    """Raw body bytes and the content-encoding that matches them, if any."""
    kind = draw(BODY_KINDS)
    if kind == "bytes":
        return draw(st.binary(max_size=300)), None
    if kind == "deep":
        depth = draw(st.integers(1, 5000))
        return draw(st.sampled_from([b"[", b'{"a":'])) * depth, None
    value = draw(near_valid if kind in ("near", "gzip", "deflate", "broken") else json_values)
    raw = json.dumps(value).encode()
    if draw(st.booleans()):
        raw = raw.replace(b"/", b"\\/")
    if kind == "gzip":
        return gzip.compress(raw), b"gzip"
    if kind == "deflate":
        return zlib.compress(raw), b"deflate"
    if kind == "broken":
        cut = draw(st.integers(0, len(raw)))
        return raw[:cut] + draw(st.binary(max_size=8)), None
    return raw, None


@st.composite
def answers(draw: st.DrawFn, bodies: st.SearchStrategy[tuple[bytes, bytes | None]]) -> Answer:
    """One arbitrary answer: any status, typical and odd headers, a body from ``bodies``."""
    status = draw(STATUSES)
    body, encoding = draw(bodies)
    headers: list[tuple[bytes, bytes]] = []
    content_type = draw(CONTENT_TYPES)
    if content_type or draw(st.booleans()):
        headers.append((b"content-type", content_type))
    if encoding is not None and draw(st.integers(0, 9)):
        headers.append((b"content-encoding", encoding))
    elif draw(st.integers(0, 9)) == 0:
        headers.append((b"content-encoding", draw(ENCODINGS)))
    if draw(st.integers(0, 3)) == 0:
        headers.append((b"retry-after", draw(RETRY_AFTERS)))
    if draw(st.integers(0, 4)) == 0:
        right = draw(st.booleans())
        headers.append((b"content-length", str(len(body)).encode() if right else draw(BAD_LENGTHS)))
    headers.extend(draw(EXTRA_HEADERS))
    return status, headers, _chunked(body, draw(st.integers(1, 512)))


#: One to three answers per resend (a second call reads what the first left), per vendor.
REPLIES = {
    vendor: st.lists(answers(body_bytes(near_valid)), min_size=1, max_size=3)
    for vendor, near_valid in NEAR_VALID.items()
}


@pytest.mark.parametrize("key", VENDORS)
@PROFILE
@given(data=st.data(), mode=st.sampled_from(MODES))
def test_any_answer_gives_a_result_or_an_invite_error(
    key: str, data: st.DataObject, mode: str
) -> None:
    replies = data.draw(REPLIES[VENDORS[key][0]])
    outcome, sent, _ = resend(key, replies, mode)
    check_outcome(key, outcome, sent)


NOISE = st.dictionaries(st.text(max_size=8), json_values, max_size=4)
JSON_TYPES = st.sampled_from([b"application/json", b"application/json; charset=utf-8"])
BENIGN_HEADERS = st.lists(
    st.tuples(st.sampled_from([b"x-request-id", b"set-cookie"]), header_bytes)
)
SUCCESS_BODIES: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "ecosuite-full": st.just({}),
    "softwareone": st.just({"id": "AUSR-0000-0001", "invitation": {"status": "Invited"}}),
    "softwareone-legacy": st.just({"id": "AUSR-0000-0001"}),
    "tenant_api": st.just({"message": "Invite resent."}),
}


@pytest.mark.parametrize("key", SUCCESS_BODIES)
@NARROW
@given(data=st.data())
def test_the_documented_success_with_noise_is_a_success(key: str, data: st.DataObject) -> None:
    body: dict[str, Any] = dict(data.draw(SUCCESS_BODIES[key]))
    body.update(data.draw(NOISE))
    raw = json.dumps(body).encode()
    headers = [(b"content-type", data.draw(JSON_TYPES)), *data.draw(BENIGN_HEADERS)]
    answer: Answer = (200, headers, _chunked(raw, data.draw(st.integers(1, 64))))
    outcome, sent, _ = resend(key, [answer])
    assert isinstance(outcome, ResendResult), outcome
    check_outcome(key, outcome, sent)


# -- SoftwareOne answers generated from the published schema ---------------------------------------

SPEC = json.loads(
    (Path(__file__).parents[1] / "data" / "softwareone-account-users.openapi.json").read_text(
        "utf-8"
    )
)
SCHEMAS: dict[str, Any] = SPEC["components"]["schemas"]
#: Below this depth, objects carry only their required properties (the schemas are recursive).
MAX_DEPTH = 3


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SCHEMAS[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _merged(schema: dict[str, Any]) -> tuple[dict[str, Any], set[str], Any]:
    """Properties, required names and additionalProperties of an object, ``allOf`` folded in."""
    schema = _resolve(schema)
    properties: dict[str, Any] = {}
    required: set[str] = set()
    for part in schema.get("allOf", []):
        more, needed, _ = _merged(part)
        properties.update(more)
        required |= needed
    properties.update(schema.get("properties", {}))
    required |= set(schema.get("required", []))
    return properties, required, schema.get("additionalProperties", True)


def _string(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    fmt = schema.get("format")
    if fmt == "date-time":
        return st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat())
    if fmt == "uuid":
        return st.uuids().map(str)
    if fmt == "email":
        return st.emails()
    low = schema.get("minLength", 0)
    return st.text(min_size=low, max_size=max(low, min(schema.get("maxLength", 20), 20)))


def from_schema(schema: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values valid against an OpenAPI 3.0 schema: $ref, allOf, nullable, enum, formats loosely."""
    schema = _resolve(schema)
    if "enum" in schema:
        strategy: st.SearchStrategy[Any] = st.sampled_from(schema["enum"])
    else:
        kind = schema.get("type") or ("object" if "properties" in schema else None)
        if kind == "object" or "allOf" in schema:
            properties, required, additional = _merged(schema)
            optional = {} if depth >= MAX_DEPTH else properties.keys() - required
            strategy = st.fixed_dictionaries(
                {name: from_schema(properties[name], depth + 1) for name in sorted(required)},
                optional={
                    name: from_schema(properties[name], depth + 1) for name in sorted(optional)
                },
            )
            if additional is not False and depth < MAX_DEPTH:
                extra = st.dictionaries(
                    st.text(max_size=8).filter(lambda k: k not in properties),
                    json_values,
                    max_size=2,
                )
                strategy = st.builds(lambda a, b: {**b, **a}, strategy, extra)
        elif kind == "array":
            items = from_schema(schema.get("items", {}), depth + 1)
            strategy = st.lists(items, max_size=2 if depth < MAX_DEPTH else 0)
        elif kind == "string":
            strategy = _string(schema)
        elif kind == "integer":
            strategy = st.integers(-(2**31), 2**31 - 1)
        elif kind == "number":
            strategy = st.floats(allow_nan=False, allow_infinity=False)
        elif kind == "boolean":
            strategy = st.booleans()
        else:
            strategy = json_values
    if schema.get("nullable"):
        strategy = st.none() | strategy
    return strategy


ACCOUNT_USERS = from_schema(SCHEMAS["AccountUserQueryLegacy"])


def test_the_schema_copy_lists_the_resend_answer() -> None:
    operation = SPEC["paths"]["/public/v1/accounts/account-users/{id}/resend-invite"]["post"]
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert answer == {"$ref": "#/components/schemas/AccountUserQueryLegacy"}
    assert "invitation" in _merged(SCHEMAS["AccountUserQueryLegacy"])[0]


@pytest.mark.parametrize("key", ["softwareone", "softwareone-legacy"])
@NARROW
@given(account_user=ACCOUNT_USERS, size=st.integers(1, 4096), mode=st.sampled_from(MODES))
def test_a_schema_valid_account_user_parses_as_a_result(
    key: str, account_user: dict[str, Any], size: int, mode: str
) -> None:
    raw = json.dumps(account_user).encode()
    answer: Answer = (200, [(b"content-type", b"application/json")], _chunked(raw, size))
    outcome, sent, _ = resend(key, [answer], mode)
    assert isinstance(outcome, ResendResult), outcome
    check_outcome(key, outcome, sent)
    invitation = account_user.get("invitation")
    status = invitation.get("status") if isinstance(invitation, dict) else None
    expected = status if isinstance(status, str) and status else None
    assert outcome.invitation_status == expected
    assert outcome.message is None
    assert len(sent) == 1


# -- found by the fuzz profile -----------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("key", "answer"),
    [
        # A caller's own client parses a 3xx's Location; httpx raises InvalidURL for this one.
        ("ecosuite", (301, [(b"content-type", b"application/json"), (b"location", b"A:!")])),
        # A caller's own client keeps a cookie it cannot send back with the state read.
        ("softwareone", (400, [(b"content-type", b"application/json"), (b"set-cookie", b"\x80")])),
    ],
)
def test_what_a_callers_client_cannot_process_is_an_invite_error(
    key: str, answer: tuple[int, list[tuple[bytes, bytes]]], mode: str
) -> None:
    status, headers = answer
    outcome, sent, _ = resend(key, [(status, headers, [b"null"])], mode)
    assert isinstance(outcome, InviteError)
    assert len(sent) >= 1
