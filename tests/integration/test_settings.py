"""Settings validated where they are built, and what configuration reports for hostile input.

Settings objects built directly check themselves as configurations do; a token may be a
:class:`invites.Secret`; profiles read a token variable only for the profile used; unknown
``INVITES_`` variables, a misspelt ``provider`` key and unknown providers are reported without
hiding the other problems.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from _support.vendors import vendor_config

import invites
from invites import ConfigurationError, Secret, from_config, from_env, load_profiles, registry
from invites._settings.fields import ProviderSettings, Timeouts
from invites.cli import main
from invites.providers.ecosuite import EcosuiteProvider, EcosuiteSettings
from invites.providers.softwareone import SoftwareOneSettings
from invites.providers.tenant_api import TenantApiProvider, TenantApiSettings
from invites.sandbox import (
    SOFTWAREONE_ACCOUNT_ID,
    SOFTWAREONE_TOKEN,
    SOFTWAREONE_USER_INVITED,
    TENANT_ID,
    RunningSandbox,
    Sandbox,
)

HTTPS_RULE = (
    "base_url: must use https:// (plain http is allowed only for a loopback host, or with "
    "allow_insecure_http = true)"
)
KNOWN = "ecosuite, softwareone, tenant_api"
FAKE_TOKEN = "test-token-not-real"


def _problems(build: Any, *args: Any, **kwargs: Any) -> list[str]:
    with pytest.raises(ConfigurationError) as caught:
        build(*args, **kwargs)
    return caught.value.problems


def _recorder(seen: list[httpx.Request]) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"message": "Invite resent."})

    return httpx.Client(transport=httpx.MockTransport(handler))


@pytest.fixture
def no_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_registered", {})
    monkeypatch.setattr(registry, "_entry_points", {})


# -- settings built directly ---------------------------------------------------------------------


def test_settings_built_directly_name_every_bad_key() -> None:
    with pytest.raises(ConfigurationError) as caught:
        EcosuiteSettings(base_url="http://evil.example", timeout=-5, max_attempts=0)
    assert caught.value.problems == [
        HTTPS_RULE,
        "timeout: must be greater than 0",
        "max_attempts: must be at least 1",
        "token: is required (or token_env, token_provider)",
    ]
    assert caught.value.provider == "ecosuite"
    assert "evil" not in str(caught.value)


def test_a_required_key_is_named_when_building_directly() -> None:
    assert _problems(TenantApiSettings, token=FAKE_TOKEN) == [
        "base_url: is required",
        "tenant_id: is required",
    ]


def _raw(**values: Any) -> dict[str, Any]:
    """Keyword arguments as a configuration holds them: of any type, checked at run time only."""
    return values


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda: SoftwareOneSettings(token=Secret(FAKE_TOKEN), account_id="\x00"), "account_id: "),
        (
            lambda: EcosuiteSettings(token=Secret(FAKE_TOKEN), auth_prefix="B\u00e9arer"),
            "auth_prefix: ",
        ),
        (
            lambda: EcosuiteSettings(token=Secret(FAKE_TOKEN), **_raw(retry_unknown="yes")),
            "retry_unknown: ",
        ),
        (
            lambda: EcosuiteSettings(token=Secret(FAKE_TOKEN), rate_limit=float("nan")),
            "rate_limit: ",
        ),
        (
            lambda: EcosuiteSettings(token=Secret(FAKE_TOKEN), **_raw(on_attempt="os:sep")),
            "on_attempt: ",
        ),
        (lambda: EcosuiteSettings(**_raw(token="", token_env="ECO_TOKEN")), "token: "),
        (
            lambda: EcosuiteSettings(token=Secret(FAKE_TOKEN), **_raw(timeouts={"read": 1})),
            "timeouts: ",
        ),
        (lambda: Timeouts(read=-1), "read: must be greater than 0"),
    ],
)
def test_each_check_runs_when_building_directly(build: Any, expected: str) -> None:
    (problem,) = _problems(build)
    assert problem.startswith(expected)


def test_settings_built_directly_are_normalized_once() -> None:
    settings = TenantApiSettings(
        base_url="https://identity.example.test/",
        tenant_id=TENANT_ID.upper(),
        token=FAKE_TOKEN,  # type: ignore[arg-type]  # a string is accepted and kept as a Secret
        timeout=3,
    )
    assert settings.tenant_id == TENANT_ID
    assert settings.base_url == "https://identity.example.test"
    assert settings.timeout == 3.0
    assert isinstance(settings.timeout, float)
    assert isinstance(settings.token, Secret)
    assert settings.provider == "tenant_api"


def test_changing_settings_checks_the_change() -> None:
    settings = EcosuiteSettings(token=Secret(FAKE_TOKEN))
    assert attrs.evolve(settings, timeout=2).timeout == 2.0
    with pytest.raises(ConfigurationError, match="deadline: must be greater than 0"):
        attrs.evolve(settings, deadline=0)


def test_a_provider_built_from_valid_settings_sends() -> None:
    seen: list[httpx.Request] = []
    settings = TenantApiSettings(
        base_url="https://identity.example.test", tenant_id=TENANT_ID, token=Secret(FAKE_TOKEN)
    )
    provider = TenantApiProvider(settings, client=_recorder(seen))
    provider.resend_invite("a3e8b3cd-92f7-4c96-8976-5afdb2e921bc")
    assert seen[0].headers["X-API-Key"] == FAKE_TOKEN


def test_a_plug_ins_keys_are_checked_by_their_types() -> None:
    @attrs.frozen(kw_only=True)
    class AcmeSettings(ProviderSettings):
        region: str = "eu"
        retries: int = 1
        mode: bool = False

    assert _problems(AcmeSettings, token=FAKE_TOKEN, region=3, retries="1", mode=None) == [
        "region: expected a string, got int",
        "retries: expected an integer, got str",
        "mode: expected true or false, got NoneType",
    ]


def test_a_plug_in_whose_annotations_cannot_be_resolved_keeps_its_declared_checks() -> None:
    def build() -> type[ProviderSettings]:
        class Local:
            pass

        @attrs.frozen(kw_only=True)
        class LocalSettings(ProviderSettings):
            thing: Local | None = None

        return LocalSettings

    cls = build()
    built: Any = cls(token=Secret(FAKE_TOKEN))
    assert built.thing is None
    assert _problems(cls, token=Secret(FAKE_TOKEN), timeout=0) == [
        "timeout: must be greater than 0"
    ]


# -- a token as a Secret -------------------------------------------------------------------------


def test_a_secret_is_accepted_as_the_token_of_a_mapping() -> None:
    seen: list[httpx.Request] = []
    token = Secret(FAKE_TOKEN)
    provider = from_config(
        {"provider": "ecosuite", "token": token, "fetch_profile": False}, client=_recorder(seen)
    )
    assert provider.settings.token is token
    provider.resend_invite(
        invites.Invitee(user_id="u-1", email="a@example.test", first_name="A", last_name="B")
    )
    assert seen[0].headers["Authorization"] == FAKE_TOKEN


def test_a_secret_is_accepted_as_the_token_of_a_profile() -> None:
    profiles = load_profiles({"profiles": {"eco": {"provider": "ecosuite", "token": Secret("x")}}})
    token = profiles.default.settings.token
    assert token is not None
    assert token.reveal() == "x"


def test_a_secret_is_accepted_by_settings_built_directly() -> None:
    token = Secret(FAKE_TOKEN)
    provider = EcosuiteProvider(EcosuiteSettings(token=token))
    assert provider.settings.token is token


# -- the provider key and unknown providers ------------------------------------------------------


def test_a_misspelt_provider_key_is_flagged_with_a_suggestion(no_plugins: None) -> None:
    assert _problems(from_config, {"provder": "ecosuite", "token": FAKE_TOKEN}) == [
        f"provider: is required (one of: {KNOWN})",
        "provder: unknown key (did you mean 'provider'?)",
    ]


def test_an_unknown_provider_hides_no_other_problem(no_plugins: None) -> None:
    config = {"provider": "acme", "token": FAKE_TOKEN, "timeout": -1, "tiemout": 5, "region": 1}
    assert _problems(from_config, config) == [
        f"provider: unknown provider 'acme' (known: {KNOWN})",
        "timeout: must be greater than 0",
        "tiemout: unknown key (did you mean 'timeout'?)",
    ]


def test_a_provider_name_that_is_no_name_is_not_echoed(no_plugins: None) -> None:
    assert _problems(from_config, {"provider": FAKE_TOKEN + "!", "token": "x"}) == [
        f"provider: unknown provider (known: {KNOWN})"
    ]


def test_an_unknown_provider_in_a_profile_hides_no_other_problem(no_plugins: None) -> None:
    document = {"profiles": {"x": {"provider": "acme", "token_env": "A", "deadline": "soon"}}}
    assert _problems(load_profiles, document) == [
        f"profiles.x.provider: unknown provider 'acme' (known: {KNOWN})",
        "profiles.x.deadline: expected a number, got str",
    ]


def test_plain_http_with_a_query_reports_both() -> None:
    config = vendor_config("ecosuite", "http://8.8.8.8/api?x=1")
    assert _problems(from_config, config) == ["base_url: must not contain a query", HTTPS_RULE]


# -- from_env ------------------------------------------------------------------------------------


def test_a_misspelt_variable_gets_a_suggestion() -> None:
    environ = {"INVITES_PROVIDER": "ecosuite", "INVITES_TOKEN": "x", "INVITES_TIMOUT": "5"}
    assert _problems(from_env, environ) == [
        "INVITES_TIMOUT: unknown key (did you mean 'INVITES_TIMEOUT'?)"
    ]


def test_a_plug_in_that_fails_to_import_is_a_configuration_error(no_plugins: None) -> None:
    invites.register_provider("acme", "invites_no_such_plugin_xyz:AcmeProvider")
    environ = {"INVITES_PROVIDER": "acme", "INVITES_TOKEN": "x", "INVITES_MAX_ATTEMPTS": "0"}
    assert _problems(from_env, environ) == [
        "INVITES_PROVIDER: cannot load provider 'acme' (ModuleNotFoundError)",
        "INVITES_MAX_ATTEMPTS: must be at least 1",
    ]


def test_a_plug_in_that_is_no_provider_is_a_configuration_error(no_plugins: None) -> None:
    invites.register_provider("acme", "os:getcwd")
    assert _problems(from_config, {"provider": "acme", "token": "x"}) == [
        "provider: cannot load provider 'acme' (not a provider)"
    ]


def test_a_missing_token_variable_is_named_and_its_value_never() -> None:
    environ = {"INVITES_PROVIDER": "ecosuite", "INVITES_TOKEN_ENV": "ECO_TOKEN"}
    assert _problems(from_env, environ) == [
        "INVITES_TOKEN_ENV: the environment variable ECO_TOKEN is not set"
    ]
    environ["ECO_TOKEN"] = FAKE_TOKEN + "\n"
    (problem,) = _problems(from_env, environ)
    assert problem.startswith("INVITES_TOKEN_ENV: the environment variable ECO_TOKEN holds ")
    assert FAKE_TOKEN not in problem


@pytest.mark.parametrize("pasted", ["ghp_" + "x7" * 18, "Ab1_" * 5, "A" * 65])
def test_a_token_pasted_into_token_env_is_not_named(pasted: str) -> None:
    (problem,) = _problems(from_config, {"provider": "ecosuite", "token_env": pasted}, environ={})
    assert problem == "token_env: the environment variable it names is not set"


# -- profiles ------------------------------------------------------------------------------------


PROFILES = """\
default = "acme"

