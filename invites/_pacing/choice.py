"""Which pacer a provider's settings ask for: none or a fixed ``rate_limit``, a learned one
(``"auto"``), or one shared through ``rate_limit_store`` (with its local fallback).

The learned pacer and the store's client load only when configured.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from .._settings.fields import ProviderSettings
from ..errors import ConfigurationError
from .local import Pacer, Throttle

if TYPE_CHECKING:
    from .control import Tuning
    from .redis_store import RedisPacer

__all__ = ["local_pacer", "store_pacer", "tuning_of"]


def local_pacer(settings: ProviderSettings, clock: Callable[[], float]) -> Pacer:
    """This process's own pace: a fixed ``rate_limit`` (or none), or a learned one (``"auto"``)."""
    if settings.rate_limit != "auto":
        return Throttle(settings.rate_limit, clock=clock)
    from .adaptive import AutoThrottle

    return AutoThrottle(tuning_of(settings), clock=clock)


def tuning_of(settings: ProviderSettings) -> Tuning:
    """The controller's tuning from the settings: ``rate_limit`` and its start and ceiling."""
    from .control import START, Tuning

    most = math.inf if settings.rate_limit_max is None else settings.rate_limit_max
    if settings.rate_limit == "auto":
        start = settings.rate_limit_start if settings.rate_limit_start is not None else START
        return Tuning(start=min(start, most), most=most)
    assert settings.rate_limit is not None
    return Tuning(start=settings.rate_limit, most=settings.rate_limit, fixed=True)


def store_pacer(
    name: str, identity: str, settings: ProviderSettings, clock: Callable[[], float]
) -> RedisPacer | None:
    """The pace shared through ``rate_limit_store`` by every provider of ``identity``; None when
    the setting is unset."""
    if settings.rate_limit_store is None:
        return None
    try:
        from .redis_store import RedisPacer, identity_key
    except ImportError as exc:
        raise ConfigurationError(
            "rate_limit_store: needs redis-py, the redis extra (pip install 'invites[redis]')",
            provider=name,
        ) from exc
    fallback = settings.rate_limit_fallback == "local"
    return RedisPacer(
        settings.rate_limit_store,
        identity_key(settings.rate_limit_key_prefix, name, identity),
        None if settings.rate_limit is None else tuning_of(settings),
        fallback=local_pacer(settings, clock) if fallback else None,
        clock=clock,
    )
