"""The ``invites`` command line: resend invitations in bulk, check a configuration, try a demo.

This module parses the command line; ``resend``, ``ledger`` (with ``ledger_user``),
``check``, ``demo``, ``migrate``, ``fanout`` and ``servers`` run the subcommands; ``rows``
(reading input), ``report`` (the summary), ``display`` (tables and progress), ``where``
(ledger locations) and ``common`` (exit statuses, profiles) are what they share.

argparse (standard library), not click or typer: a handful of subcommands need no extra dependency.
rich (the ``cli`` extra) draws the progress bar and tables, imported only when one is drawn; plain
text replaces it when it is not installed. Each subcommand imports what it uses when it runs, so
``invites --help`` loads neither the sandbox's web stack nor rich.

Exit statuses: 0 every invitee sent or already verified; 1 some failed or have an unknown outcome;
2 a usage or configuration error; 130 interrupted, 143 terminated (SIGTERM): the resends in flight
are settled first.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from .._version import __version__
from ..errors import redact_url
from ..registry import known_providers
from .common import EXIT_OK, EXIT_USAGE, UsageError

__all__ = ["main"]

_RESEND_EPILOG = """\
input: CSV with a header row, or JSON Lines (one object per line), chosen by the file's suffix
(.csv, .jsonl, .ndjson). Columns or keys: user_id (required), email, first_name, last_name,
timezone, user_type. Bad rows are reported with their line numbers and counted as failed.

output: one JSON object per input row: user_id, row ("line 7", "argument 2"), outcome (sent |
already_verified | failed | unknown), error (exception class or null), message, status_code,
skipped (true when nothing was sent for this row: the journal settled it, the profile's
per_user_limit refused it (error ResendTooSoon), or it repeats an earlier row, named by
duplicate_of).

