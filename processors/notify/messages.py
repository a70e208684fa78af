"""What a person reads when an alert reaches them (SPEC section 10): one line saying why, the
evidence in one line, and the message for each kind of destination — a Slack Block Kit
message, or a webhook's JSON body (signed with HMAC-SHA256 when the destination has a secret).
Pure: a signal (as it is on ``radar.signals``) and what is known of its account in, text out.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SIGNATURE_HEADER = "X-Radar-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
EVIDENCE_ITEMS = 6  # figures shown in the one-line evidence


@dataclass(frozen=True)
class Account:
    """What the notifier knows of a signal's account (its latest ``account_profile``)."""

    account_id: str
    name: str | None = None
    owner: str | None = None  # account_profile.owner (the CSM's e-mail, say)


def idempotency_key(signal_id: str, destination: str) -> str:
    """Sent with every delivery: a receiver that sees it twice has seen the same alert."""
    return f"{signal_id}:{destination}"


def signature(secret: str, body: bytes) -> str:
    """``X-Radar-Signature`` of a webhook body: HMAC-SHA256 with the destination's secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def summary(signal: Mapping[str, Any]) -> str:
    """Why the signal fired, in the playbook's words, in one line."""
    ev = signal.get("evidence") or {}
    who = signal.get("stakeholder_id") or "-"
    kind = str(signal.get("type", "?"))
    if kind == "champion_left":
        role = ", ".join(str(x) for x in (ev.get("title"), ev.get("function")) if x)
        renewal = ev.get("renewal_in_days")
        return f"champion {who} ({role}) left" + \
            (f"; renewal in {renewal} days" if renewal is not None else "")
    if kind == "succession_overdue":
        return f"{ev.get('threshold_days', 30)} days after {who} left, nobody who joined since " \
            "has been reached"
    if ev.get("reasons"):
        return "; ".join(str(r) for r in ev["reasons"])
    return kind.replace("_", " ")


def evidence_line(signal: Mapping[str, Any]) -> str:
    """The evidence in one line: the triggering events, then the first figures."""
    ev = dict(signal.get("evidence") or {})
    events = ev.pop("event_ids", None) or []
    figures = ev.pop("figures", None)
    items = [(k, v) for k, v in ev.items() if v is not None and k != "reasons"]
    if isinstance(figures, Mapping):
        items += [(k, v) for k, v in figures.items() if v is not None]
    shown = [f"{k}={_short(v)}" for k, v in items[:EVIDENCE_ITEMS]]
    head = f"events {', '.join(str(e) for e in events[:3])}" + \
        (f" (+{len(events) - 3})" if len(events) > 3 else "") if events else "no event"
    return "; ".join([head, *shown])


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(str(v) for v in value[:4]) + (", …" if len(value) > 4 else "") + "]"
    return str(value)


def account_link(account: Account, template: str | None) -> str | None:
    return template.replace("{account_id}", account.account_id) if template else None


def webhook_body(signal: Mapping[str, Any], account: Account,
                 account_url: str | None = None) -> dict[str, Any]:
    """The JSON a generic webhook receives: the signal, its account, the summary, the link."""
    return {
        "signal_id": signal.get("signal_id"),
        "type": signal.get("type"),
        "category": signal.get("category"),
        "severity": signal.get("severity"),
        "status": signal.get("status", "open"),
        "occurred_at": signal.get("occurred_at"),
        "detected_at": signal.get("detected_at"),
        "withdrawn_at": signal.get("withdrawn_at"),
        "account_id": account.account_id,
        "account_name": account.name,
        "owner": account.owner,
        "stakeholder_id": signal.get("stakeholder_id"),
        "summary": summary(signal),
        "evidence_summary": evidence_line(signal),
        "evidence": signal.get("evidence") or {},
        "account_url": account_link(account, account_url),
    }


def slack_message(signal: Mapping[str, Any], account: Account,
                  account_url: str | None = None) -> dict[str, Any]:
    """A Slack incoming-webhook message (Block Kit): who, which account, why, the evidence,
    the owner, the link; a withdrawn signal says so (the follow-up of one delivered)."""
    kind = str(signal.get("type", "?"))
    title = account.name or account.account_id
    link = account_link(account, account_url)
    place = f"<{link}|{title}>" if link else title
    withdrawn = signal.get("status") == "withdrawn"
    headline = (f"Withdrawn: {kind.replace('_', ' ')} at {title}" if withdrawn else
                f"{str(signal.get('severity', '')).capitalize()}: {kind.replace('_', ' ')} at "
                f"{title}")
    why = ("A later event proved it premature; no action needed." if withdrawn
           else summary(signal))
    fields = [f"*Account*\n{place} (`{account.account_id}`)",
              f"*Who*\n{signal.get('stakeholder_id') or '-'}",
              f"*Owner*\n{account.owner or '-'}",
              f"*When*\n{str(signal.get('occurred_at', ''))[:10]}"]
    return {
        "text": f"{headline}: {why}",  # the notification's text, and where blocks are not shown
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": headline[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": why}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields]},
            {"type": "context", "elements": [
                {"type": "mrkdwn", "text": f"Evidence: {evidence_line(signal)}"[:3000]},
                {"type": "mrkdwn", "text": f"signal `{signal.get('signal_id')}`"}]},
        ],
    }
