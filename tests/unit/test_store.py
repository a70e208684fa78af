"""``radar store`` on a real embedded database: each topic's records become their table's rows,
once, and erased subjects never come back through records sent before a worker learned of
the erasure. (The consumer loop runs against the real broker in tests/integration.)"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from conftest import build_event, store_in_memory

from processors.erasure import Erased, scrub_signals, scrub_state_row, subject_hash
from processors.ingest import RawMessage, dead_letter_for
from processors.state import AccountState
from schemas.decode import ErrorClass, Rejection
from schemas.signals import Signal
from sinks.clickhouse import ClickHouseWriter
from sinks.rows import AccountView, account_state_json
from streams.metrics import Metrics
from streams.settings import load_settings
from streams.store import Record, Store, forget_revoked

SETTINGS = load_settings({})
TOPICS = SETTINGS.topics
AT = datetime(2026, 3, 1, 10, tzinfo=UTC)
MS = int(AT.timestamp() * 1000)


def signal(n: int, stakeholder: str | None = "ana", **evidence: Any) -> Signal:
    return Signal(signal_id=f"{n:032x}", account_id="acct-1", stakeholder_id=stakeholder,
                  type="champion_left", category="churn", severity="critical", occurred_at=AT,
                  detected_at=AT, rule_version="v1", evidence=evidence or {"event_ids": ["e"]})


def state_line(account: str, champions: list[str], version: int) -> bytes:
    state = AccountState(account_id=account, first_seen=AT.timestamp(), high_water=AT.timestamp())
    state.profile_champions = champions
    figures = {"champions": champions, "score_7d": 1.0, "score_30d": 2.0, "score_90d": 3.0,
               "score_prior_30d": 0.5, "engaged_7d": 1, "engaged_30d": 1, "engaged_90d": 1,
               "reached_7d": 1, "reached_30d": 1, "reached_90d": 1, "functions_30d": ["it"],
               "roster": 2}
    return account_state_json(AccountView(state, figures, ["a reason"], "v1"), version)


def records(offset: int = 0) -> list[Record]:
    reply = build_event("outreach_reply", event_id="ev-1", account_id="acct-1",
                        stakeholder_id="ana", occurred_at=AT.isoformat())
    profile = build_event("account_profile", event_id="ev-2", account_id="acct-1",
                          champion_ids=["ana", "bo"], occurred_at=AT.isoformat())
    # an hour ahead of the moment it was produced: fine with the default day of leeway
    ahead = build_event("outreach_reply", event_id="ev-3", account_id="acct-1",
                        stakeholder_id="bo", occurred_at=(AT + timedelta(hours=1)).isoformat())
    # two days ahead of its production, however late it is read: refused, not stored
    future = build_event("outreach_reply", event_id="ev-4", account_id="acct-1",
                         stakeholder_id="bo", occurred_at=(AT + timedelta(days=2)).isoformat())
    reply_topic, profile_topic = TOPICS.for_type("outreach_reply"), TOPICS.for_type(
        "account_profile")
    assert reply_topic is not None and profile_topic is not None
    return [
        Record(reply_topic, 0, offset, b"acct-1", json.dumps(reply).encode(), MS),
        Record(profile_topic, 0, offset, b"acct-1", json.dumps(profile).encode(), MS),
        Record(reply_topic, 0, offset + 1, b"acct-1", json.dumps(ahead).encode(), MS),
        Record(reply_topic, 0, offset + 2, b"acct-1", json.dumps(future).encode(), MS),
        Record(reply_topic, 0, offset + 3, b"acct-1", b"{not json", MS),
        Record(TOPICS.dead_letters, 0, offset, b"acct-1", b"{not json", MS, dead_letter_for(
            RawMessage(reply_topic, 0, offset + 3, b"acct-1", b"{not json"),
            Rejection(ErrorClass.MALFORMED_JSON, "bad")).headers()),
        Record(TOPICS.signals, 0, offset, b"acct-1", signal(1).model_dump_json().encode(), MS),
        Record(TOPICS.signals, 0, offset + 1, b"acct-1", b'{"not": "a signal"}', MS),
        Record(TOPICS.account_state, 0, offset, b"acct-1",
               state_line("acct-1", ["ana", "bo"], 10), MS),
        Record(TOPICS.account_state, 0, offset + 1, b"acct-2", None, MS),  # a tombstone
    ]


def run_store(tmp_path: Path, batches: list[list[Record]], erased: Erased | None = None
              ) -> tuple[dict[str, Any], Metrics]:
    writer = ClickHouseWriter(f"chdb://{tmp_path / 'db'}", retry_initial=0.01, retry_max=0.01)
    writer.open_blocking()
    metrics = Metrics()
    store = Store(SETTINGS, writer, metrics, erased or Erased())
    queries = {
        "events": "SELECT groupArraySorted(10)(event_id) FROM events",
        "dead_letters": "SELECT groupArraySorted(10)(dead_letter_id) FROM dead_letters",
        "signals": "SELECT count(), any(stakeholder_id), any(evidence) FROM signals",
        "champions": "SELECT groupArray(champions) FROM account_state FINAL",
        "status": "SELECT any(status) FROM signals FINAL",
    }

    async def go() -> dict[str, Any]:
        for batch in batches:
            await store.store(batch)
        return {k: (await writer.query_read_only(q))[1][0] for k, q in queries.items()}

    try:
        return asyncio.run(go()), metrics
    finally:
        writer.close_blocking()


def test_each_topic_becomes_its_table_once_even_when_read_twice(tmp_path: Path) -> None:
    tables, metrics = run_store(tmp_path, [records(), records()])  # a redelivered batch
    # valid events only: the invalid and the implausible ones are the dead letters' business
    assert tables["events"] == (["ev-1", "ev-2", "ev-3"],)
    assert tables["dead_letters"] == ([f"{TOPICS.for_type('outreach_reply')}:0:3"],)
    assert tables["signals"][0] == 1 and tables["signals"][1] == "ana"
    assert tables["champions"] == ([["ana", "bo"]],)  # the latest version per account
    skipped = metrics.store_skipped.labels(TOPICS.signals)._value.get()
    assert skipped == 2  # the record that is not a signal, read twice: counted, not stored
    assert metrics.events_consumed.labels(TOPICS.for_type("outreach_reply"))._value.get() == 0


def test_records_sent_before_a_worker_learned_of_an_erasure_do_not_bring_it_back(
        tmp_path: Path) -> None:
    erased = Erased()
    erased.add("stakeholder", subject_hash("stakeholder", "ana"))
    mention = Record(TOPICS.signals, 0, 9, b"acct-1", signal(
        2, stakeholder="bo", event_ids=["e"], joined_since=["ana", "cy"]).model_dump_json(
        ).encode(), MS)
    tables, _ = run_store(tmp_path, [records() + [mention]], erased)
    assert tables["events"] == (["ev-2", "ev-3"],)  # hers dropped; the profile stays
    count, stakeholder, evidence = tables["signals"]
    assert (count, stakeholder) == (1, "bo")  # the signal about her is not stored
    assert json.loads(evidence)["joined_since"] == ["[erased]", "cy"]
    assert tables["champions"] == ([["bo"]],)


def test_scrubbing_changes_nothing_without_erasures_and_drops_an_erased_account() -> None:
    nobody = Erased()
    assert scrub_signals([signal(1)], nobody) == [signal(1)]
    row = json.loads(state_line("acct-9", ["ana"], 1))
    assert scrub_state_row(row, nobody) == row
    account = Erased()
    account.add("account", subject_hash("account", "acct-9"))
    assert scrub_state_row(row, account) is None
    assert scrub_signals([signal(1)], account) == [signal(1)]  # acct-1 is not erased
    one = Erased()
    one.add("account", subject_hash("account", "acct-1"))
    assert scrub_signals([signal(1)], one) == []


def test_the_memory_sink_keeps_what_clickhouse_keeps(tmp_path: Path) -> None:
    """The same batches — a redelivery, a withdrawal, a newer state version — through the store
    into embedded ClickHouse and into MemorySink: the same rows remain."""
    withdrawn = signal(1).model_copy(update={"status": "withdrawn", "withdrawn_at": AT})
    later = [Record(TOPICS.signals, 0, 5, b"acct-1", withdrawn.model_dump_json().encode(), MS),
             Record(TOPICS.account_state, 0, 5, b"acct-1", state_line("acct-1", ["bo"], 20),
                    MS)]
    batches = [records(), later, records()]  # the first read again after the withdrawal
    tables, _ = run_store(tmp_path, batches)
    memory = store_in_memory(batches)
    assert (sorted(memory.events),) == tables["events"]
    assert (sorted(memory.dead_letters),) == tables["dead_letters"]
    assert [s.status for s in memory.signals.values()] == ["withdrawn"]
    assert tables["status"] == ("withdrawn",)
    assert ([row["champions"] for row in memory.account_state.values()],) == tables["champions"]
    assert tables["champions"] == ([["bo"]],)


def _lag_series(metrics: Metrics) -> dict[tuple[str, str], float]:
    return {(s.labels["topic"], s.labels["partition"]): s.value
            for family in metrics.registry.collect() if family.name == "radar_consumer_lag"
            for s in family.samples}


def test_a_revoked_partition_loses_its_lag_series_and_its_position() -> None:
    metrics = Metrics()
    positions = {("ads", 0): 90, ("ads", 1): 40}
    metrics.set_lags([("ads", 0, 100, positions[("ads", 0)]), ("ads", 1, 50, positions[("ads", 1)]),
                      ("ads", 2, None, 7), ("ads", 3, 70, None)])  # 2 and 3: not known yet
    assert _lag_series(metrics) == {("ads", "0"): 10.0, ("ads", "1"): 10.0}

    forget_revoked({("ads", 0)}, positions)  # ads:1 went to another store
    assert positions == {("ads", 0): 90}
    metrics.set_lags([("ads", 0, 120, positions[("ads", 0)])])
    assert _lag_series(metrics) == {("ads", "0"): 30.0}
