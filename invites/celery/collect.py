"""One fanned-out run on the sending side: a task per invitee, then each outcome read back from
the ledger once it is final.

What the sender prints is never contradicted later:

- each task claims its key at most once (it carries the claim count the sender saw, and a
  delivery that finds a later claim replays instead), so a recorded ``failed`` after that claim is
  the task's last word: no redelivery or retry of it can send;
- an intent is awaited until it is settled, until its lease ends, or until its owner is known to
  be gone (a process of this host that ended); the sender then records ``unknown`` in the ledger
  itself, only if that owner still holds the intent, and prints that;
- outcomes are read as the records written since the last poll (with an overlap for commits
  still on their way), so a poll costs what changed, not the run's size;
- a ledger that does not answer is asked again with backoff until the wait is over.
"""

from __future__ import annotations

import functools
import logging
import math
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Final, TypeVar

import attrs
from celery import Celery
from kombu import Queue

from ..bulk import Outcome
from ..errors import ConnectionFailed, InviteError, OutcomeUnknown, ResendTooSoon
from ..ledger import SETTLED, Record, RecordKey, owner_gone
from ..ledger._guard import Guard, Guarded
from ..models import Invitee, as_invitee
from .messages import guarded_outcome, invitee_to_json

__all__ = ["Collector", "queue_consumers"]

logger = logging.getLogger("invites.celery")

#: The registered name of the resend task.
TASK_NAME: Final = "invites.resend"
#: Records written this long before the newest one seen are read again: a commit stamped
#: earlier may become visible after a later one.
OVERLAP: Final = 5.0
#: The first poll asks for records written since this long before the sender started: older
#: ones (an earlier run's, under a rerun) are not read, and the store's clock may be this far
#: behind this machine's.
CLOCK_SKEW: Final = 300.0
#: How often a waiting sender says how far it is, and checks that the queue has a consumer.
PROGRESS_EVERY: Final = 10.0
#: An intent counts as expired this long after its lease, for clocks a little apart.
CLOCK_SLACK: Final = 1.0
_BACKOFF_FIRST: Final = 0.5
_BACKOFF_MAX: Final = 15.0

_T = TypeVar("_T")


@attrs.define
class _Pending:
    invitee: Invitee
    key: RecordKey
    claims_before: int  # the outcome awaited is that of a claim after this count
    written_before: float = 0.0  # when its record was last written, as the sender saw it
    repeats: int = 0
    intent: Record | None = None  # the awaited claim's intent, once seen


class LedgerGone(Exception):
    """The ledger did not answer until the wait was over."""


