"""Each account's story, decided up front: trajectory, timing, champions, hires and departures.

Roughly 60% of accounts are healthy, 20% churning, 20% expanding. The first accounts follow
fixed scenarios (:data:`FORCED`) so that even a small world (20 accounts, 120 days) contains
every situation the signal rules look for; the rest are drawn at random.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tools.simulation.catalog import PROMOTION
from tools.simulation.world import (
    AccountPlan,
    AdMode,
    Expand,
    Join,
    Leave,
    NameChampion,
    Person,
    Renew,
    RoleMove,
    Trajectory,
    base_plan,
    new_person,
    owner_of,
    pick,
)

CHURN_SHARE = 0.2
EXPANSION_SHARE = 0.2
TIERS = (("1", 0.2), ("2", 0.4), ("3", 0.4))
SUCCESSION_DAYS = 30  # a successor reached within this keeps the account champion-proof


@dataclass(frozen=True, slots=True)
class Scenario:
    """What is fixed about an account before the dice are rolled (None: drawn)."""

    trajectory: Trajectory
    tier: int | None = None
    ad_mode: AdMode | None = None
    # "none" | "left_unsucceeded" | "left_succeeded" | "promoted"
    champion_story: str | None = None
    single_threaded: bool | None = None
    new_executive: bool | None = None
    renewal_after: int | None = None  # the first renewal comes no earlier than this day


FORCED: tuple[Scenario, ...] = (
    # a champion leaves and nobody new is reached; engagement decays, silence, no renewal
    Scenario("churning", tier=2, ad_mode="renewal", champion_story="left_unsucceeded",
             single_threaded=False),
    # tier 1 advertised only around its renewal, months away: a > 30 day continuity gap
    Scenario("healthy", tier=1, ad_mode="renewal", champion_story="none", single_threaded=False,
             renewal_after=125),
    # only the champion ever engages
    Scenario("healthy", tier=2, ad_mode="continuous", champion_story="none", single_threaded=True),
    # the committee warms up: surge, new CFO, public champion, pricing page, expansion
    Scenario("expanding", tier=1, ad_mode="continuous", champion_story="none",
             single_threaded=False, new_executive=True),
    # the champion is promoted: the relationship must be re-won
    Scenario("healthy", tier=2, ad_mode="continuous", champion_story="promoted",
             single_threaded=False),
    # a champion leaves, a successor joins and is reached within days: champion-proof
    Scenario("healthy", tier=1, ad_mode="continuous", champion_story="left_succeeded",
             single_threaded=False),
    # plain decay into silence before a renewal it does not renew
    Scenario("churning", tier=3, champion_story="none", single_threaded=False),
    Scenario("expanding", tier=2, champion_story="promoted", single_threaded=False),
)


def scenarios(accounts: int, rng: random.Random) -> list[Scenario]:
    """One scenario per account: the forced ones first, then a shuffled deck for the mix."""
    forced = list(FORCED[:accounts])
    rest = accounts - len(forced)
    churning = max(0, round(CHURN_SHARE * accounts)
                   - sum(s.trajectory == "churning" for s in forced))
    expanding = max(0, round(EXPANSION_SHARE * accounts)
                    - sum(s.trajectory == "expanding" for s in forced))
    churning = min(churning, rest)
    expanding = min(expanding, rest - churning)
    deck = ["churning"] * churning + ["expanding"] * expanding
    deck += ["healthy"] * (rest - len(deck))
    rng.shuffle(deck)
    return forced + [Scenario(t) for t in deck]


def account_rng(seed: int, index: int) -> random.Random:
    """Each account draws from its own stream: what it does never depends on the others."""
    return random.Random(f"radar-simulate:{seed}:account:{index}")


def plan_account(index: int, seed: int, days: int, scenario: Scenario) -> AccountPlan:
    rng = account_rng(seed, index)
    tier = scenario.tier or int(pick(rng, TIERS))
    plan = base_plan(index, rng, tier, scenario.trajectory, scenario.ad_mode)
    plan.owner = owner_of(seed, plan.account_id)
    if scenario.renewal_after is not None:
        plan.renewal_day = rng.randint(scenario.renewal_after, scenario.renewal_after + 250)
    single = scenario.single_threaded
    if single is None:
        single = rng.random() < {"healthy": 0.08, "churning": 0.15, "expanding": 0.0}[
            scenario.trajectory]
    if single:
        _single_threaded(plan)
    story = scenario.champion_story or _draw_champion_story(rng, scenario.trajectory)

    if scenario.trajectory == "churning":
        _churning(plan, rng, days)
    elif scenario.trajectory == "expanding":
        new_exec = scenario.new_executive
        _expanding(plan, rng, days, rng.random() < 0.7 if new_exec is None else new_exec)
    if plan.churn_day is None:
        _renewals(plan, rng, days, single)
    _turnover(plan, rng, days, single)
    _champion_story(plan, rng, days, story)
    if plan.ad_mode == "continuous" and days > 60 and rng.random() < 0.1:
        start = rng.randint(10, days - 40)
        plan.ad_pause = (start, start + rng.randint(35, 60))  # a budget freeze
    return plan


# -- trajectories ------------------------------------------------------------------------------
def _churning(plan: AccountPlan, rng: random.Random, days: int) -> None:
    """Fewer people, then silence for 60+ days, then a renewal it does not renew."""
    churn = rng.randint(95, max(95, days - 2))
    silence = churn - rng.randint(62, max(62, min(85, churn - 40)))
    decay = max(3, silence - rng.randint(15, 40))
    plan.churn_day, plan.silence_start, plan.decay_start = churn, silence, decay
    plan.renewal_day = churn
    for p in plan.people:
        if p.buying_role != "champion" and p.sid not in plan.profile_champions:
            p.disengage_day = rng.randint(decay, max(decay, silence - 1))


def _expanding(plan: AccountPlan, rng: random.Random, days: int, new_executive: bool) -> None:
    """More people in more functions, a public champion, the pricing page, then more ARR."""
    expansion = rng.randint(80, max(80, days - 3))
    growth = max(15, expansion - rng.randint(40, 75))
    plan.expansion_day, plan.growth_start = expansion, growth
    plan.at(expansion, Expand(round(rng.uniform(1.2, 1.8), 2)))
    for p in plan.people:
        if p.affinity == 0 and rng.random() < 0.6:
            p.activate_day = rng.randint(growth, expansion - 5)
            p.activated_affinity = round(rng.uniform(0.03, 0.07), 4)
    buyers = [p.sid for p in plan.people if p.buying_role in ("champion", "economic_buyer")
              or p.sid in plan.profile_champions]
    if new_executive:
        joined = max(1, growth - rng.randint(5, 40))
        function, seniority = rng.choice((("financial", "c_level"), ("operations", "vp")))
        hire = new_person(rng, plan.account_id, _next_number(plan), function, seniority,
                          "economic_buyer" if function == "financial" else "unknown", 0.0,
                          joined + rng.randint(3, 20), joined)
        hire.activate_day = max(hire.targeted_from or joined, growth + rng.randint(0, 15))
        hire.activated_affinity = round(rng.uniform(0.05, 0.08), 4)
        plan.at(joined, Join(hire))
        buyers.append(hire.sid)
    first = max(growth, expansion - 30)
    for _ in range(rng.randint(2, 4)):
        day = rng.randint(first, expansion - 1)
        plan.pricing_visits.setdefault(day, []).append(rng.choice(buyers))


def _renewals(plan: AccountPlan, rng: random.Random, days: int, single: bool) -> None:
    day = plan.renewal_day
    while day < days:
        plan.at(day, Renew())
        if rng.random() < 0.25 and day >= 10:  # a look at the price list before signing
            who = [p.sid for p in plan.people if p.buying_role == "champion"
                   or p.sid in plan.profile_champions
                   or (p.buying_role == "economic_buyer" and not single)]
            visit = rng.randint(max(0, day - 45), day - 5)
            plan.pricing_visits.setdefault(visit, []).append(rng.choice(who))
        day += 365


def _single_threaded(plan: AccountPlan) -> None:
    """Only the (first) champion engages; everyone else is exposure at most."""
    champions = [p for p in plan.people if p.buying_role == "champion"
                 or p.sid in plan.profile_champions]
    for p in plan.people:
        if p is champions[0]:
            continue
        p.affinity = 0.0
        if p in champions:  # one champion only: a single thread
            p.buying_role = "end_user"
            if p.sid in plan.profile_champions:
                plan.profile_champions.remove(p.sid)


# -- people coming and going -------------------------------------------------------------------
def _next_number(plan: AccountPlan) -> int:
    joins = sum(isinstance(m, Join) for ms in plan.moments.values() for m in ms)
    return len(plan.people) + joins


def _turnover(plan: AccountPlan, rng: random.Random, days: int, single: bool) -> None:
    """Ordinary departures with replacements, and new hires: a new CFO, a procurement lead.
    Some are never exposed to our ads; some are reached later and start engaging."""
    last = (plan.churn_day or days) - 1
    if last < 12:
        return
    for p in list(plan.people):
        if p.buying_role == "champion" or p.sid in plan.profile_champions:
            continue
        if rng.random() < 0.07 * days / 365:
            left = rng.randint(10, last)
            plan.at(left, Leave(p.sid))
            joined = left + rng.randint(15, 75)
            if joined <= last:  # the replacement, as engaged as the predecessor once reached
                engages = not single and plan.churn_day is None and rng.random() < 0.6
                _hire(plan, rng, joined, p.function, p.seniority, "unknown",
                      reach_in=rng.randint(5, 60) if rng.random() < 0.8 else None,
                      affinity=(p.affinity or rng.uniform(0.02, 0.05)) * rng.uniform(0.7, 1.2)
                      if engages else 0.0)
    if rng.random() < 0.3 * days / 365:
        joined = rng.randint(10, last)
        function, seniority, role = rng.choice((
            ("financial", "c_level", "economic_buyer"), ("procurement", "director", "sceptic"),
            ("operations", "vp", "unknown"), ("technical", "director", "technical_evaluator")))
        reached = rng.random() < 0.6
        engages = reached and not single and plan.churn_day is None and rng.random() < 0.5
        _hire(plan, rng, joined, function, seniority, role,
              reach_in=rng.randint(20, 120) if reached else None,
              affinity=rng.uniform(0.03, 0.06) if engages else 0.0)


def _hire(plan: AccountPlan, rng: random.Random, joined: int, function: str, seniority: str,
          role: str, reach_in: int | None, affinity: float) -> Person:
    reached = None if reach_in is None else joined + reach_in
    hire = new_person(rng, plan.account_id, _next_number(plan), function, seniority, role, 0.0,
                      reached, joined)
    if affinity > 0 and reached is not None:  # they engage only once we have reached them
        hire.activate_day = reached + rng.randint(3, 30)
        hire.activated_affinity = round(affinity, 4)
    plan.at(joined, Join(hire))
    return hire


# -- champions ---------------------------------------------------------------------------------
def _draw_champion_story(rng: random.Random, trajectory: Trajectory) -> str:
    if trajectory == "churning":
        return pick(rng, (("left_unsucceeded", 0.5), ("left_succeeded", 0.1), ("none", 0.4)))
    if trajectory == "expanding":
        return pick(rng, (("promoted", 0.15), ("left_succeeded", 0.05), ("none", 0.8)))
    return pick(rng, (("left_succeeded", 0.16), ("left_unsucceeded", 0.05), ("promoted", 0.12),
                      ("none", 0.67)))


def _champion_story(plan: AccountPlan, rng: random.Random, days: int, story: str) -> None:
    champions = [p for p in plan.people if p.buying_role == "champion"
                 or p.sid in plan.profile_champions]
    champion = champions[0]
    if story == "promoted" and days >= 40:
        day = rng.randint(20, days - 15)
        if plan.churn_day is not None:
            day = rng.randint(5, max(5, (plan.silence_start or 6) - 1))
        change = "promoted" if champion.seniority != "c_level" else "role_changed"
        plan.at(day, RoleMove(champion.sid, change, champion.function,
                              PROMOTION[champion.seniority], affinity_factor=0.7))
    if rng.random() < 0.05 and days >= 40:  # the economic buyer moves on internally
        for p in plan.people:
            if p.buying_role == "economic_buyer":
                plan.at(rng.randint(20, days - 15), RoleMove(p.sid, "role_changed", "executive",
                                                             p.seniority))
                break
    if not story.startswith("left") or days < 20:
        return
    if plan.churn_day is not None:
        left = rng.randint(plan.decay_start or 5, max(plan.decay_start or 5,
                                                      (plan.silence_start or 10) - 3))
    else:
        left = rng.randint(10, max(10, days - SUCCESSION_DAYS - 5))
    plan.at(left, Leave(champion.sid))
    if story == "left_succeeded":
        joined = left + rng.randint(2, 12)
        successor = new_person(rng, plan.account_id, _next_number(plan), champion.function,
                               champion.seniority, "unknown", 0.0, joined + rng.randint(0, 6),
                               joined)
        successor.reach_boost_until = (successor.targeted_from or joined) + 14
        successor.activate_day = (successor.targeted_from or joined) + rng.randint(5, 20)
        successor.activated_affinity = round(rng.uniform(0.06, 0.1), 4)
        if plan.churn_day is not None:
            successor.activated_affinity = 0.0  # the account is already walking away
        plan.at(joined, Join(successor))
        plan.at(successor.activate_day + rng.randint(15, 40), NameChampion(successor.sid))
        return
    # nobody who joins from now on is reached within the succession window
    deadline = left + SUCCESSION_DAYS
    if rng.random() < 0.6:
        joined = left + rng.randint(8, 40)
        _hire(plan, rng, joined, champion.function, champion.seniority, "unknown",
              reach_in=None if rng.random() < 0.4 else deadline - joined + rng.randint(5, 50),
              affinity=0.0 if plan.churn_day is not None else rng.uniform(0.03, 0.06))
    for moments in plan.moments.values():
        for m in moments:
            if isinstance(m, Join) and m.person.joined_day >= left:
                _not_before(m.person, deadline + 1 + rng.randint(0, 20))


def _not_before(person: Person, day: int) -> None:
    if person.targeted_from is not None and person.targeted_from < day:
        person.targeted_from = day
        person.reach_boost_until = -1
    if person.activate_day is not None and person.activate_day < day:
        person.activate_day = day + 3

