"""Cassettes: the documented request/response pairs of every vendor, recorded with vcrpy.

Each `Scenario` is one documented exchange: what the caller asks for, the requests the adapter
must send (``calls``) and what the caller gets back (``outcome`` and ``fields``). The same table
drives three things:

- ``scripts/record_cassettes.py`` records every scenario from the sandbox (over a real socket)
  into ``cassettes/<vendor>/<name>.yaml``;
- each vendor's test module replays its scenarios with ``record_mode="none"``, sync and async,
  and checks that the adapter sent exactly the recorded requests;
- the ``live`` tests record one scenario per vendor against the real vendor, with the same filters,
  into ``cassettes/<vendor>/live_resend.yaml``.

Why the cassettes can be replayed anywhere: the recorder rewrites the sandbox's ephemeral
``http://127.0.0.1:<port>`` to `CASSETTE_BASE_URL` (``http://sandbox.invalid``) before an
interaction is stored, and requests are matched on method, path, query, body and the vendor's own
headers, never on host or port. vcrpy applies the same request filter to every request it replays,
so a replay sends to `CASSETTE_BASE_URL` and nothing ever leaves the process (``.invalid`` cannot
resolve).

Filters: ``Authorization`` and ``X-API-Key`` keep only their scheme word (``Bearer <redacted>``,
``<redacted>``) so the cassette still shows how the credential travels; request headers are cut to
the ones that describe the vendor's wire format; response headers lose dates and server names;
every ``invitation.url`` in a JSON answer becomes `INVITATION_URL_PLACEHOLDER`. Live recordings also
replace personal data (emails, names) and a self-hosted tenant API's host.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from unittest import mock
from urllib.parse import urlsplit, urlunsplit

import httpx
import vcr
import yaml
from vcr.request import Request as VcrRequest

import invites
from _support.vendors import vendor_config
from invites import (
    AlreadyVerified,
    AuthenticationFailed,
    InvalidRequest,
    InvitationExpired,
    Invitee,
    InviteError,
    PermissionDenied,
    ProviderUnavailable,
    ResendResult,
    TenantMismatch,
    UserNotFound,
)
from invites._http.transports import AsyncTransport, SyncTransport
from invites.models import Access
from invites.registry import provider_class
from invites.sandbox import (
    ECOSUITE_TOKEN,
    ECOSUITE_USER_1,
    ECOSUITE_USER_2,
    ECOSUITE_USER_FORBIDDEN,
    OTHER_TENANT_ID,
    SOFTWAREONE_ACCOUNT_ID,
    SOFTWAREONE_MEMBERSHIP_ACTIVE,
    SOFTWAREONE_MEMBERSHIP_EXPIRED,
    SOFTWAREONE_MEMBERSHIP_INVITED,
    SOFTWAREONE_TOKEN,
    SOFTWAREONE_USER_ACTIVE,
    SOFTWAREONE_USER_DELETED,
    SOFTWAREONE_USER_EXPIRED,
    SOFTWAREONE_USER_INVITED,
    TENANT_API_KEY,
    TENANT_BEARER_TOKEN,
    TENANT_USER_COOLDOWN,
    TENANT_USER_INVITED,
    TENANT_USER_INVITED_2,
    TENANT_USER_UNKNOWN,
    TENANT_USER_VERIFIED,
    Fault,
    SoftwareOneSandbox,
)
from invites.sandbox.softwareone import PUBLISHED, TOP_LEVEL_STATUS

ROOT = Path(__file__).resolve().parents[2]
CASSETTES = ROOT / "cassettes"

#: The base URL every sandbox cassette holds, whatever port the sandbox was served on.
CASSETTE_BASE_URL = "http://sandbox.invalid"
#: What a self-hosted tenant API's base URL becomes in a live cassette.
LIVE_TENANT_API_BASE_URL = "https://tenant-api.invalid"
#: What stands in for a credential (after its scheme word, if any).
REDACTED = "<redacted>"
#: What stands in for every ``invitation.url`` of an answer.
INVITATION_URL_PLACEHOLDER = "https://invitation-url.invalid/redacted"
#: What stands in for personal data in a live cassette.
PERSONAL_PLACEHOLDER = "<personal>"

#: Strings that must never appear in a cassette: the sandbox credentials and invitation links.
FORBIDDEN_IN_CASSETTES = (
    ECOSUITE_TOKEN,
    SOFTWAREONE_TOKEN,
    TENANT_API_KEY,
    TENANT_BEARER_TOKEN,
    "invitations/",
)

#: Vendor-defined request headers: matched on replay (secrets compare as their redacted form).
VENDOR_HEADERS = ("authorization", "x-api-key", "x-tenant-id", "content-type")
_KEPT_REQUEST_HEADERS = frozenset({*VENDOR_HEADERS, "accept", "content-length"})
_KEPT_RESPONSE_HEADERS = frozenset(
    {"content-type", "content-length", "retry-after", "x-request-id"}
)
_PERSONAL_KEYS = frozenset({"email", "firstName", "lastName"})

MATCH_ON = ("method", "path", "query", "body", "vendor_headers")

Mode = Literal["sync", "async"]
MODES: tuple[Mode, ...] = ("sync", "async")


# --- the documented exchanges ---------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One documented request/response exchange of a vendor, as the adapter must perform it."""

    vendor: str
    name: str
    invitee: Invitee | str
    outcome: type[InviteError] | None
    """The exception the caller gets, or None for a `ResendResult`."""
    calls: tuple[tuple[str, str], ...]
    """``(method, path)`` of every request, in order."""
    fields: Mapping[str, Any] = field(default_factory=dict)
    """Attributes the result or error must have."""
    message_contains: tuple[str, ...] = ()
    config: Mapping[str, Any] = field(default_factory=dict)
    """Overrides of `support.vendor_config` (a None value removes the key)."""
    emails: int = 0
    """Invitation emails the sandbox counts for the exchange."""
    legacy_removed: bool = False
    shape: str = PUBLISHED
    """How the SoftwareOne sandbox shapes account users (`invites.sandbox.softwareone`)."""
    faults: tuple[Fault, ...] = ()
    """Faults injected for the invitee's user id before the exchange."""

    @property
    def id(self) -> str:
        return f"{self.vendor}/{self.name}"

    @property
    def path(self) -> Path:
        return CASSETTES / self.vendor / f"{self.name}.yaml"

    @property
    def user_id(self) -> str:
        return self.invitee if isinstance(self.invitee, str) else self.invitee.user_id


