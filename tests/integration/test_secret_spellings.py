"""A token the vendor echoes never shows, however the echo spells it.

Random tokens (with ``+ / = " \\`` among their characters) are echoed by a fake vendor in the
body, the reason phrase and the trace-id header: as they are, JSON-escaped (``\\"``, ``\\/``,
``\\u002B`` as .NET writes it), wholly ``\\u``-escaped with hex in either case, upper-cased, or a
random mix, beside non-ASCII text. Then every output is scanned: the error (str, repr, fields,
pickle), what the ledger stores (the error column, the file's bytes), the outcome a task returns,
and every log record. A token that cannot be a header value (non-ASCII, for one) is refused
before anything is sent, by an error that does not name it.
"""

from __future__ import annotations

import http.server
import json
import logging
import pickle
import random
import sqlite3
import string
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from _support.vendors import vendor_config
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import invites
from invites import ConfigurationError, InviteError, cli
from invites._delivery.credentials import Credentials
from invites._settings.secret import Secret
from invites.celery.messages import outcome_json
from invites.ledger import dump_error, open_ledger

USER = "11111111-2222-4333-8444-555555555555"
VENDORS = ["ecosuite", "softwareone", "tenant_api"]
_ALPHABET = string.ascii_letters + string.digits + '+/="\\-_.~:'


def _like_a_token(token: str) -> bool:
    # A letter, a digit and one of the characters that need escaping: no word of the library's
    # own text (in a message, a log line, the ledger's schema) can be one.
    return (
        any(char.isalpha() for char in token)
        and any(char.isdigit() for char in token)
        and any(char in '+/="\\' for char in token)
    )


tokens = st.text(alphabet=_ALPHABET, min_size=12, max_size=40).filter(_like_a_token)


def _u_escaped(token: str, rng: random.Random) -> str:
    return "".join(
        f"\\u{ord(char):04X}" if rng.random() < 0.5 else f"\\u{ord(char):04x}" for char in token
    )


def _json_escaped(token: str, rng: random.Random) -> str:
    escaped = json.dumps(token)[1:-1]
    return escaped.replace("/", "\\/").replace("+", "\\u002B")


def _mixed(token: str, rng: random.Random) -> str:
    ways: list[Callable[[str], str]] = [
        lambda c: json.dumps(c)[1:-1],
        lambda c: f"\\u{ord(c):04X}",
        lambda c: json.dumps(c.swapcase())[1:-1],
        lambda c: f"\\u{ord(c.upper()):04x}",
    ]
    return "".join(rng.choice(ways)(char) for char in token)


SPELLINGS: dict[str, Callable[[str, random.Random], str]] = {
    "json-escaped": _json_escaped,
    "u-escaped": _u_escaped,
    "upper-cased": lambda token, rng: json.dumps(token.upper())[1:-1],
    "lower-cased": lambda token, rng: json.dumps(token.lower())[1:-1],
    "mixed": _mixed,
}


def _echo_body(spelled: str) -> bytes:
    """Every field any vendor reads from an error body, each holding the spelled token."""
    fields = ["code", "message", "title", "detail", "traceId", "error", "error_description"]
    parts = [f'"{name}": "é ✓ {spelled} ü"' for name in fields]
    parts.append(f'"details": {{"key": "{spelled}", "more": ["{spelled}"]}}')
    parts.append(f'"errors": {{"token": ["{spelled} is wrong"]}}')
    return ("{" + ", ".join(parts) + "}").encode("utf-8")


def _handler(status: int, spelled: str, raw: str) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            status,
            headers={"content-type": "application/json", "x-request-id": raw},
            content=_echo_body(spelled),
            extensions={"reason_phrase": f"No {raw}".encode("ascii")},
        )

    return answer


def _forms(token: str) -> set[str]:
    """What counts as the token showing: its plain and JSON-escaped forms, in any case."""
    escaped = json.dumps(token)[1:-1]
    return {form.lower() for form in (token, escaped, escaped.replace("/", "\\/"))}


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(logging.Formatter().format(record))
        self.texts.append(repr(record.__dict__))


@contextmanager
def _logs() -> Iterator[_Records]:
    logger = logging.getLogger("invites")
    handler = _Records()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _error_views(error: BaseException) -> list[str]:
    return [
        str(error),
        repr(error),
        repr(vars(error)),
        pickle.dumps(error).decode("latin-1"),
        dump_error(error) or "",
    ]


