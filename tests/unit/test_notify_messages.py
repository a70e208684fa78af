"""What radar notify sends (SPEC section 10): routes select destinations; stale and snoozed
signals are not pushed; a person reads who, which account, why and the evidence; webhooks are
signed and carry the idempotency key's parts."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from processors.notify.messages import (
    Account,
    evidence_line,
    idempotency_key,
    signature,
    slack_message,
    summary,
    webhook_body,
)
from processors.notify.routing import Snooze, destinations_for, verdict
from schemas.notify import Route

NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def signal(kind: str = "champion_left", severity: str = "critical", **extra: Any
           ) -> dict[str, Any]:
    return {"signal_id": "s1", "account_id": "acct-7", "stakeholder_id": "p-3", "type": kind,
            "category": "churn", "severity": severity, "status": "open",
            "occurred_at": "2026-12-01T10:00:00+00:00", "detected_at": NOW.isoformat(),
            "evidence": {"event_ids": ["e1", "e2", "e3", "e4"], "title": "VP Finance",
                         "function": "financial", "renewal_in_days": 40,
                         "figures": {"engaged_30d": 2, "points_30d": 12.5}}, **extra}


def test_routes_select_by_type_severity_and_owner_and_default_to_alerts() -> None:
    routes = [Route(destination="cs", owners=["ana@example.com"]),
              Route(destination="all-high", types=["champion_left", "engagement_drop"],
                    min_severity="high"),
              Route(destination="cs", types=["engagement_drop"])]
    assert destinations_for(signal(), "ana@example.com", routes) == ["cs", "all-high"]
    assert destinations_for(signal(), "bob@example.com", routes) == ["all-high"]
    drop = signal("engagement_drop", "medium")
    assert destinations_for(drop, "bob@example.com", routes) == ["cs"]  # below high; not alert
    assert destinations_for(signal("pricing_page_visit", "high"), None, routes) == []


def test_stale_and_snoozed_signals_are_recorded_not_pushed() -> None:
    day = timedelta(hours=24)
    assert verdict(signal(), NOW - timedelta(days=400), NOW, day, []) == "stale"
    assert verdict(signal(), NOW - timedelta(minutes=1), NOW, day, []) == "deliver"
    held = [Snooze("acct-7", NOW + timedelta(days=3), "champion_left")]
    assert verdict(signal(), NOW, NOW, day, held) == "snoozed"
    assert verdict(signal("renewal_at_risk"), NOW, NOW, day, held) == "deliver"  # other type
    assert verdict(signal(), NOW, NOW + timedelta(days=4), day, held) == "stale"
    assert verdict(signal(), NOW + timedelta(days=4), NOW + timedelta(days=4), day,
                   held) == "deliver"  # the snooze is over


def test_a_person_reads_who_which_account_why_and_the_evidence() -> None:
    account = Account("acct-7", "Proxima Industrial", "ana@example.com")
    message = slack_message(signal(), account, "https://crm.example.com/a/{account_id}")
    text = json.dumps(message)
    for part in ("Critical: champion left at Proxima Industrial", "champion p-3 (VP Finance, "
                 "financial) left; renewal in 40 days", "<https://crm.example.com/a/acct-7|"
                 "Proxima Industrial>", "ana@example.com", "events e1, e2, e3 (+1)",
                 "engaged_30d=2", "points_30d=12.5", "2026-12-01"):
        assert part in text, part
    assert message["text"].startswith("Critical: champion left at Proxima Industrial: champion")
    withdrawn = slack_message(signal(status="withdrawn"), account)
    assert withdrawn["text"].startswith("Withdrawn: champion left at Proxima Industrial")
    assert "premature" in withdrawn["text"]
    assert summary({"type": "renewal_at_risk", "evidence": {"reasons": ["silent 50 days",
                                                                        "2 engaged"]}}) == \
        "silent 50 days; 2 engaged"
    assert evidence_line({"evidence": {}}) == "no event"


def test_webhooks_carry_the_signal_and_a_signature_the_receiver_can_check() -> None:
    account = Account("acct-7", None, None)
    body = webhook_body(signal(), account)
    assert body["signal_id"] == "s1" and body["account_name"] is None
    assert body["summary"].startswith("champion p-3") and body["evidence"]["title"] == "VP Finance"
    raw = json.dumps(body).encode()
    secret = "0123456789abcdef-secret"
    expected = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    assert signature(secret, raw) == f"sha256={expected}"
    assert signature(secret, raw + b" ") != signature(secret, raw)
    assert idempotency_key("s1", "crm-hook") == "s1:crm-hook"


def test_retry_after_is_read_as_seconds_or_a_date_and_bounded() -> None:
    from sinks.webhook import RETRY_AFTER_MAX_S, retry_after_seconds

    assert retry_after_seconds("7", NOW) == 7.0
    assert retry_after_seconds("Wed, 02 Dec 2026 09:00:30 GMT", NOW) == 30.0
    assert retry_after_seconds("Wed, 02 Dec 2026 08:00:00 GMT", NOW) == 0.0  # past
    assert retry_after_seconds("999999", NOW) == RETRY_AFTER_MAX_S
    for nothing in (None, "", "soon", "-5"):
        assert retry_after_seconds(nothing, NOW) is None


def test_one_signal_is_delivered_once_per_destination_and_a_withdrawal_follows_up() -> None:
    from processors.notify.plan import follow_up_key, plan
    from schemas.notify import load_notify_config

    config = load_notify_config('''
[[destination]]
name = "cs"
kind = "slack"
url = "https://hooks.example.com/cs"
[[destination]]
name = "crm"
kind = "webhook"
url = "http://127.0.0.1:8800/hook"
[[route]]
destination = "cs"
owners = ["ana@example.com"]
[[route]]
destination = "crm"
''', {})
    record: dict[str, str] = {}
    alert = signal()
    first = plan(alert, "ana@example.com", config, record.get, [], NOW)
    assert [(p.destination, p.message, p.verdict, p.key) for p in first] == \
        [("cs", "alert", "deliver", "s1:cs"), ("crm", "alert", "deliver", "s1:crm")]
    record["s1:cs"] = "delivered"
    record["s1:crm"] = "dead_lettered"
    assert plan(alert, "ana@example.com", config, record.get, [], NOW) == []  # once
    withdrawn = signal(status="withdrawn")
    again = plan(withdrawn, "ana@example.com", config, record.get, [], NOW)
    assert [(p.destination, p.message, p.key) for p in again] == \
        [("cs", "follow_up", "s1:cs:withdrawn")]  # only where the alert went out
    record[follow_up_key("s1", "cs")] = "delivered"
    assert plan(withdrawn, "ana@example.com", config, record.get, [], NOW) == []
    old = signal(signal_id="s2", detected_at="2025-12-01T09:00:00+00:00")
    assert {p.verdict for p in plan(old, None, config, {}.get, [], NOW)} == {"stale"}
    # a replay of last year's events is detected today, about last year: stale too
    replayed = signal(signal_id="s4", occurred_at="2025-12-01T09:00:00+00:00")
    assert {p.verdict for p in plan(replayed, None, config, {}.get, [], NOW)} == {"stale"}
    assert {p.verdict for p in plan(signal(signal_id="s5"), None, config, {}.get, [], NOW)} \
        == {"deliver"}
    held = [Snooze("acct-7", NOW + timedelta(days=1))]
    assert {p.verdict for p in plan(signal(signal_id="s3"), None, config, {}.get, held, NOW)} \
        == {"snoozed"}
