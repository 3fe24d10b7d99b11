"""The thread runner of :func:`invites.resend_many`: long-lived workers fed through queues."""

from __future__ import annotations

import collections
import contextvars
import queue
import threading
import weakref
from collections.abc import Iterator
from typing import Final, cast

from .._protocol import InviteProvider
from ..models import Invitee
from .resend_one import Hook, Ledgered, Outcome, Repeats, resend_one

__all__ = ["ThreadRun"]


class _Raised:
    """What a worker hands back when a resend raised past :func:`resend_one` (a BaseException)."""

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_STOP: Final = object()
#: Runs whose workers may be waiting for work, told to stop before the interpreter joins its
#: threads (as ``concurrent.futures`` does for its own): a run left open ends with the process.
_open_runs: weakref.WeakSet[ThreadRun] = weakref.WeakSet()


class ThreadRun:
    """The state of one :func:`resend_many` run: what is in flight, completed, held, pulled.

    Up to ``concurrency`` threads, started as resends are handed over and kept for the run, take
    each resend from one queue and put its outcome on another: handing a resend over and taking
    its outcome back are one queue operation each, with no future, lock or semaphore between.
    """

    def __init__(
        self,
        provider: InviteProvider,
        source: Iterator[Invitee | str],
        concurrency: int,
        hook: Hook,
        ledgered: Ledgered | None,
    ) -> None:
        self.provider = provider
        self.source = source
        self.concurrency = concurrency
        self.hook = hook
        self.ledgered = ledgered
        self.inbox: queue.SimpleQueue[object] = queue.SimpleQueue()
        self.outbox: queue.SimpleQueue[Outcome | _Raised] = queue.SimpleQueue()
        self.workers: list[threading.Thread] = []
        self.released = False
        self.lock = threading.Lock()
        self.ready: collections.deque[Outcome] = collections.deque()  # completed, not reported
        self.repeats = Repeats(ledgered is not None, provider)
        self.in_flight = 0
        self.exhausted = False

    def fill(self) -> None:
        """Start resends until ``concurrency`` are in flight or the input ends."""
        put = self.inbox.put
        while not self.exhausted and self.hook.error is None and self.in_flight < self.concurrency:
            try:
                item = next(self.source)
            except StopIteration:
                self.exhausted = True
                return
            if not self.repeats.hold(item):
                with self.lock:  # no item, and no worker, after the workers were told to stop
                    if self.released:  # the interpreter is shutting down
                        raise RuntimeError("cannot start resends after interpreter shutdown")
                    # Each resend runs in a copy of the consumer's context: it joins the
                    # consumer's trace, as a task of aresend_many does.
                    put((contextvars.copy_context(), item))
                    self.in_flight += 1
                    if len(self.workers) < self.in_flight:
                        self._start_worker()

    def _start_worker(self) -> None:
        if not self.workers:
            _open_runs.add(self)
            _watch_main_thread()
        worker = threading.Thread(target=self._work, name=f"invites_{len(self.workers)}")
        worker.start()
        self.workers.append(worker)

    def _work(self) -> None:
        get, put = self.inbox.get, self.outbox.put
        provider, ledgered = self.provider, self.ledgered
        while (handed := get()) is not _STOP:
            context, item = cast("tuple[contextvars.Context, Invitee | str]", handed)
            try:
                put(context.run(resend_one, provider, item, ledgered))
            except BaseException as exc:  # as a future would hold it: raised to the consumer
                put(_Raised(exc))

    def _taken(self) -> Outcome:
        done = self.outbox.get()
        self.in_flight -= 1
        if isinstance(done, _Raised):
            raise done.exc
        return done

    def next_outcome(self) -> Outcome:
        """The next outcome to report, waiting for a resend to finish when none is ready."""
        if not self.ready:
            self.ready.extend(self.repeats.expand(self._taken()))
        return self.ready.popleft()

    def release(self) -> None:
        """Let every worker end once the resends handed over before are done."""
        with self.lock:
            if not self.released:
                self.released = True
                for _ in self.workers:
                    self.inbox.put(_STOP)

    def drain(self) -> None:
        """Hand the outcomes completed but not yet reported to on_outcome, then those of the
        resends in flight as each finishes (the consumer may have stopped early, or the input
        raised); then wait until the ledger holds every outcome."""
        try:
            while self.ready:
                self.hook(self.ready.popleft())
            while self.in_flight:
                for outcome in self.repeats.expand(self._taken()):
                    self.hook(outcome)
        finally:
            self.release()
            for worker in self.workers:
                worker.join()
            _open_runs.discard(self)
            if self.ledgered is not None:
                self.ledgered.flush()


def _release_open_runs() -> None:
    """Wait for the main thread to end, then tell every open run's workers to stop.

    The interpreter marks the main thread ended before it joins the other threads (as
    ``concurrent.futures`` relies on): a worker waiting for work would otherwise keep the process
    from exiting.
    """
    threading.main_thread().join()
    for run in list(_open_runs):
        run.release()


_watch_lock = threading.Lock()
_watching = False


def _watch_main_thread() -> None:
    """Start the one daemon thread of :func:`_release_open_runs` (once per process)."""
    global _watching
    with _watch_lock:
        if not _watching:
            threading.Thread(
                target=_release_open_runs, name="invites_exit_watch", daemon=True
            ).start()
            _watching = True
