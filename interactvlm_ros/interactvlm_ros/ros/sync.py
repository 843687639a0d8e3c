"""Pairing detections (and depth) with images by stamp: one rule for the node, replay and
depth, and the node's buffer that keeps only the newest unprocessed pair.

The rule (:func:`nearest_stamp`): a detections message belongs to the image whose stamp is
nearest to its own, within ``slop`` (ties: the earlier image). Images arrive in stamp order, so
the node can decide once an image at or after the detections' stamp has arrived
(:func:`decidable`); replay, which sees the whole bag, applies the same rule to all its images
at once. Both therefore pair a bag identically (tested), whatever the arrival order of
detections and images.

The model is slower than the camera, so queueing would make latency grow without bound:
:class:`PairBuffer` keeps a small ring of recent images, and each decided pair becomes *the*
pending pair, replacing (and counting) any pair not yet taken. No rclpy import: stamps are
integer nanoseconds.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any, Sequence


def nearest_stamp(target: int, stamps: Sequence[int], slop: int) -> int | None:
    """Index of the stamp nearest to ``target`` within ``slop`` (|stamp - target| <= slop),
    the earlier one on a tie, or None.

    Args:
        target: stamp to match (ns); stamps: candidates (ns), in increasing order; slop: ns >= 0.
    """
    position = bisect.bisect_left(stamps, target)
    best = None
    for index in (position - 1, position):
        if 0 <= index < len(stamps) and abs(stamps[index] - target) <= slop:
            if best is None or abs(stamps[index] - target) < abs(stamps[best] - target):
                best = index
    return best


def decidable(target: int, latest_stamp: int | None) -> bool:
    """Whether the nearest image of ``target`` is known once images up to ``latest_stamp``
    (ns) have arrived in stamp order: a later image can only be farther than one at or after
    ``target``."""
    return latest_stamp is not None and latest_stamp >= target


def pair_stamps(detection_stamps: Sequence[int], image_stamps: Sequence[int], slop: int) -> list[int | None]:
    """For each detections stamp, the index of its image in ``image_stamps`` (increasing), or
    None: :func:`nearest_stamp` for every one (what replay does with a whole bag)."""
    return [nearest_stamp(stamp, image_stamps, slop) for stamp in detection_stamps]


@dataclass(frozen=True)
class Pair:
    """An image (any payload) and the detections with a matching stamp (nanoseconds)."""

    image_stamp_ns: int
    image: Any
    detections_stamp_ns: int
    detections: Any


class PairBuffer:
    """Thread-safe pairing of images and detections by :func:`nearest_stamp`.

    Args:
        capacity: images kept (the oldest is evicted; evicted images never paired are not
            counted as drops: most camera frames have no detections), and detections messages
            waiting for a later image.
        slop_ns: largest |image stamp - detections stamp| accepted, nanoseconds.

    Counters (``counts``): ``paired``, ``replaced_pending`` (a pair overwritten by a newer one
    before being taken), ``unmatched_detections`` (no image within slop, or evicted while
    waiting), ``taken``.
    """

    def __init__(self, capacity: int = 10, slop_ns: int = 0):
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._images: deque[tuple[int, Any]] = deque(maxlen=capacity)
        self._waiting: deque[tuple[int, Any]] = deque(maxlen=capacity)
        self.slop_ns = int(slop_ns)
        self._pending: Pair | None = None
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()

    def add_image(self, stamp_ns: int, image: Any) -> None:
        """Store an image (stamps in increasing order); pair the waiting detections whose
        nearest image is now known."""
        with self._lock:
            self._images.append((stamp_ns, image))
            still_waiting = deque(maxlen=self._waiting.maxlen)
            for det_stamp, detections in self._waiting:
                if decidable(det_stamp, stamp_ns):
                    self._pair(det_stamp, detections)
                else:
                    still_waiting.append((det_stamp, detections))
            self._waiting = still_waiting

    def add_detections(self, stamp_ns: int, detections: Any) -> bool:
        """Pair detections with their image when it is known; otherwise they wait (bounded)
        for a later image. Returns whether a pair was made."""
        with self._lock:
            latest = self._images[-1][0] if self._images else None
            if decidable(stamp_ns, latest):
                return self._pair(stamp_ns, detections)
            if len(self._waiting) == self._waiting.maxlen:
                self.counts["unmatched_detections"] += 1  # the oldest waiting one is evicted
            self._waiting.append((stamp_ns, detections))
            return False

    def _pair(self, stamp_ns: int, detections: Any) -> bool:
        images = sorted(self._images, key=lambda item: item[0])  # in case one arrived out of order
        index = nearest_stamp(stamp_ns, [s for s, _ in images], self.slop_ns)
        if index is None:
            self.counts["unmatched_detections"] += 1
            return False
        if self._pending is not None:
            self.counts["replaced_pending"] += 1
        self._pending = Pair(images[index][0], images[index][1], stamp_ns, detections)
        self.counts["paired"] += 1
        return True

    def take(self) -> Pair | None:
        """The pending pair (removing it), or None."""
        with self._lock:
            pair, self._pending = self._pending, None
            if pair is not None:
                self.counts["taken"] += 1
            return pair

    @property
    def waiting_detections(self) -> int:
        """Detections messages stored until an image at or after their stamp arrives."""
        with self._lock:
            return len(self._waiting)

    @property
    def pending(self) -> int:
        with self._lock:
            return int(self._pending is not None)
