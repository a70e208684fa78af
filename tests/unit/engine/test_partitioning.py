"""An account's partition is the one Kafka's own default partitioner gives its account_id."""

from __future__ import annotations

import random

from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from processors.partitioning import Owners, murmur2, partition_of

# from the Java client's own tests (Utils.murmur2, as signed 32-bit integers)
JAVA = {
    "21": -973932308,
    "foobar": -790332482,
    "a-little-bit-long-string": -985981536,
    "a-little-bit-longer-string": -1486304829,
    "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    "abc": 479470107,
}


def test_murmur2_is_the_java_clients() -> None:
    for key, signed in JAVA.items():
        assert murmur2(key.encode()) == signed & 0xFFFFFFFF, key


def test_murmur2_agrees_with_kafka_python_on_every_length_and_byte() -> None:
    rng = random.Random(11)
    for _ in range(3000):
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 70)))
        assert murmur2(data) == kafka_python_murmur2(data) & 0xFFFFFFFF, data


def test_the_partition_is_the_positive_hash_modulo_the_count() -> None:
    # "21" hashes negative: the sign bit is dropped, as Utils.toPositive does
    assert partition_of("21", 6) == (-973932308 & 0x7FFFFFFF) % 6
    assert {partition_of(f"acct-{n:05d}", 6) for n in range(200)} == set(range(6))
    owners = Owners(6)
    assert [owners(f"acct-{n}") for n in range(50)] == [
        partition_of(f"acct-{n}", 6) for n in range(50)]
    assert owners("é-account") == partition_of("é-account", 6)  # the key's UTF-8 bytes
