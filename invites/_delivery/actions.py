"""The words between a vendor's flow, the engine and a driver.

A vendor's flow yields :class:`Call` objects and receives ``httpx.Response`` objects (a
:data:`Flow`). The engine (:mod:`invites._delivery.engine`) yields actions (:data:`Action`) that a
driver performs with blocking or asynchronous I/O, sending back each one's :data:`Reply`: the answer
or transport failure for :class:`Send`, seconds for :class:`Reserve` and :class:`PausedFor`, None
otherwise; or the exception the action raised.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from typing import Any, Final, TypeAlias

import attrs
import httpx

from .._settings.secret import Secret
from ..models import ResendResult

__all__ = [
    "PAUSED_FOR",
    "RESERVE",
    "Action",
    "AuthHeader",
    "Builder",
    "Call",
    "Flow",
    "Observe",
    "Pause",
    "PausedFor",
    "Refresh",
    "Reply",
    "Reserve",
    "Send",
    "Sleep",
    "Steps",
]


@attrs.frozen(slots=True)
class Call:
    """One request a vendor flow wants made.

    ``reads_only`` marks a request that cannot send an email (a ``GET``): it is also retried when
    its outcome is unknown.
    """

    method: str
    url: str
    json: Any = None
    headers: Mapping[str, str] | None = None
    reads_only: bool = False


#: What a vendor's :meth:`BaseProvider.flow` is.
Flow: TypeAlias = Generator[Call, httpx.Response, ResendResult]


class _Action:
    """An action: equal to another of its kind with equal fields; built once, then only read.

    Plain slotted classes: an attrs class costs about a millisecond of import time to generate,
    and building a frozen one costs more per request than a plain ``__init__``.
    """

    __slots__: tuple[str, ...] = ()

    def _fields(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _Action)
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash((type(self), self._fields()))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"


class Send(_Action):
    """Send ``request``; reply with the answer read within the limit, or the failure."""

    __slots__ = ("request",)

    def __init__(self, request: httpx.Request) -> None:
        self.request = request


class Sleep(_Action):
    """Wait ``seconds``; reply None."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


class Refresh(_Action):
    """Fetch a new token replacing ``stale`` (None when none was ever fetched); reply None."""

    __slots__ = ("stale",)

    def __init__(self, stale: Secret | None) -> None:
        self.stale = stale


class Reserve(_Action):
    """Reserve the pacer's next slot; reply the seconds to wait before sending (below 0: no slot
    was given; ask again after that many seconds)."""

    __slots__ = ()


class PausedFor(_Action):
    """Ask the pacer for the provider-wide pause in force; reply its seconds left (0: none)."""

    __slots__ = ()


class Pause(_Action):
    """Hold every caller of the provider ``seconds`` from now; reply None."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


class Observe(_Action):
    """Hand the pacer the vendor's ``response`` to learn from (a pacer that learns); reply None."""

    __slots__ = ("response",)

    def __init__(self, response: httpx.Response) -> None:
        self.response = response


RESERVE: Final = Reserve()
PAUSED_FOR: Final = PausedFor()

Action: TypeAlias = "Send | Sleep | Refresh | Reserve | PausedFor | Pause | Observe"
Reply: TypeAlias = "httpx.Response | Exception | float | None"
#: ``Client.build_request`` of the driver's client: merges its default headers and cookies.
Builder: TypeAlias = Callable[..., httpx.Request]
AuthHeader: TypeAlias = Callable[[str], "tuple[str, str]"]
Steps: TypeAlias = Generator[Action, Reply, ResendResult]
