"""Hostile user ids (and SoftwareOne account ids) never escape their one URL path segment.

Every id in the table goes through every vendor, sync and async, over an ``httpx.MockTransport``
that records what would have been sent (no network). For each, either nothing was sent and
:class:`invites.InvalidInvitee` was raised, or every request's raw path has exactly the vendor's
template with one segment that decodes back to the id.
"""

from __future__ import annotations

import asyncio
import re
import warnings
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import unquote

import httpx
import pytest
from _support.vendors import vendor_config

import invites
from invites import ConfigurationError, InvalidInvitee, Invitee
from invites._delivery.answers import segment
from invites.models import MAX_ID_LENGTH, check_user_id

BASE_URL = "https://vendor.example"
ACCOUNT_ID = "ACC-0000-0001"
UUID = "a3e8b3cd-92f7-4c96-8976-5afdb2e921bc"

Kind = Literal["refuse", "send"]

#: (id, what every vendor must do with it); "send" vendors whose template allows it (the tenant
#: API takes only UUIDs and refuses anything else).
HOSTILE: list[tuple[str, Kind]] = [
    # empty, blank and relative segments
    ("", "refuse"),
    (" ", "refuse"),
    (".", "refuse"),
    ("..", "refuse"),
    ("\uff0e\uff0e", "refuse"),  # fullwidth full stops: NFKC ".."
    ("\u2024\u2024", "refuse"),  # one dot leaders: NFKC ".."
    ("\u2025", "refuse"),  # two dot leader: NFKC ".."
    ("\uff0e", "refuse"),  # NFKC "."
    # control characters, header injection
    ("a\r\nX: 1", "refuse"),
    ("a\nb", "refuse"),
    ("a\rb", "refuse"),
    ("\x00", "refuse"),
    ("a\x00b", "refuse"),
    ("a\tb", "refuse"),
    ("\t", "refuse"),
    ("\x1b[31mred", "refuse"),
    ("a\x7fb", "refuse"),
    ("a\x85b", "refuse"),  # NEL, a C1 control
    ("a\u2028b", "refuse"),  # line separator
    # invisible and bidi characters
    ("\u202eadmin", "refuse"),  # right-to-left override
    ("user\u2066x", "refuse"),  # left-to-right isolate
    ("\ufeffuser", "refuse"),  # byte order mark
    ("a\u200bb", "refuse"),  # zero width space
    ("\U0001f469\u200d\U0001f4bb", "refuse"),  # emoji joined by a zero width joiner
    ("\ud800", "refuse"),  # lone surrogate
    ("a\ue000b", "refuse"),  # private use
    ("a\uffffb", "refuse"),  # noncharacter
    # whitespace at the edges
    (" a", "refuse"),
    ("a ", "refuse"),
    ("\u00a0a", "refuse"),
    ("a\u3000", "refuse"),
    # length
    ("x" * (MAX_ID_LENGTH + 1), "refuse"),
    ("x" * 5000, "refuse"),
    # path, query and fragment syntax: encoded into the one segment
    ("../admin", "send"),
    ("../../../../etc/passwd", "send"),
    ("a/b", "send"),
    ("/", "send"),
    ("//evil.example.com/x", "send"),
    ("http://evil.example.com/", "send"),
    ("@evil.example.com", "send"),
    ("%2e%2e", "send"),
    ("%2e%2e%2fadmin", "send"),
    ("%2F", "send"),
    ("%00", "send"),
    ("%", "send"),
    ("a%zz", "send"),
    ("?x=1", "send"),
    ("a?x=1&y=2", "send"),
    ("#frag", "send"),
    ("a#b", "send"),
    (";", "send"),
    ("a;jsessionid=1", "send"),
    ("a\\b", "send"),
    ("..\\admin", "send"),
    ("a:b", "send"),
    ("~root", "send"),
    ("a+b", "send"),
    ("'\"<>`{}|^", "send"),
    ("a b", "send"),
    ("a\u00a0b", "send"),
    # look-alikes that normalize to syntax, and other non-ASCII
    ("\u3002\u3002", "send"),  # ideographic full stops
    ("\uff0fadmin", "send"),  # fullwidth solidus
    ("a\u2215b", "send"),  # division slash
    ("a\u2044b", "send"),  # fraction slash
    ("\uff1fx=1", "send"),  # fullwidth question mark
    ("\U0001f600", "send"),  # emoji
    ("\u00fcser", "send"),
    ("e\u0301", "send"),  # combining accent
    ("\u0130", "send"),  # dotted capital I
    ("x" * MAX_ID_LENGTH, "send"),
    ("\U0001f600" * MAX_ID_LENGTH, "send"),
    # UUID look-alikes (the tenant API's template takes only the 8-4-4-4-12 form: uuid.UUID alone
    # would also take braces, a URN, bare hex and int() syntax, naming another spelling or user)
    (UUID, "send"),
    (UUID.upper(), "send"),
    (f"{UUID}/../x", "send"),
    (f"{UUID}?x=1", "send"),
    (f"../{UUID}", "send"),
    (f"{{{UUID}}}", "send"),
    (f"urn:uuid:{UUID}", "send"),
    (UUID.replace("-", ""), "send"),
    ("+" + UUID.replace("-", "")[1:], "send"),
    ("a_" + UUID.replace("-", "")[2:], "send"),
]

