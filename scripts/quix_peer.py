"""The worker's engine path under Quix Streams instead of Faust: the peer of ``bench_peer.py``.

    PYTHONPATH=. .local/quix-venv/bin/python scripts/quix_peer.py --bootstrap 127.0.0.1:28192 \
        --inputs bench1a2b3c --outputs peer1a2b3c --expect 172929 [--poll-timeout 0.1]

Runs in the Quix virtualenv ``bench_peer.py`` makes (Quix pins pydantic below the project's, so
the project is not installed there: its root goes on ``PYTHONPATH``; only ``processors``,
``schemas``, ``sinks.rows`` and ``streams.settings`` are imported, none of them needs Faust).

One Quix ``Application`` (a fresh consumer group from the earliest offsets, at-least-once, a
fresh RocksDB state folder with its changelog topic) reads the five input topics of
``--inputs`` (one dataframe each, concatenated) and does, with the project's pure code, what a
worker does with one fetch: every ``--batch`` messages (the worker's ``RADAR_BATCH_MAX_ROWS``)
and before each Quix checkpoint commit, ``processors.ingest.ingest`` the messages read,
``Sequencer.admit`` the valid ones, ``Sequencer.step`` (reorder, watermark, day sweeps,
engine), then send the dead letters, signals, withdrawals, alerts, tier changes and the changed
accounts' ``account_state`` rows to the ``--outputs`` topics, and save the changed states in
Quix's state store (one write per changed account per batch, as the worker's table).

Less than the worker: no Prometheus, no web server, no idle timer, no erasures; the watermark
treats a source as caught up as soon as its cached high watermark is reached (the worker waits
``RADAR_IDLE_SOURCE_SECONDS``); ``StateTable.items`` sees only this run's writes (the peer
always starts from an empty state). Weaker guarantee: Quix commits the offsets of events the
sequencer still holds for reordering (the worker acknowledges an event once it is applied and
its effects are on Kafka), so a crash could lose them.

Stops itself after ``--expect`` input messages and prints one JSON line of figures.
Quix internals used: ``app._consumer`` (assignment, cached high watermarks) and the current
checkpoint (``processing_context.checkpoint``) for the store transaction of each partition.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import shutil
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Collection, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pydantic_core
from quixstreams import Application, message_context
from quixstreams.dataframe import StreamingDataFrame
from quixstreams.state.base import PartitionTransaction

from processors.erasure import Erased
from processors.ingest import RawMessage, ingest
from processors.partitioning import Owners
from processors.rules import DEFAULT_RULES
from processors.sequencer import Sequencer
from processors.sequencer_ports import BatchResult
from processors.watermark import Source
from schemas.decode import EventTimeBounds
from schemas.topics import TopicNames
from sinks.rows import AccountView, account_state_json
from streams.settings import load_settings

GC_THRESHOLDS = (50_000, 20, 10)  # as streams.worker sets them for the worker
STATE_KEY = b"s"


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Counted:
    """The sequencer's counts (Prometheus in the worker)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def late(self) -> None:
        self.counts["late"] += 1

    def redelivered(self) -> None:
        self.counts["redelivered"] += 1

    def rerouted(self, topic: str) -> None:
        self.counts["rerouted"] += 1

    def erased(self) -> None:
        self.counts["erased"] += 1


class QuixTable:
    """The sequencer's state table on Quix's RocksDB store: the worker's value
    ({"p": partition, "s": state}) as JSON under the account's prefix, in the transaction of the
    account's partition of the current checkpoint."""

    def __init__(self, partitions: int) -> None:
        self.owner = Owners(partitions)
        self.sdf: StreamingDataFrame | None = None
        self.reads = self.writes = 0

    def _tx(self, partition: int) -> PartitionTransaction:
        assert self.sdf is not None
        return self.sdf.processing_context.checkpoint.get_store_transaction(
            stream_id=self.sdf.stream_id, partition=partition)

    def get(self, account_id: str) -> Any:
        self.reads += 1
        raw = self._tx(self.owner(account_id)).get_bytes(STATE_KEY, prefix=account_id.encode())
        return None if raw is None else pydantic_core.from_json(raw, allow_inf_nan=True)

    def items(self) -> Iterable[tuple[str, Any]]:
        return ()  # read when a partition is first stepped: a fresh store holds nothing yet

    def put(self, account_id: str, partition: int, value: Any) -> None:
        self.writes += 1
        tx, prefix = self._tx(partition), account_id.encode()
        if value is None:
            tx.delete(STATE_KEY, prefix=prefix)
        else:
            tx.set_bytes(STATE_KEY, pydantic_core.to_json(value, inf_nan_mode="constants"),
                         prefix=prefix)


