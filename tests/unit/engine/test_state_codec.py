"""The account-state table's codec writes the standard library's JSON, faster.

A state goes into the changelog with :class:`streams.state_codec.StateJson` and comes back on
a restart; a store written before it (Faust's stdlib ``json`` codec) must read back the same.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from world import World

from processors.engine import apply_event
from processors.rules import DEFAULT_RULES
from processors.state import AccountState
from schemas.decode import Rejection, decode_event
from streams.state_codec import StateJson
from tools.simulation import SimConfig, Simulation

AWKWARD: dict[str, Any] = {
    "floats": [0.1 + 0.2, 1e16, 1e300, 5e-324, -0.0, 2.5, 1 / 3, 123456789.123456789],
    "non_finite": [math.inf, -math.inf],
    "ints": [0, -1, 2**53 + 1, 2**63 - 1, 2**70],
    "int_keys": {5: 1.5, 18_000: 2.0},
    "tuples": [("engagement_silence", "high", 1.7e9)],
    "text": ["plain", 'quote " and \\ backslash', "naïve – 🚀", "\x00\n\t", ""],
    "nested": {"a": {"b": [None, True, False, {"c": []}]}},
}


def stdlib_round_trip(value: Any) -> Any:
    return json.loads(json.dumps(value))


def test_awkward_values_come_back_as_the_stdlib_codec_gives_them() -> None:
    codec = StateJson()
    back = codec.loads(codec.dumps(AWKWARD))
    assert back == stdlib_round_trip(AWKWARD)
    # and the sign of zero (== treats 0.0 and -0.0 alike)
    assert [math.copysign(1, x) for x in back["floats"]] == \
        [math.copysign(1, x) for x in AWKWARD["floats"]]
    assert back["non_finite"] == [math.inf, -math.inf]  # not null


def test_nan_is_written_as_the_stdlib_writes_it() -> None:
    codec = StateJson()
    text = codec.dumps({"x": math.nan})
    assert text == json.dumps({"x": math.nan}, separators=(",", ":")).encode()
    assert math.isnan(codec.loads(text)["x"])


def test_a_value_written_by_the_stdlib_codec_reads_back() -> None:
    """A changelog or RocksDB store written before this codec."""
    old = json.dumps(AWKWARD).encode()
    assert StateJson().loads(old) == stdlib_round_trip(AWKWARD)


def test_a_state_with_history_and_live_windows_survives_the_codec() -> None:
    w = World()
    w.profile(0, champion_ids=("champ",))
    w.reply(1, "ops")
    w.content(2, "champ", "share", public=True)
    w.leave(40, "champ")
    w.advance_to(120)
    assert w.state is not None
    original = w.state.to_dict()
    assert original["departures"] and original["stakeholders"] and original["score_days"]
    codec = StateJson()
    restored = AccountState.from_dict(codec.loads(codec.dumps({"p": 3, "s": original}))["s"])
    assert restored.to_dict() == original
    assert restored == w.state


def test_simulated_states_come_back_as_the_stdlib_codec_gives_them() -> None:
    sim = Simulation(SimConfig(accounts=6, days=120, seed=5))
    states: dict[str, AccountState] = {}
    detected = datetime(2030, 1, 1, tzinfo=UTC)
    for day in sim.days():
        for line in day.lines:
            event = decode_event(line.encode(), 1 << 20)
            if isinstance(event, Rejection):
                continue
            states[event.account_id], _ = apply_event(states.get(event.account_id), event,
                                                      DEFAULT_RULES, detected)
    assert len(states) == 6
    codec = StateJson()
    for state in states.values():
        value = {"p": 0, "s": state.to_dict()}
        encoded = codec.dumps(value)
        assert codec.loads(encoded) == stdlib_round_trip(value)
        assert json.loads(encoded) == stdlib_round_trip(value)  # readable by any JSON reader


def test_the_worker_state_table_writes_its_changelog_and_store_with_the_codec() -> None:
    # the table takes its serializer from value_type, not from its schema: a regression here
    # would silently go back to the stdlib codec
    from streams.app import create_app
    from streams.metrics import Metrics
    from streams.settings import load_settings
    from streams.state_codec import STATE_CODEC
    from streams.worker import load_rules

    settings = load_settings({})
    app = create_app(settings, Metrics(), load_rules(settings))
    table = app.tables["accounts"]
    assert table.value_serializer is STATE_CODEC
    assert table.data.value_serializer is STATE_CODEC
    value = {"p": 1, "s": {"score": 1e-7}}
    sent, _ = table.changelog_topic.prepare_value(value, table.value_serializer)
    assert sent == STATE_CODEC.dumps(value) == b'{"p":1,"s":{"score":1e-7}}'  # stdlib: 1e-07


def test_an_accounts_state_goes_to_the_changelog_partition_of_its_events() -> None:
    # the changelog key is the account_id's bytes, so the producer's partitioner files the
    # state on the partition that owns the account's events (and the worker taking that
    # partition over restores it); a JSON key ('"acct-1"') went elsewhere for most accounts
    from aiokafka.partitioner import DefaultPartitioner

    from processors.partitioning import partition_of
    from streams.app import create_app
    from streams.metrics import Metrics
    from streams.settings import load_settings
    from streams.state_codec import STATE_CODEC
    from streams.worker import load_rules

    settings = load_settings({})
    app = create_app(settings, Metrics(), load_rules(settings))
    table = app.tables["accounts"]
    assert table.use_partitioner and table.changelog_topic.get_topic_name() == \
        f"{settings.app_id}-accounts-changelog"
    n = settings.topic_partitions
    everywhere = list(range(n))
    partitioner = DefaultPartitioner()
    homes = set()
    for i in range(300):
        account = f"acct-{i}"
        key, _ = table.changelog_topic.prepare_key(account, table.key_serializer)
        assert key == account.encode()
        home = partition_of(account, n)
        assert partitioner(key, everywhere, everywhere) == home
        homes.add(home)
        # the store files it under the same bytes and gives the id back
        assert table.data._encode_key(account) == key
        assert table.data._decode_key(key) == account
    assert homes == set(everywhere)
    # and the changelog is read back (recovery, standbys) with the same serializers
    from faust.types import Message

    topic = table.changelog_topic
    state = {"p": 3, "s": {"score": 1e-7}}
    record = Message(topic.get_topic_name(), 3, 0, 0.0, 0, None, b"acct-1",
                     STATE_CODEC.dumps(state), None)
    assert topic.schema.loads_key(app, record) == "acct-1"
    assert topic.schema.loads_value(app, record) == state
