"""Settings of the magic and the kernel: traitlets, env vars and a TOML file, resolved in one place.

Precedence, highest first: ``%config LinkisMagic.x`` (or a traitlets config file), the env vars
``LINKIS_GATEWAY``, ``LINKIS_USER``, ``LINKIS_PASSWORD`` and ``LINKIS_TOKEN``, the TOML file
(``$LINKIS_MAGIC_CONFIG``, else ``~/.linkis-magic/config.toml``), then the defaults below.
Nothing here imports IPython.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from traitlets import Bool, Enum, Float, Int, TraitError, TraitType, Unicode
from traitlets.config import Configurable

from .errors import LinkisError
from .protocol import known_run_type

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

if TYPE_CHECKING:
    from .client import LinkisClient

logger = logging.getLogger(__name__)

EMBEDDED = "embedded"
Transport = Literal["auto", "websocket", "rest"]
TRANSPORTS = ("auto", "websocket", "rest")
VIEWS = ("auto", "widget", "text")
CONFIG_ENV = "LINKIS_MAGIC_CONFIG"
DEFAULT_CONFIG_FILE = Path("~/.linkis-magic/config.toml")
ENV_VARS = {
    "gateway": "LINKIS_GATEWAY",
    "user": "LINKIS_USER",
    "password": "LINKIS_PASSWORD",
    "token": "LINKIS_TOKEN",
}


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")


def default_run_type(engine: str) -> str:
    """The runType of a cell that names only its engine: Linkis's for the engines it knows,
    else the engine's own name (``trino`` -> ``tsql``, ``mydb-2`` -> ``mydb``)."""
    return known_run_type(engine) or engine.partition("-")[0]


class SettingsError(LinkisError, ValueError):
    """A setting has a value this package cannot use; the message says which and where from."""


