"""Request URLs joined to the provider's parsed base URL instead of parsed whole on every call.

httpx parses and checks every URL it is given as text: scheme, host (IDNA), port, the path's
percent-encoding and dot segments. For a resend that is the same base URL every time plus a path
of plain segments (ids are percent-encoded by :func:`invites.adapter.segment`), and the parse
costs more than anything else the library does per call. :class:`BaseUrl` parses the base once
and joins such a path to it directly: only when that gives the very URL httpx's parse gives (a
path of characters httpx leaves as they are, no dot segment, a base already in httpx's canonical
form); any other URL is handed to httpx as text.
"""

from __future__ import annotations

import re
from typing import Final

import httpx

__all__ = ["BaseUrl"]

#: The httpx series whose URL internals the join relies on; any other always parses.
JOINS: Final = httpx.__version__.startswith("0.28.")

# One or more "/segment": unreserved characters, sub-delimiters, ":", "@" and "%XX" escapes,
# every one of which httpx's path quoting keeps as it is.
_PLAIN_PATH: Final = re.compile(r"(?:/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})*)+")
_LONGEST: Final = 65536  # httpx refuses longer URLs


class BaseUrl:
    """A provider's base URL, parsed once; :meth:`join` gives a call's URL."""

    __slots__ = ("_parsed", "_prefix")

    def __init__(self, base_url: str | None) -> None:
        self._prefix = base_url
        self._parsed = None
        if JOINS and base_url is not None:
            try:
                url = httpx.URL(base_url)
            except httpx.InvalidURL:
                return
            parsed = url._uri_reference
            canonical = str(url) == base_url and not base_url.endswith("/")
            if canonical and parsed.query is None and parsed.fragment is None:
                self._parsed = parsed

    def join(self, url: str) -> httpx.URL | str:
        """``url`` as httpx would parse it, or as it is when only httpx's parse can tell."""
        parsed, prefix = self._parsed, self._prefix
        if parsed is None or prefix is None or not url.startswith(prefix):
            return url
        path = url[len(prefix) :]
        if len(url) > _LONGEST or not _PLAIN_PATH.fullmatch(path):
            return url
        if "/." in path and _has_dot_segment(path):
            return url
        joined = httpx.URL.__new__(httpx.URL)
        joined._uri_reference = parsed._replace(path=parsed.path + path)
        return joined


def _has_dot_segment(path: str) -> bool:
    return any(part in (".", "..") for part in path.split("/"))
