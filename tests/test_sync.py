"""Image/detection pairing: exact and slop matching, newest-pair-only, counted drops."""

from __future__ import annotations

import pytest

from interactvlm_ros.reasons import Reason
from interactvlm_ros.ros.sync import PairBuffer, nearest_stamp, pair_stamps

MS = 1_000_000


def test_exact_stamp_pairs_with_its_image():
    buffer = PairBuffer(capacity=3)
    for t in (100, 133, 166):
        buffer.add_image(t * MS, f"img{t}")
    assert buffer.add_detections(133 * MS, "dets133")
    pair = buffer.take()
    assert (pair.image, pair.detections, pair.image_stamp_ns) == ("img133", "dets133", 133 * MS)
    assert buffer.take() is None
    assert buffer.counts["paired"] == 1 and buffer.counts["taken"] == 1


def test_slop_picks_the_nearest_image():
    buffer = PairBuffer(capacity=5, slop_ns=20 * MS)
    for t in (100, 133, 166):
        buffer.add_image(t * MS, f"img{t}")
    assert buffer.add_detections(140 * MS, "d")
    assert buffer.take().image == "img133"
    assert not PairBuffer(capacity=5, slop_ns=5 * MS).add_detections(140 * MS, "d")


def test_only_the_newest_pair_is_kept():
    buffer = PairBuffer(capacity=200)
    for i in range(100):  # a burst of 100 paired frames, no consumer
        buffer.add_image(i * MS, i)
        buffer.add_detections(i * MS, i)
    assert buffer.pending == 1
    assert buffer.take().image == 99
    assert buffer.counts["replaced_pending"] == 99 and buffer.counts["paired"] == 100


def test_detections_before_their_image_wait_then_pair_or_expire():
    buffer = PairBuffer(capacity=4)
    assert not buffer.add_detections(200 * MS, "early")
    assert not buffer.add_detections(150 * MS, "orphan")  # its image never comes
    buffer.add_image(200 * MS, "img200")
    assert buffer.take().detections == "early"
    assert buffer.counts["unmatched_detections"] == 1  # the orphan, older than the new image


def test_detections_without_any_image_are_bounded_and_counted():
    buffer = PairBuffer(capacity=2)
    for t in range(5):
        buffer.add_detections(t * MS, t)
    assert buffer.counts["unmatched_detections"] == 3 and buffer.pending == 0


def test_the_nearest_image_is_chosen_even_when_it_arrives_after_the_detections():
    """Detections at 170 ms with images at 100 and 200 ms and 80 ms slop: 100 ms is within the
    slop but 200 ms is nearer, and it arrives later; the buffer waits for it."""
    buffer = PairBuffer(capacity=5, slop_ns=80 * MS)
    buffer.add_image(100 * MS, "img100")
    assert not buffer.add_detections(170 * MS, "d170") and buffer.waiting_detections == 1
    buffer.add_image(200 * MS, "img200")
    assert buffer.take().image == "img200" and buffer.waiting_detections == 0
    assert buffer.add_detections(120 * MS, "d120") and buffer.take().image == "img100"
    with pytest.raises(ValueError):
        PairBuffer(capacity=0)


