"""Image/detection pairing: exact and slop matching, newest-pair-only, counted drops."""

from __future__ import annotations

import pytest

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
