"""``radar simulate`` (SPEC sections 6-7): a seeded ABM world that is deterministic, valid
against the event contract, noisy the way real feeds are, and honest about its labels."""

from __future__ import annotations

import json
import tracemalloc
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from processors.rules import DEFAULT_RULES
from schemas.decode import ErrorClass, Rejection, decode_event
from schemas.events import EVENT_TYPES, AccountProfile, InputEvent, RoleChange
from schemas.labels import LABEL, ChampionLeftLabel, ChurnLabel, ExpansionLabel
from streams.cli import main
from tools.simulate import SimulationSummary, default_labels_path, simulate
from tools.simulation import SimConfig, Simulation

MAX_BYTES = 1 << 20


@dataclass
class Written:
    summary: SimulationSummary
    lines: list[str]
    labels: list[dict[str, Any]]

    def events(self) -> list[InputEvent]:
        decoded = [decode_event(line.encode(), MAX_BYTES) for line in self.lines]
        return [e for e in decoded if not isinstance(e, Rejection)]


def write(directory: Path, **kwargs: Any) -> Written:
    summary = simulate(directory / "world.jsonl", **kwargs)
    lines = summary.events_path.read_text(encoding="utf-8").splitlines()
    labels = [json.loads(x) for x in summary.labels_path.read_text(encoding="utf-8").splitlines()]
    return Written(summary, lines, labels)


@pytest.fixture(scope="module")
def reduced(tmp_path_factory: pytest.TempPathFactory) -> Written:
    """The world CI's demo test uses: 20 accounts, 120 days, the default seed."""
    return write(tmp_path_factory.mktemp("reduced"), accounts=20, days=120)


def points(event: InputEvent) -> float:
    w = DEFAULT_RULES.weights
    if event.type == "ad_impression":
        return w.ad_click if event.clicked else 0.0
    if event.type == "outreach_reply":
        return float(getattr(w, event.reply_kind))
    if event.type == "content_interaction":
        return float(getattr(w, event.action))
    return 0.0


# -- determinism -------------------------------------------------------------------------------
def test_the_same_seed_writes_byte_identical_files(tmp_path: Path) -> None:
    args = {"accounts": 12, "days": 90, "seed": 3, "bad_rate": 0.01}
    first = simulate(tmp_path / "a" / "world.jsonl", **args)
    second = simulate(tmp_path / "b" / "world.jsonl", **args)
    assert first.lines > 1000
    assert first.events_path.read_bytes() == second.events_path.read_bytes()
    assert first.labels_path.read_bytes() == second.labels_path.read_bytes()


def test_different_seeds_give_different_worlds(tmp_path: Path) -> None:
    one = simulate(tmp_path / "one.jsonl", accounts=12, days=90, seed=3)
    other = simulate(tmp_path / "other.jsonl", accounts=12, days=90, seed=4)
    assert one.events_path.read_bytes() != other.events_path.read_bytes()
    assert one.labels_path.read_bytes() != other.labels_path.read_bytes()


def test_an_account_behaves_the_same_whatever_else_is_in_the_world(tmp_path: Path) -> None:
    """Per-account random streams: adding accounts does not change the existing ones."""
    small = write(tmp_path / "small", accounts=10, days=60, seed=5)
    large = write(tmp_path / "large", accounts=14, days=60, seed=5)

    def of(world: Written, account: str) -> list[str]:
        # the same lines; a late one may land elsewhere, the late draw is world-wide noise
        return sorted(x for x in world.lines if f'"account_id":"{account}"' in x)

    # the shuffled trajectory deck differs, so compare the forced accounts (same scenario)
    for account in ("acct-00000", "acct-00003", "acct-00005"):
        assert of(small, account) == of(large, account)


