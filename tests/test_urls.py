"""A call's URL joined to the parsed base URL is exactly the URL httpx parses from the text."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from invites._urls import JOINS, BaseUrl
from invites.adapter import segment

BASES = (
    "https://vendor.example",
    "https://vendor.example/api/v2",
    "http://127.0.0.1:8080",
    "https://user@vendor.example:8443/base",
    "https://xn--bcher-kva.example",
    "http://[::1]:8080",
    "https://vendor.example:443",
)
# Path pieces, plain and special to URLs: httpx keeps some, encodes or refuses others.
PATH_TEXT = st.lists(
    st.sampled_from([*"aZ09-._~!$&'()*+,;=:@/%?#[]{}<>`\"\\^| \t\x00é.", "%2F", "%e9", "/.."]),
    max_size=30,
).map("".join)


def _same(joined: httpx.URL | str, text: str) -> None:
    expected = httpx.URL(text)
    if isinstance(joined, str):
        assert joined == text  # handed to httpx as text
        return
    assert joined._uri_reference == expected._uri_reference
    assert str(joined) == str(expected)
    assert joined.raw_path == expected.raw_path


@pytest.mark.skipif(not JOINS, reason="another httpx series: every URL is parsed by httpx")
@given(base=st.sampled_from(BASES), path=PATH_TEXT)
def test_a_joined_url_is_the_url_httpx_parses(base: str, path: str) -> None:
    text = base + path
    try:
        httpx.URL(text)
    except httpx.InvalidURL:
        assert BaseUrl(base).join(text) == text  # httpx refuses it: left for httpx to refuse
        return
    _same(BaseUrl(base).join(text), text)


@pytest.mark.skipif(not JOINS, reason="another httpx series: every URL is parsed by httpx")
@given(user_id=st.text(min_size=1, max_size=60).filter(lambda u: u not in (".", "..")))
def test_a_resend_url_with_an_encoded_id_is_joined(user_id: str) -> None:
    text = "https://vendor.example/v1/users/" + segment(user_id) + "/resend-invite"
    joined = BaseUrl("https://vendor.example").join(text)
    assert isinstance(joined, httpx.URL)
    _same(joined, text)


@pytest.mark.parametrize(
    "base",
    [
        "https://Vendor.example",  # not httpx's canonical form (the host is lower-cased)
        "https://vendor.example/",  # a trailing slash: the provider strips it
        "https://vendor.example/api?x=1",
        "https://vendor.example/a b",
        None,
    ],
)
def test_a_base_not_in_canonical_form_leaves_every_url_to_httpx(base: str | None) -> None:
    text = f"{base}/v1/users/u-1/resend-invite"
    assert BaseUrl(base).join(text) == text


@pytest.mark.parametrize(
    "path",
    ["/v1/./users", "/v1/users/..", "/v1/users?x=1", "/v1/users#top", "/v1/a b", "/v1/%zz", ""],
)
def test_a_path_httpx_would_change_is_left_to_httpx(path: str) -> None:
    text = "https://vendor.example" + path
    assert BaseUrl("https://vendor.example").join(text) == text


def test_a_url_on_another_base_is_left_to_httpx() -> None:
    text = "https://other.example/v1/users/u-1/resend-invite"
    assert BaseUrl("https://vendor.example").join(text) == text
