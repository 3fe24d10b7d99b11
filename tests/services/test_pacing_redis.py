"""Shared pacing through the real Redis server at 127.0.0.1:6379.

Skipped when that server is unreachable, unless ``INVITES_REQUIRE_SERVICES=1`` (then they fail).
Every test uses its own key prefix, removed afterwards. Slot spacing is asserted on the waits the
server hands out (reservations return at once; nothing here sleeps for real). The configuration
tests at the end need no server.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from _support.vendors import vendor_config

import invites
from invites import ConnectionFailed, RateLimited, ResendResult
from invites._pacing.local import Throttle
from invites._pacing.redis_store import RedisPacer, identity_key
from invites.cli import main as cli_main
from invites.ledger import RecordKey, open_ledger, provider_identity
from invites.sandbox import (
    ECOSUITE_USER_1,
    SOFTWAREONE_ACCOUNT_ID,
    TENANT_USER_INVITED,
    Fault,
    RunningSandbox,
    Sandbox,
)

REQUIRED = os.environ.get("INVITES_REQUIRE_SERVICES") == "1"
if REQUIRED:
    import redis
else:
    redis = pytest.importorskip("redis", reason="the redis extra is not installed")

pytestmark = pytest.mark.redis

STORE = "redis://127.0.0.1:6379/0"
#: Nothing listens on port 1 of loopback: the connection is refused at once.
DEAD_STORE = "redis://:dead-store-password-not-real@127.0.0.1:1/0"
PASSWORD = "test-password-not-real"


@pytest.fixture(scope="module")
def server_up() -> None:
    try:
        redis.Redis.from_url(STORE, socket_connect_timeout=1, socket_timeout=1).ping()
    except redis.RedisError as exc:
        reason = f"Redis at 127.0.0.1:6379 is unreachable ({type(exc).__name__})"
        if REQUIRED:
            pytest.fail(reason + " and INVITES_REQUIRE_SERVICES=1")
        pytest.skip(reason)


@pytest.fixture
def store(server_up: None) -> Iterator[Any]:
    """A client of the test server; the test's keys (``store.prefix``) are removed afterwards."""
    client: Any = redis.Redis.from_url(STORE)  # carries the test's key prefix as an attribute
    client.prefix = f"invites-test:{uuid.uuid4().hex}"
    yield client
    keys = list(client.scan_iter(match=client.prefix + ":*"))
    if keys:
        client.delete(*keys)
    client.close()


def shared(url: str, store: Any, **overrides: Any) -> dict[str, Any]:
    """The tenant API at ``url``, paced through the test server under the test's prefix."""
    return vendor_config(
        "tenant_api",
        url,
        rate_limit_store=STORE,
        rate_limit_key_prefix=store.prefix,
        **overrides,
    )


def redis_pacer(provider: invites.BaseProvider) -> RedisPacer:
    """The provider's pacer, which a ``rate_limit_store`` makes a RedisPacer."""
    pacer = provider._pacer
    assert isinstance(pacer, RedisPacer)
    return pacer


def slots(waits: list[tuple[float, float]]) -> list[float]:
    """Sorted instants (call time + wait) at which each reservation may send."""
    return sorted(called + wait for called, wait in waits)


def gaps(instants: list[float]) -> list[float]:
    return [later - earlier for earlier, later in itertools.pairwise(instants)]


def reserve_many(pacer: Any, count: int) -> list[tuple[float, float]]:
    return [(time.time(), pacer.reserve()) for _ in range(count)]


# -- one rate and one pause for every provider of an identity ------------------------------------


