"""The pure signal engine, driven as the worker's signal stage drives it, without Kafka or
ClickHouse: how fast the domain logic alone goes, next to schema decoding of the same events.

    .venv/bin/radar simulate --out /tmp/world.jsonl -q
    .venv/bin/python scripts/bench_engine.py --file /tmp/world.jsonl [--batch 5000] [--repeat 3]

Events are cut into batches (as fetches would be), held in the stage's reorder buffer and
released in event-time order with the day sweeps (``SignalStage.step``). Prints events/s for
both and their ratio, best of ``--repeat`` runs; compare the ratio across machines.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from processors.ingest import IngestBatch, RawMessage, ingest  # noqa: E402
from processors.partitioning import partition_of  # noqa: E402
from processors.sequencer_ports import MemoryStateTable  # noqa: E402
from schemas.decode import EventTimeBounds  # noqa: E402
from streams.metrics import Metrics  # noqa: E402
from streams.settings import load_settings  # noqa: E402
from streams.signal_stage import SignalStage  # noqa: E402
from streams.worker import load_rules  # noqa: E402

DETECTED_AT = datetime(2030, 1, 1, tzinfo=UTC)



def decode_all(lines: list[bytes], batch: int) -> tuple[list[IngestBatch], float]:
    settings = load_settings({})
    raws = []
    for offset, line in enumerate(lines):
        # the partition follows the account, as the producer's key does (Kafka's default
        # partitioner: the stage's own, so no event is re-routed)
        try:
            account = str(json.loads(line)["account_id"])
        except (ValueError, KeyError, TypeError):
            account = ""  # a bad line: refused by the decoder in any partition
        raws.append(RawMessage("", partition_of(account, settings.topic_partitions), offset,
                               None, line, None))
    started = time.perf_counter()
    bounds = EventTimeBounds(settings.earliest_event_time, datetime.now(UTC),
                             settings.max_future_seconds)
    batches = [ingest(raws[i:i + batch], max_bytes=settings.max_message_bytes,
                      topic_for_type=lambda _: "", time_bounds=bounds)
               for i in range(0, len(raws), batch)]
    return batches, time.perf_counter() - started


def run_engine(batches: list[IngestBatch]) -> tuple[float, int]:
    settings = load_settings({})
    stage = SignalStage(settings, load_rules(settings), MemoryStateTable(),
                        Metrics(), None, sources=lambda: ((), ()),  # type: ignore[arg-type]
                        clock=lambda: DETECTED_AT)
    signals = 0
    started = time.perf_counter()
    for batch in batches:
        stage.admit([(a, None) for a in batch.accepted])
        result, _ = stage.step()
        signals += len(result.signals)
    return time.perf_counter() - started, signals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--file", type=Path, required=True, help="JSONL events (radar simulate)")
    parser.add_argument("--batch", type=int, default=5000, help="events per batch (a fetch)")
    parser.add_argument("--repeat", type=int, default=3, help="runs; the best one counts")
    args = parser.parse_args()
    lines = args.file.read_bytes().splitlines()
    decode_s = engine_s = float("inf")
    for _ in range(args.repeat):
        batches, seconds = decode_all(lines, args.batch)
        decode_s = min(decode_s, seconds)
        seconds, signals = run_engine(batches)
        engine_s = min(engine_s, seconds)
    valid = sum(len(b.accepted) for b in batches)
    print(f"{valid:,} valid events of {len(lines):,} lines, {signals:,} signals")
    print(f"  schema decode:  {len(lines) / decode_s:,.0f} events/s")
    print(f"  signal engine:  {valid / engine_s:,.0f} events/s "
          "(reorder buffer, engine, day sweeps)")
    print(f"ratio engine/decode: {(valid / engine_s) / (len(lines) / decode_s):.2f}")


if __name__ == "__main__":
    main()
