"""Tokens, API keys and invitation links never show: not in reprs, strs, pickles, logs (DEBUG
included), configuration errors, CLI output or cassettes.

The main test sets distinctive fake secrets, drives every vendor through its success and error paths
(an ``httpx.MockTransport`` for answers the sandbox cannot give with these tokens, the sandbox over
loopback for its refusals and its own invitation links), runs the CLI when it is installed, and then
scans everything it captured. A failing scan names where the secret showed and which one, never the
secret itself.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import pickle
import re
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _support.vendors import vendor_config

import invites
from invites import (
    ConfigurationError,
    Invitee,
    InviteError,
    ResendResult,
    Secret,
    cli,
)
from invites.sandbox import (
    ECOSUITE_TOKEN,
    ECOSUITE_USER_1,
    SOFTWAREONE_MEMBERSHIP_INVITED,
    SOFTWAREONE_TOKEN,
    SOFTWAREONE_USER_ACTIVE,
    SOFTWAREONE_USER_INVITED,
    TENANT_API_KEY,
    TENANT_BEARER_TOKEN,
    TENANT_USER_INVITED,
    TENANT_USER_VERIFIED,
    RunningSandbox,
)

ECO_SECRET = "FAKE-ECO-SECRET-7f3a9"
S1_SECRET = "idt:TKN-FAKE-7777:FAKE-S1-SECRET-c41d2"
TENANT_SECRET = "FAKE-TENANT-SECRET-9e07b"
BEARER_SECRET = "FAKE-TENANT-BEARER-SECRET-31aa"
STALE_SECRET = "FAKE-STALE-PROVIDED-SECRET-d2f1"
FRESH_SECRET = "FAKE-FRESH-PROVIDED-SECRET-66c0"
ENV_SECRET = "FAKE-ENV-SECRET-0b9e4"
INVITE_LINK = "https://portal.vendor.example/invitations/FAKE-INVITE-LINK-SECRET-5a1f"

#: What must never show, by a name that may (the name, not the value, goes into failure output).
NEEDLES: dict[str, str] = {
    "ecosuite token": ECO_SECRET,
    "softwareone token": "FAKE-S1-SECRET-c41d2",
    "tenant api key": TENANT_SECRET,
    "tenant bearer token": BEARER_SECRET,
    "stale provided token": STALE_SECRET,
    "fresh provided token": FRESH_SECRET,
    "token from the environment": ENV_SECRET,
    "invitation link": "FAKE-INVITE-LINK-SECRET-5a1f",
    "sandbox ecosuite token": ECOSUITE_TOKEN,
    "sandbox softwareone token": SOFTWAREONE_TOKEN.rsplit(":", 1)[-1],
    "sandbox tenant api key": TENANT_API_KEY,
    "sandbox tenant bearer token": TENANT_BEARER_TOKEN,
    "sandbox invitation link": "portal.sandbox.invalid/invitations/",
}
BASE_URL = "https://vendor.example"
TENANT_USER = "a3e8b3cd-92f7-4c96-8976-5afdb2e921bc"


class Captured:
    """Every text a caller or an operator reading logs could see, labelled by where it came from."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []

    def add(self, label: str, value: object) -> None:
        if isinstance(value, bytes):
            self.texts.append((label, value.decode("latin-1")))
        elif isinstance(value, str):
            self.texts.append((label, value))
        else:
            self.texts.append((label + " repr", repr(value)))
            self.texts.append((label + " str", str(value)))

    def outcome(self, label: str, value: object) -> None:
        """A result or an error, with everything a caller might print or store of it."""
        self.add(label, value)
        if isinstance(value, InviteError):
            self.add(label + " message", value.message)
            self.add(label + " details", value.details)
            self.add(label + " traceback", "".join(traceback.format_exception(value)))
            self.add(label + " pickle", pickle.dumps(value))
            revived = pickle.loads(pickle.dumps(value))  # noqa: S301  (our own bytes)
            self.add(label + " unpickled", revived)
            self.add(label + " copy", copy.deepcopy(value))

    def leaks(self) -> list[tuple[str, str]]:
        return [
            (label, name)
            for label, text in self.texts
            for name, needle in NEEDLES.items()
            if needle in text
        ]


# -- fake vendors ----------------------------------------------------------------------------------

