"""``radar publish FILE.jsonl | -``: each line to its topic, or to the dead-letter topic.

Where a line goes is decided by :func:`streams.routing.route_line` (pure, never raises); this
module reads the file, asks the broker what it accepts, sends, and accounts for every line:
published, dead-lettered, blank, or (only when even its dead letter is refused) failed.

The limits come from the broker (each topic's ``max.message.bytes`` and ``cleanup.policy``;
Kafka's defaults when it will not say) and each line is measured before it is sent, so one
large line never takes a batch of other lines down with it. A line the broker refuses all the
same (reported asynchronously) is sent again on its own after the flush, since the broker
refuses a batch as a whole; what it still refuses becomes a dead letter.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, NamedTuple

from schemas.dead_letter import PAYLOAD_PREFIX_BYTES
from schemas.topics import TopicNames
from streams.routing import (
    RECORD_OVERHEAD_BYTES,
    Routed,
    TopicRules,
    broker_refusal,
    printable,
    route_line,
    rules_from_configs,
)

BATCH_BYTES = 512 * 1024
_MAX_TEXT_IN_REASON = 200
_LINES_SHOWN = 5
TOPICS_GRACE_SECONDS = 5.0
_FLUSH_ATTEMPTS = 20


@dataclass
class PublishSummary:
    per_topic: Counter[str] = field(default_factory=Counter)  # messages the broker acknowledged
    dead_letters: Counter[str] = field(default_factory=Counter)  # lines dead-lettered, by class
    dead_letter_lines: dict[str, list[int]] = field(default_factory=dict)  # a few of each class
    blank: int = 0
    resent_alone: int = 0  # refused in a batch with a bad line, published on their own
    failed: list[tuple[int, str]] = field(default_factory=list)  # neither published nor dead-lettered
    seconds: float = 0.0

    @property
    def sent(self) -> int:
        return sum(self.per_topic.values())

    @property
    def dead_lettered(self) -> int:
        return sum(self.dead_letters.values())

    def count(self, lineno: int, routed: Routed, n: int) -> None:
        self.per_topic[routed.topic] += n
        if routed.error_class is not None:
            self.dead_letters[routed.error_class] += n
            lines = self.dead_letter_lines.setdefault(routed.error_class, [])
            if n > 0 and len(lines) < _LINES_SHOWN:
                lines.append(lineno)
            elif n < 0 and lineno in lines:
                lines.remove(lineno)

    def render(self) -> str:
        lines = [f"published {self.sent} messages in {self.seconds:.1f}s"]
        lines += [f"  {topic:<32} {n:>9}" for topic, n in sorted(self.per_topic.items()) if n]
        if self.dead_lettered:
            lines.append(f"  {self.dead_lettered} line(s) could not be routed or sent and went to the "
                         "dead-letter topic, by error class:")
            for error_class, n in sorted(self.dead_letters.items()):
                if n:
                    shown = sorted(self.dead_letter_lines.get(error_class, []))
                    more = ", ..." if n > len(shown) else ""
                    where = f"line{'s' if n > 1 else ''} {', '.join(map(str, shown))}{more}"
                    lines.append(f"    {error_class:<22} {n:>9}  ({where})")
        if self.resent_alone:
            lines.append(f"  {self.resent_alone} line(s) refused in a batch with a bad line were "
                         "published on their own")
        if self.blank:
            lines.append(f"  {self.blank} blank line(s) skipped")
        if self.failed:
            first = "; ".join(f"line {n}: {why}" for n, why in sorted(self.failed)[:_LINES_SHOWN])
            lines.append(f"  FAILED: {len(self.failed)} line(s) could be neither published nor "
                         f"dead-lettered: {first}")
        return "\n".join(lines)


class PublishError(RuntimeError):
    """Publishing cannot start (no broker, or a topic is missing); nothing was sent."""


class Line(NamedTuple):
    data: bytes  # the line as read, or only its first bytes when it is longer than the cap
    size: int | None  # then its full length, without the line ending
    consumed: int  # bytes read from the stream for it


def read_lines(stream: IO[bytes], cap: int) -> Iterator[Line]:
    """The stream's lines; of a line longer than ``cap`` only the first ``cap`` bytes are kept
    (memory stays bounded whatever the file holds)."""
    while chunk := stream.readline(cap):
        if len(chunk) < cap or chunk.endswith(b"\n"):
            yield Line(chunk, None, len(chunk))
            continue
        consumed, last = len(chunk), chunk
        while not last.endswith(b"\n") and (more := stream.readline(cap)):
            consumed, last = consumed + len(more), more
        yield Line(chunk, consumed - (len(last) - len(last.rstrip(b"\r\n"))), consumed)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {str(error)[:_MAX_TEXT_IN_REASON]}"


class _Refused(NamedTuple):
    lineno: int
    routed: Routed
    error: BaseException


class _Sender:
    """Sends routed lines on one producer, counts them, and keeps those the broker refused."""

    def __init__(self, producer: Any, summary: PublishSummary) -> None:
        self._producer = producer
        self._summary = summary
        self._refused: list[_Refused] = []

    def send(self, lineno: int, routed: Routed) -> None:
        self._summary.count(lineno, routed, 1)
        try:
            future = self._producer.send(routed.topic, key=routed.key, value=routed.value,
                                         headers=routed.headers or None)
        except Exception as exc:  # a record the producer will not even queue
            self._refused.append(_Refused(lineno, routed, exc))
        else:
            future.add_errback(self._on_error, lineno, routed)

    def _on_error(self, lineno: int, routed: Routed, error: BaseException) -> None:
        self._refused.append(_Refused(lineno, routed, error))  # on the producer's I/O thread

    def flush(self) -> list[_Refused]:
        """Waits until the broker answered for every line sent; returns those it refused."""
        from kafka.errors import UnknownError

        for attempt in range(_FLUSH_ATTEMPTS):
            try:
                self._producer.flush()
                break
            except UnknownError:
                # kafka-python 3.0 splits a batch the broker found too large and re-sends its
                # halves; a flush waiting on the old batch then ends with "Future not done"
                if attempt == _FLUSH_ATTEMPTS - 1:
                    raise
        refused, self._refused = sorted(self._refused, key=lambda r: r.lineno), []
        for r in refused:
            self._summary.count(r.lineno, r.routed, -1)
        return refused


def _missing_topics(admin: Any, wanted: list[str]) -> list[str]:
    """Those of ``wanted`` the broker does not list, after a few seconds' grace: a topic just
    created takes a moment to show in the broker's metadata."""
    from kafka.errors import KafkaError

    deadline = time.monotonic() + TOPICS_GRACE_SECONDS
    while True:
        try:
            missing = sorted(set(wanted) - set(admin.list_topics()))
        except KafkaError:
            return []  # not allowed to list topics: sending will tell
        if not missing or time.monotonic() > deadline:
            return missing
        time.sleep(0.25)