class Collector:
    """One fanned-out run: the tasks sent, the outcomes still awaited."""

    def __init__(
        self,
        app: Celery,
        guard: Guard,
        profile: str,
        run: str,
        *,
        on_outcome: Callable[[Outcome], None] | None = None,
        note: Callable[[str], None] | None = None,
        queue: str | None = None,
        deadline: float = math.inf,
        ignore_budget: bool = False,
    ) -> None:
        if not run:
            raise ValueError("fan_out needs a run name")
        self.app = app
        self.guard = guard
        self.ledger = guard.ledger
        self.profile = profile
        self.run = run
        self.on_outcome = on_outcome
        self.note: Callable[[str], None] = note or logger.warning
        self.queue = queue or str(app.conf.task_default_queue or "celery")
        self.explicit_queue = queue
        self.deadline = deadline
        self.ignore_budget = ignore_budget
        self.pending: dict[str, _Pending] = {}
        #: The pending whose claim's intent was seen, by user id: the only ones a poll checks for
        #: an ended lease or owner, so a poll's work follows the claims in flight, not the run.
        self.intents: dict[str, _Pending] = {}
        self.started = time.time()
        self.sent = 0
        self.recorded = 0

    # -- sending -------------------------------------------------------------------------------

    def send(self, invitees: Iterable[Invitee | str]) -> Iterator[Outcome]:
        for item in invitees:
            invitee = as_invitee(item)
            key = self.guard.key(self.run, invitee.user_id)  # the vendor's canonical user id
            waiting = self.pending.get(key.user_id)
            if waiting is not None:
                waiting.repeats += 1
                continue
            record = self._ask(functools.partial(self.ledger.get, key))
            final = self._final_before_sending(record)
            if final is not None:
                yield self._emit(guarded_outcome(invitee, key.user_id, final))
                continue
            if record is not None and record.state == "intent" and not self._expired(record):
                # In flight elsewhere: await its outcome rather than send a task that would
                # only report it in flight.
                waiting = _Pending(invitee, key, record.claims - 1)
                self.pending[key.user_id] = waiting
                self._await_intent(waiting, record)
                continue
            claims = record.claims if record is not None else 0
            self._publish(invitee, claims)
            written = record.updated_at if record is not None else 0.0
            self.pending[key.user_id] = _Pending(invitee, key, claims, written)

    def _final_before_sending(self, record: Record | None) -> Guarded | None:
        if record is None or record.state == "failed":
            return None
        if record.state in SETTLED or (record.state == "unknown" and not self.guard.retry_unknown):
            return _replayed(record)
        if record.state == "intent" and self._expired(record) and not self.guard.retry_unknown:
            return self._settle_unknown(record)
        return None  # unknown, or an expired intent, that retry_unknown takes over

    def _publish(self, invitee: Invitee, claims: int) -> None:
        self.app.send_task(
            TASK_NAME,
            args=(self.profile, invitee_to_json(invitee), self.run),
            kwargs={
                "retry_unknown": self.guard.retry_unknown,
                "identity": self.guard.identity,
                "claims": claims,
                # Only when set: a worker of an older version knows no such option.
                **({"ignore_budget": True} if self.ignore_budget else {}),
            },
            task_id=str(uuid.uuid4()),
            queue=self.explicit_queue,
        )
        self.sent += 1
        if self.sent == 1:
            self._check_consumers(" yet")

    # -- collecting ----------------------------------------------------------------------------

    def collect(self, poll_interval: float) -> Iterator[Outcome]:
        since = self.started - CLOCK_SKEW  # later polls: what changed since the newest seen
        next_report = time.monotonic() + PROGRESS_EVERY
        reported = -1
        try:
            while self.pending:
                changed = self._ask(functools.partial(self._changed, since))
                for record in changed:
                    since = max(since, record.updated_at - OVERLAP)
                    yield from self._seen(record)
                yield from self._expire_intents()
                if not self.pending or time.monotonic() >= self.deadline:
                    break
                if time.monotonic() >= next_report:
                    if self.recorded == reported:
                        self._check_consumers("")
                    reported = self.recorded
                    self._report()
                    next_report = time.monotonic() + PROGRESS_EVERY
                time.sleep(poll_interval)
            why = "no outcome recorded in time; its task may still run"
        except LedgerGone as exc:
            why = f"the ledger did not answer ({exc}); its task may still run"
        yield from self._late(why)

    def _changed(self, since: float) -> list[Record]:
        return list(self.ledger.records_since(run=self.run, since=since))

    def _seen(self, record: Record) -> Iterator[Outcome]:
        waiting = self.pending.get(record.key.user_id)
        if waiting is None or record.key != waiting.key:
            return
        if record.claims <= waiting.claims_before:
            # No claim of its task: settled by someone else, or refused by the per-user budget.
            if record.state in SETTLED or _refused_by_budget(record, waiting):
                yield from self._settled(waiting, _replayed(record))
            return
        if record.state == "intent":
            self._await_intent(waiting, record)
            return
        yield from self._settled(waiting, _from_record(record))

    def _await_intent(self, waiting: _Pending, intent: Record) -> None:
        waiting.intent = intent
        self.intents[waiting.key.user_id] = waiting

    def _expire_intents(self) -> Iterator[Outcome]:
        """Intents whose lease ended, or whose owner on this host is gone, become ``unknown``.

        Each owner is asked after once a poll: many intents share a worker process.
        """
        gone: dict[str, bool] = {}
        for waiting in list(self.intents.values()):
            intent = waiting.intent
            if intent is None:
                continue
            if not self._expired(intent):
                if intent.owner not in gone:
                    gone[intent.owner] = owner_gone(intent.owner)
                if not gone[intent.owner]:
                    continue
            guarded = self._settle_unknown(intent)
            if guarded is not None:
                yield from self._settled(waiting, guarded)
                continue
            # Its owner settled it, or a later claim took it, meanwhile: read which.
            current = self._ask(functools.partial(self.ledger.get, waiting.key))
            waiting.intent = None
            self.intents.pop(waiting.key.user_id, None)
            if current is not None:
                yield from self._seen(current)

    def _settle_unknown(self, intent: Record) -> Guarded | None:
        """Record ``unknown`` for ``intent`` if its owner still holds it; None when not."""
        gone = owner_gone(intent.owner)
        why = "its process ended" if gone else "its lease ended"
        error = OutcomeUnknown(
            f"the worker that claimed this resend recorded no outcome and {why}; "
            "the email may have been sent (not resent unless asked)",
            provider=self.guard.provider_name,
            user_id=intent.key.user_id,
            details={"run": self.run, "owner": intent.owner},
        )
        record = self._ask(
            lambda: self.ledger.settle(intent.key, "unknown", owner=intent.owner, error=error)
        )
        return None if record is None else Guarded(status="unknown", error=error)

    def _late(self, why: str) -> Iterator[Outcome]:
        for waiting in list(self.pending.values()):
            late = OutcomeUnknown(
                why,
                provider=self.guard.provider_name,
                user_id=waiting.key.user_id,
                details={"run": self.run},
            )
            yield from self._settled(waiting, Guarded(status="unknown", error=late))
        self.pending.clear()
        self.intents.clear()

    # -- helpers -------------------------------------------------------------------------------

    def _settled(self, waiting: _Pending, guarded: Guarded) -> Iterator[Outcome]:
        del self.pending[waiting.key.user_id]
        self.intents.pop(waiting.key.user_id, None)
        self.recorded += 1
        user_id = waiting.key.user_id
        yield self._emit(guarded_outcome(waiting.invitee, user_id, guarded))
        for _ in range(waiting.repeats):
            yield self._emit(
                guarded_outcome(waiting.invitee, user_id, attrs.evolve(guarded, skipped=True))
            )

    def _emit(self, outcome: Outcome) -> Outcome:
        if self.on_outcome is not None:
            self.on_outcome(outcome)
        return outcome

    def _expired(self, intent: Record) -> bool:
        return intent.lease_until + CLOCK_SLACK <= time.time()

    def _report(self) -> None:
        self.note(
            f"waiting for {len(self.pending)} outcome(s) of run {self.run!r} "
            f"({self.recorded} recorded since sending {self.sent} task(s))"
        )

    def _check_consumers(self, still: str) -> None:
        count = queue_consumers(self.app, self.queue)
        if count == 0:
            self.note(
                f"no worker consumes queue {self.queue!r}{still}: its tasks wait there until "
                "one does (start a worker, or check --queue and the broker URL)"
            )

    def _ask(self, call: Callable[[], _T]) -> _T:
        """``call`` to the ledger, asked again with backoff while it does not answer."""
        delay = _BACKOFF_FIRST
        while True:
            try:
                return call()
            except ConnectionFailed as exc:
                if time.monotonic() + delay >= self.deadline:
                    raise LedgerGone(_message(exc)) from exc
                self.note(f"the ledger did not answer ({_message(exc)}); asking again in {delay} s")
                time.sleep(delay)
                delay = min(delay * 2, _BACKOFF_MAX)


