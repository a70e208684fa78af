"""A ClickHouse DSN taken apart: where to connect, and the credentials that must never be shown.

A password can sit in the DSN's user part (``http://user:pass@host``) or in its query string
(``http://host/db?user=u&password=pass``). clickhouse-connect takes the first form but refuses
the second (it then gets the password twice), so credentials are lifted out of both and handed
over as arguments; what is shown is the DSN with every secret replaced by ``***``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

HIDDEN = "***"
# query parameters whose value is a credential
SECRET_PARAMETERS = frozenset({"password", "access_token", "token", "secret", "key"})
USER_PARAMETERS = ("user", "username", "user_name")


@dataclass(frozen=True, slots=True)
class Dsn:
    address: str  # the DSN without any credential
    username: str | None
    password: str | None
    secrets: tuple[str, ...]  # every credential the DSN held, as written and decoded


def _netloc_host(netloc: str) -> tuple[str, str | None, str | None]:
    """``user:pass@host:port`` -> (host:port, user, pass); the last ``@`` ends the user part
    (a password may hold one)."""
    if "@" not in netloc:
        return netloc, None, None
    creds, host = netloc.rsplit("@", 1)
    user, sep, password = creds.partition(":")
    return host, user or None, password if sep else None


def parse_dsn(dsn: str) -> Dsn:
    if dsn.startswith("chdb://") or "://" not in dsn:
        return Dsn(dsn, None, None, ())
    parts = urlsplit(dsn)
    host, user, password = _netloc_host(parts.netloc)
    kept: list[tuple[str, str]] = []
    secrets: list[str] = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        lowered = name.lower()
        if lowered == "password":
            password = value
        elif lowered in SECRET_PARAMETERS:
            secrets.append(value)
            kept.append((name, value))
        elif lowered in USER_PARAMETERS:
            user = user or value
        else:
            kept.append((name, value))
    if password:
        secrets.append(password)
    # the user part is percent-encoded in a URL: hide both spellings
    raw = [s for s in secrets if s]
    secrets = sorted({*raw, *(unquote(s) for s in raw)}, key=len, reverse=True)
    address = urlunsplit((parts.scheme, host, parts.path, urlencode(kept), parts.fragment))
    return Dsn(address, unquote(user) if user else None,
               unquote(password) if password is not None else None, tuple(secrets))


def redact(dsn: str) -> str:
    """The DSN as it may be shown: every credential replaced by ``***``."""
    if dsn.startswith("chdb://") or "://" not in dsn:
        return dsn
    parts = urlsplit(dsn)
    host, user, password = _netloc_host(parts.netloc)
    netloc = host
    if user is not None or password is not None:
        netloc = f"{user or ''}:{HIDDEN}@{host}" if password is not None else f"{user}@{host}"
    query = [(name, HIDDEN if name.lower() in SECRET_PARAMETERS else value)
             for name, value in parse_qsl(parts.query, keep_blank_values=True)]
    shown = urlunsplit((parts.scheme, netloc, parts.path, "", parts.fragment))
    if query:
        shown += "?" + "&".join(f"{name}={value}" for name, value in query)
    return shown
