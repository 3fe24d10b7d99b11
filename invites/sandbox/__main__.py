"""``invites sandbox`` (or ``python -m invites.sandbox``): serve the simulated vendors.

Prints the base URL, the sandbox's (fake) credentials and any users it seeded (``--users N``,
written one CSV per vendor with ``--users-dir``), then serves until interrupted. ``--stats URL``
instead prints a running sandbox's email counts and exits. ``--hidden-limit RPS`` puts a vendor's
rate limit in front (``--announce-budget``, ``--limit-schedule``: see
:mod:`invites.sandbox._limit`). ``--assume VENDOR.SWITCH=VALUE`` switches an answer no vendor
documents (docs/sandbox.md, "What the sandbox assumes").
"""

from __future__ import annotations

import argparse
import csv
import json
import socket
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import uvicorn

from ._app import create_app
from ._core import RESERVED_PREFIX, Sandbox
from ._faults import Fault
from ._limit import ANNOUNCE_STYLES, LIMIT_PATH, HiddenLimit, LimitGate, parse_schedule
from ._server import base_url, quiet_deliberate_drops
from .ecosuite import EcosuiteSandbox
from .softwareone import PUBLISHED, TOP_LEVEL_STATUS, SoftwareOneSandbox
from .tenant_api import TenantApiSandbox


def _fault_kinds(text: str) -> list[Fault]:
    try:
        return [Fault(name.strip()) for name in text.split(",") if name.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc}; kinds: {', '.join(Fault)}") from exc


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def _flag(text: str) -> bool:
    if text not in ("true", "false"):
        raise ValueError(f"expected true or false, not {text!r}")
    return text == "true"


# The sandbox's assumptions (docs/sandbox.md, "What the sandbox assumes"): switch -> value parser.
_ASSUMPTIONS: dict[str, Callable[[str], object]] = {
    "softwareone.active_status": int,
    "softwareone.expired_status": int,
    "softwareone.audit_by_artifact": _flag,
    "ecosuite.token_refusal": int,
    "ecosuite.forbidden_status": int,
    "ecosuite.accept_bearer": _flag,
    "tenant_api.already_verified_status": int,
}