_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
#: What ``segment`` may leave unencoded: RFC 3986 unreserved characters only.
_ENCODED_SEGMENT = re.compile(r"(?:[A-Za-z0-9_.~-]|%[0-9A-F]{2})+")


def _show(user_id: str) -> str:
    shown = ascii(user_id)
    return shown if len(shown) <= 40 else shown[:37] + "..."


# -- the vendors' templates ------------------------------------------------------------------------

ID = "{id}"


class Vendor:
    """One vendor configuration: how to build it, what it must send, how to answer it."""

    def __init__(
        self,
        name: str,
        config: dict[str, Any],
        calls: list[tuple[str, list[str]]],
        answer: Callable[[httpx.Request], httpx.Response],
        *,
        full_invitee: bool = False,
        uuid_ids: bool = False,
    ) -> None:
        self.name = name
        self.config = config
        self.calls = calls
        self.answer = answer
        self.full_invitee = full_invitee
        self.uuid_ids = uuid_ids

    def build(self, **kwargs: Any) -> invites.BaseProvider:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return invites.from_config(self.config, **kwargs)

    def target(self, user_id: str) -> Invitee | str:
        if self.full_invitee:
            return Invitee(user_id=user_id, email="ada@example.com", first_name="A", last_name="L")
        return user_id

    def expected(self, user_id: str, kind: Kind) -> Kind:
        if kind == "send" and self.uuid_ids and not _CANONICAL_UUID.fullmatch(user_id):
            return "refuse"
        return kind


def _ecosuite_answer(request: httpx.Request) -> httpx.Response:
    if request.method == "GET":
        return httpx.Response(
            200, json={"email": "ada@example.com", "firstName": "Ada", "lastName": "Lovelace"}
        )
    return httpx.Response(200, json={})


def _softwareone_answer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        200, json={"id": "AUSR-0000-0001", "invitation": {"url": None, "status": "Invited"}}
    )


def _tenant_answer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"message": "Invite resent."})


S1_API = ["public", "v1", "accounts"]
VENDOR_LIST = [
    Vendor(
        "ecosuite",
        vendor_config("ecosuite", BASE_URL),
        [("GET", ["users", ID]), ("PUT", ["users", ID, "resend"])],
        _ecosuite_answer,
    ),
    Vendor(
        "ecosuite-full-invitee",
        vendor_config("ecosuite", BASE_URL),
        [("PUT", ["users", ID, "resend"])],
        _ecosuite_answer,
        full_invitee=True,
    ),
    Vendor(
        "softwareone",
        vendor_config("softwareone", BASE_URL, account_id=ACCOUNT_ID),
        [("POST", [*S1_API, "accounts", ACCOUNT_ID, "users", ID, "resend-invite"])],
        _softwareone_answer,
    ),
    Vendor(
        "softwareone-legacy",
        vendor_config("softwareone", BASE_URL, account_id=None),
        [("POST", [*S1_API, "account-users", ID, "resend-invite"])],
        _softwareone_answer,
    ),
    Vendor(
        "tenant_api",
        vendor_config("tenant_api", BASE_URL),
        [("POST", ["v1", "users", ID, "resend-invite"])],
        _tenant_answer,
        uuid_ids=True,
    ),
]


def _check_path(
    request: httpx.Request, template: list[str], user_id: str, *, fold_case: bool = False
) -> None:
    """The raw path is ``template`` exactly, its ``{id}`` one segment decoding to ``user_id``.

    ``fold_case``: the id is a UUID, which the vendor may send in lower case.
    """
    assert request.url.scheme == "https"
    assert request.url.host == "vendor.example"
    assert request.url.query == b""
    assert request.url.fragment == ""
    raw = request.url.raw_path.decode("ascii")
    assert "?" not in raw
    assert "#" not in raw
    segments = raw.split("/")
    assert segments[0] == ""
    assert len(segments) == len(template) + 1, raw
    for got, want in zip(segments[1:], template, strict=True):
        if want == ID:
            assert _ENCODED_SEGMENT.fullmatch(got), got
            decoded = unquote(got, errors="strict")
            assert decoded.lower() == user_id.lower() if fold_case else decoded == user_id
        else:
            assert got == want


