"""A value that never shows itself: tokens, API keys."""

from __future__ import annotations

from typing import Any, Final, NoReturn

_MASK: Final = "********"


class Secret:
    """Hold a credential so that repr, str, format and pickle never reveal it.

    The value must be printable ASCII, as an HTTP header value needs; CR, LF, NUL and other control
    characters are refused, so a credential can never add a header line.

    Call :meth:`reveal` at the one place the value is needed (building a header).
    """

    __slots__ = ("_value",)
    _value: str

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("a secret must be a string")
        if not value:
            raise ValueError("a secret must not be empty")
        if any(c in value for c in "\r\n\x00"):
            raise ValueError("a secret must not contain CR, LF or NUL")
        if not (value.isascii() and value.isprintable()):
            # It travels in an HTTP header: anything else would fail there, or alter the request.
            raise ValueError("a secret must be printable ASCII (no control or other characters)")
        object.__setattr__(self, "_value", value)

    def reveal(self) -> str:
        """Return the secret value itself."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({_MASK!r})"

    def __str__(self) -> str:
        return _MASK

    def __format__(self, spec: str) -> str:
        return _MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError("Secret is immutable")

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled")