def _assumption(text: str) -> tuple[str, str, object]:
    """``VENDOR.SWITCH=VALUE`` as (vendor, switch, value); the vendor checks the value."""
    key, equals, value = text.partition("=")
    if not equals or key not in _ASSUMPTIONS:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(_ASSUMPTIONS)}=VALUE")
    try:
        parsed = _ASSUMPTIONS[key](value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{key}: {exc}") from None
    vendor, _, switch = key.partition(".")
    return vendor, switch, parsed


def _vendor_arguments(parser: argparse.ArgumentParser) -> None:
    """What the vendors answer: removed or reshaped endpoints, assumptions, seeded users."""
    parser.add_argument(
        "--legacy-removed",
        action="store_true",
        help="SoftwareOne's deprecated account-users endpoints answer 404",
    )
    parser.add_argument(
        "--softwareone-top-level-status",
        action="store_true",
        help="SoftwareOne account users also carry a top-level status (not the published shape)",
    )
    parser.add_argument(
        "--assume",
        type=_assumption,
        action="append",
        default=[],
        metavar="VENDOR.SWITCH=VALUE",
        help="switch an answer no vendor documents, e.g. softwareone.active_status=409 "
        f"(repeatable; switches: {', '.join(_ASSUMPTIONS)})",
    )
    parser.add_argument(
        "--users",
        type=_count,
        default=0,
        metavar="N",
        help="seed N more invitable users per vendor, for bulk runs (their ids are printed)",
    )
    parser.add_argument(
        "--users-dir",
        type=Path,
        metavar="DIR",
        help="with --users: write DIR/<vendor>.csv (a user_id column) for invites resend --input",
    )


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Serve simulated Ecosuite, SoftwareOne and tenant-header API vendors on one "
        "base URL (fake credentials, loopback by default). GET /__sandbox__/stats on it answers "
        "the emails sent per user as JSON.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument(
        "--fault-rate",
        type=float,
        default=0.0,
        help="probability in [0, 1] that a resend meets a random fault",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the random faults")
    parser.add_argument(
        "--faults",
        type=_fault_kinds,
        default=list(Fault),
        help="comma-separated kinds random faults draw from (default: all)",
    )
    parser.add_argument(
        "--rate-limit", type=float, default=None, metavar="RPS", help="requests per second"
    )
    parser.add_argument("--retry-after", type=int, default=1, help="Retry-After of faults")
    _limit_arguments(parser)
    _vendor_arguments(parser)
    parser.add_argument(
        "--stats",
        metavar="URL",
        help="print the email counts of the sandbox serving at URL as JSON, and exit",
    )
    return parser


def main(argv: Sequence[str] | None = None, *, prog: str = "python -m invites.sandbox") -> None:
    """Parse `argv`; print a running sandbox's stats, or bind, print how to connect, and serve."""
    parser = _parser(prog)
    args = parser.parse_args(argv)
    if args.stats is not None:
        _print_stats(parser, args.stats)
        return
    if args.users_dir is not None and not args.users:
        parser.error("--users-dir needs --users N")
    try:
        sandbox = _sandbox(args)
    except ValueError as exc:
        parser.error(str(exc))
    seeded = sandbox.seed_users(args.users) if args.users else {}
    if args.users_dir is not None:
        try:
            _write_users(args.users_dir, seeded)
        except OSError as exc:
            parser.error(f"--users-dir {args.users_dir}: {exc.strerror}")
    try:
        limit = _limit(args)
    except ValueError as exc:
        parser.error(str(exc))
    _serve(sandbox, args.host, args.port, _seeded_lines(seeded, args.users_dir), limit)


def _sandbox(args: argparse.Namespace) -> Sandbox:
    assumed: dict[str, dict[str, Any]] = {"ecosuite": {}, "softwareone": {}, "tenant_api": {}}
    for vendor, switch, value in args.assume:
        assumed[vendor][switch] = value
    vendors = [
        EcosuiteSandbox(**assumed["ecosuite"]),
        SoftwareOneSandbox(
            legacy_removed=args.legacy_removed,
            shape=TOP_LEVEL_STATUS if args.softwareone_top_level_status else PUBLISHED,
            **assumed["softwareone"],
        ),
        TenantApiSandbox(**assumed["tenant_api"]),
    ]
    return Sandbox(
        vendors=vendors,
        fault_rate=args.fault_rate,
        seed=args.seed,
        faults=args.faults,
        rate_limit=args.rate_limit,
        retry_after=args.retry_after,
    )


def _write_users(directory: Path, seeded: dict[str, list[str]]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for vendor, user_ids in seeded.items():
        with (directory / f"{vendor}.csv").open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["user_id"])
            writer.writerows([user_id] for user_id in user_ids)


def _seeded_lines(seeded: dict[str, list[str]], directory: Path | None) -> list[str]:
    lines = []
    for vendor, user_ids in seeded.items():
        where = f"  ({directory / f'{vendor}.csv'})" if directory is not None else ""
        shown = user_ids[0] if len(user_ids) == 1 else f"{user_ids[0]} .. {user_ids[-1]}"
        lines.append(f"  {vendor:<12} {len(user_ids)} invitable users: {shown}{where}")
    return lines


def _print_stats(parser: argparse.ArgumentParser, url: str) -> None:
    # The standard library's client: the sandbox depends on starlette and uvicorn only.
    import urllib.request

    stats_url = url.rstrip("/") + f"{RESERVED_PREFIX}/stats"
    if not stats_url.startswith(("http://", "https://")):
        parser.error(f"--stats takes an http:// or https:// URL, not {url!r}")
    try:
        with urllib.request.urlopen(stats_url, timeout=10) as answer:  # noqa: S310  (checked)
            stats = json.loads(answer.read())
    except (OSError, ValueError) as exc:
        parser.exit(1, f"{parser.prog}: no sandbox stats at {url}: {exc}\n")
    sys.stdout.write(json.dumps(stats, indent=2, sort_keys=True) + "\n")


def _limit_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--hidden-limit",
        type=float,
        default=None,
        metavar="RPS",
        help="a vendor's rate limit in front of every vendor (a token bucket of one second); "
        f"GET/POST {LIMIT_PATH} reads or changes it",
    )
    parser.add_argument(
        "--announce-budget",
        choices=ANNOUNCE_STYLES,
        default=None,
        help="with --hidden-limit: announce it in RateLimit fields (ietf: the current draft), "
        "RateLimit-Limit/-Remaining/-Reset (draft) or X-RateLimit-* (x)",
    )
    parser.add_argument(
        "--limit-schedule",
        default=None,
        metavar="S:RPS,...",
        help="with --hidden-limit: change it to RPS at S seconds after start, e.g. 20:20",
    )


def _limit(args: argparse.Namespace) -> HiddenLimit | None:
    if args.hidden_limit is None:
        if args.announce_budget is not None or args.limit_schedule is not None:
            raise ValueError("--announce-budget and --limit-schedule need --hidden-limit")
        return None
    schedule = parse_schedule(args.limit_schedule) if args.limit_schedule else []
    return HiddenLimit(args.hidden_limit, announce=args.announce_budget, schedule=schedule)


def _serve(
    sandbox: Sandbox, host: str, port: int, seeded: list[str], limit: HiddenLimit | None = None
) -> None:
    app: Any = create_app(sandbox)
    if limit is not None:
        app = LimitGate(app, limit, sandbox)
    config = uvicorn.Config(app, host=host, port=port, log_level="info", lifespan="off")
    server = uvicorn.Server(config)
    quiet_deliberate_drops()
    sock = config.bind_socket()
    # Accepted sockets inherit this. asyncio sets it only on sockets created with proto TCP, which
    # bind_socket's are not: a response written in two pieces would wait for the client's delayed
    # ACK, about 40 ms a request.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # Listening before the URL is printed: a client that reads it can connect at once.
    sock.listen(config.backlog)
    url = base_url(host, sock.getsockname()[1])
    lines = [f"invites sandbox on {url}  (fake, sandbox-only credentials)"]
    lines.extend(f"  {vendor.banner(url)}" for vendor in sandbox.vendors)
    lines.extend(seeded)
    lines.append(f"  email counts: GET {url}{RESERVED_PREFIX}/stats")
    print("\n".join(lines), flush=True)
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
