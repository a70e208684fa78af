"""Event time over the sources (topic partitions), and the reorder buffer that gives every replay
one sequence."""

from __future__ import annotations

from processors.watermark import EventClock, ReorderBuffer, SourceActivity


def test_no_watermark_before_anything_was_seen() -> None:
    assert EventClock().watermark(pending=[]) is None
    assert EventClock().watermark(pending=[("radar.accounts", 0)]) is None


def test_no_watermark_while_a_pending_topic_has_delivered_nothing() -> None:
    clock = EventClock()
    clock.observe(("radar.ad-impressions", 0), 500.0)
    # the role-change topic still has messages and may hold something older
    assert clock.watermark(pending=[("radar.ad-impressions", 0), ("radar.role-changes", 0)]) is None
    clock.observe(("radar.role-changes", 0), 300.0)
    assert clock.watermark(pending=[("radar.ad-impressions", 0), ("radar.role-changes", 0)]) == 300.0


def test_watermark_is_the_slowest_pending_topic() -> None:
    clock = EventClock()
    clock.observe(("a", 0), 100.0)
    clock.observe(("b", 0), 250.0)
    clock.observe(("c", 0), 400.0)
    assert clock.watermark(pending=[("a", 0), ("b", 0), ("c", 0)]) == 100.0
    assert clock.watermark(pending=[("b", 0), ("c", 0)]) == 250.0
    assert clock.watermark(pending=[("c", 0)]) == 400.0


def test_a_caught_up_topic_does_not_hold_the_watermark_back() -> None:
    clock = EventClock()
    clock.observe(("slow", 0), 100.0)
    clock.observe(("fast", 0), 900.0)
    assert clock.watermark(pending=[("fast", 0)]) == 900.0


def test_with_nothing_pending_the_watermark_is_the_latest_event_seen() -> None:
    clock = EventClock()
    clock.observe(("a", 0), 100.0)
    clock.observe(("b", 0), 700.0)
    clock.observe(("c", 0), 300.0)
    assert clock.watermark(pending=[]) == 700.0


def test_observing_an_older_event_does_not_move_a_topic_back() -> None:
    clock = EventClock()
    clock.observe(("a", 0), 500.0)
    clock.observe(("a", 0), 200.0)
    assert clock.high == {("a", 0): 500.0}
    assert clock.watermark(pending=[("a", 0)]) == 500.0


A, B = ("a", 0), ("b", 0)  # two sources: A comes first at the same time


def test_reorder_buffer_releases_only_what_the_watermark_passed_in_time_order() -> None:
    buffer: ReorderBuffer[str] = ReorderBuffer()
    buffer.push(30.0, A, 3, "third")
    buffer.push(10.0, A, 1, "first")
    buffer.push(50.0, A, 5, "fifth")
    buffer.push(20.0, A, 2, "second")
    assert len(buffer) == 4

    assert buffer.release(5.0) == []
    assert buffer.release(20.0) == ["first", "second"]  # an item exactly at the watermark goes
    assert len(buffer) == 2
    assert buffer.release(49.9) == ["third"]
    assert buffer.release(49.9) == []
    assert len(buffer) == 1


def test_reorder_buffer_breaks_ties_on_the_source_then_its_offset_not_on_arrival() -> None:
    buffer: ReorderBuffer[str] = ReorderBuffer()
    buffer.push(10.0, B, 7, "b7")
    buffer.push(10.0, A, 4, "a4")
    buffer.push(10.0, B, 2, "b2")
    buffer.push(9.0, B, 9, "z")
    assert buffer.release(10.0) == ["z", "a4", "b2", "b7"]


def test_reorder_buffer_items_need_not_be_comparable() -> None:
    buffer: ReorderBuffer[dict[str, int]] = ReorderBuffer()
    buffer.push(1.0, A, 0, {"n": 1})
    buffer.push(1.0, A, 0, {"n": 2})  # the same message again (a redelivery)
    assert sorted(d["n"] for d in buffer.drain()) == [1, 2]


def test_drain_releases_everything_in_order() -> None:
    buffer: ReorderBuffer[int] = ReorderBuffer()
    for t, offset in ((3e9, 2), (1.0, 0), (2e9, 1)):
        buffer.push(t, A, offset, int(t))
    assert buffer.drain() == [1, 2_000_000_000, 3_000_000_000]
    assert len(buffer) == 0
    assert buffer.drain() == []


def test_two_arrival_orders_release_the_same_sequence() -> None:
    items = [(5.0, B, 0, "b"), (1.0, A, 0, "x"), (5.0, A, 2, "a"), (3.0, A, 1, "m"),
             (8.0, B, 1, "q")]
    first: ReorderBuffer[str] = ReorderBuffer()
    second: ReorderBuffer[str] = ReorderBuffer()
    for at, source, offset, item in items:
        first.push(at, source, offset, item)
    for at, source, offset, item in reversed(items):
        second.push(at, source, offset, item)
    expected = ["x", "m", "a", "b", "q"]
    assert first.release(5.0) + first.drain() == expected
    assert second.release(5.0) + second.drain() == expected