ECOSUITE_FULL_INVITEE = Invitee(
    user_id=ECOSUITE_USER_1,
    email="ada.lovelace@example.com",
    first_name="Ada",
    last_name="Lovelace",
    timezone="Europe/Paris",
    user_type="viewer",
    access=Access(
        start_date="2025-02-01",
        end_date="2025-12-31",
        prevent_download="yes",
        restrict_projects="portfolios",
    ),
)
"""Every documented field of the resend body, with values unlike the stored profile."""

ECOSUITE_FULL_BODY = {
    "email": "ada.lovelace@example.com",
    "firstName": "Ada",
    "lastName": "Lovelace",
    "timezone": "Europe/Paris",
    "userType": "viewer",
    "access": {
        "startDate": "2025-02-01",
        "endDate": "2025-12-31",
        "preventDownload": "yes",
        "restrictProjects": "portfolios",
    },
}
"""The body `ECOSUITE_FULL_INVITEE` becomes on the wire."""

ECOSUITE_UNKNOWN_USER = "eco-user-unknown"
SOFTWAREONE_UNKNOWN_USER = "USR-9999-9999"
SOFTWAREONE_UNKNOWN_MEMBERSHIP = "AUSR-9999-9999"
BAD_TOKEN = "not-the-sandbox-token"


def _eco(user_id: str, *, profile: bool = False) -> tuple[tuple[str, str], ...]:
    resend = ("PUT", f"/users/{user_id}/resend")
    return (("GET", f"/users/{user_id}"), resend) if profile else (resend,)


def _full(user_id: str, **changes: Any) -> Invitee:
    return Invitee(**{**_invitee_fields(ECOSUITE_FULL_INVITEE), "user_id": user_id, **changes})


def _invitee_fields(invitee: Invitee) -> dict[str, Any]:
    return {
        name: getattr(invitee, name)
        for name in (
            "user_id",
            "email",
            "first_name",
            "last_name",
            "timezone",
            "user_type",
            "access",
        )
    }


_SO_CURRENT = f"/public/v1/accounts/accounts/{SOFTWAREONE_ACCOUNT_ID}/users/"
_SO_LEGACY = "/public/v1/accounts/account-users/"


def _so(
    user_id: str, *, legacy: bool = False, state: bool = False, renew: bool = False
) -> tuple[tuple[str, str], ...]:
    member = (_SO_LEGACY if legacy else _SO_CURRENT) + user_id
    resend = ("POST", member + "/resend-invite")
    calls = (resend, ("GET", member)) if state else (resend,)
    return (*calls, ("POST", member + "/send-new-invite")) if renew else calls


def _tenant(user_id: str) -> tuple[tuple[str, str], ...]:
    return (("POST", f"/v1/users/{user_id}/resend-invite"),)


_LEGACY = {"account_id": None}
_LEGACY_HINT = ("set account_id", "may have been removed")

