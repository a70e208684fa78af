"""Regenerate samples/sample-events.jsonl: a small, valid-looking ABM history plus bad lines.

Deterministic (fixed seed); run `python scripts/make_sample.py` after changing it.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

SEED = 7
OUT = Path(__file__).resolve().parent.parent / "samples" / "sample-events.jsonl"
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
FUNCTIONS = ["commercial", "financial", "technical", "operations", "procurement", "executive"]
SENIORITY = ["c_level", "vp", "director", "manager", "individual"]
# the accounts' owners in the CRM; every fourth account has none (the field is optional)
OWNERS = ["ana@example.com", "bruno@example.com", "chiara@example.com"]


def main() -> None:
    rng = random.Random(SEED)
    lines: list[str] = []
    n = 0

    def event(kind: str, at: datetime, account: str, **fields: object) -> None:
        nonlocal n
        n += 1
        body = {"event_id": f"sample-{n:05d}", "type": kind, "schema_version": 1,
                "occurred_at": at.isoformat().replace("+00:00", "Z"), "account_id": account}
        body.update(fields)
        lines.append(json.dumps(body, separators=(",", ":")))

    for a in range(12):
        account = f"acct-{a:03d}"
        people = [f"{account}-p{i}" for i in range(rng.randint(3, 7))]
        champion = people[0]
        event("account_profile", START, account, name=f"Company {a}", sector=rng.choice(
            ["manufacturing", "energy", "software", "logistics"]), tier=rng.choice([1, 2, 3]),
            renewal_date=(date(2026, 3, 1) + timedelta(days=30 * a)).isoformat(),
            arr=float(rng.randint(20, 400) * 1000), champion_ids=[champion],
            **({} if a % 4 == 3 else {"owner": OWNERS[a % 3]}))
        for i, person in enumerate(people):
            event("role_change", START + timedelta(hours=i), account, stakeholder_id=person,
                  change="joined", title="Head of Something", function=FUNCTIONS[i % 6],
                  seniority=SENIORITY[i % 5], buying_role="champion" if i == 0 else "unknown")
        for day in range(0, 60, 2):
            at = START + timedelta(days=day, minutes=rng.randint(0, 600))
            person = rng.choice(people)
            roll = rng.random()
            if roll < 0.5:
                event("ad_impression", at, account, stakeholder_id=person, campaign_id="c-retain",
                      creative_id=f"cr-{rng.randint(1, 4)}", channel=rng.choice(
                          ["linkedin", "meta", "google", "programmatic"]),
                      clicked=rng.random() < 0.1, cost_micros=rng.randint(1000, 90000))
            elif roll < 0.8:
                event("content_interaction", at, account, stakeholder_id=person,
                      content_id=f"post-{rng.randint(1, 20)}", action=rng.choice(
                          ["view", "like", "comment", "share", "save", "website_visit",
                           "pricing_page_visit"]), topic="retention", public=rng.random() < 0.3)
            else:
                event("outreach_reply", at, account, stakeholder_id=person, sequence_id="seq-1",
                      channel=rng.choice(["linkedin", "email"]), reply_kind=rng.choice(
                          ["reply", "positive_reply", "meeting_booked", "not_interested"]))
        if a % 4 == 0:
            event("role_change", START + timedelta(days=45), account, stakeholder_id=champion,
                  change="left", title="Head of Something", function="commercial",
                  seniority="director", buying_role="champion")
    good = json.loads(lines[3])
    bad = [
        '{"event_id": "bad-1", "type": "ad_impression", "schema_version": 1,',  # truncated
        "this is not json",
        '["an", "array"]',
        json.dumps({**good, "event_id": "bad-4", "type": "webinar_signup"}),
        json.dumps({**good, "event_id": "bad-5", "schema_version": 2}),
        json.dumps({**good, "event_id": "bad-6", "occurred_at": "2026-01-05T09:00:00"}),
        json.dumps({k: v for k, v in {**good, "event_id": "bad-7"}.items() if k != "account_id"}),
        json.dumps({**good, "event_id": "bad-8", "seniority": "intern"}),
        json.dumps({**good, "event_id": "bad-9", "stakeholder_id": ""}),
        json.dumps({"event_id": "bad-10", "schema_version": 1}),
    ]
    for i, line in enumerate(bad):
        lines.insert(40 + i * 37, line)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text("\n".join(lines) + "\n")
    print(f"wrote {len(lines)} lines ({len(bad)} bad) to {OUT}")


if __name__ == "__main__":
    main()
