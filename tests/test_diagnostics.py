"""/diagnostics content without DDS: windowed counts, the level recovering, the per-reason log
throttle, and the message builder."""

from __future__ import annotations

import pytest
from diagnostic_msgs.msg import DiagnosticStatus

from interactvlm_ros.reasons import Reason
from interactvlm_ros.ros.diagnostics import (PROCESSED, RECEIVED_DETECTIONS, RECEIVED_IMAGES, ReasonLog,
                                             WindowedCounter, build_status, status_level)


def test_counts_leave_the_window_but_stay_in_the_totals():
    counter = WindowedCounter(window=10.0)
    counter.count(Reason.INFERENCE_ERROR, now=100.2)
    counter.count(PROCESSED, now=100.5, n=3)
    counter.count(PROCESSED, now=105.9)
    assert counter.recent(now=106.0) == {Reason.INFERENCE_ERROR: 1, PROCESSED: 4}
    assert counter.recent(now=110.0) == {Reason.INFERENCE_ERROR: 1, PROCESSED: 4}  # second 100 >= 110 - 10
    assert counter.recent(now=111.5) == {PROCESSED: 1}
    assert counter.recent(now=116.5) == {}
    assert counter.totals == {Reason.INFERENCE_ERROR: 1, PROCESSED: 4}
    with pytest.raises(ValueError):
        WindowedCounter(window=0)


def test_the_level_recovers_once_errors_leave_the_window():
    counter = WindowedCounter(window=5.0)
    counter.count(Reason.INFERENCE_ERROR, now=0.0)
    assert status_level(counter.recent(1.0), False)[0] == DiagnosticStatus.ERROR  # nothing processed
    counter.count(PROCESSED, now=2.0)
    assert status_level(counter.recent(3.0), False) == (DiagnosticStatus.WARN, "1 inference errors in the window")
    counter.count(PROCESSED, now=8.0)
    assert status_level(counter.recent(8.0), False) == (DiagnosticStatus.OK, "running")
    assert counter.totals[Reason.INFERENCE_ERROR] == 1


def test_levels_for_drops_images_and_random_weights():
    level, message = status_level({Reason.BOX_TOO_SMALL: 3, Reason.LOW_SCORE: 9, PROCESSED: 1}, False)
    assert level == DiagnosticStatus.WARN and message == "inputs dropped or degraded in the window: box_too_small x3"
    assert status_level({Reason.LOW_SCORE: 9, Reason.IGNORED_CLASS: 2}, False)[0] == DiagnosticStatus.OK  # routine
    assert "raise max_new_tokens" in status_level({Reason.ANSWER_LIMIT_REACHED: 1}, False)[1]
    # Detections keep coming but images stopped (also after some had arrived: only the window counts).
    level, message = status_level({RECEIVED_DETECTIONS: 12}, False)
    assert level == DiagnosticStatus.WARN and message.startswith("detections arrive but no images")
    assert status_level({RECEIVED_DETECTIONS: 12, RECEIVED_IMAGES: 12}, False)[0] == DiagnosticStatus.OK
    assert status_level({}, True) == (DiagnosticStatus.WARN, "RANDOM WEIGHTS: outputs are meaningless")
    assert status_level({Reason.INFERENCE_ERROR: 1}, True)[1].endswith("; RANDOM WEIGHTS: outputs are meaningless")


def test_build_status():
    status = build_status("node: pipeline", "cpu", {PROCESSED: 7, Reason.LOW_SCORE: 2}, {Reason.LOW_SCORE: 1}, 30.0,
                          {"device": "cpu"}, False)
    values = {v.key: v.value for v in status.values}
    assert (status.level, status.name, status.hardware_id) == (DiagnosticStatus.OK, "node: pipeline", "cpu")
    assert values == {"device": "cpu", "weights_are_random": "false", "window_s": "30", "low_score": "2",
                      "pairs_processed": "7", "recent_low_score": "1"}


def test_each_reason_has_its_own_log_throttle():
    log = ReasonLog(period=5.0)
    assert log.admit("low_score", 0.0) == 0
    assert log.admit("box_too_small", 1.0) == 0  # another reason within 5 s is logged
    assert log.admit("low_score", 2.0) is None and log.admit("low_score", 3.0) is None
    assert log.admit("low_score", 5.0) == 2  # logged again, saying 2 were not


def test_reasons_have_a_severity_and_say_whether_the_input_was_used():
    assert Reason.LOW_SCORE.severity == "quiet" and Reason.INFERENCE_ERROR.severity == "error"
    assert Reason.INVALID_LABEL.severity == "warn" and Reason.INVALID_LABEL.drops
    assert not Reason.ANSWER_LIMIT_REACHED.drops and not Reason.DETECTIONS_FRAME_MISMATCH.drops
    assert Reason("box_too_small") is Reason.BOX_TOO_SMALL
