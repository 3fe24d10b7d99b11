"""Resends as Celery tasks: many workers, one ledger, each invitee sent at most once per run.

This module holds the task and the app's configuration; ``fanout`` sends a run's tasks,
``collect`` reads each outcome back from the ledger, ``messages`` is what a task carries
and returns, as JSON.

A broker delivers a task at least once: with ``acks_late`` a task whose worker dies is delivered
again, and a Redis broker redelivers a task that outlives its visibility timeout even while it
still runs. So the broker never decides whether to send; the ledger does. The task claims
``(idempotency key, provider identity, user id)`` before sending and records the outcome after,
exactly as a local bulk run does (:mod:`invites.ledger`). A redelivered task finds the record:
settled, it replays the outcome and sends nothing; an intent whose worker was lost (same host,
process gone) it records as ``unknown``; an intent still in flight it leaves alone.

Workers read their profiles from a TOML file (``app.conf.invites_profiles`` or the
``INVITES_PROFILES`` environment variable): the profile's ``ledger`` key (else
``app.conf.invites_ledger`` / ``INVITES_LEDGER``) names the shared ledger, and its
``rate_limit_store`` (else ``app.conf.invites_rate_limit_store`` / ``INVITES_RATE_LIMIT_STORE``)
the shared pacing. Secrets stay with the workers; a message carries a
profile name, an invitee and a key.

Recipe::

    # tasks.py, imported by the workers and by whoever sends
    from celery import Celery
    import invites.celery

    app = Celery("invites", broker=os.environ["INVITES_BROKER"])   # no password in ps
    invites.celery.configure(app, profiles="/etc/invites.toml")

    # a worker (a node name of its own: two of one name on a broker cannot both run):
    #   celery -A tasks worker --pool threads --concurrency 16 \\
    #       -n "invites-$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')@%h"
    # one resend:  invites.celery.resend.delay("acme", {"user_id": "u-1"}, "welcome-u-1-2024-05")
    # a file:     for outcome in invites.celery.fan_out(app, rows, run="2024-05-monday"): ...
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from typing import Any, Final

import attrs
from celery import Celery, Task, shared_task
from celery.signals import worker_process_shutdown

from .._protocol import InviteProvider
from ..bulk import Outcome
from ..config import Profiles, load_profiles
from ..errors import ConfigurationError, ConnectionFailed, InviteError, OutcomeUnknown
from ..ledger import Claim, Ledger, Record, RecordKey, open_ledger, owner_gone
from ..ledger._guard import Guard, Guarded
from .fanout import (
    LEDGER_ENV,
    PROFILES_ENV,
    STORE_ENV,
    TASK_NAME,
    app_setting,
    configure,
    fan_out,
)
from .messages import guarded_outcome, invitee_from_json, invitee_to_json, outcome_json

__all__ = [
    "TASK_NAME",
    "configure",
    "fan_out",
    "invitee_from_json",
    "invitee_to_json",
    "outcome_json",
    "resend",
]

#: Attempts a task makes when the ledger itself cannot be reached (nothing was claimed).
LEDGER_RETRIES: Final = 5

# -- what a worker process holds -----------------------------------------------------------------


class _Resources:
    """Profiles, providers, ledgers and guards of one worker process, built once and shared by
    its threads; a forked child starts afresh instead of sharing its parent's connections."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._profiles: dict[str, Profiles] = {}
        self._ledgers: dict[str, Ledger] = {}
        self._guards: dict[tuple[str, str, str, bool], Guard] = {}

    def guard(self, app: Celery, profile: str, retry_unknown: bool) -> tuple[Guard, InviteProvider]:
        path = app_setting(app, "invites_profiles", PROFILES_ENV)
        if path is None:
            raise ConfigurationError(
                f"invites: no profiles file; set app.conf.invites_profiles or ${PROFILES_ENV}"
            )
        with self._lock:
            self._after_fork()
            profiles = self._profiles.get(path)
            if profiles is None:
                store = app_setting(app, "invites_rate_limit_store", STORE_ENV)
                profiles = self._profiles[path] = _sharing(load_profiles(path), store)
            if profile not in profiles:
                raise ConfigurationError(f"{path}: no profile named {profile!r}")
            provider = profiles[profile]
            url = provider.settings.ledger or app_setting(app, "invites_ledger", LEDGER_ENV)
            if url is None:
                raise ConfigurationError(
                    f"profile {profile!r}: no ledger; a task resends only under a ledger "
                    f"(the profile's ledger key, app.conf.invites_ledger or ${LEDGER_ENV})"
                )
            key = (path, profile, url, retry_unknown)
            guard = self._guards.get(key)
            if guard is None:
                ledger = self._ledgers.get(url)
                if ledger is None:
                    ledger = self._ledgers[url] = open_ledger(url)
                guard = self._guards[key] = Guard(ledger, provider, retry_unknown=retry_unknown)
            return guard, provider

    def close(self) -> None:
        with self._lock:
            if self._pid != os.getpid():
                return
            for profiles in self._profiles.values():
                profiles.close()
            for ledger in self._ledgers.values():
                ledger.close()
            self._profiles.clear()
            self._ledgers.clear()
            self._guards.clear()

    def _after_fork(self) -> None:
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._profiles, self._ledgers, self._guards = {}, {}, {}


def _sharing(profiles: Profiles, store: str | None) -> Profiles:
    """``profiles``, those without a ``rate_limit_store`` of their own pacing through ``store``
    (from the app or the environment, so that its password is in neither file nor command)."""
    if store is None:
        return profiles
    settings = {name: profiles.settings(name) for name in profiles}
    return Profiles(
        {
            name: each if each.rate_limit_store else attrs.evolve(each, rate_limit_store=store)
            for name, each in settings.items()
        },
        profiles.default_name,
    )


