"""Secrets never appear in output: DSN passwords in either place, the /sql token (sinks.dsn,
streams.redaction)."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator

import pytest

from sinks.dsn import parse_dsn, redact
from streams.redaction import Redactor, install, secrets_of
from streams.settings import load_settings


@pytest.mark.parametrize(("dsn", "shown"), [
    ("http://radar:s3cret@ch:8123/db", "http://radar:***@ch:8123/db"),
    ("http://ch:8123/db?user=radar&password=s3cret", "http://ch:8123/db?user=radar&password=***"),
    ("https://ch:8443/db?password=s3cret&compress=1", "https://ch:8443/db?password=***&compress=1"),
    ("http://ch:8123/db?access_token=s3cret", "http://ch:8123/db?access_token=***"),
    ("http://u:p%40ss@ch:8123", "http://u:***@ch:8123"),
    ("http://ch:8123/db?database=radar", "http://ch:8123/db?database=radar"),
    ("chdb:///work/.local/clickhouse", "chdb:///work/.local/clickhouse"),
])
def test_redact_hides_credentials_in_both_places(dsn: str, shown: str) -> None:
    assert redact(dsn) == shown


def test_a_password_in_the_query_string_is_lifted_out_of_the_address() -> None:
    parts = parse_dsn("http://ch:8123/radar?user=writer&password=p%26w&compress=1")

    assert (parts.username, parts.password) == ("writer", "p&w")
    assert parts.address == "http://ch:8123/radar?compress=1"
    assert "p&w" in parts.secrets


def test_a_password_in_the_user_part_is_known_encoded_and_decoded() -> None:
    parts = parse_dsn("http://writer:p%40ss@ch:8123/radar")

    assert (parts.username, parts.password) == ("writer", "p@ss")
    assert parts.address == "http://ch:8123/radar"
    assert set(parts.secrets) == {"p%40ss", "p@ss"}


def test_the_settings_secrets_are_the_dsn_passwords_and_the_token() -> None:
    settings = load_settings({
        "RADAR_CLICKHOUSE_DSN": "http://ch:8123/db?password=dsn-secret",
        "RADAR_SQL_TOKEN": "token-0123456789abcdef",
    })

    assert sorted(secrets_of(settings)) == ["dsn-secret", "token-0123456789abcdef"]
    assert "token-0123456789abcdef" not in repr(settings)


def test_the_redactor_hides_every_secret_longest_first() -> None:
    redact_text = Redactor(["abc", "abcdef", ""])

    assert redact_text("x abcdef y abc z") == "x *** y *** z"


@pytest.fixture
def restored_logging() -> Iterator[io.StringIO]:
    factory, hook = logging.getLogRecordFactory(), sys.excepthook
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    logger = logging.getLogger("radar.test.redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield out
    finally:
        logger.removeHandler(handler)
        logging.setLogRecordFactory(factory)
        sys.excepthook = hook


def test_installed_every_log_record_and_its_traceback_is_redacted(
        restored_logging: io.StringIO) -> None:
    install(Redactor(["hunter2"]))
    log = logging.getLogger("radar.test.redaction")
    log.warning("connecting to http://u:%s@host failed", "hunter2")
    try:
        raise RuntimeError("password hunter2 refused")
    except RuntimeError:
        log.exception("could not open hunter2")

    text = restored_logging.getvalue()
    assert "hunter2" not in text
    assert "connecting to http://u:***@host failed" in text
    assert "RuntimeError: password *** refused" in text  # the traceback is still there


def test_installed_an_uncaught_exception_is_printed_redacted(
        restored_logging: io.StringIO, capsys: pytest.CaptureFixture[str]) -> None:
    install(Redactor(["hunter2"]))
    try:
        raise ValueError("bad hunter2")
    except ValueError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)

    err = capsys.readouterr().err
    assert "ValueError: bad ***" in err
    assert "hunter2" not in err


def test_a_redactor_installed_over_another_still_redacts_the_traceback(
        restored_logging: io.StringIO) -> None:
    """A second command in one process (tests call the CLI's main) installs over the first:
    the traceback rendered by the inner factory is still redacted by the outer one."""
    install(Redactor(["first-secret"]))
    install(Redactor(["hunter2"]))
    try:
        raise RuntimeError("first-secret and hunter2")
    except RuntimeError:
        logging.getLogger("radar.test.redaction").exception("failed")

    text = restored_logging.getvalue()
    assert "RuntimeError: *** and ***" in text
    assert "hunter2" not in text and "first-secret" not in text
