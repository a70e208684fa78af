"""One account living its plan, one day at a time: who is exposed, who engages, what changes.

Only the account's current state is kept (roster, profile, next engagement per person), never
its history. Engagement comes in sessions on a per-person rhythm (a steady reader reads about
weekly, not in random bursts), scaled by the trajectory: flat when healthy, decaying into
silence before a churn, growing before an expansion.
"""

from __future__ import annotations

import random
from datetime import date
from typing import Any

from tools.simulation.catalog import (
    AD_CHANNEL_WEIGHTS,
    AD_CHANNELS,
    GENERIC_TOPICS,
    REPLY_KINDS,
    TOPICS,
    WEBSITE_PAGES,
    title_of,
)
from tools.simulation.events import Day, Event, Ids, Label, midnight_iso
from tools.simulation.world import (
    AccountPlan,
    Expand,
    Join,
    Leave,
    Moment,
    NameChampion,
    Person,
    Renew,
    RoleMove,
)

REPLY_WEIGHTS_WARM = (0.45, 0.25, 0.08, 0.17, 0.05)
REPLY_WEIGHTS_COOLING = (0.3, 0.08, 0.02, 0.42, 0.18)
AD_COST_MICROS = {"linkedin": (15_000, 60_000), "meta": (3_000, 12_000),
                  "google": (4_000, 15_000), "programmatic": (1_000, 6_000)}
RENEWAL_AD_WINDOW = (90, 21)  # renewal-triggered ads: from 90 days before to 21 days after
BOOSTED_IMPRESSION_RATE = 0.5  # a new target is served more often for two weeks
EXTRA_RATE = 0.06  # a session with something more than the usual
EXTRAS = ("comment", "share", "save", "reply")
EXTRA_WEIGHTS = (30, 12, 18, 40)
ADVOCACY_PUBLIC_RATE = 0.35  # a champion's reactions while the account grows
ADVOCACY_SHARE_RATE = 0.25  # ... and how often they pass a post on
BRUSH_OFF_RATE = 0.004  # a passive target answers an outreach step with "not interested"