def ask_broker(bootstrap: str, topics: TopicNames) -> TopicRules:
    """The limits and compaction of the topics publish writes to, as the broker states them;
    Kafka's defaults for what it will not say. Raises :class:`PublishError` when the broker
    cannot be reached or a topic does not exist."""
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient
    from kafka.errors import KafkaError

    defaults = TopicRules.kafka_defaults(topics)
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap.split(","), client_id="radar-publish",
                                 request_timeout_ms=10_000)
    except KafkaError as exc:
        raise PublishError(f"cannot reach the Kafka broker at {bootstrap}: {_describe(exc)}") from exc
    try:
        missing = _missing_topics(admin, defaults.written)
        if missing:
            raise PublishError(f"topic(s) {', '.join(missing)} do not exist on the broker at "
                               f"{bootstrap}; create them first (`radar kafka up` does on the local "
                               "broker)")
        wanted = ["max.message.bytes", "cleanup.policy"]
        try:
            described = admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, t, dict.fromkeys(wanted))
                 for t in defaults.written], config_filter="all")
        except KafkaError:
            return defaults  # not allowed to describe topics
        return rules_from_configs(described.get("topic", {}), topics)
    finally:
        admin.close()


def _producer(bootstrap: str, rules: TopicRules, *, alone: bool) -> Any:
    from kafka import KafkaProducer

    limits = [rules.limit(t) for t in rules.written]
    return KafkaProducer(
        bootstrap_servers=bootstrap.split(","), client_id="radar-publish", acks="all", retries=5,
        # Without idempotence a refused batch fails on its own; with it, kafka-python 3.0 fails
        # most later batches of the run as well (measured: 14,365 of 20,000 lines after one
        # keyless record). A retry may then send a line twice: the worker keeps one per event_id.
        enable_idempotence=False,
        linger_ms=0 if alone else 10,
        # alone: one line per batch, as the broker refuses a batch as a whole
        batch_size=1 if alone else max(1024, min(BATCH_BYTES, min(limits) - RECORD_OVERHEAD_BYTES)),
        max_request_size=max(limits),
    )


