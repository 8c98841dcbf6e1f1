"""Secrets given as files: any secret field ``X`` of a company may be written ``X_file``.

Docker secrets and systemd credentials hand a service a file, not a value; a TOML file
that holds every company's CRM tokens in plain text is one more copy to protect. So the
companies file (and the environment overriding it) may name a path instead: the file's
content, without its trailing newline, becomes the value. A missing or unreadable file is
an error naming the company and the field, never a silently empty secret.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

FILE_SUFFIX = "_file"


def read_secret(path: str | Path, where: str) -> str:
    """The content of ``path`` without trailing newlines; ValueError naming ``where``."""
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"{where}: cannot read {file}: {exc.strerror or exc}") from None
    return text.rstrip("\r\n")


def resolve_files(
    values: Mapping[str, Any], known: Iterable[str] | None, where: str
) -> dict[str, Any]:
    """``values`` with every ``x_file`` entry replaced by ``x`` (the file's content).

    ``known``: the field names that may be given so (None: any key). A key that is itself a
    field (a plugin's ``credentials_file`` path) is left alone. A value given both ways is
    an error: which one wins would be a guess.
    """
    fields = set(known) if known is not None else None
    out = dict(values)
    for key in list(values):
        if not key.endswith(FILE_SUFFIX) or (fields is not None and key in fields):
            continue
        base = key[: -len(FILE_SUFFIX)]
        if fields is not None and base not in fields:
            continue
        if base in values:
            raise ValueError(f"{where}.{base}: given both as {base} and as {key}")
        out[base] = read_secret(str(out.pop(key)), f"{where}.{key}")
    return out
