"""Resends as Celery tasks: many workers, one ledger, each invitee sent at most once per run.

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
``rate_limit_store`` the shared pacing. Secrets stay with the workers; a message carries a
profile name, an invitee and a key.

Recipe::

    # tasks.py, imported by the workers and by whoever sends
    from celery import Celery
    import invites.celery

    app = Celery("invites", broker="amqp://guest:guest@127.0.0.1:5672//")
    invites.celery.configure(app, profiles="/etc/invites.toml")

    # a worker:  celery -A tasks worker --pool threads --concurrency 16
    # one resend:  invites.celery.resend.delay("acme", {"user_id": "u-1"}, "welcome-u-1-2024-05")
    # a file:     for outcome in invites.celery.fan_out(app, rows, run="2024-05-monday"): ...
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import attrs
import cattrs
from celery import Celery, Task, shared_task
from celery.signals import worker_process_shutdown

from ._protocol import InviteProvider
from .bulk import Outcome
from .config import Profiles, load_profiles
from .errors import ConfigurationError, ConnectionFailed, InviteError, OutcomeUnknown
from .ledger import SETTLED, Claim, Ledger, Record, RecordKey, may_claim, open_ledger
from .ledger._guard import Guard, Guarded
from .models import Invitee, as_invitee

__all__ = [
    "TASK_NAME",
    "configure",
    "fan_out",
    "invitee_from_json",
    "invitee_to_json",
    "outcome_json",
    "resend",
]

#: The registered name of :func:`resend`.
TASK_NAME: Final = "invites.resend"
#: Environment variables a worker reads when its app does not say.
PROFILES_ENV: Final = "INVITES_PROFILES"
LEDGER_ENV: Final = "INVITES_LEDGER"
#: Attempts a task makes when the ledger itself cannot be reached (nothing was claimed).
LEDGER_RETRIES: Final = 5

_converter = cattrs.Converter(detailed_validation=False)


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


# -- invitees and outcomes as JSON ---------------------------------------------------------------


def invitee_to_json(invitee: Invitee | str) -> dict[str, Any]:
    """``invitee`` as a JSON-able mapping (unset fields left out)."""
    data: dict[str, Any] = _converter.unstructure(as_invitee(invitee))
    if data.get("access") is not None:
        data["access"] = {k: v for k, v in data["access"].items() if v is not None}
    return {key: value for key, value in data.items() if value is not None}


def invitee_from_json(data: Mapping[str, Any] | str) -> Invitee:
    """The :class:`~invites.Invitee` :func:`invitee_to_json` wrote (or a bare user id).

    Raises :class:`~invites.InvalidInvitee` for an unsafe id, ``TypeError`` / ``ValueError``
    for anything else that is not an invitee.
    """
    if isinstance(data, str):
        return Invitee(user_id=data)
    if not isinstance(data, Mapping):
        raise TypeError(f"expected a mapping or a user id, got {type(data).__name__}")
    unknown = set(data) - {field.name for field in attrs.fields(Invitee)}
    if unknown:
        raise ValueError(f"unknown invitee fields: {', '.join(sorted(unknown))}")
    try:
        return _converter.structure(dict(data), Invitee)
    except (KeyError, AttributeError) as exc:
        raise ValueError(f"not an invitee ({type(exc).__name__}: {exc})") from None


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    """One outcome as the CLI prints it: user_id, outcome, error (class name), message,
    status_code, skipped, resent_unknown."""
    error, result = outcome.error, outcome.result
    message: str | None = None
    status_code: int | None = None
    if result is not None:
        message, status_code = result.message, result.status_code
    elif isinstance(error, InviteError):
        message, status_code = error.message, error.status_code
    elif error is not None:
        message = str(error)
    return {
        "user_id": outcome.user_id,
        "outcome": outcome.status,
        "error": None if error is None else type(error).__name__,
        "message": message,
        "status_code": status_code,
        "skipped": outcome.skipped,
        "resent_unknown": outcome.resent_unknown,
    }


def _outcome(invitee: Invitee | None, user_id: str, guarded: Guarded) -> Outcome:
    return Outcome(
        invitee=invitee,
        user_id=user_id,
        status=guarded.status,
        result=guarded.result,
        error=guarded.error,
        skipped=guarded.skipped,
        resent_unknown=guarded.resent_unknown,
    )


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
        path = _setting(app, "invites_profiles", PROFILES_ENV)
        if path is None:
            raise ConfigurationError(
                f"invites: no profiles file; set app.conf.invites_profiles or ${PROFILES_ENV}"
            )
        with self._lock:
            self._after_fork()
            profiles = self._profiles.get(path)
            if profiles is None:
                profiles = self._profiles[path] = load_profiles(path)
            if profile not in profiles:
                raise ConfigurationError(f"{path}: no profile named {profile!r}")
            provider = profiles[profile]
            url = provider.settings.ledger or _setting(app, "invites_ledger", LEDGER_ENV)
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


_RESOURCES: Final = _Resources()


@worker_process_shutdown.connect
def _close_resources(**_: object) -> None:
    _RESOURCES.close()


def _setting(app: Celery, name: str, env: str) -> str | None:
    value = app.conf.get(name) or os.environ.get(env)
    return str(value) if value else None


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
) -> dict[str, Any]:
    """Resend to ``invitee`` (see :func:`invitee_to_json`) through the worker's profile
    ``profile``, at most once per ``idempotency_key`` (a bulk run's name, or one resend's key);
    return :func:`outcome_json` of its outcome.

    Safe to deliver any number of times: only the delivery granted the ledger's claim sends.
    ``identity``, when given (:func:`~invites.ledger.provider_identity` of the sender's
    provider), must match the worker's profile; otherwise nothing is sent and the outcome is
    ``failed``. When the ledger cannot be reached nothing is claimed or sent, and the task is
    retried (up to :data:`LEDGER_RETRIES` times, then it fails with the ledger's error).
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
    if identity is not None and identity != guard.identity:
        guarded = _wrong_identity(guard, idempotency_key, parsed.user_id, identity, profile)
        return outcome_json(_outcome(parsed, parsed.user_id, guarded))
    try:
        _settle_if_lost(guard, guard.key(idempotency_key, parsed.user_id))
    except ConnectionFailed as exc:
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries)) from None
    guarded = guard.run(idempotency_key, parsed, provider.resend_invite)
    error = guarded.error
    if guarded.status == "failed" and isinstance(error, ConnectionFailed) and _ledgers(error):
        raise self.retry(exc=error, countdown=_backoff(self.request.retries))
    return outcome_json(_outcome(parsed, parsed.user_id, guarded))


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