ECOSUITE_SCENARIOS = (
    Scenario(
        "ecosuite",
        "resend_full_invitee",
        ECOSUITE_FULL_INVITEE,
        None,
        _eco(ECOSUITE_USER_1),
        fields={"provider": "ecosuite", "user_id": ECOSUITE_USER_1, "status_code": 200},
        emails=1,
    ),
    Scenario(
        "ecosuite",
        "resend_bare_id_fetches_profile",
        ECOSUITE_USER_1,
        None,
        _eco(ECOSUITE_USER_1, profile=True),
        fields={"user_id": ECOSUITE_USER_1, "status_code": 200},
        emails=1,
    ),
    Scenario(
        "ecosuite",
        "resend_bare_id_required_fields_only",
        ECOSUITE_USER_2,
        None,
        _eco(ECOSUITE_USER_2, profile=True),
        fields={"user_id": ECOSUITE_USER_2, "status_code": 200},
        emails=1,
    ),
    Scenario(
        "ecosuite",
        "resend_auth_prefix_bearer",
        ECOSUITE_FULL_INVITEE,
        None,
        _eco(ECOSUITE_USER_1),
        config={"auth_prefix": "Bearer"},
        fields={"user_id": ECOSUITE_USER_1, "status_code": 200},
        emails=1,
    ),
    Scenario(
        "ecosuite",
        "invalid_status_value",
        _full(ECOSUITE_USER_1, first_name=" "),
        InvalidRequest,
        _eco(ECOSUITE_USER_1),
        fields={"status_code": 400, "message": "Invalid status value"},
    ),
    Scenario(
        "ecosuite",
        "bad_token",
        ECOSUITE_FULL_INVITEE,
        AuthenticationFailed,
        _eco(ECOSUITE_USER_1),
        config={"token": BAD_TOKEN},
        fields={"status_code": 401, "message": "Unauthorized"},
    ),
    Scenario(
        "ecosuite",
        "forbidden_user",
        _full(ECOSUITE_USER_FORBIDDEN),
        PermissionDenied,
        _eco(ECOSUITE_USER_FORBIDDEN),
        fields={"status_code": 403, "message": "Forbidden"},
    ),
    Scenario(
        "ecosuite",
        "unknown_user",
        _full(ECOSUITE_UNKNOWN_USER),
        UserNotFound,
        _eco(ECOSUITE_UNKNOWN_USER),
        fields={"status_code": 404, "message": "User not found"},
    ),
    Scenario(
        "ecosuite",
        "unknown_user_profile",
        ECOSUITE_UNKNOWN_USER,
        UserNotFound,
        (("GET", f"/users/{ECOSUITE_UNKNOWN_USER}"),),
        fields={"status_code": 404, "message": "User not found"},
    ),
)

