"""One frozen settings object, read from ``RADAR_*`` environment variables once at start-up.

Everything below the composition root receives this object (or the values it needs);
nothing else in the project reads the environment.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from schemas.topics import TopicNames

PREFIX = "RADAR_"


def project_home() -> Path:
    """The checkout the package runs from (editable install), else the working directory."""
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").exists():
        return here
    return Path.cwd()


class SettingsError(ValueError):
    """A ``RADAR_*`` variable holds a value the worker cannot use."""


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    home: Path = Field(default_factory=project_home)
    local_dir: Path | None = None
    # unset: the local broker of RADAR_KAFKA_PORT (so a port alone moves both together)
    kafka_bootstrap: str = "localhost:9092"
    kafka_port: int = Field(default=9092, ge=1, le=65535)
    kafka_controller_port: int | None = Field(default=None, ge=1, le=65535)
    kafka_heap: str = "512m"
    topic_prefix: str = Field(default="radar", pattern=r"^[A-Za-z0-9._-]{1,100}$")
    topic_partitions: int = Field(default=6, ge=1, le=1000)
    clickhouse_dsn: str | None = None
    app_id: str = Field(default="account-radar", pattern=r"^[A-Za-z0-9._-]{1,100}$")
    # the most messages one fetch (one batch for the agents, one insert) may hold
    batch_max_rows: int = Field(default=5000, ge=1000, le=1_000_000)
    state_store: str = Field(default="rocksdb", pattern=r"^(rocksdb|memory)$")
    # off: ingest only (events and dead letters into ClickHouse), no signal engine
    signals: bool = True
    max_message_bytes: int = Field(default=512 * 1024, ge=1024, le=64 * 1024 * 1024)
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=6066, ge=1, le=65535)  # the worker's /metrics
    store_port: int = Field(default=6067, ge=1, le=65535)  # radar store's /metrics, /sql, /erase
    notify_port: int = Field(default=6068, ge=1, le=65535)  # radar notify's /metrics
    # radar notify's destinations, routes and digests (notify.example.toml documents the keys)
    notify_config: Path | None = None
    log_level: str = Field(default="warn", pattern=r"^(crit|error|warn|info|debug)$")
    rules: Path | None = None  # the signal rules file (read by the signal engine)
    # analyst SQL (radar sql, /sql): bounds of one query, and the bearer token /sql requires
    # whenever the web server listens beyond loopback
    sql_max_seconds: float = Field(default=30.0, gt=0, le=24 * 3600)
    sql_max_rows: int = Field(default=100_000, ge=1, le=100_000_000)
    sql_max_memory_bytes: int = Field(default=2 * 1024**3, ge=16 * 1024**2)
    sql_token: SecretStr | None = Field(default=None, min_length=16)
    # implausible event times are bad input (dead-lettered as implausible_time)
    earliest_event_time: AwareDatetime = datetime(2000, 1, 1, tzinfo=UTC)
    max_future_seconds: int = Field(default=86_400, ge=0, le=100 * 366 * 86_400)
    # a source (input topic) caught up this long, by the wall clock, stops holding back its
    # partitions' event time (processors/watermark.py)
    idle_source_seconds: float = Field(default=30.0, gt=0, le=7 * 86_400)
    # how long the workers' group waits for a worker that stopped heartbeating (killed, frozen)
    # before its partitions go to the others or to its restart (Faust's default, 60 s); within
    # the broker's group.min/max.session.timeout.ms (6 s to 30 min by default)
    session_timeout_seconds: float = Field(default=60.0, ge=6, le=1800)
    # a ClickHouse TTL on events and dead_letters (none by default)
    events_ttl_days: int | None = Field(default=None, ge=1, le=100_000)

    @model_validator(mode="before")
    @classmethod
    def _bootstrap_follows_the_port(cls, values: Any) -> Any:
        """Without RADAR_KAFKA_BOOTSTRAP, the brokers are the local one on RADAR_KAFKA_PORT:
        `radar kafka up` and `radar demo` start it there, and the worker and publish must not
        talk to another broker on the default port meanwhile."""
        if isinstance(values, dict) and "kafka_bootstrap" not in values and "kafka_port" in values:
            return {**values, "kafka_bootstrap": f"localhost:{values['kafka_port']}"}
        return values

    @field_validator("clickhouse_dsn")
    @classmethod
    def _known_scheme(cls, dsn: str | None) -> str | None:
        if dsn is not None and not dsn.startswith(("chdb://", "http://", "https://")):
            raise ValueError("must start with chdb://, http:// or https://")
        return dsn

    @property
    def local(self) -> Path:
        """Downloads, broker data and the embedded database live here (git-ignored)."""
        return self.local_dir or self.home / ".local"

    @property
    def dsn(self) -> str:
        return self.clickhouse_dsn or f"chdb://{self.local / 'clickhouse'}"

    @property
    def embedded(self) -> bool:
        return self.dsn.startswith("chdb://")

    @property
    def controller_port(self) -> int:
        return self.kafka_controller_port or self.kafka_port + 1

    @property
    def store_group(self) -> str:
        """The consumer group of ``radar store`` (the workers' is ``app_id``)."""
        return f"{self.app_id}.store"

    @property
    def notify_group(self) -> str:
        """The consumer group of ``radar notify`` processes."""
        return f"{self.app_id}.notify"

    @property
    def notify_url(self) -> str:
        """``radar notify``'s web server (/metrics)."""
        return f"http://{self._web_address}:{self.notify_port}"

    @property
    def rerouted_topic(self) -> str:
        """The workers' internal topic of misrouted events on their way to their account's
        owner, and of progress marks (``processors.rerouting``)."""
        return f"{self.app_id}-rerouted"

    @property
    def topics(self) -> TopicNames:
        return TopicNames(self.topic_prefix)

    @property
    def web_on_loopback(self) -> bool:
        """Whether the web server (/metrics, /sql) answers only this machine."""
        if self.web_host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.web_host).is_loopback
        except ValueError:
            return False  # a host name: it may resolve to any interface

    @property
    def web_url(self) -> str:
        """The worker's web server."""
        return f"http://{self._web_address}:{self.web_port}"

    @property
    def store_url(self) -> str:
        """``radar store``'s web server."""
        return f"http://{self._web_address}:{self.store_port}"

    @property
    def _web_address(self) -> str:
        return "127.0.0.1" if self.web_host in ("0.0.0.0", "::") else self.web_host


