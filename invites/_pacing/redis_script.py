"""The Lua script behind a pace shared through Redis: slots, pauses, and the learned rate.

One script, so that every step is atomic on the server and reads the server's clock (``TIME``).
It holds, per provider identity, one hash:

- ``tat`` and ``pause``: the generic cell rate algorithm's theoretical arrival time and the end
  of a provider-wide pause, in microseconds;
- ``rate``, ``found``, ``since``, ``acc``, ``calm``, ``ann``, ``ann_until``: the adaptive
  controller's state (:class:`invites._pacing.control.PaceState`, times in seconds).

Its ``decide`` is :func:`invites._pacing.control.decide` written in Lua, field for field, with the
same constants (formatted in from that module); the tests run the controller's table through
both. Modes (``ARGV[1]``):

- ``reserve``: ``ARGV[2]`` the fixed rate (``0``: learned, below 0: none, pauses only), ``[3]``
  the learned rate's start, ``[4]`` its ceiling (0: none), ``[5]`` the burst in requests,
  ``[6]`` answers accepted since this caller last told, ``[7]`` an announced rate (below 0:
  none). Learns from ``[6]``/``[7]``, then reserves a slot; returns the wait in microseconds
  (below 0, for a learned rate: no slot so far ahead, ask again after that long).
- ``observe``: the same arguments, and ``[8]`` 1 for a 429, ``[9]`` its ``Retry-After`` in
  seconds (below 0: none). Learns; returns 0.
- ``pause`` (``ARGV[2]`` its length in microseconds), ``paused_for`` (returns microseconds).
- ``rate``: the rate paced at now, as text (for whoever watches the store).
- ``decide``: the controller alone, on a state and an answer given as arguments (see
  :func:`decide_args`); returns the new state; touches no key.
"""

from __future__ import annotations

from typing import Final

from . import control
from .control import Answer, PaceState, Tuning

__all__ = ["SCRIPT", "STATE_FIELDS", "decide_args", "state_of"]

#: A learned rate is forgotten after this long unused (seconds): the next caller starts afresh.
LEARNED_TTL: Final = 600

STATE_FIELDS: Final = ("rate", "found", "since", "acc", "calm", "ann", "ann_until")

_DECIDE: Final = """
local function decide(s, ev, fixed, most)
  local at = ev.at
  if ev.announced >= 0 then
    local announced = math.max({FLOOR}, {MARGIN} * ev.announced)
    s.ann = announced
    s.ann_until = at + {FRESH}
    if not fixed then
      local rate = math.min(announced, most)
      s.rate = rate
      s.found = rate
      s.since = at
      s.acc = 0
    end
  end
  if fixed then
    return s
  end
  if at - s.since >= {WINDOW} then
    local used = s.acc / (at - s.since)
    local rate = s.rate
    if used >= {USED} * rate and at >= s.ann_until then
      if s.found == 0 then
        rate = 2 * rate
      else
        local probe = math.max({MIN_STEP}, {STEP} * rate)
        rate = rate + math.max(probe, math.min(({TOWARD} * s.found - rate) / 2, {LEAP} * rate))
      end
      rate = math.min(rate, most)
    end
    s.rate = rate
    s.since = at
    s.acc = 0
  end
  if ev.throttled then
    if at < s.calm then
      return s
    end
    local factor = {CUT}
    if s.found == 0 then
      factor = {SLOW_START_CUT}
    elseif at < s.calm + {AGAIN} then
      factor = {CUT_AGAIN}
    end
    local hold = {HOLD}
    if ev.retry_after >= 0 then
      hold = math.max({HOLD}, ev.retry_after)
    end
    s.found = s.rate
    s.rate = math.max({FLOOR}, factor * s.rate)
    s.since = at
    s.acc = 0
    s.calm = at + hold
    return s
  end
  s.acc = s.acc + ev.accepted
  return s
end

local function allowed(s, at)
  if s.ann > 0 and at < s.ann_until then
    return math.min(s.rate, s.ann)
  end
  return s.rate
end
"""

