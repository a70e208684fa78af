"""Offline determinism check (issue 11 point 7): does an in-order replay give the same signal ids
whatever the fetch and batch boundaries? No Kafka, no ClickHouse.

    .venv/bin/python scripts/determinism_check.py [--accounts 200 --days 365 --seed 7]
        [--runs 6] [--batch 5000 1000 50] [--shuffle-seed 1] [--show 20] [--states] [--no-keys]

The world of ``radar simulate`` is generated in-process; each valid event goes to its topic (by
type) and to its account's partition as Kafka's default partitioner puts it (murmur2 of the
``account_id`` key; ``settings.topic_partitions`` partitions). Each source, a (topic, partition)
log, keeps the world's publish order. A run feeds the worker's ``SignalStage`` (an in-memory
state table; nothing is written) as a consumer could read that backlog: each fetch takes up to
``--batch`` messages in runs of random length from randomly chosen sources, and ``step`` runs
after each fetch. A source may still deliver until its log is read to the end; then it is idle,
as every source is once the backlog is read.

The reference is the replay without any boundary: every event admitted at once, released in one
step. Each run's signals — ids, types and status (open or withdrawn) — are compared with it and
with the first run; the differences are printed with their account and time. ``--states`` also
compares the accounts' final states. ``--no-keys`` publishes the runs' events without keys (a
random partition each; account profiles keep their key: their topic is compacted), as
``scripts/perturb.py no-keys`` does, and still compares them with the keyed reference. Exit code
0 when every run matched the first one and the reference, 1 otherwise.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from processors.ingest import AcceptedEvent, RawMessage  # noqa: E402
from processors.partitioning import partition_of  # noqa: E402
from processors.rerouting import Progress  # noqa: E402
from processors.sequencer import Sequencer  # noqa: E402
from processors.sequencer_ports import MemoryStateTable  # noqa: E402
from processors.watermark import Source  # noqa: E402
from schemas.decode import Rejection, decode_event  # noqa: E402
from schemas.events import AccountProfile, InputEvent  # noqa: E402
from schemas.signals import Signal  # noqa: E402
from streams.metrics import Metrics  # noqa: E402
from streams.settings import Settings, load_settings  # noqa: E402
from streams.signal_stage import SignalStage  # noqa: E402
from streams.worker import load_rules  # noqa: E402
from tools.simulation import SimConfig, Simulation  # noqa: E402

DETECTED_AT = datetime(2030, 1, 1, tzinfo=UTC)
Sources = Callable[[], tuple[Collection[Source], Collection[Source]]]



def world_events(config: SimConfig, settings: Settings) -> list[InputEvent]:
    """The world's valid events in publish (file) order."""
    events = []
    for day in Simulation(config).days():
        for line in day.lines:
            event = decode_event(line.encode(), settings.max_message_bytes)
            if not isinstance(event, Rejection):
                events.append(event)
    return events


def disordered(events: list[InputEvent], fraction: float, rng: random.Random) -> list[InputEvent]:
    """The events with ``fraction`` of them published up to 50 places later: late in their
    source (written after later events of it), as a batch upload from a phone would be."""
    keys = [i + (rng.randint(1, 50) + 0.5 if rng.random() < fraction else 0)
            for i in range(len(events))]
    return [e for _, e in sorted(zip(keys, events, strict=True), key=lambda pair: pair[0])]


def broker_logs(events: list[InputEvent], settings: Settings, keyless: random.Random | None = None
                ) -> dict[Source, list[AcceptedEvent]]:
    """The events as the broker holds them: one log per source (topic, partition), each in
    publish order, with its offsets. Keyed by account id, or without keys (a random partition
    from ``keyless``) but for account profiles."""
    logs: dict[Source, list[AcceptedEvent]] = {}
    partitions = settings.topic_partitions
    for event in events:
        topic = settings.topics.for_type(event.type) or ""
        key: bytes | None = event.account_id.encode()
        if keyless is None or isinstance(event, AccountProfile):
            partition = partition_of(event.account_id, partitions)
        else:
            partition, key = keyless.randrange(partitions), None
        log = logs.setdefault((topic, partition), [])
        log.append(AcceptedEvent(event, RawMessage(topic, partition, len(log), key, b"")))
    return logs


