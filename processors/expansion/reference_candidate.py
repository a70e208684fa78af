"""Broadly engaged and a champion speaking up in public: ask for a reference or case study."""

from __future__ import annotations

from processors.conditions import entering, fire_on_entry
from processors.context import Context
from processors.state import DAY
from schemas.events import AccountProfile, RoleChange
from schemas.signals import Signal


def moved_by(ctx: Context) -> bool:
    """Someone newly engaged, a public act, or a change of who the champions are."""
    return isinstance(ctx.event, (RoleChange, AccountProfile)) or ctx.touch.public or \
        ctx.newly_engaged(ctx.rules.expansion.reference_candidate.window_days)


def check(ctx: Context) -> Signal | None:
    r = ctx.rules.expansion.reference_candidate
    s = ctx.state
    engaged = ctx.engaged(r.window_days)
    public_since = ctx.now - r.champion_public_days * DAY
    public_champions = sorted(c for c in ctx.champions if c in s.stakeholders and (
        (p := s.stakeholders[c].last_public) is not None and p > public_since))
    holds = len(engaged) >= r.min_engaged and bool(public_champions)
    if not entering(ctx, "reference_candidate", holds):
        return None
    return fire_on_entry(ctx, "reference_candidate", "medium", holds, {
        "engaged_stakeholders": engaged, "public_champions": public_champions,
        "window_days": r.window_days, "threshold_min_engaged": r.min_engaged,
        "champion_public_days": r.champion_public_days})