def test_one_rule_for_live_and_offline_pairing():
    """The buffer (images and detections one at a time, in any interleaving) pairs like
    pair_stamps on the whole sequence (what replay does)."""
    import random

    images = [i * 100 * MS for i in range(22)]  # the camera goes on after the last detections
    detections = sorted(random.Random(0).sample(range(-50, 2000), 40))
    offline = pair_stamps([d * MS for d in detections], images, 80 * MS)
    for seed in range(5):
        events = [("image", t) for t in images] + [("detections", d * MS) for d in detections]
        order = random.Random(seed)
        # Keep the image order, interleave the detections anywhere (as a detector delays them).
        events.sort(key=lambda e: e[1] + (order.randint(0, 150) * MS if e[0] == "detections" else 0))
        buffer, live = PairBuffer(capacity=50, slop_ns=80 * MS), {}
        for kind, stamp in events:
            if kind == "image":
                buffer.add_image(stamp, stamp)
            else:
                buffer.add_detections(stamp, stamp)
            pair = buffer.take()
            if pair is not None:
                live[pair.detections] = pair.image
        expected = {d * MS: images[i] for d, i in zip(detections, offline) if i is not None}
        # Pairs decided together replace each other (newest pair only; counted): every pair
        # taken is the offline one, and every expected pair was taken or replaced.
        assert all(expected[d] == image for d, image in live.items())
        assert len(live) + buffer.counts["replaced_pending"] == len(expected) == buffer.counts["paired"]
        assert len(live) >= len(expected) // 2


def test_nearest_stamp():
    assert nearest_stamp(150, [100, 200], 50) == 0  # a tie: the earlier
    assert nearest_stamp(151, [100, 200], 50) == 1
    assert nearest_stamp(300, [100, 200], 50) is None
    assert nearest_stamp(5, [], 50) is None