class Peer:
    def __init__(self, app: Application, inputs: TopicNames, outputs: TopicNames,
                 expect: int, batch: int) -> None:
        settings = load_settings({})
        self.app, self.expect, self.batch = app, expect, batch
        self.inputs, self.outputs = inputs, outputs
        self.max_bytes = settings.max_message_bytes
        self.earliest, self.future = settings.earliest_event_time, settings.max_future_seconds
        self.rules = DEFAULT_RULES
        self.table = QuixTable(settings.topic_partitions)
        self.counts = Counted()
        self.sequencer = Sequencer(self.rules, self.table, self.counts, self.sources,
                                   settings.topic_partitions, lambda: datetime.now(UTC),
                                   Erased())
        self.pending: list[RawMessage] = []
        self.next_offset: dict[Source, int] = {}
        self.done = False
        self.seen = self.dead_letters = self.signals = self.withdrawn = 0
        self.alerts = self.tier_changes = self.account_states = self.steps = 0
        self.t_first: float | None = None
        self.t_last = self.cpu_first = self.cpu_last = 0.0
        frames = [app.dataframe(app.topic(name, key_deserializer="bytes",
                                          value_deserializer="bytes"))
                  for name in inputs.inputs]
        sdf = frames[0]
        for frame in frames[1:]:
            sdf = sdf.concat(frame)
        # stateful: Quix gives the stream a RocksDB store (and its changelog)
        sdf.update(self.on_message, stateful=True, metadata=True)
        self.sdf = self.table.sdf = sdf

    def sources(self) -> tuple[Collection[Source], Collection[Source]]:
        """The input sources assigned here, and those that may still deliver (more on Kafka
        than read, or not known yet); none once every expected message is read."""
        from confluent_kafka import TopicPartition

        consumer = self.app._consumer
        wanted = set(self.inputs.inputs)
        assigned = {(tp.topic, tp.partition) for tp in consumer.assignment()
                    if tp.topic in wanted}
        if self.done:
            return assigned, ()
        holding = set()
        for topic, partition in assigned:
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                     cached=True)
            if high is None or high < 0 or high > self.next_offset.get((topic, partition), 0):
                holding.add((topic, partition))
        return assigned, holding

    def on_message(self, value: bytes, key: bytes, timestamp: int, headers: object,
                   state: object) -> None:
        if self.t_first is None:
            self.t_first, self.cpu_first = time.perf_counter(), cpu_seconds()
        ctx = message_context()
        self.pending.append(RawMessage(ctx.topic, ctx.partition, ctx.offset, key, value,
                                       datetime.fromtimestamp(timestamp / 1000, UTC)))
        self.next_offset[(ctx.topic, ctx.partition)] = ctx.offset + 1
        self.seen += 1
        if self.seen >= self.expect:
            self.done = True
            self.run_batch()
            self.t_last, self.cpu_last = time.perf_counter(), cpu_seconds()
            self.app.stop()
        elif len(self.pending) >= self.batch or \
                self.sdf.processing_context.checkpoint.expired():
            self.run_batch()  # before Quix commits the offsets read so far

    def run_batch(self) -> None:
        """One fetch's work in the worker: ingest, admit, step, send, save."""
        messages, self.pending = self.pending, []
        batch = ingest(messages, max_bytes=self.max_bytes,
                       topic_for_type=self.inputs.for_type,
                       time_bounds=EventTimeBounds(self.earliest, datetime.now(UTC),
                                                   self.future))
        produce = self.sdf.processing_context.producer.produce
        out = self.outputs
        for dl in batch.rejected:
            produce(topic=out.dead_letters, key=dl.key, value=dl.payload, headers=dl.headers())
        self.dead_letters += len(batch.rejected)
        self.sequencer.admit([(a, None) for a in batch.accepted])
        result, dirty = self.sequencer.step()
        self.steps += 1
        self.emit(result)
        version = time.time_ns()
        for account_id, (partition, state) in dirty.items():
            self.table.put(account_id, partition, {"p": partition, "s": state.to_dict()})
            produce(topic=out.account_state, key=account_id.encode(),
                    value=account_state_json(AccountView.of(state, self.rules), version))
        self.account_states += len(dirty)

    def emit(self, result: BatchResult) -> None:
        produce = self.sdf.processing_context.producer.produce
        out = self.outputs
        for signals, counted in ((result.signals, True), (result.withdrawn, False)):
            for signal in signals:
                body, key = signal.model_dump_json().encode(), signal.account_id.encode()
                produce(topic=out.signals, key=key, value=body)
                if signal.is_alert:
                    produce(topic=out.alerts, key=key, value=body)
                    self.alerts += counted
            if counted:
                self.signals += len(signals)
            else:
                self.withdrawn += len(signals)
        for change in result.tier_changes:
            produce(topic=out.account_tiers, key=change.account_id.encode(),
                    value=change.model_dump_json().encode())
        self.tier_changes += len(result.tier_changes)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--inputs", required=True, help="topic prefix of the input topics")
    parser.add_argument("--outputs", required=True, help="topic prefix of the output topics")
    parser.add_argument("--expect", type=int, required=True, help="input messages to read")
    parser.add_argument("--batch", type=int, default=5000,
                        help="messages per engine step (the worker's RADAR_BATCH_MAX_ROWS)")
    parser.add_argument("--poll-timeout", type=float, default=None,
                        help="Application(consumer_poll_timeout=...); unset: Quix's default")
    parser.add_argument("--state-dir", type=Path, default=None)
    args = parser.parse_args()
    state_dir = Path(tempfile.mkdtemp(prefix="quix-peer-state-", dir=args.state_dir))
    options: dict[str, Any] = {}
    if args.poll_timeout is not None:
        options["consumer_poll_timeout"] = args.poll_timeout
    app = Application(broker_address=args.bootstrap,
                      consumer_group=f"{args.outputs}-quix-{uuid.uuid4().hex[:6]}",
                      auto_offset_reset="earliest", processing_guarantee="at-least-once",
                      state_dir=state_dir, loglevel="WARNING", **options)
    peer = Peer(app, TopicNames(args.inputs), TopicNames(args.outputs), args.expect,
                args.batch)
    gc.set_threshold(*GC_THRESHOLDS)
    gc.freeze()
    try:
        started = time.perf_counter()
        app.run()
        done = time.perf_counter()
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
    if peer.t_first is None or peer.seen != args.expect:
        raise SystemExit(f"quix peer: read {peer.seen} of {args.expect} messages")
    print(json.dumps({
        "messages": peer.seen, "dead_letters": peer.dead_letters, "signals": peer.signals,
        "withdrawn": peer.withdrawn, "alerts": peer.alerts, "tier_changes": peer.tier_changes,
        "account_states": peer.account_states, "steps": peer.steps,
        "held_at_end": peer.sequencer.held(), "counts": dict(peer.counts.counts),
        "state_reads": peer.table.reads, "state_writes": peer.table.writes,
        "run_s": done - started,  # from app.run(): group join included
        "startup_s": peer.t_first - started,  # until the first message
        "first_to_done_s": done - peer.t_first,  # includes the last commit
        "cpu_cores": (peer.cpu_last - peer.cpu_first) / max(1e-9, peer.t_last - peer.t_first),
        "poll_timeout": app._config.consumer_poll_timeout,
    }))


if __name__ == "__main__":
    main()