def test_an_event_late_in_its_source_is_placed_where_the_source_had_got_to() -> None:
    """The watermark may have passed a late event's own time or not, depending on the fetches:
    its place is its source's latest event time, which no watermark has passed yet."""
    clock = EventClock()
    assert clock.observe(A, 100.0) == 100.0
    assert clock.observe(A, 500.0) == 500.0
    assert clock.observe(A, 200.0) == 500.0  # late in A
    assert clock.observe(B, 200.0) == 200.0  # on time in B: each source has its own order
    assert clock.high == {A: 500.0, B: 200.0}


def test_at_the_watermark_only_what_no_source_still_there_can_precede_is_released() -> None:
    clock = EventClock()
    clock.observe(A, 10.0)
    clock.observe(B, 10.0)
    clock.observe(("c", 0), 30.0)
    pending = [A, B, ("c", 0)]
    assert clock.watermark(pending) == 10.0
    assert clock.slowest(pending) == (10.0, A)
    assert clock.slowest([B, ("c", 0)]) == (10.0, B)
    assert clock.slowest([]) == (30.0, None)  # every source idle: the latest, none to wait for

    buffer: ReorderBuffer[str] = ReorderBuffer()
    buffer.push(10.0, B, 0, "b")
    buffer.push(10.0, A, 0, "a")
    buffer.push(9.0, ("c", 0), 0, "c")
    # A is still at 10 s: another event of A at 10 s would go before b
    assert buffer.release(10.0, until=A) == ["c", "a"]
    assert buffer.release(10.0, until=A) == []
    assert buffer.release(10.0, until=B) == ["b"]  # A moved on: B is the first at 10 s


def test_each_partition_of_a_topic_is_a_source_of_its_own() -> None:
    """A producer without keys spreads one account's events over every partition: each
    partition is a log of its own, and event time waits for the slowest."""
    clock = EventClock()
    clock.observe(("replies", 0), 900.0)
    clock.observe(("replies", 1), 200.0)
    clock.observe(("ads", 1), 700.0)
    assert clock.watermark(pending=[("replies", 0), ("replies", 1), ("ads", 1)]) == 200.0
    assert clock.watermark(pending=[("replies", 0), ("ads", 1)]) == 700.0


def test_forgetting_partitions_drops_their_sources_only() -> None:
    clock = EventClock()
    clock.observe(("replies", 0), 900.0)
    clock.observe(("replies", 1), 200.0)
    clock.observe(("ads", 1), 700.0)
    clock.forget({1})
    assert clock.high == {("replies", 0): 900.0}


def test_discard_takes_out_the_selected_items_and_keeps_the_order_of_the_rest() -> None:
    buffer: ReorderBuffer[tuple[str, int]] = ReorderBuffer()
    for t, key, partition in ((5.0, "e", 0), (1.0, "a", 1), (3.0, "c", 0), (2.0, "b", 1)):
        buffer.push(t, ("replies", partition), int(t), (key, partition))
    assert sorted(buffer.discard(lambda item: item[1] == 1)) == [("a", 1), ("b", 1)]
    assert buffer.drain() == [("c", 0), ("e", 0)]


# -- SourceActivity: idle by wall-clock time (SPEC section 9) ---------------------------------


def test_a_source_caught_up_for_a_moment_still_holds_event_time_back() -> None:
    activity = SourceActivity(idle_s=30)
    activity.report(("ads", 0), caught_up=True, now=100.0)
    activity.report(("ads", 0), caught_up=True, now=129.9)

    assert activity.holding([("ads", 0), ("replies", 0)]) == {("ads", 0), ("replies", 0)}


def test_a_source_caught_up_for_the_idle_time_stops_holding_and_says_so_once() -> None:
    activity = SourceActivity(idle_s=30)
    assert activity.report(("ads", 0), caught_up=True, now=100.0) is False
    assert activity.report(("ads", 0), caught_up=True, now=130.0) is True
    assert activity.report(("ads", 0), caught_up=True, now=140.0) is False

    assert activity.holding([("ads", 0), ("replies", 0)]) == {("replies", 0)}


def test_a_source_that_delivers_again_holds_again_and_its_idle_time_starts_over() -> None:
    activity = SourceActivity(idle_s=30)
    activity.report(("ads", 0), caught_up=True, now=0.0)
    activity.report(("ads", 0), caught_up=True, now=31.0)
    activity.report(("ads", 0), caught_up=False, now=32.0)  # new messages, or nothing known

    assert activity.holding([("ads", 0)]) == {("ads", 0)}
    activity.report(("ads", 0), caught_up=True, now=33.0)
    activity.report(("ads", 0), caught_up=True, now=62.9)
    assert activity.holding([("ads", 0)]) == {("ads", 0)}
    activity.report(("ads", 0), caught_up=True, now=63.0)
    assert activity.holding([("ads", 0)]) == set()


