"""Celery workers for tests: real worker processes on a real broker, with an app module and a
profiles file written for them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import celery

from _support.services import AMQP_URL, amqp_problem, postgres_problem, require
from _support.vendors import vendor_config


@contextlib.contextmanager
def fresh_queue() -> Iterator[str]:
    """A queue name no other test uses (RabbitMQ and PostgreSQL required); deleted afterwards."""
    require("RabbitMQ", amqp_problem())
    require("PostgreSQL", postgres_problem())
    name = f"invites-test-{uuid.uuid4().hex[:12]}"
    yield name
    app = celery.Celery("invites-test", broker=AMQP_URL, set_as_current=False)
    with app.connection_for_write() as connection:
        connection.default_channel.queue_delete(name)  # type: ignore[attr-defined]
    app.close()


def write_profiles(path: Path, base_url: str, ledger: str, **overrides: Any) -> Path:
    config = vendor_config("tenant_api", base_url, ledger=ledger, **overrides)
    lines = ['default = "sandbox"', "", "[profiles.sandbox]"]
    lines += [f"{key} = {toml_value(value)}" for key, value in config.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


APP_MODULE = textwrap.dedent(
    """
    import os
    from celery import Celery
    import invites.celery

    app = Celery("invites-test", broker=os.environ["TEST_BROKER"])
    app.conf.task_default_queue = os.environ["TEST_QUEUE"]
    app.conf.broker_connection_retry_on_startup = True
    invites.celery.configure(app, profiles=os.environ["TEST_PROFILES"])
    """
)


def worker_env(directory: Path, broker: str, queue: str, profiles: Path) -> dict[str, str]:
    """The environment of a worker importing ``celery_app`` from ``directory`` (written here)."""
    (directory / "celery_app.py").write_text(APP_MODULE, encoding="utf-8")
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(directory), *sys.path]),
        "TEST_BROKER": broker,
        "TEST_QUEUE": queue,
        "TEST_PROFILES": str(profiles),
    }


def start_worker(directory: Path, name: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A worker process (8 threads) whose log goes to ``directory/name.log``."""
    with (directory / f"{name}.log").open("wb") as log:
        return start_worker_logging(log, name, directory, env)


def start_worker_logging(
    log: Any, name: str, directory: Path, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "celery_app",
            "worker",
            "--pool",
            "threads",
            "--concurrency",
            "8",
            "-n",
            # Unique per test run: a broker shared by two runs refuses a second worker of one name.
            f"{name}-{os.getpid()}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel",
            "WARNING",
        ],
        cwd=directory,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def stop_worker(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
