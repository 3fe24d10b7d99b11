"""The per-request path stays cheap: no import machinery, no work a request does not need."""

from __future__ import annotations

from invites._pacing.local import Throttle


def test_a_throttle_is_idle_only_without_rate_and_before_any_pause() -> None:
    now = [100.0]
    unpaced = Throttle(None, clock=lambda: now[0])
    assert unpaced.idle()
    assert not Throttle(5.0, clock=lambda: now[0]).idle()
    unpaced.pause(2.0)
    assert not unpaced.idle()
    assert unpaced.paused_for() == 2.0
    now[0] += 3.0  # the pause is over, the pacer is still asked (and answers 0)
    assert not unpaced.idle()
    assert unpaced.reserve() == 0.0
