"""The OpenTelemetry SDK for the tests: in-memory spans and metrics, recording only when asked.

The global tracer and meter providers can be set once per process, so one pair serves the whole
session. Spans are sampled only inside :func:`recording` (elsewhere every span is a
non-recording one: no attempt spans, no ``traceparent``), so other tests see requests as before.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader, MetricsData
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, TraceState
from opentelemetry.util.types import Attributes


class _Switch(Sampler):
    """Samples every span while on, none while off."""

    def __init__(self) -> None:
        self.on = False

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        decision = Decision.RECORD_AND_SAMPLE if self.on else Decision.DROP
        return SamplingResult(decision, attributes if self.on else None)

    def get_description(self) -> str:
        return "on while a test records"


SWITCH = _Switch()
SPANS = InMemorySpanExporter()
READER = InMemoryMetricReader()
_lock = threading.Lock()
_installed = False


def install() -> None:
    """Make the in-memory SDK the global one (once per process)."""
    global _installed
    with _lock:
        if _installed:
            return
        provider = TracerProvider(sampler=SWITCH)
        provider.add_span_processor(SimpleSpanProcessor(SPANS))
        trace.set_tracer_provider(provider)
        metrics.set_meter_provider(MeterProvider(metric_readers=[READER]))
        _installed = True


# Set before any test resends: invites looks for an SDK at most once a second while none is set.
install()


@contextmanager
def recording() -> Iterator[InMemorySpanExporter]:
    """Record spans inside the block; the exporter holds only the block's spans."""
    install()
    with _lock:
        SPANS.clear()
        SWITCH.on = True
    try:
        yield SPANS
    finally:
        SWITCH.on = False


def spans(name: str | None = None) -> list[ReadableSpan]:
    """The finished spans recorded (named ``name``), in the order they ended."""
    return [span for span in SPANS.get_finished_spans() if name is None or span.name == name]


def points(metric: str) -> list[Any]:
    """Every data point of ``metric`` collected so far (cumulative, since the process began)."""
    data: MetricsData | None = READER.get_metrics_data()
    found: list[Any] = []
    if data is None:
        return found
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for each in scope.metrics:
                if each.name == metric:
                    found.extend(each.data.data_points)
    return found


def counts(metric: str) -> dict[tuple[tuple[str, Any], ...], float]:
    """A counter's (or a histogram's count's) value per attribute set."""
    totals: dict[tuple[tuple[str, Any], ...], float] = {}
    for point in points(metric):
        key = tuple(sorted((point.attributes or {}).items()))
        value = getattr(point, "value", None)
        totals[key] = float(point.count if value is None else value)
    return totals


def all_metric_attributes() -> list[dict[str, Any]]:
    data = READER.get_metrics_data()
    found: list[dict[str, Any]] = []
    if data is None:
        return found
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for each in scope.metrics:
                found.extend(dict(point.attributes or {}) for point in each.data.data_points)
    return found
