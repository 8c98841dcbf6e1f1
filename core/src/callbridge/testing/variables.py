"""The environment variables a settings class reads: name, type, default, description.

One walk over pydantic fields, shared by the documentation's configuration reference (so it
cannot drift from the code), by the ``.env`` example tests (a misspelt key fails) and by
``ConnectorTests`` (every variable a test sets must be one the connector reads).

Descriptions come from ``Field(description=...)`` when present, else from the ``#:`` comment
lines right above the field in the class's source (the convention of callbridge's settings).
"""

from __future__ import annotations

import inspect
import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

_FIELD_LINE = re.compile(r"^\s+([A-Za-z_][A-Za-z0-9_]*)\s*:")
_COMMENT_LINE = re.compile(r"^\s+#:\s?(.*)$")


@dataclass(frozen=True)
class Variable:
    """One environment variable of a settings class."""

    name: str
    #: The field path, e.g. ``("pbx", "soap_url")``.
    path: tuple[str, ...]
    type: str
    #: The default shown to humans ("required" when there is none).
    default: str
    description: str
    required: bool
    secret: bool


def env_prefix(cls: type[BaseModel]) -> str:
    """The ``env_prefix`` of a settings class (empty for plain models)."""
    return str(cls.model_config.get("env_prefix") or "")


def field_comments(cls: type[BaseModel]) -> dict[str, str]:
    """``#:`` comments above each field of ``cls`` (and its bases), joined into one line."""
    result: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not (isinstance(klass, type) and issubclass(klass, BaseModel)) or klass is BaseModel:
            continue
        try:
            lines = inspect.getsource(klass).splitlines()
        except (OSError, TypeError):
            continue
        result.update(_comments_of(lines))
    return result


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _comments_of(lines: list[str]) -> dict[str, str]:
    """Field name -> its ``#:`` comment, for the source ``lines`` of one class.

    One ``#:`` block describes every field that follows it at its own indentation (a group
    such as ``max_attempts``, ``max_age``, ``backoff_initial``, ``backoff_max``), until a
    blank line, another comment or any other statement at that indentation; the continuation
    lines of a field written over several lines (deeper) do not end the group.
    """
    result: dict[str, str] = {}
    pending: list[str] = []
    level = -1  # the indentation of the block in ``pending``
    in_block = False  # the previous line was a ``#:`` line
    for line in lines:
        comment = _COMMENT_LINE.match(line)
        if comment:
            if not in_block:
                pending, level = [], _indent(line)
            pending.append(comment.group(1).strip())
            in_block = True
            continue
        in_block = False
        if not pending:
            continue
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            pending = []
            continue
        indent = _indent(line)
        if indent > level or stripped[0] in ")]}":
            continue  # a field's continuation line, or its closing bracket
        match = _FIELD_LINE.match(line)
        if match and indent == level:
            result[match.group(1)] = " ".join(pending)
        else:
            pending = []
    return result


def variables(cls: type[BaseModel], prefix: str | None = None) -> list[Variable]:
    """Every variable ``cls`` reads, nested models flattened with ``__``, in field order."""
    base = env_prefix(cls) if prefix is None else prefix
    return list(_walk(cls, base, ()))


def variable_names(cls: type[BaseModel], prefix: str | None = None) -> set[str]:
    """Upper-case names of ``variables(cls)``, plus the names of nested groups as JSON."""
    names = set()
    base = env_prefix(cls) if prefix is None else prefix
    for var in variables(cls, base):
        names.add(var.name.upper())
        for depth in range(1, len(var.path)):  # CALLBRIDGE_PBX='{"soap_url": ...}' works too
            names.add((base + "__".join(var.path[:depth])).upper())
    return names


def _walk(cls: type[BaseModel], prefix: str, path: tuple[str, ...]) -> typing.Iterator[Variable]:
    comments = field_comments(cls)
    for name, info in cls.model_fields.items():
        nested = _nested_model(info.annotation)
        if nested is not None:
            yield from _walk(nested, f"{prefix}{name.upper()}__", (*path, name))
            continue
        description = info.description or comments.get(name, "")
        yield Variable(
            name=_env_name(prefix, name, info),
            path=(*path, name),
            type=type_text(info.annotation),
            default=_default_text(info),
            description=description,
            required=info.is_required(),
            secret=_mentions(info.annotation, SecretStr),
        )


def _env_name(prefix: str, name: str, info: FieldInfo) -> str:
    alias = info.validation_alias
    choices = getattr(alias, "choices", None)
    if isinstance(alias, str):
        return alias.upper()
    if choices and isinstance(choices[0], str):
        return choices[0].upper()
    if isinstance(info.alias, str) and info.alias:
        return (prefix + info.alias).upper()
    return (prefix + name).upper()


def _nested_model(annotation: Any) -> type[BaseModel] | None:
    if inspect.isclass(annotation) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _mentions(annotation: Any, target: type) -> bool:
    if annotation is target:
        return True
    return any(_mentions(arg, target) for arg in typing.get_args(annotation))


def type_text(annotation: Any) -> str:
    """A readable type: ``str | None``, ``list[str]``, ``'one' | 'each'``, ``SecretStr``."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_text(args[0])
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " | ".join(type_text(a) for a in args)
    if origin is not None:
        inner = ", ".join(type_text(a) for a in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    if annotation is type(None):
        return "None"
    if inspect.isclass(annotation):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _default_text(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    factory = info.default_factory
    if factory is not None:
        doc = inspect.getdoc(factory) if inspect.isfunction(factory) else None
        if doc and getattr(factory, "__name__", "<lambda>") != "<lambda>":
            return doc.splitlines()[0].strip().rstrip(".")
        try:
            value = factory()  # type: ignore[call-arg]
        except Exception:
            return "(computed)"
        return _value_text(value)
    return _value_text(info.default)


def _value_text(value: Any) -> str:
    if value is None or value is PydanticUndefined:
        return "unset"
    if isinstance(value, SecretStr):
        # A default written in the source is no secret (``CALLBRIDGE_JOURNAL``'s ``sqlite``).
        return _value_text(value.get_secret_value())
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value) if value else "empty"
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) if value else "empty"
    if isinstance(value, str):
        return value if value else '""'
    return str(value)