# -- the event contract ------------------------------------------------------------------------
def test_every_line_is_a_valid_event_when_the_bad_rate_is_zero(reduced: Written) -> None:
    decoded = [decode_event(line.encode(), MAX_BYTES) for line in reduced.lines]
    refused = [(i, d) for i, d in enumerate(decoded) if isinstance(d, Rejection)]
    assert refused == []
    events = reduced.events()
    assert {e.type for e in events} == set(EVENT_TYPES)
    assert len({e.event_id for e in events}) == len(events)  # ids are unique
    assert all(json.loads(x)["occurred_at"].endswith(("Z", "+00:00")) for x in reduced.lines)
    assert reduced.summary.events == reduced.summary.lines == len(reduced.lines)
    assert reduced.summary.bad_lines == 0
    assert reduced.summary.per_type == dict(sorted(Counter(e.type for e in events).items()))


def test_bad_lines_are_refused_by_the_decoder_and_counted(tmp_path: Path) -> None:
    clean = write(tmp_path / "clean", accounts=10, days=60, seed=11)
    noisy = write(tmp_path / "noisy", accounts=10, days=60, seed=11, bad_rate=0.05)
    decoded = [decode_event(line.encode(), MAX_BYTES) for line in noisy.lines]
    refused = [d for d in decoded if isinstance(d, Rejection)]
    s = noisy.summary
    assert len(refused) == s.bad_lines == sum(s.bad_kinds.values())
    assert 0.03 * s.lines < s.bad_lines < 0.07 * s.lines
    assert len(decoded) - len(refused) == s.events
    assert {r.error_class for r in refused} == {
        ErrorClass.MALFORMED_JSON, ErrorClass.NAIVE_TIMESTAMP, ErrorClass.UNKNOWN_TYPE,
        ErrorClass.UNKNOWN_SCHEMA_VERSION, ErrorClass.SCHEMA_VIOLATION}
    # the ground truth is never broken: every role change and profile is still there
    def truth(world: Written) -> set[str]:
        return {e.event_id for e in world.events()
                if e.type in ("role_change", "account_profile")}
    assert truth(noisy) == truth(clean)
    assert noisy.labels == clean.labels


def test_events_come_in_event_time_order_except_a_few_late_ones(tmp_path: Path) -> None:
    world = write(tmp_path, accounts=60, days=120, seed=2)
    latest = datetime.min.replace(tzinfo=UTC)
    late: list[InputEvent] = []
    for e in world.events():
        if e.occurred_at < latest:
            late.append(e)
        latest = max(latest, e.occurred_at)
    assert 0.001 * len(world.lines) < len(late) < 0.01 * len(world.lines)
    assert {e.type for e in late} <= {"ad_impression", "outreach_reply", "content_interaction"}
    assert world.summary.late_events >= len(late)


# -- the world ---------------------------------------------------------------------------------
def test_the_default_mix_is_60_20_20_with_committees_of_3_to_13() -> None:
    sim = Simulation(SimConfig())  # planning only: no day is simulated
    accounts = [x for x in sim.header_labels() if x["kind"] == "account"]
    assert Counter(a["trajectory"] for a in accounts) == {
        "healthy": 120, "churning": 40, "expanding": 40}
    tiers = Counter(a["tier"] for a in accounts)
    assert set(tiers) == {1, 2, 3} and tiers[1] >= 20
    assert all(3 <= len(life.plan.people) <= 13 for life in sim.lives)


def test_the_roster_is_known_from_the_start(reduced: Written) -> None:
    first_day: dict[str, list[RoleChange]] = defaultdict(list)
    profiles: set[str] = set()
    start = datetime.fromisoformat(reduced.labels[0]["start"])
    for e in reduced.events():
        if e.occurred_at >= start + timedelta(days=1):
            break
        if isinstance(e, RoleChange) and e.change == "joined":
            first_day[e.account_id].append(e)
        if isinstance(e, AccountProfile):
            profiles.add(e.account_id)
    assert len(first_day) == len(profiles) == 20
    for joined in first_day.values():
        assert 3 <= len(joined) <= 13
        assert len({j.function for j in joined}) >= 2