[profiles.acme]
provider = "tenant_api"
base_url = "https://idp.acme.example"
tenant_id = "f1d47ff5-fb86-4c2c-a055-bd273415770b"
token_env = "INVITES_TEST_ACME_KEY_UNSET"

[profiles.marketplace]
provider = "softwareone"
base_url = "{url}"
account_id = "{account}"
token_env = "MPT_API_TOKEN"
"""


@pytest.mark.parametrize("default", [["a"], {"a": 1}, 3])
def test_a_default_that_is_no_name_is_a_configuration_error(default: object) -> None:
    document = {"default": default, "profiles": {"a": vendor_config("ecosuite", "https://e.test")}}
    assert _problems(load_profiles, document) == [
        f"default: expected a profile name, got {type(default).__name__}"
    ]


def test_only_the_profile_used_needs_its_token_variable(tmp_path: Path) -> None:
    path = tmp_path / "invites.toml"
    path.write_text(PROFILES.format(url="https://mpt.example.test", account="ACC-1234-5678"))
    with load_profiles(path, environ={"MPT_API_TOKEN": FAKE_TOKEN}) as profiles:
        assert "acme" in profiles  # asking builds nothing
        token = profiles["marketplace"].settings.token
        assert token is not None
        assert token.reveal() == FAKE_TOKEN
        with pytest.raises(ConfigurationError) as caught:
            profiles.default  # noqa: B018
    assert caught.value.problems == [
        "profiles.acme.token_env: the environment variable INVITES_TEST_ACME_KEY_UNSET is not set"
    ]


def test_every_profile_is_still_checked_when_loaded() -> None:
    document = {
        "profiles": {
            "a": {"provider": "ecosuite", "token_env": "UNSET_A", "timeout": 0},
            "b": {"provider": "ecosuite", "token_env": "not a name"},
        }
    }
    assert _problems(load_profiles, document, environ={}) == [
        "profiles.a.timeout: must be greater than 0",
        "profiles.b.token_env: must be an environment variable name (letters, digits and _)",
    ]


def test_profiles_close_what_they_built() -> None:
    document = {"profiles": {"eco": vendor_config("ecosuite", "https://eco.example.test")}}
    with load_profiles(document) as profiles:
        client = profiles.default._transport.client()
    assert client.is_closed


def test_profiles_close_their_async_clients() -> None:
    document = {"profiles": {"eco": vendor_config("ecosuite", "https://eco.example.test")}}

    async def run() -> httpx.AsyncClient:
        async with load_profiles(document) as profiles:
            client: httpx.AsyncClient = profiles.default._transport.async_client()
        return client

    assert asyncio.run(run()).is_closed


def test_the_cli_resends_with_one_profile_while_another_lacks_its_variable(
    tmp_path: Path, server: RunningSandbox, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("INVITES_TEST_ACME_KEY_UNSET", raising=False)
    monkeypatch.setenv("MPT_API_TOKEN", SOFTWAREONE_TOKEN)
    path = tmp_path / "invites.toml"
    path.write_text(PROFILES.format(url=server.url, account=SOFTWAREONE_ACCOUNT_ID))
    args = ["resend", "--config", str(path), "--profile", "marketplace", SOFTWAREONE_USER_INVITED]
    assert main(args) == 0
    assert sandbox.emails_sent(SOFTWAREONE_USER_INVITED) == 1
    assert main(["resend", "--config", str(path), SOFTWAREONE_USER_INVITED]) == 2
