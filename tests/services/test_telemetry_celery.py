"""A resend run by a Celery worker joins the trace of the code that sent the task.

The sender and the worker both use ``opentelemetry-instrumentation-celery``: it carries the
sender's context in the message headers, and the worker's task span is current while
``invites.celery`` resends, so the resend's span continues the sender's trace. Needs RabbitMQ.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import celery
import pytest
from _support import otel as otel_support
from _support.celery_workers import start_worker, stop_worker, worker_env, write_profiles
from _support.services import AMQP_URL, amqp_problem, require
from opentelemetry import trace
from opentelemetry.instrumentation.celery import CeleryInstrumentor

from invites import celery as invites_celery
from invites.sandbox import RunningSandbox, Sandbox

#: The worker's app module, after the one celery_support writes: its own SDK, spans to a file.
TRACED_APP = """
import json, os
from opentelemetry import trace
from opentelemetry.instrumentation.celery import CeleryInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

spans_file = open(os.environ["TEST_SPANS"], "a", encoding="utf-8")
tracing = TracerProvider()
tracing.add_span_processor(
    SimpleSpanProcessor(
        ConsoleSpanExporter(
            out=spans_file, formatter=lambda span: span.to_json(indent=None) + os.linesep
        )
    )
)
trace.set_tracer_provider(tracing)
CeleryInstrumentor().instrument()
"""


@pytest.fixture
def instrumented() -> Iterator[None]:
    CeleryInstrumentor().instrument()  # type: ignore[no-untyped-call]
    try:
        yield
    finally:
        CeleryInstrumentor().uninstrument()  # type: ignore[no-untyped-call]


@pytest.mark.services
def test_a_task_workers_resend_span_continues_the_senders_trace(
    tmp_path: Path, server: RunningSandbox, sandbox: Sandbox, instrumented: None
) -> None:
    require("RabbitMQ", amqp_problem())
    user = str(uuid.uuid4())
    sandbox.add_users("tenant_api", [user])
    profiles = write_profiles(tmp_path / "invites.toml", server.url, str(tmp_path / "ledger.db"))
    queue = f"invites-test-{uuid.uuid4().hex[:12]}"
    env = worker_env(tmp_path, AMQP_URL, queue, profiles)
    spans_path = tmp_path / "spans.jsonl"
    env["TEST_SPANS"] = str(spans_path)
    with (tmp_path / "celery_app.py").open("a", encoding="utf-8") as module:
        module.write(TRACED_APP)
    app = celery.Celery("invites-test", broker=AMQP_URL, set_as_current=False)
    app.conf.task_default_queue = queue
    invites_celery.configure(app, profiles=profiles)
    worker = start_worker(tmp_path, "traced", env)
    tracer = trace.get_tracer("the sender")
    try:
        with otel_support.recording(), tracer.start_as_current_span("nightly sync") as job:
            outcomes = list(invites_celery.fan_out(app, [user], run="run-1", timeout=90))
    finally:
        stop_worker(worker)
        with app.connection_for_write() as connection:
            connection.default_channel.queue_delete(queue)  # type: ignore[attr-defined]

    assert [outcome.status for outcome in outcomes] == ["sent"], (
        tmp_path / "traced.log"
    ).read_text(encoding="utf-8", errors="replace")[-4000:]
    spans = [json.loads(line) for line in spans_path.read_text(encoding="utf-8").splitlines()]
    [resend] = [span for span in spans if span["name"] == "invites.resend"]
    assert resend["attributes"]["invites.outcome"] == "sent"
    assert resend["context"]["trace_id"] == f"0x{job.get_span_context().trace_id:032x}"
    by_id = {span["context"]["span_id"]: span for span in spans}
    task_span = by_id[resend["parent_id"]]  # the worker's task span, under the sender's
    assert task_span["kind"] == "SpanKind.CONSUMER"
    assert [span["name"] for span in spans if span["parent_id"] == resend["context"]["span_id"]]
    assert sandbox.emails_sent(user) == 1
