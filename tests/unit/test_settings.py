"""``streams.settings.load_settings``: ``RADAR_*`` variables -> one frozen Settings object.

Every test passes an explicit environ mapping, so the real environment never leaks in.
"""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from streams.settings import Settings, SettingsError, load_settings


def test_defaults_with_an_empty_environment() -> None:
    s = load_settings({})

    assert s.kafka_bootstrap == "localhost:9092"
    assert s.topic_partitions == 6
    assert s.batch_max_rows == 5000
    assert s.max_message_bytes == 524288
    assert s.topic_prefix == "radar"
    assert s.clickhouse_dsn is None
    assert s.dsn.startswith("chdb://")
    assert s.dsn.endswith(".local/clickhouse")
    assert s.embedded is True


def test_variables_without_the_radar_prefix_are_ignored() -> None:
    s = load_settings({"PATH": "/bin", "HOME": "/root", "KAFKA_BOOTSTRAP": "elsewhere:1"})

    assert s.kafka_bootstrap == "localhost:9092"


def test_values_are_read_from_radar_variables() -> None:
    s = load_settings({
        "RADAR_KAFKA_BOOTSTRAP": "broker:29092",
        "RADAR_TOPIC_PARTITIONS": "12",
        "RADAR_BATCH_MAX_ROWS": "1000",
        "RADAR_MAX_MESSAGE_BYTES": "1024",
    })

    assert s.kafka_bootstrap == "broker:29092"
    assert s.topic_partitions == 12
    assert s.batch_max_rows == 1000
    assert s.max_message_bytes == 1024


@pytest.mark.parametrize(
    "dsn",
    ["http://user:secret@clickhouse:8123/radar", "https://ch.example.com:8443"],
    ids=["http", "https"],
)
def test_a_server_dsn_is_not_embedded(dsn: str) -> None:
    s = load_settings({"RADAR_CLICKHOUSE_DSN": dsn})

    assert s.dsn == dsn
    assert s.embedded is False


def test_an_explicit_chdb_dsn_is_embedded() -> None:
    s = load_settings({"RADAR_CLICKHOUSE_DSN": "chdb:///data/ch"})

    assert (s.dsn, s.embedded) == ("chdb:///data/ch", True)


def test_local_dir_moves_the_embedded_database(tmp_path: object) -> None:
    s = load_settings({"RADAR_LOCAL_DIR": str(tmp_path)})

    assert s.dsn == f"chdb://{tmp_path}/clickhouse"


@pytest.mark.parametrize(
    ("environ", "fragment"),
    [
        pytest.param({"RADAR_TOPIC_PARTITIONS": "0"},
                     "RADAR_TOPIC_PARTITIONS: Input should be greater than or equal to 1",
                     id="partitions-0"),
        pytest.param({"RADAR_TOPIC_PARTITIONS": "six"},
                     "RADAR_TOPIC_PARTITIONS: Input should be a valid integer",
                     id="partitions-not-a-number"),
        pytest.param({"RADAR_BATCH_MAX_ROWS": "10"},
                     "RADAR_BATCH_MAX_ROWS: Input should be greater than or equal to 1000",
                     id="batch-rows-below-minimum"),
        pytest.param({"RADAR_MAX_MESSAGE_BYTES": "100"},
                     "RADAR_MAX_MESSAGE_BYTES: Input should be greater than or equal to 1024",
                     id="message-bytes-too-small"),
        pytest.param({"RADAR_CLICKHOUSE_DSN": "mysql://x"},
                     "RADAR_CLICKHOUSE_DSN: Value error, must start with chdb://, http:// or "
                     "https://",
                     id="dsn-unknown-scheme"),
        pytest.param({"RADAR_TOPIC_PREFIX": "my prefix"},
                     "RADAR_TOPIC_PREFIX: String should match pattern", id="prefix-with-space"),
        pytest.param({"RADAR_LOG_LEVEL": "verbose"},
                     "RADAR_LOG_LEVEL: String should match pattern", id="log-level"),
        pytest.param({"RADAR_WEB_PORT": "70000"},
                     "RADAR_WEB_PORT: Input should be less than or equal to 65535",
                     id="web-port-out-of-range"),
    ],
)
def test_a_bad_value_raises_settings_error_naming_the_variable(
    environ: dict[str, str], fragment: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(environ)

    assert fragment in str(caught.value)
    assert isinstance(caught.value.__cause__, ValidationError)


def test_every_bad_value_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"RADAR_TOPIC_PARTITIONS": "0", "RADAR_BATCH_MAX_ROWS": "10"})

    assert "RADAR_TOPIC_PARTITIONS" in str(caught.value)
    assert "RADAR_BATCH_MAX_ROWS" in str(caught.value)


