"""The contract of ``radar notify``'s configuration (SPEC section 10): where alerts go
(destinations), which signals go where (routes), the digests, and when a signal is too old to
push. Read from TOML (``RADAR_NOTIFY_CONFIG``; ``notify.example.toml`` documents every key).

A bad file stops ``radar notify`` at start-up with every problem named by its key
(``destination[1].url: ...``); nothing is half-loaded. A value ``env:NAME`` is read from the
environment handed in (a webhook URL or a secret need not sit in the file).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from schemas.signals import CHURN_TYPES, EXPANSION_TYPES, Severity

SIGNAL_TYPES: frozenset[str] = frozenset(CHURN_TYPES + EXPANSION_TYPES)
SEVERITY_RANK: dict[str, int] = {"low": 0, "medium": 1, "high": 2, "critical": 3}
ENV_PREFIX = "env:"


class NotifyConfigError(ValueError):
    """The configuration cannot be used; ``problems`` name each key and what is wrong."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("bad notify configuration:\n" + "\n".join(f"  {p}" for p in problems))
        self.problems = list(problems)


class _Strict(BaseModel):
    # an unknown key is a typo until proved otherwise: refused, named
    model_config = ConfigDict(extra="forbid", frozen=True)


class Destination(_Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: Literal["slack", "webhook"]
    url: str
    # HMAC-SHA256 of the body in X-Radar-Signature (webhooks only)
    secret: str | None = Field(default=None, min_length=16)

    @field_validator("url")
    @classmethod
    def _http(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return url

    @model_validator(mode="after")
    def _signed_webhooks_only(self) -> Destination:
        if self.secret is not None and self.kind != "webhook":
            raise ValueError("secret: only webhooks are signed (Slack checks its own URL)")
        return self


class Route(_Strict):
    destination: str
    # default: every alert (critical, or one of schemas.signals.ALERT_TYPES)
    types: list[str] | None = None
    min_severity: Severity | None = None
    owners: list[str] | None = None  # account_profile.owner; default: any owner, or none

    @field_validator("types")
    @classmethod
    def _known_types(cls, types: list[str] | None) -> list[str] | None:
        unknown = sorted(set(types or ()) - SIGNAL_TYPES)
        if unknown:
            raise ValueError(f"unknown signal type(s) {', '.join(unknown)}")
        return types


class Digest(_Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    destination: str
    every: Literal["daily", "weekly"]
    at: str = Field(default="08:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    weekday: Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                     "sunday"] = "monday"  # weekly digests only
    timezone: str = "UTC"
    owners: list[str] | None = None

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {zone!r}") from exc
        return zone


class NotifyConfig(_Strict):
    destination: list[Destination] = Field(min_length=1)
    route: list[Route] = Field(default_factory=list)
    digest: list[Digest] = Field(default_factory=list)
    # a signal older than this (wall clock) when it reaches the notifier is recorded as stale
    # and not pushed: a replay of last year pages nobody
    max_age: timedelta = timedelta(hours=24)
    # a delivery still failing after this long is dead-lettered and counted
    give_up_after: timedelta = timedelta(hours=1)
    # a link to the account in the CRM; {account_id} is replaced
    account_url: str | None = None

    @model_validator(mode="after")
    def _references(self) -> NotifyConfig:
        names = [d.name for d in self.destination]
        problems = [f"destination: the name {n!r} is used twice"
                    for n in sorted({n for n in names if names.count(n) > 1})]
        targets = [("route", i, r.destination) for i, r in enumerate(self.route)] + \
            [("digest", i, d.destination) for i, d in enumerate(self.digest)]
        problems += [f"{kind}[{i}].destination: no destination is named {target!r}"
                     for kind, i, target in targets if target not in names]
        digests = [d.name for d in self.digest]
        problems += [f"digest: the name {n!r} is used twice"
                     for n in sorted({n for n in digests if digests.count(n) > 1})]
        if self.max_age <= timedelta(0) or self.give_up_after <= timedelta(0):
            problems.append("max_age and give_up_after must be positive")
        if self.account_url is not None and "{account_id}" not in self.account_url:
            problems.append("account_url: must contain {account_id}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _resolve(value: Any, env: Mapping[str, str], path: str, problems: list[str]) -> Any:
    """``env:NAME`` strings replaced from ``env`` (a missing one is a problem, named)."""
    if isinstance(value, dict):
        return {k: _resolve(v, env, f"{path}.{k}" if path else k, problems)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, env, f"{path}[{i}]", problems) for i, v in enumerate(value)]
    if isinstance(value, str) and value.startswith(ENV_PREFIX):
        name = value[len(ENV_PREFIX):]
        if name not in env or not env[name]:
            problems.append(f"{path}: {value} is not set in the environment")
            return None
        return env[name]
    return value


def _where(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def load_notify_config(text: str, env: Mapping[str, str]) -> NotifyConfig:
    """The configuration in TOML ``text``; raises NotifyConfigError naming every problem."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise NotifyConfigError([f"not TOML: {exc}"]) from exc
    problems: list[str] = []
    resolved = _resolve(raw, env, "", problems)
    if problems:
        raise NotifyConfigError(problems)
    try:
        return NotifyConfig.model_validate(resolved)
    except ValidationError as exc:
        raise NotifyConfigError(
            [f"{_where(e['loc'])}: {e['msg'].removeprefix('Value error, ')}"
             for e in exc.errors()]) from exc


# --- what radar notify records (topic ``<prefix>.notify-deliveries``, table alert_deliveries)

# what became of a (signal, destination), for good: pushed and answered 2xx; recorded and not
# pushed (too old, the account snoozed); given up after ``give_up_after`` (or refused by a 4xx)
Outcome = Literal["delivered", "stale", "snoozed", "dead_lettered"]
MessageKind = Literal["alert", "follow_up", "digest"]


class DeliveryRecord(BaseModel):
    """One record per Idempotency-Key, written once its outcome is known: on the deliveries
    topic (compacted, key = ``key``, on the partition of the signal it is about) it is what
    stops a restarted or rebalanced notifier from sending twice; ``radar store`` copies it into
    ClickHouse ``alert_deliveries``. It never holds a URL or a secret."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    key: str = Field(min_length=1)  # the Idempotency-Key sent with the message
    signal_id: str | None = None  # None for a digest
    destination: str
    message: MessageKind
    outcome: Outcome
    attempts: int = Field(default=0, ge=0)  # HTTP attempts (0 when nothing was pushed)
    http_status: int | None = None  # the last answer's status
    error: str | None = None  # why it was dead-lettered
    signal_type: str | None = None
    severity: str | None = None
    account_id: str | None = None
    owner: str | None = None
    detected_at: datetime | None = None  # the signal's (wall clock)
    recorded_at: datetime  # when its outcome was known

    def encode(self) -> bytes:
        return self.model_dump_json().encode()
