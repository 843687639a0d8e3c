"""What the node reports on ``/diagnostics`` and in its log, kept apart from the node so it can
be tested without DDS: event counters over a sliding window, the per-reason log throttle, and
``build_status`` (counts -> ``diagnostic_msgs/DiagnosticStatus``).

The status level is computed from the last ``window`` seconds only (as ``diagnostic_updater``'s
frequency status does), so an old error no longer holds the status at WARN once inputs are
processed again; cumulative totals are reported too.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass, field

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from ..reasons import Reason

#: Events the node counts that are not reasons (inputs seen, outputs produced).
RECEIVED_IMAGES = "images_received"
RECEIVED_DETECTIONS = "detections_received"
PROCESSED = "pairs_processed"
#: Person bodies posed in the camera frame and published (``InteractionArray.persons``).
PERSONS_POSED = "persons_posed"
#: Objects without depth placed in the camera frame by their contact (``placement`` "contact_fit").
OBJECTS_PLACED = "objects_placed_by_contact"


class WindowedCounter:
    """Event counts, cumulative and over the last ``window`` seconds (thread-safe).

    Counts are kept per whole second (an event at t counts while int(t) >= now - window), so
    memory is bounded by keys x window.

    Args:
        window: seconds the recent counts cover (> 0).
    """

    def __init__(self, window: float = 30.0):
        if window <= 0:
            raise ValueError(f"window must be positive, got {window}")
        self.window = float(window)
        self.lock = threading.Lock()
        self.totals: Counter[str] = Counter()
        self._buckets: dict[str, deque] = {}

    def count(self, key: str, now: float, n: int = 1) -> None:
        """Count ``n`` events of ``key`` at time ``now`` (seconds, monotonic)."""
        second = int(now)
        with self.lock:
            self.totals[key] += n
            buckets = self._buckets.setdefault(key, deque())
            if buckets and buckets[-1][0] == second:
                buckets[-1][1] += n
            else:
                buckets.append([second, n])
            self._prune(buckets, now)

    def _prune(self, buckets: deque, now: float) -> None:
        while buckets and buckets[0][0] < now - self.window:
            buckets.popleft()

    def recent(self, now: float) -> dict[str, int]:
        """Counts of the events in the last ``window`` seconds (whole seconds), non-zero only."""
        with self.lock:
            result = {}
            for key, buckets in self._buckets.items():
                self._prune(buckets, now)
                total = sum(n for _, n in buckets)
                if total:
                    result[key] = total
            return result

    def snapshot(self, now: float) -> tuple[dict[str, int], dict[str, int]]:
        """(totals, recent) at ``now``."""
        recent = self.recent(now)
        with self.lock:
            return dict(self.totals), recent


@dataclass
class ReasonLog:
    """A log throttle per reason: the first report of a reason is logged, then at most one
    every ``period`` seconds, saying how many were not logged in between.

    Args:
        period: seconds between two log lines of the same reason.
    """

    period: float = 5.0
    _last: dict = field(default_factory=dict)
    _suppressed: Counter = field(default_factory=Counter)

    def admit(self, reason: str, now: float) -> int | None:
        """None when this report is not to be logged; otherwise the number of reports of the
        reason that were not logged since the last line (0 or more)."""
        last = self._last.get(reason)
        if last is not None and now - last < self.period:
            self._suppressed[reason] += 1
            return None
        self._last[reason] = now
        return self._suppressed.pop(reason, 0)


def _reason_severity(key: str) -> str | None:
    try:
        return Reason(key).severity
    except ValueError:
        return None  # an event (images_received, ...), not a reason


#: What the status says when detections come without any image: the usual causes.
NO_IMAGES_HINT = ("check image_topic and its QoS; raw images larger than the DDS transport carries between processes "
                  "never arrive: use the shipped large-image Fast DDS profile (config/fastdds_large_images.xml) on both "
                  "sides, or compressed images (use_compressed)")


def status_level(recent: dict[str, int], weights_are_random: bool, state: str | None = None) -> tuple[int, str]:
    """(level, message) from the counts of the last window (see the module docstring):

    * WARN, naming the lifecycle ``state``, when the node is not active (``state`` not None:
      "unconfigured", "inactive"...): it processes nothing;
    * ERROR: inference errors and no processed pair in the window;
    * WARN: inference errors among processed pairs, detections arriving without images (or
      without an image of their stamp), warn-level drops (``Reason.severity`` "warn"), or
      random weights;
    * OK otherwise.

    With random weights the message always ends with "RANDOM WEIGHTS: outputs are meaningless".
    """
    if state is not None:
        action = "activate it" if state == "inactive" else "configure and activate it"
        level, message = DiagnosticStatus.WARN, f"{state}: not processing ({action})"
    else:
        level, message = _level(recent)
    if weights_are_random:
        return max(level, DiagnosticStatus.WARN), ("" if level == DiagnosticStatus.OK else f"{message}; ") + \
            "RANDOM WEIGHTS: outputs are meaningless"
    return level, message


def _level(recent: dict[str, int]) -> tuple[int, str]:
    errors = recent.get(Reason.INFERENCE_ERROR, 0)
    if errors and not recent.get(PROCESSED):
        return DiagnosticStatus.ERROR, f"{errors} inference errors in the window, no pair processed"
    if errors:
        return DiagnosticStatus.WARN, f"{errors} inference errors in the window"
    if recent.get(RECEIVED_DETECTIONS) and not recent.get(RECEIVED_IMAGES):
        return DiagnosticStatus.WARN, (f"detections arrive but no images ({recent[RECEIVED_DETECTIONS]} detections "
                                       f"messages, 0 images in the window): {NO_IMAGES_HINT}")
    warned = sorted((k for k in recent if _reason_severity(k) == "warn"), key=lambda k: -recent[k])
    if warned:
        parts = ", ".join(f"{k} x{recent[k]}" for k in warned[:4])
        if Reason.ANSWER_LIMIT_REACHED in recent:
            parts += " (answer_limit_reached: raise max_new_tokens)"
        if Reason.NO_IMAGE_FOR_DETECTIONS in recent:
            parts += (" (no_image_for_detections: no image within sync_slop of the detections' stamp arrived: stamps "
                      "that differ, or images lost on the way: best-effort QoS, raw images too large for the transport)")
        if Reason.NO_DEPTH_FOR_IMAGE in recent:
            parts += (" (no_depth_for_image: check depth_topic, camera_info_topic and their stamps; raise depth_wait "
                      "if depth comes late)")
        return DiagnosticStatus.WARN, f"inputs dropped or degraded in the window: {parts}"
    return DiagnosticStatus.OK, "running"


def build_status(name: str, hardware_id: str, totals: dict[str, int], recent: dict[str, int], window: float,
                 values: dict[str, str], weights_are_random: bool, state: str | None = None) -> DiagnosticStatus:
    """The node's DiagnosticStatus.

    Args:
        name: status name (``"<node>: pipeline"``); hardware_id: the device.
        totals: cumulative counts by key; recent: counts of the last ``window`` seconds.
        values: further key/values shown first (device, rates, latencies...).
        weights_are_random: the model has random weights (WARN when nothing worse).
        state: the lifecycle state when the node is not active (see :func:`status_level`).

    Returns:
        level and message from :func:`status_level`; values: ``values``, ``window_s``, every
        total, and ``recent_<key>`` for each key counted in the window.
    """
    level, message = status_level(recent, weights_are_random, state)
    pairs = {**values, "weights_are_random": str(bool(weights_are_random)).lower(), "window_s": f"{window:g}",
             **{k: str(v) for k, v in sorted(totals.items())},
             **{f"recent_{k}": str(v) for k, v in sorted(recent.items())}}
    return DiagnosticStatus(level=level, name=name, message=message, hardware_id=hardware_id,
                            values=[KeyValue(key=str(k), value=str(v)) for k, v in pairs.items()])
