"""Who is in the world: accounts, their buying committees, and the moments planned for them.

An :class:`AccountPlan` is everything decided up front about one account (its profile, its
committee, its trajectory and the dated moments of its story); ``behaviour`` then lives it one
day at a time. Days are whole days from the simulation's start (day 0).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from tools.simulation.catalog import (
    ACCOUNT_OWNERS,
    NAME_ENDS,
    NAME_STARTS,
    NAME_SUFFIXES,
    SECTORS,
    title_of,
)

Trajectory = str  # "healthy" | "churning" | "expanding"
AdMode = str  # "continuous" (always on) | "renewal" (renewal-triggered)

COMMITTEE_SIZE: dict[int, tuple[int, int]] = {1: (6, 13), 2: (4, 9), 3: (3, 6)}
SECOND_CHAMPION: dict[int, float] = {1: 0.4, 2: 0.2, 3: 0.05}
# people are creatures of habit: most sessions of a person look alike, which keeps a steady
# account's month-on-month engagement steady
HABITS = (("view", 0.45), ("view_like", 0.35), ("website", 0.2))
CHAMPION_PUBLIC_RATE = 0.01  # a champion's reactions are rarely public, until they advocate
ENGAGEMENT_SCALE = 4.5  # sessions per day per unit of affinity
IMPRESSION_RATE: dict[int, tuple[float, float]] = {1: (0.25, 0.4), 2: (0.18, 0.32), 3: (0.14, 0.26)}
TARGETED_AT_START: dict[int, float] = {1: 1.0, 2: 0.85, 3: 0.7}
ALWAYS_ON: dict[int, float] = {1: 0.75, 2: 0.45, 3: 0.2}  # share of accounts advertised continuously
ARR_RANGE: dict[int, tuple[int, int]] = {
    1: (250_000, 1_200_000), 2: (60_000, 250_000), 3: (15_000, 60_000)}
# how a champion is recorded: in the CRM profile, on their role, or both (SPEC section 2)
CHAMPION_RECORDING = (("both", 0.6), ("profile", 0.2), ("role", 0.2))


@dataclass(slots=True)
class Person:
    sid: str
    function: str
    seniority: str
    title: str
    buying_role: str  # as their latest role_change says
    affinity: float  # engagement propensity (x the plan's engagement scale = sessions per day)
    targeted_from: int | None  # first day our ads are served to them; None = never
    joined_day: int  # -1: on the roster when the simulation starts
    public_rate: float  # chance that a like / comment / share of theirs is public
    habit: str  # what a session of theirs usually is: "view", "view_like" or "website"
    activate_day: int | None = None  # from this day on they engage at ``activated_affinity``
    activated_affinity: float = 0.0
    disengage_day: int | None = None  # stops engaging (churn decay)
    # running state, owned by behaviour
    on_roster: bool = True
    next_session: float | None = None
    reach_boost_until: int = -1  # new target: served more often for a while


# -- the dated moments of an account's story -----------------------------------------------------
@dataclass(frozen=True, slots=True)
class Join:
    person: Person


@dataclass(frozen=True, slots=True)
class Leave:
    sid: str


@dataclass(frozen=True, slots=True)
class RoleMove:
    """A promotion (``promoted``) or a move sideways (``role_changed``)."""

    sid: str
    change: str
    function: str
    seniority: str
    affinity_factor: float = 1.0


@dataclass(frozen=True, slots=True)
class NameChampion:
    """The CRM profile starts listing ``sid`` among the champions."""

    sid: str


@dataclass(frozen=True, slots=True)
class Renew:
    """A renewal closes: the profile's renewal date rolls forward a year."""


@dataclass(frozen=True, slots=True)
class Expand:
    """An expansion closes: ARR grows by ``factor``."""

    factor: float


Moment = Join | Leave | RoleMove | NameChampion | Renew | Expand


@dataclass(slots=True)
class AccountPlan:
    index: int
    account_id: str
    name: str
    sector: str
    tier: int
    arr: float
    trajectory: Trajectory
    ad_mode: AdMode
    renewal_day: int  # the first renewal (day index; may lie beyond the horizon)
    people: list[Person]  # the roster at the start
    profile_champions: list[str]
    impression_rate: float  # chance per targeted person per advertising day
    engagement_scale: float  # sessions per day per unit of affinity
    click_rate: float
    # trajectory timing (day indexes)
    churn_day: int | None = None  # the renewal it does not renew: nothing from that day on
    decay_start: int | None = None
    silence_start: int | None = None
    growth_start: int | None = None
    expansion_day: int | None = None
    ad_pause: tuple[int, int] | None = None  # always-on advertising paused [from, to)
    owner: str | None = None  # the CSM who owns it in the CRM (see owner_of)
    moments: dict[int, list[Moment]] = field(default_factory=dict)
    pricing_visits: dict[int, list[str]] = field(default_factory=dict)  # day -> stakeholders

    def at(self, day: int, moment: Moment) -> None:
        self.moments.setdefault(day, []).append(moment)


