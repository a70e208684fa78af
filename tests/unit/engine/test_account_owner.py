"""The account's owner in the CRM (``account_profile.owner``, SPEC section 2) is part of the
account's state like its name: the latest profile says who it is, and a state saved before
owners existed still loads."""

from __future__ import annotations

from typing import Any

from world import World, iso, on

from processors.state import AccountState
from streams.state_codec import StateJson


def profile(w: World, day: float, event_id: str, **fields: Any) -> None:
    w.apply({"event_id": event_id, "type": "account_profile", "schema_version": 1,
             "occurred_at": iso(day), "account_id": w.account_id, "name": "Acme",
             "sector": "industrial", "tier": 2, "renewal_date": on(365).isoformat(),
             "arr": 100_000.0, **fields})


def owner_of(w: World) -> str | None:
    assert w.state is not None
    return w.state.owner


def test_the_latest_profile_names_the_owner() -> None:
    w = World()
    profile(w, 0, "p1")
    assert owner_of(w) is None
    profile(w, 1, "p2", owner="ana@example.com")
    assert owner_of(w) == "ana@example.com"
    profile(w, 5, "p3", owner="bruno@example.com")  # the account changed hands
    assert owner_of(w) == "bruno@example.com"
    profile(w, 3, "p4", owner="ana@example.com")  # an older snapshot, arriving late
    assert owner_of(w) == "bruno@example.com"
    profile(w, 9, "p5")  # the CRM no longer names one
    assert owner_of(w) is None


def test_the_owner_survives_the_codec_and_a_state_saved_before_owners_loads() -> None:
    w = World()
    profile(w, 0, "p1", owner="ana@example.com")
    w.reply(1, "champ")
    assert w.state is not None
    codec = StateJson()
    saved = codec.loads(codec.dumps(w.state.to_dict()))
    assert saved["owner"] == "ana@example.com"
    assert AccountState.from_dict(saved) == w.state

    del saved["owner"]  # as a worker of the previous version wrote it to its changelog
    before = AccountState.from_dict(saved)
    assert before.owner is None
    assert before.name == "Acme" and before.stakeholders.keys() == w.state.stakeholders.keys()
