"""Everything a vendor adapter needs, in one place.

An adapter subclasses :class:`BaseProvider`, parametrized by its settings class (a frozen attrs
subclass of :class:`ProviderSettings`), and writes :meth:`BaseProvider.flow`: a generator that
yields a :class:`Call` per request and receives each ``httpx.Response``, its body already read
within the size limit. It returns a :class:`ResendResult`, or raises an
:class:`~invites.InviteError` subclass (:func:`response_error` builds one from an answer). A call
that failed for good (a transport failure past its retries, a refused token refresh) is thrown
into the flow as an ``InviteError``: the flow may catch it to recover, or let it propagate.

Reading answers: :func:`json_body` (the JSON value or :data:`NOT_JSON`), :func:`json_object` (the
JSON object a success must be, or an error); building URLs: :func:`segment`. Settings keys are
typed with the NewTypes below, which the configuration loader validates. A :class:`Pacer` passed
as ``pacer=`` shares one pace and one 429 pause between providers (:class:`Throttle` is the
in-process one each provider has by default). The README's "Writing an adapter" section walks
through a whole adapter.
"""

from __future__ import annotations

from ._base import BaseProvider
from ._engine import Call, Flow
from ._pacing import Pacer, Throttle
from ._settings import (
    BaseUrl,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    ProviderSettings,
    TenantId,
    Timeouts,
)
from ._wire import (
    NOT_JSON,
    error_class_for_status,
    excerpt,
    json_body,
    json_object,
    response_error,
    segment,
)
from .models import Access, Invitee, ResendResult, check_user_id
from .registry import register_provider

__all__ = [
    "NOT_JSON",
    "Access",
    "BaseProvider",
    "BaseUrl",
    "Call",
    "Flow",
    "Invitee",
    "NonNegativeFloat",
    "Pacer",
    "PositiveFloat",
    "PositiveInt",
    "ProviderSettings",
    "ResendResult",
    "TenantId",
    "Throttle",
    "Timeouts",
    "check_user_id",
    "error_class_for_status",
    "excerpt",
    "json_body",
    "json_object",
    "register_provider",
    "response_error",
    "segment",
]
