"""The examples of the README and of every page under docs/, run against the sandbox as written.

Every fenced block in README.md and docs/**/*.md is preceded by a marker saying what becomes of it:

- ``<!-- example: run -->``: run here. ``python`` blocks run in a fresh namespace (top-level
  ``await`` allowed), ``sh`` blocks with ``bash -e`` in a scratch folder with this environment's
  ``invites`` on the PATH, ``toml`` blocks are written to the file they name (``file: NAME``) and
  loaded with ``invites.load_profiles``.
- ``given: A, B``: what the block uses without defining it, supplied here (`given`).
- ``<!-- example: not run: REASON -->``: reported as a skip with that reason.

A block without a marker fails. Where an example stands for a real vendor, `SUBSTITUTIONS` points
it at the sandbox; each run block also has its own checks (`CHECKS`) beyond running without error.
"""

from __future__ import annotations

import ast
import asyncio
import csv
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from _support.vendors import vendor_config

import invites
from invites import registry
from invites.cli import main
from invites.ledger import open_ledger
from invites.sandbox import (
    ECOSUITE_TOKEN,
    TENANT_API_KEY,
    TENANT_USER_INVITED,
    TENANT_USER_INVITED_2,
    Fault,
    RunningSandbox,
)

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
#: Every page whose examples run here: the README, then the site's pages.
PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]
MARKER = re.compile(r"<!-- example: (run(?:; (given|file): ([^>]*?))?|not run: (.+?)) -->")

#: README text standing for a real vendor -> what it becomes against the sandbox ({url}: its URL).
SUBSTITUTIONS = {
    '{"provider": "ecosuite", "token": "..."}': (
        f'{{"provider": "ecosuite", "token": "{ECOSUITE_TOKEN}", "base_url": "{{url}}"}}'
    ),
    "https://idp.acme.example": "{url}",
}
#: The variables the README's profiles read their credentials from.
ENVIRONMENT = {"ACME_IDP_KEY": TENANT_API_KEY, "MPT_API_TOKEN": "test-token-not-real"}
#: Users the examples name, seeded in the sandbox: Ecosuite's, and the tenant API's (UUIDs).
ECOSUITE_USERS = ["u-2"]
#: Fenced blocks in README.md and docs/ together: moving a section between pages loses none.
EXAMPLES_AT_LEAST = 34
EXAMPLE_TENANT_USER = "3f6b2c1e-8d4a-4e7b-9a15-0c2d4e6f8a91"


@dataclass(frozen=True)
class Block:
    page: str  # the page's path in the repository, e.g. "docs/ledger.md"
    line: int
    language: str
    code: str
    action: str  # "run" or "not run"
    option: str  # "given" or "file" for a run block, else ""
    values: tuple[str, ...]  # the given names or the file name; the reason for "not run"

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def page_blocks(path: Path) -> list[Block]:
    page = path.relative_to(ROOT).as_posix()
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        if not lines[index].startswith("```"):
            index += 1
            continue
        start = index
        end = lines.index("```", start + 1)
        marker = MARKER.fullmatch(lines[start - 1].strip()) if start else None
        assert marker is not None, f"{page}:{start + 1}: a code block without an example marker"
        values: tuple[str, ...]
        if marker.group(4) is not None:
            action, option, values = "not run", "", (marker.group(4),)
        else:
            option = marker.group(2) or ""
            values = tuple(v.strip() for v in (marker.group(3) or "").split(",") if v.strip())
            action = "run"
        code = "\n".join(lines[start + 1 : end]) + "\n"
        blocks.append(Block(page, start + 1, lines[start][3:], code, action, option, values))
        index = end + 1
    return blocks


BLOCKS = [block for path in PAGES for block in page_blocks(path)]
TOML_FILES = {b.values[0]: b for b in BLOCKS if b.action == "run" and b.option == "file"}


def substituted(code: str, url: str) -> str:
    for written, meant in SUBSTITUTIONS.items():
        code = code.replace(written, meant.replace("{url}", url))
    return code


