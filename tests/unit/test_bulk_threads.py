"""The thread runner's workers: what a resend raises past its outcome, and a run left open."""

from __future__ import annotations

import subprocess
import sys

import pytest

import invites
from invites import Invitee, ResendResult
from invites.testing import FakeProvider


def sent(user_id: str) -> ResendResult:
    return ResendResult(provider="fake", user_id=user_id, message="sent")


class Interrupted(BaseException):
    """Not an Exception: passes through resend_one, as KeyboardInterrupt or SystemExit would."""


def test_a_base_exception_in_a_resend_reaches_the_consumer() -> None:
    def interrupted(invitee: Invitee) -> ResendResult:
        raise Interrupted

    hooked: list[invites.Outcome] = []
    fake = FakeProvider({"u-1": interrupted})
    with pytest.raises(Interrupted):
        list(
            invites.resend_many(
                fake, ["u-0", "u-1", "u-2"], concurrency=1, on_outcome=hooked.append
            )
        )
    assert [o.user_id for o in hooked] == ["u-0"]


def test_a_run_left_open_lets_the_process_exit_after_its_resends_in_flight() -> None:
    # The generator is kept in a global, never closed: its worker threads must not keep the
    # interpreter from exiting, and the resend in flight finishes first.
    code = """
import threading, time
import invites
from invites.testing import FakeProvider
from invites import ResendResult
def slow(invitee):
    time.sleep(0.2)
    print("finished", invitee.user_id, flush=True)
    return ResendResult(provider="fake", user_id=invitee.user_id, message="sent")
fake = FakeProvider({"u-1": slow})
stream = invites.resend_many(fake, ["u-0", "u-1", "u-2", "u-3"], concurrency=2)
print("took", next(stream).user_id, flush=True)
"""
    done = subprocess.run(  # noqa: S603 (this interpreter, the code above)
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "took u-0" in done.stdout
    assert "finished u-1" in done.stdout
