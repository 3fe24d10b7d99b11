"""Structuring a configuration mapping into the settings classes with cattrs, and reporting every
problem cattrs and the classes find, each with its key path. Values are never echoed."""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple, NewType

import attrs
import cattrs
from cattrs.errors import (
    AttributeValidationNote,
    BaseValidationError,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn

from ..errors import ConfigurationError
from ..registry import known_providers, provider_class
from .fields import Invalid, ProviderSettings, resolved_fields

#: Settings of whichever provider the mapping's ``provider`` key names.
AnySettings = NewType("AnySettings", ProviderSettings)
Spell = Callable[[str], str]


class Problem(NamedTuple):
    path: str
    what: str
    hint: str | None = None

    def text(self, spell: Spell) -> str:
        hint = f" (did you mean {spell(self.hint)!r}?)" if self.hint else ""
        return f"{spell(self.path) if self.path else 'configuration'}: {self.what}{hint}"


def as_key(key: str) -> str:
    return key


@cache
def _converter(from_text: bool = False) -> cattrs.Converter:
    """Values go to the settings classes as given (or parsed from text) for them to check."""
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    leaf = _parsed if from_text else _as_given
    converter.register_structure_hook_func(lambda tp: not _holds_attrs(tp), leaf)
    for tp in (str, bytes, int, float, bool, Path):  # dispatched before predicates
        converter.register_structure_hook(tp, leaf)
    converter.register_structure_hook_factory(attrs.has, _every_problem)
    converter.register_structure_hook_func(
        lambda tp: tp is AnySettings, lambda data, _: _by_provider(converter, data)
    )
    return converter


def _holds_attrs(tp: Any) -> bool:
    return any(
        t is AnySettings or (isinstance(t, type) and attrs.has(t))
        for t in (tp, *typing.get_args(tp))
    )


def _as_given(value: object, _: object) -> object:
    return value


def _parsed(value: object, tp: Any) -> object:
    """An environment variable's text as the number or boolean its key takes; else unchanged."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        tp = next((a for a in typing.get_args(tp) if a is not type(None)), tp)
    if not isinstance(value, str) or tp not in (bool, int, float):
        return value
    word = value.strip().lower()
    if tp is bool:
        return {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False,
                "no": False, "off": False}.get(word, value)  # fmt: skip
    try:
        number = float(word)
    except ValueError:
        return value
    return int(number) if tp is int and number.is_integer() else number


def _every_problem(cls: type, converter: cattrs.Converter) -> Callable[[Any, Any], Any]:
    """cattrs' structuring of ``cls``, which also checks the values beside bad or unknown keys.

    cattrs builds the object only when every key is sound; then, for a report of every problem,
    the object is built once more from the sound keys alone, so that it checks their values.
    """
    structure: Callable[[Any, Any], Any] = make_dict_structure_fn(cls, converter)

    def hook(data: Any, _: Any) -> Any:
        try:
            return structure(data, cls)
        except ClassValidationError as exc:
            shapes = [_shape_keys(sub) for sub in exc.exceptions]
            if not all(shapes):
                raise  # built and refused by the class itself: its own report is complete
            bad = set().union(*shapes)
            try:
                structure({k: v for k, v in data.items() if k not in bad}, cls)
            except ClassValidationError as more:
                found = [*more.exceptions, *exc.exceptions]
                raise ClassValidationError(exc.message, found, cls) from None
            raise

    return hook


def _shape_keys(exc: BaseException) -> set[str]:
    """The keys a failure of structure (not of value) concerns; empty for any other failure."""
    if isinstance(exc, ForbiddenExtraKeysError):
        return set(exc.extra_fields)
    return {n.name for n in getattr(exc, "__notes__", ()) if isinstance(n, AttributeValidationNote)}


def _by_provider(converter: cattrs.Converter, data: object) -> ProviderSettings:
    if not isinstance(data, Mapping):
        raise Invalid(f"expected a mapping, got {type(data).__name__}")
    name = data.get("provider")
    try:
        cls = _settings_class(name)
    except ConfigurationError as trouble:
        # Still check the keys every provider shares; of the others, flag only near-misses.
        rest = {k: v for k, v in data.items() if k != "provider"}
        try:
            converter.structure(rest, ProviderSettings)
        except ClassValidationError as exc:
            found = [_near_misses(sub) for sub in exc.exceptions]
            found_all = [trouble, *filter(None, found)]
            raise ClassValidationError("", found_all, ProviderSettings) from None
        raise ClassValidationError("", [trouble], ProviderSettings) from None
    return converter.structure(data, cls)


def _built_by_the_class(data: object) -> ProviderSettings | None:
    """The settings the class builds from ``data`` alone, when cattrs would add nothing; else None.

    When every key is one of the settings class's flat keys (none is a nested table), cattrs would
    pass each value as given and call the class, so the class is called directly, without first
    generating cattrs' structuring function. When the class refuses, None: the cattrs path then
    builds its report of every problem, each with its key (so a refused configuration's checks
    run twice: a ``token_provider`` module that fails to import is tried twice).
    """
    if not isinstance(data, Mapping):
        return None
    try:
        cls = _settings_class(data.get("provider"))
    except ConfigurationError:
        return None
    flat = _flat_keys(typing.cast(type, cls))  # mypy: hashable as a type
    if not all(key in flat for key in data):
        return None
    try:
        return cls(**{flat[key]: value for key, value in data.items()})
    except Exception:  # reported, with every other problem, by the cattrs path
        return None


@cache
def _flat_keys(cls: Any) -> dict[str, str]:
    """The keys of ``cls`` whose values go to it as given, each to its argument's name (a key
    whose annotation stayed a string is not counted)."""
    return {
        field.name: field.alias or field.name
        for field in resolved_fields(cls)
        if field.init and not isinstance(field.type, str) and not _holds_attrs(field.type)
    }


def _settings_class(name: object) -> type[ProviderSettings]:
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"provider: is required (one of: {', '.join(known_providers())})")
    try:
        settings_class = getattr(provider_class(name), "settings_class", None)
    except LookupError:
        shown = f" {name!r}" if name.isidentifier() else ""
        known = ", ".join(known_providers())
        raise ConfigurationError(f"provider: unknown provider{shown} (known: {known})") from None
    except Exception as exc:  # a plug-in's module failed to import or lacks the class
        why = type(exc).__name__
        raise ConfigurationError(f"provider: cannot load provider {name!r} ({why})") from exc
    if not (isinstance(settings_class, type) and issubclass(settings_class, ProviderSettings)):
        raise ConfigurationError(f"provider: cannot load provider {name!r} (not a provider)")
    return settings_class


def _near_misses(exc: Exception) -> Exception | None:
    if not (isinstance(exc, ForbiddenExtraKeysError) and exc.cl is ProviderSettings):
        return exc
    known = [f.name for f in attrs.fields(ProviderSettings)]
    typos = {k for k in exc.extra_fields if close_match(str(k), known)}
    return ForbiddenExtraKeysError("", exc.cl, typos) if typos else None


def close_match(word: str, known: list[str]) -> str | None:
    import difflib  # only for a configuration with an unknown key

    return next(iter(difflib.get_close_matches(word, known, n=1)), None)


def _walk(exc: BaseException, path: str = "") -> Iterator[Problem]:
    """Every problem in a (nested) structuring error, with its key path."""
    if isinstance(exc, BaseValidationError):
        for sub in exc.exceptions:
            yield from _walk(sub, join_path(path, _step(sub)))
    elif isinstance(exc, ForbiddenExtraKeysError):
        known = [f.name for f in attrs.fields(exc.cl)]
        for key in sorted(map(str, exc.extra_fields)):
            yield Problem(join_path(path, key), "unknown key", close_match(key, known))
    elif isinstance(exc, ConfigurationError):
        for problem in exc.problems:  # "key: what", as the settings classes word them
            key, _, what = problem.partition(": ")
            yield Problem(join_path(path, key), what)
    elif isinstance(exc, Invalid):
        yield from (Problem(path, str(what)) for what in exc.args)
    elif isinstance(exc, KeyError):  # a key declared without a default, and not given
        yield Problem(path, "is required")
    elif isinstance(exc, AttributeError | TypeError):  # a nested table that is not a mapping
        yield Problem(path, "expected a table (mapping)")
    else:
        yield Problem(path, "invalid value")


def _step(exc: BaseException) -> str:
    for note in getattr(exc, "__notes__", ()):
        if isinstance(note, AttributeValidationNote):
            return note.name
        if isinstance(note, IterableValidationNote):
            return str(note.index)
    return ""


def join_path(path: str, key: str) -> str:
    return f"{path}.{key}" if path and key else path or key


def structure(data: object, tp: Any, *, spell: Spell = as_key, from_text: bool = False) -> Any:
    if tp is AnySettings and not from_text:
        settings = _built_by_the_class(data)
        if settings is not None:
            return settings
    try:
        return _converter(from_text).structure(data, tp)
    except (BaseValidationError, ConfigurationError, Invalid) as exc:
        name = data.get("provider") if isinstance(data, Mapping) else None
        provider = name if isinstance(name, str) and name in known_providers() else None
        # A missing key fails both of _every_problem's attempts: report it once.
        problems = list(dict.fromkeys(p.text(spell) for p in _walk(exc)))
        raise ConfigurationError(problems, provider=provider) from None