SOFTWAREONE_SCENARIOS = (
    Scenario(
        "softwareone",
        "resend_invited",
        SOFTWAREONE_USER_INVITED,
        None,
        _so(SOFTWAREONE_USER_INVITED),
        fields={
            "provider": "softwareone",
            "user_id": SOFTWAREONE_USER_INVITED,
            "invitation_status": "Invited",
            "status_code": 200,
        },
        emails=1,
    ),
    Scenario(
        "softwareone",
        "resend_active",
        SOFTWAREONE_USER_ACTIVE,
        AlreadyVerified,
        _so(SOFTWAREONE_USER_ACTIVE, state=True),
        fields={"status_code": 400},
        message_contains=("Account user is not in Invited state.",),
    ),
    Scenario(
        "softwareone",
        "resend_expired",
        SOFTWAREONE_USER_EXPIRED,
        InvitationExpired,
        _so(SOFTWAREONE_USER_EXPIRED, state=True),
        fields={"status_code": 409},
        message_contains=("Invitation has expired",),
    ),
    Scenario(
        "softwareone",
        "resend_expired_renewed",
        SOFTWAREONE_USER_EXPIRED,
        None,
        _so(SOFTWAREONE_USER_EXPIRED, state=True, renew=True),
        config={"renew_expired": True},
        fields={"invitation_status": "Invited", "status_code": 200, "renewed": True},
        emails=1,
    ),
    Scenario(
        "softwareone",
        "resend_active_top_level_status",
        SOFTWAREONE_USER_ACTIVE,
        AlreadyVerified,
        _so(SOFTWAREONE_USER_ACTIVE, state=True),
        fields={"status_code": 400},
        shape=TOP_LEVEL_STATUS,
    ),
    Scenario(
        "softwareone",
        "resend_account_user_id",
        SOFTWAREONE_MEMBERSHIP_INVITED,
        UserNotFound,
        _so(SOFTWAREONE_MEMBERSHIP_INVITED),
        fields={"status_code": 404},
        message_contains=("this endpoint takes user ids (USR-...)",),
    ),
    Scenario(
        "softwareone",
        "resend_deleted",
        SOFTWAREONE_USER_DELETED,
        UserNotFound,
        _so(SOFTWAREONE_USER_DELETED),
        fields={"status_code": 404},
        message_contains=(f"Account user {SOFTWAREONE_USER_DELETED} not found.",),
    ),
    Scenario(
        "softwareone",
        "resend_unknown_user",
        SOFTWAREONE_UNKNOWN_USER,
        UserNotFound,
        _so(SOFTWAREONE_UNKNOWN_USER),
        fields={"status_code": 404},
        message_contains=(f"Account user {SOFTWAREONE_UNKNOWN_USER} not found.",),
    ),
    Scenario(
        "softwareone",
        "bad_token",
        SOFTWAREONE_USER_INVITED,
        AuthenticationFailed,
        _so(SOFTWAREONE_USER_INVITED),
        config={"token": BAD_TOKEN},
        fields={"status_code": 401},
        message_contains=("A valid bearer token is required.",),
    ),
    Scenario(
        "softwareone",
        "server_error_html",
        SOFTWAREONE_USER_INVITED,
        ProviderUnavailable,
        _so(SOFTWAREONE_USER_INVITED),
        fields={"status_code": 500, "request_id": None},
        faults=(Fault.HTML_ERROR,),
    ),
    Scenario(
        "softwareone",
        "legacy_resend_invited",
        SOFTWAREONE_MEMBERSHIP_INVITED,
        None,
        _so(SOFTWAREONE_MEMBERSHIP_INVITED, legacy=True),
        config=_LEGACY,
        fields={"user_id": SOFTWAREONE_MEMBERSHIP_INVITED, "invitation_status": "Invited"},
        emails=1,
    ),
    Scenario(
        "softwareone",
        "legacy_resend_active",
        SOFTWAREONE_MEMBERSHIP_ACTIVE,
        AlreadyVerified,
        _so(SOFTWAREONE_MEMBERSHIP_ACTIVE, legacy=True, state=True),
        config=_LEGACY,
        fields={"status_code": 400},
    ),
    Scenario(
        "softwareone",
        "legacy_resend_expired",
        SOFTWAREONE_MEMBERSHIP_EXPIRED,
        InvitationExpired,
        _so(SOFTWAREONE_MEMBERSHIP_EXPIRED, legacy=True, state=True),
        config=_LEGACY,
        fields={"status_code": 409},
    ),
    Scenario(
        "softwareone",
        "legacy_unknown_membership",
        SOFTWAREONE_UNKNOWN_MEMBERSHIP,
        UserNotFound,
        _so(SOFTWAREONE_UNKNOWN_MEMBERSHIP, legacy=True),
        config=_LEGACY,
        fields={"status_code": 404},
        message_contains=(
            f"Account user {SOFTWAREONE_UNKNOWN_MEMBERSHIP} not found.",
            *_LEGACY_HINT,
        ),
    ),
    Scenario(
        "softwareone",
        "legacy_endpoint_removed",
        SOFTWAREONE_MEMBERSHIP_INVITED,
        UserNotFound,
        _so(SOFTWAREONE_MEMBERSHIP_INVITED, legacy=True),
        config=_LEGACY,
        fields={"status_code": 404, "request_id": None},
        message_contains=("Resource not found", *_LEGACY_HINT),
        legacy_removed=True,
    ),
)

TENANT_API_SCENARIOS = (
    Scenario(
        "tenant_api",
        "resend_api_key",
        TENANT_USER_INVITED,
        None,
        _tenant(TENANT_USER_INVITED),
        fields={
            "provider": "tenant_api",
            "user_id": TENANT_USER_INVITED,
            "message": "Invite resent.",
            "status_code": 200,
        },
        emails=1,
    ),
    Scenario(
        "tenant_api",
        "resend_bearer",
        TENANT_USER_INVITED_2,
        None,
        _tenant(TENANT_USER_INVITED_2),
        config={"auth": "bearer", "token": TENANT_BEARER_TOKEN},
        fields={"user_id": TENANT_USER_INVITED_2, "message": "Invite resent."},
        emails=1,
    ),
    Scenario(
        "tenant_api",
        "already_verified",
        TENANT_USER_VERIFIED,
        AlreadyVerified,
        _tenant(TENANT_USER_VERIFIED),
        fields={
            "status_code": 409,
            "vendor_code": "already_verified",
            "message": "User is already verified.",
        },
    ),
    Scenario(
        "tenant_api",
        "tenant_mismatch",
        TENANT_USER_INVITED,
        TenantMismatch,
        _tenant(TENANT_USER_INVITED),
        config={"tenant_id": OTHER_TENANT_ID},
        fields={
            "status_code": 403,
            "vendor_code": "tenant_mismatch",
            "details": {"notices": ["policy tenant-isolation forbids cross-tenant access"]},
        },
    ),
    Scenario(
        "tenant_api",
        "not_found",
        TENANT_USER_UNKNOWN,
        UserNotFound,
        _tenant(TENANT_USER_UNKNOWN),
        fields={
            "status_code": 404,
            "vendor_code": "not_found",
            "message": "User not found.",
            "details": {"notices": ["policy read-users matched no user"]},
        },
    ),
    Scenario(
        "tenant_api",
        "invite_cooldown",
        TENANT_USER_COOLDOWN,
        InvalidRequest,
        _tenant(TENANT_USER_COOLDOWN),
        fields={
            "status_code": 422,
            "vendor_code": "invite_cooldown",
            "message": "An invitation was sent recently.",
            "details": {"details": {"retry_in": 300}},
        },
    ),
    Scenario(
        "tenant_api",
        "bad_token",
        TENANT_USER_INVITED,
        AuthenticationFailed,
        _tenant(TENANT_USER_INVITED),
        config={"token": BAD_TOKEN},
        fields={"status_code": 401, "vendor_code": "unauthorized"},
    ),
)

