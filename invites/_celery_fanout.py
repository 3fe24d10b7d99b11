"""The sending side of the Celery tasks: configuring an app, and fanning a run out to its workers
with one outcome per invitee read back from the shared ledger."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final

import attrs
from celery import Celery

from ._celery_json import guarded_outcome, invitee_to_json
from ._protocol import InviteProvider
from .bulk import Outcome
from .config import Profiles, load_profiles
from .errors import ConfigurationError, OutcomeUnknown, ResendTooSoon
from .ledger import SETTLED, Claim, Ledger, Record, RecordKey, may_claim, open_ledger
from .ledger._guard import Guard, Guarded
from .models import Invitee, as_invitee

#: The registered name of :func:`resend`.
TASK_NAME: Final = "invites.resend"
#: Environment variables a worker reads when its app does not say.
PROFILES_ENV: Final = "INVITES_PROFILES"
LEDGER_ENV: Final = "INVITES_LEDGER"


def configure(
    app: Celery,
    *,
    profiles: str | os.PathLike[str] | None = None,
    ledger: str | None = None,
) -> Celery:
    """Point ``app``'s workers at a profiles file and (for profiles without a ``ledger`` key) a
    ledger URL; set the delivery options the ledger makes safe: ``acks_late`` (a task lost with
    its worker is delivered again) and a prefetch of one (a lost worker holds few tasks)."""
    if profiles is not None:
        app.conf.invites_profiles = os.fspath(profiles)
    if ledger is not None:
        app.conf.invites_ledger = ledger
    app.conf.task_acks_late = True
    app.conf.task_reject_on_worker_lost = True
    app.conf.worker_prefetch_multiplier = 1
    return app


def app_setting(app: Celery, name: str, env: str) -> str | None:
    value = app.conf.get(name) or os.environ.get(env)
    return str(value) if value else None


@attrs.define
class _Pending:
    invitee: Invitee
    key: RecordKey
    claims_before: int
    repeats: int = 0
    #: When the record was last written before the task was sent (None: no record): a budget's
    #: refusal changes no claim count, only this.
    updated_before: float | None = None


def fan_out(
    app: Celery,
    invitees: Iterable[Invitee | str],
    *,
    run: str,
    profile: str | None = None,
    profiles: str | os.PathLike[str] | Profiles | None = None,
    ledger: Ledger | str | None = None,
    retry_unknown: bool = False,
    ignore_budget: bool = False,
    timeout: float = 3600.0,
    poll_interval: float = 0.25,
    on_outcome: Callable[[Outcome], None] | None = None,
    queue: str | None = None,
) -> Iterator[Outcome]:
    """Send one :func:`resend` task per invitee of ``run`` and yield one :class:`~invites.Outcome`
    per invitee, read from the ledger as the workers record them.

    ``profiles`` (a path or loaded :class:`~invites.Profiles`; default: the app's or
    ``$INVITES_PROFILES``) and ``profile`` (default: its default) must name the same vendor,
    base URL and tenant as the workers' profile of that name (checked by the workers). An
    invitee the ledger already settled for ``run`` is not sent again (``skipped``); a repeated
    user id is sent once and its repeats get the same outcome, ``skipped``. An invitee without
    an outcome after ``timeout`` seconds is ``unknown`` (its task may still run). ``queue``
    names the queue the workers consume (default: the app's default queue). Under the
    profile's ``per_user_limit`` an invitee the budget refused is ``failed``, ``skipped``, with
    :class:`~invites.ResendTooSoon`; ``ignore_budget`` tells the workers to send anyway.
    """
    loaded = _profiles(app, profiles)
    name = profile or loaded.default_name
    if name is None or name not in loaded:
        raise ConfigurationError(f"no profile named {name!r} (profiles: {', '.join(loaded)})")
    provider = loaded[name]
    opened = _ledger(app, provider, ledger)
    try:
        guard = Guard(opened, provider, retry_unknown=retry_unknown)
        sender = _FanOut(app, guard, name, run, on_outcome, queue)
        sender.ignore_budget = ignore_budget
        yield from sender.send(invitees)
        yield from sender.collect(time.monotonic() + timeout, poll_interval)
    finally:
        if opened is not ledger:
            opened.close()
        if loaded is not profiles:
            loaded.close()


def _profiles(app: Celery, profiles: str | os.PathLike[str] | Profiles | None) -> Profiles:
    if isinstance(profiles, Profiles):
        return profiles
    path = (
        os.fspath(profiles)
        if profiles is not None
        else app_setting(app, "invites_profiles", PROFILES_ENV)
    )
    if path is None:
        raise ConfigurationError(f"no profiles file: pass profiles= or set ${PROFILES_ENV}")
    return load_profiles(path)


def _ledger(app: Celery, provider: InviteProvider, ledger: Ledger | str | None) -> Ledger:
    if isinstance(ledger, Ledger):
        return ledger
    url = ledger or getattr(getattr(provider, "settings", None), "ledger", None)
    url = url or app_setting(app, "invites_ledger", LEDGER_ENV)
    if url is None:
        raise ConfigurationError("fan_out needs a ledger the workers share (ledger=)")
    return open_ledger(url)


class _FanOut:
    """One fanned-out run: the tasks sent, the outcomes still awaited."""

    def __init__(
        self,
        app: Celery,
        guard: Guard,
        profile: str,
        run: str,
        on_outcome: Callable[[Outcome], None] | None,
        queue: str | None = None,
    ) -> None:
        if not run:
            raise ValueError("fan_out needs a run name")
        self.app = app
        self.guard = guard
        self.profile = profile
        self.run = run
        self.on_outcome = on_outcome
        self.queue = queue
        self.pending: dict[str, _Pending] = {}
        self.ignore_budget = False

    def emit(self, outcome: Outcome) -> Outcome:
        if self.on_outcome is not None:
            self.on_outcome(outcome)
        return outcome

    def send(self, invitees: Iterable[Invitee | str]) -> Iterator[Outcome]:
        for item in invitees:
            invitee = as_invitee(item)
            key = self.guard.key(self.run, invitee.user_id)
            waiting = self.pending.get(key.user_id)
            if waiting is not None:
                waiting.repeats += 1
                continue
            record = self.guard.ledger.get(key)
            now = time.time()
            if not may_claim(record, now=now, retry_unknown=self.guard.retry_unknown):
                assert record is not None
                claim = Claim(granted=False, record=record, in_flight=record.in_flight(now))
                yield self.emit(guarded_outcome(invitee, key.user_id, self.guard.replay(claim)))
                continue
            options: dict[str, Any] = {
                "retry_unknown": self.guard.retry_unknown,
                "identity": self.guard.identity,
            }
            if self.ignore_budget:  # only then: a worker of an older version knows no such option
                options["ignore_budget"] = True
            self.app.send_task(
                TASK_NAME,
                args=(self.profile, invitee_to_json(invitee), self.run),
                kwargs=options,
                task_id=str(uuid.uuid4()),
                queue=self.queue,
            )
            self.pending[key.user_id] = _Pending(
                invitee,
                key,
                record.claims if record else 0,
                updated_before=record.updated_at if record else None,
            )

    def collect(self, deadline: float, poll_interval: float) -> Iterator[Outcome]:
        while self.pending:
            for record in self.guard.ledger.records(run=self.run):
                waiting = self.pending.get(record.key.user_id)
                if waiting is None or record.key != waiting.key or not _done(record, waiting):
                    continue
                del self.pending[record.key.user_id]
                yield from self._settled(waiting, _from_record(record))
            if not self.pending:
                return
            if time.monotonic() >= deadline:
                break
            time.sleep(poll_interval)
        for waiting in list(self.pending.values()):
            late = OutcomeUnknown(
                "no outcome recorded in time; its task may still run",
                provider=self.guard.provider_name,
                user_id=waiting.invitee.user_id,
                details={"run": self.run},
            )
            yield from self._settled(waiting, Guarded(status="unknown", error=late))
        self.pending.clear()

    def _settled(self, waiting: _Pending, guarded: Guarded) -> Iterator[Outcome]:
        user_id = waiting.key.user_id
        yield self.emit(guarded_outcome(waiting.invitee, user_id, guarded))
        for _ in range(waiting.repeats):
            yield self.emit(
                guarded_outcome(waiting.invitee, user_id, attrs.evolve(guarded, skipped=True))
            )


def _done(record: Record, waiting: _Pending) -> bool:
    if record.state == "intent":
        return False
    if isinstance(record.error, ResendTooSoon):  # refused now, unless an older refusal
        return record.updated_at != waiting.updated_before
    return record.claims > waiting.claims_before or record.state in SETTLED


def _from_record(record: Record) -> Guarded:
    return Guarded(
        status=record.status(),
        result=record.result,
        error=record.error,
        skipped=isinstance(record.error, ResendTooSoon),  # the budget refused it: nothing sent
    )