def test_the_identity_is_vendor_base_url_and_tenant_never_the_token(store: Any) -> None:
    base = "http://127.0.0.1:9"
    one = invites.from_config(shared(base, store, rate_limit=2))
    other_token = invites.from_config(shared(base, store, token="another-key-not-real"))
    other_tenant = invites.from_config(
        shared(base, store, tenant_id="0b5e7c1a-1111-4a4a-8b8b-000000000001")
    )
    other_url = invites.from_config(shared("http://127.0.0.1:10", store))
    other_vendor = invites.from_config(
        vendor_config("ecosuite", base, rate_limit_store=STORE, rate_limit_key_prefix=store.prefix)
    )

    key = redis_pacer(one).key
    assert key.startswith(store.prefix + ":tenant_api:")
    assert redis_pacer(other_token).key == key
    assert len({key, redis_pacer(other_tenant).key, redis_pacer(other_url).key}) == 3
    assert redis_pacer(other_vendor).key.startswith(store.prefix + ":ecosuite:")
    assert "another-key-not-real" not in repr(other_token._pacer)


def test_the_pace_is_keyed_by_the_ledgers_provider_identity(store: Any) -> None:
    # One definition of "whose users": the ledger's records and the shared pace agree on it,
    # the account id included (a settings field marked as identity).
    config = vendor_config(
        "softwareone",
        "http://127.0.0.1:9",
        rate_limit_store=STORE,
        rate_limit_key_prefix=store.prefix,
    )
    provider = invites.from_config(config)
    other_account = invites.from_config({**config, "account_id": "acct-other-not-real"})

    identity = provider_identity(provider)
    assert SOFTWAREONE_ACCOUNT_ID in identity
    assert redis_pacer(provider).key == identity_key(store.prefix, "softwareone", identity)
    assert redis_pacer(other_account).key != redis_pacer(provider).key
    assert SOFTWAREONE_ACCOUNT_ID not in redis_pacer(provider).key  # hashed, not spelled out


def test_two_providers_in_two_threads_share_one_rate(store: Any) -> None:
    # 0.5/s: one slot every 2 s, bursts of 1. Twenty reservations from two providers must get
    # twenty distinct slots 2 s apart; a per-provider pace would hand out each slot twice.
    config = shared("http://127.0.0.1:9", store, rate_limit=0.5)
    pacers = [redis_pacer(invites.from_config(config)) for _ in range(2)]
    waits: list[list[tuple[float, float]]] = [[], []]
    start = threading.Barrier(2)

    def run(index: int) -> None:
        start.wait()
        waits[index] = reserve_many(pacers[index], 10)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    instants = slots(waits[0] + waits[1])
    assert len(instants) == 20
    assert min(gaps(instants)) > 1.9
    assert instants[-1] - instants[0] == pytest.approx(38.0, abs=0.1)


_CHILD = """
import json, sys, time
import invites
config = json.loads(sys.argv[1])
pacer = invites.from_config(config)._pacer
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))  # start together, not one after the other
print(json.dumps([(time.time(), pacer.reserve()) for _ in range(10)]))
"""


