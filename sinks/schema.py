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

import re
from collections.abc import Mapping

SCHEMA_VERSION = 4

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
        owner            String,
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
    f"""
    CREATE TABLE IF NOT EXISTS signals
    (
        signal_id      String,
        account_id     String,
        stakeholder_id Nullable(String),
        type           LowCardinality(String),
        category       LowCardinality(String),
        severity       LowCardinality(String),
        occurred_at    DateTime64(3, 'UTC'),
        detected_at    DateTime64(3, 'UTC'),
        rule_version   LowCardinality(String),
        evidence       String,
        stored_at      DateTime64(3, 'UTC'),
        status         LowCardinality(String) DEFAULT 'open',
        withdrawn_at   Nullable(DateTime64(3, 'UTC')),
        status_rank    UInt8 DEFAULT 0
    )
    -- the latest status wins: a withdrawal (rank 1) replaces the open row (rank 0) whatever
    -- the order the two were written in
    ENGINE = ReplacingMergeTree(status_rank)
    PARTITION BY toYYYYMM(occurred_at)
    -- signal_id is deterministic (rules version, account, type, episode): re-processing
    -- produces the same id, and the replacing key collapses it
    ORDER BY (account_id, signal_id)
    SETTINGS {_DEDUP}
    """,

    """
    CREATE TABLE IF NOT EXISTS account_state
    (
        account_id       String,
        name             String,
        sector           String,
        owner            String,
        tier_level       Nullable(UInt8),
        tier             LowCardinality(String),
        tier_reasons     Array(String),
        renewal_date     Nullable(Date),
        arr              Nullable(Float64),
        champions        Array(String),
        score_7d         Float64,
        score_30d        Float64,
        score_90d        Float64,
        score_prior_30d  Float64,
        engaged_7d       UInt32,
        engaged_30d      UInt32,
        engaged_90d      UInt32,
        reached_7d       UInt32,
        reached_30d      UInt32,
        reached_90d      UInt32,
        functions_30d    Array(String),
        roster           UInt32,
        last_engaged_at  Nullable(DateTime64(3, 'UTC')),
        last_exposed_at  Nullable(DateTime64(3, 'UTC')),
        event_time       DateTime64(3, 'UTC'),
        late_ignored     UInt64,
        rule_version     LowCardinality(String),
        version          UInt64
    )
    -- one row per account: the highest version (the latest write) wins
    ENGINE = ReplacingMergeTree(version)
    ORDER BY account_id
    """,
    f"""
    CREATE TABLE IF NOT EXISTS alert_deliveries
    (
        key          String,
        signal_id    Nullable(String),
        destination  LowCardinality(String),
        message      LowCardinality(String),
        outcome      LowCardinality(String),
        attempts     UInt32,
        http_status  Nullable(UInt16),
        error        Nullable(String),
        signal_type  LowCardinality(Nullable(String)),
        severity     LowCardinality(Nullable(String)),
        account_id   Nullable(String),
        owner        Nullable(String),
        detected_at  Nullable(DateTime64(3, 'UTC')),
        recorded_at  DateTime64(3, 'UTC'),
        stored_at    DateTime64(3, 'UTC')
    )
    -- radar notify's record of each delivery (schemas.notify.DeliveryRecord), one per
    -- Idempotency-Key: the latest recorded wins. Not partitioned: a key's records must meet
    -- in one partition to be replaced, whatever month each was recorded in
    ENGINE = ReplacingMergeTree(recorded_at)
    ORDER BY key
    SETTINGS {_DEDUP}
    """,
    """
    CREATE OR REPLACE VIEW at_risk_accounts AS
    SELECT a.account_id, a.name, a.owner, a.tier_reasons, a.renewal_date, a.arr, a.champions,
           a.score_30d, a.score_prior_30d, a.engaged_30d, a.engaged_90d, a.last_engaged_at,
           s.churn_signals, s.last_signal_at
    FROM account_state AS a FINAL
    LEFT JOIN
    (
        SELECT account_id, groupUniqArray(type) AS churn_signals, max(occurred_at) AS last_signal_at
        FROM signals FINAL
        WHERE category = 'churn' AND severity IN ('high', 'critical') AND status = 'open'
        GROUP BY account_id
    ) AS s USING (account_id)
    WHERE a.tier = 'at_risk'
    """,
    """
    CREATE OR REPLACE VIEW expansion_candidates AS
    SELECT a.account_id, a.name, a.owner, a.tier_reasons, a.arr, a.champions, a.engaged_30d,
           a.functions_30d, a.score_30d, a.score_prior_30d, s.expansion_signals, s.last_signal_at
    FROM account_state AS a FINAL
    LEFT JOIN
    (
        SELECT account_id, groupUniqArray(type) AS expansion_signals,
               max(occurred_at) AS last_signal_at
        FROM signals FINAL
        WHERE category = 'expansion' AND status = 'open'
        GROUP BY account_id
    ) AS s USING (account_id)
    WHERE a.tier = 'expansion_ready'
    """,
    """
    CREATE OR REPLACE VIEW single_threaded_accounts AS
    SELECT account_id, name, tier, roster, engaged_90d, engaged_30d, champions, last_engaged_at,
           renewal_date
    FROM account_state FINAL
    WHERE engaged_90d < 2 AND roster >= 2
    """,
    """
    CREATE OR REPLACE VIEW continuity_gaps AS
    SELECT account_id, name, tier_level, last_exposed_at,
           dateDiff('day', coalesce(last_exposed_at, event_time), event_time) AS days_without_exposure,
           reached_30d, renewal_date
    FROM account_state FINAL
    WHERE reached_30d = 0
    """,
    """
    CREATE OR REPLACE VIEW weekly_engagement AS
    SELECT account_id, toMonday(occurred_at) AS week,
           countIf(type = 'ad_impression' AND NOT clicked) AS impressions,
           countIf(NOT (type = 'ad_impression' AND NOT clicked)
                   AND type IN ('ad_impression', 'outreach_reply', 'content_interaction')
                   AND reply_kind NOT IN ('not_interested', 'unsubscribe')) AS engagements,
           uniqExactIf(stakeholder_id, NOT (type = 'ad_impression' AND NOT clicked)
                   AND type IN ('ad_impression', 'outreach_reply', 'content_interaction')
                   AND reply_kind NOT IN ('not_interested', 'unsubscribe')) AS engaged_stakeholders,
           countIf(action = 'pricing_page_visit') AS pricing_page_visits
    FROM events FINAL
    GROUP BY account_id, week
    """,
    """
    CREATE TABLE IF NOT EXISTS erasures
    (
        erasure_id    String,
        subject_kind  LowCardinality(String),   -- stakeholder | account
        subject_hash  String,                   -- SHA-256 of kind and id: the id itself is gone
        removed       Map(String, UInt64),      -- rows removed (or redacted) per table
        erased_at     DateTime64(3, 'UTC')
    )
    ENGINE = MergeTree
    ORDER BY (erased_at, erasure_id)
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


# Columns added since a table was first made, and the ALTER that adds each one where it is
# missing: a signals table of schema 2 (before withdrawals) gets status and withdrawn_at; its
# engine keeps the last row written for an id (a withdrawal is written after its signal).
# Schema 4 gives events and account_state the account's owner ('' where none), in the place a
# new table has it, so an upgraded table and a new one read alike (``SELECT *``). Run only when
# a column is missing, so the writer needs ALTER ADD COLUMN only for that upgrade.
ADDED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("signals", "status", "LowCardinality(String) DEFAULT 'open'"),
    ("signals", "withdrawn_at", "Nullable(DateTime64(3, 'UTC'))"),
    ("signals", "status_rank", "UInt8 DEFAULT 0"),
    ("events", "owner", "String AFTER champion_ids"),
    ("account_state", "owner", "String AFTER sector"),
)


def upgrade_statements(present: set[tuple[str, str]]) -> list[str]:
    """The ALTERs that add the columns of ``ADDED_COLUMNS`` (type, then place if any) missing
    from ``present`` ((table, column) pairs as ``system.columns`` lists them)."""
    return [f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {kind}"
            for table, column, kind in ADDED_COLUMNS if (table, column) not in present]


# Retention (RADAR_EVENTS_TTL_DAYS): the tables that get a TTL, and the column it counts from.
# events: the event's own time, so "N days" means N days of history, whenever it arrived.
# dead_letters: stored_at, the worker's clock when it stored the letter. failed_at is the Kafka
# message timestamp, which the producer sets: a message with an absurd timestamp (the very thing
# dead letters are for) would vanish at once or never.
TTL_COLUMNS: Mapping[str, str] = {"events": "occurred_at", "dead_letters": "stored_at"}


def ttl_expression(column: str, days: int) -> str:
    """The TTL as ClickHouse prints it back in ``system.tables.engine_full`` (compared as text)."""
    return f"toDateTime({column}) + toIntervalDay({days})"


_TABLE_TTL = re.compile(r"\bTTL\s+(.+?)(?:\s+SETTINGS\s|$)")


def table_ttl(engine_full: str) -> str | None:
    """The table TTL of an ``engine_full`` text, or None when the table has none."""
    match = _TABLE_TTL.search(engine_full)
    return match.group(1).strip() if match else None


def retention_statements(current: Mapping[str, str | None], days: int | None) -> list[str]:
    """The ALTERs that give ``events`` and ``dead_letters`` the TTL of ``days``.

    ``current`` maps each table to its TTL now (None: none). Nothing is returned for a table
    that already has it, so running this again changes nothing (a changed TTL makes ClickHouse
    re-evaluate every part once). ``days`` None removes only a TTL that radar set; a TTL in
    another form was written by hand and is left alone.
    """
    statements: list[str] = []
    for table, column in TTL_COLUMNS.items():
        now = current.get(table)
        if days is not None:
            wanted = ttl_expression(column, days)
            if now != wanted:
                statements.append(f"ALTER TABLE {table} MODIFY TTL {wanted}")
        elif now is not None and is_radar_ttl(now, column):
            statements.append(f"ALTER TABLE {table} REMOVE TTL")
    return statements


def is_radar_ttl(expression: str, column: str) -> bool:
    return re.fullmatch(rf"toDateTime\({column}\) \+ toIntervalDay\(\d+\)", expression) is not None
