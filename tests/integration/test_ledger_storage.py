"""A SQLite ledger that cannot be trusted, or cannot take a write, never lets an email go twice.

Damaged files (emptied, the WAL deleted after a clean stop, garbage inside) end in a refusal
(exit 2, naming the file and what to do) or a correct run. A full or read-only ledger is refused
before anything is sent; a write that does not return (another connection holds the write lock)
fails its caller within the write timeout, an unfinished claim reads ``unknown``, never
``failed``, and SIGTERM still ends the CLI within 5 s.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import invites
from invites import ConnectionFailed, OutcomeUnknown, cli
from invites.ledger import RecordKey, new_owner, open_ledger
from invites.ledger._guard import Guard
from invites.ledger._sqlite import SQLiteLedger
from invites.sandbox import TENANT_API_KEY, TENANT_ID, Fault, RunningSandbox, Sandbox

USERS = 40


def _config(folder: Path, base_url: str) -> Path:
    path = folder / "invites.toml"
    path.write_text(
        f'[profiles.tenant]\nprovider = "tenant_api"\nbase_url = "{base_url}"\n'
        f'token = "{TENANT_API_KEY}"\ntenant_id = "{TENANT_ID}"\n',
        encoding="utf-8",
    )
    return path


def _users(sandbox: Sandbox, folder: Path, count: int = USERS) -> Path:
    ids = sandbox.seed_users(count)["tenant_api"]
    path = folder / "users.csv"
    path.write_text("user_id\n" + "\n".join(ids) + "\n", encoding="utf-8")
    return path


def _run(
    capsys: pytest.CaptureFixture[str], config: Path, users: Path, journal: Path
) -> tuple[int, str]:
    code = cli.main(
        ["resend", "--config", str(config), "--input", str(users), "--journal", str(journal)]
    )
    return code, capsys.readouterr().err


def _most_emails(sandbox: Sandbox) -> int:
    return max(sandbox.emails_snapshot().values(), default=0)


@pytest.fixture
def folder() -> Iterator[Path]:
    """A folder another user can read (the read-only case runs the CLI as ``nobody``)."""
    path = Path(tempfile.mkdtemp(prefix="invites-storage-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# -- damaged files ---------------------------------------------------------------------------


def _emptied(journal: Path) -> None:
    journal.write_bytes(b"")


def _wal_deleted(journal: Path) -> None:
    for suffix in ("-wal", "-shm"):
        Path(f"{journal}{suffix}").unlink(missing_ok=True)


def _garbage_inside(journal: Path) -> None:
    with journal.open("r+b") as file:
        file.seek(4096)
        file.write(os.urandom(8192))


@pytest.mark.parametrize(
    ("damage", "refused"),
    [(_emptied, "is empty"), (_wal_deleted, None), (_garbage_inside, "is damaged")],
    ids=["emptied", "wal deleted after a clean stop", "garbage inside"],
)
def test_a_damaged_ledger_is_refused_or_runs_correctly(
    damage: Callable[[Path], None],
    refused: str | None,
    server: RunningSandbox,
    folder: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    sandbox = server.sandbox
    config, users, journal = _config(folder, server.url), _users(sandbox, folder), folder / "j.db"
    assert _run(capsys, config, users, journal)[0] == 0
    assert len(sandbox.emails_snapshot()) == USERS

    damage(journal)
    code, err = _run(capsys, config, users, journal)

    assert _most_emails(sandbox) == 1  # nobody emailed twice
    if refused is None:
        assert code == 0
        assert f"{USERS} skipped (journal)" in err
    else:
        assert code == 2
        assert str(journal) in err
        assert refused in err
        assert "invites ledger backup" in err  # what to do


def test_a_copy_of_the_file_alone_after_a_clean_close_is_complete(folder: Path) -> None:
    journal = folder / "j.db"
    open_ledger(journal).close()
    # Open all along: SQLite's own checkpoint at the last connection's close never runs.
    reader = sqlite3.connect(journal)
    try:
        with open_ledger(journal) as ledger:
            for number in range(200):
                key = RecordKey("run", "identity", f"user-{number}")
                ledger.claim(key, owner="o", lease=60)
                ledger.settle(key, "sent", owner="o")
        shutil.copyfile(journal, folder / "copy.db")
    finally:
        reader.close()
    with open_ledger(folder / "copy.db") as copy:
        assert sum(record.state == "sent" for record in copy.records()) == 200


def test_backup_copies_a_ledger_in_use_completely(
    folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = folder / "j.db"
    with open_ledger(journal) as ledger:
        for number in range(50):
            key = RecordKey("run", "identity", f"user-{number}")
            ledger.claim(key, owner="o", lease=60)
        ledger.flush()
        assert cli.main(["ledger", "backup", str(journal), str(folder / "b.db")]) == 0
        assert "50 records" in capsys.readouterr().out
        # An existing target is never overwritten.
        assert cli.main(["ledger", "backup", str(journal), str(folder / "b.db")]) == 2
        assert "exists already" in capsys.readouterr().err
    with open_ledger(folder / "b.db") as copy:
        assert len(list(copy.records())) == 50


# -- full, read-only, stuck ------------------------------------------------------------------


def _cli_process(arguments: list[str], **options: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603  (this interpreter, the test's own arguments)
        [sys.executable, "-m", "invites", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **options,
    )


def _file_size_limit(limit: int) -> Callable[[], None]:
    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past it fails (EFBIG) instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return limited


@contextmanager
def _read_only(journal: Path) -> Iterator[None]:
    """The ledger file made read-only for the CLI (for root, whom file modes do not stop: the
    immutable attribute, where the file system and the capabilities allow it)."""
    if os.geteuid() != 0:
        journal.chmod(0o444)
        try:
            yield
        finally:
            journal.chmod(0o644)
        return
    chattr = shutil.which("chattr") or "chattr"
    made = subprocess.run([chattr, "+i", str(journal)], check=False, capture_output=True)  # noqa: S603
    if made.returncode:
        pytest.skip("running as root, and the file cannot be made immutable (chattr +i)")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(journal)], check=True)  # noqa: S603


@pytest.mark.parametrize("fault", ["full", "read-only"])
def test_a_ledger_that_cannot_take_a_write_is_refused_before_anything_is_sent(
    fault: str, server: RunningSandbox, folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sandbox = server.sandbox
    config, users, journal = _config(folder, server.url), _users(sandbox, folder), folder / "j.db"
    with open_ledger(journal):
        pass  # an existing, sound ledger
    arguments = [
        "resend",
        "--config",
        str(config),
        "--input",
        str(users),
        "--journal",
        str(journal),
    ]
    if fault == "full":
        limit = _file_size_limit(journal.stat().st_size)
        process = _cli_process(arguments, preexec_fn=limit)
        out, err = process.communicate(timeout=60)
    else:
        with _read_only(journal):
            process = _cli_process(arguments)
            out, err = process.communicate(timeout=60)
            # Reading it is still fine.
            assert cli.main(["ledger", "show", str(journal)]) == 0
            assert "0 records" in capsys.readouterr().out
    assert process.returncode == 2, err
    assert str(journal) in err
    assert "writable" in err
    assert "room" in err
    assert sandbox.emails_snapshot() == {}
    assert out == ""


@pytest.fixture
def write_lock() -> Iterator[Callable[[Path], Callable[[], None]]]:
    """Takes a ledger file's write lock and holds it: every write there waits, as on a frozen
    file system, until the returned function or the test's end releases it."""
    held: list[sqlite3.Connection] = []

    def release() -> None:
        while held:
            connection = held.pop()
            connection.rollback()
            connection.close()

    def hold(journal: Path) -> Callable[[], None]:
        connection = sqlite3.connect(journal, timeout=30, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        held.append(connection)
        return release

    yield hold
    release()


def test_a_write_that_never_returns_fails_its_caller_and_an_unfinished_claim_reads_unknown(
    folder: Path, write_lock: Callable[[Path], Callable[[], None]]
) -> None:
    journal = folder / "j.db"
    ledger = SQLiteLedger(journal, write_timeout=0.5)
    try:
        write_lock(journal)
        stuck = RecordKey("run", "identity", "stuck")
        queued = RecordKey("run", "identity", "queued")
        outcomes: dict[str, BaseException] = {}

        def claim(key: RecordKey) -> None:
            try:
                ledger.claim(key, owner="o", lease=60)
            except Exception as exc:
                outcomes[key.user_id] = exc

        first = threading.Thread(target=claim, args=(stuck,))
        first.start()
        first.join()  # its commit is the one stuck on the lock
        claim(queued)  # waits behind it
    finally:
        ledger.close()
    # The claim caught in the stuck commit may still be recorded: it is not reported failed.
    assert isinstance(outcomes["stuck"], OutcomeUnknown)
    assert "nothing was sent" in str(outcomes["stuck"])
    # The one the writer never took is dropped: nothing claimed, nothing sent.
    assert type(outcomes["queued"]) is ConnectionFailed


def test_an_unfinished_claim_is_reported_unknown_by_a_bulk_run(
    folder: Path, write_lock: Callable[[Path], Callable[[], None]], server: RunningSandbox
) -> None:
    journal = folder / "j.db"
    ledger = SQLiteLedger(journal, write_timeout=0.5)
    config = {"provider": "tenant_api", "base_url": server.url, "token": TENANT_API_KEY}
    config["tenant_id"] = TENANT_ID
    users = server.sandbox.seed_users(3)["tenant_api"]
    try:
        write_lock(journal)
        with invites.from_config(config) as provider:
            outcomes = list(
                invites.resend_many(provider, users, ledger=ledger, run="r", concurrency=1)
            )
    finally:
        ledger.close()
    statuses = [outcome.status for outcome in outcomes]
    assert statuses.count("unknown") == 1
    assert statuses.count("failed") == 2
    assert server.sandbox.emails_snapshot() == {}


def test_sigterm_stops_a_run_whose_ledger_write_never_returns_within_5_s(
    server: RunningSandbox,
    folder: Path,
    write_lock: Callable[[Path], Callable[[], None]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    sandbox = server.sandbox
    config, users, journal = (
        _config(folder, server.url),
        _users(sandbox, folder, 200),
        folder / "j.db",
    )
    for user in users.read_text().split()[1:]:
        sandbox.inject(user, Fault.SLOW)  # 0.2 s each: the run lasts about 10 s
    arguments = [
        "resend",
        "--config",
        str(config),
        "--input",
        str(users),
        "--journal",
        str(journal),
    ]
    arguments += ["--concurrency", "4"]
    process = _cli_process(arguments)
    try:
        first_line = process.stdout.readline() if process.stdout else ""
        assert first_line  # an outcome: the run is under way
        release = write_lock(journal)  # from now on, no ledger write returns
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 143, err
    assert "terminated" in err
    release()
    # What the stopped run left is trusted: a rerun sends the rest, nobody twice.
    code, err = _run(capsys, config, users, journal)
    assert code in (0, 1), err
    assert sandbox.emails_snapshot() == dict.fromkeys(users.read_text().split()[1:], 1)


# -- a live owner on this host ---------------------------------------------------------------


def test_a_live_owner_on_this_host_is_never_taken_over_whatever_the_clock_says(
    folder: Path,
) -> None:
    journal = folder / "j.db"
    key = RecordKey("run", "identity", "user")
    other = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    owner = f"{socket.gethostname()}:{other.pid}:0123456789ab"
    try:
        with open_ledger(journal) as ledger:
            assert ledger.claim(key, owner=owner, lease=60).granted
        ahead = SQLiteLedger(journal, clock=lambda: time.time() + 200)  # its lease ran out
        with ahead:
            claim = ahead.claim(key, owner=new_owner(), lease=60, retry_unknown=True)
            assert not claim.granted
            assert claim.in_flight
    finally:
        other.communicate(b"")
    # Once that process has ended, its unfinished claim may be taken over (as asked).
    with SQLiteLedger(journal, clock=lambda: time.time() + 200) as later:
        assert later.claim(key, owner=new_owner(), lease=60, retry_unknown=True).granted


def test_a_live_guard_of_this_process_is_never_taken_over(
    folder: Path, server: RunningSandbox
) -> None:
    config = {"provider": "tenant_api", "base_url": server.url, "token": TENANT_API_KEY}
    config["tenant_id"] = TENANT_ID
    with invites.from_config(config) as provider, open_ledger(folder / "j.db") as ledger:
        holder = Guard(ledger, provider, lease=1)
        key = holder.key("run", "user")
        assert ledger.claim(key, owner=holder.owner, lease=1).granted  # in flight, for ever
        with SQLiteLedger(folder / "j.db", clock=lambda: time.time() + 200) as ahead:
            late = Guard(ahead, provider, retry_unknown=True)
            guarded = late.run("run", invites.Invitee(user_id="user"), provider.resend_invite)
        assert guarded.status == "unknown"
        assert guarded.skipped
        assert "in flight elsewhere" in str(guarded.error)
    assert server.sandbox.emails_snapshot() == {}
