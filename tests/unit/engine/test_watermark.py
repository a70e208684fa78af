"""Event time per partition and the reorder buffer that makes every replay see one sequence."""

from __future__ import annotations

from processors.watermark import PartitionClock, ReorderBuffer, SourceActivity


def test_no_watermark_before_anything_was_seen() -> None:
    assert PartitionClock().watermark(pending=[]) is None
    assert PartitionClock().watermark(pending=["radar.accounts"]) is None


def test_no_watermark_while_a_pending_topic_has_delivered_nothing() -> None:
    clock = PartitionClock()
    clock.observe("radar.ad-impressions", 500.0)
    # the role-change topic still has messages and may hold something older
    assert clock.watermark(pending=["radar.ad-impressions", "radar.role-changes"]) is None
    clock.observe("radar.role-changes", 300.0)
    assert clock.watermark(pending=["radar.ad-impressions", "radar.role-changes"]) == 300.0


def test_watermark_is_the_slowest_pending_topic() -> None:
    clock = PartitionClock()
    clock.observe("a", 100.0)
    clock.observe("b", 250.0)
    clock.observe("c", 400.0)
    assert clock.watermark(pending=["a", "b", "c"]) == 100.0
    assert clock.watermark(pending=["b", "c"]) == 250.0
    assert clock.watermark(pending=["c"]) == 400.0


def test_a_caught_up_topic_does_not_hold_the_watermark_back() -> None:
    clock = PartitionClock()
    clock.observe("slow", 100.0)
    clock.observe("fast", 900.0)
    assert clock.watermark(pending=["fast"]) == 900.0


def test_with_nothing_pending_the_watermark_is_the_latest_event_seen() -> None:
    clock = PartitionClock()
    clock.observe("a", 100.0)
    clock.observe("b", 700.0)
    clock.observe("c", 300.0)
    assert clock.watermark(pending=[]) == 700.0


def test_observing_an_older_event_does_not_move_a_topic_back() -> None:
    clock = PartitionClock()
    clock.observe("a", 500.0)
    clock.observe("a", 200.0)
    assert clock.high == {"a": 500.0}
    assert clock.watermark(pending=["a"]) == 500.0


def test_reorder_buffer_releases_only_what_the_watermark_passed_in_time_order() -> None:
    buffer: ReorderBuffer[str] = ReorderBuffer()
    buffer.push(30.0, "e3", "third")
    buffer.push(10.0, "e1", "first")
    buffer.push(50.0, "e5", "fifth")
    buffer.push(20.0, "e2", "second")
    assert len(buffer) == 4

    assert buffer.release(5.0) == []
    assert buffer.release(20.0) == ["first", "second"]  # an item exactly at the watermark goes
    assert len(buffer) == 2
    assert buffer.release(49.9) == ["third"]
    assert buffer.release(49.9) == []
    assert len(buffer) == 1


def test_reorder_buffer_breaks_ties_on_the_tiebreak_not_on_arrival() -> None:
    buffer: ReorderBuffer[str] = ReorderBuffer()
    buffer.push(10.0, "evt-c", "c")
    buffer.push(10.0, "evt-a", "a")
    buffer.push(10.0, "evt-b", "b")
    buffer.push(9.0, "evt-z", "z")
    assert buffer.release(10.0) == ["z", "a", "b", "c"]


def test_reorder_buffer_items_need_not_be_comparable() -> None:
    buffer: ReorderBuffer[dict[str, int]] = ReorderBuffer()
    buffer.push(1.0, "same", {"n": 1})
    buffer.push(1.0, "same", {"n": 2})
    assert sorted(d["n"] for d in buffer.drain()) == [1, 2]


def test_drain_releases_everything_in_order() -> None:
    buffer: ReorderBuffer[int] = ReorderBuffer()
    for t, key in ((3e9, "c"), (1.0, "a"), (2e9, "b")):
        buffer.push(t, key, int(t))
    assert buffer.drain() == [1, 2_000_000_000, 3_000_000_000]
    assert len(buffer) == 0
    assert buffer.drain() == []


def test_two_arrival_orders_release_the_same_sequence() -> None:
    items = [(5.0, "b"), (1.0, "x"), (5.0, "a"), (3.0, "m"), (8.0, "q")]
    first: ReorderBuffer[str] = ReorderBuffer()
    second: ReorderBuffer[str] = ReorderBuffer()
    for t, key in items:
        first.push(t, key, key)
    for t, key in reversed(items):
        second.push(t, key, key)
    expected = ["x", "m", "a", "b", "q"]
    assert first.release(5.0) + first.drain() == expected
    assert second.release(5.0) + second.drain() == expected


# -- SourceActivity: idle by wall-clock time (SPEC section 9) ---------------------------------


def test_a_source_caught_up_for_a_moment_still_holds_event_time_back() -> None:
    activity = SourceActivity(idle_s=30)
    activity.report("ads", caught_up=True, now=100.0)
    activity.report("ads", caught_up=True, now=129.9)

    assert activity.holding(["ads", "replies"]) == {"ads", "replies"}


def test_a_source_caught_up_for_the_idle_time_stops_holding_and_says_so_once() -> None:
    activity = SourceActivity(idle_s=30)
    assert activity.report("ads", caught_up=True, now=100.0) is False
    assert activity.report("ads", caught_up=True, now=130.0) is True
    assert activity.report("ads", caught_up=True, now=140.0) is False

    assert activity.holding(["ads", "replies"]) == {"replies"}


def test_a_source_that_delivers_again_holds_again_and_its_idle_time_starts_over() -> None:
    activity = SourceActivity(idle_s=30)
    activity.report("ads", caught_up=True, now=0.0)
    activity.report("ads", caught_up=True, now=31.0)
    activity.report("ads", caught_up=False, now=32.0)  # new messages, or nothing known

    assert activity.holding(["ads"]) == {"ads"}
    activity.report("ads", caught_up=True, now=33.0)
    activity.report("ads", caught_up=True, now=62.9)
    assert activity.holding(["ads"]) == {"ads"}
    activity.report("ads", caught_up=True, now=63.0)
    assert activity.holding(["ads"]) == set()


def test_an_unreachable_broker_is_never_idleness() -> None:
    """Fetches that go unanswered report nothing caught up: however long the outage, the
    sources hold event time where it was, and their idle time starts when fetches answer."""
    activity = SourceActivity(idle_s=30)
    for second in range(0, 120, 5):
        activity.report("ads", caught_up=False, now=float(second))
    assert activity.holding(["ads"]) == {"ads"}
    activity.report("ads", caught_up=True, now=120.0)
    activity.report("ads", caught_up=True, now=149.0)
    assert activity.holding(["ads"]) == {"ads"}


def test_a_source_that_never_delivered_waits_the_idle_time_then_lets_the_others_go() -> None:
    clock, activity = PartitionClock(), SourceActivity(idle_s=30)
    clock.observe("replies", 500.0)
    activity.report("replies", caught_up=True, now=0.0)
    activity.report("role-changes", caught_up=True, now=0.0)  # empty: nothing to deliver

    assert clock.watermark(activity.holding(["replies", "role-changes"])) is None
    activity.report("replies", caught_up=True, now=30.0)
    activity.report("role-changes", caught_up=True, now=30.0)
    assert clock.watermark(activity.holding(["replies", "role-changes"])) == 500.0