@dataclass
class Run:
    name: str
    signals: dict[str, Signal]  # signal_id -> its latest record (open, or withdrawn)
    states: dict[str, dict[str, Any]]  # account_id -> final state
    steps: int
    seconds: float


def new_stage(settings: Settings, sources: Sources) -> SignalStage:
    no_io: Any = None  # step() writes nothing
    return SignalStage(settings, load_rules(settings), MemoryStateTable(), Metrics(), no_io,
                       sources=sources, clock=lambda: DETECTED_AT)


def collect(stage: SignalStage, signals: dict[str, Signal]) -> None:
    result, _ = stage.step()
    for s in result.signals + result.withdrawn:
        signals[s.signal_id] = s


def final_states(stage: SignalStage) -> dict[str, dict[str, Any]]:
    return {a: s.to_dict() for a, s in sorted(stage.cache.items())}


def one_fetch(settings: Settings, logs: dict[Source, list[AcceptedEvent]]) -> Run:
    """Everything in one fetch, every source read to the end: no boundary anywhere."""
    started = time.perf_counter()
    stage = new_stage(settings, lambda: (list(logs), []))
    stage.admit([(a, None) for log in logs.values() for a in log])
    signals: dict[str, Signal] = {}
    collect(stage, signals)
    return Run("reference", signals, final_states(stage), 1, time.perf_counter() - started)


def interleaved(settings: Settings, logs: dict[Source, list[AcceptedEvent]], batch: int,
                seed: int) -> Run:
    """One consumer's way through the backlog: fetches of up to ``batch`` messages, each made
    of runs of random length from random (topic, partition) logs; a step after each fetch."""
    rng = random.Random(seed)
    cursor = dict.fromkeys(logs, 0)

    def sources() -> tuple[list[Source], list[Source]]:
        """Every source is read; those not read to the end may still deliver."""
        return list(logs), [s for s, log in logs.items() if cursor[s] < len(log)]

    started = time.perf_counter()
    stage = new_stage(settings, sources)
    signals: dict[str, Signal] = {}
    steps = 0
    live = [s for s in logs if logs[s]]
    while live:
        # a full fetch half the time (a backlog fills them), else a short one
        size = batch if rng.random() < 0.5 else rng.randint(1, batch)
        fetched: list[tuple[AcceptedEvent, Any]] = []
        while len(fetched) < size and live:
            source = rng.choice(live)
            log, at = logs[source], cursor[source]
            n = min(rng.randint(1, size), size - len(fetched), len(log) - at)
            fetched += [(a, None) for a in log[at:at + n]]
            cursor[source] = at + n
            if cursor[source] == len(log):
                live.remove(source)
        stage.admit(fetched)
        collect(stage, signals)
        steps += 1
    collect(stage, signals)  # every source idle now
    assert stage.held() == 0, f"{stage.held()} events still held"
    return Run(f"batch {batch} seed {seed}", signals, final_states(stage), steps,
               time.perf_counter() - started)


class Uncounted:
    """The sequencer's counts, dropped."""

    def late(self) -> None: ...
    def redelivered(self) -> None: ...
    def rerouted(self, topic: str) -> None: ...
    def erased(self) -> None: ...


