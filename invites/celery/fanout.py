"""The sending side of the Celery tasks: configuring an app, and fanning a run out to its workers
with one outcome per invitee read back from the shared ledger."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final

from celery import Celery

from .._delivery.provider import BaseProvider
from ..bulk import Outcome
from ..config import Profiles, load_profiles
from ..errors import ConfigurationError
from ..ledger import Ledger, open_ledger
from ..ledger._guard import Guard
from ..models import Invitee
from ..registry import provider_class
from .collect import TASK_NAME, Collector

__all__ = [
    "LEDGER_ENV",
    "PROFILES_ENV",
    "STORE_ENV",
    "TASK_NAME",
    "app_setting",
    "configure",
    "fan_out",
]

#: Environment variables a worker reads when its app does not say.
PROFILES_ENV: Final = "INVITES_PROFILES"
LEDGER_ENV: Final = "INVITES_LEDGER"
STORE_ENV: Final = "INVITES_RATE_LIMIT_STORE"
#: The AMQP heartbeat timeout, in seconds: RabbitMQ closes a connection gone silent (a dropped NAT
#: entry, a firewall) 2 to 3 of these after the last byte it got, and the tasks a worker held on it
#: go to another worker then. Celery's default, 120, gets RabbitMQ's default, 60: 2 to 3 minutes.
BROKER_HEARTBEAT: Final = 10


def configure(
    app: Celery,
    *,
    profiles: str | os.PathLike[str] | None = None,
    ledger: str | None = None,
) -> Celery:
    """Point ``app``'s workers at a profiles file and (for profiles without a ``ledger`` key) a
    ledger URL, and set what redelivery under the ledger needs.

    ``task_acks_late`` and ``task_reject_on_worker_lost``: a task lost with its worker (or its
    prefork child) is delivered again, and the ledger, not the broker, decides whether it sends.
    A prefetch of one: a lost worker holds few tasks. A broker heartbeat of
    :data:`BROKER_HEARTBEAT` seconds: a broker connection that silently dropped is closed within
    half a minute, not minutes, so its unacknowledged tasks are redelivered to a live worker.
    Retrying the broker connection at startup: a worker started before its broker waits for it.
    Change any of these after calling this when you know better.
    """
    if profiles is not None:
        app.conf.invites_profiles = os.fspath(profiles)
    if ledger is not None:
        app.conf.invites_ledger = ledger
    app.conf.task_acks_late = True
    app.conf.task_reject_on_worker_lost = True
    app.conf.worker_prefetch_multiplier = 1
    app.conf.broker_heartbeat = BROKER_HEARTBEAT
    app.conf.broker_connection_retry_on_startup = True
    return app


def app_setting(app: Celery, name: str, env: str) -> str | None:
    value = app.conf.get(name) or os.environ.get(env)
    return str(value) if value else None


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
    poll_interval: float = 0.5,
    on_outcome: Callable[[Outcome], None] | None = None,
    on_note: Callable[[str], None] | None = None,
    queue: str | None = None,
) -> Iterator[Outcome]:
    """Send one :func:`resend` task per invitee of ``run`` and yield one :class:`~invites.Outcome`
    per invitee, read from the ledger once it is final.

    ``profiles`` (a path or loaded :class:`~invites.Profiles`; default: the app's or
    ``$INVITES_PROFILES``) and ``profile`` (default: its default) must name the same vendor,
    base URL and tenant as the workers' profile of that name (checked by the workers); only that
    identity and the ledger are used here: the profile's token is never read. An invitee the
    ledger already settled for ``run`` is not sent again (``skipped``); a repeated user id is sent
    once and its repeats get the same outcome, ``skipped``. An invitee whose worker claimed it and
    can no longer record an outcome (its lease ended, or its process on this host is gone) is
    recorded and reported ``unknown`` then; one still without an outcome after ``timeout``
    seconds is ``unknown`` (its task may still run). ``on_note`` receives what a person watching
    should know: progress every few seconds, a queue no worker consumes, a ledger that does not
    answer (default: logged as warnings on ``invites.celery``). ``queue`` names the queue the
    workers consume (default: the app's default queue). Under the profile's ``per_user_limit``
    an invitee the budget refused is ``failed``, ``skipped``, with
    :class:`~invites.ResendTooSoon`; ``ignore_budget`` tells the workers to send anyway.
    """
    deadline = time.monotonic() + timeout
    loaded = _profiles(app, profiles)
    try:
        provider = identity_provider(loaded, name := _profile_name(loaded, profile))
        opened = _ledger(app, provider, ledger)
        try:
            sender = Collector(
                app,
                Guard(opened, provider, retry_unknown=retry_unknown),
                name,
                run,
                on_outcome=on_outcome,
                note=on_note,
                queue=queue,
                deadline=deadline,
                ignore_budget=ignore_budget,
            )
            yield from sender.send(invitees)
            yield from sender.collect(poll_interval)
        finally:
            provider.close()
            if opened is not ledger:
                opened.close()
    finally:
        if loaded is not profiles:
            loaded.close()


def _profile_name(profiles: Profiles, profile: str | None) -> str:
    """``profile``, else the default; ConfigurationError when no such profile is there."""
    name = profile or profiles.default_name
    if name is None or name not in profiles:
        raise ConfigurationError(f"no profile named {name!r} (profiles: {', '.join(profiles)})")
    return name


def identity_provider(profiles: Profiles, name: str) -> BaseProvider[Any]:
    """Profile ``name``'s provider, built without reading its token: for its identity (the
    ledger's key) and settings only; it never sends."""
    settings = profiles.settings(name)
    return provider_class(settings.provider)(settings)


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


def _ledger(app: Celery, provider: BaseProvider[Any], ledger: Ledger | str | None) -> Ledger:
    if isinstance(ledger, Ledger):
        return ledger
    url = ledger or provider.settings.ledger or app_setting(app, "invites_ledger", LEDGER_ENV)
    if url is None:
        raise ConfigurationError(
            f"fan_out needs a ledger the workers share (ledger=, the profile's ledger key or "
            f"${LEDGER_ENV})"
        )
    return open_ledger(url)
