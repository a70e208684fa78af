"""Implausible event times are bad input: an event dated before ``RADAR_EARLIEST_EVENT_TIME`` or
more than ``RADAR_MAX_FUTURE_SECONDS`` ahead of the wall clock at decode is a dead letter of
class ``implausible_time``, whatever UTC offset it is written with."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from conftest import build_event, encode

from processors.ingest import IngestBatch, RawMessage, ingest
from schemas.decode import ErrorClass, EventTimeBounds, check_event_time
from schemas.topics import TopicNames
from streams.metrics import Metrics
from streams.pipeline import IngestPipeline
from streams.settings import load_settings

TOPICS = TopicNames("radar")
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
BOUNDS = EventTimeBounds(EARLIEST, NOW, 86_400)


def reply_at(occurred_at: str, offset: int = 1) -> RawMessage:
    raw = encode(build_event("outreach_reply", event_id=f"e-{offset}", occurred_at=occurred_at))
    return RawMessage("radar.outreach-replies", 2, offset, b"acct-1", raw)


def run(*messages: RawMessage, bounds: EventTimeBounds = BOUNDS) -> IngestBatch:
    return ingest(messages, max_bytes=4096, topic_for_type=TOPICS.for_type, time_bounds=bounds)


def verdict(occurred_at: str, bounds: EventTimeBounds = BOUNDS) -> str:
    batch = run(reply_at(occurred_at), bounds=bounds)
    assert len(batch.accepted) + len(batch.rejected) == 1
    return "accepted" if batch.accepted else batch.rejected[0].error_class


@pytest.mark.parametrize(("occurred_at", "expected"), [
    ("2000-01-01T00:00:00Z", "accepted"),  # the earliest plausible time itself
    ("1999-12-31T23:59:59.999999Z", "implausible_time"),
    ("2000-01-01T01:00:00+01:00", "accepted"),  # the same instant as the bound
    ("2000-01-01T00:59:59.999999+01:00", "implausible_time"),  # 23:59:59.999999 UTC the day before
    ("1999-12-31T19:00:00-05:00", "accepted"),  # the bound, west of UTC
    ("1999-12-31T18:59:59-05:00", "implausible_time"),
    ("2000-01-01T00:00:00+14:00", "implausible_time"),  # 1999-12-31T10:00Z
    ("1800-01-01T00:00:00Z", "implausible_time"),
    ("0001-01-01T00:00:00Z", "implausible_time"),
])
def test_events_before_the_earliest_plausible_time_are_refused(occurred_at: str,
                                                               expected: str) -> None:
    assert verdict(occurred_at) == expected


@pytest.mark.parametrize(("occurred_at", "expected"), [
    ("2026-12-02T12:00:00Z", "accepted"),  # exactly max_future_seconds ahead of the clock
    ("2026-12-02T12:00:00.000001Z", "implausible_time"),
    ("2026-12-02T14:00:00+02:00", "accepted"),  # the same instant as the bound
    ("2026-12-02T14:00:01+02:00", "implausible_time"),
    ("2026-12-02T07:00:00-05:00", "accepted"),
    ("2026-12-02T07:00:01-05:00", "implausible_time"),
    ("2026-12-02T23:00:00+12:00", "accepted"),  # a later local date, an earlier instant
    ("2026-12-01T20:00:00-17:00", "implausible_time"),  # an earlier local date, 1 h too late
    ("9999-12-31T00:00:00Z", "implausible_time"),
    ("9999-12-31T23:59:59-23:59", "implausible_time"),  # past year 9999 in UTC
    ("2026-12-01T12:00:00Z", "accepted"),  # the wall clock itself
])
def test_events_too_far_ahead_of_the_wall_clock_are_refused(occurred_at: str,
                                                           expected: str) -> None:
    assert verdict(occurred_at) == expected


def test_the_reason_names_the_time_and_the_bound_it_passed() -> None:
    [early] = run(reply_at("1800-07-01T00:00:00+02:00")).rejected
    assert early.error_class == str(ErrorClass.IMPLAUSIBLE_TIME) == "implausible_time"
    assert early.reason == ("occurred_at 1800-07-01T00:00:00+02:00 is before the earliest "
                            "plausible event time 2000-01-01T00:00:00+00:00 "
                            "(RADAR_EARLIEST_EVENT_TIME)")
    [late] = run(reply_at("9999-12-31T00:00:00Z")).rejected
    assert late.reason == ("occurred_at 9999-12-31T00:00:00+00:00 is more than 86400 s ahead "
                           "of the clock at decode (2026-12-01T12:00:00+00:00): the latest "
                           "plausible event time is 2026-12-02T12:00:00+00:00 "
                           "(RADAR_MAX_FUTURE_SECONDS)")


def test_an_implausible_event_is_a_dead_letter_with_its_original_bytes_and_coordinates() -> None:
    good, bad = reply_at("2026-11-30T09:00:00Z", 7), reply_at("9999-12-31T00:00:00Z", 8)
    batch = run(good, bad)
    assert [a.source for a in batch.accepted] == [good]
    [dl] = batch.rejected
    assert (dl.dead_letter_id, dl.source_topic, dl.source_partition, dl.source_offset) == (
        "radar.outreach-replies:2:8", "radar.outreach-replies", 2, 8)
    assert (dl.payload, dl.key) == (bad.value, b"acct-1")
    assert dict(dl.headers())["radar.error_class"] == b"implausible_time"


def test_a_schema_problem_is_named_before_the_time_and_the_time_before_the_topic() -> None:
    broken = build_event("outreach_reply", occurred_at="9999-12-31T00:00:00Z", reply_kind="x")
    misplaced = encode(build_event("role_change", occurred_at="9999-12-31T00:00:00Z"))
    batch = run(RawMessage("radar.outreach-replies", 0, 1, None, encode(broken)),
                RawMessage("radar.outreach-replies", 0, 2, None, misplaced))
    assert [d.error_class for d in batch.rejected] == ["schema_violation", "implausible_time"]
    assert batch.accepted == []


def test_a_future_allowance_too_large_for_a_datetime_sets_no_upper_bound() -> None:
    boundless = EventTimeBounds(EARLIEST, NOW, 10**15)
    assert boundless.latest is None
    assert verdict("9999-12-31T23:59:59Z", boundless) == "accepted"
    assert verdict("1999-12-31T23:59:59Z", boundless) == "implausible_time"


def test_no_future_allowance_accepts_up_to_the_clock_itself() -> None:
    strict = EventTimeBounds(EARLIEST, NOW, 0)
    assert check_event_time(NOW, strict) is None
    assert verdict("2026-12-01T12:00:00Z", strict) == "accepted"
    assert verdict("2026-12-01T12:00:00.000001Z", strict) == "implausible_time"


# -- the pipeline: the settings and the wall clock of each batch ---------------------------------


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def pipeline(env: dict[str, str], clock: Clock) -> IngestPipeline:
    settings = load_settings(env)
    return IngestPipeline(settings, Metrics(), clock=clock)  # decode sends nothing


def classes(p: IngestPipeline, *times: str) -> list[str]:
    batch = p.decode([reply_at(t, i) for i, t in enumerate(times)])
    by_offset = {a.source.offset: "accepted" for a in batch.accepted}
    by_offset.update({d.source_offset: d.error_class for d in batch.rejected})
    return [by_offset[i] for i in range(len(times))]


def test_the_pipeline_refuses_by_the_default_settings_and_its_clock() -> None:
    p = pipeline({}, Clock(NOW))
    assert classes(p, "1800-07-31T00:00:00Z", "1999-12-31T23:59:59Z", "2000-01-01T00:00:00Z",
                   "2026-12-02T12:00:00Z", "2026-12-02T12:00:01Z", "9999-12-31T00:00:00Z") == [
        "implausible_time", "implausible_time", "accepted",
        "accepted", "implausible_time", "implausible_time"]


def test_the_pipeline_honours_both_settings() -> None:
    p = pipeline({"RADAR_EARLIEST_EVENT_TIME": "2020-01-01T01:00:00+01:00",
                  "RADAR_MAX_FUTURE_SECONDS": "3600"}, Clock(NOW))
    assert classes(p, "2019-12-31T23:59:59Z", "2020-01-01T00:00:00Z",
                   "2026-12-01T13:00:00Z", "2026-12-01T13:00:01Z") == [
        "implausible_time", "accepted", "accepted", "implausible_time"]
    # with the defaults, the same times are all plausible
    assert classes(pipeline({}, Clock(NOW)), "2019-12-31T23:59:59Z",
                   "2026-12-01T13:00:01Z") == ["accepted", "accepted"]


def test_the_pipeline_reads_the_wall_clock_for_each_batch() -> None:
    clock = Clock(NOW)
    p = pipeline({}, clock)
    tomorrow_noon_and_a_second = "2026-12-02T12:00:01Z"
    assert classes(p, tomorrow_noon_and_a_second) == ["implausible_time"]
    clock.now = datetime(2026, 12, 1, 12, 0, 1, tzinfo=UTC)
    assert classes(p, tomorrow_noon_and_a_second) == ["accepted"]
