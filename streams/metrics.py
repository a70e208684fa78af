"""Every Prometheus metric the worker exports, declared in one place, on a registry of its own."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

if TYPE_CHECKING:
    from sinks.clickhouse import WriteResult

_LATENCY_BUCKETS = (
    0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600,
    6 * 3600, 86400, 7 * 86400, 30 * 86400, 365 * 86400,
)
_INSERT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_BATCH_BUCKETS = (1, 10, 100, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.events_consumed = Counter(
            "radar_events_consumed", "Messages read from the input topics.", ["topic"], registry=r
        )
        self.events_rejected = Counter(
            "radar_events_rejected",
            "Messages refused and sent to the dead-letter topic, by reason (error class).",
            ["reason"], registry=r,
        )
        self.rows_written = Counter(
            "radar_rows_written", "Rows inserted into ClickHouse, by table.", ["table"], registry=r
        )
        self.rows_skipped_duplicate = Counter(
            "radar_rows_skipped_duplicate",
            "Rows not inserted because their id was already stored (redelivery).",
            ["table"], registry=r,
        )
        self.insert_duration = Histogram(
            "radar_insert_duration_seconds", "Time to store one batch in ClickHouse, retries included.",
            ["table"], buckets=_INSERT_BUCKETS, registry=r,
        )
        self.insert_batch_rows = Histogram(
            "radar_insert_batch_rows", "Rows per ClickHouse insert batch.",
            ["table"], buckets=_BATCH_BUCKETS, registry=r,
        )
        self.insert_retries = Counter(
            "radar_insert_retries", "Failed ClickHouse insert attempts that were retried.",
            ["table"], registry=r,
        )
        self._lag_labels: set[tuple[str, str]] = set()  # the series set (Metrics.set_lags)
        self.consumer_lag = Gauge(
            "radar_consumer_lag",
            "Messages on a partition not yet stored and committed (high-water mark minus "
            "the next offset to store).",
            ["topic", "partition"], registry=r,
        )
        self.event_to_stored = Histogram(
            "radar_event_to_stored_seconds",
            "Event time (occurred_at) to the moment the row was stored in ClickHouse.",
            buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.signals_emitted = Counter(
            "radar_signals", "Signals emitted to the signals topic.", ["type", "severity"],
            registry=r,
        )
        self.signals_withdrawn = Counter(
            "radar_signals_withdrawn",
            "Signals sent before and then proved premature by an event that arrived later "
            "(within the allowed lateness): sent again, same id, status withdrawn.", ["type"],
            registry=r,
        )
        self.signals_cancelled = Counter(
            "radar_signals_cancelled",
            "Deadline signals proved premature by a late event while they waited for "
            "deadline_grace_hours: never sent.", ["type"], registry=r,
        )
        self.alerts_sent = Counter(
            "radar_alerts", "Signals also sent to the alerts topic.", registry=r,
        )
        self.alert_latency = Histogram(
            "radar_alert_latency_seconds",
            "From the triggering message's produce time to the alert acknowledged by Kafka.",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10, 30, 60),
            registry=r,
        )
        self.tier_changes = Counter(
            "radar_tier_changes", "Account tier changes, by new tier.", ["tier"], registry=r,
        )
        self.late_events = Counter(
            "radar_late_events",
            "Events older, on arrival, than the account's high-water mark minus the allowed "
            "lateness: stored, counted, but they change no state and fire nothing. A message "
            "read again (redelivered) is counted in radar_redelivered_events instead.",
            registry=r,
        )
        self.redelivered_events = Counter(
            "radar_redelivered_events",
            "Messages read again whose event was applied already (after a restart or a "
            "rebalance, reading resumes at the last committed offset): changed nothing.",
            registry=r,
        )
        self.rerouted_events = Counter(
            "radar_rerouted_events",
            "Events that arrived on a partition other than their account's (a producer "
            "without keys, another client's partitioner, a key that is not the account_id) "
            "and were applied by the account's own partition, by input topic.",
            ["topic"], registry=r,
        )
        self.idle_releases = Counter(
            "radar_watermark_idle_releases",
            "Times a source (a partition of an input topic) turned idle: caught up for "
            "RADAR_IDLE_SOURCE_SECONDS, it no longer holds event time back.",
            registry=r,
        )
        self.events_erased = Counter(
            "radar_events_erased",
            "Events of an erased person or account, dropped: neither stored nor applied.",
            registry=r,
        )
        self.erasures = Counter(
            "radar_erasures", "Erasures applied to the engine's state.", registry=r,
        )
        self.store_skipped = Counter(
            "radar_store_skipped", "Messages radar store could not read as their topic's "
            "kind (e.g. a signal that is not one), by topic; logged, not stored.", ["topic"],
            registry=r,
        )
        self.held_events = Gauge(
            "radar_events_held",
            "Events waiting in the reorder buffers for the partition watermark.", registry=r,
        )

        # radar notify (SPEC section 10)
        self.notify_outcomes = Counter(
            "radar_notify_deliveries",
            "radar notify's outcomes per destination: delivered (a 2xx), retried (an attempt "
            "that failed and is tried again), stale (older than max_age: recorded, not "
            "pushed), snoozed (the account snoozed: recorded, not pushed), dead_lettered "
            "(given up after give_up_after, or refused by a 4xx).",
            ["destination", "outcome"], registry=r,
        )
        self.notify_latency = Histogram(
            "radar_notify_delivery_seconds",
            "From the signal's detection (detected_at, wall clock) to the destination's 2xx.",
            ["destination"], buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10, 30, 60, 300,
                                      900, 3600), registry=r,
        )
        self.notify_partitions = Gauge(
            "radar_notify_partitions",
            "Partitions of the signals topic this notifier holds (0 until it joined its "
            "group, or while its group rebalances).", registry=r,
        )
        self.notify_in_flight = Gauge(
            "radar_notify_in_flight",
            "Deliveries being attempted or waiting to be retried, per destination.",
            ["destination"], registry=r,
        )

    def set_lags(self, ends: Iterable[tuple[str, int, int | None, int | None]]) -> None:
        """``radar_consumer_lag`` of each (topic, partition, high-water mark, next offset done)
        assigned to this process; a partition without both is left out, and the series of a
        partition no longer here are removed."""
        seen: set[tuple[str, str]] = set()
        for topic, partition, highwater, done in ends:
            if highwater is None or done is None:
                continue
            labels = (topic, str(partition))
            self.consumer_lag.labels(*labels).set(max(0, highwater - done))
            seen.add(labels)
        for labels in self._lag_labels - seen:
            self.consumer_lag.remove(*labels)
        self._lag_labels = seen

    def record_write(self, result: WriteResult) -> None:
        """One ClickHouse batch: rows, duplicates skipped, duration, size, retries."""
        table = result.table
        self.rows_written.labels(table).inc(result.written)
        self.rows_skipped_duplicate.labels(table).inc(result.offered - result.written)
        self.insert_duration.labels(table).observe(result.seconds)
        self.insert_batch_rows.labels(table).observe(result.offered)
        if result.attempts > 1:
            self.insert_retries.labels(table).inc(result.attempts - 1)
