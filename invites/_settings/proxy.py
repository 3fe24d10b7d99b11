"""The ``proxy`` setting: a proxy URL, checked when the settings are built, and what it names.

A proxy is an ``http://`` one (the vendor's TLS runs through a ``CONNECT`` tunnel); a scheme-less
``host:port`` is ``http://``; a URL's user and password are the proxy's credentials, never shown.
"""

from __future__ import annotations

import attrs
import httpcore
import httpx

from .checks import Invalid, text

__all__ = ["Proxy", "proxy_setting", "proxy_url"]


@attrs.frozen(repr=False)
class Proxy:
    """A proxy to go through: its URL (no credentials) and its credentials."""

    url: httpcore.URL
    label: str
    auth: tuple[bytes, bytes] | None = None

    def __repr__(self) -> str:
        return f"Proxy({self.label!r})"


def proxy_url(given: str, *, source: str = "proxy") -> Proxy:
    """The proxy ``given`` names (a scheme-less ``host:port`` is ``http://``), or ValueError."""
    if "://" not in given:
        given = f"http://{given}"
    try:
        url = httpx.URL(given)
    except httpx.InvalidURL:  # its message may quote the URL, password included
        raise ValueError(f"{source} is not a valid proxy URL") from None
    if url.scheme != "http":
        raise ValueError(
            f"{source} names a {url.scheme}:// proxy; the provider's own clients go through "
            "http:// proxies only (pass your own httpx client for another kind)"
        )
    if not url.host:
        raise ValueError(f"{source} names no proxy host")
    label = f"http://{url.netloc.decode('ascii').rpartition('@')[2]}"
    auth = None
    if url.username or url.password:
        auth = (url.username.encode(), url.password.encode())
    core = httpcore.URL(scheme=b"http", host=url.raw_host, port=url.port or 80, target=b"/")
    return Proxy(url=core, label=label, auth=auth)


def proxy_setting(value: object, _: object = None) -> str:
    """The ``proxy`` setting: an ``http://`` proxy URL (kept as written)."""
    raw = text(value)
    try:
        proxy_url(raw, source="it")
    except ValueError as exc:
        raise Invalid(str(exc).removeprefix("it ")) from None
    return raw