def _settle_if_lost(guard: Guard, key: RecordKey) -> None:
    """Record ``unknown`` for an intent whose owner was a process of this host that is gone.

    The settle is conditional on that owner still holding the intent, so a live owner's outcome
    is never overwritten; the email may have gone, so ``unknown`` is never resent unasked.
    """
    record = guard.ledger.get(key)
    if record is None or record.state != "intent" or not _owner_lost(record.owner):
        return
    lost = OutcomeUnknown(
        "the worker that claimed this resend was lost before recording its outcome; "
        "the email may have been sent",
        provider=guard.provider_name,
        user_id=key.user_id,
        details={"run": key.run, "owner": record.owner},
    )
    guard.ledger.settle(key, "unknown", owner=record.owner, error=lost)


def _owner_lost(owner: str) -> bool:
    """Whether the process behind a :func:`~invites.ledger.new_owner` string is known gone."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False  # another machine: only its lease can tell
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        pass  # it exists, owned by another user
    return _zombie(pid)


def _zombie(pid: int) -> bool:
    """Whether ``pid`` has exited and only awaits its parent's ``wait`` (Linux ``/proc``)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    # The state follows the parenthesised command name, which may itself hold parentheses.
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


# -- fanning a run out to the workers ------------------------------------------------------------


@attrs.define
class _Pending:
    invitee: Invitee
    key: RecordKey
    claims_before: int
    repeats: int = 0


def fan_out(
    app: Celery,
    invitees: Iterable[Invitee | str],
    *,
    run: str,
    profile: str | None = None,
    profiles: str | os.PathLike[str] | Profiles | None = None,
    ledger: Ledger | str | None = None,
    retry_unknown: bool = False,
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
    names the queue the workers consume (default: the app's default queue).
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
        else _setting(app, "invites_profiles", PROFILES_ENV)
    )
    if path is None:
        raise ConfigurationError(f"no profiles file: pass profiles= or set ${PROFILES_ENV}")
    return load_profiles(path)


def _ledger(app: Celery, provider: InviteProvider, ledger: Ledger | str | None) -> Ledger:
    if isinstance(ledger, Ledger):
        return ledger
    url = ledger or getattr(getattr(provider, "settings", None), "ledger", None)
    url = url or _setting(app, "invites_ledger", LEDGER_ENV)
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

    def emit(self, outcome: Outcome) -> Outcome:
        if self.on_outcome is not None:
            self.on_outcome(outcome)
        return outcome

    def send(self, invitees: Iterable[Invitee | str]) -> Iterator[Outcome]:
        for item in invitees:
            invitee = as_invitee(item)
            waiting = self.pending.get(invitee.user_id)
            if waiting is not None:
                waiting.repeats += 1
                continue
            key = self.guard.key(self.run, invitee.user_id)
            record = self.guard.ledger.get(key)
            now = time.time()
            if not may_claim(record, now=now, retry_unknown=self.guard.retry_unknown):
                assert record is not None
                claim = Claim(granted=False, record=record, in_flight=record.in_flight(now))
                yield self.emit(_outcome(invitee, invitee.user_id, self.guard.replay(claim)))
                continue
            self.app.send_task(
                TASK_NAME,
                args=(self.profile, invitee_to_json(invitee), self.run),
                kwargs={"retry_unknown": self.guard.retry_unknown, "identity": self.guard.identity},
                task_id=str(uuid.uuid4()),
                queue=self.queue,
            )
            self.pending[invitee.user_id] = _Pending(invitee, key, record.claims if record else 0)

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
        user_id = waiting.invitee.user_id
        yield self.emit(_outcome(waiting.invitee, user_id, guarded))
        for _ in range(waiting.repeats):
            yield self.emit(_outcome(waiting.invitee, user_id, attrs.evolve(guarded, skipped=True)))


def _done(record: Record, waiting: _Pending) -> bool:
    if record.state == "intent":
        return False
    return record.claims > waiting.claims_before or record.state in SETTLED


def _from_record(record: Record) -> Guarded:
    return Guarded(
        status=record.status(),
        result=record.result,
        error=record.error,
    )
