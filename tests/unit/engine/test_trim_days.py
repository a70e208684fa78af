"""Days that have fallen out of every window are dropped, oldest first."""

from __future__ import annotations

from processors.state import trim_days


def test_days_older_than_kept_are_dropped_and_recent_ones_stay() -> None:
    days = dict.fromkeys(range(100, 130), 1.0)
    trim_days(days, today=140, keep=20)  # keeps days after 120
    assert sorted(days) == list(range(121, 130))


def test_a_late_old_day_behind_newer_ones_goes_once_it_reaches_the_front() -> None:
    days = dict.fromkeys((110, 111, 112), 1.0)
    days[90] = 2.0  # a late event's day, added after newer ones
    trim_days(days, today=130, keep=20)  # cutoff 110: the front (110) goes, 111 stops it
    assert list(days) == [111, 112, 90]
    trim_days(days, today=133, keep=20)  # cutoff 113: 111, 112, then 90
    assert days == {}


def test_nothing_to_trim_leaves_the_days_alone() -> None:
    days = {5: 1.0, 6: 2.0}
    trim_days(days, today=6, keep=120)
    assert days == {5: 1.0, 6: 2.0}