SCENARIOS: Mapping[str, tuple[Scenario, ...]] = {
    "ecosuite": ECOSUITE_SCENARIOS,
    "softwareone": SOFTWAREONE_SCENARIOS,
    "tenant_api": TENANT_API_SCENARIOS,
}


# --- building and running providers ---------------------------------------------------------------


def scenario_config(scenario: Scenario, base_url: str, **extra: Any) -> dict[str, Any]:
    """The scenario's configuration against `base_url`."""
    return vendor_config(scenario.vendor, base_url, **{**scenario.config, **extra})


def build_quietly(config: Mapping[str, Any], **kwargs: Any) -> invites.BaseProvider:
    """`invites.from_config` without SoftwareOne's legacy `DeprecationWarning` (tested apart)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return invites.from_config(config, **kwargs)


def resend(provider: invites.BaseProvider, invitee: Invitee | str, mode: Mode) -> ResendResult:
    """One resend through the sync or the async driver; the provider is closed afterwards."""
    if mode == "sync":
        with provider:
            return provider.resend_invite(invitee)

    async def go() -> ResendResult:
        async with provider:
            return await provider.aresend_invite(invitee)

    return asyncio.run(go())


def outcome_of(call: Callable[[], ResendResult]) -> ResendResult | InviteError:
    """What `call` returned, or the `InviteError` it raised."""
    try:
        return call()
    except InviteError as error:
        return error


def check_outcome(scenario: Scenario, outcome: ResendResult | InviteError) -> None:
    """Assert that `outcome` is what `scenario` documents."""
    expected = scenario.outcome or ResendResult
    assert type(outcome) is expected, (
        f"{scenario.id}: expected {expected.__name__}, got {outcome!r}"
    )
    assert outcome.provider == scenario.vendor
    assert outcome.user_id == scenario.user_id
    for name, value in scenario.fields.items():
        actual = getattr(outcome, name)
        assert actual == value, f"{scenario.id}: {name} is {actual!r}, expected {value!r}"
    text = str(outcome)
    for fragment in scenario.message_contains:
        assert fragment in text, f"{scenario.id}: {fragment!r} not in {text!r}"


# --- vcrpy ----------------------------------------------------------------------------------------


def _redact_credential(key: str, value: str, request: VcrRequest) -> str:
    """Keep the scheme word (``Bearer``) of a credential header; replace the secret."""
    scheme, space, _ = value.partition(" ")
    return f"{scheme} {REDACTED}" if space else REDACTED


def _vendor_headers(r1: VcrRequest, r2: VcrRequest) -> None:
    """vcrpy matcher: the vendor-defined headers (credentials as redacted) are equal."""
    first = _picked(r1.headers, VENDOR_HEADERS)
    second = _picked(r2.headers, VENDOR_HEADERS)
    if first != second:
        raise AssertionError(f"{first} != {second}")


def _picked(headers: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    wanted = set(names)
    return {name.lower(): value for name, value in headers.items() if name.lower() in wanted}


def _rebase(base_url: str) -> Callable[[VcrRequest], VcrRequest]:
    """A request filter putting `base_url`'s scheme and host in place of the request's."""
    target = urlsplit(base_url)

    def rebase(request: VcrRequest) -> VcrRequest:
        parts = urlsplit(request.uri)
        request.uri = urlunsplit((target.scheme, target.netloc, parts.path, parts.query, ""))
        return request

    return rebase


def _keep_wire_headers(request: VcrRequest) -> VcrRequest:
    """Drop request headers that say nothing about the vendor (host, user agent, pooling)."""
    request.headers = _picked(request.headers, _KEPT_REQUEST_HEADERS)
    return request


def _scrub_personal_request(request: VcrRequest) -> VcrRequest:
    body = request.body
    if isinstance(body, bytes | str) and body:
        scrubbed = _rewrite_json(body, _scrub_personal)
        if scrubbed is not None:
            request.body = scrubbed
            if "content-length" in request.headers:
                request.headers["content-length"] = str(len(scrubbed))
    return request


def _trim_response_headers(response: dict[str, Any]) -> dict[str, Any]:
    headers = response.get("headers") or {}
    response["headers"] = {
        name: value for name, value in headers.items() if name.lower() in _KEPT_RESPONSE_HEADERS
    }
    return response


def _response_body_filter(
    rewrite: Callable[[Any], bool],
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A response filter applying `rewrite` (which edits JSON in place) to a JSON answer."""

    def apply(response: dict[str, Any]) -> dict[str, Any]:
        body = response.get("body") or {}
        content = body.get("string")
        if not content:
            return response
        rewritten = _rewrite_json(content, rewrite)
        if rewritten is None:
            return response
        body["string"] = rewritten
        for name in response.get("headers") or {}:
            if name.lower() == "content-length":
                response["headers"][name] = [str(len(rewritten))]
        return response

    return apply