class Secret:
    """A password or token whose repr and str never show it; :meth:`reveal` gives it back."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'********'"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class SecretTrait(TraitType[Secret | None, "str | Secret | None"]):
    """A trait holding a :class:`Secret`; a string set through ``%config`` is wrapped at once."""

    default_value = None
    info_text = "a string (kept masked)"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(default_value=None, allow_none=True, **kwargs)

    def validate(self, obj: Any, value: Any) -> Secret | None:
        if value is None or isinstance(value, Secret):
            return value
        if isinstance(value, str):
            return Secret(value)
        # traitlets' own error() would print the value; this one never does.
        raise TraitError(f"{type(obj).__name__}.{self.name} must be a string")


class LinkisMagic(Configurable):
    """The ``%config LinkisMagic.<name> = value`` settings; ``None`` means "not set here"."""

    gateway = Unicode(
        None, allow_none=True, help="Gateway URL (http://host:9001), or 'embedded' for a local one."
    ).tag(config=True)
    user = Unicode(None, allow_none=True, help="Linkis user name.").tag(config=True)
    password = SecretTrait(help="Password (prefer LINKIS_PASSWORD or getpass).").tag(config=True)
    token = SecretTrait(help="Token for Token-Code/Token-User authentication.").tag(config=True)
    transport = Enum(list(TRANSPORTS), None, allow_none=True, help="auto, websocket or rest.").tag(
        config=True
    )
    creator = Unicode(None, allow_none=True, help="requestApplicationName (default IDE).").tag(
        config=True
    )
    default_engine = Unicode(
        None, allow_none=True, help="Engine of a cell that names none (default spark)."
    ).tag(config=True)
    default_run_type = Unicode(
        None, allow_none=True, help="runType of a cell that names none (default: per engine)."
    ).tag(config=True)
    row_limit = Int(
        None, allow_none=True, help="Rows fetched per table result set; 0 for no limit."
    ).tag(config=True)
    view = Enum(list(VIEWS), None, allow_none=True, help="widget, text or auto.").tag(config=True)
    verify = Bool(None, allow_none=True, help="Verify the gateway's TLS certificate.").tag(
        config=True
    )
    log_lines = Int(None, allow_none=True, help="Log lines a view shows (the last ones).").tag(
        config=True
    )
    update_interval = Float(
        None, allow_none=True, help="Seconds between two renders of a view."
    ).tag(config=True)
    config_file = Unicode(
        None, allow_none=True, help="TOML settings file (default ~/.linkis-magic/config.toml)."
    ).tag(config=True)


@dataclass(frozen=True)
class Settings:
    """Resolved settings. ``sources`` says where each value came from (config, env, file, default).

    ``password`` and ``token`` are left out of the repr.
    """

    gateway: str = EMBEDDED
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    transport: Transport = "auto"
    creator: str = "IDE"
    default_engine: str = "spark"
    default_run_type: str | None = None
    row_limit: int = 10_000
    view: str = "auto"
    verify: bool = True
    log_lines: int = 200
    update_interval: float = 0.25
    config_file: str | None = None
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def embedded(self) -> bool:
        """True when no gateway is configured: the client starts a local one."""
        return self.gateway == EMBEDDED

    @property
    def connection_key(self) -> tuple[object, ...]:
        """What a client is built from: when it changes, the client must be rebuilt."""
        return (self.gateway, self.user, self.password, self.token, self.transport, self.verify)

    def run_type_for(self, engine: str) -> str:
        """The runType of a cell that names only ``engine`` (spark-3.4.1 counts as spark)."""
        if self.default_run_type and engine == self.default_engine:
            return self.default_run_type
        return default_run_type(engine)


_FIELDS = [f.name for f in fields(Settings) if f.name != "sources"]
_FILE_TYPES: dict[str, tuple[type, ...]] = {
    "gateway": (str,),
    "user": (str,),
    "password": (str,),
    "token": (str,),
    "transport": (str,),
    "creator": (str,),
    "default_engine": (str,),
    "default_run_type": (str,),
    "row_limit": (int,),
    "view": (str,),
    "verify": (bool,),
    "log_lines": (int,),
    "update_interval": (int, float),
}


def config_file_path(
    config: LinkisMagic | None = None, environ: Mapping[str, str] | None = None
) -> tuple[Path, bool]:
    """The settings file to read and whether it was named explicitly (then it must exist)."""
    env = os.environ if environ is None else environ
    if config is not None and config.config_file:
        return Path(config.config_file).expanduser(), True
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV]).expanduser(), True
    return DEFAULT_CONFIG_FILE.expanduser(), False


def read_config_file(path: Path, *, required: bool) -> dict[str, Any]:
    """The settings in a TOML file; keys at the top level or in a ``[linkis]`` table."""
    if not path.is_file():
        if required:
            raise SettingsError(f"settings file {path} does not exist")
        return {}
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"cannot read settings file {path}: {exc}") from None
    table = data.get("linkis", data)
    if not isinstance(table, dict):
        raise SettingsError(f"[linkis] in {path} must be a table")
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in _FILE_TYPES:
            known = ", ".join(_FILE_TYPES)
            raise SettingsError(f"unknown setting {key!r} in {path}; known settings: {known}")
        types = _FILE_TYPES[key]
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            names = " or ".join(t.__name__ for t in types)
            raise SettingsError(f"setting {key!r} in {path} must be a {names}")
        values[key] = value
    logger.debug("read settings %s from %s", sorted(values), path)
    return values


def _from_config(config: LinkisMagic | None) -> dict[str, Any]:
    if config is None:
        return {}
    values: dict[str, Any] = {}
    for name in _FIELDS:
        value = getattr(config, name, None)
        if isinstance(value, Secret):
            value = value.reveal()
        if value is not None:
            values[name] = value
    return values


def _from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    return {name: environ[var] for name, var in ENV_VARS.items() if environ.get(var)}


def load_settings(
    config: LinkisMagic | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve every setting: ``config`` traits, then env vars, then the file, then defaults.

    Raises:
        SettingsError: the file is unreadable or holds an unknown key or a badly typed value,
            or a resolved value is not allowed.
    """
    env = os.environ if environ is None else environ
    path, required = config_file_path(config, env)
    layers = [
        ("config", _from_config(config)),
        ("env", _from_env(env)),
        ("file", read_config_file(path, required=required)),
    ]

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for source, layer in layers:
        for name, value in layer.items():
            if name not in values:
                values[name] = value
                sources[name] = source
    for name in _FIELDS:
        sources.setdefault(name, "default")
    values["config_file"] = str(path) if path.is_file() else None

    _check(values, sources)
    if not values.get("gateway"):
        values["gateway"] = EMBEDDED
    return Settings(**values, sources=sources)


def _check(values: Mapping[str, Any], sources: Mapping[str, str]) -> None:
    def bad(name: str, what: str) -> SettingsError:
        return SettingsError(f"setting {name} (from {sources[name]}) must be {what}")

    if values.get("transport", "auto") not in TRANSPORTS:
        raise bad("transport", "one of " + ", ".join(TRANSPORTS))
    if values.get("view", "auto") not in VIEWS:
        raise bad("view", "one of " + ", ".join(VIEWS))
    for name in ("row_limit", "log_lines"):
        if values.get(name, 0) < 0:
            raise bad(name, "0 or more")
    if values.get("update_interval", 1.0) <= 0:
        raise bad("update_interval", "more than 0 seconds")
    for name in ("default_engine", "default_run_type", "creator"):
        value = values.get(name)
        if value is not None and not _NAME.match(value):
            raise bad(name, "a name without spaces, like spark, sql or IDE")


def is_valid_name(name: str) -> bool:
    """An engine, runType or creator name Linkis accepts: letters, digits, ``_ . -``."""
    return bool(_NAME.match(name))


def make_client(settings: Settings) -> LinkisClient:
    """A client built from ``settings``; ``gateway`` ``embedded`` starts a local gateway."""
    from .client import LinkisClient

    # The embedded gateway's own user is used unless the settings say how to log in.
    has_login = bool(settings.password or settings.token)
    return LinkisClient(
        gateway=settings.gateway,
        user=settings.user if has_login or not settings.embedded else None,
        password=settings.password,
        token=settings.token,
        transport=settings.transport,
        creator=settings.creator,
        verify=settings.verify,
    )
