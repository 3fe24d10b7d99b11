"""Configuration from mappings, environment variables and TOML profiles; how problems read."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from _support.vendors import vendor_config

import invites
from invites import ConfigurationError, from_config, from_env, load_profiles
from invites.sandbox import (
    ECOSUITE_USER_1,
    SOFTWAREONE_ACCOUNT_ID,
    TENANT_ID,
    TENANT_USER_INVITED,
    RunningSandbox,
    Sandbox,
)

DATA = Path(__file__).parents[1] / "data"
BASE_URL = "https://vendor.example.test"
#: A distinctive value standing in for a credential; it must never appear in an error.
FAKE_SECRET = "fake-secret-Zq8vK2pW"
PROFILE_ENV = {
    "TEST_ECOSUITE_TOKEN": "fake-ecosuite-token",
    "TEST_SOFTWAREONE_TOKEN": "fake-softwareone-token",
    "TEST_TENANT_TOKEN": "fake-tenant-token",
}


def _config(vendor: str, **overrides: Any) -> dict[str, Any]:
    return vendor_config(vendor, overrides.pop("base_url", BASE_URL), **overrides)


def _problems(config: Any, **kwargs: Any) -> list[str]:
    with pytest.raises(ConfigurationError) as caught:
        from_config(config, **kwargs)
    return caught.value.problems


def _ok_transport(seen: list[httpx.Request]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "GET":
            return httpx.Response(
                200, json={"email": "a@example.test", "firstName": "A", "lastName": "B"}
            )
        return httpx.Response(200, json={"message": "Invite resent."})

    return httpx.MockTransport(handler)


@pytest.fixture
def helpers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """A fresh importable module with a token function, an attempt hook and a non-callable."""
    name = f"invites_config_helpers_{uuid.uuid4().hex[:12]}"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            EVENTS = []
            NOT_CALLABLE = "text"


            def token():
                return "fake-token-from-provider"


            def record(event):
                EVENTS.append(event)
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    module = __import__(name)
    yield module
    sys.modules.pop(name, None)


# -- valid mappings --------------------------------------------------------------------------------


def test_ecosuite_mapping() -> None:
    provider = from_config(
        {
            "provider": "ecosuite",
            "token": "fake-token",
            "auth_prefix": "Bearer",
            "fetch_profile": False,
            "timeout": 3,
            "max_attempts": 5,
            "rate_limit": 2,
            "max_retry_after": 0,
            "deadline": 30.5,
            "retry_unknown": True,
        }
    )
    settings = provider.settings
    assert provider.name == "ecosuite"
    assert provider.base_url == "https://api.ecosuite.io"
    assert settings.auth_prefix == "Bearer"  # type: ignore[attr-defined]
    assert settings.fetch_profile is False  # type: ignore[attr-defined]
    assert (settings.timeout, settings.max_attempts, settings.rate_limit) == (3.0, 5, 2.0)
    assert settings.max_retry_after == 0.0
    assert settings.deadline == 30.5
    assert settings.retry_unknown is True
    assert settings.token is not None
    assert settings.token.reveal() == "fake-token"


def test_defaults() -> None:
    settings = from_config({"provider": "ecosuite", "token": "fake-token"}).settings
    assert settings.timeout == 10.0
    assert settings.timeouts is None
    assert settings.max_attempts == 3
    assert settings.rate_limit is None
    assert settings.max_retry_after == 60.0
    assert settings.deadline == 120.0
    assert settings.retry_unknown is False
    assert settings.allow_insecure_http is False
    assert settings.auth_prefix == ""  # type: ignore[attr-defined]
    assert settings.fetch_profile is True  # type: ignore[attr-defined]


def test_softwareone_mapping_with_account_id() -> None:
    provider = from_config(
        {
            "provider": "softwareone",
            "token": "fake-token",
            "account_id": SOFTWAREONE_ACCOUNT_ID,
            "base_url": "https://api.platform.softwareone.com/public/v1/",
        }
    )
    assert provider.name == "softwareone"
    assert provider.settings.account_id == SOFTWAREONE_ACCOUNT_ID  # type: ignore[attr-defined]
    assert provider.base_url == "https://api.platform.softwareone.com"


def test_softwareone_mapping_without_account_id_is_the_legacy_endpoint() -> None:
    with pytest.warns(DeprecationWarning, match="account_id"):
        provider = from_config({"provider": "softwareone", "token": "fake-token"})
    assert provider.base_url == "https://api.platform.softwareone.com"
    assert provider.legacy is True  # type: ignore[attr-defined]


def test_tenant_api_mapping() -> None:
    seen: list[httpx.Request] = []
    provider = from_config(
        {
            "provider": "tenant_api",
            "token": "fake-bearer",
            "base_url": "https://identity.example.test/",
            "tenant_id": TENANT_ID.upper(),
            "auth": "bearer",
        },
        client=httpx.Client(transport=_ok_transport(seen)),
    )
    assert provider.settings.tenant_id == TENANT_ID  # type: ignore[attr-defined]
    assert provider.base_url == "https://identity.example.test"
    provider.resend_invite(TENANT_USER_INVITED)
    assert seen[0].headers["Authorization"] == "Bearer fake-bearer"
    assert seen[0].headers["X-Tenant-ID"] == TENANT_ID
    assert "X-API-Key" not in seen[0].headers


def test_tenant_api_defaults_to_an_api_key_header() -> None:
    seen: list[httpx.Request] = []
    provider = from_config(
        _config("tenant_api", token="fake-key"), client=httpx.Client(transport=_ok_transport(seen))
    )
    provider.resend_invite(TENANT_USER_INVITED)
    assert seen[0].headers["X-API-Key"] == "fake-key"
    assert "Authorization" not in seen[0].headers


def test_ecosuite_auth_prefix_reaches_the_header() -> None:
    seen: list[httpx.Request] = []
    client = httpx.Client(transport=_ok_transport(seen))
    from_config(_config("ecosuite", token="fake-jwt"), client=client).resend_invite("u-1")
    from_config(
        _config("ecosuite", token="fake-jwt", auth_prefix="Bearer"), client=client
    ).resend_invite("u-1")
    assert [r.headers["Authorization"] for r in seen] == ["fake-jwt"] * 2 + ["Bearer fake-jwt"] * 2


def test_a_mapping_is_not_modified() -> None:
    config = _config("tenant_api", timeouts={"read": 3})
    snapshot = repr(config)
    from_config(config)
    assert repr(config) == snapshot


def _token() -> str:
    return "fake-token-from-a-function"


@pytest.mark.parametrize(
    "config",
    [
        _config("ecosuite"),
        _config("softwareone"),
        _config("softwareone", account_id=None),
        _config("tenant_api"),
        _config(
            "tenant_api",
            timeout=4,
            max_attempts=5,
            rate_limit=20.5,
            rate_limit_fallback="local",
            deadline=30,
            retry_unknown=True,
            on_attempt=print,
            ledger="sqlite:///tmp/invites-ledger.db",
        ),
        _config("ecosuite", token=None, token_provider=_token, auth_prefix="Bearer"),
        _config("tenant_api", timeouts={"read": 3}),
    ],
    ids=lambda config: f"{config['provider']}-{len(config)}-keys",
)
def test_settings_built_by_the_class_alone_equal_what_cattrs_builds(
    config: dict[str, Any],
) -> None:
    # A configuration of flat keys skips cattrs: the result must be the one cattrs would give.
    from invites._settings.structuring import (
        AnySettings,
        _built_by_the_class,
        _converter,
        structure,
    )

    flat = "timeouts" not in config  # a nested table always goes through cattrs
    assert (_built_by_the_class(config) is not None) is flat
    assert structure(config, AnySettings) == _converter().structure(config, AnySettings)


def test_a_flat_configuration_builds_no_cattrs_converter(tmp_path: Path) -> None:
    # Generating cattrs' converter and structuring function costs ~2 ms of every cold start.
    completed = subprocess.run(  # noqa: S603
        [
            sys.executable,
            "-c",
            "import invites, invites._settings.structuring as s\n"
            f"invites.from_config({_config('tenant_api')!r})\n"
            "print(s._converter.cache_info().currsize)",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert completed.stdout.split() == ["0"]


# -- reporting problems ----------------------------------------------------------------------------


def test_a_missing_provider_lists_the_known_ones() -> None:
    assert _problems({"token": "fake"}) == [
        "provider: is required (one of: ecosuite, softwareone, tenant_api)"
    ]


def test_an_unknown_provider_lists_the_known_ones() -> None:
    with pytest.raises(ConfigurationError) as caught:
        from_config({"provider": "ecosuit", "token": "fake"})
    assert caught.value.problems == [
        "provider: unknown provider 'ecosuit' (known: ecosuite, softwareone, tenant_api)"
    ]
    assert str(caught.value) == "invalid configuration: " + caught.value.problems[0]


@pytest.mark.parametrize("config", [["provider", "ecosuite"], "provider=ecosuite", None])
def test_a_configuration_that_is_not_a_mapping(config: object) -> None:
    problems = _problems(config)
    assert len(problems) == 1
    assert problems[0].startswith("configuration: expected a mapping")


def test_a_missing_token() -> None:
    with pytest.raises(ConfigurationError) as caught:
        from_config({"provider": "ecosuite"})
    assert caught.value.problems == ["token: is required (or token_env, token_provider)"]
    assert caught.value.provider == "ecosuite"
    assert str(caught.value).startswith("invalid ecosuite configuration: token: is required")


def test_a_missing_tenant_id() -> None:
    config = _config("tenant_api")
    del config["tenant_id"]
    assert _problems(config) == ["tenant_id: is required"]


def test_an_unknown_key_suggests_the_closest_known_one() -> None:
    assert _problems(_config("ecosuite", tiemout=5, fetch_profiles=False)) == [
        "fetch_profiles: unknown key (did you mean 'fetch_profile'?)",
        "tiemout: unknown key (did you mean 'timeout'?)",
    ]


def test_an_unknown_key_without_a_close_match() -> None:
    assert _problems(_config("ecosuite", colour="blue")) == ["colour: unknown key"]


def test_a_key_of_another_vendor_is_unknown() -> None:
    assert _problems(_config("ecosuite", account_id=SOFTWAREONE_ACCOUNT_ID)) == [
        "account_id: unknown key"
    ]
    [problem] = _problems(_config("softwareone", tenant_id=TENANT_ID))
    assert problem.startswith("tenant_id: unknown key")


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigurationError) as caught:
        from_config(
            _config(
                "tenant_api",
                tenant_id="not-a-uuid",
                auth="basic",
                timeout="10",
                max_attempts=0,
                retry_unknown="yes",
                timeouts={"conect": 1, "read": -1},
                tiemout=5,
            )
        )
    problems = caught.value.problems
    assert sorted(problems) == sorted(
        [
            "tenant_id: must be a UUID",
            "auth: must be one of 'api_key', 'bearer'",
            "timeout: expected a number, got str",
            "max_attempts: must be at least 1",
            "retry_unknown: expected true or false, got str",
            "timeouts.read: must be greater than 0",
            "timeouts.conect: unknown key (did you mean 'connect'?)",
            "tiemout: unknown key (did you mean 'timeout'?)",
        ]
    )
    for problem in problems:
        assert problem in str(caught.value)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            {"provider": "ecosuite", "timeout": "x"},
            "token: is required (or token_env, token_provider)",
        ),
        (
            {"provider": "tenant_api", "tenant_id": TENANT_ID, "timeout": "x"},
            "base_url: is required",
        ),
        (
            {"provider": "ecosuite", "token": "fake", "timeout": "x", "base_url": "http://e.test"},
            "base_url: must use https://",
        ),
    ],
)
def test_cross_key_problems_are_reported_alongside_type_errors(
    config: dict[str, Any], expected: str
) -> None:
    problems = _problems(config)
    assert "timeout: expected a number, got str" in problems
    assert any(p.startswith(expected) for p in problems)


TYPED_KEYS: list[tuple[str, str, object, str]] = [
    ("ecosuite", "timeout", "10", "timeout: expected a number, got str"),
    ("ecosuite", "timeout", True, "timeout: expected a number, got bool"),
    ("ecosuite", "timeout", 0, "timeout: must be greater than 0"),
    ("ecosuite", "timeout", float("inf"), "timeout: expected a finite number"),
    ("ecosuite", "max_attempts", "3", "max_attempts: expected an integer, got str"),
    ("ecosuite", "max_attempts", 2.0, "max_attempts: expected an integer, got float"),
    ("ecosuite", "max_attempts", 0, "max_attempts: must be at least 1"),
    ("ecosuite", "rate_limit", "5", 'rate_limit: expected a number or "auto", got another text'),
    ("ecosuite", "rate_limit", -1, "rate_limit: must be greater than 0"),
    ("ecosuite", "max_retry_after", -0.5, "max_retry_after: must not be negative"),
    ("ecosuite", "max_retry_after", [1], "max_retry_after: expected a number, got list"),
    ("ecosuite", "deadline", float("nan"), "deadline: expected a finite number"),
    ("ecosuite", "deadline", 0, "deadline: must be greater than 0"),
    ("ecosuite", "retry_unknown", 1, "retry_unknown: expected true or false, got int"),
    (
        "ecosuite",
        "allow_insecure_http",
        "true",
        "allow_insecure_http: expected true or false, got str",
    ),
    ("ecosuite", "auth_prefix", 5, "auth_prefix: expected a string, got int"),
    ("ecosuite", "auth_prefix", "Bearer\r\n", "auth_prefix: must not contain CR, LF or NUL"),
    ("ecosuite", "fetch_profile", "no", "fetch_profile: expected true or false, got str"),
    ("ecosuite", "token", 123, "token: expected a string, got int"),
    ("ecosuite", "token", "", "token: must not be empty"),
    ("ecosuite", "token_env", 5, "token_env: expected a string, got int"),
    ("ecosuite", "base_url", 443, "base_url: expected a string, got int"),
    ("ecosuite", "timeouts", 5, "timeouts: expected a table (mapping)"),
    ("ecosuite", "timeouts", {"connect": "1"}, "timeouts.connect: expected a number, got str"),
    ("ecosuite", "timeouts", {"pool": 0}, "timeouts.pool: must be greater than 0"),
    ("ecosuite", "on_attempt", 3, 'on_attempt: expected a callable or a "module:function" string'),
    ("softwareone", "account_id", 7, "account_id: expected a string, got int"),
    (
        "softwareone",
        "account_id",
        "",
        "account_id: is not a usable id (empty, too long or with control characters)",
    ),
    ("tenant_api", "tenant_id", "not-a-uuid", "tenant_id: must be a UUID"),
    ("tenant_api", "tenant_id", 42, "tenant_id: expected a string, got int"),
    ("tenant_api", "auth", "basic", "auth: must be one of 'api_key', 'bearer'"),
]


@pytest.mark.parametrize(
    ("vendor", "key", "value", "expected"),
    TYPED_KEYS,
    ids=[f"{v}-{k}-{i}" for i, (v, k, _, _) in enumerate(TYPED_KEYS)],
)
def test_a_wrong_value_names_its_key(vendor: str, key: str, value: object, expected: str) -> None:
    assert _problems(_config(vendor, **{key: value})) == [expected]


def test_a_tenant_id_is_stored_in_canonical_form() -> None:
    settings = from_config(_config("tenant_api", tenant_id=TENANT_ID.upper())).settings
    assert settings.tenant_id == TENANT_ID  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "tenant_id",
    [
        TENANT_ID.replace("-", "")[:-1],
        TENANT_ID + "0",
        TENANT_ID.replace("f1d4", "f1_d4", 1)[:-1],
        "+" + TENANT_ID[1:],
        " " + TENANT_ID,
    ],
)
def test_a_tenant_id_that_is_not_a_plain_uuid_is_refused(tenant_id: str) -> None:
    assert _problems(_config("tenant_api", tenant_id=tenant_id)) == ["tenant_id: must be a UUID"]


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://files.example.test", "must be an http:// or https:// URL"),
        ("vendor.example.test", "must be an http:// or https:// URL"),
        ("https://", "has no host"),
        ("https://user:pw@vendor.example.test", "must not contain credentials"),
        ("https://vendor.example.test/api?x=1", "must not contain a query"),
        ("https://vendor.example.test/#top", "must not contain a fragment"),
        ("https://vendor.example.test/\nX-Injected: 1", "must not contain CR, LF or NUL"),
        ("https://[zz]/", "is not a valid URL"),
    ],
)
def test_a_bad_base_url(url: str, why: str) -> None:
    assert _problems(_config("ecosuite", base_url=url)) == [f"base_url: {why}"]


@pytest.mark.parametrize(
    "url",
    [
        "http://vendor.example.test",
        "http://10.0.0.1:8080",
        "http://0.0.0.0:80",
        "http://localhost.example.test",
    ],
)
def test_plain_http_to_a_remote_host_is_refused(url: str) -> None:
    problems = _problems(_config("ecosuite", base_url=url))
    assert problems == [
        "base_url: must use https:// (plain http is allowed only for a loopback host, or with "
        "allow_insecure_http = true)"
    ]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8765",
        "http://127.9.9.9",
        "http://localhost:1",
        "http://LOCALHOST",
        "http://[::1]:8080/",
    ],
)
def test_plain_http_to_a_loopback_host_is_allowed(url: str) -> None:
    provider = from_config(_config("ecosuite", base_url=url))
    assert provider.base_url == url.rstrip("/").lower()  # the host in its canonical case


def test_allow_insecure_http_permits_plain_http_anywhere() -> None:
    provider = from_config(
        _config("ecosuite", base_url="http://vendor.example.test", allow_insecure_http=True)
    )
    assert provider.base_url == "http://vendor.example.test"


@pytest.mark.parametrize(
    "url", ["https://exa mple.test", "https://exa<mple.test", "http://127.0.0.1:99999"]
)
def test_an_unusable_host_or_port_is_refused(url: str) -> None:
    [problem] = _problems(_config("ecosuite", base_url=url))
    assert problem.startswith("base_url: ")


def test_base_url_is_required_for_tenant_api() -> None:
    config = _config("tenant_api")
    del config["base_url"]
    assert _problems(config) == ["base_url: is required"]


# -- credentials -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        ({"token": "fake", "token_env": "T"}, "token_env: set only one of token, token_env"),
        (
            {"token_env": "T", "token_provider": "os:getcwd"},
            "token_provider: set only one of token_env, token_provider",
        ),
    ],
)
def test_token_sources_are_exclusive(sources: dict[str, Any], expected: str) -> None:
    assert _problems({"provider": "ecosuite", **sources}, environ={"T": "fake"}) == [expected]


def test_all_three_token_sources_are_refused_together() -> None:
    assert _problems(
        {"provider": "ecosuite", "token": "fake", "token_env": "T", "token_provider": "os:getcwd"},
        environ={"T": "fake"},
    ) == ["token_env: set only one of token, token_env, token_provider"]


def test_token_env_is_read_from_the_given_environ() -> None:
    seen: list[httpx.Request] = []
    provider = from_config(
        {"provider": "ecosuite", "token_env": "ECO_TOKEN"},
        environ={"ECO_TOKEN": "fake-from-environ"},
        client=httpx.Client(transport=_ok_transport(seen)),
    )
    assert provider.settings.token_env == "ECO_TOKEN"
    provider.resend_invite(
        invites.Invitee(user_id="u-1", email="a@b.c", first_name="A", last_name="B")
    )
    assert seen[0].headers["Authorization"] == "fake-from-environ"


def test_token_env_defaults_to_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INVITES_TEST_TOKEN_VAR", "fake-from-process")
    provider = from_config({"provider": "ecosuite", "token_env": "INVITES_TEST_TOKEN_VAR"})
    assert provider.settings.token is not None
    assert provider.settings.token.reveal() == "fake-from-process"


@pytest.mark.parametrize("environ", [{}, {"ECO_TOKEN": ""}])
def test_token_env_unset_or_empty(environ: dict[str, str]) -> None:
    assert _problems({"provider": "ecosuite", "token_env": "ECO_TOKEN"}, environ=environ) == [
        "token_env: the environment variable ECO_TOKEN is not set"
    ]


def test_a_token_env_value_with_a_line_break_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigurationError) as caught:
        from_config(
            {"provider": "ecosuite", "token_env": "ECO_TOKEN"},
            environ={"ECO_TOKEN": FAKE_SECRET + "\nX-Injected: 1"},
        )
    assert caught.value.problems[0].startswith("token_env: ")
    assert FAKE_SECRET not in str(caught.value)


def test_token_provider_as_a_callable() -> None:
    seen: list[httpx.Request] = []
    provider = from_config(
        _config("tenant_api", token=None, token_provider=lambda: "fake-token-from-callable"),
        client=httpx.Client(transport=_ok_transport(seen)),
    )
    provider.resend_invite(TENANT_USER_INVITED)
    assert seen[0].headers["X-API-Key"] == "fake-token-from-callable"


def test_token_provider_as_an_import_string(helpers: ModuleType) -> None:
    seen: list[httpx.Request] = []
    provider = from_config(
        _config("tenant_api", token=None, token_provider=f"{helpers.__name__}:token"),
        client=httpx.Client(transport=_ok_transport(seen)),
    )
    assert provider.settings.token_provider is helpers.token
    provider.resend_invite(TENANT_USER_INVITED)
    assert seen[0].headers["X-API-Key"] == "fake-token-from-provider"


def test_a_token_provider_that_cannot_be_imported_is_a_configuration_error() -> None:
    problems = _problems(
        {"provider": "ecosuite", "token_provider": "invites_no_such_module_xyz:token"}
    )
    assert len(problems) == 1
    assert problems[0].startswith("token_provider: ")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "invites_no_such_module_xyz:token",
            "cannot import module 'invites_no_such_module_xyz' (ModuleNotFoundError)",
        ),
        ("os:no_such_function", "module 'os' has no such attribute"),
        ("os:sep", "the object it names in module 'os' is not callable"),
        ("os.getcwd", 'expected a callable or a "module:function" string'),
        ("os:getcwd:extra", 'expected a callable or a "module:function" string'),
        (5, 'expected a callable or a "module:function" string'),
    ],
)
def test_a_bad_token_provider_says_what_is_wrong(value: object, expected: str) -> None:
    assert _problems({"provider": "ecosuite", "token_provider": value}) == [
        f"token_provider: {expected}"
    ]


# -- timeouts and on_attempt -----------------------------------------------------------------------


def test_timeouts_table_sets_each_phase_and_the_rest_take_timeout() -> None:
    seen: list[httpx.Request] = []
    provider = from_config(
        _config("tenant_api", timeout=8, timeouts={"connect": 1, "read": 30}),
        client=httpx.Client(transport=_ok_transport(seen), timeout=99),
    )
    assert provider.settings.timeouts is not None
    assert provider.settings.timeouts.read == 30.0
    provider.resend_invite(TENANT_USER_INVITED)
    assert seen[0].extensions["timeout"] == {
        "connect": 1.0,
        "read": 30.0,
        "write": 8.0,
        "pool": 8.0,
    }


def test_timeout_alone_applies_to_every_phase() -> None:
    seen: list[httpx.Request] = []
    provider = from_config(
        _config("tenant_api", timeout=2.5), client=httpx.Client(transport=_ok_transport(seen))
    )
    provider.resend_invite(TENANT_USER_INVITED)
    assert seen[0].extensions["timeout"] == dict.fromkeys(("connect", "read", "write", "pool"), 2.5)


def test_on_attempt_callable_receives_every_attempt() -> None:
    events: list[invites.AttemptEvent] = []
    seen: list[httpx.Request] = []
    provider = from_config(
        _config("ecosuite", on_attempt=events.append),
        client=httpx.Client(transport=_ok_transport(seen)),
    )
    provider.resend_invite("u-1")
    assert [(e.method, e.path, e.status_code, e.attempt) for e in events] == [
        ("GET", "/users/u-1", 200, 1),
        ("PUT", "/users/u-1/resend", 200, 1),
    ]
    assert all(isinstance(e, invites.AttemptEvent) for e in events)
    assert {e.provider for e in events} == {"ecosuite"}


def test_on_attempt_as_an_import_string(helpers: ModuleType) -> None:
    seen: list[httpx.Request] = []
    provider = from_config(
        _config("tenant_api", on_attempt=f"{helpers.__name__}:record"),
        client=httpx.Client(transport=_ok_transport(seen)),
    )
    assert provider.settings.on_attempt is helpers.record
    provider.resend_invite(TENANT_USER_INVITED)
    assert [e.user_id for e in helpers.EVENTS] == [TENANT_USER_INVITED]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "invites_no_such_module_xyz:record",
            "cannot import module 'invites_no_such_module_xyz' (ModuleNotFoundError)",
        ),
        ("os:sep", "the object it names in module 'os' is not callable"),
        ("os.getcwd", 'expected a callable or a "module:function" string'),
    ],
)
def test_a_bad_on_attempt(value: str, expected: str) -> None:
    assert _problems(_config("ecosuite", on_attempt=value)) == [f"on_attempt: {expected}"]


# -- secrets ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vendor", "key"),
    [
        ("ecosuite", "max_attempts"),
        ("ecosuite", "timeout"),
        ("ecosuite", "base_url"),
        ("ecosuite", "auth_prefix_typo"),
        ("ecosuite", "fetch_profile"),
        ("ecosuite", "retry_unknown"),
        ("softwareone", "account_id"),
        ("tenant_api", "tenant_id"),
        ("tenant_api", "auth"),
    ],
)
def test_a_secret_in_the_wrong_place_is_never_echoed(vendor: str, key: str) -> None:
    value = FAKE_SECRET + "\n" if key == "account_id" else FAKE_SECRET
    with pytest.raises(ConfigurationError) as caught:
        from_config(_config(vendor, token=FAKE_SECRET + "-token", **{key: value}))
    text = str(caught.value) + repr(caught.value) + " ".join(caught.value.problems)
    assert key.split("_typo")[0] in text
    assert FAKE_SECRET not in text


def test_a_secret_in_a_nested_table_is_never_echoed() -> None:
    with pytest.raises(ConfigurationError) as caught:
        from_config(_config("ecosuite", timeouts={"read": FAKE_SECRET, "secret": FAKE_SECRET}))
    assert caught.value.problems == [
        "timeouts.read: expected a number, got str",
        "timeouts.secret: unknown key",
    ]
    assert FAKE_SECRET not in str(caught.value)


def test_a_token_is_never_echoed_next_to_other_problems() -> None:
    with pytest.raises(ConfigurationError) as caught:
        from_config(_config("ecosuite", token=FAKE_SECRET, timeout=-1, colour="x"))
    assert FAKE_SECRET not in str(caught.value)
    assert FAKE_SECRET not in repr(caught.value)


def test_a_secret_pasted_into_token_env_is_never_echoed() -> None:
    with pytest.raises(ConfigurationError) as caught:
        from_config({"provider": "ecosuite", "token_env": FAKE_SECRET}, environ={})
    assert caught.value.problems[0].startswith("token_env: ")
    assert FAKE_SECRET not in str(caught.value)


def test_settings_repr_never_shows_the_token() -> None:
    provider = from_config(_config("ecosuite", token=FAKE_SECRET))
    assert FAKE_SECRET not in repr(provider.settings)
    assert FAKE_SECRET not in repr(provider)


# -- from_env --------------------------------------------------------------------------------------


@pytest.fixture
def env_ready() -> None:
    """Build each vendor's settings once, so their field types are resolved in this process.

    A fresh process is covered separately by test_from_env_parses_text_in_a_fresh_process.
    """
    for vendor in ("ecosuite", "softwareone", "tenant_api"):
        from_config(_config(vendor))


def _env(vendor: str, **variables: str) -> dict[str, str]:
    env = {"INVITES_PROVIDER": vendor, "INVITES_TOKEN": "fake-env-token"}
    if vendor == "tenant_api":
        env |= {"INVITES_TENANT_ID": TENANT_ID, "INVITES_BASE_URL": BASE_URL}
    if vendor == "softwareone":
        env["INVITES_ACCOUNT_ID"] = SOFTWAREONE_ACCOUNT_ID
    env.update(variables)
    return env


@pytest.mark.usefixtures("env_ready")
class TestFromEnv:
    @pytest.mark.parametrize("vendor", ["ecosuite", "softwareone", "tenant_api"])
    def test_each_vendor(self, vendor: str) -> None:
        provider = from_env(_env(vendor))
        assert provider.name == vendor
        assert provider.settings.token is not None
        assert provider.settings.token.reveal() == "fake-env-token"

    def test_numbers_and_booleans_are_parsed_from_text(self) -> None:
        settings = from_env(
            _env(
                "ecosuite",
                INVITES_TIMEOUT="2.5",
                INVITES_MAX_ATTEMPTS="5",
                INVITES_RATE_LIMIT="4",
                INVITES_MAX_RETRY_AFTER="0",
                INVITES_DEADLINE="30",
                INVITES_RETRY_UNKNOWN="yes",
                INVITES_FETCH_PROFILE="false",
                INVITES_AUTH_PREFIX="Bearer",
            )
        ).settings
        assert settings.timeout == 2.5
        assert settings.max_attempts == 5
        assert settings.rate_limit == 4.0
        assert settings.max_retry_after == 0.0
        assert settings.deadline == 30.0
        assert settings.retry_unknown is True
        assert settings.fetch_profile is False  # type: ignore[attr-defined]
        assert settings.auth_prefix == "Bearer"  # type: ignore[attr-defined]

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("1", True),
            ("TRUE", True),
            ("on", True),
            (" yes ", True),
            ("0", False),
            ("Off", False),
            ("no", False),
        ],
    )
    def test_boolean_spellings(self, text: str, expected: bool) -> None:
        assert (
            from_env(_env("ecosuite", INVITES_RETRY_UNKNOWN=text)).settings.retry_unknown
            is expected
        )

    def test_an_integer_written_as_a_whole_float_is_accepted(self) -> None:
        assert from_env(_env("ecosuite", INVITES_MAX_ATTEMPTS="4.0")).settings.max_attempts == 4

    def test_an_empty_variable_counts_as_unset(self) -> None:
        provider = from_env(
            _env("ecosuite", INVITES_BASE_URL="", INVITES_TIMEOUT="", INVITES_TOKEN_ENV="")
        )
        assert provider.base_url == "https://api.ecosuite.io"
        assert provider.settings.timeout == 10.0
        assert provider.settings.token_env is None

    def test_an_empty_token_with_token_env_is_not_two_sources(self) -> None:
        env = _env("ecosuite", INVITES_TOKEN="", INVITES_TOKEN_ENV="ECO_TOKEN", ECO_TOKEN="fake-e")
        token = from_env(env).settings.token
        assert token is not None
        assert token.reveal() == "fake-e"

    def test_unknown_invites_variables_are_reported(self) -> None:
        with pytest.raises(ConfigurationError) as caught:
            from_env(
                _env(
                    "ecosuite",
                    INVITES_COLOUR="blue",
                    INVITES_TIMOUT="5",
                    INVITES_TENANT_ID="not-for-ecosuite",
                    INVITES_ACCOUNT_ID="not-for-ecosuite",
                )
            )
        assert caught.value.problems == [
            "INVITES_ACCOUNT_ID: unknown key",
            "INVITES_COLOUR: unknown key",
            "INVITES_TENANT_ID: unknown key",
            "INVITES_TIMOUT: unknown key (did you mean 'INVITES_TIMEOUT'?)",
        ]

    def test_variables_that_are_no_key_are_left_alone(self) -> None:
        env = _env(
            "ecosuite",
            INVITES_TOKEN="",
            INVITES_TOKEN_ENV="INVITES_ECO_TOKEN",
            INVITES_ECO_TOKEN="fake-held-under-the-prefix",
            INVITES_LIVE_ECOSUITE_TOKEN="fake-live",
            INVITES_REQUIRE_SERVICES="1",
            INVITES_SEEDS_DIR="/nowhere",
        )
        token = from_env(env).settings.token
        assert token is not None
        assert token.reveal() == "fake-held-under-the-prefix"

    def test_timeouts_cannot_be_set_from_the_environment(self) -> None:
        with pytest.raises(ConfigurationError) as caught:
            from_env(_env("ecosuite", INVITES_TIMEOUTS="5"))
        assert caught.value.problems == ["INVITES_TIMEOUTS: expected a table (mapping)"]

    def test_problems_are_named_by_variable(self) -> None:
        with pytest.raises(ConfigurationError) as caught:
            from_env(
                _env(
                    "tenant_api",
                    INVITES_TIMEOUT="soon",
                    INVITES_MAX_ATTEMPTS="2.5",
                    INVITES_RETRY_UNKNOWN="maybe",
                    INVITES_TENANT_ID="nope",
                    INVITES_AUTH="basic",
                )
            )
        assert sorted(caught.value.problems) == sorted(
            [
                "INVITES_TIMEOUT: expected a number, got str",
                "INVITES_MAX_ATTEMPTS: expected an integer, got float",
                "INVITES_RETRY_UNKNOWN: expected true or false, got str",
                "INVITES_TENANT_ID: must be a UUID",
                "INVITES_AUTH: must be one of 'api_key', 'bearer'",
            ]
        )
        assert str(caught.value).startswith("invalid tenant_api configuration: INVITES_")
        for problem in caught.value.problems:
            assert problem in str(caught.value)

    @pytest.mark.parametrize("environ", [{}, {"INVITES_PROVIDER": ""}, {"INVITES_TOKEN": "x"}])
    def test_a_missing_provider(self, environ: dict[str, str]) -> None:
        with pytest.raises(ConfigurationError) as caught:
            from_env(environ)
        # The keys every provider shares are still checked: here, that a token is given.
        missing_token = [] if environ.get("INVITES_TOKEN") else [
            "INVITES_TOKEN: is required (or token_env, token_provider)"
        ]  # fmt: skip
        assert caught.value.problems == [
            "INVITES_PROVIDER: is required (one of: ecosuite, softwareone, tenant_api)",
            *missing_token,
        ]

    def test_an_unknown_provider(self) -> None:
        with pytest.raises(ConfigurationError) as caught:
            from_env({"INVITES_PROVIDER": "acme", "INVITES_TOKEN": FAKE_SECRET})
        assert caught.value.problems == [
            "INVITES_PROVIDER: unknown provider 'acme' (known: ecosuite, softwareone, tenant_api)"
        ]
        assert FAKE_SECRET not in str(caught.value)

    def test_a_missing_token_and_an_unset_token_env(self) -> None:
        with pytest.raises(ConfigurationError) as caught:
            from_env({"INVITES_PROVIDER": "ecosuite"})
        assert caught.value.problems[0].startswith("INVITES_TOKEN: is required")
        with pytest.raises(ConfigurationError) as caught:
            from_env({"INVITES_PROVIDER": "ecosuite", "INVITES_TOKEN_ENV": "ECO_TOKEN"})
        assert caught.value.problems == [
            "INVITES_TOKEN_ENV: the environment variable ECO_TOKEN is not set"
        ]

    def test_plain_http_needs_loopback_or_the_opt_in(self) -> None:
        with pytest.raises(ConfigurationError) as caught:
            from_env(_env("ecosuite", INVITES_BASE_URL="http://vendor.example.test"))
        assert caught.value.problems[0].startswith("INVITES_BASE_URL: must use https://")
        provider = from_env(
            _env(
                "ecosuite",
                INVITES_BASE_URL="http://vendor.example.test",
                INVITES_ALLOW_INSECURE_HTTP="true",
            )
        )
        assert provider.base_url == "http://vendor.example.test"

    def test_the_token_is_never_echoed(self) -> None:
        with pytest.raises(ConfigurationError) as caught:
            from_env(
                _env(
                    "ecosuite",
                    INVITES_TOKEN=FAKE_SECRET,
                    INVITES_MAX_ATTEMPTS=FAKE_SECRET,
                    INVITES_BASE_URL=FAKE_SECRET,
                )
            )
        assert len(caught.value.problems) == 2
        assert FAKE_SECRET not in str(caught.value)
        assert FAKE_SECRET not in repr(caught.value)

    def test_reads_the_process_environment_by_default(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("INVITES_PROVIDER", "ecosuite")
        monkeypatch.setenv("INVITES_TOKEN", "fake-process-token")
        monkeypatch.setenv("INVITES_MAX_ATTEMPTS", "7")
        assert from_env().settings.max_attempts == 7

    def test_injected_client_is_used(self) -> None:
        seen: list[httpx.Request] = []
        provider = from_env(_env("tenant_api"), client=httpx.Client(transport=_ok_transport(seen)))
        provider.resend_invite(TENANT_USER_INVITED)
        assert len(seen) == 1
        assert seen[0].headers["X-API-Key"] == "fake-env-token"


def test_from_env_parses_text_in_a_fresh_process(tmp_path: Path) -> None:
    code = textwrap.dedent(
        """
        import invites
        settings = invites.from_env({
            "INVITES_PROVIDER": "ecosuite",
            "INVITES_TOKEN": "fake-env-token",
            "INVITES_TIMEOUT": "5",
            "INVITES_MAX_ATTEMPTS": "4",
            "INVITES_FETCH_PROFILE": "false",
        }).settings
        print(settings.timeout, settings.max_attempts, settings.fetch_profile)
        """
    )
    completed = subprocess.run(  # noqa: S603
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0, completed.stderr.splitlines()[-1:]
    assert completed.stdout.split() == ["5.0", "4", "False"]


# -- load_profiles ---------------------------------------------------------------------------------


def test_load_profiles_from_a_toml_file() -> None:
    profiles = load_profiles(DATA / "profiles.toml", environ=PROFILE_ENV)
    assert len(profiles) == 3
    assert list(profiles) == ["eco", "swo", "tenant"]
    assert "eco" in profiles
    assert "nope" not in profiles
    assert profiles.default_name == "eco"
    assert profiles.default is profiles["eco"]
    eco, swo, tenant = profiles["eco"], profiles["swo"], profiles["tenant"]
    assert (eco.name, swo.name, tenant.name) == ("ecosuite", "softwareone", "tenant_api")
    assert eco.settings.auth_prefix == "Bearer"  # type: ignore[attr-defined]
    assert eco.settings.timeout == 5.0
    assert swo.settings.max_attempts == 5
    assert swo.settings.account_id == SOFTWAREONE_ACCOUNT_ID  # type: ignore[attr-defined]
    assert tenant.base_url == "https://identity.example.test"
    assert tenant.settings.tenant_id == TENANT_ID  # type: ignore[attr-defined]
    assert tenant.settings.rate_limit == 2.5
    assert tenant.settings.timeouts is not None
    assert tenant.settings.timeouts.connect == 2.0
    tokens = [p.settings.token.reveal() for p in (eco, swo, tenant) if p.settings.token]
    assert tokens == ["fake-ecosuite-token", "fake-softwareone-token", "fake-tenant-token"]
    profiles.close()


def test_load_profiles_accepts_a_string_path() -> None:
    profiles = load_profiles(str(DATA / "profiles.toml"), environ=PROFILE_ENV)
    assert profiles.default.name == "ecosuite"


def test_load_profiles_from_a_mapping() -> None:
    profiles = load_profiles(
        {
            "default": "b",
            "profiles": {
                "a": _config("ecosuite"),
                "b": {
                    "provider": "tenant_api",
                    "token_env": "TT",
                    "tenant_id": TENANT_ID,
                    "base_url": BASE_URL,
                },
            },
        },
        environ={"TT": "fake-tt"},
    )
    assert len(profiles) == 2
    assert profiles.default.name == "tenant_api"
    assert profiles["a"].name == "ecosuite"
    assert profiles["a"] is profiles["a"]
    with pytest.raises(KeyError):
        profiles["c"]


def test_a_single_profile_is_the_default() -> None:
    profiles = load_profiles({"profiles": {"only": _config("ecosuite")}})
    assert profiles.default_name == "only"
    assert profiles.default is profiles["only"]


def test_no_default_among_several_profiles() -> None:
    profiles = load_profiles({"profiles": {"a": _config("ecosuite"), "b": _config("ecosuite")}})
    assert profiles.default_name is None
    with pytest.raises(ConfigurationError, match="default"):
        _ = profiles.default


def test_a_missing_default_profile() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_profiles({"default": "prod", "profiles": {"dev": _config("ecosuite")}})
    assert caught.value.problems == ["default: no profile named 'prod'"]


def test_bad_profiles_are_reported_with_their_paths() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_profiles(
            {
                "default": "eco",
                "colour": "blue",
                "profiles": {
                    "eco": _config("ecosuite", tiemout=3, token=FAKE_SECRET),
                    "tenant": _config("tenant_api", tenant_id="nope", timeouts={"read": 0}),
                    "acme": {"provider": "acme", "token": FAKE_SECRET},
                    "env": {"provider": "ecosuite", "token_env": "UNSET_TOKEN"},
                    "flat": 5,
                },
            },
            environ={},
        )
    assert sorted(caught.value.problems) == sorted(
        [
            "colour: unknown key",
            "profiles.eco.tiemout: unknown key (did you mean 'timeout'?)",
            "profiles.tenant.tenant_id: must be a UUID",
            "profiles.tenant.timeouts.read: must be greater than 0",
            "profiles.acme.provider: unknown provider 'acme' "
            "(known: ecosuite, softwareone, tenant_api)",
            "profiles.flat: expected a mapping, got int",
        ]
    )
    assert FAKE_SECRET not in str(caught.value)


@pytest.mark.parametrize("document", [{}, {"profiles": {}}, {"profiles": "eco"}])
def test_a_document_without_profiles(document: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_profiles(document)
    assert caught.value.problems == ["profiles: at least one [profiles.NAME] table is required"]


def test_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.toml"
    with pytest.raises(ConfigurationError) as caught:
        load_profiles(missing)
    assert caught.value.problems == [f"{missing}: cannot read (No such file or directory)"]


def test_invalid_toml(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text('default = "eco"\n[profiles.eco\nprovider = "ecosuite"\n')
    with pytest.raises(ConfigurationError) as caught:
        load_profiles(path)
    assert len(caught.value.problems) == 1
    assert caught.value.problems[0].startswith(f"{path}: not valid TOML")


def test_a_toml_profile_with_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "invites.toml"
    path.write_text(
        '[profiles.eco]\nprovider = "ecosuite"\ntoken_env = "ECO"\nmax_attempts = "three"\n'
    )
    with pytest.raises(ConfigurationError) as caught:
        load_profiles(path, environ={"ECO": "fake"})
    assert caught.value.problems == ["profiles.eco.max_attempts: expected an integer, got str"]


def test_the_legacy_profile_warns_when_built_not_when_loaded() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        profiles = load_profiles({"profiles": {"legacy": _config("softwareone", account_id=None)}})
        assert caught == []
        profiles.default  # noqa: B018
        profiles.default  # noqa: B018
    assert [w.category for w in caught] == [DeprecationWarning]


def test_a_profile_resends_through_the_sandbox(server: RunningSandbox, sandbox: Sandbox) -> None:
    profiles = load_profiles({"profiles": {"eco": vendor_config("ecosuite", server.url)}})
    try:
        result = profiles.default.resend_invite(ECOSUITE_USER_1)
    finally:
        profiles.close()
    assert result.provider == "ecosuite"
    assert result.user_id == ECOSUITE_USER_1
    assert sandbox.emails_sent(ECOSUITE_USER_1) == 1
