"""The ClickHouse schema (SPEC section 5), created or upgraded idempotently by ``radar db init``.

Why ReplacingMergeTree *and* deduplication tokens:
- Kafka delivers at least once. After a crash the worker re-reads messages whose rows may
  already be stored, in batches cut differently, so a per-insert token cannot catch them.
  ``events`` is a ReplacingMergeTree whose sorting key ends in ``event_id`` (and
  ``dead_letters`` one keyed on ``dead_letter_id``): merges collapse any duplicate, and
  ``FINAL`` (used by every view) hides one that is not merged yet. The writer also skips ids
  that are already stored before it inserts, so in the common case no duplicate is written.
- A retried insert of the *same* batch (a timeout after the server stored it) is dropped by
  ClickHouse itself through ``insert_deduplication_token``; a plain MergeTree needs
  ``non_replicated_deduplication_window`` for that, set on the tables below.
"""

from __future__ import annotations

SCHEMA_VERSION = 1

_DEDUP = "non_replicated_deduplication_window = 1000"

STATEMENTS: tuple[str, ...] = (
    f"""
    CREATE TABLE IF NOT EXISTS events
    (
        event_id         String,
        type             LowCardinality(String),
        schema_version   UInt8,
        occurred_at      DateTime64(3, 'UTC'),
        account_id       String,
        stakeholder_id   String,
        campaign_id      String,
        creative_id      String,
        clicked          Bool,
        cost_micros      Nullable(Int64),
        channel          LowCardinality(String),
        sequence_id      String,
        reply_kind       LowCardinality(String),
        content_id       String,
        action           LowCardinality(String),
        topic            Nullable(String),
        public           Bool,
        `change`         LowCardinality(String),
        title            String,
        `function`       LowCardinality(String),
        seniority        LowCardinality(String),
        buying_role      LowCardinality(String),
        name             String,
        sector           String,
        tier             Nullable(UInt8),
        renewal_date     Nullable(Date),
        arr              Nullable(Float64),
        champion_ids     Array(String),
        source_topic     LowCardinality(String),
        source_partition Int32,
        source_offset    Int64,
        ingested_at      DateTime64(3, 'UTC')
    )
    ENGINE = ReplacingMergeTree
    PARTITION BY toYYYYMM(occurred_at)
    -- account first: analysts and the signal engine read per account; event_id last makes
    -- the replacing key unique per event (an event_id belongs to exactly one account)
    ORDER BY (account_id, event_id)
    SETTINGS {_DEDUP}
    """,
    f"""
    CREATE TABLE IF NOT EXISTS dead_letters
    (
        dead_letter_id   String,
        source_topic     LowCardinality(String),
        source_partition Int32,
        source_offset    Int64,
        error_class      LowCardinality(String),
        reason           String,
        message_key      String,
        payload          String,
        payload_bytes    UInt32,
        failed_at        DateTime64(3, 'UTC'),
        stored_at        DateTime64(3, 'UTC')
    )
    ENGINE = ReplacingMergeTree
    ORDER BY dead_letter_id
    SETTINGS {_DEDUP}
    """,
    """
    CREATE TABLE IF NOT EXISTS radar_schema
    (
        version    UInt32,
        applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
    )
    ENGINE = ReplacingMergeTree
    ORDER BY version
    """,
)

TABLES: tuple[str, ...] = ("events", "dead_letters", "radar_schema")
