"""``radar publish FILE.jsonl | -``: route each line to its topic by ``type``, keyed by account.

It validates nothing beyond what routing needs: the worker is the one judge of an event. A line
that cannot be routed (not JSON, not an object, no known ``type``) goes to the dead-letter topic
with headers saying which line of which file it was.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from schemas.dead_letter import DeadLetter
from schemas.decode import ErrorClass
from schemas.topics import TopicNames

MAX_REQUEST_BYTES = 16 * 1024 * 1024  # the broker's own limit still applies (about 1 MiB)


@dataclass(frozen=True, slots=True)
class Routed:
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    dead_letter: bool = False


def route_line(line: bytes, lineno: int, source: str, run_id: str, topics: TopicNames) -> Routed:
    """Pure: where one line goes. Never raises."""
    value = line.rstrip(b"\r\n")
    reason: tuple[ErrorClass, str] | None = None
    key: bytes | None = None
    try:
        obj: Any = json.loads(value)
    except (ValueError, UnicodeDecodeError) as exc:
        obj = None
        reason = (ErrorClass.MALFORMED_JSON, f"not valid JSON: {exc}")
    if reason is None and not isinstance(obj, dict):
        reason = (ErrorClass.NOT_AN_OBJECT, f"a line must be a JSON object, got {type(obj).__name__}")
    if reason is None:
        account = obj.get("account_id")
        key = account.encode() if isinstance(account, str) and account else None
        kind = obj.get("type")
        topic = topics.for_type(kind) if isinstance(kind, str) else None
        if topic is not None:
            return Routed(topic, key, value)
        reason = (
            (ErrorClass.UNKNOWN_TYPE, f"unknown type {kind!r}; no topic for it")
            if kind is not None
            else (ErrorClass.UNROUTABLE, "type: field required, so the line has no topic")
        )
    dl = DeadLetter(
        dead_letter_id=f"publish:{run_id}:{lineno}",
        source_topic=f"publish:{source}",
        source_partition=-1,
        source_offset=lineno,
        key=key,
        payload=value,
        error_class=str(reason[0]),
        reason=reason[1],
    )
    return Routed(topics.dead_letters, key, value, dl.headers(), dead_letter=True)


@dataclass
class PublishSummary:
    per_topic: Counter[str] = field(default_factory=Counter)
    dead_lettered: int = 0
    blank: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def sent(self) -> int:
        return sum(self.per_topic.values())

    def render(self) -> str:
        lines = [f"published {self.sent - len(self.failed)} messages in {self.seconds:.1f}s"]
        lines += [f"  {topic:<32} {n:>9}" for topic, n in sorted(self.per_topic.items())]
        if self.dead_lettered:
            lines.append(f"  {self.dead_lettered} line(s) could not be routed and went to the "
                         "dead-letter topic")
        if self.blank:
            lines.append(f"  {self.blank} blank line(s) skipped")
        if self.failed:
            shown = ", ".join(f"line {n}: {why}" for n, why in self.failed[:5])
            lines.append(f"  FAILED to publish {len(self.failed)} line(s): {shown}")
        return "\n".join(lines)


def _lines(stream: IO[bytes]) -> Iterator[bytes]:
    yield from stream


def publish_lines(
    lines: Iterable[bytes],
    *,
    bootstrap: str,
    topics: TopicNames,
    source: str,
    progress: Any | None = None,
) -> PublishSummary:
    from kafka import KafkaProducer

    producer = KafkaProducer(
        bootstrap_servers=bootstrap.split(","),
        client_id="radar-publish",
        acks="all",
        linger_ms=10,
        batch_size=512 * 1024,
        max_request_size=MAX_REQUEST_BYTES,
        retries=5,
    )
    summary = PublishSummary()
    run_id = uuid.uuid4().hex[:12]
    started = time.perf_counter()

    def failed(lineno: int) -> Any:
        return lambda exc: summary.failed.append((lineno, type(exc).__name__))

    try:
        for lineno, line in enumerate(lines, start=1):
            if progress is not None:
                progress.update(len(line))
            if not line.strip():
                summary.blank += 1
                continue
            routed = route_line(line, lineno, source, run_id, topics)
            future = producer.send(routed.topic, key=routed.key, value=routed.value,
                                   headers=routed.headers or None)
            future.add_errback(failed(lineno))
            summary.per_topic[routed.topic] += 1
            summary.dead_lettered += routed.dead_letter
        producer.flush()
    finally:
        producer.close()
    summary.seconds = time.perf_counter() - started
    return summary


def publish_file(path: str, *, bootstrap: str, topics: TopicNames,
                 show_progress: bool = True) -> PublishSummary:
    """Publish a JSONL file, or standard input for ``-``, with a progress bar for files."""
    from tqdm import tqdm

    if path == "-":
        return publish_lines(_lines(sys.stdin.buffer), bootstrap=bootstrap, topics=topics,
                             source="stdin")
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    with file.open("rb") as stream, tqdm(
        total=file.stat().st_size, unit="B", unit_scale=True, desc=f"publishing {file.name}",
        disable=not show_progress, leave=False,
    ) as bar:
        return publish_lines(_lines(stream), bootstrap=bootstrap, topics=topics,
                             source=file.name, progress=bar)
