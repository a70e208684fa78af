"""Which partition owns an account: Kafka's default partitioner, as the Java client computes it.

An account's events are applied by the owner of one partition, the one Kafka's own default
partitioner gives its ``account_id`` as the key: murmur2 of the key's UTF-8 bytes, made
positive, modulo the partition count. A message that arrives on another partition (a producer
without keys, another client's partitioner, a key that is not the account) is still applied by
that owner (SPEC section 9).
"""

from __future__ import annotations

_MASK = 0xFFFFFFFF
_M = 0x5BD1E995
_SEED = 0x9747B28C


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (``org.apache.kafka.common.utils.Utils.murmur2``) as an unsigned 32-bit
    integer."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = length % 4
    if tail == 3:
        h ^= data[whole + 2] << 16
    if tail >= 2:
        h ^= data[whole + 1] << 8
    if tail >= 1:
        h ^= data[whole]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner sends a message keyed ``key`` to."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


class Owners:
    """``partition_of`` for account ids, remembered (a world has few accounts and many events)."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions
        self._known: dict[str, int] = {}

    def __call__(self, account_id: str) -> int:
        p = self._known.get(account_id)
        if p is None:
            p = self._known[account_id] = partition_of(account_id, self.partitions)
        return p
