"""``invites resend --via celery``: the rows go to Celery workers, the outcomes come back from
the ledger the workers share, so the output and exit status are a local run's."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Generator, Iterable
from datetime import UTC, datetime
from uuid import uuid4

from .._protocol import InviteProvider
from ..bulk import Outcome
from ..errors import ConfigurationError
from ..models import Invitee
from .common import UsageError

__all__ = ["stream"]


def stream(
    args: argparse.Namespace,
    provider: InviteProvider,
    invitees: Iterable[Invitee],
    on_outcome: Callable[[Outcome], None],
    note: Callable[[str], None],
) -> Generator[Outcome, None, None]:
    """Fan ``invitees`` out to the workers consuming ``--broker``; yield each one's outcome."""
    try:
        from celery import Celery

        from ..celery import configure, fan_out
    except ImportError:
        raise UsageError(
            "--via celery needs the celery extra: pip install 'invites[celery]'"
        ) from None
    if not args.broker:
        raise UsageError("--via celery needs --broker URL (the broker the workers consume)")
    ledger = getattr(getattr(provider, "settings", None), "ledger", None)
    if not ledger:
        raise UsageError(
            "--via celery needs a ledger the workers share: set `ledger` in the profile"
        )
    run = args.run or f"cli-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid4().hex[:8]}"
    if not args.run:
        note(f"run {run!r}; rerun with --run {run} to resume it")
    app = configure(Celery("invites", broker=args.broker, set_as_current=False))
    try:
        yield from fan_out(
            app,
            invitees,
            run=run,
            profile=args.profile,
            profiles=args.config,
            ledger=ledger,
            retry_unknown=args.retry_unknown,
            ignore_budget=args.ignore_budget,
            timeout=args.wait,
            queue=args.queue,
            on_outcome=on_outcome,
        )
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from None
    finally:
        app.close()
