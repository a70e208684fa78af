"""The digests of ``radar notify`` (SPEC section 10): when a ``[[digest]]`` is due, the period
it covers, what it says to each owner — the new signals by type, the accounts that entered
at_risk or expansion_ready with their reasons — and the Slack and webhook messages that say
it. Pure: the signals and tier changes (as on ``radar.signals`` and ``radar.account-tiers``),
the accounts and the times are handed in; the notifier reads, sends and records.

Time. A digest is due at ``at`` on the wall clock of its ``timezone``, every day or on its
``weekday``. A wall time a DST change skips (02:30 in Paris on the last Sunday of March) is
sent that much later, at 03:30 summer time; a wall time that happens twice (02:30 on the last
Sunday of October) is sent the first time only. A daily digest covers one local day before it
is due, a weekly one seven local days: the day of a DST change is 23 or 25 hours long, so the
periods of a schedule follow one another without a gap or an overlap.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from processors.notify.messages import Account, account_link
from schemas.notify import Digest

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
PERIOD_DAYS = {"daily": 1, "weekly": 7}
NO_OWNER = "no owner"

# Slack's limits on a message: a header's text, a section's text, the blocks
HEADER_CHARS = 150
SECTION_CHARS = 3000
SHOWN_ACCOUNTS = 10  # accounts listed per tier; the rest are counted ("+N more")
LINE_CHARS = 280  # one account's line: its name, its link, the start of its reasons
NAME_CHARS = 80


@dataclass(frozen=True)
class EnteredTier:
    """An account whose tier became at_risk or expansion_ready within the period."""

    account_id: str
    account_name: str | None
    tier: str
    previous_tier: str | None
    reasons: tuple[str, ...]
    detected_at: datetime


@dataclass(frozen=True)
class OwnerDigest:
    """What one owner's digest says of one period [start, end) (UTC; shown in ``timezone``)."""

    owner: str | None  # None: accounts without an owner, shown as "no owner"
    start: datetime
    end: datetime
    timezone: str
    counts: tuple[tuple[str, int], ...]  # new signals by type, the most frequent first
    entered_at_risk: tuple[EnteredTier, ...]
    entered_expansion_ready: tuple[EnteredTier, ...]
    total: int  # new signals, all types
    withdrawn: int = 0  # detected and withdrawn within the period: not counted as new


# --- when


