"""``python -m invites.sandbox``: serve the simulated vendors in the foreground.

Prints the base URL and the sandbox's (fake) credentials, then serves until interrupted.
"""

from __future__ import annotations

import argparse
import socket
from collections.abc import Sequence

import uvicorn

from ._app import create_app
from ._core import Sandbox
from ._faults import Fault
from ._server import base_url, quiet_deliberate_drops
from .ecosuite import EcosuiteSandbox
from .softwareone import PUBLISHED, TOP_LEVEL_STATUS, SoftwareOneSandbox
from .tenant_api import TenantApiSandbox


def _fault_kinds(text: str) -> list[Fault]:
    try:
        return [Fault(name.strip()) for name in text.split(",") if name.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc}; kinds: {', '.join(Fault)}") from exc


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m invites.sandbox",
        description="Serve simulated Ecosuite, SoftwareOne and tenant-header API vendors.",
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
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Parse `argv`, bind the socket, print where and how to connect, then serve."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        vendors = [
            EcosuiteSandbox(),
            SoftwareOneSandbox(
                legacy_removed=args.legacy_removed,
                shape=TOP_LEVEL_STATUS if args.softwareone_top_level_status else PUBLISHED,
            ),
            TenantApiSandbox(),
        ]
        sandbox = Sandbox(
            vendors=vendors,
            fault_rate=args.fault_rate,
            seed=args.seed,
            faults=args.faults,
            rate_limit=args.rate_limit,
            retry_after=args.retry_after,
        )
    except ValueError as exc:
        parser.error(str(exc))
    config = uvicorn.Config(
        create_app(sandbox), host=args.host, port=args.port, log_level="info", lifespan="off"
    )
    server = uvicorn.Server(config)
    quiet_deliberate_drops()
    sock = config.bind_socket()
    # Accepted sockets inherit this. asyncio sets it only on sockets created with proto TCP, which
    # bind_socket's are not: a response written in two pieces would wait for the client's delayed
    # ACK, about 40 ms a request.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # Listening before the URL is printed: a client that reads it can connect at once.
    sock.listen(config.backlog)
    url = base_url(args.host, sock.getsockname()[1])
    lines = [f"invites sandbox on {url}  (fake, sandbox-only credentials)"]
    lines.extend(f"  {vendor.banner(url)}" for vendor in sandbox.vendors)
    print("\n".join(lines), flush=True)
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
