"""Field types for settings read from environment variables, for the core and for plugins.

Environment variables are strings; these types accept the short forms an operator types
(``a,b``; ``201=005xx,202=jane@example.com``; ``it``) as well as JSON and real Python values,
and reject anything else with a message naming the bad part (the core's start-up report
adds the variable's name)::

    class AcmeSettings(PluginSettings):
        model_config = SettingsConfigDict(env_prefix="CALLBRIDGE_ACME_")

        objects: CommaList = Field(default_factory=list)
        owners: KeyValueMap = Field(default_factory=dict)
        default_region: OptionalRegion = None
"""

from __future__ import annotations

import json
from typing import Annotated

from pydantic import BeforeValidator
from pydantic_settings import NoDecode

__all__ = [
    "CommaList",
    "KeyValueMap",
    "OptionalRegion",
    "Region",
    "parse_comma_list",
    "parse_key_value_map",
]


def parse_comma_list(value: object) -> object:
    """``a, b`` -> ``["a", "b"]`` (blanks dropped); a JSON list or a real list as it is."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


def parse_key_value_map(value: object) -> object:
    """``a=1, b=2`` -> ``{"a": "1", "b": "2"}``; a JSON object or a real dict as it is.

    A part without ``=``, or with an empty key or value, is refused by name.
    """
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            return {str(k): str(v) for k, v in json.loads(text).items()}
        result: dict[str, str] = {}
        for part in text.split(","):
            if not part.strip():
                continue
            key, sep, val = part.partition("=")
            if not sep or not key.strip() or not val.strip():
                raise ValueError(f"{part.strip()!r} is not a key=value pair")
            result[key.strip()] = val.strip()
        return result
    return value


def _check_region(value: str) -> str:
    import phonenumbers

    region = value.strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"{value!r} is not a region code such as IT or US")
    return region


def _region(value: object) -> object:
    """An ISO 3166 region code phonenumbers knows (``it`` -> ``IT``)."""
    return _check_region(value) if isinstance(value, str) else value


def _optional_region(value: object) -> object:
    """A region code, or None for a blank value (unset: the core's default region)."""
    if isinstance(value, str) and not value.strip():
        return None
    return _region(value)


#: A list of strings from ``a,b`` or a JSON list.
CommaList = Annotated[list[str], NoDecode, BeforeValidator(parse_comma_list)]
#: A str -> str mapping from ``key=value,key=value`` or a JSON object.
KeyValueMap = Annotated[dict[str, str], NoDecode, BeforeValidator(parse_key_value_map)]
#: A region for numbers without a country code (``IT``).
Region = Annotated[str, BeforeValidator(_region)]
#: A region, or None when unset or blank: "use the core's default region".
OptionalRegion = Annotated[str | None, BeforeValidator(_optional_region)]
