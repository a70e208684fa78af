"""radar notify's digests (SPEC section 10): due at a wall time of their zone, across DST
changes; each covers the local day or week before it; each owner reads the new signals by type
and the accounts that entered at_risk or expansion_ready, a withdrawn signal not counted; the
Slack message stays within Slack's limits however many accounts there are."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from processors.notify.digest import (
    HEADER_CHARS,
    SECTION_CHARS,
    SHOWN_ACCOUNTS,
    OwnerDigest,
    digest_key,
    digest_slack_message,
    digest_webhook_body,
    digests,
    next_due,
    period,
)
from processors.notify.messages import Account
from schemas.notify import Digest

PARIS = ZoneInfo("Europe/Paris")
ANA, BO = "ana@example.com", "bo@example.com"


def daily(at: str = "08:00", zone: str = "Europe/Paris", **extra: Any) -> Digest:
    return Digest(name="daily-cs", destination="cs", every="daily", at=at, timezone=zone, **extra)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- when: 2026-03-29 and 2026-10-25 are the last Sundays of March and October


def test_daily_digest_is_due_at_the_wall_time_of_its_zone_on_both_sides_of_a_dst_change() -> None:
    # 08:00 in Paris is 07:00 UTC in winter, 06:00 UTC in summer
    assert next_due(daily(), utc(2026, 3, 28, 0, 0)) == utc(2026, 3, 28, 7, 0)
    assert next_due(daily(), utc(2026, 3, 28, 7, 0)) == utc(2026, 3, 29, 6, 0)
    assert next_due(daily(), utc(2026, 10, 24, 6, 0)) == utc(2026, 10, 25, 7, 0)
    due = next_due(daily(), datetime(2026, 3, 28, 9, 0, tzinfo=PARIS))
    assert due.tzinfo is UTC and due.astimezone(PARIS).hour == 8


def test_next_due_is_strictly_after() -> None:
    due = next_due(daily(), utc(2026, 5, 4, 5, 0))
    assert next_due(daily(), due) == due + timedelta(days=1)
    assert next_due(daily(), due - timedelta(microseconds=1)) == due


def test_a_wall_time_the_spring_change_skips_is_sent_that_much_later() -> None:
    # 02:30 does not exist in Paris on 2026-03-29: sent at 03:30 summer time (01:30 UTC)
    d = daily("02:30")
    due = next_due(d, utc(2026, 3, 28, 12, 0))
    assert due == utc(2026, 3, 29, 1, 30)
    assert due.astimezone(PARIS).strftime("%H:%M") == "03:30"
    assert next_due(d, due) == utc(2026, 3, 30, 0, 30)


def test_a_wall_time_the_autumn_change_repeats_is_sent_the_first_time_only() -> None:
    # 02:30 happens twice in Paris on 2026-10-25: at 00:30 UTC (summer) and 01:30 UTC (winter)
    d = daily("02:30")
    first = next_due(d, utc(2026, 10, 24, 12, 0))
    assert first == utc(2026, 10, 25, 0, 30)
    assert next_due(d, first) == utc(2026, 10, 26, 1, 30)


def test_weekly_digest_is_due_on_its_weekday_only() -> None:
    d = Digest(name="w", destination="cs", every="weekly", at="09:00", weekday="wednesday",
               timezone="America/New_York")
    # Wednesday 2026-03-04 09:00 EST = 14:00 UTC; asked just then, the next is a week on, and
    # New York has moved to summer time by then (2026-03-08): 13:00 UTC
    assert next_due(d, utc(2026, 3, 2, 0, 0)) == utc(2026, 3, 4, 14, 0)
    assert next_due(d, utc(2026, 3, 4, 14, 0)) == utc(2026, 3, 11, 13, 0)
    for start in (utc(2026, 1, 1) + timedelta(hours=5 * i) for i in range(200)):
        due = next_due(d, start)
        assert due > start and due - start <= timedelta(days=7)
        local = due.astimezone(ZoneInfo("America/New_York"))
        assert (local.strftime("%A"), local.hour, local.minute) == ("Wednesday", 9, 0)


def test_a_skipped_wall_time_late_in_the_evening_is_sent_after_midnight() -> None:
    # Nuuk's clocks go from 23:00 on Saturday 2026-03-28 straight to 00:00 on Sunday (UTC-2 →
    # UTC-1, tzdata 2023a on): that Saturday's 23:30 is sent at 00:30 on Sunday
    nuuk = ZoneInfo("America/Nuuk")
    if datetime(2026, 3, 29, 12, 0, tzinfo=nuuk).utcoffset() != timedelta(hours=-1):
        pytest.skip("this tz database predates Nuuk's 2024 rules")
    d = daily("23:30", "America/Nuuk")
    assert next_due(d, datetime(2026, 3, 29, 0, 10, tzinfo=nuuk)) == utc(2026, 3, 29, 1, 30)
    assert next_due(d, utc(2026, 3, 29, 1, 30)) == datetime(2026, 3, 29, 23, 30, tzinfo=nuuk)
    assert period(d, utc(2026, 3, 29, 1, 30)) == (utc(2026, 3, 28, 1, 30), utc(2026, 3, 29, 1, 30))


def test_next_due_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_due(daily(), datetime(2026, 1, 1, 8, 0))  # noqa: DTZ001


def test_a_daily_period_is_one_local_day_so_23_or_25_hours_across_a_dst_change() -> None:
    d = daily()
    assert period(d, utc(2026, 3, 29, 6, 0)) == (utc(2026, 3, 28, 7, 0), utc(2026, 3, 29, 6, 0))
    start, end = period(d, utc(2026, 10, 25, 7, 0))
    assert end - start == timedelta(hours=25)
    start, end = period(d, utc(2026, 6, 1, 6, 0))
    assert end - start == timedelta(hours=24)


def test_a_weekly_period_is_seven_local_days() -> None:
    d = Digest(name="w", destination="cs", every="weekly", at="08:00", weekday="monday",
               timezone="Europe/Paris")
    start, end = period(d, utc(2026, 3, 30, 6, 0))  # Monday after the spring change
    assert (start, end) == (utc(2026, 3, 23, 7, 0), utc(2026, 3, 30, 6, 0))
    assert end - start == timedelta(days=7, hours=-1)


@pytest.mark.parametrize("at", ["02:30", "02:00", "03:00", "08:00", "00:00", "23:59"])
@pytest.mark.parametrize("every", ["daily", "weekly"])
def test_the_periods_of_a_schedule_follow_one_another_without_gap_or_overlap(
        at: str, every: str) -> None:
    d = Digest(name="d", destination="cs", every=every, at=at,  # type: ignore[arg-type]
               weekday="sunday", timezone="Europe/Paris")
    dues = [next_due(d, utc(2026, 1, 1))]
    while dues[-1] < utc(2027, 1, 1):
        dues.append(next_due(d, dues[-1]))
    for before, due in zip(dues, dues[1:], strict=False):
        assert period(d, due) == (before, due)


def test_a_digest_now_period_goes_back_one_local_day_from_now() -> None:
    now = datetime(2026, 3, 29, 15, 17, tzinfo=PARIS)
    start, end = period(daily(), now)
    assert end == now and end.tzinfo is UTC
    assert start == datetime(2026, 3, 28, 15, 17, tzinfo=PARIS)
    assert end - start == timedelta(hours=23)


# --- what

START, END = utc(2026, 5, 4, 6, 0), utc(2026, 5, 5, 6, 0)
IN, BEFORE, AFTER = utc(2026, 5, 4, 12, 0), utc(2026, 5, 4, 5, 59), utc(2026, 5, 5, 6, 0)
ACCOUNTS = {"a1": Account("a1", "Acme", ANA), "a2": Account("a2", "Globex", ANA),
            "b1": Account("b1", "Initech", BO), "n1": Account("n1", "Nobody's", None)}


def sig(signal_id: str, account_id: str, kind: str, detected: datetime, status: str = "open",
        withdrawn_at: datetime | None = None) -> dict[str, Any]:
    return {"signal_id": signal_id, "account_id": account_id, "stakeholder_id": None,
            "type": kind, "category": "churn", "severity": "high",
            "occurred_at": (detected - timedelta(hours=1)).isoformat(),
            "detected_at": detected.isoformat().replace("+00:00", "Z"), "rule_version": "r1",
            "evidence": {}, "status": status,
            "withdrawn_at": withdrawn_at.isoformat() if withdrawn_at else None}


def tier(account_id: str, to: str, previous: str | None, detected: datetime,
         *reasons: str) -> dict[str, Any]:
    return {"account_id": account_id, "tier": to, "previous_tier": previous,
            "occurred_at": detected.isoformat(), "detected_at": detected.isoformat(),
            "rule_version": "r1", "reasons": list(reasons)}


def by_owner(found: list[OwnerDigest]) -> dict[str | None, OwnerDigest]:
    return {d.owner: d for d in found}


def test_signals_detected_in_the_period_are_counted_by_type_for_each_owner() -> None:
    signals = [sig("s1", "a1", "engagement_drop", IN), sig("s2", "a2", "engagement_drop", IN),
               sig("s3", "a1", "champion_left", IN), sig("s4", "b1", "pricing_page_visit", IN),
               sig("s5", "n1", "engagement_silence", IN), sig("s6", "zz", "single_threaded", IN),
               sig("s7", "a1", "champion_left", BEFORE), sig("s8", "a1", "champion_left", AFTER),
               sig("s1", "a1", "engagement_drop", IN)]  # the same signal twice: once
    found = digests(daily(), signals, [], ACCOUNTS, START, END)
    assert [d.owner for d in found] == [ANA, BO, None]
    ana = by_owner(found)[ANA]
    assert ana.counts == (("engagement_drop", 2), ("champion_left", 1)) and ana.total == 3
    assert (ana.start, ana.end, ana.timezone) == (START, END, "Europe/Paris")
    assert by_owner(found)[BO].counts == (("pricing_page_visit", 1),)
    # no owner: the account without one, and an account nobody knows of
    assert by_owner(found)[None].counts == (("engagement_silence", 1), ("single_threaded", 1))


def test_the_owners_filter_keeps_only_those_owners() -> None:
    signals = [sig("s1", "a1", "engagement_drop", IN), sig("s2", "b1", "engagement_drop", IN),
               sig("s3", "n1", "engagement_drop", IN)]
    found = digests(daily(owners=[BO, "carl@example.com"]), signals,
                    [tier("a1", "at_risk", "stable", IN)], ACCOUNTS, START, END)
    assert [d.owner for d in found] == [BO]


def test_a_signal_withdrawn_within_the_period_is_not_new() -> None:
    later = IN + timedelta(hours=2)
    signals = [sig("s1", "a1", "engagement_silence", IN),
               sig("s2", "a1", "engagement_silence", IN),
               sig("s1", "a1", "engagement_silence", IN, "withdrawn", later),
               # withdrawn after the period ends: at its end it stood, and is counted
               sig("s2", "a1", "engagement_silence", IN, "withdrawn", AFTER + timedelta(hours=1)),
               # only the withdrawal seen (the open record read before a restart): not new
               sig("s3", "a2", "engagement_drop", IN, "withdrawn", later)]
    ana = by_owner(digests(daily(), signals, [], ACCOUNTS, START, END))[ANA]
    assert (ana.counts, ana.total, ana.withdrawn) == ((("engagement_silence", 1),), 1, 2)
    # the order records come in does not matter: a withdrawal is final
    again = by_owner(digests(daily(), signals[::-1], [], ACCOUNTS, START, END))[ANA]
    assert (again.counts, again.withdrawn) == (ana.counts, ana.withdrawn)
    assert "withdrawn" in digest_slack_message(ana, "daily-cs", None)["blocks"][1]["text"]["text"]


def test_only_withdrawn_signals_make_no_digest_and_nothing_at_all_makes_an_empty_list() -> None:
    withdrawn = [sig("s1", "a1", "engagement_drop", IN, "withdrawn", IN)]
    assert digests(daily(), withdrawn, [], ACCOUNTS, START, END) == []
    assert digests(daily(), [], [], ACCOUNTS, START, END) == []
    outside = [sig("s1", "a1", "engagement_drop", BEFORE)]
    assert digests(daily(), outside, [tier("a1", "at_risk", "stable", AFTER)], ACCOUNTS,
                   START, END) == []


def test_accounts_entering_a_tier_within_the_period_with_their_reasons() -> None:
    t1, t2 = IN, IN + timedelta(hours=3)
    changes = [
        tier("a1", "at_risk", "stable", t1, "champion left", "renewal in 40 days"),
        tier("a2", "at_risk", "stable", t1, "silence"),
        tier("a2", "stable", "at_risk", t2, "re-engaged"),  # left it again: not counted
        tier("b1", "expansion_ready", "stable", t2, "surge"),
        tier("n1", "stable", "at_risk", t1),  # left at_risk: nothing to say
        tier("b1", "at_risk", "stable", BEFORE, "before"),  # outside the period
        tier("zz", "at_risk", "at_risk", t1, "same tier"),  # a replayed record: no change
    ]
    found = by_owner(digests(daily(), [], changes, ACCOUNTS, START, END))
    assert set(found) == {ANA, BO}
    ana = found[ANA]
    assert [(e.account_id, e.account_name, e.previous_tier, e.reasons)
            for e in ana.entered_at_risk] == \
        [("a1", "Acme", "stable", ("champion left", "renewal in 40 days"))]
    assert ana.entered_expansion_ready == () and ana.total == 0
    assert [e.account_id for e in found[BO].entered_expansion_ready] == ["b1"]
    assert found[BO].entered_at_risk == ()


def test_the_latest_change_in_the_period_decides_whatever_order_they_come_in() -> None:
    changes = [tier("a1", "expansion_ready", "stable", IN + timedelta(hours=1), "surge"),
               tier("a1", "at_risk", "stable", IN, "silence")]
    ana = by_owner(digests(daily(), [], changes, ACCOUNTS, START, END))[ANA]
    assert [e.account_id for e in ana.entered_expansion_ready] == ["a1"]
    assert ana.entered_at_risk == ()


def test_digests_refuse_a_naive_period() -> None:
    with pytest.raises(ValueError, match="aware"):
        digests(daily(), [], [], ACCOUNTS, datetime(2026, 5, 4), END)  # noqa: DTZ001


# --- the messages


def many() -> OwnerDigest:
    accounts = {f"acct-{i:03}": Account(f"acct-{i:03}", f"Company <{i}> & Sons " + "x" * 90,
                                        "owner-with-a-very-long-address-" + "y" * 120)
                for i in range(120)}
    owner = next(iter(accounts.values())).owner
    changes = [tier(a, "at_risk" if i % 2 else "expansion_ready", "stable", IN,
                    *[f"reason {j} " + "z" * 200 for j in range(8)])
               for i, a in enumerate(accounts)]
    signals = [sig(f"s{i}", a, kind, IN) for i, a in enumerate(accounts)
               for kind in ("engagement_drop", "champion_left")[: 1 + i % 2]]
    (found,) = digests(daily(owners=[str(owner)]), signals, changes, accounts, START, END)
    return found


def test_the_slack_message_stays_within_slack_limits_with_many_accounts() -> None:
    d = many()
    message = digest_slack_message(d, "daily-cs", "https://crm.example.com/accounts/{account_id}")
    blocks = message["blocks"]
    header = blocks[0]["text"]["text"]
    assert len(header) <= HEADER_CHARS and header.startswith("Account Radar digest — owner-")
    assert header.endswith("2026-05-04 08:00 – 2026-05-05 08:00 Europe/Paris")
    assert len(blocks) <= 50
    texts = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert all(len(t) <= SECTION_CHARS for t in texts)
    at_risk = next(t for t in texts if t.startswith("*Entered at risk*"))
    assert at_risk.startswith(f"*Entered at risk* ({len(d.entered_at_risk)})")
    assert at_risk.count("\n• ") == SHOWN_ACCOUNTS
    assert at_risk.endswith(f"+{len(d.entered_at_risk) - SHOWN_ACCOUNTS} more")
    first = d.entered_at_risk[0].account_id  # by name: "Company <101> ..." before "<11>"
    number = int(first.removeprefix("acct-"))
    assert f"\n• <https://crm.example.com/accounts/{first}|Company &lt;{number}&gt; &amp; Sons" \
        in at_risk
    assert any(t.startswith("*Entered expansion ready* (60)") for t in texts)
    assert texts[0].startswith(f"*{d.total} new signals*\n• engagement drop: 120")
    assert message["text"].startswith(header)


def test_the_slack_message_lists_the_first_ten_accounts_of_a_tier_then_counts_the_rest() -> None:
    accounts = {f"a{i:02}": Account(f"a{i:02}", f"Account {i:02}", ANA) for i in range(25)}
    changes = [tier(a, "at_risk", "stable", IN, "silence") for a in accounts]
    (d,) = digests(daily(), [], changes, accounts, START, END)
    section = digest_slack_message(d, "daily-cs", None)["blocks"][2]["text"]["text"]
    assert section.splitlines() == [
        "*Entered at risk* (25)",
        *[f"• Account {i:02} (from stable) — silence" for i in range(SHOWN_ACCOUNTS)],
        f"+{25 - SHOWN_ACCOUNTS} more"]


def test_the_slack_message_names_no_owner_and_leaves_out_empty_sections() -> None:
    (d,) = digests(daily(), [sig("s1", "n1", "engagement_drop", IN)], [], ACCOUNTS, START, END)
    message = digest_slack_message(d, "daily-cs", None)
    assert message["blocks"][0]["text"]["text"] == \
        "Account Radar digest — no owner — 2026-05-04 08:00 – 2026-05-05 08:00 Europe/Paris"
    texts = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]
    assert texts == ["*1 new signal*\n• engagement drop: 1"]
    assert "<" not in str(message)  # no account_url: no link


def test_the_webhook_body_holds_the_whole_digest() -> None:
    signals = [sig("s1", "a1", "engagement_drop", IN), sig("s2", "a1", "engagement_drop", IN),
               sig("s3", "a2", "champion_left", IN)]
    changes = [tier("a1", "at_risk", "stable", IN, "champion left"),
               tier("a2", "expansion_ready", None, IN, "surge")]
    (d,) = digests(daily(), signals, changes, ACCOUNTS, START, END)
    body = digest_webhook_body(d, "daily-cs", "https://crm.example.com/a/{account_id}")
    assert (body["kind"], body["digest"], body["owner"]) == ("digest", "daily-cs", ANA)
    assert (body["period_start"], body["period_end"]) == (START.isoformat(), END.isoformat())
    assert body["counts"] == {"engagement_drop": 2, "champion_left": 1} and body["total"] == 3
    assert body["entered_at_risk"] == [{
        "account_id": "a1", "account_name": "Acme", "previous_tier": "stable",
        "reasons": ["champion left"], "detected_at": IN.isoformat(),
        "account_url": "https://crm.example.com/a/a1"}]
    assert [e["account_id"] for e in body["entered_expansion_ready"]] == ["a2"]
    assert digest_webhook_body(d, "daily-cs", None)["entered_at_risk"][0]["account_url"] is None
    assert len(many().entered_at_risk) == len(
        digest_webhook_body(many(), "d", None)["entered_at_risk"])  # nothing left out


def test_the_digest_key_names_digest_owner_and_period() -> None:
    assert digest_key("daily-cs", ANA, START) == f"digest:daily-cs:{ANA}:2026-05-04T06:00:00+00:00"
    assert digest_key("daily-cs", None, START) == "digest:daily-cs:-:2026-05-04T06:00:00+00:00"
    # the same instant handed in another zone is the same digest
    assert digest_key("daily-cs", ANA, START.astimezone(PARIS)) == digest_key("daily-cs", ANA, START)
