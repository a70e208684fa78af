"""Erasure in the engine's state: a forgotten person leaves no trace in the account's state, and
what the engine judges afterwards is what it judges for an account that never had them."""

from __future__ import annotations

from world import World

from processors.erasure import Erased, forget_stakeholders, subject_hash
from processors.state import AccountState


def erased(*sids: str) -> frozenset[str]:
    return frozenset(subject_hash("stakeholder", sid) for sid in sids)


def history(w: World, with_ana: bool) -> None:
    """Ana is a champion who engages, is reached by ads, and leaves; Bo stays."""
    w.profile(0, renewal_day=200, champion_ids=("ana", "bo") if with_ana else ("bo",))
    w.join(1, "bo", function="financial", seniority="vp")
    w.impression(2, "bo")
    w.reply(3, "bo", "reply")
    if with_ana:
        w.join(1, "ana", buying_role="champion")
        w.reply(4, "ana", "meeting_booked")
        w.content(5, "ana", "share", public=True)
        w.impression(6, "ana")
        w.leave(8, "ana")


def mentions(state: AccountState, sid: str) -> bool:
    return sid in repr(state.to_dict())


def test_a_forgotten_stakeholder_is_nowhere_in_the_state() -> None:
    w = World()
    history(w, with_ana=True)
    assert w.state is not None and mentions(w.state, "ana")

    assert forget_stakeholders(w.state, erased("ana")) == ["ana"]

    assert not mentions(w.state, "ana")
    assert [d.stakeholder_id for d in w.state.departures] == []


def test_the_state_after_forgetting_equals_the_state_without_the_person() -> None:
    with_ana, without = World(), World()
    history(with_ana, with_ana=True)
    history(without, with_ana=False)
    assert with_ana.state is not None and without.state is not None

    forget_stakeholders(with_ana.state, erased("ana"))

    a, b = with_ana.state, without.state
    assert a.stakeholders == b.stakeholders
    assert a.score_days == b.score_days
    assert a.profile_champions == b.profile_champions
    assert (a.last_engaged, a.last_exposed) == (b.last_engaged, b.last_exposed)
    assert a.champions() == b.champions()


def test_later_judgements_no_longer_see_the_person() -> None:
    """After the erasure, Ana's departure gives no succession signal, and the account is judged
    single-threaded as if only Bo had ever been there."""
    with_ana, without = World(), World()
    history(with_ana, with_ana=True)
    history(without, with_ana=False)
    assert with_ana.state is not None
    forget_stakeholders(with_ana.state, erased("ana"))
    with_ana.signals.clear()
    without.signals.clear()

    for w in (with_ana, without):
        w.join(20, "cy", function="technical")
        w.advance_to(120)

    assert sorted((s.type, s.occurred_at) for s in with_ana.signals) == \
        sorted((s.type, s.occurred_at) for s in without.signals)
    assert not any("ana" in repr(s.evidence) or s.stakeholder_id == "ana"
                   for s in with_ana.signals)


def test_forgetting_someone_not_there_changes_nothing() -> None:
    w = World()
    history(w, with_ana=False)
    assert w.state is not None
    before = w.state.to_dict()

    assert forget_stakeholders(w.state, erased("ana")) == []
    assert w.state.to_dict() == before


def test_erased_subjects_are_recognised_by_hash_only() -> None:
    subjects = Erased()
    assert subjects.add("stakeholder", subject_hash("stakeholder", "ana"))
    assert subjects.add("account", subject_hash("account", "acct-9"))
    assert not subjects.add("account", subject_hash("account", "acct-9"))

    assert subjects.covers("acct-1", "ana")
    assert subjects.covers("acct-9", None)
    assert subjects.covers("acct-9", "bo")
    assert not subjects.covers("acct-1", "bo")
    assert not subjects.covers("ana", None)  # an account named like the person is another
    assert "ana" not in repr(vars(subjects))
    assert not Erased()


def test_scrub_drops_events_of_erased_subjects_and_erased_champions_from_profiles() -> None:
    from processors.ingest import AcceptedEvent, RawMessage
    from schemas.events import INPUT_EVENT

    def accepted(n: int, **fields: object) -> AcceptedEvent:
        event = INPUT_EVENT.validate_python({
            "event_id": f"e{n}", "schema_version": 1, "occurred_at": "2026-01-05T09:00:00Z",
            **fields}, strict=False)
        return AcceptedEvent(event, RawMessage("t", 0, n, None, b""))

    reply = {"type": "outreach_reply", "sequence_id": "s", "channel": "email",
             "reply_kind": "reply"}
    batch = [
        accepted(1, account_id="acct-1", stakeholder_id="ana", **reply),
        accepted(2, account_id="acct-1", stakeholder_id="bo", **reply),
        accepted(3, account_id="acct-9", stakeholder_id="bo", **reply),
        accepted(4, type="account_profile", account_id="acct-1", name="A", sector="s", tier=1,
                 renewal_date="2026-09-01", arr=1.0, champion_ids=["ana", "bo"]),
    ]
    subjects = Erased()
    assert subjects.scrub(batch) == batch  # nothing erased: nothing changes
    subjects.add("stakeholder", subject_hash("stakeholder", "ana"))
    subjects.add("account", subject_hash("account", "acct-9"))

    kept = subjects.scrub(batch)

    assert [a.event.event_id for a in kept] == ["e2", "e4"]
    profile = kept[1].event
    assert getattr(profile, "champion_ids") == ["bo"]  # noqa: B009 - a union member's field
    assert kept[1].source is batch[3].source