_MAIN: Final = """
local FIELDS = {{'rate', 'found', 'since', 'acc', 'calm', 'ann', 'ann_until'}}
local mode = ARGV[1]

local function fmt(x)
  return string.format('%.17g', x)
end

if mode == 'decide' then
  local s = {{}}
  for i, name in ipairs(FIELDS) do
    s[name] = tonumber(ARGV[4 + i])
  end
  local ev = {{at = tonumber(ARGV[12]), accepted = tonumber(ARGV[13]),
    throttled = ARGV[14] == '1', retry_after = tonumber(ARGV[15]),
    announced = tonumber(ARGV[16])}}
  local most = tonumber(ARGV[4])
  if most <= 0 then most = math.huge end
  s = decide(s, ev, ARGV[2] == '1', most)
  local out = {{}}
  for i, name in ipairs(FIELDS) do
    out[i] = fmt(s[name])
  end
  return out
end

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local at = now / 1000000
local row = redis.call('HMGET', KEYS[1], 'tat', 'pause', unpack(FIELDS))
local tat = tonumber(row[1]) or 0
local paused = tonumber(row[2]) or 0
if mode == 'paused_for' then
  return math.max(0, paused - now)
end
if mode == 'pause' then
  paused = math.max(paused, now + tonumber(ARGV[2]))
  redis.call('HSET', KEYS[1], 'pause', string.format('%.0f', paused))
  redis.call('PEXPIRE', KEYS[1], math.max(redis.call('PTTL', KEYS[1]),
    math.ceil((paused - now) / 1000) + 1000))
  return 0
end

local fixed_rate = tonumber(ARGV[2])
if mode == 'reserve' and fixed_rate < 0 then
  return math.max(0, paused - now)
end
local most = tonumber(ARGV[4])
if most <= 0 then most = math.huge end
local s = {{}}
if row[3] then
  for i, name in ipairs(FIELDS) do
    s[name] = tonumber(row[2 + i]) or 0
  end
else
  s = {{rate = math.min(tonumber(ARGV[3]), most), found = 0, since = at, acc = 0, calm = 0,
    ann = 0, ann_until = 0}}
end
if fixed_rate > 0 then
  s.rate = fixed_rate
end
local learns = fixed_rate >= 0
if mode == 'rate' then
  return fmt(allowed(s, at))
end
local ev = {{at = at, accepted = tonumber(ARGV[6]), throttled = ARGV[8] == '1',
  retry_after = tonumber(ARGV[9] or '-1'), announced = tonumber(ARGV[7])}}
if learns then
  local before = allowed(s, at)
  s = decide(s, ev, fixed_rate > 0, most)
  local after = allowed(s, at)
  if fixed_rate == 0 and after > before and tat > now then
    -- Slots handed out at the old rate need not hold back the new ones.
    tat = now + (tat - now) * before / after
    redis.call('HSET', KEYS[1], 'tat', string.format('%.0f', tat))
  end
end
local wait = 0
if mode == 'reserve' then
  local start = math.max(now, paused)
  wait = start - now
  do
    local rate = allowed(s, at)
    local interval = math.floor(1000000 / rate + 0.5)
    local burst = math.min(tonumber(ARGV[5]), math.max(1, math.floor(rate)))
    tat = math.max(tat, start)
    if fixed_rate == 0 and tat - now > {HORIZON} * 1000000 then
      -- No slot so far ahead (the rate may change meanwhile): ask again later.
      wait = -math.max({POLL} * 1000000, tat - now - {HORIZON} * 1000000)
      tat = tat - interval
    end
    if wait >= 0 then
      wait = math.max(wait, tat - (burst - 1) * interval - now)
    end
    tat = tat + interval
    redis.call('HSET', KEYS[1], 'tat', string.format('%.0f', tat))
  end
end
local keep = math.max(tat, paused) - now
if learns then
  local values = {{}}
  for i, name in ipairs(FIELDS) do
    values[2 * i - 1] = name
    values[2 * i] = fmt(s[name])
  end
  redis.call('HSET', KEYS[1], unpack(values))
  if fixed_rate == 0 or s.ann > 0 then
    keep = math.max(keep, {LEARNED_TTL} * 1000000, (s.ann_until - at) * 1000000)
  end
end
-- Once nothing is held back (or learned) the record goes (plus a margin).
redis.call('PEXPIRE', KEYS[1], math.ceil(keep / 1000) + 1000)
return wait
"""


def _constants() -> dict[str, str]:
    names = ["FLOOR", "MARGIN", "FRESH", "WINDOW", "USED", "MIN_STEP", "STEP", "TOWARD", "LEAP"]
    names += ["CUT", "SLOW_START_CUT", "AGAIN", "CUT_AGAIN", "HOLD", "HORIZON", "POLL"]
    values = {name: repr(float(getattr(control, name))) for name in names}
    values["LEARNED_TTL"] = str(LEARNED_TTL)
    return values


SCRIPT: Final = (_DECIDE + _MAIN).format(**_constants())


def decide_args(state: PaceState, answer: Answer, tuning: Tuning) -> list[str]:
    """The ``decide`` mode's arguments for ``state``, ``answer`` and ``tuning``."""
    most = 0.0 if tuning.most == float("inf") else tuning.most
    fields = [repr(float(getattr(state, name))) for name in _ATTRIBUTES]
    retry_after = -1.0 if answer.retry_after is None else answer.retry_after
    announced = -1.0 if answer.announced is None else answer.announced
    return [
        "decide",
        "1" if tuning.fixed else "0",
        repr(tuning.start),
        repr(most),
        *fields,
        repr(answer.at),
        str(answer.accepted),
        "1" if answer.throttled else "0",
        repr(retry_after),
        repr(announced),
    ]


_ATTRIBUTES: Final = ("rate", "found", "since", "accepted", "calm", "announced", "announced_until")


def state_of(values: list[bytes | str]) -> PaceState:
    """The ``decide`` mode's answer as a state."""
    rate, found, since, accepted, calm, announced, until = (float(value) for value in values)
    return PaceState(
        rate=rate,
        found=found,
        since=since,
        accepted=int(accepted),
        calm=calm,
        announced=announced,
        announced_until=until,
    )
