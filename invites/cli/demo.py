"""``invites demo``: every vendor through the sandbox on loopback, with nothing to configure.

The simulated vendors (:mod:`invites.sandbox`) are served on a free 127.0.0.1 port; users in each
state are resent to through the real adapters, one 429 included, and the table shows what each
vendor answered and which exception it became. Needs the ``sandbox`` extra.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping
from typing import Any, TextIO

import attrs

from .._delivery.provider import AttemptEvent
from ..bulk import Outcome, resend_many
from ..config import from_config
from ..models import Invitee
from .common import EXIT_FAILED, EXIT_OK, UsageError, is_terminal
from .display import progress_bar, table

__all__ = ["run"]


@attrs.frozen
class _Case:
    group: str  # which configured provider runs it
    what: str  # the situation, for a person
    invitee: Invitee | str
    expected: str  # the outcome the vendor's contract leads to

    @property
    def user_id(self) -> str:
        return self.invitee.user_id if isinstance(self.invitee, Invitee) else self.invitee


_OTHER_TENANT = "tenant_api (other tenant)"


def _cases() -> list[_Case]:
    from ..sandbox import (
        ECOSUITE_PROFILES,
        ECOSUITE_USER_1,
        ECOSUITE_USER_2,
        ECOSUITE_USER_FORBIDDEN,
        SOFTWAREONE_USER_ACTIVE,
        SOFTWAREONE_USER_EXPIRED,
        SOFTWAREONE_USER_INVITED,
        TENANT_USER_INVITED,
        TENANT_USER_INVITED_2,
        TENANT_USER_UNKNOWN,
        TENANT_USER_VERIFIED,
    )

    profile = ECOSUITE_PROFILES[ECOSUITE_USER_2]
    full = Invitee(
        user_id=ECOSUITE_USER_2,
        email=str(profile["email"]),
        first_name=str(profile["firstName"]),
        last_name=str(profile["lastName"]),
    )
    return [
        _Case("ecosuite", "bare user id (profile fetched)", ECOSUITE_USER_1, "sent"),
        _Case("ecosuite", "invitee with its profile", full, "sent"),
        _Case("ecosuite", "user the token may not manage", ECOSUITE_USER_FORBIDDEN, "failed"),
        _Case("ecosuite", "unknown user", "eco-nobody", "failed"),
        _Case("softwareone", "invited member", SOFTWAREONE_USER_INVITED, "sent"),
        _Case("softwareone", "member already active", SOFTWAREONE_USER_ACTIVE, "already_verified"),
        _Case("softwareone", "invitation expired", SOFTWAREONE_USER_EXPIRED, "failed"),
        _Case("tenant_api", "invited user", TENANT_USER_INVITED, "sent"),
        _Case("tenant_api", "rate-limited once (429)", TENANT_USER_INVITED_2, "sent"),
        _Case("tenant_api", "user already verified", TENANT_USER_VERIFIED, "already_verified"),
        _Case("tenant_api", "unknown user", TENANT_USER_UNKNOWN, "failed"),
        _Case(_OTHER_TENANT, "credential of another tenant", TENANT_USER_INVITED, "failed"),
    ]


def _configs(base_url: str) -> dict[str, dict[str, Any]]:
    from ..sandbox import (
        ECOSUITE_TOKEN,
        OTHER_TENANT_ID,
        SOFTWAREONE_ACCOUNT_ID,
        SOFTWAREONE_TOKEN,
        TENANT_API_KEY,
        TENANT_ID,
    )

    tenant = {"provider": "tenant_api", "base_url": base_url, "token": TENANT_API_KEY}
    return {
        "ecosuite": {"provider": "ecosuite", "base_url": base_url, "token": ECOSUITE_TOKEN},
        "softwareone": {
            "provider": "softwareone",
            "base_url": base_url,
            "token": SOFTWAREONE_TOKEN,
            "account_id": SOFTWAREONE_ACCOUNT_ID,
        },
        "tenant_api": {**tenant, "tenant_id": TENANT_ID},
        _OTHER_TENANT: {**tenant, "tenant_id": OTHER_TENANT_ID},
    }


class _Attempts:
    """The requests each (provider group, user id) made, as ``"POST 429"`` steps."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.steps: dict[tuple[str, str], list[str]] = defaultdict(list)

    def hook(self, group: str) -> Callable[[AttemptEvent], None]:
        def record(event: AttemptEvent) -> None:
            answer = event.status_code if event.status_code is not None else event.error
            with self._lock:
                self.steps[group, event.user_id].append(f"{event.method} {answer}")

        return record