class FakeClock:
    """Monotonic seconds the test advances by hand."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def depth_buffer(wait_s: float = 0.25, slop_ms: int = 0, capacity: int = 10):
    clock, reports = FakeClock(), []
    buffer = PairBuffer(capacity=capacity, slop_ns=slop_ms * MS, companions=("depth", "camera_info"), wait_s=wait_s,
                        report=lambda reason, detail: reports.append((reason, detail)), clock=clock)
    return buffer, clock, reports


def test_a_pair_waits_for_depth_that_comes_after_it():
    """Aligned depth is produced after its colour image: the pair is complete only when the
    depth and CameraInfo of its stamp arrive, and carries them."""
    buffer, clock, _ = depth_buffer()
    buffer.add_image(100 * MS, "img100")
    assert not buffer.add_detections(100 * MS, "d100")  # waiting for depth and CameraInfo
    assert buffer.pending == 0 and buffer.waiting_pairs == 1 and buffer.next_deadline() == 0.25
    clock.now = 0.15  # 150 ms later
    assert not buffer.add_companion("depth", 100 * MS, "depth100")
    assert buffer.add_companion("camera_info", 100 * MS, "info100")
    pair = buffer.take()
    assert (pair.image, pair.detections) == ("img100", "d100")
    assert pair.companions == {"depth": "depth100", "camera_info": "info100"} and pair.waited_s == 0.15
    assert buffer.waiting_pairs == 0 and buffer.next_deadline() is None


def test_an_optional_companion_is_waited_for_only_once_its_stream_has_delivered():
    """CameraInfo for the people without depth: a camera that publishes none costs no wait;
    once one has come, pairs wait for theirs like for depth."""
    clock = FakeClock()
    buffer = PairBuffer(companions=("camera_info",), optional=("camera_info",), wait_s=0.25, clock=clock)
    buffer.add_image(100 * MS, "img100")
    assert buffer.add_detections(100 * MS, "d100")  # nothing heard yet: complete at once
    assert buffer.take().companions == {"camera_info": None}
    buffer.add_companion("camera_info", 150 * MS, "info150")
    buffer.add_image(200 * MS, "img200")
    assert not buffer.add_detections(200 * MS, "d200")  # heard: this pair waits for its CameraInfo
    clock.now = 0.1
    assert buffer.add_companion("camera_info", 200 * MS, "info200")
    pair = buffer.take()
    assert pair.companions == {"camera_info": "info200"} and pair.waited_s == 0.1
    with pytest.raises(ValueError, match="must be among the companions"):
        PairBuffer(companions=("depth",), optional=("camera_info",))


def test_depth_already_there_completes_the_pair_at_once():
    buffer, _, _ = depth_buffer()
    buffer.add_companion("depth", 100 * MS, "depth100")
    buffer.add_companion("camera_info", 100 * MS, "info100")
    buffer.add_image(100 * MS, "img100")
    assert buffer.add_detections(100 * MS, "d100")
    assert buffer.take().companions == {"depth": "depth100", "camera_info": "info100"}


def test_a_pair_whose_depth_never_comes_is_complete_at_its_deadline_without_it():
    buffer, clock, _ = depth_buffer(wait_s=0.25)
    buffer.add_companion("camera_info", 100 * MS, "info100")
    buffer.add_image(100 * MS, "img100")
    assert not buffer.add_detections(100 * MS, "d100")
    clock.now = 0.2499
    assert not buffer.expire() and buffer.pending == 0
    clock.now = 0.25
    assert buffer.expire()
    assert buffer.take().companions == {"depth": None, "camera_info": "info100"}


def test_a_later_depth_without_a_match_decides_at_once():
    """Depth at 133 ms arrived (stamp order): none will come for 100 ms with slop 0, so the pair
    does not wait out its deadline."""
    buffer, _, _ = depth_buffer(wait_s=5.0)
    buffer.add_image(100 * MS, "img100")
    buffer.add_companion("camera_info", 100 * MS, "info100")
    buffer.add_detections(100 * MS, "d100")
    assert buffer.add_companion("depth", 133 * MS, "depth133")
    assert buffer.take().companions["depth"] is None


def test_depth_is_matched_within_the_slop_by_the_image_rule():
    buffer, _, _ = depth_buffer(slop_ms=20)
    buffer.add_image(100 * MS, "img100")
    buffer.add_detections(100 * MS, "d100")
    buffer.add_companion("camera_info", 100 * MS, "info100")
    assert not buffer.add_companion("depth", 90 * MS, "depth90")  # a nearer one may still come
    assert buffer.add_companion("depth", 105 * MS, "depth105")  # at/after the stamp: decided, nearest
    assert buffer.take().companions["depth"] == "depth105"


def test_a_late_depth_never_holds_a_newer_complete_pair():
    """Pair 100 waits for depth; pair 133 gets its depth first: 133 is processed, 100 is dropped
    (counted) instead of being processed late or holding 133 back."""
    buffer, clock, _ = depth_buffer(wait_s=1.0)
    for t in (100, 133):
        buffer.add_image(t * MS, f"img{t}")
        buffer.add_companion("camera_info", t * MS, f"info{t}")
        buffer.add_detections(t * MS, f"d{t}")
    assert buffer.pending == 0 and buffer.waiting_pairs == 2
    # Depth 133 arrives (100's depth was lost): 133 is complete, 100 is decided without depth too
    # (a later depth arrived) but older: only the newest complete pair is kept.
    assert buffer.add_companion("depth", 133 * MS, "depth133")
    pair = buffer.take()
    assert pair.image == "img133" and pair.companions["depth"] == "depth133"
    assert buffer.counts["replaced_pending"] == 1 and buffer.waiting_pairs == 0
    clock.now = 2.0
    assert not buffer.expire() and buffer.take() is None


def test_pairs_waiting_for_depth_are_bounded():
    buffer, _, _ = depth_buffer(wait_s=1.0, capacity=3)
    for t in range(1, 6):
        buffer.add_image(t * MS, t)
        buffer.add_detections(t * MS, t)
    assert buffer.waiting_pairs == 3 and buffer.counts["replaced_pending"] == 2


def test_without_wait_a_pair_takes_what_has_arrived():
    buffer, _, _ = depth_buffer(wait_s=0.0)
    buffer.add_image(100 * MS, "img100")
    buffer.add_companion("depth", 100 * MS, "depth100")
    assert buffer.add_detections(100 * MS, "d100")
    assert buffer.take().companions == {"depth": "depth100", "camera_info": None}


def test_duplicate_stamps_are_reported_and_the_first_is_kept():
    buffer, _, reports = depth_buffer()
    buffer.add_image(100 * MS, "first")
    buffer.add_image(100 * MS, "second")
    buffer.add_companion("depth", 100 * MS, "depth-first")
    buffer.add_companion("depth", 100 * MS, "depth-second")
    assert [r for r, _ in reports] == [Reason.DUPLICATE_STAMP, Reason.DUPLICATE_STAMP]
    assert "a second image message with stamp 0.1 s" in reports[0][1] and "depth" in reports[1][1]
    assert buffer.counts["duplicate_stamps"] == 2
    buffer.add_companion("camera_info", 100 * MS, "info")
    buffer.add_detections(100 * MS, "d")
    pair = buffer.take()
    assert (pair.image, pair.companions["depth"]) == ("first", "depth-first")
    assert buffer.companion_for("depth", 100 * MS) == "depth-first" and buffer.companion_for("depth", 1) is None
    assert PairBuffer().companion_for("depth", 100 * MS) is None  # not a companion of that buffer
    with pytest.raises(KeyError):
        buffer.add_companion("imu", 1, "x")


def test_detections_without_their_image_are_reported_with_a_reason():
    reports = []
    buffer = PairBuffer(capacity=2, report=lambda reason, detail: reports.append((reason, detail)))
    buffer.add_image(200 * MS, "img200")
    assert not buffer.add_detections(150 * MS, "orphan")
    assert reports == [(Reason.NO_IMAGE_FOR_DETECTIONS, "detections stamped 0.15 s: no image within sync_slop (0 s) "
                                                        "of it among the 1 kept")]
    for t in (300, 400, 500):  # waiting for images that never come: the oldest is evicted
        buffer.add_detections(t * MS, t)
    assert reports[-1] == (Reason.NO_IMAGE_FOR_DETECTIONS,
                           "detections stamped 0.3 s: evicted while waiting for an image at or after its stamp")
    assert buffer.counts["unmatched_detections"] == 2


def test_one_rule_for_live_and_offline_depth():
    """Depth and CameraInfo arriving in any interleaving with the images and detections (each
    stream in stamp order) are matched to a pair's image as pair_stamps matches them offline."""
    import random

    images = [i * 100 * MS for i in range(12)]
    depths = [t + random.Random(1).randint(-30, 30) * MS for t in images]
    depths = sorted(d for i, d in enumerate(depths) if i != 4)  # one depth frame lost
    offline_depth = pair_stamps(images, depths, 40 * MS)
    for seed in range(5):
        order = random.Random(seed)
        events = [("image", t, t) for t in images] + [("detections", t, t + order.randint(0, 120) * MS) for t in images]
        for kind, stamps, delay in (("depth", depths, 200), ("camera_info", images, 60)):
            arrival = 0  # each stream arrives in stamp order, late by up to `delay` ms
            for stamp in stamps:
                arrival = max(arrival, stamp + order.randint(0, delay) * MS)
                events.append((kind, stamp, arrival))
        events.sort(key=lambda e: e[2])
        clock = FakeClock()
        buffer = PairBuffer(capacity=50, slop_ns=40 * MS, companions=("depth", "camera_info"), wait_s=10.0, clock=clock)
        taken = []
        for kind, stamp, _ in events:
            if kind == "image":
                buffer.add_image(stamp, stamp)
            elif kind == "detections":
                buffer.add_detections(stamp, stamp)
            else:
                buffer.add_companion(kind, stamp, stamp)
            if (pair := buffer.take()) is not None:
                taken.append(pair)
        clock.now = 20.0
        buffer.expire()
        if (pair := buffer.take()) is not None:
            taken.append(pair)
        assert taken and len(taken) + buffer.counts["replaced_pending"] == len(images)
        for pair in taken:
            index = images.index(pair.image)
            expected = depths[offline_depth[index]] if offline_depth[index] is not None else None
            assert pair.companions == {"depth": expected, "camera_info": pair.image}


