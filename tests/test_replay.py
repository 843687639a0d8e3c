"""Offline replay: every input accounted for, output bags readable by standard tools, scores
against a ground-truth sidecar, the demo. Tiny checkpoint (random weights: plumbing only)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from rclpy.serialization import serialize_message
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin, Writer

from interactvlm_ros.cli import main as cli_main
from interactvlm_ros.cli import run_replay
from interactvlm_ros.eval.bags import detections_msg, image_msg, project_typestore
from interactvlm_ros.eval.groundtruth import GroundTruthSample, save_ground_truth, sidecar_path
from interactvlm_ros.loading import default_settings
from interactvlm_ros.ros.replay import INTERACTIONS_TOPIC, MARKERS_TOPIC, read_interactions

S = 1_000_000_000
RGB = np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)


def write_bag(path, storage="mcap"):
    """Four detections messages: two paired with images, one whose image is missing, one
    whose only box lies outside its image; and one image without detections."""
    typestore = project_typestore()
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        images = writer.add_connection("/camera/image_raw", "sensor_msgs/msg/Image", typestore=typestore)
        dets = writer.add_connection("/detections", "vision_msgs/msg/Detection2DArray", typestore=typestore)
        for second, boxes in ((1, [("cup-1", "cup", 0.9, (60.0, 40.0, 30.0, 30.0))]),
                              (2, [("ball-2", "sports ball", 0.8, (20.0, 20.0, 10.0, 10.0)),
                                   ("cup-2", "cup", 0.7, (90.0, 50.0, 20.0, 30.0))]),
                              (3, None),  # image without detections
                              (4, [("far-4", "cup", 0.9, (500.0, 500.0, 10.0, 10.0))])):
            writer.write(images, second * S, serialize_message(image_msg(RGB, second * S)))
            if boxes:
                writer.write(dets, second * S + 1, serialize_message(detections_msg(boxes, second * S)))
        writer.write(dets, 5 * S, serialize_message(detections_msg([("lost", "cup", 0.9, (5.0, 5.0, 4.0, 4.0))],
                                                                   5 * S)))
    return path


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    return {**default_settings(), "use_tiny_checkpoint": True, "render_size": 128,
            "cache_dir": str(tmp_path_factory.mktemp("cache"))}


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_every_input_is_accounted_for_and_the_output_bag_is_standard(tmp_path, settings, storage):
    in_bag = write_bag(tmp_path / "in", storage)
    paths = run_replay(in_bag, tmp_path / "out", settings, tmp_path / "report", progress=False)
    summary = json.loads(paths["summary"].read_text())
    assert summary["weights_are_random"] is True
    outcomes = {record["stamp_ns"]: record["outcome"] for record in summary["inputs"]}
    assert outcomes == {1 * S: "processed", 2 * S: "processed", 4 * S: "no_valid_detection",
                        5 * S: "no_image_with_this_stamp"}
    far = next(r for r in summary["inputs"] if r["stamp_ns"] == 4 * S)
    assert far["skipped"] == {"skipped:box_outside_image": 1, "skipped:pairs_without_valid_detections": 1}
    with AnyReader([tmp_path / "out"]) as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
        assert types == {INTERACTIONS_TOPIC: "interactvlm_msgs/msg/InteractionArray",
                         MARKERS_TOPIC: "visualization_msgs/msg/MarkerArray"}
        assert all(c.msgdef.data for c in reader.connections)  # definitions recorded
        timestamps = [t for c, t, _ in reader.messages([c for c in reader.connections if c.topic == INTERACTIONS_TOPIC])]
        assert timestamps == [1 * S, 2 * S]
        # rosbags decodes them with the recorded definitions alone
        connection = next(c for c in reader.connections if c.topic == INTERACTIONS_TOPIC)
        decoded = reader.deserialize(next(reader.messages([connection]))[2], connection.msgtype)
        assert decoded.interactions[0].detection.id == "cup-1"
    messages = read_interactions(tmp_path / "out")
    assert [m.header.stamp.sec for m in messages] == [1, 2]
    assert [[i.detection.id for i in m.interactions] for m in messages] == [["cup-1"], ["ball-2", "cup-2"]]
    assert messages[1].interactions[0].object_affordance.geometry_source == "proxy:sphere"
    assert all(m.weights_are_random for m in messages)
    assert (tmp_path / "report" / "sample_00.png").is_file() and (tmp_path / "report" / "report.json").is_file()


def test_ground_truth_sidecar_is_scored(tmp_path, settings):
    in_bag = write_bag(tmp_path / "in")
    rng = np.random.default_rng(1)
    points = rng.normal(size=(200, 3)).astype(np.float32) * 0.1
    truth = (points[:, 1] > 0).astype(np.float32)
    save_ground_truth(sidecar_path(in_bag), [
        GroundTruthSample(1 * S, "cup-1", "cup", affordance=truth, points=points),
        GroundTruthSample(2 * S, "cup-2", "cup", body_model="smplh", contact=np.zeros(6890, np.float32)),
    ])
    paths = run_replay(in_bag, tmp_path / "out", settings, tmp_path / "report", progress=False)
    report = json.loads(paths["report"].read_text())
    samples = {s["detection_id"]: s for s in report["per_sample"]}
    assert set(samples) == {"cup-1", "cup-2"}
    assert {"sim", "auc", "aiou", "mae"} <= set(samples["cup-1"])  # scored on the sidecar's own points
    assert 0 <= samples["cup-1"]["sim"] <= 1
    assert "ground truth on 'smplh'" in samples["cup-2"]["not_scored"]  # the open body is not SMPL
    assert report["summary"]["per_class"]["cup"]["count"] == 2
    messages = read_interactions(tmp_path / "out")
    affordance = messages[0].interactions[0].object_affordance
    assert affordance.geometry_source.startswith("points:") and affordance.points.width == 200


def test_cli_replay_and_errors(tmp_path, capsys):
    in_bag = write_bag(tmp_path / "in")
    assert cli_main(["replay", str(in_bag), str(tmp_path / "out"), "--tiny", "--render-size", "96", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "RANDOM weights" in printed and "no_image_with_this_stamp: 1" in printed
    # Configuration errors: exit code 2 and one line on stderr, no traceback.
    for extra, message in ((["out"], "ValueError: .*exists"),
                           (["out2", "--image-topic", "/nope"], "ValueError: .*image topic named /nope"),
                           (["out3", "--device-map", "sam=cuda:63"], "ValueError: device cuda:63 requested"),
                           (["out4", "--device-map", "auto", "--max-memory", "cuda:0=lots"],
                            "ValueError: not a memory size: 'lots'")):
        assert cli_main(["replay", str(in_bag), str(tmp_path / extra[0]), "--tiny", "--quiet", *extra[1:]]) == 2
        error = capsys.readouterr().err
        assert re.match(f"interactvlm-ros replay: {message}", error) and "Traceback" not in error, error


def test_demo_writes_bags_report_and_figures(tmp_path, capsys):
    out = tmp_path / "demo_out"
    assert cli_main(["demo", str(out), "--render-size", "96", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "RANDOM weights" in printed
    for name in ("input_bag", "interactions_bag", "report/report.json", "report/per_class.png",
                 "report/sample_00.png", "report/sample_01.png", "report/replay_summary.json"):
        assert (out / name).exists(), name
    messages = read_interactions(out / "interactions_bag")
    assert [m.interactions[0].detection.id for m in messages] == ["camera-0", "helmet-0"]
    assert [m.interactions[0].object_affordance.geometry_source for m in messages] == ["proxy:box", "proxy:sphere"]
    with pytest.raises(SystemExit, match="not empty"):
        cli_main(["demo", str(out), "--quiet"])


def test_scoring_matches_predictions_to_ground_truth_with_geodesics():
    """eval.evaluate.score on hand-made predictions: a 4-vertex path body with 1 m edges."""
    from interactvlm_ros.eval.evaluate import score
    from interactvlm_ros.pipeline import (Detection, EstimateResult, HumanContactResult, InteractionResult,
                                          ObjectAffordanceResult)

    predicted = np.array([0.9, 0.6, 0.1, 0.0], np.float32)  # contact at vertices 0, 1
    contact = HumanContactResult("smplh", predicted, np.array([0, 1]), 0.5, (), "", True)
    points = np.zeros((4, 3), np.float32)
    affordance = ObjectAffordanceResult("points:x", points, np.array([1.0, 1.0, 0.0, 0.0], np.float32), 0.5, "grasp",
                                        "", True)
    estimate = EstimateResult([InteractionResult(Detection("cup", (0, 0, 1, 1), 1.0, "d"), contact, affordance)])
    truth_contact = np.zeros(6890, np.float32)
    truth_contact[[1, 2]] = 1.0  # ground truth at vertices 1, 2 (SMPL topology)
    distances = np.abs(np.arange(4)[:, None] - np.arange(4)[None, :]).astype(np.float32)  # path graph, metres
    truth = {(7, "d"): GroundTruthSample(7, "d", "cup", body_model="smpl", contact=truth_contact)}
    _, (mismatch,) = score([(7, estimate)], truth, distances)  # 4 predicted vertices, 6890 true ones
    assert "(4 vertices), ground truth on 'smpl' (6890)" in mismatch["not_scored"] and "f1" not in mismatch
    small_truth = {(7, "d"): GroundTruthSample(7, "d", "cup", body_model="path4", contact=truth_contact[:4].copy(),
                                               affordance=np.array([1.0, 0.0, 0.0, 0.0], np.float32), points=points)}
    contact4 = HumanContactResult("path4", predicted, np.array([0, 1]), 0.5, (), "", True)
    estimate4 = EstimateResult([InteractionResult(Detection("cup", (0, 0, 1, 1), 1.0, "d"), contact4, affordance)])
    summary, samples = score([(7, estimate4), (8, estimate4)], small_truth, distances)
    (sample,) = samples  # stamp 8 has no ground truth
    assert sample["precision"] == pytest.approx(0.5) and sample["recall"] == pytest.approx(0.5)
    assert sample["f1"] == pytest.approx(0.5)
    # FP: predicted 0 -> nearest truth 1 (1 m), predicted 1 -> 0 m: mean 50 cm.
    # FN: truth 1 -> 0 m, truth 2 -> nearest prediction 1 (1 m): mean 50 cm.
    assert sample["fp_geodesic_cm"] == pytest.approx(50.0) and sample["fn_geodesic_cm"] == pytest.approx(50.0)
    assert sample["mae"] == pytest.approx(0.25) and sample["sim"] == pytest.approx(0.5)
    assert summary["overall"]["count"] == 1 and summary["per_class"]["cup"]["f1"] == pytest.approx(0.5)
