"""Image/detection pairing: exact and slop matching, newest-pair-only, counted drops."""

from __future__ import annotations

import threading

import pytest

from interactvlm_ros.ros.sync import PairBuffer

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


def test_take_waits_for_a_pair():
    buffer = PairBuffer()
    taken = []
    worker = threading.Thread(target=lambda: taken.append(buffer.take(timeout=10.0)))
    worker.start()
    buffer.add_image(5, "img")
    buffer.add_detections(5, "dets")
    worker.join(timeout=10.0)
    assert taken and taken[0].image == "img"
    assert buffer.take(timeout=0.01) is None
    with pytest.raises(ValueError):
        PairBuffer(capacity=0)
