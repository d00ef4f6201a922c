"""The base of every service's settings, and settings errors as one line.

Every settings class (``KafkaSettings``, ``ScorerSettings``, ``AlertSettings``,
``IngestSettings``, ``ArchiveSettings``) derives from :class:`ServiceSettings`,
so they read the environment alike. A list setting takes either a JSON list or
comma-separated values:

>>> import os
>>> class Demo(ServiceSettings):
...     model_config = SettingsConfigDict(env_prefix="DEMO_", extra="forbid", frozen=True)
...     tickers: tuple[str, ...] = ()
...     windows_s: list[int] = [60]
>>> os.environ.update(DEMO_TICKERS="JPM, BAC", DEMO_WINDOWS_S="[300, 3600]")
>>> Demo().tickers, Demo().windows_s
(('JPM', 'BAC'), [300, 3600])

and :func:`load_settings` turns whatever pydantic or pydantic-settings raise
into a :class:`~stream.contracts.errors.ConfigError` of one line that names the
environment variable:

>>> os.environ["DEMO_WINDOWS_S"] = "[300,"
>>> load_settings(Demo)
Traceback (most recent call last):
...
stream.contracts.errors.ConfigError: DEMO_WINDOWS_S: not a JSON list ...
>>> os.environ["DEMO_WINDOWS_S"] = "300,x"
>>> load_settings(Demo)
Traceback (most recent call last):
...
stream.contracts.errors.ConfigError: DEMO_WINDOWS_S.1: Input should be a valid integer...
>>> for name in ("DEMO_TICKERS", "DEMO_WINDOWS_S"):
...     del os.environ[name]
"""

from __future__ import annotations

import json
import re
import types
from collections.abc import Collection, Sequence
from typing import Any, TypeVar, Union, get_args, get_origin

from pydantic import ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

from stream.contracts.errors import ConfigError

__all__ = ["ServiceSettings", "SettingsConfigDict", "load_settings", "parse_list"]

SettingsT = TypeVar("SettingsT", bound=BaseSettings)

_SEQUENCES = (list, tuple, set, frozenset, Sequence, Collection)


def parse_list(text: str) -> list[Any]:
    """A list setting's value: a JSON list, or comma-separated items (blanks dropped).

    >>> parse_list('["a.csv", "b,c.csv"]'), parse_list(" JPM, BAC ,"), parse_list("")
    (['a.csv', 'b,c.csv'], ['JPM', 'BAC'], [])
    """
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            value = json.loads(stripped)
        except ValueError as exc:
            raise ValueError(f"not a JSON list ({exc}); or give comma-separated values") from exc
        if not isinstance(value, list):  # pragma: no cover - "[" always opens a list
            raise ValueError("not a JSON list")
        return value
    return [item.strip() for item in stripped.split(",") if item.strip()]


def _is_sequence(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        return any(_is_sequence(arg) for arg in get_args(annotation) if arg is not type(None))
    return origin in _SEQUENCES or annotation in _SEQUENCES


class _EnvSource(EnvSettingsSource):
    """The environment, with list settings also as comma-separated values."""

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        if isinstance(value, str) and _is_sequence(field.annotation):
            return parse_list(value)
        return super().decode_complex_value(field_name, field, value)


class ServiceSettings(BaseSettings):
    """Base of the settings classes: list settings take JSON or comma-separated values."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _EnvSource(settings_cls), dotenv_settings, file_secret_settings


def load_settings(model: type[SettingsT], **given: Any) -> SettingsT:
    """Build the settings ``model`` from ``given`` values (``None``: unset) and the environment.

    Invalid settings raise :class:`ConfigError` with one line saying what to fix,
    so every service reports them alike (``error: ...`` and exit 2): the
    environment variable, or the field of a value given explicitly.

    >>> from stream.kafka import KafkaSettings
    >>> load_settings(KafkaSettings, bootstrap_servers="k:9092", request_timeout_ms=5)
    Traceback (most recent call last):
    ...
    stream.contracts.errors.ConfigError: request_timeout_ms: Input should be greater than or ...
    """
    explicit = {k: v for k, v in given.items() if v is not None}
    try:
        return model(**explicit)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, model, explicit)) from exc
    except SettingsError as exc:
        raise ConfigError(_settings_error_line(exc, model)) from exc


def _env_name(model: type[BaseSettings], field: str) -> str:
    # pydantic-settings reads upper-case names by default
    return f"{model.model_config.get('env_prefix', '')}{field}".upper()


def _one_line(exc: ValidationError, model: type[BaseSettings], given: Collection[str]) -> str:
    err, more = exc.errors()[0], exc.error_count() - 1
    message = str(err["msg"]).removeprefix("Value error, ")
    if more:
        message += f" (and {more} more)"
    where = [str(p) for p in err["loc"]]
    if not where:  # a rule between settings: its message names the variables
        return message
    if where[0] not in given:
        where[0] = _env_name(model, where[0])
    return f"{'.'.join(where)}: {message}"


def _settings_error_line(exc: SettingsError, model: type[BaseSettings]) -> str:
    """pydantic-settings says 'error parsing value for field "x" from source "..."'."""
    field = re.search(r'field "([^"]+)"', str(exc))
    cause = exc.__cause__
    detail = " ".join(str(cause).split()) if cause is not None else str(exc)
    return f"{_env_name(model, field.group(1)) if field else model.__name__}: {detail}"