journal: a ledger (a SQLite path, sqlite:///... or postgresql://...; without --journal, the
profile's `ledger` key; stderr names the one used). Each resend is claimed in it before it is sent
and its outcome recorded after; a rerun with the same ledger and --run skips invitees already sent
or verified and reports those whose earlier outcome is unknown (the email may have gone) without
resending them. A ledger that cannot be opened or read stops the run before anything is sent
(exit status 2). List them with `invites ledger show LEDGER --state unknown`; settle each with
`invites ledger settle LEDGER USER_ID --as sent|failed` once checked. A profile with per_user_limit
counts every run in that ledger: a row whose user was emailed too recently, by any run, is
skipped with ResendTooSoon and does not fail the run (--ignore-budget sends anyway).

exit status: 0 all sent or already verified, 1 any failed or unknown, 2 usage or configuration
error, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM); after a stop the resends in flight
finished and were recorded.
"""

_LEDGER_EPILOG = """\
states: sent, already_verified, failed (nothing was sent: a rerun tries again), unknown (an
attempt may have sent the email and recorded no answer: a killed run, a lost answer, or one still
in flight). A rerun never resends an unknown one unless --retry-unknown. Check the vendor (or ask
the user), then settle it: --as sent (it went out: never resent) or --as failed (it did not: the
next rerun sends it).
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="invites",
        description="Resend user invitations through Ecosuite, SoftwareOne or a tenant-header API.",
    )
    parser.add_argument("--version", action="version", version=f"invites {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log every request attempt to stderr"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    _resend_command(commands)
    _ledger_commands(commands)

    commands.add_parser(
        "demo",
        help="resend through simulated vendors on loopback; no credentials needed",
        description="Serve the sandbox on a free loopback port and resend to users in every "
        "state through all three vendors.",
    )

    commands.add_parser(
        "sandbox",
        help="serve the simulated vendors, seed users for bulk runs, read their email counts "
        "(see: invites sandbox --help)",
        add_help=False,
    )

    check = commands.add_parser(
        "check-config",
        help="validate a profiles file and list its profiles (never their secrets)",
        description="Validate a TOML profiles file; list each profile's provider and endpoint; "
        "check that the ledger and the rate-limit store each profile names answer (exit status "
        "1 when one does not).",
    )
    _config_arguments(check)

    commands.add_parser("providers", help="list the provider names that can be configured")
    return parser


def _run_arguments(resend: argparse.ArgumentParser) -> None:
    """What a run may do beyond sending once: check only, resend unknowns, go over the budget."""
    resend.add_argument(
        "--dry-run",
        action="store_true",
        help="check the configuration and every row; send nothing, write no output",
    )
    resend.add_argument(
        "--retry-unknown",
        action="store_true",
        help="resend to invitees the journal shows with an unknown outcome (they may get the "
        "email twice)",
    )
    resend.add_argument(
        "--ignore-budget",
        action="store_true",
        help="send even to users the profile's per_user_limit says were emailed too recently "
        "(this run only; the ledger records each resend that went over it)",
    )


def _resend_command(commands: Any) -> None:
    resend = commands.add_parser(
        "resend",
        help="resend invitations to user ids or to every row of a CSV / JSON Lines file",
        description="Resend invitations with bounded concurrency; one JSON line per invitee.",
        epilog=_RESEND_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    resend.add_argument("user_ids", nargs="*", metavar="USER_ID", help="user ids to resend to")
    # Also after the subcommand; SUPPRESS keeps an absent one from resetting `invites -v resend`.
    resend.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help="log every request attempt to stderr",
    )
    _config_arguments(resend)
    resend.add_argument("--input", metavar="FILE", help="a .csv or .jsonl file of invitees")
    resend.add_argument(
        "--output", metavar="FILE", help="write the JSON lines to FILE instead of stdout"
    )
    resend.add_argument(
        "--concurrency",
        type=_positive_int,
        default=8,
        metavar="N",
        help="resends in flight at once (default: 8)",
    )
    resend.add_argument(
        "--journal",
        metavar="LEDGER",
        help="record each resend in LEDGER (a SQLite path, sqlite:/// or postgresql:// URL; "
        "default: the profile's ledger) before it is sent and its outcome after; a rerun skips "
        "invitees it shows as sent or already verified (and unknown, unless --retry-unknown)",
    )
    resend.add_argument(
        "--run",
        default="default",
        metavar="NAME",
        help="the run's name in the journal: a rerun with the same name resumes it, another "
        "name sends to everyone again (default: %(default)s)",
    )
    _run_arguments(resend)
    _worker_arguments(resend)


def _worker_arguments(resend: argparse.ArgumentParser) -> None:
    """``resend --via celery`` and what goes with it."""
    resend.add_argument(
        "--via",
        choices=("local", "celery"),
        default="local",
        help="local: resend from this process (default); celery: send one task per invitee to "
        "the workers on --broker and collect the outcomes from the profile's ledger (or "
        "$INVITES_LEDGER); the profile's token is not needed",
    )
    resend.add_argument(
        "--broker",
        metavar="URL",
        help="the Celery broker the workers consume (--via celery; default: $INVITES_BROKER, "
        "which keeps its password off the command line)",
    )
    resend.add_argument(
        "--queue",
        metavar="NAME",
        help="the queue the workers consume (--via celery; default: the app's, 'celery')",
    )
    resend.add_argument(
        "--wait",
        type=_positive_int,
        default=3600,
        metavar="SECONDS",
        help="how long --via celery waits for the workers' outcomes; later ones count as "
        "unknown (default: 3600)",
    )


def _ledger_commands(commands: Any) -> None:
    ledger = commands.add_parser(
        "ledger",
        help="list, export or settle what runs recorded in a ledger; create its schema (migrate)",
        description="Inspect a ledger: every resend a run claimed and its outcome.",
        epilog=_LEDGER_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = ledger.add_subparsers(dest="ledger_command", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="a table of the records, oldest first")
    export = actions.add_parser("export", help="every record as one JSON object per line")
    settle = actions.add_parser(
        "settle", help="record what became of a resend after checking it by hand"
    )
    for parser in (show, export, settle):
        _ledger_target(parser)
    show.add_argument(
        "--user",
        metavar="ID",
        help="this user's records across every run, oldest send first, with when each was sent "
        "and whether it counts against per_user_limit",
    )
    for parser in (show, export):
        parser.add_argument("--run", metavar="NAME", help="only this run")
        parser.add_argument(
            "--state",
            choices=("sent", "already_verified", "failed", "unknown"),
            help="only records that read so (unknown: no outcome recorded, or a lost answer)",
        )
    settle.add_argument("user_id", metavar="USER_ID")
    settle.add_argument(
        "--as",
        dest="state",
        required=True,
        choices=("sent", "failed"),
        help="sent: the email went out (never resent); failed: it did not (a rerun sends it)",
    )
    settle.add_argument("--run", metavar="NAME", help="the run, when the user is in several")
    settle.add_argument("--note", metavar="TEXT", help="why, kept in the record's message")
    migrate = actions.add_parser(
        "migrate",
        help="create the ledger's schema and table if missing (safe to run at any time)",
        description="Create the ledger's schema, table and index unless they exist. Opening a "
        "ledger does the same; this runs it ahead, e.g. from a deployment.",
    )
    migrate.add_argument("url", metavar="URL", help="postgresql://... or a SQLite path")
    backup = actions.add_parser(
        "backup",
        help="copy a SQLite ledger, complete and checked, even while a run writes to it",
        description="Copy a SQLite ledger with SQLite's online backup and check the copy. Never "
        "copy the .db file alone while a run is live: records still in its -wal file are lost.",
    )
    backup.add_argument("source", metavar="SRC", help="the ledger: a path or sqlite:///path")
    backup.add_argument("target", metavar="DEST", help="the new file to write")


def _ledger_target(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "file",
        nargs="?",
        metavar="LEDGER",
        help="the ledger: a SQLite path, sqlite:///... or postgresql://... (default: the "
        "profile's ledger, with --config)",
    )
    parser.add_argument(
        "--config", metavar="FILE", help="TOML profiles file whose profile names the ledger"
    )
    parser.add_argument(
        "--profile", metavar="NAME", help="the profile to use (default: the file's default)"
    )


def _config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        required=True,
        metavar="FILE",
        help="TOML profiles file (see docs/configuration.md)",
    )
    parser.add_argument(
        "--profile", metavar="NAME", help="the profile to use (default: the file's default)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    stdout, stderr = sys.stdout, sys.stderr
    if arguments[:1] == ["sandbox"]:
        # The sandbox has its own options (port, faults, rate limit): hand it the rest.
        return _guarded(lambda: _sandbox(arguments[1:]), stderr)
    parser = _parser()
    try:
        args = parser.parse_args(arguments)
    except SystemExit as exc:  # --help, --version, or a usage error argparse reported
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help(stderr)
        return EXIT_USAGE
    logger = logging.getLogger("invites")
    level = logger.level
    handler = _StderrHandler(logging.DEBUG if args.verbose else logging.WARNING)
    handler.setFormatter(logging.Formatter("invites: %(message)s"))
    logger.addHandler(handler)
    if args.verbose:
        logger.setLevel(logging.DEBUG)
    try:
        return _guarded(lambda: _dispatch(args, stdout, stderr), stderr)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _guarded(command: Callable[[], int], stderr: TextIO) -> int:
    try:
        return command()
    except UsageError as exc:
        stderr.write(f"invites: {redact_url(str(exc))}\n")
        return EXIT_USAGE


def _dispatch(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    if args.command == "resend":
        from . import resend

        return resend.run(args, stdout, stderr)
    if args.command == "ledger" and args.ledger_command == "migrate":
        from . import migrate

        return migrate.run(args.url, stdout, stderr)
    if args.command == "ledger" and args.ledger_command == "backup":
        from .ledger import backup

        return backup(args.source, args.target, stdout)
    if args.command == "ledger":
        from . import ledger

        return ledger.run(args, stdout, stderr)
    if args.command == "demo":
        from . import demo

        return demo.run(stdout, stderr)
    if args.command == "check-config":
        from . import check

        return check.run(args.config, args.profile, stdout, stderr)
    if args.command == "providers":
        for name in known_providers():
            stdout.write(name + "\n")
        return EXIT_OK
    raise AssertionError(args.command)  # pragma: no cover


def _sandbox(arguments: list[str]) -> int:
    try:
        from ..sandbox.__main__ import main as serve_sandbox
    except ImportError:
        raise UsageError(
            "the sandbox needs the sandbox extra: pip install 'invites[sandbox]'"
        ) from None
    try:
        serve_sandbox(arguments, prog="invites sandbox")
    except SystemExit as exc:  # its own --help or usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except KeyboardInterrupt:
        pass
    return EXIT_OK


class _StderrHandler(logging.Handler):
    """Writes log lines to the current ``sys.stderr`` (a progress display may have wrapped it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(redact_url(self.format(record)) + "\n")
        except Exception:
            self.handleError(record)


if __name__ == "__main__":
    sys.exit(main())