def test_two_processes_share_one_rate(store: Any) -> None:
    config = shared("http://127.0.0.1:9", store, rate_limit=0.5)
    start_at = str(time.time() + 1.5)  # both children reserve from the same moment on
    children = [
        subprocess.Popen(  # noqa: S603 (this interpreter, the code above)
            [sys.executable, "-c", _CHILD, json.dumps(config), start_at],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [child.communicate(timeout=60)[0] for child in children]
    assert [child.returncode for child in children] == [0, 0]

    waits = [tuple(pair) for output in outputs for pair in json.loads(output)]
    instants = slots(waits)
    assert len(instants) == 20
    assert min(gaps(instants)) > 1.9


def test_a_burst_is_at_most_the_rate_and_keys_expire(store: Any) -> None:
    pacer = redis_pacer(invites.from_config(shared("http://127.0.0.1:9", store, rate_limit=5)))

    waits = [pacer.reserve() for _ in range(6)]

    assert waits[:5] == [0.0] * 5
    assert 0 < waits[5] <= 0.2
    ttl = store.pttl(pacer.key)
    assert 1000 < ttl <= 1000 + 1200  # the record lives as long as it holds anything back


def test_a_pause_is_shared_and_a_longer_one_wins(store: Any) -> None:
    config = shared("http://127.0.0.1:9", store)  # no rate_limit: the pause is still shared
    one, other = (redis_pacer(invites.from_config(config)) for _ in range(2))

    one.pause(30)
    other.pause(5)

    assert 29 < other.paused_for() <= 30
    assert 29 < asyncio.run(one.apaused_for()) <= 30
    assert 29 < other.reserve() <= 30
    assert 29_000 < store.pttl(one.key) <= 31_000


def test_a_429_pauses_every_provider_of_the_identity(
    server: RunningSandbox, sandbox: Sandbox, store: Any
) -> None:
    sandbox.retry_after = 30
    sandbox.inject(TENANT_USER_INVITED, Fault.RATE_LIMIT)
    config = shared(server.url, store, max_retry_after=5)
    first, second = invites.from_config(config), invites.from_config(config)
    elsewhere = invites.from_config(
        vendor_config(
            "ecosuite", server.url, rate_limit_store=STORE, rate_limit_key_prefix=store.prefix
        )
    )

    with pytest.raises(RateLimited):
        first.resend_invite(TENANT_USER_INVITED)
    seen = sandbox.request_count
    with pytest.raises(RateLimited, match="nothing was sent") as caught:
        second.resend_invite(TENANT_USER_INVITED)
    with pytest.raises(RateLimited, match="nothing was sent"):
        asyncio.run(second.aresend_invite(TENANT_USER_INVITED))

    assert caught.value.retry_after is not None
    assert 25 < caught.value.retry_after <= 30
    assert sandbox.request_count == seen  # the paused provider sent nothing
    assert isinstance(
        elsewhere.resend_invite(ECOSUITE_USER_1), ResendResult
    )  # another identity goes on
    assert sandbox.emails_sent(TENANT_USER_INVITED) == 0


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_resends_wait_for_the_shared_slot(
    server: RunningSandbox, store: Any, sandbox: Sandbox, mode: str
) -> None:
    # 0.5/s, bursts of 1: the second resend waits 2 s for its slot, the third (from a second
    # provider) 4 s. The sleeps are recorded, not slept: the slots are the server's.
    config = shared(server.url, store, rate_limit=0.5)
    waited: list[float] = []

    async def no_wait(seconds: float) -> None:
        waited.append(seconds)

    providers = [
        type(p)(p.settings, sleep=waited.append, async_sleep=no_wait)
        for p in (invites.from_config(config), invites.from_config(config))
    ]
    calls = [providers[0], providers[0], providers[1]]
    if mode == "sync":
        results = [p.resend_invite(TENANT_USER_INVITED) for p in calls]
        for provider in providers:
            provider.close()
    else:

        async def main() -> list[ResendResult]:
            sent = [await p.aresend_invite(TENANT_USER_INVITED) for p in calls]
            for provider in providers:
                await provider.aclose()
            return sent

        results = asyncio.run(main())

    assert all(isinstance(result, ResendResult) for result in results)
    assert len(waited) == 2
    assert 1.5 < waited[0] <= 2.0
    assert 3.5 < waited[1] <= 4.0
    assert sandbox.emails_sent(TENANT_USER_INVITED) == 3


def test_async_resends_from_one_provider_in_several_event_loops(
    server: RunningSandbox, sandbox: Sandbox, store: Any
) -> None:
    # asyncio.run after asyncio.run, as a job runner does: each loop gets its own store client.
    provider = invites.from_config(shared(server.url, store, rate_limit=1000))
    pacer = redis_pacer(provider)
    results: list[object] = []

    async def resend_twice() -> None:
        for _ in range(2):
            results.append(await provider.aresend_invite(TENANT_USER_INVITED))
        await pacer.aclose()  # this loop's store client

    for _ in range(3):
        asyncio.run(resend_twice())
    provider.close()

    assert len(results) == 6
    assert all(isinstance(result, ResendResult) for result in results)
    assert sandbox.emails_sent(TENANT_USER_INVITED) == 6
    assert store.exists(pacer.key)
    assert len(pacer._async) == 0  # every loop's store client was closed in its loop


def _connected(client: Any) -> list[bool]:
    pool = client.connection_pool
    return [c.is_connected for c in [*pool._available_connections, *pool._in_use_connections]]


def test_a_loops_store_client_is_closed_when_the_loop_shuts_down(store: Any) -> None:
    # A job runner that never awaits aclose(): asyncio.run closes each loop's client as it ends.
    pacer = redis_pacer(invites.from_config(shared("http://127.0.0.1:9", store, rate_limit=1000)))
    clients = []

    async def reserve() -> float:
        wait = await pacer.areserve()
        clients.append(pacer._async[asyncio.get_running_loop()][0].client)
        assert _connected(clients[-1]) == [True]
        return wait

    waits = [asyncio.run(reserve()) for _ in range(4)]

    assert waits == [0.0] * 4
    assert len(set(map(id, clients))) == 4  # one client per loop
    assert [_connected(client) for client in clients] == [[False]] * 4
    assert pacer._async == {}


def test_closing_the_provider_hands_a_running_loops_store_client_to_its_loop(store: Any) -> None:
    provider = invites.from_config(shared("http://127.0.0.1:9", store, rate_limit=1000))
    pacer = redis_pacer(provider)

    async def reserve_then_close_from_another_thread() -> Any:
        await pacer.areserve()
        client = pacer._async[asyncio.get_running_loop()][0].client
        closer = threading.Thread(target=provider.close)
        closer.start()
        await asyncio.to_thread(closer.join)
        for _ in range(100):  # the loop runs the close it was handed
            if _connected(client) == [False]:
                break
            await asyncio.sleep(0)
        return client

    client = asyncio.run(reserve_then_close_from_another_thread())
    assert _connected(client) == [False]
    assert pacer._async == {}


def test_async_reservations_from_several_loops_share_one_rate(store: Any) -> None:
    pacer = redis_pacer(invites.from_config(shared("http://127.0.0.1:9", store, rate_limit=0.5)))
    waits: list[tuple[float, float]] = []
    lock = threading.Lock()

    async def reserve() -> None:
        for _ in range(4):
            called = time.time()
            wait = await pacer.areserve()
            with lock:
                waits.append((called, wait))
        await pacer.aclose()

    threads = [threading.Thread(target=asyncio.run, args=(reserve(),)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    instants = slots(waits)
    assert len(instants) == 12
    assert min(gaps(instants)) > 1.9


def test_the_async_store_client_is_built_without_a_warning(store: Any) -> None:
    pacer = redis_pacer(invites.from_config(shared("http://127.0.0.1:9", store)))

    async def reserve() -> float:
        try:
            return await pacer.areserve()
        finally:
            await pacer.aclose()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert asyncio.run(reserve()) == 0.0
    assert [str(warning.message) for warning in caught] == []


# -- fail closed, or the local fallback ----------------------------------------------------------


def _chain(error: BaseException) -> str:
    text = []
    current: BaseException | None = error
    while current is not None:
        text += [str(current), repr(current)]
        current = current.__cause__ or current.__context__
    return "\n".join(text)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_an_unreachable_store_fails_closed_naming_it(
    server: RunningSandbox, sandbox: Sandbox, server_up: None, mode: str
) -> None:
    provider = invites.from_config(
        vendor_config("tenant_api", server.url, rate_limit=10, rate_limit_store=DEAD_STORE)
    )

    def resend(user_id: str) -> object:
        if mode == "sync":
            return provider.resend_invite(user_id)
        return asyncio.run(provider.aresend_invite(user_id))

    with pytest.raises(ConnectionFailed) as caught:
        resend(TENANT_USER_INVITED)

    error = caught.value
    assert "redis://127.0.0.1:1/0" in str(error)
    assert "nothing was sent" in str(error)
    assert (error.provider, error.user_id, error.retryable) == (
        "tenant_api",
        TENANT_USER_INVITED,
        True,
    )
    assert isinstance(error.__cause__, redis.ConnectionError)
    assert "dead-store-password-not-real" not in _chain(error)
    assert sandbox.request_count == 0


def test_a_killed_store_connection_fails_closed_then_recovers(
    server: RunningSandbox, sandbox: Sandbox, store: Any
) -> None:
    user = store.prefix.replace(":", "-")
    store.acl_setuser(
        user,
        enabled=True,
        passwords=["+" + PASSWORD],
        keys=[store.prefix + ":*"],
        commands=["+@all"],
    )
    try:
        url = f"redis://{user}:{PASSWORD}@127.0.0.1:6379/0"
        provider = invites.from_config(
            vendor_config(
                "tenant_api",
                server.url,
                rate_limit=100,
                rate_limit_store=url,
                rate_limit_key_prefix=store.prefix,
            )
        )
        assert isinstance(provider.resend_invite(TENANT_USER_INVITED), ResendResult)

        # The pacer's connection dies while idle: the next reservation reconnects.
        assert store.client_kill_filter(user=user) == 1
        assert isinstance(provider.resend_invite(TENANT_USER_INVITED), ResendResult)

        # It dies and the store refuses to take it back: nothing is sent.
        store.acl_setuser(user, enabled=False)
        assert store.client_kill_filter(user=user) == 1
        seen = sandbox.request_count
        with pytest.raises(ConnectionFailed, match=r"redis://127\.0\.0\.1:6379/0") as caught:
            provider.resend_invite(TENANT_USER_INVITED)
        assert sandbox.request_count == seen
        assert PASSWORD not in _chain(caught.value)

        store.acl_setuser(user, enabled=True)
        assert isinstance(provider.resend_invite(TENANT_USER_INVITED), ResendResult)
        assert sandbox.emails_sent(TENANT_USER_INVITED) == 3
        provider.close()
    finally:
        store.acl_deluser(user)


def test_the_local_fallback_paces_alone_while_the_store_is_down(
    server: RunningSandbox, sandbox: Sandbox, server_up: None, caplog: pytest.LogCaptureFixture
) -> None:
    waited: list[float] = []
    configured = invites.from_config(
        vendor_config(
            "tenant_api",
            server.url,
            rate_limit=1,
            rate_limit_store=DEAD_STORE,
            rate_limit_fallback="local",
        )
    )
    provider = type(configured)(configured.settings, sleep=waited.append)

    with caplog.at_level(logging.WARNING, logger="invites"), provider:
        results = [provider.resend_invite(TENANT_USER_INVITED) for _ in range(2)]

    assert all(isinstance(result, ResendResult) for result in results)
    assert len(waited) == 1
    assert 0.5 < waited[0] <= 1.0  # this process's own 1/s
    [record] = [r for r in caplog.records if "rate-limit store" in r.getMessage()]
    assert "redis://127.0.0.1:1/0" in record.getMessage()
    assert "dead-store-password-not-real" not in caplog.text
    assert sandbox.emails_sent(TENANT_USER_INVITED) == 2


# -- configuration and secrets -------------------------------------------------------------------


def test_no_secret_of_the_store_url_in_reprs(store: Any) -> None:
    url = f"redis://someone:{PASSWORD}@127.0.0.1:6379/0"
    provider = invites.from_config(
        vendor_config("tenant_api", "http://127.0.0.1:9", rate_limit_store=url)
    )

    assert "redis://127.0.0.1:6379/0" in repr(provider.settings)
    assert "redis://127.0.0.1:6379/0" in repr(provider._pacer)
    for text in (repr(provider.settings), repr(provider._pacer), repr(provider)):
        assert PASSWORD not in text
        assert "someone" not in text


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("http://127.0.0.1:6379", "must be a redis://, rediss:// or unix:// URL"),
        (f"redis://:{PASSWORD}@", "has no host"),
        (f"redis://:{PASSWORD}@127.0.0.1:99999", "has an invalid port"),
        (6379, "expected a string"),
        (f"redis://:{PASSWORD}@127.0.0.1:6379/{PASSWORD}", "has an invalid database number"),
        (f"redis://:{PASSWORD}@[::1", "is not a valid URL"),
        ("unix://", "has no socket path"),
    ],
)
def test_a_bad_store_url_is_a_configuration_error_without_its_value(
    value: object, problem: str
) -> None:
    with pytest.raises(invites.ConfigurationError) as caught:
        invites.from_config(
            vendor_config("tenant_api", "http://127.0.0.1:9", rate_limit_store=value)
        )

    assert f"rate_limit_store: {problem}" in str(caught.value)
    assert PASSWORD not in str(caught.value)


def test_the_store_and_fallback_come_from_the_environment(store: Any) -> None:
    provider = invites.from_env(
        {
            "INVITES_PROVIDER": "tenant_api",
            "INVITES_BASE_URL": "http://127.0.0.1:9",
            "INVITES_TOKEN": "env-token-not-real",
            "INVITES_TENANT_ID": "0b5e7c1a-1111-4a4a-8b8b-000000000001",
            "INVITES_RATE_LIMIT_STORE": STORE,
            "INVITES_RATE_LIMIT_FALLBACK": "local",
            "INVITES_RATE_LIMIT_KEY_PREFIX": store.prefix,
        }
    )

    assert provider.settings.rate_limit_fallback == "local"
    assert redis_pacer(provider).key.startswith(store.prefix + ":tenant_api:")
    assert redis_pacer(provider).reserve() == 0.0


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_store_that_fails_closed_leaves_a_failed_ledger_record(
    server: RunningSandbox, sandbox: Sandbox, server_up: None, tmp_path: Any, mode: str
) -> None:
    # Nothing was sent, so the ledger records a failure (a later run may try again), never an
    # unknown outcome; the replayed key raises the recorded error without asking the store.
    config = vendor_config(
        "tenant_api",
        server.url,
        rate_limit_store=DEAD_STORE,
        ledger=str(tmp_path / "ledger.db"),
    )
    provider = invites.from_config(config)

    def resend() -> object:
        if mode == "sync":
            return provider.resend_invite(TENANT_USER_INVITED, idempotency_key="welcome-1")

        async def once() -> object:
            return await provider.aresend_invite(TENANT_USER_INVITED, idempotency_key="welcome-1")

        return asyncio.run(once())

    with pytest.raises(ConnectionFailed, match=r"redis://127\.0\.0\.1:1/0"):
        resend()
    with pytest.raises(ConnectionFailed, match=r"redis://127\.0\.0\.1:1/0"):
        resend()
    provider.close()

    with open_ledger(tmp_path / "ledger.db") as ledger:
        key = RecordKey("welcome-1", provider_identity(provider), TENANT_USER_INVITED)
        record = ledger.get(key)
    assert record is not None
    assert record.state == "failed"
    assert "dead-store-password-not-real" not in str(record.error)
    assert sandbox.request_count == 0


def test_an_injected_pacer_wins_over_the_store_and_stays_open(store: Any) -> None:
    config = shared("http://127.0.0.1:9", store, rate_limit=0.5)
    shared_pacer = invites.from_config(config)._pacer
    assert isinstance(shared_pacer, RedisPacer)
    provider_class = type(invites.from_config(config))

    with provider_class(invites.from_config(config).settings, pacer=shared_pacer) as provider:
        assert provider._pacer is shared_pacer
        assert provider._store_pacer is None
        assert shared_pacer.reserve() == 0.0
    # Closing the provider left the pacer it was given open: its owner still reserves through it.
    assert shared_pacer._client is not None
    assert 1.5 < shared_pacer.reserve() <= 2.0
    shared_pacer.close()


def test_closing_the_provider_closes_the_store_client(store: Any) -> None:
    provider = invites.from_config(shared("http://127.0.0.1:9", store, rate_limit=5))
    pacer = provider._pacer
    assert isinstance(pacer, RedisPacer)
    pacer.reserve()
    assert pacer._client is not None

    provider.close()

    assert pacer._client is None
    assert pacer.reserve() == 0.0  # reopened on demand, as the provider's own clients are


# -- without a server: configuration, the extra, the command line ------------------------------


def test_without_redis_py_the_store_is_a_configuration_error_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(sys.modules, "invites._pacing.redis_store")
    monkeypatch.setitem(sys.modules, "redis", None)  # as if the redis extra were not installed
    config = vendor_config("tenant_api", "http://127.0.0.1:9", rate_limit_store=STORE)

    with pytest.raises(invites.ConfigurationError, match=r"invites\[redis\]") as caught:
        invites.from_config(config)

    assert caught.value.problems[0].startswith("rate_limit_store: ")
    # Without a store, nothing needs redis-py.
    provider = invites.from_config(vendor_config("tenant_api", "http://127.0.0.1:9"))
    assert isinstance(provider._pacer, Throttle)


def test_importing_and_building_without_a_store_never_loads_redis() -> None:
    code = (
        "import sys, invites; "
        "invites.from_config({'provider': 'tenant_api', 'base_url': 'http://127.0.0.1:9', "
        "'token': 'test-token-not-real', 'tenant_id': '0b5e7c1a-1111-4a4a-8b8b-000000000001'}); "
        "print(sorted(m for m in sys.modules if m.partition('.')[0] == 'redis' or m in STORE))"
    )
    store = (
        "invites._pacing.redis_store",
        "invites._pacing.redis_script",
        "invites._pacing.adaptive",
    )
    code = f"STORE = {store!r}; {code}"
    output = subprocess.run(  # noqa: S603 (this interpreter, the code above)
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout

    assert output.strip() == "[]"


def test_check_config_lists_a_profile_with_a_store_and_hides_its_password(
    tmp_path: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Building the profile connects to nothing (the pacer connects on first use); check-config
    # then asks the store, which does not answer here, and names it without its credentials.
    monkeypatch.setenv("ACME_IDP_KEY", "test-token-not-real")
    path = tmp_path / "invites.toml"
    text = f"""\
[profiles.acme]
provider = "tenant_api"
base_url = "https://idp.acme.example"
tenant_id = "0b5e7c1a-1111-4a4a-8b8b-000000000001"
token_env = "ACME_IDP_KEY"
rate_limit = 50
rate_limit_store = "redis://someone:{PASSWORD}@127.0.0.1:1/2"
rate_limit_fallback = "local"
"""
    path.write_text(text, encoding="utf-8")

    code = cli_main(["check-config", "--config", str(path)])

    out, err = capsys.readouterr()
    assert code == 1, err
    assert "valid, 1 profile" in out
    assert "acme" in out
    assert "rate_limit_store redis://127.0.0.1:1/2" in err
    assert PASSWORD not in out + err
    assert "someone" not in out + err

    path.write_text(text.replace("127.0.0.1:1/2", "127.0.0.1:1/db-two"), encoding="utf-8")
    code = cli_main(["check-config", "--config", str(path)])

    out, err = capsys.readouterr()
    assert code == 2
    assert "rate_limit_store: has an invalid database number" in err
    assert PASSWORD not in out + err


def test_a_bad_fallback_or_prefix_is_named(tmp_path: Any) -> None:
    config = vendor_config(
        "tenant_api",
        "http://127.0.0.1:9",
        rate_limit_store=STORE,
        rate_limit_fallback="retry",
        rate_limit_key_prefix=" ",
    )

    with pytest.raises(invites.ConfigurationError) as caught:
        invites.from_config(config)

    problems = "\n".join(caught.value.problems)
    assert "rate_limit_fallback: must be one of 'fail', 'local'" in problems
    assert "rate_limit_key_prefix: must be non-empty" in problems