_S1_MEMBER = {
    "id": "AUSR-0000-0001",
    "status": "Active",
    "invitation": {"url": INVITE_LINK, "status": "Active"},
    "audit": {"created": {"at": "2025-01-01T00:00:00Z", "by": {"id": "USR-1"}}},
}


def _body(status: int, vendor: str) -> httpx.Response:
    """What a vendor answers with ``status``; error bodies mention the invitation link."""
    if status == 200:
        if vendor == "softwareone":
            return httpx.Response(200, json={**_S1_MEMBER, "status": "Invited"})
        if vendor == "tenant_api":
            return httpx.Response(200, json={"message": f"Invite resent: {INVITE_LINK}"})
        return httpx.Response(200, json={})
    if status == 500:
        page = f"<html><a href='{INVITE_LINK}'>retry</a></html>"
        return httpx.Response(500, headers={"content-type": "text/html"}, text=page)
    text = f"refused; the link {INVITE_LINK} stays valid"
    bodies: dict[str, dict[str, Any]] = {
        "ecosuite": {"message": text},
        "softwareone": {
            "title": "Conflict",
            "detail": text,
            "traceId": INVITE_LINK,
            "errors": {"invitation.url": [INVITE_LINK]},
        },
        "tenant_api": {"code": "not_found", "message": text, "notices": [INVITE_LINK]},
    }
    body = bodies[vendor]
    headers = {"retry-after": "2"} if status in (429, 503) else {}
    return httpx.Response(status, json=body, headers=headers)


ANSWERS: list[int | type[httpx.TransportError]] = [
    200,
    400,
    401,
    403,
    404,
    409,
    429,
    500,
    502,
    503,
    httpx.ConnectError,
    httpx.ReadTimeout,
]


def _handler(
    vendor: str, answer: int | type[httpx.TransportError]
) -> Callable[[httpx.Request], Any]:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":  # Ecosuite's profile, SoftwareOne's state read
            if vendor == "ecosuite":
                return httpx.Response(
                    200, json={"email": "ada@example.com", "firstName": "A", "lastName": "L"}
                )
            return httpx.Response(200, json=_S1_MEMBER)
        if isinstance(answer, int):
            return _body(answer, vendor)
        raise answer("the network failed", request=request)

    return handle


CONFIGS: dict[str, tuple[str, dict[str, Any], Invitee | str]] = {
    "ecosuite": ("ecosuite", {"token": ECO_SECRET}, ECOSUITE_USER_1),
    "ecosuite-prefix": ("ecosuite", {"token": ECO_SECRET, "auth_prefix": "Bearer"}, "eco-2"),
    "softwareone": ("softwareone", {"token": S1_SECRET}, SOFTWAREONE_USER_INVITED),
    "softwareone-legacy": (
        "softwareone",
        {"token": S1_SECRET, "account_id": None},
        SOFTWAREONE_MEMBERSHIP_INVITED,
    ),
    "tenant_api": ("tenant_api", {"token": TENANT_SECRET}, TENANT_USER),
    "tenant_api-bearer": ("tenant_api", {"token": BEARER_SECRET, "auth": "bearer"}, TENANT_USER),
}


def _build(
    key: str, base_url: str = BASE_URL, hook: Callable[[Any], None] | None = None, **clients: Any
) -> invites.BaseProvider:
    vendor, overrides, _ = CONFIGS[key]
    config = vendor_config(vendor, base_url, **overrides)
    if hook is not None:
        config["on_attempt"] = hook
    config["max_attempts"] = 2
    config["max_retry_after"] = 0  # a Retry-After ends the retries instead of waiting
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        built = invites.from_config(config)
        # Rebuilt with fake sleeps: a retried connection failure must not wait for real.
        return type(built)(built.settings, sleep=_no_sleep, async_sleep=_no_async_sleep, **clients)


def _no_sleep(seconds: float) -> None:
    pass


async def _no_async_sleep(seconds: float) -> None:
    pass


def _run(provider: invites.BaseProvider, target: Invitee | str, mode: str) -> object:
    try:
        if mode == "sync":
            return provider.resend_invite(target)
        return asyncio.run(provider.aresend_invite(target))
    except InviteError as exc:
        return exc


def _refreshing_tokens() -> Callable[[], str]:
    tokens = iter([STALE_SECRET, FRESH_SECRET])
    return lambda: next(tokens)


# -- the one scan ----------------------------------------------------------------------------------


