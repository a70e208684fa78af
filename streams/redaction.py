"""Secrets never reach output: every log record and every error a command prints passes through
one redactor that knows this process's secrets (DSN passwords, the /sql token).

Libraries put what they were given into their messages (a URL, a connection string), so
redacting at our own call sites is not enough: the record factory redacts every record of
every logger, with its traceback, and the exception hook redacts what escapes.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

from sinks.dsn import HIDDEN, parse_dsn
from streams.settings import Settings


class Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        # longest first: a secret that contains another is hidden whole
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, HIDDEN)
        return text


def secrets_of(settings: Settings, env: Mapping[str, str] | None = None) -> list[str]:
    secrets = list(parse_dsn(settings.dsn).secrets)
    if settings.sql_token is not None:
        secrets.append(settings.sql_token.get_secret_value())
    return secrets + notify_secrets(settings, os.environ if env is None else env)


def notify_secrets(settings: Settings, env: Mapping[str, str]) -> list[str]:
    """radar notify's destination URLs (a Slack URL is a credential) and signing secrets:
    the variables its file names (env:NAME), and the literal ones when the file is good."""
    from schemas.notify import NotifyConfigError
    from streams.notify_process import read_config
    from streams.settings import notify_variables

    found = [env[name] for name in notify_variables(settings.notify_config) if env.get(name)]
    try:
        config = read_config(settings, env) if settings.notify_config else None
    except NotifyConfigError:
        config = None
    if config is not None:
        found += [s for d in config.destination for s in (d.url, d.secret) if s]
    return found


def install(redact: Redactor) -> None:
    """Every log record of this process, and any uncaught exception, goes out redacted."""
    if not redact.secrets:
        return
    make_record = logging.getLogRecordFactory()

    def redacted_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[0] is not None:
            # formatters use exc_text when it is set: the traceback is rendered here, redacted
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip()
            record.exc_info = None
        if record.exc_text:  # rendered here, or by a factory this one wraps
            record.exc_text = redact(record.exc_text)
        return record

    logging.setLogRecordFactory(redacted_record)
    def redacted_hook(kind: type[BaseException], value: BaseException,
                      tb: TracebackType | None) -> None:
        sys.stderr.write(redact("".join(traceback.format_exception(kind, value, tb))))

    sys.excepthook = redacted_hook