def _aware(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be an aware datetime (got {moment.isoformat()})")
    return moment


def _instant(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of a wall time in ``zone``. ``fold=0`` (PEP 495) reads a skipped wall
    time with the offset before the change, so it lands as far after the gap's start as it was
    meant to be (02:30 → 03:30 summer time), and a repeated one as its first occurrence."""
    return datetime.combine(day, wall, tzinfo=zone).replace(fold=0).astimezone(UTC)


def _at(digest: Digest) -> time:
    hours, minutes = digest.at.split(":")
    return time(int(hours), int(minutes))


def _scheduled_on(digest: Digest, day: date) -> bool:
    return digest.every == "daily" or WEEKDAYS[day.weekday()] == digest.weekday


def next_due(digest: Digest, after: datetime) -> datetime:
    """The first time the digest is due strictly after ``after`` (aware), in UTC."""
    zone, wall = ZoneInfo(digest.timezone), _at(digest)
    # from the day before: a skipped wall time late on that day can land after midnight
    day = _aware(after, "after").astimezone(zone).date() - timedelta(days=1)
    for _ in range(16):
        if _scheduled_on(digest, day):
            due = _instant(day, wall, zone)
            if due > after:
                return due
        day += timedelta(days=1)
    raise AssertionError("unreachable: a weekly digest is due within any 8 days")


def period(digest: Digest, due: datetime) -> tuple[datetime, datetime]:
    """The period [start, end) a digest sent at ``due`` covers, in UTC: one local day (daily)
    or seven (weekly) before ``due``, so 23 or 25 hours across a DST change. A ``due`` that is
    one of the schedule's times starts where the period before it ended, even when its wall
    time was skipped; any other ``due`` (``--digest-now``) goes back from its own wall time."""
    zone, wall = ZoneInfo(digest.timezone), _at(digest)
    end = _aware(due, "due").astimezone(UTC)
    local = end.astimezone(zone)
    days = timedelta(days=PERIOD_DAYS[digest.every])
    for day in (local.date(), local.date() - timedelta(days=1)):
        if _scheduled_on(digest, day) and _instant(day, wall, zone) == end:
            return _instant(day - days, wall, zone), end
    return _instant(local.date() - days, local.time(), zone), end


# --- what


def _when(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    # the topics carry UTC times with their offset; a bare one is taken as UTC
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _new_signals(signals: Iterable[Mapping[str, Any]], start: datetime, end: datetime
                 ) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """The signals detected in [start, end) that stand at ``end``, once per id, and those
    withdrawn by then. A withdrawal is final (the engine never reopens an id), whatever order
    the records come in; one that came after ``end`` is not yet known at ``end``, so the digest
    of a period says the same whenever it is computed (its key promises that)."""
    standing: dict[str, Mapping[str, Any]] = {}
    withdrawn: dict[str, Mapping[str, Any]] = {}
    for signal in signals:
        if not start <= _when(signal["detected_at"]) < end:
            continue
        signal_id = str(signal["signal_id"])
        if signal.get("status") == "withdrawn":
            at = signal.get("withdrawn_at")
            if at is None or _when(at) < end:
                withdrawn.setdefault(signal_id, signal)
                continue
        standing.setdefault(signal_id, signal)
    return ([s for i, s in standing.items() if i not in withdrawn], list(withdrawn.values()))


def _latest_changes(tier_changes: Iterable[Mapping[str, Any]], start: datetime, end: datetime
                    ) -> dict[str, Mapping[str, Any]]:
    """Each account's latest tier change detected in [start, end): by detection time, then in
    the order handed in (the topic's: one account's changes share its key and partition)."""
    within = [(i, _when(c["detected_at"]), c) for i, c in enumerate(tier_changes)]
    latest: dict[str, Mapping[str, Any]] = {}
    for _, _, change in sorted((x for x in within if start <= x[1] < end),
                               key=lambda x: (x[1], x[0])):
        latest[str(change["account_id"])] = change
    return latest


def _entered(change: Mapping[str, Any], account: Account) -> EnteredTier:
    return EnteredTier(
        account_id=account.account_id, account_name=account.name, tier=str(change["tier"]),
        previous_tier=change.get("previous_tier"),
        reasons=tuple(str(r) for r in change.get("reasons") or ()),
        detected_at=_when(change["detected_at"]))


def _display(entered: EnteredTier) -> tuple[str, str]:
    return ((entered.account_name or entered.account_id).casefold(), entered.account_id)


def digests(digest: Digest, signals: Iterable[Mapping[str, Any]],
            tier_changes: Iterable[Mapping[str, Any]], accounts: Mapping[str, Account],
            start: datetime, end: datetime) -> list[OwnerDigest]:
    """One digest per owner with something to say of [start, end): signals new in the period
    (detected in it and not withdrawn by its end), and accounts that entered at_risk or
    expansion_ready (their latest change in the period is into that tier, from another).
    Accounts without an owner make one digest, owner None; ``digest.owners``, when set, keeps
    only those owners. An owner with nothing new gets none, and when nobody has anything the
    list is empty: the caller sends nothing and says so. Sorted by owner, "no owner" last."""
    start = _aware(start, "start").astimezone(UTC)
    end = _aware(end, "end").astimezone(UTC)

    def account(account_id: str) -> Account:
        return accounts.get(account_id) or Account(account_id)

    def wanted(owner: str | None) -> bool:
        return digest.owners is None or owner in digest.owners

    counts: dict[str | None, dict[str, int]] = {}
    withdrawn: dict[str | None, int] = {}
    standing, gone = _new_signals(signals, start, end)
    for signal in standing:
        by_type = counts.setdefault(account(str(signal["account_id"])).owner, {})
        by_type[str(signal["type"])] = by_type.get(str(signal["type"]), 0) + 1
    for signal in gone:
        owner = account(str(signal["account_id"])).owner
        withdrawn[owner] = withdrawn.get(owner, 0) + 1

    entered: dict[str | None, dict[str, list[EnteredTier]]] = {}
    for account_id, change in _latest_changes(tier_changes, start, end).items():
        tier = str(change["tier"])
        if tier not in ("at_risk", "expansion_ready") or change.get("previous_tier") == tier:
            continue
        acct = account(account_id)
        entered.setdefault(acct.owner, {}).setdefault(tier, []).append(_entered(change, acct))

    out = []
    # only owners with a new signal or an account entering a tier: withdrawn ones are no news
    for owner in {*counts, *entered}:
        if not wanted(owner):
            continue
        by_type = counts.get(owner, {})
        tiers = entered.get(owner, {})
        out.append(OwnerDigest(
            owner=owner, start=start, end=end, timezone=digest.timezone,
            counts=tuple(sorted(by_type.items(), key=lambda kv: (-kv[1], kv[0]))),
            entered_at_risk=tuple(sorted(tiers.get("at_risk", ()), key=_display)),
            entered_expansion_ready=tuple(sorted(tiers.get("expansion_ready", ()),
                                                 key=_display)),
            total=sum(by_type.values()), withdrawn=withdrawn.get(owner, 0)))
    return sorted(out, key=lambda d: (d.owner is None, d.owner or ""))


# --- the messages


def digest_key(name: str, owner: str | None, start: datetime) -> str:
    """The Idempotency-Key of one owner's digest of one period, so a scheduled digest goes
    once however often the notifier restarts; ``start`` in UTC, whatever zone it is handed in."""
    return f"digest:{name}:{owner or '-'}:{start.astimezone(UTC).isoformat()}"


def _escape(text: str) -> str:
    # Slack reads &, < and > as markup: a name with them would break its link
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:max(limit - 1, 0)] + "…"


def period_text(d: OwnerDigest) -> str:
    """The period in the digest's time zone, as a person there reads it."""
    zone = ZoneInfo(d.timezone)
    start, end = d.start.astimezone(zone), d.end.astimezone(zone)
    return f"{start:%Y-%m-%d %H:%M} – {end:%Y-%m-%d %H:%M} {d.timezone}"


def _header(d: OwnerDigest) -> str:
    head, tail = "Account Radar digest — ", f" — {period_text(d)}"
    # a long owner is cut, never the period
    owner = _cut(d.owner or NO_OWNER, max(HEADER_CHARS - len(head) - len(tail), 8))
    return _cut(head + owner + tail, HEADER_CHARS)


def _counts_text(d: OwnerDigest) -> str:
    head = f"*{d.total} new signal{'s' if d.total != 1 else ''}*" if d.total \
        else "*No new signals*"
    if d.withdrawn:
        head += f"\n_{d.withdrawn} more detected and withdrawn within the period: not counted_"
    return _fit(head, [f"• {kind.replace('_', ' ')}: {n}" for kind, n in d.counts])


def _fit(head: str, items: list[str], most: int | None = None,
         limit: int = SECTION_CHARS) -> str:
    """``head``, then as many ``items`` as ``most`` allows and fit in ``limit`` characters,
    then how many were left out."""
    text = head
    for shown, item in enumerate(items):
        left = len(items) - shown
        more = f"\n+{left} more"
        if (most is not None and shown >= most) or \
                len(text) + 1 + len(item) + (len(more) if left > 1 else 0) > limit:
            return text + more
        text += "\n" + item
    return text


def _account_line(entered: EnteredTier, account_url: str | None) -> str:
    name = _escape(_cut(entered.account_name or entered.account_id, NAME_CHARS))
    link = account_link(Account(entered.account_id), account_url)
    place = f"<{link}|{name}>" if link else name
    if len(place) > LINE_CHARS // 2:  # an unreasonably long link: the name alone
        place = name
    head = f"• {place}" + (f" (from {entered.previous_tier.replace('_', ' ')})"
                           if entered.previous_tier else "")
    reasons = _escape("; ".join(entered.reasons))
    return head + (f" — {_cut(reasons, LINE_CHARS - len(head) - 3)}" if reasons else "")


def _tier_text(title: str, entered: tuple[EnteredTier, ...], account_url: str | None) -> str:
    return _fit(f"*{title}* ({len(entered)})",
                [_account_line(e, account_url) for e in entered], most=SHOWN_ACCOUNTS)


def digest_slack_message(d: OwnerDigest, name: str, account_url: str | None) -> dict[str, Any]:
    """A Slack incoming-webhook message (Block Kit): the period, the new signals by type, the
    accounts that entered at_risk and expansion_ready with their reasons (the first ten of
    each, then how many more), each linked to the CRM when ``account_url`` is set."""
    header = _header(d)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _counts_text(d)}},
    ]
    for title, entered in (("Entered at risk", d.entered_at_risk),
                           ("Entered expansion ready", d.entered_expansion_ready)):
        if entered:
            blocks.append({"type": "section", "text": {
                "type": "mrkdwn", "text": _tier_text(title, entered, account_url)}})
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(
        f"digest `{_escape(name)}` · times in {d.timezone}", SECTION_CHARS)}]})
    fallback = (f"{header}: {d.total} new signal{'s' if d.total != 1 else ''}, "
                f"{len(d.entered_at_risk)} entered at risk, "
                f"{len(d.entered_expansion_ready)} entered expansion ready")
    return {"text": fallback, "blocks": blocks}


def _entered_json(entered: EnteredTier, account_url: str | None) -> dict[str, Any]:
    return {"account_id": entered.account_id, "account_name": entered.account_name,
            "previous_tier": entered.previous_tier, "reasons": list(entered.reasons),
            "detected_at": entered.detected_at.isoformat(),
            "account_url": account_link(Account(entered.account_id), account_url)}


def digest_webhook_body(d: OwnerDigest, name: str, account_url: str | None) -> dict[str, Any]:
    """The JSON a generic webhook receives: the whole digest, no account left out (a program
    reads it, not a person); times in UTC, the digest's time zone named."""
    return {
        "kind": "digest",
        "digest": name,
        "owner": d.owner,
        "period_start": d.start.isoformat(),
        "period_end": d.end.isoformat(),
        "timezone": d.timezone,
        "total": d.total,
        "withdrawn": d.withdrawn,
        "counts": dict(d.counts),
        "entered_at_risk": [_entered_json(e, account_url) for e in d.entered_at_risk],
        "entered_expansion_ready": [_entered_json(e, account_url)
                                    for e in d.entered_expansion_ready],
    }