def _cases() -> list[Any]:
    return [
        pytest.param(vendor, user_id, kind, id=f"{vendor.name}-{_show(user_id)}")
        for vendor in VENDOR_LIST
        for user_id, kind in HOSTILE
    ]


def _run_sync(vendor: Vendor, user_id: str) -> tuple[list[httpx.Request], object]:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return vendor.answer(request)

    provider = vendor.build(client=httpx.Client(transport=httpx.MockTransport(handler)))
    try:
        outcome: object = provider.resend_invite(vendor.target(user_id))
    except InvalidInvitee as exc:
        outcome = exc
    finally:
        provider.close()
    return sent, outcome


def _run_async(vendor: Vendor, user_id: str) -> tuple[list[httpx.Request], object]:
    sent: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return vendor.answer(request)

    async def main() -> object:
        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        provider = vendor.build(async_client=client)
        try:
            return await provider.aresend_invite(vendor.target(user_id))
        except InvalidInvitee as exc:
            return exc
        finally:
            await provider.aclose()
            await client.aclose()

    return sent, asyncio.run(main())


@pytest.mark.parametrize(("vendor", "user_id", "kind"), _cases())
@pytest.mark.parametrize("run", [_run_sync, _run_async], ids=["sync", "async"])
def test_a_hostile_id_is_refused_or_stays_one_segment(
    run: Callable[[Vendor, str], tuple[list[httpx.Request], object]],
    vendor: Vendor,
    user_id: str,
    kind: Kind,
) -> None:
    sent, outcome = run(vendor, user_id)
    if vendor.expected(user_id, kind) == "refuse":
        assert isinstance(outcome, InvalidInvitee), outcome
        assert sent == []
        text = str(outcome)
        assert text.isprintable()
        assert len(text) < 2 * MAX_ID_LENGTH + 100  # a 5,000-character id is not echoed
        return
    assert isinstance(outcome, invites.ResendResult), outcome
    # The vendor's one spelling of the id: a UUID vendor's in lower case.
    assert outcome.user_id == (user_id.lower() if vendor.uuid_ids else user_id)
    assert [r.method for r in sent] == [method for method, _ in vendor.calls]
    for request, (_, template) in zip(sent, vendor.calls, strict=True):
        _check_path(request, template, user_id, fold_case=vendor.uuid_ids)


def test_the_table_is_long_enough_and_has_no_duplicates() -> None:
    ids = [user_id for user_id, _ in HOSTILE]
    assert len(ids) >= 30
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize(
    ("account_id", "kind"),
    [pytest.param(a, k, id=_show(a)) for a, k in HOSTILE],
)
def test_a_hostile_account_id_is_refused_or_stays_one_segment(account_id: str, kind: Kind) -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return _softwareone_answer(request)

    config = vendor_config("softwareone", BASE_URL, account_id=account_id)
    client = httpx.Client(transport=httpx.MockTransport(handler))
    if kind == "refuse":
        with pytest.raises(ConfigurationError) as caught:
            invites.from_config(config, client=client)
        assert caught.value.problems[0].startswith("account_id: ")
        assert str(caught.value).isprintable()
        return
    provider = invites.from_config(config, client=client)
    result = provider.resend_invite("USR-0000-0001")
    assert result.user_id == "USR-0000-0001"
    assert len(sent) == 1
    _check_path(
        sent[0],
        [*S1_API, "accounts", ID, "users", "USR-0000-0001", "resend-invite"],
        account_id,
    )


@pytest.mark.parametrize(("user_id", "kind"), [pytest.param(u, k, id=_show(u)) for u, k in HOSTILE])
def test_check_user_id_and_segment_agree_with_the_table(user_id: str, kind: Kind) -> None:
    if kind == "refuse":
        with pytest.raises(InvalidInvitee):
            check_user_id(user_id)
        with pytest.raises(InvalidInvitee):
            Invitee(user_id=user_id)
        return
    assert check_user_id(user_id) == user_id
    encoded = segment(user_id)
    assert _ENCODED_SEGMENT.fullmatch(encoded)
    assert unquote(encoded, errors="strict") == user_id


@pytest.mark.parametrize("value", [None, 7, b"user", ["u"], 1.5])
def test_an_id_that_is_not_a_string_is_refused(value: object) -> None:
    with pytest.raises(InvalidInvitee):
        Invitee(user_id=value)  # type: ignore[arg-type]
