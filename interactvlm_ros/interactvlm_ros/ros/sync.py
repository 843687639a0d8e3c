"""Pairing detections, depth and CameraInfo with images by stamp: one rule for the node, replay
and depth, and the node's buffer that keeps only the newest unprocessed pair.

The rule (:func:`nearest_stamp`): a detections message belongs to the image whose stamp is
nearest to its own, within ``slop`` (ties: the earlier image); an image's registered depth and
CameraInfo are the ones nearest to the image's stamp, within the same ``slop``. Messages of one
topic arrive in stamp order, so the node can decide once a message at or after the wanted stamp
has arrived (:func:`decidable`); replay, which sees the whole bag, applies the same rule to all
its messages at once. Both therefore pair a bag identically (tested), whatever the arrival order
of the topics.

The model is slower than the camera, so queueing would make latency grow without bound:
:class:`PairBuffer` keeps a small ring of recent images, and each complete pair becomes *the*
pending pair, replacing (and counting) any pair not yet taken. With companions (depth and
CameraInfo), a pair of image and detections waits for them up to a bounded time, like
``message_filters``' ApproximateTime over all the inputs, but never behind a newer pair: once a
newer pair is complete, older incomplete ones are dropped (counted). No rclpy import: stamps
are integer nanoseconds, deadlines seconds of ``clock``.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence

from ..reasons import Reason


#: A stamp this many seconds before the newest of its stream starts a new timeline (see
#: :meth:`PairBuffer._went_back`).
STAMP_JUMP_BACK_S = 1.0


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
    """Whether the nearest message of ``target`` is known once messages up to ``latest_stamp``
    (ns) have arrived in stamp order: a later one can only be farther than one at or after
    ``target``."""
    return latest_stamp is not None and latest_stamp >= target


def pair_stamps(detection_stamps: Sequence[int], image_stamps: Sequence[int], slop: int) -> list[int | None]:
    """For each detections (or image) stamp, the index of its match in ``image_stamps``
    (increasing), or None: :func:`nearest_stamp` for every one (what replay does with a whole
    bag, for images and for their depth and CameraInfo)."""
    return [nearest_stamp(stamp, image_stamps, slop) for stamp in detection_stamps]


@dataclass(frozen=True)
class Pair:
    """An image (any payload), the detections with a matching stamp (nanoseconds), and the
    image's companions: name -> the message nearest to the image's stamp within the slop, or
    None when none arrived in time (see :class:`PairBuffer`); ``waited_s``: how long the pair
    waited for them (seconds of the buffer's clock, 0 without companions)."""

    image_stamp_ns: int
    image: Any
    detections_stamp_ns: int
    detections: Any
    companions: Mapping[str, Any] = field(default_factory=dict)
    waited_s: float = 0.0


class PairBuffer:
    """Thread-safe pairing of images, detections and companions by :func:`nearest_stamp`.

    Args:
        capacity: images kept (the oldest is evicted; evicted images never paired are not
            counted as drops: most camera frames have no detections), detections messages
            waiting for a later image, messages kept per companion, and pairs waiting for their
            companions.
        slop_ns: largest |image stamp - detections (or companion) stamp| accepted, nanoseconds.
        companions: names of the streams every pair also needs (the node: ``("depth",
            "camera_info")`` with ``use_depth``), added with :meth:`add_companion`.
        wait_s: longest time (seconds of ``clock``) an image + detections pair waits for its
            companions; then it is complete without those that did not come (None in
            :attr:`Pair.companions`). 0: take what has arrived when the pair is made.
        optional: companions waited for only once their stream has delivered a message to this
            buffer (the node: CameraInfo for the people without ``use_depth``, so that a camera
            without CameraInfo costs no wait); until then pairs go without them at once.
        report: called as ``report(reason, detail)`` for an input dropped by the pairing
            (``Reason.NO_IMAGE_FOR_DETECTIONS``, ``Reason.DUPLICATE_STAMP``).
        clock: monotonic seconds (tests pass their own).
        counts: the Counter to count in (the node keeps one over its buffers); default a new one.

    Counters (``counts``): ``paired`` (image + detections matched), ``replaced_pending`` (a
    pair dropped for a newer one: overwritten before being taken, or still waiting for its
    companions when a pair of a later image was complete: the pending pair is always the one of
    the latest image), ``unmatched_detections`` (no image within slop, or evicted while
    waiting), ``duplicate_stamps`` (a second image or companion with a stamp already kept: the
    first is kept), ``stamp_jumps_back`` (a stream's stamp went back by more than
    :data:`STAMP_JUMP_BACK_S`: everything kept was forgotten), ``taken``.
    """

    def __init__(self, capacity: int = 10, slop_ns: int = 0, companions: Sequence[str] = (), wait_s: float = 0.0,
                 report: Callable[[Reason, str], None] | None = None, clock: Callable[[], float] = time.monotonic,
                 counts: Counter | None = None, optional: Sequence[str] = ()):
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        if not set(optional) <= set(companions):
            raise ValueError(f"optional {sorted(optional)} must be among the companions {sorted(companions)}")
        self._optional = frozenset(optional)
        self._heard: set[str] = set()  # companions that have delivered a message
        if wait_s < 0:
            raise ValueError(f"wait_s must be >= 0, got {wait_s}")
        self._images: deque[tuple[int, Any]] = deque(maxlen=capacity)
        self._waiting: deque[tuple[int, Any]] = deque(maxlen=capacity)
        self._companions: dict[str, deque[tuple[int, Any]]] = {name: deque(maxlen=capacity) for name in companions}
        self._incomplete: deque[tuple[Pair, float]] = deque()  # (pair, clock when made), oldest first
        self._capacity = capacity
        self.slop_ns = int(slop_ns)
        self.wait_s = float(wait_s)
        self._report = report or (lambda reason, detail: None)
        self._clock = clock
        self._pending: Pair | None = None
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter() if counts is None else counts

    @property
    def companions(self) -> tuple[str, ...]:
        return tuple(self._companions)

    def add_image(self, stamp_ns: int, image: Any) -> bool:
        """Store an image (stamps in increasing order); pair the waiting detections whose
        nearest image is now known. A second image with the stamp of one kept is dropped
        (reported ``duplicate_stamp``). Returns whether a pair became complete."""
        with self._lock:
            if not self._admit(self._images, "image", stamp_ns):
                return False
            self._images.append((stamp_ns, image))
            still_waiting, completed = deque(maxlen=self._waiting.maxlen), False
            for det_stamp, detections in self._waiting:
                if decidable(det_stamp, stamp_ns):
                    completed |= self._pair(det_stamp, detections)
                else:
                    still_waiting.append((det_stamp, detections))
            self._waiting = still_waiting
            return completed

    def add_detections(self, stamp_ns: int, detections: Any) -> bool:
        """Pair detections with their image when it is known; otherwise they wait (bounded)
        for a later image. Returns whether a pair became complete."""
        with self._lock:
            latest = self._images[-1][0] if self._images else None
            if decidable(stamp_ns, latest):
                return self._pair(stamp_ns, detections)
            if len(self._waiting) == self._waiting.maxlen:
                old_stamp, _ = self._waiting[0]  # evicted by the append below
                self._unmatched(old_stamp, "evicted while waiting for an image at or after its stamp")
            self._waiting.append((stamp_ns, detections))
            return False

    def add_companion(self, name: str, stamp_ns: int, message: Any) -> bool:
        """Store a companion message (stamps in increasing order per name) and complete the
        waiting pairs it decides. Returns whether a pair became complete.

        Raises:
            KeyError: ``name`` is not one of ``companions``.
        """
        with self._lock:
            kept = self._companions[name]
            if not self._admit(kept, name, stamp_ns):
                return False
            kept.append((stamp_ns, message))
            self._heard.add(name)
            return self._complete_incomplete(expired_only=False)

    def expire(self) -> bool:
        """Complete the pairs whose wait for companions is over (``clock() >= deadline``),
        without what did not come. Returns whether a pair became complete."""
        with self._lock:
            return self._complete_incomplete(expired_only=True)

    def next_deadline(self) -> float | None:
        """The earliest deadline (seconds of ``clock``) of a pair waiting for companions."""
        with self._lock:
            made = min((made for _, made in self._incomplete), default=None)
            return None if made is None else made + self.wait_s

    def companion_for(self, name: str, stamp_ns: int) -> Any:
        """The kept ``name`` message nearest to ``stamp_ns`` within the slop, or None (no
        waiting: for requests about an image that is not in the stream); None as well when
        ``name`` is not one of this buffer's companions."""
        if name not in self._companions:
            return None
        with self._lock:
            found, _ = self._lookup(name, stamp_ns)
            return found

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
    def waiting_pairs(self) -> int:
        """Pairs of image and detections waiting for their companions."""
        with self._lock:
            return len(self._incomplete)

    @property
    def pending(self) -> int:
        """1 when a complete pair waits to be taken, else 0."""
        with self._lock:
            return int(self._pending is not None)

    # ------------------------------------------------------------------------- internals
    def _admit(self, kept: deque, what: str, stamp_ns: int) -> bool:
        """Whether a message of a stream (``kept``: its messages) may be kept: a stamp jumping
        back starts a new timeline (:meth:`_went_back`); a second message with a stamp kept is
        dropped (``duplicate_stamp``, the first one stays)."""
        self._went_back(kept, stamp_ns)
        if any(s == stamp_ns for s, _ in kept):
            self.counts["duplicate_stamps"] += 1
            self._report(Reason.DUPLICATE_STAMP, f"a second {what} message with stamp {_seconds(stamp_ns)} s; the "
                                                 "first one received is kept")
            return False
        return True

    def _unmatched(self, stamp_ns: int, why: str) -> None:
        self.counts["unmatched_detections"] += 1
        self._report(Reason.NO_IMAGE_FOR_DETECTIONS, f"detections stamped {_seconds(stamp_ns)} s: {why}")

    def _pair(self, stamp_ns: int, detections: Any) -> bool:
        images = sorted(self._images, key=lambda item: item[0])  # in case one arrived out of order
        index = nearest_stamp(stamp_ns, [s for s, _ in images], self.slop_ns)
        if index is None:
            self._unmatched(stamp_ns, f"no image within sync_slop ({self.slop_ns / 1e9:g} s) of it among the "
                                      f"{len(images)} kept")
            return False
        self.counts["paired"] += 1
        pair = Pair(images[index][0], images[index][1], stamp_ns, detections)
        if not self._companions:
            self._set_pending(pair)
            return True
        self._incomplete.append((pair, self._clock()))
        if len(self._incomplete) > self._capacity:
            self._incomplete.popleft()
            self.counts["replaced_pending"] += 1
        return self._complete_incomplete(expired_only=False)

    def _lookup(self, name: str, stamp_ns: int) -> tuple[Any, bool]:
        """(message nearest to ``stamp_ns`` within the slop or None, whether that is final)."""
        if name in self._optional and name not in self._heard:
            return None, True
        kept = sorted(self._companions[name], key=lambda item: item[0])
        stamps = [s for s, _ in kept]
        index = nearest_stamp(stamp_ns, stamps, self.slop_ns)
        final = decidable(stamp_ns, stamps[-1] if stamps else None)
        return (kept[index][1] if index is not None else None), final

    def _complete_incomplete(self, expired_only: bool) -> bool:
        """Move the waiting pairs that are decided (all companions known, or the deadline
        passed) to pending: the one of the latest image wins (on a tie the later made), and every
        waiting pair of an earlier image is dropped, so a late companion never holds a newer
        frame."""
        now = self._clock()
        newest = None
        for position, (pair, made) in enumerate(self._incomplete):
            found = {name: self._lookup(name, pair.image_stamp_ns) for name in self._companions}
            if now >= made + self.wait_s or (not expired_only and all(f for _, f in found.values())):
                if newest is None or pair.image_stamp_ns >= newest[1].image_stamp_ns:
                    newest = (position, replace(pair, companions={name: m for name, (m, _) in found.items()},
                                                waited_s=now - made))
        if newest is None:
            return False
        position, pair = newest
        del self._incomplete[position]
        kept = deque(item for item in self._incomplete if item[0].image_stamp_ns >= pair.image_stamp_ns)
        self.counts["replaced_pending"] += len(self._incomplete) - len(kept)
        self._incomplete = kept
        self._set_pending(pair)
        return True

    def _set_pending(self, pair: Pair) -> None:
        """``pair`` becomes the pending pair unless the pending one is of a later image (then
        ``pair`` is the one dropped); either way one of the two is counted as replaced."""
        if self._pending is not None:
            self.counts["replaced_pending"] += 1
            if self._pending.image_stamp_ns > pair.image_stamp_ns:
                return
        self._pending = pair

    def counts_snapshot(self) -> dict[str, int]:
        """A copy of ``counts`` taken under the buffer's lock (other threads count meanwhile)."""
        with self._lock:
            return dict(self.counts)

    def _went_back(self, kept: deque, stamp_ns: int) -> None:
        """A stamp more than :data:`STAMP_JUMP_BACK_S` before the newest kept of its stream (a
        bag played in a loop, a restarted driver, simulated time reset): everything kept is of
        the old timeline and is forgotten, so that nothing pairs across the jump."""
        if kept and stamp_ns < kept[-1][0] - int(STAMP_JUMP_BACK_S * 1e9):
            self.counts["stamp_jumps_back"] += 1
            self._images.clear()
            self._waiting.clear()
            self._incomplete.clear()
            for companion in self._companions.values():
                companion.clear()


def _seconds(stamp_ns: int) -> str:
    return f"{stamp_ns / 1e9:.9f}".rstrip("0").rstrip(".")


class DeadlineWaker:
    """One thread that calls ``callback()`` at the earliest deadline it has been given: the
    node's wake-up for pairs whose wait for depth ends (:meth:`PairBuffer.next_deadline`). One
    long-lived thread instead of a timer thread per wait (a 30 Hz camera would start several
    threads a second).

    Args:
        callback: called on the waker's thread, without its lock held; it may call :meth:`at`.
        clock: monotonic seconds, the clock of the deadlines.
        on_error: called with an exception the callback raised (the thread goes on); default:
            the traceback on stderr.
    """

    def __init__(self, callback: Callable[[], None], clock: Callable[[], float] = time.monotonic,
                 on_error: Callable[[BaseException], None] | None = None):
        self._callback = callback
        self._on_error = on_error
        self._clock = clock
        self._condition = threading.Condition()
        self._deadline: float | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="interactvlm_deadline", daemon=True)
        self._thread.start()

    def at(self, deadline: float) -> None:
        """Call back at ``deadline`` (seconds of ``clock``), or at an earlier one already set."""
        with self._condition:
            if self._deadline is None or deadline < self._deadline:
                self._deadline = deadline
                self._condition.notify()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread (a pending deadline is dropped) and join it."""
        with self._condition:
            self._closed = True
            self._condition.notify()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        with self._condition:
            while not self._closed:
                if self._deadline is None:
                    self._condition.wait()
                    continue
                delay = self._deadline - self._clock()
                if delay > 0:
                    self._condition.wait(delay)
                    continue
                self._deadline = None
                self._condition.release()
                try:
                    self._callback()
                except Exception as error:  # noqa: BLE001 - the waker must outlive a failed wake-up
                    if self._on_error is not None:
                        self._on_error(error)
                    else:
                        import traceback

                        traceback.print_exception(error)
                finally:
                    self._condition.acquire()