def _second_chance(refused: list[_Refused], *, bootstrap: str, rules: TopicRules, source: str,
                   run_id: str, summary: PublishSummary) -> None:
    """Lines the broker refused in the main pass. A batch is refused as a whole, so most of them
    were only in a batch with a bad line: each is sent again in a batch of its own. What the
    broker still refuses becomes a dead letter; a line whose dead letter is refused too is
    reported as failed."""
    from kafka.errors import KafkaError, MessageSizeTooLargeError, RecordListTooLargeError

    try:
        producer = _producer(bootstrap, rules, alone=True)
    except KafkaError as exc:
        summary.failed += [(r.lineno, f"refused ({_describe(r.error)}), and the broker is gone: "
                            f"{_describe(exc)}") for r in refused]
        return
    try:
        sender = _Sender(producer, summary)
        for r in refused:
            sender.send(r.lineno, r.routed)
        again = sender.flush()
        summary.resent_alone += (sum(not r.routed.dead_letter for r in refused)
                                 - sum(not r.routed.dead_letter for r in again))
        for r in again:
            if r.routed.dead_letter:
                summary.failed.append((r.lineno, f"its dead letter was refused: {_describe(r.error)}"))
                continue
            too_large = isinstance(r.error, MessageSizeTooLargeError | RecordListTooLargeError)
            sender.send(r.lineno, broker_refusal(r.routed, r.lineno, _describe(r.error),
                                                 too_large=too_large, source=source, run_id=run_id,
                                                 rules=rules))
        summary.failed += [(r.lineno, f"refused, and its dead letter too: {_describe(r.error)}")
                           for r in sender.flush()]
    finally:
        producer.close()


def publish_stream(
    stream: IO[bytes],
    *,
    bootstrap: str,
    topics: TopicNames,
    source: str,
    progress: Any | None = None,
    rules: TopicRules | None = None,
) -> PublishSummary:
    """Publish every line of ``stream``. ``rules`` default to what the broker states."""
    from kafka.errors import KafkaError

    rules = rules or ask_broker(bootstrap, topics)
    source = printable(source)
    run_id = uuid.uuid4().hex[:12]
    summary = PublishSummary()
    started = time.perf_counter()
    try:
        producer = _producer(bootstrap, rules, alone=False)
    except KafkaError as exc:
        raise PublishError(f"cannot reach the Kafka broker at {bootstrap}: {_describe(exc)}") from exc
    try:
        sender = _Sender(producer, summary)
        # a line longer than any topic takes is oversize: reading more of it is of no use
        cap = max(rules.largest_line_bytes, PAYLOAD_PREFIX_BYTES) + 3  # room for "\r\n" and one more
        for lineno, line in enumerate(read_lines(stream, cap), start=1):
            if progress is not None:
                progress.update(line.consumed)
            if line.size is None and not line.data.strip():
                summary.blank += 1
                continue
            sender.send(lineno, route_line(line.data, lineno, source, run_id, topics, rules,
                                           size=line.size))
        refused = sender.flush()
    finally:
        producer.close()
    if refused:
        _second_chance(refused, bootstrap=bootstrap, rules=rules, source=source, run_id=run_id,
                       summary=summary)
    summary.seconds = time.perf_counter() - started
    return summary


def publish_file(path: str, *, bootstrap: str, topics: TopicNames, show_progress: bool = True,
                 rules: TopicRules | None = None) -> PublishSummary:
    """Publish a JSONL file, or standard input for ``-``, with a progress bar for files."""
    from tqdm import tqdm

    if path == "-":
        return publish_stream(sys.stdin.buffer, bootstrap=bootstrap, topics=topics, source="stdin",
                              rules=rules)
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    with file.open("rb") as stream, tqdm(
        total=file.stat().st_size, unit="B", unit_scale=True, desc=f"publishing {file.name}",
        disable=not show_progress, leave=False,
    ) as bar:
        return publish_stream(stream, bootstrap=bootstrap, topics=topics, source=file.name,
                              progress=bar, rules=rules)