def _rewrite_json(content: bytes | str, rewrite: Callable[[Any], bool]) -> bytes | None:
    """`content` re-serialised after `rewrite` changed its JSON, or None when nothing changed."""
    raw = content.encode() if isinstance(content, str) else content
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    if not rewrite(data):
        return None
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def _walk(data: Any) -> Iterable[dict[str, Any]]:
    """Every JSON object in `data`, depth first."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _scrub_invitation_urls(data: Any) -> bool:
    """Replace the ``url`` of every ``invitation`` object; True if something changed."""
    changed = False
    for item in _walk(data):
        invitation = item.get("invitation")
        if not isinstance(invitation, dict):
            continue
        url = invitation.get("url")
        is_link = isinstance(url, str) and url.lower().startswith(("http://", "https://"))
        if is_link and url != INVITATION_URL_PLACEHOLDER:
            invitation["url"] = INVITATION_URL_PLACEHOLDER
            changed = True
    return changed


def _scrub_personal(data: Any) -> bool:
    """Replace emails, first and last names and a member's ``user.name``; True if changed."""
    changed = False
    for item in _walk(data):
        targets = [(item, key) for key in _PERSONAL_KEYS if key in item]
        user = item.get("user")
        if isinstance(user, dict) and "name" in user:
            targets.append((user, "name"))
        for owner, key in targets:
            if isinstance(owner[key], str) and owner[key] != PERSONAL_PLACEHOLDER:
                owner[key] = PERSONAL_PLACEHOLDER
                changed = True
    return changed


def cassette_vcr(*, base_url: str = CASSETTE_BASE_URL, personal: bool = False) -> vcr.VCR:
    """The vcrpy configuration of every cassette.

    `base_url` is what the stored URLs start with; `personal` also replaces emails and names
    (live recordings). Every filter is idempotent: vcrpy runs them again on loaded cassettes.
    """
    request_filters: list[Callable[[VcrRequest], VcrRequest]] = [
        _keep_wire_headers,
        _rebase(base_url),
    ]
    response_filters = [_trim_response_headers, _response_body_filter(_scrub_invitation_urls)]
    if personal:
        request_filters.append(_scrub_personal_request)
        response_filters.append(_response_body_filter(_scrub_personal))
    recorder = _VCR(
        serializer="yaml",
        match_on=MATCH_ON,
        filter_headers=[
            ("authorization", _redact_credential),
            ("x-api-key", _redact_credential),
        ],
        before_record_request=request_filters,
        before_record_response=response_filters,
        decode_compressed_response=True,
        record_on_exception=False,
    )
    recorder.register_matcher("vendor_headers", _vendor_headers)
    return recorder


@contextlib.contextmanager
def _through_httpx_transports() -> Iterator[None]:
    """vcrpy records and replays httpx's own transports: meanwhile, the provider's own transports
    hand every request to one of those."""
    sync_transport, async_transport = httpx.HTTPTransport(), httpx.AsyncHTTPTransport()

    def handle(self: SyncTransport, request: httpx.Request) -> httpx.Response:
        return sync_transport.handle_request(request)

    async def ahandle(self: AsyncTransport, request: httpx.Request) -> httpx.Response:
        return await async_transport.handle_async_request(request)

    with (
        mock.patch.object(SyncTransport, "handle_request", handle),
        mock.patch.object(AsyncTransport, "handle_async_request", ahandle),
    ):
        yield
    sync_transport.close()


class _VCR(vcr.VCR):  # type: ignore[misc]  # vcrpy has no type hints
    """vcrpy's VCR, with the provider's own transports going through its cassettes."""

    @contextlib.contextmanager
    def use_cassette(self, path: Any = None, **kwargs: Any) -> Iterator[Any]:
        with _through_httpx_transports(), super().use_cassette(path, **kwargs) as cassette:
            yield cassette