def test_the_deadline_waker_calls_back_at_the_earliest_deadline_on_one_thread():
    """An earlier deadline replaces a later one at once; the callback may set the next one;
    close stops the thread. The clock is the test's: only its value decides when a call is due."""
    import threading

    clock, calls, called = FakeClock(), [], threading.Event()

    def callback():
        calls.append((clock.now, threading.current_thread().name))
        called.set()

    from interactvlm_ros.ros.sync import DeadlineWaker

    clock.now = 10.0
    waker = DeadlineWaker(callback, clock)
    try:
        waker.at(1000.0)  # far: the thread waits
        waker.at(10.0)  # due now: replaces it and wakes the thread
        assert called.wait(timeout=30)
        assert calls == [(10.0, "interactvlm_deadline")]
        called.clear()
        waker.at(5.0)  # already past
        assert called.wait(timeout=30) and len(calls) == 2
    finally:
        waker.close()
    assert not waker._thread.is_alive()
    waker.at(0.0)  # closed: nothing more is called
    assert len(calls) == 2


def test_the_pending_pair_is_always_the_one_of_the_latest_image():
    """Detections out of order (a batched or second detector): the late detections of an earlier
    frame never replace a later frame's pair, waiting for depth or pending."""
    buffer, _, _ = depth_buffer(wait_s=1.0)
    for t in (100, 133):
        buffer.add_image(t * MS, f"img{t}")
        buffer.add_companion("camera_info", t * MS, f"info{t}")
    buffer.add_companion("depth", 100 * MS, "depth100")
    assert not buffer.add_detections(133 * MS, "d133")  # waits for depth 133
    # Complete at once: pending (nothing later is complete yet), and 133 keeps waiting.
    assert buffer.add_detections(100 * MS, "d100")
    assert buffer.pending == 1 and buffer.waiting_pairs == 1
    assert buffer.add_companion("depth", 133 * MS, "depth133")
    assert buffer.take().image == "img133" and buffer.counts["replaced_pending"] == 1
    plain = PairBuffer(capacity=5)  # without companions: the same rule
    for t in (100, 133):
        plain.add_image(t * MS, t)
    plain.add_detections(133 * MS, "d133")
    plain.add_detections(100 * MS, "d100")
    assert plain.take().detections == "d133" and plain.counts["replaced_pending"] == 1