def test_no_secret_shows_anywhere(
    server: RunningSandbox,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, httpx and httpcore included
    seen = Captured()
    events: list[Any] = []
    outcomes = _scan_fake_vendors(seen, events)
    _scan_token_sources(seen)
    outcomes += _scan_sandbox(server, seen)
    _scan_config_errors(seen)
    _run_cli(server, tmp_path, monkeypatch, seen)

    for event in events:
        seen.add("attempt event", event)
    for record in caplog.records:
        seen.add(f"log record {record.name}", logging.Formatter().format(record))
        seen.add(f"log record {record.name} fields", record.__dict__)
    captured = capsys.readouterr()
    seen.add("stdout", captured.out)
    seen.add("stderr", captured.err)
    for path in _cassettes():
        seen.add(f"cassette {path.name}", path.read_bytes())

    assert outcomes >= len(CONFIGS) * (len(ANSWERS) + 1) * 2
    assert any(r.levelno == logging.DEBUG and r.name == "invites" for r in caplog.records)
    assert len(events) > outcomes
    assert ("cli ran", "yes") in seen.texts
    assert seen.leaks() == []


def _scan_fake_vendors(seen: Captured, events: list[Any]) -> int:
    """Every vendor, every answer, sync and async, through a fake vendor taking these tokens."""
    outcomes = 0
    for key, (vendor, _, target) in CONFIGS.items():
        for answer in ANSWERS:
            for mode in ("sync", "async"):
                transport = httpx.MockTransport(_handler(vendor, answer))
                clients = (
                    {"client": httpx.Client(transport=transport)}
                    if mode == "sync"
                    else {"async_client": httpx.AsyncClient(transport=transport)}
                )
                provider = _build(key, hook=events.append, **clients)
                seen.add(f"{key} provider", provider)
                seen.add(f"{key} settings", provider.settings)
                seen.outcome(f"{key} {answer} {mode}", _run(provider, target, mode))
                outcomes += 1
    return outcomes


def _scan_token_sources(seen: Captured) -> None:
    """A token provider (the first token refused, the refreshed one accepted), a token from the
    environment, and a bulk run whose outcomes carry results and errors."""

    def refreshing(request: httpx.Request) -> httpx.Response:
        if STALE_SECRET in request.headers.get("x-api-key", ""):
            return httpx.Response(401, json={"code": "unauthorized", "message": "expired"})
        return httpx.Response(200, json={"message": "Invite resent."})

    config = vendor_config("tenant_api", BASE_URL, token=None)
    config["token_provider"] = _refreshing_tokens()
    provider = invites.from_config(
        config, client=httpx.Client(transport=httpx.MockTransport(refreshing))
    )
    result = provider.resend_invite(TENANT_USER)
    assert isinstance(result, ResendResult)
    seen.outcome("refreshed", result)
    seen.add("refreshed provider", provider)
    seen.add("refreshed settings", provider.settings)

    config = vendor_config("ecosuite", BASE_URL, token=None, token_env="ECO_TOKEN_FOR_TEST")
    provider = invites.from_config(
        config,
        environ={"ECO_TOKEN_FOR_TEST": ENV_SECRET},
        client=httpx.Client(transport=httpx.MockTransport(_handler("ecosuite", 401))),
    )
    seen.outcome("token_env 401", _run(provider, "eco-9", "sync"))

    provider = _build(
        "softwareone",
        client=httpx.Client(transport=httpx.MockTransport(_handler("softwareone", 400))),
    )
    for outcome in invites.resend_many(provider, ["USR-1", "USR-2"], concurrency=2):
        seen.outcome("bulk outcome", outcome)
        seen.outcome("bulk error", outcome.error)


def _scan_sandbox(server: RunningSandbox, seen: Captured) -> int:
    """The sandbox over loopback: these tokens are refused (401), its own resend."""
    outcomes = 0
    for key, (_, _, target) in CONFIGS.items():
        for mode in ("sync", "async"):
            with _build(key, server.url) as provider:
                refused = _run(provider, target, mode)
            assert isinstance(refused, invites.AuthenticationFailed), (key, type(refused))
            seen.outcome(f"sandbox {key} {mode}", refused)
            outcomes += 1
    # Its answers carry live invitation links.
    for vendor, target in (
        ("ecosuite", ECOSUITE_USER_1),
        ("softwareone", SOFTWAREONE_USER_INVITED),
        ("softwareone", SOFTWAREONE_USER_ACTIVE),
        ("tenant_api", TENANT_USER_INVITED),
        ("tenant_api", TENANT_USER_VERIFIED),
    ):
        provider = invites.from_config(vendor_config(vendor, server.url))
        seen.outcome(f"sandbox {vendor} {target}", _run(provider, target, "sync"))
        provider.close()
    return outcomes


def _scan_config_errors(seen: Captured) -> None:
    """Configuration errors with secrets in the wrong places."""
    for label, bad in _bad_configs():
        with pytest.raises(ConfigurationError) as caught:
            invites.from_config(bad, environ={"SOME_VAR": "a\x01b" + ENV_SECRET})
        seen.add(f"config error {label}", caught.value)
        seen.add(f"config error {label} problems", caught.value.problems)
        seen.add(f"config error {label} pickle", pickle.dumps(caught.value))
        seen.add(
            f"config error {label} traceback", "".join(traceback.format_exception(caught.value))
        )


def _bad_configs() -> Iterator[tuple[str, dict[str, Any]]]:
    tenant = {"provider": "tenant_api", "tenant_id": TENANT_USER, "base_url": BASE_URL}
    yield "timeout", {"provider": "ecosuite", "token": ECO_SECRET, "timeout": ECO_SECRET}
    yield "unknown key", {"provider": "ecosuite", "token": ECO_SECRET, "tokn": ECO_SECRET}
    yield "misspelt token", {"provider": "ecosuite", "tokne": ECO_SECRET}
    yield "nested unknown", {**tenant, "token": TENANT_SECRET, "timeouts": {"reed": TENANT_SECRET}}
    yield "nested type", {**tenant, "token": TENANT_SECRET, "timeouts": {"read": TENANT_SECRET}}
    yield "token list", {"provider": "ecosuite", "token": [ECO_SECRET]}
    yield "token mapping", {"provider": "ecosuite", "token": {"value": ECO_SECRET}}
    yield "token newline", {"provider": "ecosuite", "token": ECO_SECRET + "\n"}
    yield "two sources", {"provider": "ecosuite", "token": ECO_SECRET, "token_env": "SOME_VAR"}
    yield "token in token_env", {"provider": "ecosuite", "token_env": ECO_SECRET}
    yield "token in token_provider", {"provider": "softwareone", "token_provider": S1_SECRET}
    yield (
        "password in token_provider",
        {"provider": "ecosuite", "token_provider": "u:" + ECO_SECRET},
    )
    yield "env value unusable", {"provider": "ecosuite", "token_env": "SOME_VAR"}
    yield "tenant id", {**tenant, "token": TENANT_SECRET, "tenant_id": TENANT_SECRET}
    yield "auth", {**tenant, "token": TENANT_SECRET, "auth": TENANT_SECRET}
    yield (
        "auth prefix",
        {"provider": "ecosuite", "token": ECO_SECRET, "auth_prefix": ECO_SECRET + "\r\n"},
    )
    yield (
        "account id",
        {"provider": "softwareone", "token": S1_SECRET, "account_id": S1_SECRET + "\x00"},
    )
    yield (
        "url password",
        {
            "provider": "ecosuite",
            "token": "x",
            "base_url": f"https://u:{ECO_SECRET}@vendor.example",
        },
    )
    yield (
        "url query",
        {
            "provider": "ecosuite",
            "token": "x",
            "base_url": f"https://vendor.example/?key={ECO_SECRET}",
        },
    )
    yield (
        "url fragment",
        {"provider": "ecosuite", "token": "x", "base_url": f"https://vendor.example/#{ECO_SECRET}"},
    )
    yield (
        "url http",
        {"provider": "ecosuite", "token": ECO_SECRET, "base_url": "http://vendor.example"},
    )


def _run_cli(
    server: RunningSandbox,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    seen: Captured,
) -> None:
    monkeypatch.setenv("INVITES_TEST_ENV_TOKEN", ENV_SECRET)
    profiles = tmp_path / "invites.toml"
    profiles.write_text(
        f"""
default = "eco"

[profiles.eco]
provider = "ecosuite"
base_url = "{server.url}"
token = "{ECO_SECRET}"

[profiles.s1]
provider = "softwareone"
base_url = "{server.url}"
token = "{S1_SECRET}"
account_id = "ACC-0000-0001"

[profiles.tenant]
provider = "tenant_api"
base_url = "{server.url}"
token_env = "INVITES_TEST_ENV_TOKEN"
tenant_id = "{TENANT_USER}"
""",
        encoding="utf-8",
    )
    runs = [
        ["check-config", "--config", str(profiles)],
        ["resend", "-v", "--config", str(profiles), "--profile", "eco", ECOSUITE_USER_1],
        ["resend", "--config", str(profiles), "--profile", "s1", SOFTWAREONE_USER_INVITED],
        ["-v", "resend", "--config", str(profiles), "--profile", "tenant", TENANT_USER_INVITED],
    ]
    # The sandbox refuses these tokens: each resend fails (1); the configuration is valid (0).
    for arguments in runs:
        expected = 0 if arguments[0] == "check-config" else 1
        assert cli.main(arguments) == expected, arguments
    broken = tmp_path / "broken.toml"
    broken.write_text(
        f'[profiles.x]\nprovider = "ecosuite"\ntoken = "{ECO_SECRET}"\ntimeout = "{ECO_SECRET}"\n',
        encoding="utf-8",
    )
    assert cli.main(["check-config", "--config", str(broken)]) == 2
    seen.add("cli ran", "yes")


def _cassettes() -> list[Path]:
    root = Path(__file__).resolve().parents[2] / "cassettes"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []


# -- Secret itself ---------------------------------------------------------------------------------


def test_a_secret_never_shows_itself() -> None:
    secret = Secret(ECO_SECRET)
    assert secret.reveal() == ECO_SECRET
    for text in (
        repr(secret),
        str(secret),
        f"{secret}",
        f"{secret!r}",
        f"{secret:>40}",
        "{}".format(secret),  # noqa: UP032
    ):
        assert ECO_SECRET not in text
    assert ECO_SECRET not in repr([secret, {"token": secret}])


def test_a_secret_cannot_be_pickled_or_copied() -> None:
    secret = Secret(ECO_SECRET)
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    with pytest.raises(TypeError):
        copy.copy(secret)


def test_a_secret_is_immutable_and_compares_by_value() -> None:
    secret = Secret(ECO_SECRET)
    with pytest.raises(AttributeError):
        secret._value = "other"
    assert secret == Secret(ECO_SECRET)
    assert secret != Secret(TENANT_SECRET)
    assert secret != ECO_SECRET
    assert len({secret, Secret(ECO_SECRET)}) == 1


@pytest.mark.parametrize(
    "value", ["", "a\rb", "a\nb", "a\x00b", "a\tb", "a\x0bb", "a\x7fb", "t\u00f6ken", "a\u2028b"]
)
def test_a_secret_that_cannot_be_a_header_value_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="secret") as caught:
        Secret(value)
    assert value not in str(caught.value) or not value