def several_workers(settings: Settings, logs: dict[Source, list[AcceptedEvent]], workers: int,
                    batch: int, seed: int, rebalances: int = 0, commit_times: bool = True
                    ) -> Run:
    """``workers`` consumers sharing the partitions (worker w owns those p with p % workers ==
    w, of every input and of the rerouted topic), each reading its sources and its rerouted
    partitions in fetches as ``interleaved`` does, in a random order of turns. A misrouted event
    is forwarded to its account's partition of an in-memory rerouted topic, and every worker
    writes its progress marks there after its forwards when they change, as ``radar worker``
    does (``streams.signal_stage.Rerouter``). States are saved to one table after each step;
    offsets are committed now and then, up to the first message not acknowledged.

    ``rebalances``: times the partitions move to other workers, spread over the stream; as in
    Kafka's eager protocol every worker forgets what it held, and every partition is read again
    from its committed offset (messages acknowledged since the last commit are read twice).
    Each input commit carries the source's place in event time before it, and the source's new
    owner starts from it, as the worker's commit metadata does (``commit_times``; without it, a
    source read again starts from nothing)."""
    rng = random.Random(seed)
    partitions = settings.topic_partitions
    every = [(topic, p) for topic in settings.topics.inputs for p in range(partitions)]
    every += sorted(s for s in logs if s not in every)
    cursor = dict.fromkeys(every, 0)
    rerouted: dict[int, list[tuple[Any, ...]]] = {p: [] for p in range(partitions)}
    read = dict.fromkeys(rerouted, 0)
    owned: list[set[int]] = [set() for _ in range(workers)]
    assigned: list[list[Source]] = [[] for _ in range(workers)]
    # acknowledged offsets, and the committed one, of each input source and rerouted partition
    acked: dict[Any, set[int]] = {}
    committed: dict[Any, int] = {}
    committed_high: dict[Source, float] = {}  # what each input commit carries (metadata)

    def assign(shift: int) -> None:
        for w in range(workers):
            owned[w] = {p for p in range(partitions) if (p + shift) % workers == w}
            assigned[w] = [s for s in every if (s[1] + shift) % workers == w]

    def ack(tokens: list[Any]) -> None:
        for key, offset in tokens:
            acked.setdefault(key, set()).add(offset)

    def owner_of(source: Source) -> int:
        return next(w for w in range(workers) if source in assigned[w])

    def commit() -> None:
        for key, done in acked.items():
            n = committed.get(key, 0)
            while n in done:
                n += 1
            committed[key] = n
            if key[0] == "in" and commit_times:
                clock = stages[owner_of(key[1])].event_clock
                high = clock.high_before(key[1], n)
                if high is not None:
                    committed_high[key[1]] = high
                clock.prune(key[1], n)

    def pending(source: Source) -> bool:
        return cursor[source] < len(logs.get(source, ()))

    def sources_of(w: int) -> Sources:
        return lambda: (assigned[w], [s for s in assigned[w] if pending(s)])

    table = MemoryStateTable()
    stages = [Sequencer(load_rules(settings), table, Uncounted(), sources_of(w), partitions,
                        lambda: DETECTED_AT, every_source=lambda: every)
              for w in range(workers)]
    marked: list[Progress | None] = [None] * workers
    signals: dict[str, Signal] = {}
    started = time.perf_counter()
    steps = 0
    assign(0)
    total = sum(len(log) for log in logs.values())
    moves = [total * (k + 1) // (rebalances + 1) for k in range(rebalances)]

    def rebalance(shift: int) -> None:
        commit()
        for stage in stages:
            stage._forget(set(stage.owners()) | {s[1] for s in every})
        assign(shift)
        marked[:] = [None] * workers  # marks of every source again, for the new owners
        for source in every:
            cursor[source] = committed.get(("in", source), 0)
            if source in committed_high:
                stages[owner_of(source)].event_clock.seed(source, cursor[source],
                                                           committed_high[source])
        for p in rerouted:
            read[p] = committed.get(("rr", p), 0)

    def turn(w: int) -> None:
        """One fetch and step of worker ``w``."""
        stage = stages[w]
        size = batch if rng.random() < 0.5 else rng.randint(1, batch)
        fetched: list[tuple[AcceptedEvent, Any]] = []
        forwarded: list[tuple[AcceptedEvent, float, Any]] = []
        marks: list[tuple[int, Progress]] = []
        done: list[Any] = []
        taken = 0
        while taken < size:
            live: list[Any] = [s for s in assigned[w] if pending(s)]
            live += [p for p in owned[w] if read[p] < len(rerouted[p])]
            if not live:
                break
            chosen = rng.choice(live)
            n = rng.randint(1, size - taken)
            if isinstance(chosen, int):  # a rerouted partition
                first = read[chosen]
                messages = rerouted[chosen][first:first + n]
                read[chosen] += len(messages)
                taken += len(messages)
                for i, (kind, *rest) in enumerate(messages, start=first):
                    token = (("rr", chosen), i)
                    if kind == "event":
                        forwarded.append((rest[0], rest[1], token))
                    else:
                        marks.append((chosen, rest[0]))
                        done.append(token)
            else:
                log, at = logs[chosen], cursor[chosen]
                events = log[at:at + n]
                fetched += [(a, (("in", chosen), at + i)) for i, a in enumerate(events)]
                cursor[chosen] = at + len(events)
                taken += len(events)
        stage.admit(fetched)
        stage.admit_forwarded(forwarded)
        for p, progress in marks:
            stage.progress(p, progress)
        snapshot = stage.sources()
        for forward in stage.outbox:
            rerouted[forward.partition].append(("event", forward.item, forward.at))
            done.append(forward.token)
        stage.outbox = []
        progress = stage.local_progress(*snapshot)
        if progress != marked[w]:
            for p in rerouted:
                rerouted[p].append(("mark", progress))
            marked[w] = progress
        result, dirty = stage.step(snapshot)
        for account_id, (p, state) in dirty.items():  # saved, then acknowledged
            table.put(account_id, p, {"p": p, "s": state.to_dict()})
        ack(done + result.released)
        for s in result.signals + result.withdrawn:
            signals[s.signal_id] = s
        if rng.random() < 0.3:
            commit()

    def busy() -> bool:
        """Something still to read, or a worker's marks still to write."""
        return any(map(pending, every)) or any(read[p] < len(m) for p, m in rerouted.items()) \
            or any(stages[w].local_progress(*stages[w].sources()) != marked[w]
                   for w in range(workers))

    while busy():
        steps += 1
        if moves and sum(cursor.values()) >= moves[0]:
            moves.pop(0)
            rebalance(rebalances - len(moves))
        turn(rng.randrange(workers))
    for w in range(workers):  # each steps once more, with every mark read
        turn(w)
    held = sum(stage.held() for stage in stages)
    assert held == 0, f"{held} events still held"
    # the final owners' states (the table has them too, but as last saved: a day passing
    # without a signal is saved with the account's next change)
    states = {a: s.to_dict() for stage in stages for a, s in stage.cache.items()}
    return Run(f"{workers} workers, batch {batch} seed {seed}", signals, dict(sorted(states.items())),
               steps, time.perf_counter() - started)


def describe(s: Signal) -> str:
    return (f"{s.type:<24} {s.status:<9} {s.account_id:<14} {s.occurred_at:%Y-%m-%d %H:%M} "
            f"{s.signal_id}")


def marks(run: Run) -> dict[tuple[str, str], Signal]:
    """The run's signals by (id, status): an id withdrawn in one run and open in another, or
    never out, differs."""
    return {(s.signal_id, s.status): s for s in run.signals.values()}


def tally(run: Run) -> str:
    statuses = Counter(s.status for s in run.signals.values())
    return f"{statuses['open']:>6,} open {statuses['withdrawn']:>4,} withdrawn"


def difference(a: Run, b: Run, show: int) -> list[str]:
    """Lines describing what ``b`` has that ``a`` does not, and the reverse."""
    in_a, in_b = marks(a), marks(b)
    lines = []
    for label, mine, other in ((f"only in {a.name}", in_a, in_b), (f"only in {b.name}", in_b, in_a)):
        only = sorted((mine[k] for k in mine.keys() - other.keys()),
                      key=lambda s: (s.account_id, s.occurred_at))
        if only:
            kinds = Counter(f"{s.type} ({s.status})" for s in only)
            lines.append(f"    {label}: {len(only)} {dict(kinds)}")
            lines += [f"      {describe(s)}" for s in only[:show]]
    return lines


def state_difference(a: Run, b: Run, show: int, ignore: Collection[str] = ()) -> list[str]:
    """Lines naming the accounts whose final states differ, and the fields that do (but
    ``ignore``)."""
    def fields(account: str) -> list[str]:
        sa, sb = a.states.get(account, {}), b.states.get(account, {})
        return sorted(k for k in sa.keys() | sb.keys() if k not in ignore and sa.get(k) != sb.get(k))

    differing = {x: f for x in sorted(a.states.keys() | b.states.keys()) if (f := fields(x))}
    if not differing:
        return []
    lines = [f"    final states differ for {len(differing)} account(s)"]
    lines += [f"      {x}: {', '.join(f)}" for x, f in list(differing.items())[:show]]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=7, help="the world's seed")
    parser.add_argument("--runs", type=int, default=6, help="interleavings per batch size")
    parser.add_argument("--batch", type=int, nargs="+", default=[5000, 1000, 50],
                        help="most messages per fetch")
    parser.add_argument("--shuffle-seed", type=int, default=1,
                        help="first seed of the interleavings")
    parser.add_argument("--show", type=int, default=20, help="differences listed per pair")
    parser.add_argument("--states", action="store_true", help="compare final states too")
    parser.add_argument("--no-keys", action="store_true",
                        help="runs read the events published without keys (random partitions)")
    parser.add_argument("--workers", type=int, default=1,
                        help="consumers sharing the partitions (misrouted events forwarded)")
    parser.add_argument("--rebalances", type=int, default=0,
                        help="with --workers: times the partitions move during the stream")
    parser.add_argument("--disorder", type=float, default=0.0,
                        help="this fraction of events published up to 50 places late (late in "
                             "their source); the reference then reads the runs' own logs")
    parser.add_argument("--no-commit-times", action="store_true",
                        help="with --rebalances: a source read again starts its place in event "
                             "time from nothing (the worker before commit metadata)")
    args = parser.parse_args(argv)

    settings = load_settings({})
    started = time.perf_counter()
    events = world_events(SimConfig(accounts=args.accounts, days=args.days, seed=args.seed),
                          settings)
    if args.disorder:
        events = disordered(events, args.disorder, random.Random(f"disorder:{args.seed}"))
    keyed = broker_logs(events, settings)
    logs = broker_logs(events, settings, random.Random(f"keyless:{args.seed}")) \
        if args.no_keys else keyed
    print(f"world: {args.accounts} accounts x {args.days} days, seed {args.seed}: "
          f"{len(events):,} events in {len(logs)} sources ({settings.topic_partitions} "
          f"partitions{', no keys' if args.no_keys else ''}; {time.perf_counter() - started:.1f}s)")
    # late events are placed where their own source had got to: another partitioning is
    # another input, so the reference then reads the runs' logs, in one fetch
    reference = one_fetch(settings, logs if args.disorder else keyed)
    print(f"reference ({'the same logs' if args.disorder else 'keyed'}, one fetch): "
          f"{tally(reference)} ({reference.seconds:.1f}s)")
    first: Run | None = None
    mismatches = 0
    seed = args.shuffle_seed
    for batch in args.batch:
        for _ in range(args.runs):
            run = interleaved(settings, logs, batch, seed) if args.workers == 1 else \
                several_workers(settings, logs, args.workers, batch, seed, args.rebalances,
                                not args.no_commit_times)
            seed += 1
            first = first or run
            vs_reference = difference(reference, run, args.show)
            vs_first = difference(first, run, args.show) if run is not first else []
            if args.states:
                # without keys, the sources (and their offsets each state keeps) are others
                ignore = ("applied_through",) if args.no_keys else ()
                vs_reference += state_difference(reference, run, args.show, ignore)
            mismatches += bool(vs_reference or vs_first)
            print(f"{run.name:<22} {tally(run)} {run.steps:>6,} steps "
                  f"{run.seconds:5.1f}s  "
                  f"{'same as the reference' if not vs_reference else 'DIFFERS'}"
                  f"{'' if run is first or not vs_first else ', differs from the first run'}")
            for line in vs_reference:
                print(line)
            if vs_first:
                print(f"   vs {first.name}:")
                for line in vs_first:
                    print(line)
    print(f"{mismatches} run(s) of {args.runs * len(args.batch)} differ")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