def recorded_requests(path: Path) -> list[dict[str, Any]]:
    """The requests stored in a cassette file."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [interaction["request"] for interaction in data["interactions"]]


def recorded_responses(path: Path) -> list[dict[str, Any]]:
    """The responses stored in a cassette file."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return [interaction["response"] for interaction in data["interactions"]]


def replay(scenario: Scenario, mode: Mode) -> ResendResult | InviteError:
    """Run `scenario` against its cassette only; assert every recorded request was sent, once.

    vcrpy refuses (``CannotOverwriteExistingCassetteException``) any request the cassette does not
    hold, so an adapter that changes its wire format fails here.
    """
    assert scenario.path.exists(), f"{scenario.path} is missing: run scripts/record_cassettes.py"
    with cassette_vcr().use_cassette(str(scenario.path), record_mode="none") as cassette:
        config = scenario_config(scenario, CASSETTE_BASE_URL, allow_insecure_http=True)
        provider = build_quietly(config)
        outcome = outcome_of(lambda: resend(provider, scenario.invitee, mode))
        assert cassette.play_count == len(cassette) == len(scenario.calls), (
            f"{scenario.id}: played {cassette.play_count} of {len(cassette)} recorded requests"
        )
        assert cassette.all_played
    return outcome


def assert_current(scenarios: Iterable[Scenario], running: Any, scratch: Path) -> None:
    """Assert that re-recording `scenarios` would not change their cassettes' requests.

    Requests are deterministic; responses carry fresh trace ids and timestamps, so only their
    status is compared.
    """
    for scenario in scenarios:
        fresh = scratch / f"{scenario.vendor}-{scenario.name}.yaml"
        record(scenario, running, fresh)
        assert recorded_requests(fresh) == recorded_requests(scenario.path), (
            f"{scenario.id}: the adapter now sends other requests; re-record the cassettes"
        )
        now, committed = (
            [response["status"]["code"] for response in recorded_responses(cassette)]
            for cassette in (fresh, scenario.path)
        )
        assert now == committed, f"{scenario.id}: the sandbox now answers {now}, not {committed}"


