"""Condition signals fire when their condition starts to hold, not on every event while it does.

The episode is the day the condition began; once it stops holding, it may fire again later.
"""

from __future__ import annotations

from typing import Any

from processors.context import Context
from processors.state import AccountState
from schemas.signals import Severity, Signal

FIRED_KEPT_PER_KIND = 3


def already_fired(ctx: Context, kind: str, episode: str) -> bool:
    """Deadline signals fire once per episode (a silence, a gap, a renewal date)."""
    return fired(ctx.state, kind, episode)


def fired(state: AccountState, kind: str, episode: str) -> bool:
    """``already_fired`` for a deadline rule's ``due``, which has the state, not a context."""
    return f"{kind}:{episode}" in state.fired


def time_episode(t: float) -> str:
    """The episode of a deadline counted from a moment (the start of a silence or a gap)."""
    return f"{t:.3f}"


def mark_fired(ctx: Context, kind: str, episode: str) -> None:
    """Each deadline rule only ever asks about its current episode (the silence since the
    last engagement, the gap since the last exposure, the next renewal), so the memory of a
    kind is kept to its few latest episodes: the state does not grow for ever."""
    fired = ctx.state.fired
    prefix = f"{kind}:"
    mine = [i for i, key in enumerate(fired) if key.startswith(prefix)]
    for i in reversed(mine[:max(0, len(mine) - FIRED_KEPT_PER_KIND + 1)]):
        del fired[i]
    fired.append(f"{kind}:{episode}")


def entering(ctx: Context, kind: str, holds: bool) -> bool:
    """Whether the condition holds and was not holding before: only then can it fire, and
    only then is its evidence worth building. A condition that no longer holds is cleared."""
    if not holds:
        ctx.state.active.pop(kind, None)
        return False
    return kind not in ctx.state.active


def fire_on_entry(ctx: Context, kind: str, severity: Severity, holds: bool,
                  evidence: dict[str, Any], quiet_after_days: int = 0) -> Signal | None:
    """``quiet_after_days``: an entry this soon after the last one that fired is the same
    episode coming back (a ratio hovering at its threshold), so it fires nothing."""
    if not entering(ctx, kind, holds):
        return None
    active = ctx.state.active
    day, count = ctx.state.entries.get(kind, [ctx.today, 0])
    if count and ctx.today - day < quiet_after_days:
        active[kind] = f"{day}.quiet"
        return None
    count = count + 1 if day == ctx.today else 1
    ctx.state.entries[kind] = [ctx.today, count]
    episode = str(ctx.today) if count == 1 else f"{ctx.today}.{count}"
    active[kind] = episode
    return ctx.signal(kind, severity, episode, {**evidence, "figures": ctx.figures})
