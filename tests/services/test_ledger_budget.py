"""The per-user budget in the ledger: counted over every run, checked with the claim, upgraded in.

Contract tests run on every implementation (SQLite and PostgreSQL); the upgrade of a ledger an
older version created runs on both stores.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _support.services import fresh_postgres_url

from invites import ResendResult, ResendTooSoon, UserNotFound
from invites.ledger import Budget, Claim, Ledger, RecordKey, open_ledger
from invites.ledger._budget import budget_of, parse_limit
from invites.ledger._sqlite import SQLiteLedger

LEDGERS: dict[str, Callable[[Path], Ledger]] = {
    "sqlite": lambda tmp: open_ledger(tmp / "ledger.db"),
    "postgres": lambda tmp: open_ledger(fresh_postgres_url()),
}
IDENTITY = '{"vendor":"fake"}'
ONE_AN_HOUR = Budget(limit=1, window=3600.0, text="1/1h")
TWO_AN_HOUR = Budget(limit=2, window=3600.0, text="2/1h")


@pytest.fixture(params=sorted(LEDGERS))
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    with LEDGERS[request.param](tmp_path) as opened:
        yield opened


def key(run: str, user_id: str = "u-1", identity: str = IDENTITY) -> RecordKey:
    return RecordKey(run=run, identity=identity, user_id=user_id)


def sent(ledger: Ledger, run: str, budget: Budget, user_id: str = "u-1") -> Claim:
    """Claim under ``budget`` and, when granted, record it sent."""
    claim = ledger.claim(key(run, user_id), owner=run, lease=60, budget=budget)
    if claim.granted:
        result = ResendResult(provider="fake", user_id=user_id, message="sent")
        ledger.settle(key(run, user_id), "sent", owner=run, result=result)
    return claim


# -- the setting's text ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1/24h", (1, 86400.0)),
        ("3/7d", (3, 604800.0)),
        (" 2 / 90s ", (2, 90.0)),
        ("1/h", (1, 3600.0)),
    ],
)
def test_limits_read_as_count_and_window(text: str, expected: tuple[int, float]) -> None:
    assert parse_limit(text) == expected


@pytest.mark.parametrize("text", ["", "1", "1/24", "0/1h", "1/0h", "-1/1h", "1/1w", "a/1h"])
def test_bad_limits_are_refused_with_the_expected_form(text: str) -> None:
    with pytest.raises(ValueError, match=r"N/window|above zero"):
        parse_limit(text)


def test_the_refusal_says_when_one_more_fits() -> None:
    budget = budget_of("2/1h")
    assert budget is not None
    assert budget.refusal([100.0], now=200.0) is None
    too_soon = budget.refusal([100.0, 150.0, -5000.0], now=200.0)
    assert too_soon is not None
    assert too_soon.sends == 2
    assert too_soon.last_sent_at == 150.0
    assert too_soon.retry_after == pytest.approx(100.0 + 3600.0 - 200.0)


# -- the contract ---------------------------------------------------------------------------------


def test_two_an_hour_allows_exactly_two_across_runs(ledger: Ledger) -> None:
    assert sent(ledger, "monday", TWO_AN_HOUR).granted
    second = sent(ledger, "nightly", TWO_AN_HOUR)
    assert second.granted
    third = ledger.claim(key("support"), owner="support", lease=60, budget=TWO_AN_HOUR)

    assert not third.granted
    assert third.too_soon is not None
    assert third.too_soon.sends == 2
    assert second.record.claimed_at is not None
    assert third.too_soon.last_sent_at == pytest.approx(second.record.claimed_at)
    assert 3590 < third.too_soon.retry_after <= 3600
    # The refusal is recorded as a failure (nothing was sent) that names the budget.
    assert third.record.state == "failed"
    assert isinstance(third.record.error, ResendTooSoon)
    assert third.record.error.retry_after == pytest.approx(third.too_soon.retry_after, abs=0.01)
    assert third.record.error.details["last_sent_at"] == pytest.approx(second.record.claimed_at)
    stored = ledger.get(key("support"))
    assert stored is not None
    assert stored.state == "failed"
    assert isinstance(stored.error, ResendTooSoon)


def test_other_users_and_other_identities_have_budgets_of_their_own(ledger: Ledger) -> None:
    assert sent(ledger, "monday", ONE_AN_HOUR).granted
    assert sent(ledger, "nightly", ONE_AN_HOUR, user_id="u-2").granted
    other = ledger.claim(
        key("nightly", identity='{"vendor":"other"}'), owner="x", lease=60, budget=ONE_AN_HOUR
    )
    assert other.granted


def test_failed_and_already_verified_do_not_count_unknown_and_intents_do(ledger: Ledger) -> None:
    ledger.claim(key("a"), owner="a", lease=60, budget=ONE_AN_HOUR)
    ledger.settle(key("a"), "failed", owner="a", error=UserNotFound("no"))
    ledger.claim(key("b"), owner="b", lease=60, budget=ONE_AN_HOUR)
    ledger.settle(key("b"), "already_verified", owner="b")
    assert ledger.claim(key("c"), owner="c", lease=60, budget=ONE_AN_HOUR).granted  # an intent
    assert ledger.claim(key("d"), owner="d", lease=60, budget=ONE_AN_HOUR).too_soon is not None
    ledger.settle(key("c"), "unknown", owner="c")
    assert ledger.claim(key("e"), owner="e", lease=60, budget=ONE_AN_HOUR).too_soon is not None


def test_a_refused_key_is_claimed_again_when_the_budget_allows(ledger: Ledger) -> None:
    sent(ledger, "monday", ONE_AN_HOUR)
    refused = ledger.claim(key("nightly"), owner="n", lease=60, budget=ONE_AN_HOUR)
    assert refused.too_soon is not None
    again = ledger.claim(key("nightly"), owner="n", lease=60, budget=TWO_AN_HOUR)
    assert again.granted
    assert again.previous is not None
    assert isinstance(again.previous.error, ResendTooSoon)


def test_a_settled_key_replays_before_the_budget_is_asked(ledger: Ledger) -> None:
    sent(ledger, "monday", ONE_AN_HOUR)
    replay = ledger.claim(key("monday"), owner="m", lease=60, budget=ONE_AN_HOUR)
    assert not replay.granted
    assert replay.too_soon is None
    assert replay.record.state == "sent"


def test_an_unknown_outcome_is_kept_when_the_budget_refuses_its_retry(ledger: Ledger) -> None:
    ledger.claim(key("monday"), owner="m", lease=60, budget=ONE_AN_HOUR)
    ledger.settle(key("monday"), "unknown", owner="m")
    retry = ledger.claim(
        key("monday"), owner="m2", lease=60, retry_unknown=True, budget=ONE_AN_HOUR
    )
    assert retry.too_soon is not None
    assert retry.record.state == "unknown"  # the email may have gone: never turned into failed


def test_ignoring_the_budget_sends_and_records_the_override(ledger: Ledger) -> None:
    sent(ledger, "monday", ONE_AN_HOUR)
    within = Budget(limit=5, window=3600.0, text="5/1h", ignore=True)
    over = Budget(limit=1, window=3600.0, text="1/1h", ignore=True)
    fits = ledger.claim(key("a"), owner="a", lease=60, budget=within)
    overriding = ledger.claim(key("b"), owner="b", lease=60, budget=over)

    assert fits.granted
    assert not fits.record.budget_overridden  # nothing was overridden
    assert overriding.granted
    assert overriding.record.budget_overridden
    stored = ledger.get(key("b"))
    assert stored is not None
    assert stored.budget_overridden
    assert [r.key.run for r in ledger.records(user_id="u-1") if r.budget_overridden] == ["b"]


def test_claims_without_a_budget_are_counted_by_later_budgets(ledger: Ledger) -> None:
    ledger.claim(key("plain"), owner="p", lease=60)
    assert ledger.claim(key("b"), owner="b", lease=60, budget=ONE_AN_HOUR).too_soon is not None


def test_racing_runs_for_one_user_are_granted_once(ledger: Ledger) -> None:
    claims: list[Claim] = []
    start = threading.Barrier(8)

    def claim(run: str) -> None:
        start.wait()
        claims.append(ledger.claim(key(run), owner=run, lease=60, budget=ONE_AN_HOUR))

    threads = [threading.Thread(target=claim, args=(f"run-{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(claim.granted for claim in claims) == 1
    assert sum(claim.too_soon is not None for claim in claims) == 7


def test_racing_tasks_for_one_user_are_granted_once(ledger: Ledger) -> None:
    import asyncio

    async def race() -> list[Claim]:
        return await asyncio.gather(
            *(
                ledger.aclaim(key(f"run-{i}"), owner=f"o-{i}", lease=60, budget=TWO_AN_HOUR)
                for i in range(6)
            )
        )

    claims = asyncio.run(race())
    assert sum(claim.granted for claim in claims) == 2


def test_the_window_slides_on_the_ledgers_clock(tmp_path: Path) -> None:
    now = [1_000_000.0]
    with SQLiteLedger(tmp_path / "ledger.db", clock=lambda: now[0]) as ledger:
        sent(ledger, "a", ONE_AN_HOUR)
        now[0] += 3599.0
        refused = ledger.claim(key("b"), owner="b", lease=60, budget=ONE_AN_HOUR)
        assert refused.too_soon is not None
        assert refused.too_soon.retry_after == pytest.approx(1.0)
        now[0] += 1.0
        assert ledger.claim(key("b"), owner="b", lease=60, budget=ONE_AN_HOUR).granted


# -- upgrading a ledger an older version created ------------------------------------------------

_V1_SQLITE = """
CREATE TABLE invites_ledger (
    run TEXT NOT NULL, identity TEXT NOT NULL, user_id TEXT NOT NULL,
    state TEXT NOT NULL
        CHECK (state IN ('intent', 'sent', 'already_verified', 'failed', 'unknown')),
    owner TEXT NOT NULL, lease_until REAL NOT NULL, claims INTEGER NOT NULL,
    result TEXT, error TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL,
    PRIMARY KEY (run, identity, user_id));