def leaks(root: Path = CASSETTES) -> list[str]:
    """``"file: string"`` for every forbidden string found in a cassette under `root`."""
    found: list[str] = []
    for path in sorted(root.rglob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        found.extend(
            f"{path.relative_to(root)}: {forbidden!r}"
            for forbidden in FORBIDDEN_IN_CASSETTES
            if forbidden in text
        )
    return found


# --- recording ------------------------------------------------------------------------------------


def record(
    scenario: Scenario, running: Any, path: Path | None = None
) -> ResendResult | InviteError:
    """Record `scenario` from a served sandbox (`invites.sandbox.serve`) into its cassette.

    `path` replaces the scenario's own cassette file. Raises AssertionError when the sandbox or the
    adapter does not behave as the scenario says.
    """
    path = path or scenario.path
    sandbox = running.sandbox
    sandbox.reset()
    softwareone = sandbox.vendor(SoftwareOneSandbox)
    softwareone.legacy_removed = scenario.legacy_removed
    softwareone.shape = scenario.shape
    if scenario.faults:
        sandbox.inject(scenario.user_id, *scenario.faults)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    with cassette_vcr().use_cassette(str(path), record_mode="all") as cassette:
        provider = build_quietly(scenario_config(scenario, running.url))
        outcome = outcome_of(lambda: resend(provider, scenario.invitee, "sync"))
        recorded = len(cassette)
    check_outcome(scenario, outcome)
    seen = [(request.method, request.path) for request in sandbox.requests]
    assert seen == list(scenario.calls), f"{scenario.id}: the sandbox saw {seen}"
    assert recorded == len(scenario.calls), f"{scenario.id}: recorded {recorded} interactions"
    emails = sum(sandbox.emails_snapshot().values())
    assert emails == scenario.emails, f"{scenario.id}: {emails} emails sent"
    softwareone.legacy_removed = False
    softwareone.shape = PUBLISHED
    return outcome


# --- live vendors ---------------------------------------------------------------------------------

#: Environment variables each live test needs (all set and non-empty), and optional ones.
LIVE_REQUIRED: Mapping[str, tuple[str, ...]] = {
    "ecosuite": ("INVITES_LIVE_ECOSUITE_TOKEN", "INVITES_LIVE_ECOSUITE_USER_ID"),
    "softwareone": (
        "INVITES_LIVE_SOFTWAREONE_TOKEN",
        "INVITES_LIVE_SOFTWAREONE_ACCOUNT_ID",
        "INVITES_LIVE_SOFTWAREONE_USER_ID",
    ),
    "tenant_api": (
        "INVITES_LIVE_TENANT_API_BASE_URL",
        "INVITES_LIVE_TENANT_API_TOKEN",
        "INVITES_LIVE_TENANT_API_TENANT_ID",
        "INVITES_LIVE_TENANT_API_USER_ID",
    ),
}
#: Optional live variables and the configuration key each sets.
LIVE_OPTIONAL: Mapping[str, Mapping[str, str]] = {
    "ecosuite": {
        "INVITES_LIVE_ECOSUITE_BASE_URL": "base_url",
        "INVITES_LIVE_ECOSUITE_AUTH_PREFIX": "auth_prefix",
    },
    "softwareone": {"INVITES_LIVE_SOFTWAREONE_BASE_URL": "base_url"},
    "tenant_api": {"INVITES_LIVE_TENANT_API_AUTH": "auth"},
}


def missing_live_variables(vendor: str, environ: Mapping[str, str]) -> list[str]:
    """The required live variables of `vendor` that are unset or empty."""
    return [name for name in LIVE_REQUIRED[vendor] if not environ.get(name)]


@dataclass(frozen=True)
class LiveTarget:
    """A real vendor to record from: its configuration, the user to re-invite, the cassette."""

    vendor: str
    config: dict[str, Any]
    user_id: str
    path: Path
    stored_base_url: str

    def __repr__(self) -> str:  # the configuration holds a real credential
        return f"LiveTarget({self.vendor!r}, user_id={self.user_id!r}, path={str(self.path)!r})"


def live_target(vendor: str, environ: Mapping[str, str]) -> LiveTarget | None:
    """The live target `environ` describes for `vendor`, or None when a variable is missing."""
    if missing_live_variables(vendor, environ):
        return None
    prefix = f"INVITES_LIVE_{vendor.upper()}_"
    config: dict[str, Any] = {"provider": vendor, "token": environ[prefix + "TOKEN"]}
    if vendor == "softwareone":
        config["account_id"] = environ[prefix + "ACCOUNT_ID"]
    if vendor == "tenant_api":
        config["base_url"] = environ[prefix + "BASE_URL"]
        config["tenant_id"] = environ[prefix + "TENANT_ID"]
    for variable, key in LIVE_OPTIONAL[vendor].items():
        if environ.get(variable):
            config[key] = environ[variable]
    real_base = config.get("base_url") or provider_class(vendor).default_base_url or ""
    # A self-hosted tenant API's host is the user's own business; the public vendors' are not.
    stored = LIVE_TENANT_API_BASE_URL if vendor == "tenant_api" else real_base
    return LiveTarget(
        vendor,
        config,
        environ[prefix + "USER_ID"],
        CASSETTES / vendor / "live_resend.yaml",
        stored,
    )


def record_live(target: LiveTarget) -> tuple[ResendResult | InviteError, int]:
    """Resend once to the real vendor, recording (``record_mode="all"``) into the live cassette.

    Returns the outcome and the number of interactions recorded. Sends a real invitation email.
    """
    target.path.parent.mkdir(parents=True, exist_ok=True)
    target.path.unlink(missing_ok=True)
    recorder = cassette_vcr(base_url=target.stored_base_url, personal=True)
    with recorder.use_cassette(str(target.path), record_mode="all") as cassette:
        provider = invites.from_config(target.config)
        outcome = outcome_of(lambda: resend(provider, target.user_id, "sync"))
        recorded = len(cassette)
    return outcome, recorded


# --- capturing what an adapter sends --------------------------------------------------------------


def resend_captured(
    config: Mapping[str, Any],
    invitee: Invitee | str,
    mode: Mode,
    *,
    transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
) -> tuple[ResendResult | InviteError, list[httpx.Request]]:
    """Resend through a provider given an injected client; return the outcome and every request.

    The requests are taken by an httpx ``request`` event hook, so they are exactly what left the
    adapter (method, URL, headers, body). `transport` (e.g. ``httpx.MockTransport``) replaces the
    network.
    """
    sent: list[httpx.Request] = []
    if mode == "sync":
        sync_transport = transport if isinstance(transport, httpx.BaseTransport) else None
        with httpx.Client(
            transport=sync_transport, event_hooks={"request": [sent.append]}
        ) as client:
            provider = build_quietly(config, client=client)
            return outcome_of(lambda: resend(provider, invitee, "sync")), sent

    async def capture(request: httpx.Request) -> None:
        sent.append(request)

    async def go() -> ResendResult | InviteError:
        async_transport = transport if isinstance(transport, httpx.AsyncBaseTransport) else None
        async with httpx.AsyncClient(
            transport=async_transport, event_hooks={"request": [capture]}
        ) as client:
            provider = build_quietly(config, async_client=client)
            async with provider:
                try:
                    return await provider.aresend_invite(invitee)
                except InviteError as error:
                    return error

    return asyncio.run(go()), sent


def calls_of(requests: Iterable[httpx.Request]) -> list[tuple[str, str]]:
    """``(method, path)`` of each request."""
    return [(request.method, request.url.path) for request in requests]