def queue_consumers(app: Celery, queue: str) -> int | None:
    """How many consumers the broker reports on ``queue`` (RabbitMQ), or, for other brokers, how
    many workers answer that they consume it; None when that cannot be asked."""
    try:
        with app.connection_for_write() as connection:
            if connection.transport.driver_type == "amqp":
                consumers: list[int] = []
                declared = Queue(queue, on_declared=lambda _, __, count: consumers.append(count))
                declared.queue_declare(passive=True, channel=connection.default_channel)
                return consumers[0] if consumers else None
            replies = app.control.inspect(timeout=1.0, connection=connection).active_queues()
    except Exception:  # a question about the broker must not stop the run
        return None
    return sum(
        1 for queues in (replies or {}).values() for entry in queues if entry.get("name") == queue
    )


def _message(error: ConnectionFailed) -> str:
    return error.message if isinstance(error, InviteError) else str(error)


def _refused_by_budget(record: Record, waiting: _Pending) -> bool:
    """Whether the task's claim was refused by the per-user budget (nothing claimed or sent)."""
    return (
        record.state == "failed"
        and isinstance(record.error, ResendTooSoon)
        and record.updated_at > waiting.written_before
    )


def _replayed(record: Record) -> Guarded:
    return attrs.evolve(_from_record(record), skipped=True)


def _from_record(record: Record) -> Guarded:
    return Guarded(status=record.status(), result=record.result, error=record.error)
