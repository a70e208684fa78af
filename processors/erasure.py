"""Erasure of a person or an account from the engine's state (SPEC section 12). Pure.

An erased subject is known afterwards only by a hash of its id (``subject_hash``): the erasure
record on Kafka and the receipt in ClickHouse keep nothing else. Events of an erased subject
that arrive later (a redelivery, an old file published again) are recognised by that hash and
dropped, so no later signal, state or evidence brings the subject back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from typing import Any, Literal

from processors.ingest import AcceptedEvent
from processors.state import AccountState
from schemas.events import AccountProfile
from schemas.signals import Signal

SubjectKind = Literal["stakeholder", "account"]
SUBJECT_KINDS: tuple[SubjectKind, ...] = ("stakeholder", "account")


def subject_hash(kind: SubjectKind, subject_id: str) -> str:
    """What is kept of an erased id: SHA-256 of kind and id (a stakeholder and an account of
    the same id are different subjects)."""
    return hashlib.sha256(f"{kind}\x00{subject_id}".encode()).hexdigest()


class Erased:
    """The hashes of every subject erased so far; one instance is shared by whoever checks
    events (decode and the engine's stage) and grows as erasures arrive."""

    def __init__(self) -> None:
        self.stakeholders: set[str] = set()
        self.accounts: set[str] = set()

    def __bool__(self) -> bool:
        return bool(self.stakeholders or self.accounts)

    def add(self, kind: SubjectKind, digest: str) -> bool:
        """Record an erasure; False when it was already known."""
        known = self.stakeholders if kind == "stakeholder" else self.accounts
        if digest in known:
            return False
        known.add(digest)
        return True

    def covers(self, account_id: str, stakeholder_id: str | None) -> bool:
        """Whether an event of this account and stakeholder belongs to an erased subject."""
        if self.account_erased(account_id):
            return True
        return bool(self.stakeholders and stakeholder_id is not None
                    and subject_hash("stakeholder", stakeholder_id) in self.stakeholders)

    def account_erased(self, account_id: str) -> bool:
        return bool(self.accounts) and subject_hash("account", account_id) in self.accounts

    def scrub(self, accepted: Sequence[AcceptedEvent]) -> list[AcceptedEvent]:
        """The events to keep: none of an erased subject, and no erased champion named on a
        profile (the rest of the profile stands)."""
        if not self:
            return list(accepted)
        kept = []
        for item in accepted:
            event = item.event
            if self.covers(event.account_id, getattr(event, "stakeholder_id", None)):
                continue
            if isinstance(event, AccountProfile) and self.stakeholders:
                champions = [c for c in event.champion_ids
                             if subject_hash("stakeholder", c) not in self.stakeholders]
                if len(champions) != len(event.champion_ids):
                    item = AcceptedEvent(event.model_copy(update={"champion_ids": champions}),
                                         item.source, item.t)
            kept.append(item)
        return kept


ERASED_MENTION = "[erased]"


def _scrub_mentions(value: Any, stakeholders: Collection[str]) -> Any:
    """``value`` (evidence: JSON-like) with every string that is an erased stakeholder's id
    replaced by ``[erased]``."""
    if isinstance(value, str):
        return ERASED_MENTION if subject_hash("stakeholder", value) in stakeholders else value
    if isinstance(value, list):
        return [_scrub_mentions(v, stakeholders) for v in value]
    if isinstance(value, dict):
        return {k: _scrub_mentions(v, stakeholders) for k, v in value.items()}
    return value


def scrub_signals(signals: Sequence[Signal], erased: Erased) -> list[Signal]:
    """The signals to store once subjects are erased (what ``sinks.erasure`` leaves of stored
    ones): none about an erased account or person, and an erased person merely mentioned in
    the evidence named ``[erased]``."""
    if not erased:
        return list(signals)
    kept = []
    for signal in signals:
        if erased.covers(signal.account_id, signal.stakeholder_id):
            continue
        if erased.stakeholders:
            evidence = _scrub_mentions(signal.evidence, erased.stakeholders)
            if evidence != signal.evidence:
                signal = signal.model_copy(update={"evidence": evidence})
        kept.append(signal)
    return kept


def scrub_state_row(row: dict[str, Any], erased: Erased) -> dict[str, Any] | None:
    """An ``account_state`` row (as the worker sends it) once subjects are erased: none for an
    erased account, and no erased person among its champions."""
    if erased.account_erased(str(row.get("account_id", ""))):
        return None
    champions = row.get("champions")
    if erased.stakeholders and isinstance(champions, list):
        kept = [c for c in champions
                if subject_hash("stakeholder", str(c)) not in erased.stakeholders]
        if len(kept) != len(champions):
            row = {**row, "champions": kept}
    return row


def forget_stakeholders(state: AccountState, erased: Collection[str]) -> list[str]:
    """Remove from ``state`` every stakeholder whose hash is in ``erased``: their own state,
    their points in the account's engagement, their place among the champions and departures,
    and the account's last engagement and exposure where they were theirs. Returns the ids
    removed (empty: the state is unchanged)."""
    mentioned = set(state.stakeholders) | set(state.profile_champions) | \
        {d.stakeholder_id for d in state.departures}
    gone = [sid for sid in mentioned if subject_hash("stakeholder", sid) in erased]
    for sid in gone:
        st = state.stakeholders.pop(sid, None)
        state.profile_champions = [c for c in state.profile_champions if c != sid]
        state.departures = [d for d in state.departures if d.stakeholder_id != sid]
        if st is None:
            continue
        for day, points in st.score_days.items():
            left = state.score_days.get(day, 0.0) - points
            if left > 1e-9:
                state.score_days[day] = left
            else:
                state.score_days.pop(day, None)
        if st.last_engaged_event is not None:
            state.recent_engagement_events = [e for e in state.recent_engagement_events
                                              if e != st.last_engaged_event]
    if gone:
        _recompute_last_touches(state)
        state.window_base.clear()  # the memo of the drop/surge windows summed their points
        state.deadline_due = 0.0  # judged again from the state as it is now
    return sorted(gone)


def _recompute_last_touches(state: AccountState) -> None:
    """The account's last engagement and exposure, from the stakeholders that remain (every
    engagement and exposure has a stakeholder). The exposure's event is not kept per
    stakeholder: it is unknown afterwards."""
    engaged = [(st.last_engaged, st.last_engaged_event) for st in state.stakeholders.values()
               if st.last_engaged is not None]
    state.last_engaged, state.last_engaged_event = max(engaged, default=(None, None),
                                                       key=lambda touch: touch[0] or 0.0)
    latest = max((st.last_exposed for st in state.stakeholders.values()
                  if st.last_exposed is not None), default=None)
    if latest != state.last_exposed:
        state.last_exposed, state.last_exposed_event = latest, None