def test_an_unknown_radar_variable_is_an_error_listing_the_known_ones() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"RADAR_FOO": "1", "RADAR_BAR": "2"})

    message = str(caught.value)
    assert message.startswith("unknown setting(s) RADAR_BAR, RADAR_FOO; known: ")
    assert "RADAR_TOPIC_PARTITIONS" in message
    assert "RADAR_CLICKHOUSE_DSN" in message


def test_settings_error_is_a_value_error() -> None:
    assert issubclass(SettingsError, ValueError)


def test_the_topic_prefix_changes_every_topic_name() -> None:
    default = load_settings({}).topics
    acme = load_settings({"RADAR_TOPIC_PREFIX": "acme"}).topics

    assert default.all() == [
        "radar.ad-impressions", "radar.outreach-replies", "radar.content-interactions",
        "radar.role-changes", "radar.accounts", "radar.dead-letters", "radar.signals",
        "radar.alerts", "radar.account-tiers", "radar.account-state", "radar.erasures",
        "radar.notify-deliveries", "radar.notify-snoozes",
    ]
    assert acme.all() == [name.replace("radar.", "acme.", 1) for name in default.all()]
    assert acme.dead_letters == "acme.dead-letters"
    assert acme.for_type("role_change") == "acme.role-changes"
    assert acme.for_type("nope") is None
    assert acme.is_compacted("acme.accounts") is True
    assert acme.is_compacted("radar.accounts") is False
    assert acme.is_compacted("acme.erasures") is True
    assert acme.is_compacted("acme.notify-deliveries") is True
    assert acme.is_compacted("acme.signals") is False


def test_settings_are_frozen() -> None:
    s = load_settings({})

    with pytest.raises(ValidationError):
        s.topic_partitions = 3  # type: ignore[misc]
    assert isinstance(s, Settings)


def test_without_a_bootstrap_the_brokers_are_the_local_one_on_the_kafka_port() -> None:
    """`radar demo` with only RADAR_KAFKA_PORT starts its broker there: the worker and publish
    must use it, not another broker left on the default port."""
    assert load_settings({"RADAR_KAFKA_PORT": "49096"}).kafka_bootstrap == "localhost:49096"
    assert load_settings({}).kafka_bootstrap == "localhost:9092"
    both = load_settings({"RADAR_KAFKA_PORT": "49096", "RADAR_KAFKA_BOOTSTRAP": "kafka:29092"})
    assert both.kafka_bootstrap == "kafka:29092"


@pytest.mark.parametrize("seconds", ["5", "1801"])
def test_a_session_timeout_outside_the_brokers_default_bounds_is_refused(seconds: str) -> None:
    with pytest.raises(SettingsError, match="RADAR_SESSION_TIMEOUT_SECONDS"):
        load_settings({"RADAR_SESSION_TIMEOUT_SECONDS": seconds})


@pytest.mark.parametrize(("environ", "session", "heartbeat"), [
    ({}, 60.0, 3.0),
    ({"RADAR_SESSION_TIMEOUT_SECONDS": "6"}, 6.0, 2.0),
])
def test_the_workers_group_session_follows_the_setting(environ: dict[str, str], session: float,
                                                      heartbeat: float) -> None:
    from streams.app import create_app
    from streams.metrics import Metrics
    from streams.worker import load_rules

    settings = load_settings(environ)
    app = create_app(settings, Metrics(), load_rules(settings))
    assert app.conf.broker_session_timeout == session
    # a heartbeat at most a third of the session, as Kafka advises
    assert app.conf.broker_heartbeat_interval == heartbeat
