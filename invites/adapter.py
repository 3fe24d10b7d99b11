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
checked by their type, or by a ``setting(check)`` field with one of the checks below
(:func:`http_url`, :func:`uuid_text`, ...; a check raises :class:`Invalid`). A :class:`Pacer` passed
as ``pacer=`` shares one pace and one 429 pause between providers (:class:`Throttle` is the
in-process one each provider has by default). docs/adapters.md ("Writing an adapter") walks
through a whole adapter.
"""

from __future__ import annotations

from ._delivery.actions import Call, Flow
from ._delivery.answers import (
    NOT_JSON,
    error_class_for_status,
    excerpt,
    json_body,
    json_object,
    response_error,
    segment,
)
from ._delivery.provider import BaseProvider
from ._pacing.local import Pacer, Throttle
from ._settings.fields import (
    REQUIRED,
    Invalid,
    ProviderSettings,
    Timeouts,
    flag,
    header_text,
    http_url,
    integer,
    non_negative,
    number,
    one_of,
    path_segment,
    positive,
    setting,
    text,
    uuid_text,
)
from .models import Access, Invitee, ResendResult, check_user_id
from .registry import register_provider

__all__ = [
    "NOT_JSON",
    "REQUIRED",
    "Access",
    "BaseProvider",
    "Call",
    "Flow",
    "Invalid",
    "Invitee",
    "Pacer",
    "ProviderSettings",
    "ResendResult",
    "Throttle",
    "Timeouts",
    "check_user_id",
    "error_class_for_status",
    "excerpt",
    "flag",
    "header_text",
    "http_url",
    "integer",
    "json_body",
    "json_object",
    "non_negative",
    "number",
    "one_of",
    "path_segment",
    "positive",
    "register_provider",
    "response_error",
    "segment",
    "setting",
    "text",
    "uuid_text",
]
