"""Event-time sequencing of the signal stage: reorder, watermark, day sweeps, grace. Pure.

Each event goes to its account's own partition (Kafka's default partitioner of the
``account_id``, whatever partition the message came on) and waits in that partition's reorder
buffer until the watermark — the slowest source (input topic partition) that may still deliver
— passes it; then it goes through the engine in event-time order, so every run — a replay, a
restart after SIGKILL, a producer without keys — fires the same signals. When the watermark
enters a new day, every account of every partition is advanced to it, which fires the
time-based signals (silence, continuity gap, succession, renewal) on the right day.

Lateness is judged on arrival, per source: an event older than the latest event of its account
already received from the same source, minus the allowed lateness, is counted and fires
nothing, whatever is still held (a source's order is part of the data; how sources interleave
is delivery). An event behind the watermark (its source was idle) is judged by the engine
against the account's state.

No I/O here: the sources, the state table, the clock and the counters are handed in
(``streams.signal_stage`` drives this with Kafka, Faust's table and Prometheus).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import datetime
from typing import Any

from processors.engine import apply_event, release_due
from processors.erasure import Erased, forget_stakeholders
from processors.ingest import AcceptedEvent
from processors.partitioning import Owners
from processors.rerouting import Progress, partition_watermark
from processors.rules import Rules
from processors.sequencer_ports import (
    BatchResult,
    Counts,
    EverySource,
    Forward,
    Held,
    Sources,
    StateTable,
)
from processors.state import DAY, AccountState, day_of
from processors.sweep import last_judged_day, sweep
from processors.watermark import EventClock, ReorderBuffer, Source

YIELD_EVERY = 250  # events applied between two turns of the event loop (a few milliseconds)


class Sequencer:
    """Holds events per account partition until the watermark passes them, applies them in
    event-time order and judges the days the watermark crosses (``step``)."""

    def __init__(
        self,
        rules: Rules,
        table: StateTable,
        counts: Counts,
        sources: Sources,
        partitions: int,
        clock: Callable[[], datetime],  # when a signal is detected
        erased: Erased | None = None,
        every_source: EverySource | None = None,
    ) -> None:
        """``every_source``: given, the sequencer is one of several workers: a misrouted event
        is forwarded (``outbox``) rather than held here, and each partition's watermark counts
        the sources read elsewhere by their progress marks (``processors.rerouting``). Without
        it, this sequencer reads every source itself."""
        # erased people and accounts (shared with decoding): the stage drops their held
        # events and forgets them in every state it holds or loads
        self.erased = erased if erased is not None else Erased()
        self.dropped: list[tuple[str, int]] = []  # erased accounts whose state is to delete
        self.rules = rules
        self.table = table  # account_id -> {"p": partition, "s": AccountState.to_dict()}
        self.counts = counts
        self.sources = sources
        self.clock = clock
        self.event_clock = EventClock()
        self.owner = Owners(partitions)
        self.lateness = rules.engagement.allowed_lateness_days * DAY
        # (account, source) -> the latest event time received: lateness is judged on arrival
        self.received: dict[tuple[str, Source], float] = {}
        self.settled: list[Any] = []  # tokens of events judged on arrival: acknowledged next
        self.source_keys: dict[Source, str] = {}
        self.buffers: dict[int, ReorderBuffer[Held]] = {}  # by the accounts' own partition
        self.swept_day: dict[int, int] = {}
        self.cache: dict[str, AccountState] = {}
        self.members: dict[int, set[str]] = {}  # partition -> accounts
        # partition -> accounts with deadline signals waiting for their grace (released as the
        # watermark passes it)
        self.parked: dict[int, set[str]] = {}
        self.loaded_partitions: set[int] = set()
        # partition -> how often a rebalance took it away: a batch applied before that does
        # not save its states there any more (the partition's new owner does)
        self.revocations: dict[int, int] = {}
        self.every_source = every_source
        self.outbox: list[Forward] = []  # misrouted events to forward, in arrival order
        # partition -> what the progress marks read on it tell of each source
        self.marks: dict[int, Progress] = {}

    # -- state -----------------------------------------------------------------------------
    def _load_partition(self, partition: int, dirty: dict[str, tuple[int, AccountState]]
                        ) -> None:
        """After a start or rebalance, know every account of the partition (for day sweeps),
        with every erasure so far applied to them."""
        if partition in self.loaded_partitions:
            return
        self.loaded_partitions.add(partition)
        members = self.members.setdefault(partition, set())
        parked = self.parked.setdefault(partition, set())
        for account_id, value in list(self.table.items()):
            if value.get("p") == partition:
                members.add(account_id)
                if value["s"].get("parked"):
                    parked.add(account_id)
        self._erase_in(partition, dirty)

    def _erase_in(self, partition: int, dirty: dict[str, tuple[int, AccountState]]) -> None:
        """Apply the erasures to the partition's states: an erased account's state goes, an
        erased person is forgotten by every account (the changed states are saved)."""
        if not self.erased:
            return
        members = self.members.get(partition, set())
        for account_id in sorted(members):
            if self.erased.account_erased(account_id):
                members.discard(account_id)
                self.cache.pop(account_id, None)
                dirty.pop(account_id, None)
                self.dropped.append((account_id, partition))
                continue
            state = self._state(account_id)
            if state is not None and forget_stakeholders(state, self.erased.stakeholders):
                dirty[account_id] = (partition, state)

    def _state(self, account_id: str) -> AccountState | None:
        state = self.cache.get(account_id)
        if state is None:
            stored = self.table.get(account_id)
            if stored is not None:
                state = self.cache[account_id] = AccountState.from_dict(stored["s"])
        return state

    # -- batch -----------------------------------------------------------------------------
    def admit(self, accepted: Sequence[tuple[AcceptedEvent, Any]]) -> None:
        """Hold each valid event (already decoded by ingest) in its account's partition until
        the watermark passes it (or forward it there, with several workers); one late on
        arrival is counted and acknowledged."""
        forwarding = self.every_source is not None
        for item, token in accepted:
            raw = item.source
            source = (raw.topic, raw.partition)
            at = self.event_clock.observe(source, item.timestamp(), raw.offset)
            owner = self.owner(item.event.account_id)
            if owner != raw.partition:
                self.counts.rerouted(raw.topic)
                if forwarding:
                    self.outbox.append(Forward(owner, item, at, token))
                    continue
            self._hold(owner, item, at, token)

    def admit_forwarded(self, forwarded: Sequence[tuple[AcceptedEvent, float, Any]]) -> None:
        """Hold events forwarded here by the worker that read them (``item.source`` is where
        they came from, ``at`` their place in event time there)."""
        for item, at, token in forwarded:
            self._hold(self.owner(item.event.account_id), item, at, token)

    def progress(self, partition: int, marks: Progress) -> None:
        """A progress mark read on the rerouted topic's ``partition``."""
        self.marks.setdefault(partition, {}).update(marks)

    def local_progress(self, assigned: Collection[Source], holding: Collection[Source]
                       ) -> Progress:
        """What this worker's progress marks say of the sources it reads."""
        high = self.event_clock.high
        return {source: (high.get(source), source not in holding) for source in assigned}

    def _hold(self, owner: int, item: AcceptedEvent, at: float, token: Any) -> None:
        event, raw = item.event, item.source
        t = item.timestamp()
        source = (raw.topic, raw.partition)
        key = (event.account_id, source)
        latest = self.received.get(key)
        if latest is not None and t < latest - self.lateness:
            self._count_unapplied(self._state(event.account_id), self._source_key(source),
                                  raw.offset)
            self.settled.append(token)
            return
        if latest is None or t > latest:
            self.received[key] = t
        produced = raw.timestamp.timestamp() if raw.timestamp else None
        # an event late in its source is placed where the source had got to: the watermark
        # may have passed its own time already, or not, depending on the fetches
        self.buffers.setdefault(owner, ReorderBuffer()).push(
            at, source, raw.offset, Held(event, t, at, token, produced, source, raw.offset))

    def _source_key(self, source: Source) -> str:
        """The source as the state names it ("topic:partition"), made once per source."""
        key = self.source_keys.get(source)
        if key is None:
            key = self.source_keys[source] = f"{source[0]}:{source[1]}"
        return key

    def _count_unapplied(self, state: AccountState | None, source: str, offset: int,
                         duplicate: bool = False) -> None:
        """Count an event that changes nothing: a redelivery if the engine knew its id or its
        source's offset was applied already for the account, else late."""
        if duplicate or (state is not None and offset <= state.applied_through.get(source, -1)):
            self.counts.redelivered()
        else:
            self.counts.late()

    def step(self, sources: tuple[Collection[Source], Collection[Source]] | None = None
             ) -> tuple[BatchResult, dict[str, tuple[int, AccountState]]]:
        """Release what the watermarks allow, apply it, sweep new days. Pure CPU, no I/O.
        ``sources``: what ``self.sources()`` said just before (it is asked otherwise)."""
        result = BatchResult()
        dirty: dict[str, tuple[int, AccountState]] = {}
        for _ in self._steps(result, dirty, sources):
            pass
        return result, dirty

    def _steps(self, result: BatchResult, dirty: dict[str, tuple[int, AccountState]],
               sources: tuple[Collection[Source], Collection[Source]] | None = None
               ) -> Iterator[None]:
        """The work of ``step``, pausing (yielding) every ``YIELD_EVERY`` events."""
        result.released.extend(self.settled)
        self.settled = []
        applied = 0
        detected_at = self.clock()
        assigned, holding = sources if sources is not None else self.sources()
        every: Collection[Source] = ()
        watermark: float | None = None
        until: Source | None = None
        if self.every_source is not None:  # one watermark per partition, below
            every = self.every_source()
        else:
            # the sources that may still deliver hold it back; one caught up for the idle time
            # does not (streams.signal_agent.input_sources)
            # (and at the watermark itself, a source still there may bring another event of
            # that time)
            watermark, until = self.event_clock.slowest(holding)
            if watermark is None:
                return
        # every partition read here is advanced to the watermark, with events or without: the
        # day judgements are then a function of the events, not of where batches ended
        partitions = {p for _, p in assigned} | set(self.members) | \
            {p for p, b in self.buffers.items() if len(b)}
        for partition in sorted(partitions):
            if self.every_source is not None:
                watermark, until = partition_watermark(
                    partition, every, assigned, holding, self.event_clock.high,
                    self.marks.get(partition, {}))
            if watermark is None:
                continue  # a source that may bring older events is not known yet
            self._load_partition(partition, dirty)
            members = self.members.setdefault(partition, set())
            erased = self.erased
            swept = self.swept_day.get(partition)
            buffer = self.buffers.get(partition)
            for held in buffer.release(watermark, until) if buffer is not None else ():
                e = held.event
                if erased and erased.covers(e.account_id, getattr(e, "stakeholder_id", None)):
                    result.released.append(held.token)  # held before its subject was erased
                    self.counts.erased()
                    continue
                # days the stream moved past before this event are swept first, so time-based
                # signals fire on their own day, as in a day-by-day replay
                if swept is None or held.at >= (swept + 1) * DAY:
                    yield from self._sweep(partition, held.at, detected_at, result, dirty)
                    swept = self.swept_day[partition]
                source = self._source_key(held.source)
                known = self._state(e.account_id)
                if known is not None and held.offset <= known.applied_through.get(source, -1):
                    # read again (a restart, a rebalance): a source's events reach an account in
                    # offset order, so this one was handled already; the engine would count it
                    # late in the account's state when it is older than the allowed lateness
                    self.counts.redelivered()
                    result.released.append(held.token)
                    continue
                state, outcome = apply_event(known, e, self.rules, detected_at, held.t)
                self.cache[e.account_id] = state
                members.add(e.account_id)
                dirty[e.account_id] = (partition, state)
                through = state.applied_through.get(source, -1)
                if outcome.duplicate or outcome.late:
                    self._count_unapplied(state, source, held.offset, outcome.duplicate)
                if held.offset > through:
                    state.applied_through[source] = held.offset
                if state.parked:
                    self.parked.setdefault(partition, set()).add(e.account_id)
                if outcome.signals or outcome.tier_change is not None or outcome.withdrawn or \
                        outcome.cancelled:
                    result.collect(outcome)
                result.released.append(held.token)
                if held.produced_at is not None:
                    for signal in outcome.signals:
                        result.produced_at[signal.signal_id] = held.produced_at
                applied += 1
                if applied % YIELD_EVERY == 0:
                    yield
            yield from self._sweep(partition, watermark, detected_at, result, dirty)
            self._release(partition, watermark, detected_at, result, dirty)

    def _release(self, partition: int, watermark: float, detected_at: datetime,
                 result: BatchResult, dirty: dict[str, tuple[int, AccountState]]) -> None:
        """Deadline signals whose grace the watermark has passed go out."""
        parked = self.parked.get(partition)
        if not parked:
            return
        for account_id in sorted(parked):
            state = self._state(account_id)
            if state is None:
                parked.discard(account_id)
                continue
            signals = release_due(state, watermark, detected_at)
            if signals:
                result.signals.extend(signals)
                dirty[account_id] = (partition, state)
            if not state.parked:
                parked.discard(account_id)

    def _sweep(self, partition: int, watermark: float, detected_at: datetime,
               result: BatchResult, dirty: dict[str, tuple[int, AccountState]]
               ) -> Iterator[None]:
        """Judge the partition's accounts at the midnights up to ``watermark``'s day, pausing
        (yielding) every ``YIELD_EVERY`` judgements, as ``_steps`` does between events."""
        today = day_of(watermark)
        last = self.swept_day.get(partition)
        if last is None:
            # the first day here: each account is judged from the day after the one it was
            # last judged on (after a restart, the days since are judged as they would have
            # been); a new partition starts today
            last = last_judged_day((self._state(a) for a in self.members.get(partition, ())),
                                   today)
            if last is None:
                self.swept_day[partition] = today
                return
        # each day boundary crossed is judged at the start of its day, so a jump of several
        # days fires each day's deadlines as a day-by-day replay would; the days on which
        # nothing can change for an account are passed at no cost (a jump of centuries costs
        # what a few months do)
        if today > last:
            states = {account_id: state for account_id in self.members.get(partition, ())
                      if (state := self._state(account_id)) is not None}
            judged = sweep(states, last + 1, today, self.rules, detected_at)
            for n, (account_id, outcome) in enumerate(judged, start=1):
                state = states[account_id]
                if outcome.signals or outcome.tier_change or state.parked:
                    dirty[account_id] = (partition, state)
                if state.parked:
                    self.parked.setdefault(partition, set()).add(account_id)
                result.collect(outcome)
                if n % YIELD_EVERY == 0:
                    yield
        self.swept_day[partition] = today

    def erase_states(self) -> dict[str, tuple[int, AccountState]]:
        """Apply the erasures (``self.erased``, just grown) to every state held now; returns
        the changed states (to save). Not in the middle of a step."""
        dirty: dict[str, tuple[int, AccountState]] = {}
        for partition in sorted(self.loaded_partitions):
            self._erase_in(partition, dirty)
        return dirty

    def held(self) -> int:
        return sum(len(b) for b in self.buffers.values())

    def owners(self) -> set[int]:
        """The accounts' partitions this stage holds events or accounts for."""
        return set(self.buffers) | set(self.members)

    def _forget(self, partitions: set[int]) -> None:
        for p in partitions:
            self.revocations[p] = self.revocations.get(p, 0) + 1
            self.buffers.pop(p, None)
            self.swept_day.pop(p, None)
            self.parked.pop(p, None)
            self.loaded_partitions.discard(p)
            self.members.pop(p, None)
        # every state of their accounts held here: also those loaded before the partition's
        # members were (a lateness judgement on arrival loads one), which would otherwise be
        # taken, stale, if the partition came back here later
        owner = self.owner
        for account_id in [a for a in self.cache if owner(a) in partitions]:
            del self.cache[account_id]
        if self.every_source is not None:
            # every event held here came on the partition it is held for, directly or forwarded
            # through the rerouted topic's partition of that number: nothing else to drop
            for p in partitions:
                self.marks.pop(p, None)
            self.event_clock.forget(partitions)
            self.received = {k: t for k, t in self.received.items()
                             if owner(k[0]) not in partitions}
            return
        # events that came on those partitions for accounts of partitions kept here are read
        # again by the partitions' new owner
        for buffer in self.buffers.values():
            buffer.discard(lambda held: held.source[1] in partitions)
        self.event_clock.forget(partitions)
        self.received = {k: t for k, t in self.received.items() if k[1][1] not in partitions}
