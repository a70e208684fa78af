"""Pure helpers around ClickHouse: insert dedup tokens, DSN redaction, ``radar sql`` tables."""

from __future__ import annotations

import hashlib

import pytest

from sinks.clickhouse import dedup_token
from sinks.dsn import redact
from streams.query import render_table

# ----------------------------------------------------------------------------- dedup_token


def test_dedup_token_names_the_table_and_count_and_hashes_the_ids() -> None:
    digest = hashlib.sha256(b'["e1", "e2", "e3"]').hexdigest()

    assert dedup_token("events", ["e1", "e2", "e3"]) == f"events:3:{digest}"


def test_dedup_token_cannot_be_confused_by_separator_characters_inside_ids() -> None:
    assert dedup_token("events", ["a\x1fb", "c"]) != dedup_token("events", ["a", "b\x1fc"])


def test_dedup_token_is_stable_for_the_same_batch() -> None:
    assert dedup_token("events", ["e1", "e2"]) == dedup_token("events", ("e1", "e2"))


def test_dedup_token_is_order_sensitive() -> None:
    assert dedup_token("events", ["e1", "e2"]) != dedup_token("events", ["e2", "e1"])


def test_dedup_token_differs_per_table() -> None:
    assert dedup_token("events", ["x"]) != dedup_token("dead_letters", ["x"])


def test_dedup_token_does_not_confuse_joined_ids() -> None:
    assert dedup_token("events", ["ab"]) != dedup_token("events", ["a", "b"])


# ----------------------------------------------------------------------------- redact


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        pytest.param("http://radar:s3cret@clickhouse:8123/db", "http://radar:***@clickhouse:8123/db",
                     id="user-and-password"),
        pytest.param("https://u:p@ss@host:8443", "https://u:***@host:8443",
                     id="at-sign-in-password"),
        pytest.param("http://clickhouse:8123", "http://clickhouse:8123", id="no-credentials"),
        pytest.param("chdb:///work/.local/clickhouse", "chdb:///work/.local/clickhouse",
                     id="embedded-path"),
    ],
)
def test_redact_hides_the_password(dsn: str, shown: str) -> None:
    assert redact(dsn) == shown


def test_redacted_dsn_never_contains_the_password() -> None:
    assert "s3cret" not in redact("https://admin:s3cret@ch.example.com:8443/radar")


# ----------------------------------------------------------------------------- render_table


def test_render_table_aligns_columns_and_counts_rows() -> None:
    text = render_table(["account_id", "n"], [["acct-1", 12], ["a", None]])

    assert text == (
        "account_id  n\n"
        "----------  ----\n"
        "acct-1      12\n"
        "a           NULL\n"
        "(2 rows)"
    )


def test_render_table_with_one_row_says_row() -> None:
    assert render_table(["x"], [[1]]) == "x\n-\n1\n(1 row)"


def test_render_table_with_no_rows() -> None:
    assert render_table(["event_id", "type"], []) == "event_id  type\n--------  ----\n(0 rows)"


def test_render_table_strips_trailing_spaces() -> None:
    text = render_table(["a", "long_column"], [["value", ""]])

    assert all(line == line.rstrip() for line in text.splitlines())