def notify_variables(path: Path | str | None) -> set[str]:
    """The environment variables a notify configuration file names (``env:NAME``)."""
    if not path:
        return set()
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()  # radar notify says so, naming the file
    return set(re.findall(r"env:([A-Za-z_][A-Za-z0-9_]*)", text))


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from ``RADAR_*`` variables; unknown ``RADAR_*`` names are an error."""
    env = os.environ if environ is None else environ
    fields = Settings.model_fields
    values: dict[str, str] = {}
    unknown: list[str] = []
    for name, value in env.items():
        if not name.startswith(PREFIX) or value == "":
            continue  # an empty variable means "not set"
        key = name[len(PREFIX):].lower()
        if key in fields:
            values[key] = value
        else:
            unknown.append(name)
    # the notify configuration reads its URLs and secrets from variables it names (env:NAME):
    # those are known too, whatever their name
    named = notify_variables(env.get(PREFIX + "NOTIFY_CONFIG"))
    unknown = [name for name in unknown if name not in named]
    if unknown:
        known = ", ".join(PREFIX + f.upper() for f in fields)
        raise SettingsError(f"unknown setting(s) {', '.join(sorted(unknown))}; known: {known}")
    try:
        return Settings.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{PREFIX}{'.'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise SettingsError(problems) from exc