# -- labels ------------------------------------------------------------------------------------
def test_labels_follow_the_contract(reduced: Written) -> None:
    parsed = [LABEL.validate_python(x) for x in reduced.labels]
    world = parsed[0]
    assert world.kind == "world"
    assert (world.seed, world.accounts, world.days) == (7, 20, 120)
    assert world.end - world.start == timedelta(days=120)
    accounts = [x for x in parsed if x.kind == "account"]
    assert len({a.account_id for a in accounts}) == len(accounts) == 20
    kinds = Counter(x.kind for x in parsed)
    assert kinds["churn"] >= 1 and kinds["expansion"] >= 1 and kinds["champion_left"] >= 1
    s = reduced.summary
    assert (s.churned, s.expanded, s.champion_departures) == (
        kinds["churn"], kinds["expansion"], kinds["champion_left"])
    assert all(world.start <= x.at < world.end for x in parsed
               if isinstance(x, ChurnLabel | ExpansionLabel | ChampionLeftLabel))


def test_labels_go_next_to_the_events_by_default(tmp_path: Path) -> None:
    assert default_labels_path(tmp_path / "w.jsonl") == tmp_path / "w.labels.jsonl"
    summary = simulate(tmp_path / "w.jsonl", accounts=3, days=5, labels=tmp_path / "l.jsonl")
    assert summary.labels_path == tmp_path / "l.jsonl" and summary.labels_path.is_file()


def test_every_champion_left_label_is_a_champion_leaving_in_the_events(reduced: Written) -> None:
    """Champion per SPEC section 2: listed in the latest profile's champion_ids, or named
    champion by their latest role change. Every such departure is labelled, and only those."""
    profile_champions: dict[str, set[str]] = defaultdict(set)
    role: dict[tuple[str, str], str] = {}
    departures: set[tuple[str, str, datetime]] = set()
    for e in sorted(reduced.events(), key=lambda e: (e.occurred_at, e.event_id)):
        if isinstance(e, AccountProfile):
            profile_champions[e.account_id] = set(e.champion_ids)
        elif isinstance(e, RoleChange):
            key = (e.account_id, e.stakeholder_id)
            champion = role.get(key) == "champion" or e.buying_role == "champion" or \
                e.stakeholder_id in profile_champions[e.account_id]
            if e.change == "left" and champion:
                departures.add((e.account_id, e.stakeholder_id, e.occurred_at))
            role[key] = e.buying_role
    labelled = {(x["account_id"], x["stakeholder_id"], datetime.fromisoformat(x["at"]))
                for x in reduced.labels if x["kind"] == "champion_left"}
    assert labelled
    assert labelled == departures


def test_churned_accounts_go_silent_60_days_before_and_emit_nothing_after(
        reduced: Written) -> None:
    churns = {x["account_id"]: datetime.fromisoformat(x["at"])
              for x in reduced.labels if x["kind"] == "churn"}
    assert churns
    last_event: dict[str, datetime] = {}
    last_engaged: dict[str, datetime] = {}
    for e in reduced.events():
        last_event[e.account_id] = max(last_event.get(e.account_id, e.occurred_at), e.occurred_at)
        if points(e) > 0:
            last_engaged[e.account_id] = max(last_engaged.get(e.account_id, e.occurred_at),
                                             e.occurred_at)
    renewal: dict[str, date] = {}
    for e in sorted(reduced.events(), key=lambda e: (e.occurred_at, e.event_id)):
        if isinstance(e, AccountProfile):
            renewal[e.account_id] = e.renewal_date
    for account, churned_at in churns.items():
        assert churned_at.date() == renewal[account]  # the renewal it did not renew
        assert last_event[account] < churned_at
        assert churned_at - last_engaged[account] >= timedelta(days=60)


