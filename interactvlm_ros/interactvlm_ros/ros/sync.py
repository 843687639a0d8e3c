"""Pairing images with detections by stamp, keeping only the newest unprocessed pair.

The model is slower than the camera, so queueing would make latency grow without bound.
:class:`PairBuffer` keeps a small ring of recent images; each detections message is paired
with the image of the same stamp (or the nearest within ``slop``) and becomes *the* pending
pair, replacing (and counting as dropped) any pair not yet taken. No rclpy import: stamps are
integer nanoseconds.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Pair:
    """An image (any payload) and the detections with a matching stamp (nanoseconds)."""

    image_stamp_ns: int
    image: Any
    detections_stamp_ns: int
    detections: Any


class PairBuffer:
    """Thread-safe pairing of images and detections.

    Args:
        capacity: images kept (the oldest is evicted; evicted images never paired are not
            counted as drops: most camera frames have no detections).
        slop_ns: largest |image stamp - detections stamp| accepted, nanoseconds.

    Counters (``counts``): ``paired``, ``replaced_pending`` (a pair overwritten by a newer one
    before being taken), ``unmatched_detections`` (no image within slop), ``taken``.
    """

    def __init__(self, capacity: int = 10, slop_ns: int = 0):
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._images: deque[tuple[int, Any]] = deque(maxlen=capacity)
        self._detections: deque[tuple[int, Any]] = deque(maxlen=capacity)
        self.slop_ns = int(slop_ns)
        self._pending: Pair | None = None
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self.counts: Counter[str] = Counter()

    def add_image(self, stamp_ns: int, image: Any) -> None:
        """Store an image; pair it with detections that arrived before it, if any waited.
        Waiting detections older than this image by more than the slop can no longer be
        paired (images arrive in stamp order): they are dropped and counted as unmatched."""
        with self._lock:
            self._images.append((stamp_ns, image))
            waiting = deque(maxlen=self._detections.maxlen)
            for det_stamp, detections in self._detections:
                if abs(det_stamp - stamp_ns) <= self.slop_ns:
                    self._set_pending(Pair(stamp_ns, image, det_stamp, detections))
                elif det_stamp < stamp_ns - self.slop_ns:
                    self.counts["unmatched_detections"] += 1
                else:
                    waiting.append((det_stamp, detections))
            self._detections = waiting

    def add_detections(self, stamp_ns: int, detections: Any) -> bool:
        """Pair detections with the nearest stored image within slop. Returns whether a pair
        was made; if not, the detections wait (bounded) for a later image of their stamp."""
        with self._lock:
            best = None
            for image_stamp, image in self._images:
                gap = abs(image_stamp - stamp_ns)
                if gap <= self.slop_ns and (best is None or gap < best[0]):
                    best = (gap, image_stamp, image)
            if best is None:
                if len(self._detections) == self._detections.maxlen:
                    self.counts["unmatched_detections"] += 1  # the oldest waiting one is evicted
                self._detections.append((stamp_ns, detections))
                return False
            self._set_pending(Pair(best[1], best[2], stamp_ns, detections))
            return True

    def _set_pending(self, pair: Pair) -> None:
        if self._pending is not None:
            self.counts["replaced_pending"] += 1
        self._pending = pair
        self.counts["paired"] += 1
        self._ready.notify_all()

    def take(self, timeout: float | None = None) -> Pair | None:
        """The pending pair (removing it), waiting up to ``timeout`` seconds; None if none."""
        with self._lock:
            if self._pending is None and timeout:
                self._ready.wait(timeout)
            pair, self._pending = self._pending, None
            if pair is not None:
                self.counts["taken"] += 1
            return pair

    @property
    def waiting_detections(self) -> int:
        """Detections messages stored until an image of their stamp arrives."""
        with self._lock:
            return len(self._detections)

    @property
    def pending(self) -> int:
        with self._lock:
            return int(self._pending is not None)

    def wake(self) -> None:
        """Wake a thread blocked in :meth:`take` (shutdown)."""
        with self._lock:
            self._ready.notify_all()
