"""The two things the worker asks of Kafka's admin API at start: a client, and a topic made if it
is missing (the erasures topic, the rerouted topic)."""

from __future__ import annotations

import contextlib
from typing import Any

from streams.settings import Settings


def open_admin(settings: Settings, client_id: str, error: type[Exception], purpose: str) -> Any:
    """A kafka-python admin client on ``settings.kafka_bootstrap``; ``error`` (naming the
    brokers and ``purpose``) when none answers."""
    from kafka.admin import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        return KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap.split(","),
                                client_id=client_id, request_timeout_ms=10_000)
    except KafkaError as exc:
        raise error(f"cannot reach Kafka at {settings.kafka_bootstrap} to {purpose}: "
                    f"{type(exc).__name__}") from exc


def create_if_missing(admin: Any, topic: str, partitions: int,
                      configs: dict[str, str] | None = None) -> bool:
    """Make ``topic`` (replicated on up to 3 brokers) unless it exists; whether it was
    missing."""
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    if topic in admin.list_topics():
        return False
    brokers = len(admin.describe_cluster().get("brokers", [])) or 1
    with contextlib.suppress(TopicAlreadyExistsError):  # another worker was quicker
        admin.create_topics([NewTopic(topic, partitions, min(3, brokers),
                                      topic_configs=configs or {})])
    return True
