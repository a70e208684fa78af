"""What the sequencer (``processors.sequencer``) is handed and hands back: its ports (the
counters, the state table, the sources) and the records it keeps and returns. Pure."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from processors.engine import Outcome
from processors.ingest import AcceptedEvent
from processors.watermark import Source
from schemas.events import InputEvent
from schemas.signals import Signal, TierChange


class Counts(Protocol):
    """Where the sequencer counts what it did not apply as usual (Prometheus, in the worker)."""

    def late(self) -> None: ...
    def redelivered(self) -> None: ...
    def rerouted(self, topic: str) -> None: ...
    def erased(self) -> None: ...


class StateTable(Protocol):
    """Durable per-account state (a Faust table with a changelog)."""

    def get(self, account_id: str) -> Any: ...
    def items(self) -> Iterable[tuple[str, Any]]: ...
    def put(self, account_id: str, partition: int, value: Any) -> None:
        """Store ``value`` for the account; None deletes it."""

# the sources the worker reads now, and those of them that may still deliver (not idle)
Sources = Callable[[], tuple[Collection[Source], Collection[Source]]]
# every source of the inputs, wherever it is read (empty while not known)
EverySource = Callable[[], Collection[Source]]


@dataclass
class Held:
    event: InputEvent
    t: float  # the event's time as a timestamp
    at: float  # its place in event time: later than ``t`` if it is late in its source
    token: Any  # what the agent needs to acknowledge the message
    produced_at: float | None  # message timestamp (producer clock), for alert latency
    source: Source  # the topic partition the message came on
    offset: int


@dataclass
class Forward:
    """A misrouted event on its way to its account's partition (``processors.rerouting``)."""

    partition: int  # the account's own partition
    item: AcceptedEvent
    at: float  # its place in event time in its source
    token: Any  # what the agent acknowledges once it is forwarded


@dataclass
class BatchResult:
    signals: list[Signal] = field(default_factory=list)
    withdrawn: list[Signal] = field(default_factory=list)  # out before, proved premature
    cancelled: list[Signal] = field(default_factory=list)  # proved premature within the grace
    tier_changes: list[TierChange] = field(default_factory=list)
    released: list[Any] = field(default_factory=list)  # tokens to acknowledge
    produced_at: dict[str, float] = field(default_factory=dict)  # signal_id -> trigger's produce time

    def collect(self, outcome: Outcome) -> None:
        self.signals.extend(outcome.signals)
        self.withdrawn.extend(outcome.withdrawn)
        self.cancelled.extend(outcome.cancelled)
        if outcome.tier_change is not None:
            self.tier_changes.append(outcome.tier_change)


class MemoryStateTable(dict[str, Any]):
    """A state table in memory (benchmarks, offline checks, tests)."""

    def put(self, account_id: str, partition: int, value: Any) -> None:
        if value is None:
            self.pop(account_id, None)
        else:
            self[account_id] = value