@dataclass
class Run:
    """What a run block had and did."""

    server: RunningSandbox
    workspace: Path
    namespace: dict[str, Any]
    stdout: str
    given: dict[str, Any]


@pytest.fixture
def workspace(tmp_path: Path, server: RunningSandbox, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # files the examples name land here
    monkeypatch.setattr(registry, "_registered", dict(registry._registered))  # "acme" stays local
    for name, value in ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    server.sandbox.add_users("ecosuite", ECOSUITE_USERS)
    server.sandbox.add_users("tenant_api", [EXAMPLE_TENANT_USER])
    return tmp_path


def given(name: str, server: RunningSandbox, workspace: Path) -> Any:
    """What a block declared as given, built here."""
    tenant_users = [TENANT_USER_INVITED, TENANT_USER_INVITED_2, EXAMPLE_TENANT_USER]
    if name == "invites":  # the package, imported by the section's first example
        return invites
    if name == "provider":
        return invites.from_config(vendor_config("tenant_api", server.url))
    if name == "invitees":
        return tenant_users
    if name in TOML_FILES:
        (workspace / name).write_text(substituted(TOML_FILES[name].code, server.url), "utf-8")
        return workspace / name
    if name == "users.csv":
        with (workspace / name).open("w", encoding="utf-8", newline="") as out:
            csv.writer(out).writerows([["user_id"], *([u] for u in tenant_users)])
        return tenant_users
    if name == "run.db":
        # A journal in which USER_ID's resend has an unknown outcome: its answer was lost.
        given("invites.toml", server, workspace)
        server.sandbox.inject(EXAMPLE_TENANT_USER, Fault.DROP_AFTER)
        argv = ["resend", "--config", "invites.toml", "--journal", "run.db", EXAMPLE_TENANT_USER]
        assert main(argv) == 1
        return workspace / "run.db"
    if name == "USER_ID":
        return EXAMPLE_TENANT_USER
    raise AssertionError(f"an example declares an unknown given: {name}")


def run_block(block: Block, server: RunningSandbox, workspace: Path, capsys: Any) -> Run:
    supplied = {name: given(name, server, workspace) for name in block.values}
    capsys.readouterr()
    server.sandbox.reset()  # the checks count only what the block itself sent
    code = substituted(block.code, server.url)
    namespace: dict[str, Any] = {}
    if block.language == "python":
        namespace.update((k, v) for k, v in supplied.items() if k.isidentifier())
        flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        compiled = compile(code, block.where, "exec", flags=flags)
        pending = eval(compiled, namespace)  # noqa: S307  (the repository's own documentation)
        if pending is not None:
            asyncio.run(pending)
        stdout = capsys.readouterr().out
    elif block.language == "sh":
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        }
        env.update((k, str(v)) for k, v in supplied.items() if k.isupper())
        done = subprocess.run(  # noqa: S603  (bash, the documentation's own commands)
            ["bash", "-e", "-o", "pipefail", "-c", code],  # noqa: S607
            cwd=workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"{block.where}\n{done.stdout}\n{done.stderr}"
        stdout = done.stdout
    elif block.language == "toml":
        stdout = ""
        (workspace / block.values[0]).write_text(code, encoding="utf-8")
        namespace["profiles"] = invites.load_profiles(workspace / block.values[0])
    else:
        raise AssertionError(f"{block.where}: cannot run a {block.language!r} block")
    return Run(server, workspace, namespace, stdout, supplied)


# -- what each run block must have done, by its first line --------------------------------------


def _use(run: Run) -> None:
    # The comment's text, printed for the unknown u-1; then the async resend reached u-2.
    assert run.stdout == "ecosuite, user 'u-1', HTTP 404: User not found\n"
    assert run.server.sandbox.emails_snapshot() == {"u-2": 1}


def _profiles(run: Run) -> None:
    profiles = run.namespace["profiles"]
    assert (profiles.default_name, sorted(profiles)) == ("acme", ["acme", "marketplace"])
    assert profiles["acme"].base_url == run.server.url


def _workers_profile(run: Run) -> None:
    # Loading builds nothing that connects: the store is first asked at the first resend.
    (name,) = run.namespace["profiles"]
    settings = run.namespace["profiles"][name].settings
    assert (name, settings.rate_limit) == ("acme", 50)
    assert settings.rate_limit_store == "redis://redis.internal:6379/0"


def _adapter(run: Run) -> None:
    assert "acme" in invites.known_providers()
    assert issubclass(run.namespace["AcmeProvider"], invites.BaseProvider)


def _bulk(run: Run) -> None:
    # Three runs over the same invitees: resend_many, aresend_many, and one with a fresh ledger.
    assert run.server.sandbox.emails_snapshot() == dict.fromkeys(run.given["invitees"], 3)
    assert Path("resends.db").is_file()


def _shell_bulk(run: Run) -> None:
    users = run.given["users.csv"]
    outcomes = [json.loads(line) for line in Path("out.jsonl").read_text().splitlines()]
    assert sorted(o["user_id"] for o in outcomes) == sorted(users)
    assert {o["outcome"] for o in outcomes} == {"sent"}
    assert run.server.sandbox.emails_snapshot() == dict.fromkeys(users, 1)  # the dry run sent none
    assert f"{EXAMPLE_TENANT_USER} (run 'default'): sent -> sent" in run.stdout


def _shell_settle(run: Run) -> None:
    # Shown as unknown, then settled twice: the last word stands.
    assert run.stdout.count(EXAMPLE_TENANT_USER) == 3
    assert "unknown -> sent" in run.stdout
    assert "sent -> failed" in run.stdout
    with open_ledger(run.given["run.db"]) as ledger:
        (record,) = ledger.records(user_id=EXAMPLE_TENANT_USER)
        assert record.status() == "failed"
    assert run.server.sandbox.emails_snapshot() == {}


CHECKS: dict[str, Callable[[Run], None]] = {
    "import invites": _use,
    'default = "acme"': _profiles,
    "[profiles.acme]": _workers_profile,
    "import attrs": _adapter,
    "for outcome in invites.resend_many(provider, invitees, concurrency=8):": _bulk,
    "invites resend --config invites.toml --profile acme --input users.csv": _shell_bulk,
    "invites ledger show run.db --state unknown": _shell_settle,
}


def _check_for(block: Block) -> Callable[[Run], None]:
    first = block.code.splitlines()[0]
    found = [check for start, check in CHECKS.items() if first.startswith(start)]
    assert len(found) == 1, f"{block.where}: no check (or several) for {first!r}"
    return found[0]


@pytest.mark.parametrize(
    "block",
    [
        pytest.param(
            b,
            id=f"{b.page}:{b.line}-{b.language or 'text'}",
            marks=[pytest.mark.skip(reason=f"{b.where}: {b.values[0]}")]
            if b.action == "not run"
            else [],
        )
        for b in BLOCKS
    ],
)
def test_readme_example(
    block: Block, server: RunningSandbox, workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    check = _check_for(block)
    run = run_block(block, server, workspace, capsys)
    try:
        check(run)
    finally:
        for value in run.given.values():
            if isinstance(value, invites.InviteProvider):
                value.close()


def test_every_block_is_marked_and_the_marks_are_used() -> None:
    for path in PAGES:
        page = path.relative_to(ROOT).as_posix()
        fences = path.read_text(encoding="utf-8").count("\n```") // 2
        assert len([b for b in BLOCKS if b.page == page]) == fences, page
    run = [b for b in BLOCKS if b.action == "run"]
    firsts = {b.code.splitlines()[0] for b in run}
    for start in CHECKS:  # every check belongs to a block that runs
        assert any(first.startswith(start) for first in firsts), f"unused check {start!r}"
    assert len(BLOCKS) >= EXAMPLES_AT_LEAST, "examples were lost"
    code = "".join(b.code for b in run)
    for written in SUBSTITUTIONS:
        assert written in code, f"unused substitution {written!r}"