def _ledger_views(folder: Path) -> list[str]:
    views = []
    with sqlite3.connect(folder / "ledger.db") as connection:
        views.append(repr(connection.execute("SELECT * FROM invites_ledger").fetchall()))
    connection.close()
    for path in folder.iterdir():
        views.append(path.read_bytes().decode("latin-1"))
    return views


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# A token ending in a backslash, JSON-escaped: the whole escape goes, so the body stays JSON and
# the vendor's message is kept (scrubbed) instead of falling back to the status line.
@example(token="0000000000A\\", spelling="json-escaped", vendor="softwareone", status=404, seed=0)
@given(
    token=tokens,
    spelling=st.sampled_from(sorted(SPELLINGS)),
    vendor=st.sampled_from(VENDORS),
    status=st.sampled_from([400, 401, 403, 404, 409, 422, 500, 502, 504]),
    seed=st.integers(0, 2**32),
)
def test_an_echoed_token_reaches_no_output(
    token: str, spelling: str, vendor: str, status: int, seed: int
) -> None:
    spelled = SPELLINGS[spelling](token, random.Random(seed))
    raw = token.upper() if spelling == "upper-cased" else token
    client = httpx.Client(transport=httpx.MockTransport(_handler(status, spelled, raw)))
    config = vendor_config(vendor, "https://vendor.example", token=token, max_attempts=1)
    views: list[str] = []
    with tempfile.TemporaryDirectory() as folder, _logs() as logs:
        with invites.from_config(config, client=client) as provider:
            with pytest.raises(InviteError) as caught:
                provider.resend_invite(USER)
            views += _error_views(caught.value)
            with open_ledger(Path(folder) / "ledger.db") as ledger:
                outcomes = list(invites.resend_many(provider, [USER], ledger=ledger, run="r"))
        assert [outcome.status for outcome in outcomes] in (["failed"], ["unknown"])
        views += _error_views(outcomes[0].error or Exception())
        views += [repr(outcomes[0]), json.dumps(outcome_json(outcomes[0]))]
        views += _ledger_views(Path(folder))
        views += logs.texts
    assert any("<redacted>" in view for view in views)
    forms = _forms(token)
    shown = [index for index, view in enumerate(views) if any(f in view.lower() for f in forms)]
    assert shown == [], f"the {spelling} token showed in views {shown}"


@pytest.mark.parametrize(
    "spelled", ["0000000000A\\\\", "0000000000A\\u005C", "0000000000A\\u005c", "0000000000a\\\\"]
)
def test_an_escape_at_the_end_of_an_echoed_token_goes_with_it(spelled: str) -> None:
    credentials = Credentials(Secret("0000000000A\\"), None)
    body = f'{{"detail": "before {spelled} after"}}'.encode()
    response = httpx.Response(400, content=body, request=httpx.Request("GET", "https://v.test"))
    assert json.loads(credentials.scrubbed(response).content) == {
        "detail": "before <redacted> after"
    }


@given(token=st.text(min_size=1, max_size=30).filter(lambda t: not t.isascii()))
@settings(max_examples=40, deadline=None)
def test_a_token_that_cannot_be_a_header_is_refused_without_naming_it(token: str) -> None:
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    client = httpx.Client(transport=httpx.MockTransport(answer))
    with pytest.raises(ConfigurationError) as caught:
        invites.from_config(
            vendor_config("ecosuite", "https://vendor.example", token=token), client=client
        )
    assert sent == []
    text = str(caught.value) + repr(caught.value.problems)
    assert token not in text
    assert all(len(piece) < 4 or piece not in text for piece in token.split())


class _Echoing(http.server.BaseHTTPRequestHandler):
    """Refuses every request, echoing the credential it got ``\\u``-escaped, as .NET writes."""

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        got = self.headers.get("x-api-key") or self.headers.get("authorization") or ""
        spelled = "".join(f"\\u{ord(char):04X}" for char in got.split()[-1])
        body = _echo_body(spelled)
        self.send_response(403)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def echoing() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Echoing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


TOKEN = 'fake-token-Ab+c/d="e\\f-90'


def test_the_cli_and_the_ledger_cli_never_show_an_escaped_echo(
    echoing: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profiles = tmp_path / "invites.toml"
    profiles.write_text(
        f'[profiles.eco]\nprovider = "ecosuite"\nbase_url = "{echoing}"\n'
        f"token = {json.dumps(TOKEN)}\n",
        encoding="utf-8",
    )
    journal = tmp_path / "journal.db"
    arguments = ["-v", "resend", "--config", str(profiles), "--journal", str(journal), USER]
    assert cli.main(arguments) == 1
    assert cli.main(["ledger", "show", str(journal)]) == 0
    assert cli.main(["ledger", "export", str(journal)]) == 0
    captured = capsys.readouterr()
    shown = captured.out + captured.err
    assert "<redacted>" in shown
    assert not any(form in shown.lower() for form in _forms(TOKEN))
    assert not any(form in journal.read_bytes().decode("latin-1").lower() for form in _forms(TOKEN))


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://someone:fake-password-9f2@127.0.0.1:1/nowhere",
        "postgresql://127.0.0.1:1/nowhere?user=someone&password=fake-password-9f2",
    ],
)
@pytest.mark.parametrize("command", ["resend", "migrate", "check-config"])
def test_the_cli_never_prints_a_ledger_password(
    url: str, command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("psycopg")
    profiles = tmp_path / "invites.toml"
    profiles.write_text(
        '[profiles.eco]\nprovider = "ecosuite"\nbase_url = "http://127.0.0.1:1"\n'
        f'token = "fake-token-1"\nledger = "{url}"\n',
        encoding="utf-8",
    )
    if command == "resend":
        arguments = ["resend", "--config", str(profiles), "--journal", url, USER]
    elif command == "migrate":
        arguments = ["ledger", "migrate", url]
    else:
        arguments = ["check-config", "--config", str(profiles)]
    status = cli.main(arguments)
    captured = capsys.readouterr()
    assert status != 0
    assert "fake-password-9f2" not in captured.out + captured.err
    assert "***" in captured.err or "someone@" in captured.err