def account_id_of(index: int) -> str:
    return f"acct-{index:05d}"


def owner_of(seed: int, account_id: str) -> str:
    """The account's owner: drawn from a stream of its own, so giving accounts owners changed
    nothing else the same seed makes."""
    return random.Random(f"radar-simulate:{seed}:owner:{account_id}").choice(ACCOUNT_OWNERS)


def company_name(rng: random.Random) -> str:
    return f"{rng.choice(NAME_STARTS)}{rng.choice(NAME_ENDS)} {rng.choice(NAME_SUFFIXES)}"


def pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    r = rng.random()
    for value, weight in weighted:
        r -= weight
        if r < 0:
            return value
    return weighted[-1][0]


def new_person(rng: random.Random, account_id: str, number: int, function: str, seniority: str,
               buying_role: str, affinity: float, targeted_from: int | None,
               joined_day: int) -> Person:
    return Person(
        sid=f"{account_id}-p{number:02d}", function=function, seniority=seniority,
        title=title_of(function, seniority), buying_role=buying_role, affinity=affinity,
        targeted_from=targeted_from, joined_day=joined_day,
        public_rate=CHAMPION_PUBLIC_RATE if buying_role == "champion" else 0.1,
        habit=pick(rng, HABITS),
    )


def committee(rng: random.Random, account_id: str, tier: int) -> tuple[list[Person], list[str]]:
    """The buying committee at the start, and the champions the CRM profile lists."""
    lo, hi = COMMITTEE_SIZE[tier]
    size = rng.randint(lo, hi)
    people: list[Person] = []

    def add(function: str, seniority: str, role: str, affinity: float) -> Person:
        targeted = 0 if role == "champion" or rng.random() < TARGETED_AT_START[tier] else None
        p = new_person(rng, account_id, len(people), function, seniority, role,
                       round(affinity, 4), targeted, -1)
        people.append(p)
        return p

    champions = [add(pick(rng, (("commercial", 0.5), ("operations", 0.2), ("technical", 0.2),
                                ("financial", 0.1))),
                     rng.choice(("vp", "director", "director", "manager")), "champion",
                     rng.uniform(0.10, 0.18))]
    if rng.random() < SECOND_CHAMPION[tier] and size >= 4:
        champions.append(add(rng.choice(("technical", "operations", "commercial")),
                             rng.choice(("director", "manager")), "champion",
                             rng.uniform(0.07, 0.12)))
    if rng.random() < 0.6:
        add("financial", rng.choice(("c_level", "vp")), "economic_buyer", rng.uniform(0.02, 0.05))
    else:
        add("executive", "c_level", "economic_buyer", rng.uniform(0.02, 0.04))
    if len(people) < size:
        add("technical", rng.choice(("director", "manager")), "technical_evaluator",
            rng.uniform(0.03, 0.07))
    if len(people) < size and size >= 5 and rng.random() < 0.5:
        add(rng.choice(("procurement", "technical")), "manager", "sceptic", rng.uniform(0.0, 0.02))
    while len(people) < size:
        function = rng.choice(("operations", "commercial", "technical", "other", "procurement",
                               "operations", "commercial"))
        seniority = rng.choice(("director", "manager", "manager", "individual", "individual"))
        passive = rng.random() < 0.35
        add(function, seniority, rng.choice(("end_user", "end_user", "unknown")),
            0.0 if passive else rng.uniform(0.02, 0.06))

    rng.shuffle(people)  # ids are opaque: the first person is not always the champion
    for number, p in enumerate(people):
        p.sid = f"{account_id}-p{number:02d}"
    recording = pick(rng, CHAMPION_RECORDING)
    listed = [c.sid for c in champions] if recording in ("both", "profile") else []
    if recording == "profile":
        for c in champions:  # their role says nothing; only the CRM knows
            c.buying_role = "unknown"
    for c in champions:
        c.public_rate = CHAMPION_PUBLIC_RATE
    return people, listed


def base_plan(index: int, rng: random.Random, tier: int, trajectory: Trajectory,
              ad_mode: AdMode | None) -> AccountPlan:
    account_id = account_id_of(index)
    people, listed = committee(rng, account_id, tier)
    if ad_mode is None:
        ad_mode = "continuous" if rng.random() < ALWAYS_ON[tier] else "renewal"
    lo, hi = ARR_RANGE[tier]
    return AccountPlan(
        index=index, account_id=account_id, name=company_name(rng), sector=rng.choice(SECTORS),
        tier=tier, arr=float(rng.randrange(lo, hi, 500)), trajectory=trajectory,
        ad_mode=ad_mode, renewal_day=rng.randint(15, 380), people=people,
        profile_champions=listed,
        impression_rate=rng.uniform(*IMPRESSION_RATE[tier]),
        click_rate=rng.uniform(0.02, 0.05), engagement_scale=ENGAGEMENT_SCALE,
    )
