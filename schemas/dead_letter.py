"""The dead-letter record and how it travels on the dead-letter topic.

On ``radar.dead-letters`` the message value is the original bytes, untouched, and these headers
say where it came from and why it was refused. The same record becomes a ``dead_letters`` row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

H_ID = "radar.dead_letter_id"
H_TOPIC = "radar.source_topic"
H_PARTITION = "radar.source_partition"
H_OFFSET = "radar.source_offset"
H_ERROR_CLASS = "radar.error_class"
H_REASON = "radar.reason"
# The dead-letter topic takes what a Kafka message may hold (1 MB by default, headers included):
# a payload above this is carried as its first PAYLOAD_PREFIX_BYTES, its size in the reason
PAYLOAD_MAX_BYTES = 900 * 1024
PAYLOAD_PREFIX_BYTES = 4096


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A refused message: its original bytes and where it came from.

    ``source_partition`` is -1 and ``source_offset`` the line number for lines that
    ``radar publish`` could not route (they never reached an input topic).
    """

    dead_letter_id: str
    source_topic: str
    source_partition: int
    source_offset: int
    key: bytes | None
    payload: bytes
    error_class: str
    reason: str

    def headers(self) -> list[tuple[str, bytes]]:
        return [
            (H_ID, self.dead_letter_id.encode()),
            (H_TOPIC, self.source_topic.encode()),
            (H_PARTITION, str(self.source_partition).encode()),
            (H_OFFSET, str(self.source_offset).encode()),
            (H_ERROR_CLASS, self.error_class.encode()),
            (H_REASON, self.reason.encode()),
        ]


def from_message(
    headers: Iterable[tuple[str, bytes]],
    key: bytes | None,
    value: bytes | None,
    fallback_id: str,
) -> DeadLetter:
    """Rebuild the record from a dead-letter topic message.

    A message someone else put on the topic without our headers is still kept: it is
    identified by its own coordinates on the dead-letter topic (``fallback_id``).
    """
    h = {name: raw.decode("utf-8", "replace") for name, raw in headers}

    def as_int(name: str, default: int) -> int:
        try:
            return int(h[name])
        except (KeyError, ValueError):
            return default

    return DeadLetter(
        dead_letter_id=h.get(H_ID) or fallback_id,
        source_topic=h.get(H_TOPIC, ""),
        source_partition=as_int(H_PARTITION, -1),
        source_offset=as_int(H_OFFSET, -1),
        key=key,
        payload=value or b"",
        error_class=h.get(H_ERROR_CLASS, "unknown"),
        reason=h.get(H_REASON, "arrived on the dead-letter topic without radar headers"),
    )
