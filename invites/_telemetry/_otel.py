"""The OpenTelemetry side of a resend: its spans, its metrics, ``traceparent`` on its requests.

Imported only once the application has loaded the OpenTelemetry API (see
:mod:`invites._telemetry`). The tracer and meter come from the global providers through the API's
proxies, so an SDK configured after ``invites`` was imported is still used.

Spans: ``invites.resend`` (INTERNAL) per resend, and one CLIENT span per HTTP attempt under it
named ``{method} {url.template}``, with the current HTTP client semantic conventions. Metric
attributes come from a small closed set (vendor, outcome, status class, claim result): never a
user id, an account id or a token.
"""

from __future__ import annotations

import time
from contextvars import Token
from typing import Final

import httpx
from opentelemetry import context, metrics, propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, StatusCode

from ..models import ResendResult

__all__ = ["ResendTrace", "claimed"]

_SCOPE: Final = "invites"
_SECONDS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

_tracer: Final = trace.get_tracer(_SCOPE)
_meter: Final = metrics.get_meter(_SCOPE)

RESENDS: Final = _meter.create_counter(
    "invites.resends", unit="{resend}", description="Resends by vendor and outcome."
)
DURATION: Final = _meter.create_histogram(
    "invites.resend.duration",
    unit="s",
    description="Time from a resend's start to its outcome, retries and waits included.",
    explicit_bucket_boundaries_advisory=_SECONDS,
)
ATTEMPTS: Final = _meter.create_counter(
    "invites.attempts", unit="{request}", description="HTTP attempts by vendor and status class."
)
RATE_LIMITED: Final = _meter.create_counter(
    "invites.rate_limited", unit="{response}", description="429 answers from the vendor."
)
PACING_WAIT: Final = _meter.create_histogram(
    "invites.pacing.wait",
    unit="s",
    description="Each wait of an attempt for the pace or a provider-wide pause.",
    explicit_bucket_boundaries_advisory=_SECONDS,
)
CLAIMS: Final = _meter.create_counter(
    "invites.ledger.claims", unit="{claim}", description="Ledger claims by result."
)

_METHODS: Final = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"))
_DEFAULT_PORTS: Final = {"https": 443, "http": 80}


#: Seconds between two looks at whether an SDK was set, while none is: the API answers that
#: question through os.environ, about as costly as the rest of a resend's telemetry.
_RECHECK: Final = 1.0
_tracing = False  # a tracer provider other than the API's proxy is set (once set, it stays)
_metering = False  # likewise for the meter provider
_next_look = 0.0
#: Attribute sets, built once each (vendor, ...) and reused: bounded by design.
_labels: dict[tuple[str, ...], dict[str, str]] = {}


def configured() -> bool:
    """Whether an SDK records traces or metrics; while neither does, a resend records nothing."""
    global _tracing, _metering, _next_look
    if _tracing and _metering:
        return True
    now = time.monotonic()
    if now >= _next_look:
        _next_look = now + _RECHECK
        _tracing = not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
        # The API's own providers (its proxy, its no-op) live in its module; an SDK's elsewhere.
        provider = type(metrics.get_meter_provider())
        _metering = not provider.__module__.startswith("opentelemetry.metrics")
    return _tracing or _metering


def _attributes(*pairs: str) -> dict[str, str]:
    """The attribute set of ``key, value, key, value...``."""
    found = _labels.get(pairs)
    if found is None:
        found = _labels[pairs] = dict(zip(pairs[::2], pairs[1::2], strict=True))
    return found


def claimed(vendor: str, result: str) -> None:
    if configured():
        CLAIMS.add(1, _attributes("invites.vendor", vendor, "invites.claim", result))