def test_settings_holding_a_secret_cannot_be_pickled_but_errors_can() -> None:
    provider = _build("ecosuite")
    with pytest.raises(TypeError):
        pickle.dumps(provider.settings)
    error = invites.AuthenticationFailed(
        "refused", provider="ecosuite", user_id="u", status_code=401
    )
    revived = pickle.loads(pickle.dumps(error))  # noqa: S301  (our own bytes)
    assert (type(revived), str(revived)) == (type(error), str(error))


@pytest.mark.parametrize("key", ["ecosuite", "tenant_api"])
def test_a_vendor_echoing_the_token_does_not_leak_it(key: str) -> None:
    _, overrides, target = CONFIGS[key]
    token = overrides["token"]

    def echo(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, text=f"invalid credential {token}")

    provider = _build(key, client=httpx.Client(transport=httpx.MockTransport(echo)))
    outcome = _run(provider, target, "sync")
    assert isinstance(outcome, InviteError)
    assert token not in str(outcome)
    assert token not in repr(outcome.details)


_LINK = re.compile(r"https?://\S+")


def test_errors_keep_no_invitation_link_from_a_state_read() -> None:
    provider = _build(
        "softwareone",
        client=httpx.Client(transport=httpx.MockTransport(_handler("softwareone", 409))),
    )
    outcome = _run(provider, SOFTWAREONE_USER_INVITED, "sync")
    assert isinstance(outcome, invites.AlreadyVerified)
    assert outcome.details["state"] == "Active"
    assert not _LINK.search(str(outcome) + repr(outcome.details))
