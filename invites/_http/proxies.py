"""Which proxy, if any, the provider's own clients go through, by httpx's rules.

A ``proxy`` setting names one proxy for every request. Without it, the environment decides as it
does for httpx: ``HTTPS_PROXY`` for ``https`` URLs, ``HTTP_PROXY`` for ``http`` ones,
``ALL_PROXY`` for either (lower-case names too, as :func:`urllib.request.getproxies` reads them),
and ``NO_PROXY`` lists the hosts reached directly: ``*`` for all; an IP address or ``localhost``
for that host only; a domain for itself and its subdomains (``.example.com``: its subdomains
only); each optionally with ``:port``. The proxy is an ``http://`` one (the vendor's TLS runs
through a ``CONNECT`` tunnel); a proxy URL's user and password are sent as its credentials.
"""

from __future__ import annotations

import ipaddress
import urllib.request

import httpx

from .._settings.proxy import Proxy, proxy_url

__all__ = ["Route"]


class Route:
    """The proxy for each URL: the setting's, the environment's, or none."""

    def __init__(self, proxy: str | None = None) -> None:
        self._all: Proxy | None = None
        self._by_scheme: dict[str, Proxy] = {}
        self._no_proxy: list[str] = []
        if proxy is not None:
            self._all = proxy_url(proxy)
            return
        found = urllib.request.getproxies()
        for scheme in ("http", "https", "all"):
            text = found.get(scheme)
            if text:
                self._by_scheme[scheme] = proxy_url(text, source=f"{scheme.upper()}_PROXY")
        self._no_proxy = [e.strip().lower() for e in found.get("no", "").split(",") if e.strip()]

    def proxy_for(self, url: httpx.URL) -> Proxy | None:
        """The proxy to reach ``url`` through (None: directly)."""
        if self._all is not None:
            return self._all
        proxy = self._by_scheme.get(url.scheme) or self._by_scheme.get("all")
        if proxy is None or _bypassed(url, self._no_proxy):
            return None
        return proxy


def _bypassed(url: httpx.URL, entries: list[str]) -> bool:
    host = url.host.lower()
    port = url.port or (443 if url.scheme == "https" else 80)
    for entry in entries:
        if entry == "*":
            return True
        name, wanted = _split_port(entry)
        if wanted is not None and wanted != port:
            continue
        if _is_address(name) or name == "localhost":
            if host == name:
                return True
        elif name.startswith("."):
            if host.endswith(name):
                return True
        elif host == name or host.endswith(f".{name}"):
            return True
    return False


def _split_port(entry: str) -> tuple[str, int | None]:
    if "://" in entry:
        entry = entry.partition("://")[2]
    if entry.startswith("["):  # [IPv6]:port
        name, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        name, _, port = entry.partition(":") if entry.count(":") == 1 else (entry, "", "")
    return name, int(port) if port.isdigit() else None


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