def _status_class(reply: httpx.Response | Exception) -> str:
    if isinstance(reply, httpx.Response):
        return _CLASSES.get(reply.status_code // 100, "none")
    return "none"


_CLASSES: Final = {1: "1xx", 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}


def _error_type(error: BaseException) -> str:
    kind = type(error)
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


class ResendTrace:
    """One resend's span (current while the resend runs) and the metrics of its outcome."""

    __slots__ = ("span", "token", "tracing", "vendor")

    def __init__(self, vendor: str, user_id: str) -> None:
        self.vendor = vendor
        self.span: Span | None = None
        self.token: Token[Context] | None = None
        self.tracing = False
        # No tracing SDK: no span (the API's own would be a no-op, at a cost).
        if not _tracing:
            return
        span = _tracer.start_span(
            "invites.resend",
            kind=SpanKind.INTERNAL,
            attributes={"invites.vendor": vendor, "invites.user_id": user_id},
        )
        if span.is_recording():  # not sampled: nothing to record, nothing to propagate
            self.span = span
            self.tracing = True
            self.token = context.attach(trace.set_span_in_context(span))

    def sending(self, method: str, request: httpx.Request, route: str, attempt: int) -> Span:
        assert self.span is not None
        url = request.url
        attributes: dict[str, str | int] = {
            "http.request.method": method if method in _METHODS else "_OTHER",
            "url.full": str(url),
            "url.template": route,
            "server.address": url.host,
            "server.port": url.port or _DEFAULT_PORTS.get(url.scheme, 443),
            "invites.attempt": attempt,
        }
        if method not in _METHODS:
            attributes["http.request.method_original"] = method
        if attempt > 1:
            attributes["http.request.resend_count"] = attempt - 1
        span = _tracer.start_span(
            f"{method} {route}",
            context=trace.set_span_in_context(self.span),
            kind=SpanKind.CLIENT,
            attributes=attributes,
        )
        propagate.inject(request.headers, context=trace.set_span_in_context(span))
        return span

    def answered(self, span: object, reply: httpx.Response | Exception, wait: float | None) -> None:
        vendor = self.vendor
        if isinstance(reply, httpx.Response) and reply.status_code == 429:
            RATE_LIMITED.add(1, _attributes("invites.vendor", vendor))
        status_class = _status_class(reply)
        ATTEMPTS.add(1, _attributes("invites.vendor", vendor, "invites.status_class", status_class))
        if span is None:
            return
        assert isinstance(span, Span)
        if isinstance(reply, httpx.Response):
            status = reply.status_code
            span.set_attribute("http.response.status_code", status)
            if status >= 400:
                span.set_attribute("error.type", str(status))
                span.set_status(StatusCode.ERROR)
        else:
            span.set_attribute("error.type", _error_type(reply))
            span.set_status(StatusCode.ERROR)
        if wait is not None:
            span.add_event("invites.retry", {"invites.retry.wait": wait})
            span.set_attribute("invites.retry.wait", wait)
        span.end()

    def paced(self, seconds: float) -> None:
        PACING_WAIT.record(seconds, _attributes("invites.vendor", self.vendor))
        if self.span is not None:
            self.span.add_event("invites.pacing", {"invites.pacing.wait": seconds})

    def end(
        self,
        status: str,
        elapsed: float,
        attempts: int,
        result: ResendResult | None,
        error: BaseException | None,
        skipped: bool,
        request_id: str | None,
    ) -> None:
        labels = _attributes("invites.vendor", self.vendor, "invites.outcome", status)
        RESENDS.add(1, labels)
        DURATION.record(elapsed, labels)
        span = self.span
        if span is None:
            return
        span.set_attribute("invites.outcome", status)
        span.set_attribute("invites.attempts", attempts)
        span.set_attribute("invites.renewed", result is not None and result.renewed)
        span.set_attribute("invites.ledger.skipped", skipped)
        if request_id is not None:
            span.set_attribute("invites.vendor.request_id", request_id)
        if error is not None and status in ("failed", "unknown"):
            span.set_attribute("error.type", _error_type(error))
            span.set_status(StatusCode.ERROR, type(error).__name__)
        span.end()
        if self.token is not None:
            context.detach(self.token)
        self.span = self.token = None
