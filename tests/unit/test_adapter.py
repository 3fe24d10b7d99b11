"""The adapter kit: the manual's walk-through runs as written; vendor modules use only the kit."""

from __future__ import annotations

import ast
import asyncio
import re
from pathlib import Path

import httpx
import pytest

import invites
from invites import InviteError, UnexpectedResponse, UserNotFound, registry
from invites.adapter import json_object

ROOT = Path(__file__).resolve().parents[2]
PUBLIC_MODULES = {"invites", "invites.adapter", "invites.errors", "invites.models"}


def readme_adapter_source() -> str:
    page = (ROOT / "docs" / "adapters.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", page, re.DOTALL)
    assert len(blocks) == 1
    return str(blocks[0])


@pytest.fixture
def acme(monkeypatch: pytest.MonkeyPatch) -> type[invites.BaseProvider]:
    monkeypatch.setattr(registry, "_registered", {})  # the manual's adapter registers "acme"
    namespace: dict[str, object] = {}
    # The repository's own manual (docs/adapters.md), run as documentation that must stay true.
    exec(compile(readme_adapter_source(), "docs/adapters.md", "exec"), namespace)  # noqa: S102
    provider = namespace["AcmeProvider"]
    assert isinstance(provider, type)
    return provider


def acme_on(handler: httpx.MockTransport, **config: object) -> invites.BaseProvider:
    return invites.from_config(
        {
            "provider": "acme",
            "base_url": "https://api.acme.example",
            "token": "test-token-not-real",
            "region": "us",
            **config,
        },
        client=httpx.Client(transport=handler),
        async_client=httpx.AsyncClient(transport=handler),
    )


def test_the_readme_adapter_resends_sync_and_async(acme: type[invites.BaseProvider]) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"message": "sent again"})

    provider = acme_on(httpx.MockTransport(answer))
    assert isinstance(provider, acme)

    result = provider.resend_invite("u 1/2")
    again = asyncio.run(provider.aresend_invite("u-3"))

    assert (result.provider, result.user_id, result.message) == ("acme", "u 1/2", "sent again")
    assert again.user_id == "u-3"
    first = seen[0]
    assert (first.method, first.url.raw_path) == ("POST", b"/v1/users/u%201%2F2/resend")
    assert first.headers["X-Acme-Key"] == "test-token-not-real"
    assert first.headers["X-Region"] == "us"
    assert "authorization" not in first.headers


def test_the_readme_adapter_maps_refusals_and_retries_by_the_base(
    acme: type[invites.BaseProvider],
) -> None:
    answers = iter(
        [
            httpx.Response(503, headers={"Retry-After": "0"}),
            httpx.Response(404, json={"message": "no such user"}),
        ]
    )
    provider = acme_on(httpx.MockTransport(lambda request: next(answers)))

    with pytest.raises(UserNotFound) as caught:
        provider.resend_invite("u-1")

    assert (caught.value.provider, caught.value.user_id, caught.value.attempts) == (
        "acme",
        "u-1",
        2,
    )


def test_a_failed_call_is_thrown_into_the_flow(acme: type[invites.BaseProvider]) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    provider = acme_on(httpx.MockTransport(refuse), max_attempts=1)
    recovered: list[InviteError] = []
    flow = provider.flow

    def recovering(invitee: invites.Invitee) -> invites.Flow:
        calls = flow(invitee)
        call = next(calls)
        try:
            yield call
        except InviteError as exc:
            recovered.append(exc)
            return invites.ResendResult(provider="acme", user_id=invitee.user_id)
        raise AssertionError("the call cannot succeed")

    provider.flow = recovering  # type: ignore[method-assign]
    result = provider.resend_invite("u-1")

    assert result.user_id == "u-1"
    [error] = recovered
    assert isinstance(error, invites.ConnectionFailed)


@pytest.mark.parametrize("body", [b"[1, 2]", b'"text"', b"not json"])
def test_json_object_refuses_anything_but_an_object(body: bytes) -> None:
    response = httpx.Response(200, content=body, headers={"content-type": "application/json"})

    with pytest.raises(UnexpectedResponse) as caught:
        json_object(response, provider="acme", user_id="u-1", what="the profile")

    error = caught.value
    assert error.message == "the profile is not a JSON object"
    assert (error.provider, error.user_id, error.status_code) == ("acme", "u-1", 200)
    assert error.details["body"]


def test_json_object_returns_the_object() -> None:
    response = httpx.Response(200, json={"message": "ok"})
    assert json_object(response, provider="acme", user_id="u-1") == {"message": "ok"}


@pytest.mark.parametrize("path", sorted((ROOT / "providers").glob("*.py")), ids=lambda p: p.name)
def test_vendor_modules_import_only_the_public_kit(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    ours = {name for name in imported if name.split(".")[0] == "invites"}
    assert ours <= PUBLIC_MODULES