def test_an_unreachable_broker_is_never_idleness() -> None:
    """Fetches that go unanswered report nothing caught up: however long the outage, the
    sources hold event time where it was, and their idle time starts when fetches answer."""
    activity = SourceActivity(idle_s=30)
    for second in range(0, 120, 5):
        activity.report(("ads", 0), caught_up=False, now=float(second))
    assert activity.holding([("ads", 0)]) == {("ads", 0)}
    activity.report(("ads", 0), caught_up=True, now=120.0)
    activity.report(("ads", 0), caught_up=True, now=149.0)
    assert activity.holding([("ads", 0)]) == {("ads", 0)}


def test_a_source_that_never_delivered_waits_the_idle_time_then_lets_the_others_go() -> None:
    clock, activity = EventClock(), SourceActivity(idle_s=30)
    clock.observe(("replies", 0), 500.0)
    activity.report(("replies", 0), caught_up=True, now=0.0)
    activity.report(("role-changes", 0), caught_up=True, now=0.0)  # empty: nothing to deliver

    assert clock.watermark(activity.holding([("replies", 0), ("role-changes", 0)])) is None
    activity.report(("replies", 0), caught_up=True, now=30.0)
    activity.report(("role-changes", 0), caught_up=True, now=30.0)
    assert clock.watermark(activity.holding([("replies", 0), ("role-changes", 0)])) == 500.0


def test_a_source_forgotten_on_revocation_holds_until_caught_up_again_for_the_idle_time() -> None:
    """A partition taken back and given again is read again from its committed offset: what
    was known of it (idle since long ago) must not let its events in behind the watermark."""
    activity = SourceActivity(idle_s=30)
    activity.report(("ads", 0), caught_up=True, now=0.0)
    activity.report(("replies", 0), caught_up=True, now=0.0)
    activity.report(("ads", 0), caught_up=True, now=30.0)
    activity.report(("replies", 0), caught_up=True, now=30.0)
    assert activity.holding([("ads", 0), ("replies", 0)]) == set()

    activity.forget([("ads", 0)])
    assert activity.holding([("ads", 0), ("replies", 0)]) == {("ads", 0)}
    activity.report(("ads", 0), caught_up=True, now=40.0)
    assert activity.report(("ads", 0), caught_up=True, now=69.9) is False
    assert activity.holding([("ads", 0)]) == {("ads", 0)}
    assert activity.report(("ads", 0), caught_up=True, now=70.0) is True
    assert activity.holding([("ads", 0), ("replies", 0)]) == set()


def test_a_reader_starting_at_a_commit_places_late_events_as_one_reading_from_the_start() -> None:
    """Open 6 of issue 12: an event late in its source is placed at the source's latest time
    so far, which a reader starting at a committed offset (a restart, a rebalance) did not
    know: the commit carries it (``high_before``), and ``seed`` starts the reader from it."""
    from processors.watermark import decode_high, encode_high

    times = [100.0, 400.0, 250.0, 300.0, 900.0, 500.0, 950.0, 200.0]  # late: 250, 300, 500, 200
    src = ("replies", 0)
    whole = EventClock()
    places = [whole.observe(src, t, offset) for offset, t in enumerate(times)]
    assert places == [100.0, 400.0, 400.0, 400.0, 900.0, 900.0, 950.0, 950.0]
    for commit in range(1, len(times)):
        metadata = encode_high(whole.high_before(src, commit))
        reader = EventClock()
        reader.seed(src, commit, decode_high(metadata) or 0.0)
        again = [reader.observe(src, t, offset) for offset, t in enumerate(times) if offset >= commit]
        assert again == places[commit:], commit
        unseeded = EventClock()
        if commit in (3, 5):  # without the commit's time, the late events go elsewhere
            assert [unseeded.observe(src, t) for t in times[commit:]] != places[commit:]


def test_steps_are_pruned_at_a_commit_but_what_the_next_commit_needs() -> None:
    clock = EventClock()
    src = ("ads", 1)
    for offset, t in enumerate([10.0, 20.0, 15.0, 30.0, 40.0]):
        clock.observe(src, t, offset)
    assert clock.high_before(src, 3) == 20.0  # offsets 0..2
    clock.prune(src, 3)
    assert clock.steps[src] == [(1, 20.0), (3, 30.0), (4, 40.0)]
    assert clock.high_before(src, 3) == 20.0 and clock.high_before(src, 5) == 40.0
    clock.prune(src, 5)
    assert clock.steps[src] == [(4, 40.0)] and clock.high_before(src, 5) == 40.0
    clock.forget([1])
    assert src not in clock.steps and clock.high_before(src, 5) is None


def test_commit_metadata_is_exact_and_anything_else_reads_as_nothing() -> None:
    from processors.watermark import decode_high, encode_high

    t = 1767225600.123456
    assert decode_high(encode_high(t)) == t
    assert encode_high(None) == ""
    for other in (None, "", "radar-high:", "radar-high:x", "radar-high:nan", "radar-high:inf",
                  "someone else's", "1767225600.0"):
        assert decode_high(other) is None