class AccountLife:
    def __init__(self, plan: AccountPlan, rng: random.Random, seed: int, start_day: int) -> None:
        self.plan = plan
        self.rng = rng
        self.ids = Ids(seed, plan.account_id)
        self.start_day = start_day  # date.toordinal() of day 0, for renewal dates
        self.roster: dict[str, Person] = {}
        self.champion_ids = list(plan.profile_champions)
        self.renewal_day = plan.renewal_day
        self.arr = plan.arr
        self.churned = False
        self.topics = TOPICS.get(plan.sector, GENERIC_TOPICS) + GENERIC_TOPICS
        self.slug = plan.sector.replace(" ", "-")

    # -- the day ---------------------------------------------------------------------------
    def live(self, day: Day, out: list[Event], labels: list[Label]) -> None:
        plan = self.plan
        if self.churned:
            return
        if plan.churn_day is not None and day.index >= plan.churn_day:
            self.churned = True  # the renewal it did not renew: from here on, nothing
            labels.append({"kind": "churn", "account_id": plan.account_id,
                           "at": midnight_iso(day.date)})
            return
        if day.index == 0:
            self._start(day, out)
        for moment in plan.moments.get(day.index, ()):
            self._moment(moment, day, out, labels)
        mult = self._multiplier(day.index) * plan.engagement_scale
        ads_on = self._ads_on(day.index)
        click_rate = plan.click_rate * self._click_factor(day.index)
        rng = self.rng
        for p in self.roster.values():
            affinity = self._affinity(p, day.index) * mult
            self._exposure(p, day, ads_on, click_rate if affinity > 0 else 0.0, out)
            if affinity <= 0:
                p.next_session = None
                if p.targeted_from is not None and rng.random() < BRUSH_OFF_RATE:
                    self._reply(p, day, rng.randint(7 * 3600, 18 * 3600), out, brush_off=True)
                continue
            gap = 1.0 / affinity
            if p.next_session is None:
                p.next_session = day.index + rng.random() * gap
            if day.index >= p.next_session:
                self._session(p, day, out)
                p.next_session = day.index + gap * rng.uniform(0.85, 1.15)
        for sid in plan.pricing_visits.get(day.index, ()):
            p_visit = self.roster.get(sid)
            if p_visit is not None:
                self._pricing_visit(p_visit, day, out)

    def _start(self, day: Day, out: list[Event]) -> None:
        """The CRM snapshot and the known roster, so the pipeline starts from what we know."""
        self._profile(day, 0, out)
        for i, p in enumerate(self.plan.people):
            self.roster[p.sid] = p
            self._role(p, "joined", day, 60 + i, out)

    # -- trajectory --------------------------------------------------------------------------
    def _multiplier(self, d: int) -> float:
        plan = self.plan
        if plan.trajectory == "churning" and plan.silence_start is not None:
            decay = plan.decay_start if plan.decay_start is not None else plan.silence_start
            if d >= plan.silence_start:
                return 0.0
            if d >= decay:
                return 1.0 - 0.85 * (d - decay) / max(1, plan.silence_start - decay)
            return 1.0
        if plan.trajectory == "expanding" and plan.growth_start is not None \
                and plan.expansion_day is not None:
            if d < plan.growth_start:
                return 1.0
            if d <= plan.expansion_day:
                return 1.0 + 1.5 * (d - plan.growth_start) / max(
                    1, plan.expansion_day - plan.growth_start)
            return max(1.3, 2.5 - 1.2 * (d - plan.expansion_day) / 90)
        return 1.0

    def _click_factor(self, d: int) -> float:
        plan = self.plan
        if plan.trajectory == "expanding" and plan.growth_start is not None \
                and d >= plan.growth_start:
            return 1.5  # previously passive people start clicking
        if plan.decay_start is not None and d >= plan.decay_start:
            return 0.5
        return 1.0

    @staticmethod
    def _affinity(p: Person, d: int) -> float:
        if p.disengage_day is not None and d >= p.disengage_day:
            return 0.0
        if p.activate_day is not None and d >= p.activate_day:
            return p.activated_affinity
        return p.affinity

    def _ads_on(self, d: int) -> bool:
        plan = self.plan
        if plan.ad_mode == "continuous":
            pause = plan.ad_pause
            return pause is None or not pause[0] <= d < pause[1]
        before, after = RENEWAL_AD_WINDOW
        # one window per yearly renewal, the previous year's included
        return (d - self.plan.renewal_day + before) % 365 <= before + after

    def _advocating(self, p: Person, d: int) -> bool:
        """A champion of a growing account starts sharing our thought leadership."""
        plan = self.plan
        return plan.growth_start is not None and plan.expansion_day is not None \
            and plan.growth_start <= d <= plan.expansion_day + 30 and self._is_champion(p)

    def _public_rate(self, p: Person, d: int) -> float:
        return ADVOCACY_PUBLIC_RATE if self._advocating(p, d) else p.public_rate

    def _is_champion(self, p: Person) -> bool:
        return p.on_roster and (p.buying_role == "champion" or p.sid in self.champion_ids)

    # -- touches -----------------------------------------------------------------------------
    def _exposure(self, p: Person, day: Day, ads_on: bool, click_rate: float,
                  out: list[Event]) -> None:
        if p.targeted_from is None or day.index < p.targeted_from:
            return
        rng = self.rng
        boosted = day.index <= p.reach_boost_until
        if boosted and day.index == p.targeted_from:
            pass  # added to the target list today: served at once
        elif boosted:
            if rng.random() >= BOOSTED_IMPRESSION_RATE:
                return
        elif not ads_on or rng.random() >= self.plan.impression_rate:
            return
        channel = rng.choices(AD_CHANNELS, AD_CHANNEL_WEIGHTS)[0]
        t, stamp = day.stamp(rng.randint(6 * 3600, 22 * 3600))
        plan = self.plan
        campaign = f"always-on-t{plan.tier}-{self.slug}" if plan.ad_mode == "continuous" \
            else f"renewal-push-t{plan.tier}-{self.slug}"
        if boosted:
            campaign = "new-stakeholder-welcome"
        eid = self.ids.next()
        fields: dict[str, Any] = {
            "event_id": eid, "type": "ad_impression", "schema_version": 1,
            "occurred_at": stamp, "account_id": plan.account_id, "stakeholder_id": p.sid,
            "campaign_id": campaign,
            "creative_id": f"cr-{day.index // 60:02d}{'ab'[rng.random() < 0.5]}",
            "channel": channel, "clicked": rng.random() < click_rate,
        }
        if channel != "programmatic" or rng.random() < 0.5:
            lo, hi = AD_COST_MICROS[channel]
            fields["cost_micros"] = rng.randint(lo, hi)
        out.append((t, eid, fields))

    def _content(self, p: Person, t: int, stamp: str, content_id: str, topic: str | None,
                 action: str, public: bool, out: list[Event]) -> None:
        eid = self.ids.next()
        fields: dict[str, Any] = {
            "event_id": eid, "type": "content_interaction", "schema_version": 1,
            "occurred_at": stamp, "account_id": self.plan.account_id, "stakeholder_id": p.sid,
            "content_id": content_id, "action": action,
        }
        if topic is not None:
            fields["topic"] = topic
        if public:
            fields["public"] = True
        out.append((t, eid, fields))

    def _session(self, p: Person, day: Day, out: list[Event]) -> None:
        """The person's usual touch (this week's post, or the website), now and then more."""
        rng = self.rng
        second = rng.randint(7 * 3600, 18 * 3600)
        week = day.index // 7
        topic = self.topics[week % len(self.topics)]
        content_id = f"post-w{week:03d}-{topic.replace(' ', '-')}"
        t, stamp = day.stamp(second)
        if p.habit == "website":
            self._content(p, t, stamp, f"web-{rng.choice(WEBSITE_PAGES)}", None,
                          "website_visit", False, out)
        else:
            self._content(p, t, stamp, content_id, topic, "view", False, out)
            if p.habit == "view_like":
                t, stamp = day.stamp(second + rng.randint(20, 600))
                public = rng.random() < self._public_rate(p, day.index)
                self._content(p, t, stamp, content_id, topic, "like", public, out)
        if self._advocating(p, day.index) and rng.random() < ADVOCACY_SHARE_RATE:
            t, stamp = day.stamp(second + rng.randint(20, 600))
            self._content(p, t, stamp, content_id, topic, rng.choice(("share", "comment")),
                          rng.random() < ADVOCACY_PUBLIC_RATE, out)
        if rng.random() < EXTRA_RATE:
            extra = rng.choices(EXTRAS, EXTRA_WEIGHTS)[0]
            second += rng.randint(700, 1800)
            if extra == "reply":
                self._reply(p, day, second, out)
            else:
                t, stamp = day.stamp(second)
                public = extra != "save" and rng.random() < self._public_rate(p, day.index)
                self._content(p, t, stamp, content_id, topic, extra, public, out)

    def _reply(self, p: Person, day: Day, second: int, out: list[Event],
               brush_off: bool = False) -> None:
        plan = self.plan
        rng = self.rng
        cooling = plan.decay_start is not None and day.index >= plan.decay_start
        if brush_off:  # someone who does not engage answers a sequence step: no engagement
            kind = "not_interested" if rng.random() < 0.75 else "unsubscribe"
        else:
            kind = rng.choices(REPLY_KINDS, REPLY_WEIGHTS_COOLING if cooling
                               else REPLY_WEIGHTS_WARM)[0]
        if p.joined_day >= 0 and day.index - p.joined_day < 120:
            sequence = "pc-new-stakeholder-intro"
        elif plan.expansion_day is not None and day.index <= plan.expansion_day:
            sequence = "pc-expansion"
        elif 0 <= self.renewal_day - day.index <= 90:
            sequence = "pc-renewal"
        else:
            sequence = f"pc-value-recap-q{day.index // 91 + 1}"
        t, stamp = day.stamp(second, "+00:00")
        eid = self.ids.next()
        out.append((t, eid, {
            "event_id": eid, "type": "outreach_reply", "schema_version": 1,
            "occurred_at": stamp, "account_id": plan.account_id, "stakeholder_id": p.sid,
            "sequence_id": sequence, "channel": "linkedin" if rng.random() < 0.7 else "email",
            "reply_kind": kind,
        }))

    def _pricing_visit(self, p: Person, day: Day, out: list[Event]) -> None:
        second = self.rng.randint(8 * 3600, 17 * 3600)
        if self.rng.random() < 0.5:
            t, stamp = day.stamp(second - 120)
            self._content(p, t, stamp, "web-/case-studies", None, "website_visit", False, out)
        t, stamp = day.stamp(second)
        self._content(p, t, stamp, "web-/pricing", None, "pricing_page_visit", False, out)

    # -- changes -----------------------------------------------------------------------------
    def _moment(self, moment: Moment, day: Day, out: list[Event], labels: list[Label]) -> None:
        second = 9 * 3600 + self.rng.randint(0, 3599)
        if isinstance(moment, Join):
            p = moment.person
            self.roster[p.sid] = p
            self._role(p, "joined", day, second, out)
        elif isinstance(moment, Leave):
            p_left = self.roster.get(moment.sid)
            if p_left is None or not p_left.on_roster:
                return
            was_champion = self._is_champion(p_left)
            t = self._role(p_left, "left", day, second, out)
            p_left.on_roster = False
            del self.roster[p_left.sid]
            if was_champion:
                labels.append({"kind": "champion_left", "account_id": self.plan.account_id,
                               "stakeholder_id": p_left.sid, "at": t})
            if p_left.sid in self.champion_ids:  # the CRM catches up that afternoon
                self.champion_ids.remove(p_left.sid)
                self._profile(day, second + 3 * 3600, out)
        elif isinstance(moment, RoleMove):
            p_moved = self.roster.get(moment.sid)
            if p_moved is None:
                return
            title = title_of(moment.function, moment.seniority)
            p_moved.title = title if title != p_moved.title else f"Group {title}"
            p_moved.function, p_moved.seniority = moment.function, moment.seniority
            p_moved.affinity = round(p_moved.affinity * moment.affinity_factor, 4)
            p_moved.activated_affinity = round(
                p_moved.activated_affinity * moment.affinity_factor, 4)
            self._role(p_moved, moment.change, day, second, out)
        elif isinstance(moment, NameChampion):
            if moment.sid in self.roster and moment.sid not in self.champion_ids:
                self.champion_ids.append(moment.sid)
                self._profile(day, 10 * 3600, out)
        elif isinstance(moment, Renew):
            self.renewal_day += 365
            self._profile(day, 12 * 3600, out)
        elif isinstance(moment, Expand):
            self.arr = round(self.arr * moment.factor, 2)
            t = self._profile(day, 14 * 3600, out)
            labels.append({"kind": "expansion", "account_id": self.plan.account_id, "at": t})

    def _role(self, p: Person, change: str, day: Day, second: int, out: list[Event]) -> str:
        t, stamp = day.stamp(second, "+00:00")
        eid = self.ids.next()
        out.append((t, eid, {
            "event_id": eid, "type": "role_change", "schema_version": 1, "occurred_at": stamp,
            "account_id": self.plan.account_id, "stakeholder_id": p.sid, "change": change,
            "title": p.title, "function": p.function, "seniority": p.seniority,
            "buying_role": p.buying_role,
        }))
        return stamp

    def _profile(self, day: Day, second: int, out: list[Event]) -> str:
        plan = self.plan
        t, stamp = day.stamp(second, "+00:00")
        eid = self.ids.next()
        renewal = date.fromordinal(self.start_day + self.renewal_day)
        profile: dict[str, Any] = {
            "event_id": eid, "type": "account_profile", "schema_version": 1,
            "occurred_at": stamp, "account_id": plan.account_id, "name": plan.name,
            "sector": plan.sector, "tier": plan.tier, "renewal_date": renewal.isoformat(),
            "arr": self.arr, "champion_ids": list(self.champion_ids),
        }
        if plan.owner is not None:
            profile["owner"] = plan.owner
        out.append((t, eid, profile))
        return stamp
