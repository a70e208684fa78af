"""What one event far ahead in event time costs its partition: the day sweep after a jump.

    .venv/bin/radar simulate --out /tmp/world.jsonl -q
    .venv/bin/python scripts/bench_sweep.py --file /tmp/world.jsonl [--to 9999-12-31]

The world goes through the signal stage as in ``bench_engine.py``; then one ad impression dated
``--to`` arrives on the busiest partition, and the sweep it starts is timed and its judgements
(``advance_time`` calls) counted. For comparison, the day-by-day sweep (every account judged at
every midnight) runs over the first ``--sample-days`` days of the same jump, on a copy of the
states, and is extrapolated to the whole jump (it is linear in the days).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from datetime import time as day_time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from bench_engine import DETECTED_AT, decode_all  # noqa: E402

import processors.sweep  # noqa: E402
from processors.engine import advance_time  # noqa: E402
from processors.rules import Rules  # noqa: E402
from processors.sequencer_ports import MemoryStateTable  # noqa: E402
from processors.state import DAY, AccountState, day_of  # noqa: E402
from schemas.events import AdImpression  # noqa: E402
from streams.metrics import Metrics  # noqa: E402
from streams.settings import load_settings  # noqa: E402
from streams.signal_stage import SignalStage  # noqa: E402
from streams.worker import load_rules  # noqa: E402


def day_by_day(states: dict[str, AccountState], first: int, last: int, rules: Rules) -> int:
    judged = 0
    for day in range(first, last + 1):
        for account_id in sorted(states):
            state = states[account_id]
            if state.evaluated_day is None or state.evaluated_day < day:
                advance_time(state, day * DAY, rules, DETECTED_AT)
                judged += 1
    return judged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--file", type=Path, required=True, help="JSONL events (radar simulate)")
    parser.add_argument("--to", default="9999-12-31", help="the far event's date")
    parser.add_argument("--sample-days", type=int, default=365,
                        help="days of the day-by-day sweep to time and extrapolate")
    args = parser.parse_args()
    settings = load_settings({})
    rules = load_rules(settings)
    batches, _ = decode_all(args.file.read_bytes().splitlines(), 5000)
    no_io: Any = None
    stage = SignalStage(settings, rules, MemoryStateTable(), Metrics(), no_io,
                        sources=lambda: ((), ()), clock=lambda: DETECTED_AT)
    for batch in batches:
        stage.admit([(a, None) for a in batch.accepted])
        stage.step()

    accepted = [a for b in batches for a in b.accepted]
    partition, accounts = Counter(a.source.partition for a in accepted).most_common(1)[0]
    template = next(a for a in accepted if a.source.partition == partition
                    and isinstance(a.event, AdImpression) and not a.event.clicked)
    far = datetime.combine(datetime.fromisoformat(args.to).date(), day_time(), UTC)
    jump = template.__class__(template.event.model_copy(update={
        "event_id": "bench-far", "occurred_at": far}), template.source)
    members = {a: s for a in stage.members[partition] if (s := stage._state(a)) is not None}
    copies = {a: AccountState.from_dict(s.to_dict()) for a, s in members.items()}
    first = stage.swept_day[partition] + 1
    days = day_of(far.timestamp()) - first + 1

    judged = [0]

    def counted(*a: Any) -> Any:
        judged[0] += 1
        return advance_time(*a)

    vars(processors.sweep)["advance_time"] = counted  # the sweep's judgements, counted
    started = time.perf_counter()
    stage.admit([(jump, None)])
    result, _ = stage.step()
    seconds = time.perf_counter() - started
    print(f"partition {partition}: {len(members)} accounts, one event on {args.to}: "
          f"a jump of {days:,} days")
    print(f"  sweep:        {seconds:8.3f} s, {judged[0]:,} judgements "
          f"({judged[0] / len(members):.1f} per account), {len(result.signals)} signals")

    sample = min(args.sample_days, days)
    started = time.perf_counter()
    sampled = day_by_day(copies, first, first + sample - 1, rules)
    sample_s = time.perf_counter() - started
    print(f"  day by day:   {sample_s:8.3f} s, {sampled:,} judgements for the first "
          f"{sample:,} days; the whole jump: ~{sample_s * days / sample:,.0f} s, "
          f"{len(members) * days:,} judgements")


if __name__ == "__main__":
    main()
