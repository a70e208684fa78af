"""How the demo prints an alert, and the same alert withdrawn."""

from __future__ import annotations

from tools.demo import describe_alert


def test_an_alert_reads_as_a_line_a_revenue_team_can_act_on() -> None:
    line = describe_alert({"type": "succession_overdue", "account_id": "acct-7",
                           "stakeholder_id": "p-1", "occurred_at": "2026-03-01T00:00:00Z",
                           "status": "open", "evidence": {"threshold_days": 30}})
    assert line.startswith("  ALERT 2026-03-01 succession_overdue")
    assert "acct-7" in line and "30 days after p-1 left" in line and "WITHDRAWN" not in line


def test_a_withdrawn_alert_says_so_and_names_the_event_that_broke_it() -> None:
    line = describe_alert({"type": "succession_overdue", "account_id": "acct-7",
                           "stakeholder_id": "p-1", "occurred_at": "2026-03-01T00:00:00Z",
                           "status": "withdrawn",
                           "evidence": {"withdrawn_by": {"event_id": "late-reply"}}})
    assert line.startswith("  WITHDRAWN 2026-03-01 succession_overdue")
    assert "late-reply" in line and "ALERT" not in line