def test_a_stamp_that_jumps_back_starts_a_new_timeline():
    """A bag played in a loop: the old timeline's depth must not decide the new frames' pairs."""
    buffer, _, _ = depth_buffer(wait_s=1.0)
    for t in (5000, 5033):
        buffer.add_image(t * MS, t)
        buffer.add_companion("depth", t * MS, f"depth{t}")
        buffer.add_companion("camera_info", t * MS, f"info{t}")
    buffer.add_image(100 * MS, "img100")  # 4.9 s back
    assert buffer.counts["stamp_jumps_back"] == 1
    assert not buffer.add_detections(100 * MS, "d100")  # waits: no depth of the new timeline yet
    buffer.add_companion("camera_info", 100 * MS, "info100")
    assert buffer.add_companion("depth", 100 * MS, "depth100")
    assert buffer.take().companions == {"depth": "depth100", "camera_info": "info100"}


def test_the_deadline_waker_survives_a_failing_callback():
    import threading

    from interactvlm_ros.ros.sync import DeadlineWaker

    errors, calls, called = [], [], threading.Event()

    def callback():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        called.set()

    waker = DeadlineWaker(callback, FakeClock(), on_error=errors.append)
    try:
        waker.at(0.0)
        waker_alive = waker._thread.is_alive
        assert wait_until(lambda: errors) and waker_alive()
        waker.at(0.0)
        assert called.wait(timeout=30) and len(calls) == 2
        assert [str(e) for e in errors] == ["boom"]
    finally:
        waker.close()


def wait_until(condition, timeout: float = 30.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not condition():
        time.sleep(0.01)
    return bool(condition())