def test_an_expansion_is_an_arr_increase_in_the_crm(reduced: Written) -> None:
    expansions = [(x["account_id"], datetime.fromisoformat(x["at"]))
                  for x in reduced.labels if x["kind"] == "expansion"]
    assert expansions
    profiles: dict[str, list[AccountProfile]] = defaultdict(list)
    for e in reduced.events():
        if isinstance(e, AccountProfile):
            profiles[e.account_id].append(e)
    for account, at in expansions:
        before = [p for p in profiles[account] if p.occurred_at < at]
        closing = [p for p in profiles[account] if p.occurred_at == at]
        assert before and closing
        assert closing[0].arr > before[-1].arr


def test_every_account_has_one_owner_from_a_small_team_of_csms(reduced: Written) -> None:
    owners: dict[str, set[str | None]] = defaultdict(set)
    for e in reduced.events():
        if isinstance(e, AccountProfile):
            owners[e.account_id].add(e.owner)
    assert len(owners) == 20
    assert all(len(named) == 1 and None not in named for named in owners.values())
    team = Counter(next(iter(named)) for named in owners.values())
    assert 3 <= len(team) <= 6  # a few CSMs, each with a book of accounts
    assert all(str(owner).endswith("@example.com") for owner in team)


def test_owners_follow_the_seed_and_change_nothing_else(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Owners come from a stream of their own: the same seed gives the same owners, and the
    world without them is the world the same seed made before accounts had owners."""
    def owners(world: Written) -> dict[str, str | None]:
        return {e.account_id: e.owner for e in world.events() if isinstance(e, AccountProfile)}

    args = {"accounts": 12, "days": 60, "bad_rate": 0.01}
    with_owners = write(tmp_path / "a", seed=3, **args)
    assert owners(write(tmp_path / "b", seed=3, **args)) == owners(with_owners)
    assert owners(write(tmp_path / "c", seed=4, **args)) != owners(with_owners)

    monkeypatch.setattr("tools.simulation.plans.owner_of", lambda seed, account_id: None)
    without = write(tmp_path / "d", seed=3, **args)
    assert set(owners(without).values()) == {None}

    def unowned(line: str) -> str:
        try:
            fields = json.loads(line)
        except json.JSONDecodeError:
            return line  # a broken line: never a profile
        if isinstance(fields, dict) and fields.get("type") == "account_profile":
            fields.pop("owner", None)
            return json.dumps(fields, separators=(",", ":"))
        return line

    assert [unowned(x) for x in with_owners.lines] == without.lines
    assert with_owners.labels == without.labels


# -- the command -------------------------------------------------------------------------------
def test_radar_simulate_writes_both_files_and_a_one_line_summary(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "world.jsonl"
    code = main(["simulate", "--accounts", "4", "--days", "20", "--seed", "9", "--out", str(out),
                 "--bad-rate", "0.01", "--start", "2026-03-01", "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1
    assert "4 accounts over 20 days (seed 9)" in printed[0]
    assert str(out) in printed[0] and str(tmp_path / "world.labels.jsonl") in printed[0]
    world = json.loads((tmp_path / "world.labels.jsonl").read_text().splitlines()[0])
    assert world["start"].startswith("2026-03-01")
    assert out.read_text().count("\n") > 100


@pytest.mark.parametrize("bad", [["--bad-rate", "1.5"], ["--accounts", "0"], ["--days", "x"],
                                 ["--start", "01/03/2026"]])
def test_radar_simulate_refuses_bad_arguments(tmp_path: Path, bad: list[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", "--out", str(tmp_path / "w.jsonl"), *bad])
    assert exit_info.value.code == 2


def test_memory_does_not_grow_with_the_days_simulated() -> None:
    """Only per-account state is kept: four times the days, about the same peak memory."""
    def peak(days: int) -> int:
        tracemalloc.start()
        try:
            for _ in Simulation(SimConfig(accounts=60, days=days, seed=1)).days():
                pass
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    short, long = peak(30), peak(120)
    assert long < 1.5 * short
