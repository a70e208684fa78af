"""Per-account state the engine keeps in event time: roster, engagement, exposure, champions.

Times are UTC epoch seconds (floats) and days are whole UTC days since the epoch, so state is
cheap to copy into a changelog as JSON. Nothing here reads a clock: ``now`` is always given.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

DAY = 86_400.0
EPOCH_ORDINAL = 719_163  # date(1970, 1, 1).toordinal()
SCORE_DAYS_KEPT = 120  # the 90-day window and the prior 30 days, with room


def day_of(ts: float) -> int:
    return int(ts // DAY)


@dataclass(slots=True)
class StakeholderState:
    first_seen: float
    title: str | None = None
    function: str | None = None
    seniority: str | None = None
    buying_role: str | None = None
    on_roster: bool = True
    joined_at: float | None = None
    left_at: float | None = None
    last_engaged: float | None = None
    last_engaged_event: str | None = None
    last_exposed: float | None = None
    first_reached: float | None = None  # first exposure or engagement
    last_public: float | None = None
    # engagement points per day, kept for the longest window (trimmed as time passes)
    score_days: dict[int, float] = field(default_factory=dict)


@dataclass(slots=True)
class ChampionDeparture:
    stakeholder_id: str
    left_at: float
    event_id: str
    succession_checked: bool = False


@dataclass(slots=True)
class AccountState:
    account_id: str
    first_seen: float
    high_water: float
    name: str | None = None
    sector: str | None = None
    owner: str | None = None  # the CRM's owner of the account (a state saved before has none)
    tier_level: int | None = None
    renewal_day: int | None = None
    arr: float | None = None
    profile_champions: list[str] = field(default_factory=list)
    profile_at: float | None = None
    stakeholders: dict[str, StakeholderState] = field(default_factory=dict)
    score_days: dict[int, float] = field(default_factory=dict)
    last_engaged: float | None = None
    last_engaged_event: str | None = None
    last_exposed: float | None = None
    last_exposed_event: str | None = None
    recent_engagement_events: list[str] = field(default_factory=list)
    departures: list[ChampionDeparture] = field(default_factory=list)
    # condition signals currently holding: type -> episode key (fires again only after clearing)
    active: dict[str, str] = field(default_factory=dict)
    # type -> [day, entries that day]: a condition entered twice in a day is two episodes
    entries: dict[str, list[int]] = field(default_factory=dict)
    # deadline signals already fired: "type:episode" keys, so each episode fires once
    fired: list[str] = field(default_factory=list)
    # (type, severity, occurred_at) of churn signals, for the tier
    churn_history: list[tuple[str, str, float]] = field(default_factory=list)
    tier: str | None = None
    evaluated_day: int | None = None
    # the day conditions, tier and trimming were last judged: an event that changes neither
    # engagement nor roster nor profile, on a day already judged, skips them (the hot path)
    checked_day: int | None = None
    # [day, points of the 29 days before it, points of the 30 days before those]: the fixed
    # part of the drop/surge windows on that day (see Context.last_and_prior_30)
    window_base: list[float] = field(default_factory=list)
    late_ignored: int = 0
    # ids of events applied within the allowed lateness: a redelivered event is not counted
    # twice (anything older is beyond the lateness and changes nothing anyway)
    recent_ids: dict[str, float] = field(default_factory=dict)
    # the latest offset applied per source ("topic:partition"): a message read again at or
    # below it is a redelivery (counted apart from late events), not news
    applied_through: dict[str, int] = field(default_factory=dict)
    # deadline signals judged and waiting for the grace to pass before they go out, and those
    # out that a late event may still prove premature (until nothing older than them can be
    # accepted): {"at": occurred_at, "release": when it goes out, "signal": the signal as JSON}
    parked: list[dict[str, Any]] = field(default_factory=list)
    watched: list[dict[str, Any]] = field(default_factory=list)
    # not kept in the changelog (a cache, recomputed after a restart): the earliest event time
    # any deadline rule can fire at, so events and sweeps before it skip those rules
    deadline_due: float = field(default=0.0, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """What ``asdict`` gives, built directly (it runs for every changed account of every
        batch; ``asdict`` deep-copies generically and is several times slower)."""
        d = {name: getattr(self, name) for name in _ACCOUNT_SCALARS}
        d["profile_champions"] = list(self.profile_champions)
        d["stakeholders"] = {sid: {**{n: getattr(st, n) for n in _STAKEHOLDER_SCALARS},
                                   "score_days": dict(st.score_days)}
                             for sid, st in self.stakeholders.items()}
        d["score_days"] = dict(self.score_days)
        d["recent_engagement_events"] = list(self.recent_engagement_events)
        d["departures"] = [{n: getattr(x, n) for n in _DEPARTURE_FIELDS}
                           for x in self.departures]
        d["active"] = dict(self.active)
        d["entries"] = {k: list(v) for k, v in self.entries.items()}
        d["fired"] = list(self.fired)
        d["churn_history"] = [tuple(h) for h in self.churn_history]
        d["recent_ids"] = dict(self.recent_ids)
        d["applied_through"] = dict(self.applied_through)
        d["parked"] = list(self.parked)  # the records themselves are never changed
        d["watched"] = list(self.watched)
        d["window_base"] = list(self.window_base)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AccountState:
        d = dict(data)
        d["stakeholders"] = {k: StakeholderState(**{**v, "score_days": {
            int(day): pts for day, pts in v["score_days"].items()}})
            for k, v in d["stakeholders"].items()}
        d["score_days"] = {int(day): pts for day, pts in d["score_days"].items()}
        d["departures"] = [ChampionDeparture(**x) for x in d["departures"]]
        d["churn_history"] = [tuple(x) for x in d["churn_history"]]
        return cls(**d)

    # -- derived figures ----------------------------------------------------------------------
    def champions(self) -> set[str]:
        """Profile champions and stakeholders whose latest role says champion, still on roster."""
        ids = set(self.profile_champions)
        ids.update(s for s, st in self.stakeholders.items() if st.buying_role == "champion")
        return {s for s in ids if s not in self.stakeholders or self.stakeholders[s].on_roster}

    def is_champion(self, sid: str) -> bool:
        """``sid in champions()``, without building the set."""
        st = self.stakeholders.get(sid)
        if st is None:
            return sid in self.profile_champions
        return st.on_roster and (st.buying_role == "champion" or sid in self.profile_champions)

    def roster(self) -> list[str]:
        return [s for s, st in self.stakeholders.items() if st.on_roster]

    def engaged_since(self, since: float) -> list[str]:
        """Stakeholders on the roster who engaged after ``since`` (someone who left is no
        longer a thread into the account)."""
        return sorted(s for s, st in self.stakeholders.items()
                      if st.on_roster and st.last_engaged is not None and st.last_engaged > since)

    def exposed_since(self, since: float) -> list[str]:
        return sorted(s for s, st in self.stakeholders.items()
                      if st.on_roster and st.last_exposed is not None and st.last_exposed > since)


def window_points(score_days: dict[int, float], today: int, days: int, offset: int = 0) -> float:
    """Points in the ``days`` whole days ending ``offset`` days before ``today`` (inclusive)."""
    last = today - offset
    first = last - days + 1
    if len(score_days) <= days:
        return sum((pts for day, pts in score_days.items() if first <= day <= last), 0.0)
    get = score_days.get
    return sum((get(day, 0.0) for day in range(first, last + 1)), 0.0)


def trim_days(score_days: dict[int, float], today: int, keep: int) -> None:
    # days are mostly added in time order, so the oldest are at the front: they are dropped
    # from there (a late event's older day, further back, once the days before it are gone)
    cutoff = today - keep
    while score_days:
        first = next(iter(score_days))
        if first > cutoff:
            return
        del score_days[first]


_CONTAINERS = frozenset({"profile_champions", "stakeholders", "score_days",
                         "recent_engagement_events", "departures", "active", "entries", "fired",
                         "churn_history", "recent_ids", "window_base",
                         "applied_through", "parked", "watched"})
TRANSIENT = frozenset({"deadline_due"})
_ACCOUNT_SCALARS = tuple(f.name for f in fields(AccountState)
                         if f.name not in _CONTAINERS and f.name not in TRANSIENT)
_STAKEHOLDER_SCALARS = tuple(f.name for f in fields(StakeholderState) if f.name != "score_days")
_DEPARTURE_FIELDS = tuple(f.name for f in fields(ChampionDeparture))
