"""``invites resend --via celery``: the rows go to Celery workers, the outcomes come back from
the ledger the workers share, so the output and exit status are a local run's."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Generator, Iterable
from datetime import UTC, datetime
from typing import Any, Final
from uuid import uuid4

from .._delivery.provider import BaseProvider
from .._protocol import InviteProvider
from ..bulk import Outcome
from ..config import Profiles
from ..errors import ConfigurationError
from ..models import Invitee
from .common import UsageError, pick_profile

__all__ = ["BROKER_ENV", "identity_provider", "sending_profile", "stream"]

#: Where ``--via celery`` reads the broker URL when ``--broker`` is not given.
BROKER_ENV: Final = "INVITES_BROKER"


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
        from ..celery.fanout import LEDGER_ENV
    except ImportError:
        raise UsageError(
            "--via celery needs the celery extra: pip install 'invites[celery]'"
        ) from None
    broker = args.broker or os.environ.get(BROKER_ENV)
    if not broker:
        raise UsageError(
            f"--via celery needs the broker the workers consume: --broker URL or ${BROKER_ENV}"
        )
    ledger = getattr(getattr(provider, "settings", None), "ledger", None) or os.environ.get(
        LEDGER_ENV
    )
    if not ledger:
        raise UsageError(
            "--via celery needs a ledger the workers share: set `ledger` in the profile "
            f"or ${LEDGER_ENV}"
        )
    run = args.run or f"cli-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid4().hex[:8]}"
    if not args.run:
        note(f"run {run!r}; rerun with --run {run} to resume it")
    app = configure(Celery("invites", broker=broker, set_as_current=False))
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
            on_note=note,
        )
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from None
    finally:
        app.close()


def sending_profile(profiles: Profiles, args: argparse.Namespace) -> tuple[str, InviteProvider]:
    """The profile ``invites resend`` sends through and its provider. With ``--via celery`` the
    provider is built without reading its token: the workers hold the secrets, and this process
    needs only the profile's identity and ledger (it never sends)."""
    if args.via != "celery":
        return pick_profile(profiles, args.profile, args.config)
    name = args.profile or profiles.default_name or ""
    return name, identity_provider(profiles, args.profile, args.config)


def identity_provider(profiles: Profiles, name: str | None, path: str) -> BaseProvider[Any]:
    """The profile's provider for ``--via celery``: its identity and settings, not its token
    (the workers hold the secrets; this process never sends)."""
    if name is None:
        name = profiles.default_name
    if name is None or name not in profiles:
        return pick_profile(profiles, name, path)[1]  # its usage error
    try:
        from ..celery.fanout import identity_provider as build
    except ImportError:
        raise UsageError(
            "--via celery needs the celery extra: pip install 'invites[celery]'"
        ) from None
    return build(profiles, name)
