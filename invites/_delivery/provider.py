"""The base every vendor adapter subclasses: its public surface, its parts and their lifecycle.

A vendor adapter writes only :meth:`BaseProvider.flow`, a generator that yields :class:`Call`
objects and receives ``httpx.Response`` objects, raising a mapped :class:`~invites.InviteError` or
returning a :class:`~invites.ResendResult`. The delivery engine (:mod:`invites._delivery.engine`)
wraps it in the delivery policy and yields named actions; the drivers
(:mod:`invites._delivery.drivers`) perform them with blocking or asynchronous I/O. No vendor and no
policy is written twice.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Self

import attrs
import httpx
from typing_extensions import TypeVar

from .._http.clients import Transport, timeout_for
from .._http.proxies import Route
from .._pacing.choice import local_pacer, store_pacer
from .._pacing.local import Learner, Pacer, Throttle
from .._settings.fields import ProviderSettings
from .._settings.identity import canonical_base_url, compute_identity
from .._telemetry import ACTIVE, Watch
from .._version import __version__
from ..errors import ConfigurationError
from ..models import Invitee, ResendResult, as_invitee
from .actions import Call, Flow
from .credentials import Credentials
from .drivers import Driver
from .engine import Engine
from .policy import RetryPolicy
from .reporting import AttemptEvent, route_ids

if TYPE_CHECKING:
    from ..ledger import Ledger
    from ..ledger._provider_ledger import ProviderLedger

__all__ = ["AttemptEvent", "BaseProvider", "Call", "Flow"]

#: The settings class of a provider.
S = TypeVar("S", bound=ProviderSettings, default=ProviderSettings, covariant=True)


async def _asyncio_sleep(seconds: float) -> None:
    """``asyncio.sleep``, imported when first awaited: synchronous programs never load asyncio."""
    import asyncio

    await asyncio.sleep(seconds)


def user_agent(extra: str | None = None) -> str:
    """``invites/<version> httpx/<version>``, then `extra` (the ``user_agent`` setting)."""
    agent = f"invites/{__version__} httpx/{httpx.__version__}"
    return f"{agent} {extra}" if extra else agent


class BaseProvider(Generic[S]):
    """Shared base of every vendor adapter. Satisfies :class:`invites.InviteProvider`.

    Subclasses set :attr:`name`, :attr:`settings_class`, optionally :attr:`default_base_url`,
    implement :meth:`flow`, and override :meth:`auth_header` when the vendor does not take
    ``Authorization: Bearer``. ``client`` / ``async_client`` inject the caller's own httpx clients
    (the configured timeouts still apply per request); otherwise the provider creates and owns them.
    ``pacer`` shares a pace between providers (default: one shared through ``rate_limit_store``
    when it is set, else this provider's own, from ``rate_limit``).
    ``clock``, ``sleep``, ``async_sleep`` and ``jitter`` (the random part of a backoff: given its
    upper bound, returns the wait) exist for tests that must not wait for real.
    ``ledger`` (or the ``ledger`` setting, a path or URL) records resends made with an
    ``idempotency_key``: see :mod:`invites.ledger`.
    """

    name: ClassVar[str]
    settings_class: ClassVar[type[ProviderSettings]] = ProviderSettings
    default_base_url: ClassVar[str | None] = None
    #: The ``Accept`` header of every request (the vendors here answer JSON); None: httpx's
    #: ``*/*``. A call's own ``Accept`` header wins.
    accept: ClassVar[str | None] = "application/json"

    def __init__(
        self,
        settings: S,
        *,
        client: httpx.Client | None = None,
        async_client: httpx.AsyncClient | None = None,
        pacer: Pacer | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[None]] = _asyncio_sleep,
        jitter: Callable[[float], float] | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        self.settings = settings
        base_url = settings.base_url or self.default_base_url
        if base_url is None:  # a vendor without a default_base_url: as any missing key
            raise ConfigurationError("base_url: is required", provider=self.name)
        self.base_url = self.canonical_base_url(base_url)
        # Computed once, before anything keyed by it (the shared pace below, the ledger's records).
        self.identity: str = compute_identity(self.name, self.base_url, settings)
        timeout = timeout_for(settings)
        self._transport = Transport(timeout, _route(self), client, async_client)
        self._credentials = Credentials(settings.token, settings.token_provider)
        self._store_pacer = (
            store_pacer(self.name, self.identity, settings, clock) if pacer is None else None
        )
        self._pacer: Pacer = pacer or self._store_pacer or local_pacer(settings, clock)
        learns = isinstance(self._pacer, Learner) and self._pacer.learns
        self._learner = self._pacer if isinstance(self._pacer, Learner) and learns else None
        self._engine = self._make_engine(timeout, clock, jitter)
        self._driver = Driver(
            self._engine,
            self._transport,
            self._pacer,
            self._learner,
            self._credentials,
            sleep,
            async_sleep,
        )
        self._ledger = _provider_ledger(settings, ledger)
        if settings.per_user_limit is not None and self._ledger is None:
            raise ConfigurationError(
                "ledger: is required by per_user_limit (the ledger setting or argument: the "
                "budget is counted over its records)",
                provider=self.name,
            )

    def _make_engine(
        self,
        timeout: httpx.Timeout,
        clock: Callable[[], float],
        jitter: Callable[[float], float] | None,
    ) -> Engine:
        """The engine of this provider's resends: its policy from the settings, its parts."""
        return Engine(
            self.name,
            policy=RetryPolicy(
                max_attempts=self.settings.max_attempts,
                deadline=self.settings.deadline,
                max_retry_after=self.settings.max_retry_after,
                retry_unknown=self.settings.retry_unknown,
                jitter=jitter,
            ),
            credentials=self._credentials,
            timeout=timeout,
            clock=clock,
            on_attempt=self.settings.on_attempt,
            # Only this process's own throttle can tell for sure, without I/O, that it is idle.
            pacing_idle=self._pacer.idle if type(self._pacer) is Throttle else None,
            pacing_learns=self._learner is not None,
            headers=self._default_headers(),
            route_ids=route_ids(self.settings),
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def _default_headers(self) -> dict[str, str]:
        headers = {"User-Agent": user_agent(self.settings.user_agent)}
        if self.accept is not None:
            headers["Accept"] = self.accept
        return headers

    # -- what a vendor writes ------------------------------------------------------------------

    def flow(self, invitee: Invitee) -> Flow:
        """Yield the calls a resend needs and return its result; raise mapped errors."""
        raise NotImplementedError

    def auth_header(self, token: str) -> tuple[str, str]:
        """The header that carries the credential: called once per token, then reused."""
        return ("Authorization", "Bearer " + token)

    def canonical_user_id(self, user_id: str) -> str:
        """The one spelling of ``user_id`` the vendor gives the user it names; default: as written.

        Every key a resend is known by uses it: the request URL, the ledger's record, a bulk
        run's repeated-id check, and ``Outcome.user_id`` (``Outcome.input_id`` keeps what the
        caller wrote). A vendor whose ids are UUIDs returns them lower-cased. Called with ids
        that passed :func:`~invites.adapter.check_user_id`; an id the vendor would refuse is
        returned as it is (the flow refuses it before sending).
        """
        return user_id

    @classmethod
    def canonical_base_url(cls, base_url: str) -> str:
        """The one spelling of ``base_url`` the provider's identity uses: scheme and host
        lower-cased, the default port dropped, trailing slashes stripped. A vendor extends it
        with its own rules (SoftwareOne strips ``/public/v1``)."""
        return canonical_base_url(base_url)

    # -- public API ------------------------------------------------------------------------------

    def resend_invite(
        self,
        invitee: Invitee | str,
        *,
        idempotency_key: str | None = None,
        ignore_budget: bool = False,
    ) -> ResendResult:
        """Resend the invitation, blocking. Raises an :class:`~invites.InviteError` subclass.

        With ``idempotency_key`` (needs a ledger), the resend is sent at most once for that key:
        a later call with it returns the recorded result or raises the recorded error. Under a
        ``per_user_limit``, every resend is counted in the ledger, and one over the budget raises
        :class:`~invites.ResendTooSoon` before any request (``ignore_budget``: sent anyway, and
        recorded so).
        """
        if self._transport.closed:
            raise self._closed()
        invitee = self._canonical(invitee)
        budgeted = idempotency_key is None and _budgeted(self)
        watch = ACTIVE.get()
        if watch is not None:  # an outer entry point (a bulk run, the ledger) reports the outcome
            if budgeted:
                return _needs_ledger(self._ledger).resend(
                    self, None, invitee, self.resend_invite, ignore_budget=ignore_budget
                )
            return self._resend(invitee, watch)
        watch = Watch(self.name, invitee.user_id, self.settings.on_outcome)
        if idempotency_key is None and not budgeted:
            return watch.watching(invitee, lambda: self._resend(invitee, watch))
        ledger = _needs_ledger(self._ledger)
        send = self.resend_invite  # called by the ledger: reports to the watch, ACTIVE meanwhile
        return watch.watching(
            invitee,
            lambda: ledger.resend(
                self, idempotency_key, invitee, send, ignore_budget=ignore_budget
            ),
            nested=True,
        )

    def _resend(self, invitee: Invitee, watch: Watch) -> ResendResult:
        return self._driver.resend(
            self.flow, invitee, self.auth_header, watch, self.settings.deadline
        )

    async def aresend_invite(
        self,
        invitee: Invitee | str,
        *,
        idempotency_key: str | None = None,
        ignore_budget: bool = False,
    ) -> ResendResult:
        """Resend the invitation from async code. Same contract as :meth:`resend_invite`."""
        if self._transport.closed:
            raise self._closed()
        invitee = self._canonical(invitee)
        budgeted = idempotency_key is None and _budgeted(self)
        watch = ACTIVE.get()
        if watch is not None:
            if budgeted:
                return await _needs_ledger(self._ledger).aresend(
                    self, None, invitee, self.aresend_invite, ignore_budget=ignore_budget
                )
            return await self._aresend(invitee, watch)
        watch = Watch(self.name, invitee.user_id, self.settings.on_outcome)
        if idempotency_key is None and not budgeted:
            return await watch.awatching(invitee, self._aresend(invitee, watch))
        ledger = _needs_ledger(self._ledger)
        send = self.aresend_invite
        return await watch.awatching(
            invitee,
            ledger.aresend(self, idempotency_key, invitee, send, ignore_budget=ignore_budget),
            nested=True,
        )

    def _aresend(self, invitee: Invitee, watch: Watch) -> Coroutine[Any, Any, ResendResult]:
        return self._driver.aresend(
            self.flow, invitee, self.auth_header, watch, self.settings.deadline
        )

    def close(self) -> None:
        """Close the clients (and ledger, pace store) this provider created; it refuses resends
        after.

        Each event loop's async client is closed in its loop: soon when that loop is running,
        when it next runs otherwise (a ``ResourceWarning`` says so: prefer :meth:`aclose` there).
        """
        self._transport.close()
        if self._ledger is not None:
            self._ledger.close()
        if self._store_pacer is not None:
            self._store_pacer.close()

    async def aclose(self) -> None:
        """Close the running loop's async client, then everything :meth:`close` closes."""
        await self._transport.aclose()
        if self._ledger is not None:
            self._ledger.close()
        if self._store_pacer is not None:
            await self._store_pacer.aclose()  # the running loop's store client, and the sync one

    def __del__(self, _warn: Callable[..., None] = warnings.warn) -> None:
        # The default argument keeps warn reachable while the interpreter shuts down.
        transport: Transport | None = self.__dict__.get("_transport")
        if transport is not None and not transport.closed and transport.holds_open_clients():
            _warn(
                f"unclosed provider {self!r}: call close() or aclose(), or use it as a context "
                "manager",
                ResourceWarning,
                source=self,
            )
            transport.close(warn=False)  # nobody can use it any more: release its connections

    def __enter__(self) -> Self:
        if self._transport.closed:
            raise self._closed()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        if self._transport.closed:
            raise self._closed()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def connection_limit(self, *, asynchronous: bool) -> int | None:
        """Most connections the provider's own client opens to its vendor (None: the caller's
        client). Bulk runs keep their concurrency within it."""
        return self._transport.connection_limit(asynchronous=asynchronous)

    # -- the drivers' work -----------------------------------------------------------------------

    def _canonical(self, item: Invitee | str) -> Invitee:
        """``item`` as an :class:`Invitee` whose id is the vendor's canonical spelling."""
        invitee = as_invitee(item)
        user_id = self.canonical_user_id(invitee.user_id)
        if user_id != invitee.user_id:
            invitee = attrs.evolve(invitee, user_id=user_id)
        return invitee

    def _closed(self) -> RuntimeError:
        return RuntimeError(f"cannot resend, as the provider {self!r} has been closed")


# -- the ledger for idempotency keys (logic in invites.ledger; loaded only when configured) --------


def _provider_ledger(settings: ProviderSettings, ledger: Ledger | None) -> ProviderLedger | None:
    if settings.ledger is None and ledger is None:
        return None
    from ..ledger._provider_ledger import ProviderLedger

    return ProviderLedger.build(settings.ledger, ledger)


def _budgeted(provider: BaseProvider[Any]) -> bool:
    """Whether a resend must be claimed for the provider's per-user budget: it has one, and no
    guard (a bulk run's, a task's) has claimed this resend already."""
    if provider.settings.per_user_limit is None:
        return False
    from ..ledger._guard import under_claim

    return not under_claim()


def _needs_ledger(ledger: ProviderLedger | None) -> ProviderLedger:
    if ledger is None:
        from ..errors import ConfigurationError

        raise ConfigurationError("idempotency_key needs a ledger (the ledger setting or argument)")
    return ledger


# -- the proxies of its own clients ---------------------------------------------------------


def _route(provider: BaseProvider[Any]) -> Route:
    """The proxies of the provider's own clients: the ``proxy`` setting, else the environment's.

    One that cannot be used is refused here, before anything is sent.
    """
    try:
        return Route(provider.settings.proxy)
    except ValueError as exc:
        raise ConfigurationError(str(exc), provider=provider.name) from None