CREATE INDEX invites_ledger_user ON invites_ledger (user_id);
PRAGMA user_version = 1;
"""


def test_a_version_1_sqlite_file_is_upgraded_and_its_sends_count(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript(_V1_SQLITE)
    old.execute(
        "INSERT INTO invites_ledger VALUES (?, ?, 'u-1', 'sent', 'o', 0, 1, NULL, NULL, ?, ?)",
        ("old-run", IDENTITY, 1.0, _now()),
    )
    old.commit()
    old.close()

    with open_ledger(path) as ledger:
        (record,) = ledger.records()
        assert record.claimed_at is None  # never recorded: the budget counts its updated_at
        assert not record.budget_overridden
        assert ledger.claim(key("new"), owner="n", lease=60, budget=ONE_AN_HOUR).too_soon
        assert ledger.claim(key("new", "u-2"), owner="n", lease=60, budget=ONE_AN_HOUR).granted
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA user_version").fetchone() == (3,)
    with open_ledger(path) as ledger:  # opening an upgraded file again changes nothing
        assert len(list(ledger.records())) == 3


def test_a_postgres_table_of_an_older_version_is_upgraded_in_place() -> None:
    psycopg = pytest.importorskip("psycopg")
    url = fresh_postgres_url()
    schema = url.rsplit("schema=", 1)[1]
    with psycopg.connect(url.split("?")[0], autocommit=True) as connection:
        connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        connection.execute(
            f'CREATE TABLE "{schema}".invites_ledger (seq bigint GENERATED ALWAYS AS IDENTITY, '
            "run text NOT NULL, identity text NOT NULL, user_id text NOT NULL, "
            "state text NOT NULL, owner text NOT NULL, lease_until double precision NOT NULL, "
            "claims integer NOT NULL, result text, error text, previous jsonb, "
            "created_at double precision NOT NULL, updated_at double precision NOT NULL, "
            "PRIMARY KEY (run, identity, user_id))"
        )
        connection.execute(
            f'INSERT INTO "{schema}".invites_ledger (run, identity, user_id, state, owner, '  # noqa: S608
            "lease_until, claims, created_at, updated_at) "
            "VALUES ('old-run', %s, 'u-1', 'sent', 'o', 0, 1, 1, %s)",
            (IDENTITY, _now()),
        )
    with open_ledger(url) as ledger:
        (record,) = ledger.records()
        assert record.claimed_at is None
        assert ledger.claim(key("new"), owner="n", lease=60, budget=ONE_AN_HOUR).too_soon
        granted = ledger.claim(key("new", "u-2"), owner="n", lease=60, budget=ONE_AN_HOUR)
        assert granted.granted
        assert granted.record.claimed_at is not None


def _now() -> float:
    import time

    return time.time()