_RESOURCES: Final = _Resources()


@worker_process_shutdown.connect
def _close_resources(**_: object) -> None:
    _RESOURCES.close()


# -- the task ------------------------------------------------------------------------------------


@shared_task(
    name=TASK_NAME,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=LEDGER_RETRIES,
)
def resend(
    self: Task[Any, Any],
    profile: str,
    invitee: Mapping[str, Any] | str,
    idempotency_key: str,
    *,
    retry_unknown: bool = False,
    identity: str | None = None,
    claims: int | None = None,
    ignore_budget: bool = False,
) -> dict[str, Any]:
    """Resend to ``invitee`` (see :func:`invitee_to_json`) through the worker's profile
    ``profile``, at most once per ``idempotency_key`` (a bulk run's name, or one resend's key);
    return :func:`outcome_json` of its outcome.

    Safe to deliver any number of times: only the delivery granted the ledger's claim sends.
    ``identity``, when given (:func:`~invites.ledger.provider_identity` of the sender's
    provider), must match the worker's profile; otherwise nothing is sent and the outcome is
    ``failed``. ``claims``, when given, is the key's claim count when the task was sent: a
    delivery that finds a later claim (an earlier delivery's, or a retry's) replays its outcome
    instead of claiming again, so one task claims at most once and a ``failed`` it records is
    final. When the ledger cannot be reached nothing is claimed or sent, and the task is
    retried (up to :data:`LEDGER_RETRIES` times, then it fails with the ledger's error).
    Under the profile's ``per_user_limit``, a user emailed too recently by any run is not sent
    to: the outcome is ``failed`` and ``skipped`` with ``ResendTooSoon`` (recorded so in the
    ledger); ``ignore_budget`` sends anyway.
    """
    user_id = invitee if isinstance(invitee, str) else str(invitee.get("user_id"))
    try:
        parsed = invitee_from_json(invitee)
    except (InviteError, TypeError, ValueError) as exc:
        return outcome_json(Outcome(invitee=None, user_id=user_id, status="failed", error=exc))
    try:
        guard, provider = _RESOURCES.guard(self.app, profile, retry_unknown)
    except ConnectionFailed as exc:  # the ledger could not be opened: nothing claimed
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries)) from None
    key = guard.key(idempotency_key, parsed.user_id)
    if identity is not None and identity != guard.identity:
        guarded = _wrong_identity(guard, idempotency_key, key.user_id, identity, profile)
        return outcome_json(guarded_outcome(parsed, key.user_id, guarded))
    try:
        record = _settle_if_lost(guard, key)
    except ConnectionFailed as exc:
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries)) from None
    if claims is not None and record is not None and record.claims > claims:
        return outcome_json(guarded_outcome(parsed, key.user_id, _replay(guard, record)))
    guarded = guard.run(
        idempotency_key, parsed, provider.resend_invite, ignore_budget=ignore_budget
    )
    error = guarded.error
    if guarded.status == "failed" and isinstance(error, ConnectionFailed) and _ledgers(error):
        raise self.retry(exc=error, countdown=_backoff(self.request.retries))
    return outcome_json(guarded_outcome(parsed, key.user_id, guarded))


def _backoff(retries: int) -> float:
    return float(min(2**retries, 30))


def _ledgers(error: ConnectionFailed) -> bool:
    """Whether a failure is the ledger's own (nothing was claimed), not the vendor's."""
    return "ledger" in (error.details or {})


def _wrong_identity(guard: Guard, run: str, user_id: str, expected: str, profile: str) -> Guarded:
    """Record, under the sender's key, that this worker's profile resends elsewhere."""
    error = InviteError(
        f"the worker's profile {profile!r} resends to a different vendor, base URL, tenant or "
        "account than the sender's; nothing was sent",
        provider=guard.provider_name,
        user_id=user_id,
    )
    key = RecordKey(run=run, identity=expected, user_id=user_id)
    claim = guard.ledger.claim(key, owner=guard.owner, lease=guard.lease)
    if not claim.granted:
        return guard.replay(claim)
    guard.ledger.settle(key, "failed", owner=guard.owner, error=error)
    return Guarded(status="failed", error=error)


def _replay(guard: Guard, record: Record) -> Guarded:
    """What a delivery that must not claim again reports: the record as it stands."""
    if record.state == "failed":
        return Guarded(status="failed", error=record.error, skipped=True)
    claim = Claim(granted=False, record=record, in_flight=record.in_flight(time.time()))
    return guard.replay(claim)


def _settle_if_lost(guard: Guard, key: RecordKey) -> Record | None:
    """Record ``unknown`` for an intent whose owner was a process of this host that is gone;
    return the key's record as it then stands.

    The settle is conditional on that owner still holding the intent, so a live owner's outcome
    is never overwritten; the email may have gone, so ``unknown`` is never resent unasked.
    """
    record = guard.ledger.get(key)
    if record is None or record.state != "intent" or not owner_gone(record.owner):
        return record
    lost = OutcomeUnknown(
        "the worker that claimed this resend was lost before recording its outcome; "
        "the email may have been sent",
        provider=guard.provider_name,
        user_id=key.user_id,
        details={"run": key.run, "owner": record.owner},
    )
    settled = guard.ledger.settle(key, "unknown", owner=record.owner, error=lost)
    return settled if settled is not None else guard.ledger.get(key)