def _resend_all(
    base_url: str, cases: list[_Case], attempts: _Attempts, advance: Callable[[], None]
) -> dict[tuple[str, str], Outcome]:
    outcomes: dict[tuple[str, str], Outcome] = {}
    configs = _configs(base_url)
    for group, config in configs.items():
        invitees = [case.invitee for case in cases if case.group == group]
        with from_config({**config, "on_attempt": attempts.hook(group)}) as provider:
            for outcome in resend_many(provider, invitees, concurrency=4):
                outcomes[group, outcome.user_id] = outcome
                advance()
    return outcomes


def run(stdout: TextIO, stderr: TextIO) -> int:
    """Run the demo; exit status 0 when every vendor answered as its contract says."""
    try:
        from ..sandbox import TENANT_USER_INVITED_2, Fault, Sandbox, serve
    except ImportError:
        raise UsageError(
            "the demo needs the sandbox extra: pip install 'invites[sandbox]'"
        ) from None

    cases = _cases()
    sandbox = Sandbox(retry_after=1)
    sandbox.inject(TENANT_USER_INVITED_2, Fault.RATE_LIMIT)
    attempts = _Attempts()
    with serve(sandbox) as running:
        stdout.write(
            f"invites demo: resending through three simulated vendors at {running.url}\n"
            "(the sandbox: fake credentials, loopback only; nothing leaves this machine)\n\n"
        )
        stdout.flush()
        progress = progress_bar(stderr, len(cases), "resending", show=is_terminal(stderr))
        started = time.monotonic()
        try:
            outcomes = _resend_all(running.url, cases, attempts, progress.advance)
        finally:
            progress.stop()
        elapsed = time.monotonic() - started
    return _report(stdout, cases, outcomes, attempts.steps, sandbox.emails_snapshot(), elapsed)


def _report(
    stdout: TextIO,
    cases: list[_Case],
    outcomes: Mapping[tuple[str, str], Outcome],
    steps: Mapping[tuple[str, str], list[str]],
    emails: Mapping[str, int],
    elapsed: float,
) -> int:
    rows: list[list[str]] = []
    sections: list[int] = []
    surprises: list[str] = []
    previous_vendor = None
    for index, case in enumerate(cases):
        outcome = outcomes[case.group, case.user_id]
        vendor = case.group.split(" ")[0]
        if vendor != previous_vendor:
            sections.append(index)
        error = outcome.error
        rows.append(
            [
                vendor if vendor != previous_vendor else "",
                case.what,
                ", ".join(steps.get((case.group, case.user_id), [])) or "-",
                outcome.status,
                type(error).__name__ if error is not None else "-",
            ]
        )
        previous_vendor = vendor
        if outcome.status != case.expected:
            surprises.append(f"{case.group}: {case.what}: expected {case.expected}: {error}")
    table(stdout, ["vendor", "case", "requests", "outcome", "raised"], rows, sections=sections)
    totals = Counter(outcome.status for outcome in outcomes.values())
    retried = sum(1 for trail in steps.values() for before in trail[:-1] if before.endswith(" 429"))
    sent_emails = sum(emails.values())
    twice = sum(1 for count in emails.values() if count > 1)
    requests = "request" if retried == 1 else "requests"
    stdout.write(
        f"\n{len(outcomes)} invitees in {elapsed:.1f}s: {totals['sent']} sent, "
        f"{totals['already_verified']} already verified, {totals['failed']} failed, "
        f"{totals['unknown']} unknown.\n"
        f"{retried} rate-limited {requests} retried after Retry-After; the sandbox counted "
        f"{sent_emails} emails, " + ("none twice.\n" if not twice else f"{twice} sent twice!\n")
    )
    for surprise in surprises:
        stdout.write(f"unexpected: {surprise}\n")
    stdout.flush()
    ok = not surprises and not twice and sent_emails == totals["sent"]
    return EXIT_OK if ok else EXIT_FAILED
