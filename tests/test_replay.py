"""Offline replay: every input accounted for, output bags readable by standard tools, scores
against a ground-truth sidecar, the demo. Tiny checkpoint (random weights: plumbing only)."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin, Writer

from interactvlm_ros.cli import main as cli_main
from interactvlm_ros.cli import run_replay
from interactvlm_ros.detection import Detection
from interactvlm_ros.ros.bags import detections_msg, image_msg, project_typestore
from interactvlm_ros.eval.groundtruth import GroundTruthSample, save_ground_truth, sidecar_path
from interactvlm_ros.config import default_settings
from interactvlm_ros.ros.processing import ProcessingSettings
from interactvlm_ros.ros.replay import INTERACTIONS_TOPIC, MARKERS_TOPIC, read_interactions, replay

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
        for second, boxes in ((1, [Detection("cup", (45, 25, 75, 55), 0.9, "cup-1")]),
                              (2, [Detection("sports ball", (15, 15, 25, 25), 0.8, "ball-2"),
                                   Detection("cup", (80, 35, 100, 65), 0.7, "cup-2")]),
                              (3, None),  # image without detections
                              (4, [Detection("cup", (495, 495, 505, 505), 0.9, "far-4")])):
            writer.write(images, second * S, serialize_message(image_msg(RGB, second * S)))
            if boxes:
                writer.write(dets, second * S + 1, serialize_message(detections_msg(boxes, second * S)))
        writer.write(dets, 5 * S, serialize_message(detections_msg([Detection("cup", (3, 3, 7, 7), 0.9, "lost")],
                                                                   5 * S)))
    return path


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    return {**default_settings(), "use_tiny_checkpoint": True, "render_size": 128,
            "cache_dir": str(tmp_path_factory.mktemp("cache"))}


@pytest.fixture(scope="module")
def estimator(settings):
    """One tiny RANDOM estimator for the module's replays (building one takes seconds; the
    command-line tests build their own, as the command does)."""
    from interactvlm_ros.loading import build_estimator

    built, keepalive = build_estimator(settings, log=lambda line: None)
    yield built
    del keepalive


@pytest.fixture(scope="module")
def mcap_bag(tmp_path_factory):
    """write_bag's mcap bag, shared: tests copy it before changing anything."""
    return write_bag(tmp_path_factory.mktemp("bags") / "in")


@pytest.fixture
def shared_model(monkeypatch, estimator):
    """The command's model loading returns the module's estimator (the command line is what
    these tests check; one test, test_cli_replay_and_errors, loads for real)."""
    monkeypatch.setattr("interactvlm_ros.loading.build_estimator", lambda settings, log=print: (estimator, None))


@pytest.fixture
def no_model(monkeypatch):
    """Fails the test if a model is loaded."""
    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr("interactvlm_ros.loading.build_estimator", refuse)


def refused(capsys, argv, pattern, code=2):
    """The command exits with ``code`` and one line on stderr matching ``pattern``."""
    assert cli_main(argv) == code
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and re.search(pattern, error) and "Traceback" not in error, error
    return error


def hidden(folder):
    """Leftover staging folders (.OUT.*.partial)."""
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_every_input_is_accounted_for_and_the_output_bag_is_standard(tmp_path, settings, estimator, storage):
    in_bag = write_bag(tmp_path / "in", storage)
    paths = run_replay(in_bag, tmp_path / "out", settings, tmp_path / "report", progress=False, estimator=estimator)
    summary = json.loads(paths["summary"].read_text())
    assert summary["weights_are_random"] is True
    outcomes = {record["stamp_ns"]: record["outcome"] for record in summary["inputs"]}
    assert outcomes == {1 * S: "processed", 2 * S: "processed", 4 * S: "no_valid_detection",
                        5 * S: "no_image_for_detections"}
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


def test_images_over_max_image_pixels_are_refused(tmp_path, settings, estimator, mcap_bag):
    limited = {**settings, "max_image_pixels": RGB.shape[0] * RGB.shape[1] - 1}
    paths = run_replay(mcap_bag, tmp_path / "out", limited, tmp_path / "report", progress=False, estimator=estimator)
    summary = json.loads(paths["summary"].read_text())
    outcomes = {record["stamp_ns"]: record["outcome"] for record in summary["inputs"]}
    assert outcomes == {1 * S: "image_rejected:image_too_large", 2 * S: "image_rejected:image_too_large",
                        4 * S: "image_rejected:image_too_large", 5 * S: "no_image_for_detections"}
    assert read_interactions(tmp_path / "out") == []


def test_ground_truth_sidecar_is_scored(tmp_path, settings, estimator):
    in_bag = write_bag(tmp_path / "in")
    rng = np.random.default_rng(1)
    points = rng.normal(size=(200, 3)).astype(np.float32) * 0.1
    truth = (points[:, 1] > 0).astype(np.float32)
    save_ground_truth(sidecar_path(in_bag), [
        GroundTruthSample(1 * S, "cup-1", "cup", affordance=truth, points=points),
        GroundTruthSample(2 * S, "cup-2", "cup", body_model="smplh", contact=np.zeros(6890, np.float32)),
    ])
    paths = run_replay(in_bag, tmp_path / "out", settings, tmp_path / "report", progress=False, estimator=estimator)
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
    assert "RANDOM weights" in printed and "no_image_for_detections: 1" in printed
    # Configuration errors: exit code 2 and one line on stderr, no traceback.
    for extra, message in ((["out"], "ValueError: .*exists"),
                           (["out2", "--image-topic", "/nope"], "ValueError: .*image topic named /nope"),
                           (["out3", "--device-map", "sam=cuda:63"],
                            "device_map = 'sam=cuda:63': ValueError: device cuda:63 requested"),
                           (["out4", "--max-memory", "cuda:0=lots"],
                            "max_memory = 'cuda:0=lots': ValueError: not a memory size: 'lots'")):
        assert cli_main(["replay", str(in_bag), str(tmp_path / extra[0]), "--tiny", "--quiet", *extra[1:]]) == 2
        error = capsys.readouterr().err
        assert re.match(f"interactvlm-ros replay: {message}", error) and "Traceback" not in error, error


def test_demo_writes_bags_report_and_figures(tmp_path, capsys, shared_model):
    """The demo's photos get a CameraInfo of their size (assumed intrinsics), so replay places
    each person by PnP: the posed body lands on the person's box, and a people figure is drawn
    per photo."""
    from PIL import Image as PngImage
    from sensor_msgs.msg import CameraInfo

    from interactvlm_ros.cli import demo_intrinsics
    from interactvlm_ros.eval.report import RANDOM_CONTACT_BANNER, project_points
    from interactvlm_ros.ros.bags import CAMERA_INFO_TOPIC, read_messages
    from interactvlm_ros.ros.conversions import person_from_msg

    out = tmp_path / "demo_out"
    assert cli_main(["demo", str(out), "--render-size", "96", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "RANDOM weights" in printed
    for name in ("input_bag", "interactions_bag", "report/report.json", "report/per_class.png",
                 "report/sample_00.png", "report/sample_01.png", "report/replay_summary.json",
                 "report/people_00.png", "report/people_01.png"):
        assert (out / name).exists(), name
    infos = [deserialize_message(raw, CameraInfo) for _, _, _, raw in read_messages(out / "input_bag",
                                                                                    [CAMERA_INFO_TOPIC])]
    assert [(i.width, i.height) for i in infos] == [(512, 512), (512, 512)]  # both photos are 512 x 512
    # 50 degrees horizontal field of view: fx = fy = 256 / tan(25 degrees); the centre of 512 pixels
    assert list(infos[0].k) == list(infos[1].k) == demo_intrinsics(512, 512) == pytest.approx(
        [548.9938, 0.0, 255.5, 0.0, 548.9938, 255.5, 0.0, 0.0, 1.0], abs=1e-4)
    messages = read_interactions(out / "interactions_bag")
    assert [m.interactions[0].detection.id for m in messages] == ["camera-0", "helmet-0"]
    assert [m.interactions[0].object_affordance.geometry_source for m in messages] == ["proxy:box", "proxy:sphere"]
    person_boxes = [(110.0, 40.0, 330.0, 512.0), (40.0, 10.0, 470.0, 512.0)]  # the demo's person detections
    for message, info, (x0, y0, x1, y1) in zip(messages, infos, person_boxes):
        (person,) = [person_from_msg(p) for p in message.persons]
        assert person.placement_method == "pnp" and person.vertices is not None
        u, v = np.median(project_points(person.vertices, info.k), axis=0)
        assert x0 <= u <= x1 and y0 <= v <= y1
        assert message.interactions[0].human_contact.posed_body.width == len(person.vertices)
    for name in ("people_00.png", "people_01.png"):
        with PngImage.open(out / "report" / name) as png:
            assert png.text["Title"].startswith(RANDOM_CONTACT_BANNER)
    refused(capsys, ["demo", str(out), "--quiet"], r"^interactvlm-ros demo: ValueError: .*demo_out is not empty")


def test_people_figure_reads_the_messages(tmp_path):
    """figure_people reads the posed body, its contact (the object's HumanContact.posed_body) and
    the objects from an InteractionArray alone; a known vertex projects to its pixel through the
    CameraInfo's K; the figure of random weights carries the label, a trained one not."""
    from PIL import Image as PngImage
    from interactvlm_msgs.msg import Interaction, InteractionArray
    from std_msgs.msg import Header

    from interactvlm_ros.eval.report import PEOPLE_FIGURE_SIZE_PX, RANDOM_CONTACT_BANNER, project_points
    from interactvlm_ros.ros.bags import camera_info_msg
    from interactvlm_ros.ros.conversions import (detections_to_msg, object_affordance_msg, person_msg,
                                                 posed_body_cloud)
    from interactvlm_ros.ros.figures import figure_people, people_figure_from_msgs

    header = Header(frame_id="camera_optical")
    # A tetrahedron about 2 m in front of the camera; vertex 0 at (0.1, 0.2, 2.0) m.
    vertices = np.array([[0.1, 0.2, 2.0], [-0.2, 0.0, 2.5], [0.0, -0.3, 2.2], [0.05, 0.0, 1.8]], np.float32)
    normals = vertices - vertices.mean(axis=0)
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    faces = np.array([[0, 1, 2], [0, 3, 1], [1, 3, 2], [0, 2, 3]])
    contact = np.array([0.9, 0.1, 0.0, 0.5], np.float32)
    rng = np.random.default_rng(2)
    person = person_msg(header, "person-0", rng.uniform(0, 200, (33, 2)), rng.uniform(0, 1, 33),
                        landmarks=rng.normal(0, 0.2, (33, 3)) + [0, 0, 2], placement_method="pnp",
                        body_model="tetra", vertices=vertices, normals=normals)
    cup, ball = detections_to_msg([Detection("cup", (100, 120, 140, 170), 0.9, "cup-0"),
                                   Detection("sports ball", (20, 30, 60, 70), 0.8, "ball-0")], header).detections
    held = Interaction(detection=cup, person_detection_id="person-0")
    held.human_contact.object_label = "cup"
    held.human_contact.posed_body = posed_body_cloud(header, vertices, contact)
    ball_points = np.array([[-0.5, -0.4, 1.5], [-0.45, -0.35, 1.5]], np.float32)
    lying = Interaction(detection=ball, object_affordance=object_affordance_msg(
        header, "ball-0", "sports ball", "", "depth", ball_points, np.array([0.2, 0.7], np.float32), 0.5))
    message = InteractionArray(header=header, interactions=[held, lying], persons=[person], weights_are_random=True)
    info = camera_info_msg([400.0, 0.0, 159.5, 0.0, 400.0, 119.5, 0.0, 0.0, 1.0], 320, 240, 0, "camera_optical")

    (drawn,), (cup_drawn, ball_drawn) = figure_people(message, {"tetra": faces})
    np.testing.assert_array_equal(drawn.vertices, vertices)
    np.testing.assert_array_equal(drawn.contact, contact)
    assert drawn.faces is faces and drawn.contact_of == "cup" and drawn.placement_method == "pnp"
    assert cup_drawn.points is None and tuple(cup_drawn.box) == (100, 120, 140, 170)  # rays: no depth
    np.testing.assert_array_equal(ball_drawn.points, ball_points)
    np.testing.assert_allclose(ball_drawn.affordance, [0.2, 0.7])
    # u = 400 * 0.1 / 2 + 159.5, v = 400 * 0.2 / 2 + 119.5
    np.testing.assert_allclose(project_points(drawn.vertices, info.k)[0], [179.5, 159.5], atol=1e-4)
    assert figure_people(message)[0][0].faces is None  # unknown body model: drawn as points

    image = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    path = people_figure_from_msgs(tmp_path / "people.png", image, info, message, {"tetra": faces}, "assumed K")
    with PngImage.open(path) as png:
        assert png.size == PEOPLE_FIGURE_SIZE_PX and png.text["Title"].startswith(RANDOM_CONTACT_BANNER)
    message.weights_are_random = False
    with PngImage.open(people_figure_from_msgs(tmp_path / "trained.png", image, info, message)) as png:
        assert "RANDOM" not in png.text["Title"] and "person-0: pnp" in png.text["Title"]
    with pytest.raises(ValueError, match="CameraInfo of a 640x480 image for a 320x240 image"):
        people_figure_from_msgs(tmp_path / "x.png", image, camera_info_msg(info.k, 640, 480, 0), message)
    held.human_contact.posed_body = posed_body_cloud(header, vertices[:3], contact[:3])
    with pytest.raises(ValueError, match="'cup-0': 3 contact values for the 4-vertex posed body of person 'person-0'"):
        figure_people(message)
    assert not (tmp_path / "x.png").exists()


def test_demo_force_replaces_only_its_own_outputs(tmp_path, capsys, monkeypatch):
    out = tmp_path / "demo_out"
    (out / "interactions_bag").mkdir(parents=True)
    (out / "interactions_bag" / "notes.txt").write_text("not a bag")
    refused(capsys, ["demo", str(out), "--quiet", "--force"], "interactions_bag exists and is not a rosbag2 bag")
    shutil.rmtree(out / "interactions_bag")
    write_bag(out / "input_bag")  # an earlier demo's outputs
    (out / "report").mkdir()
    (out / "report" / "report.json").write_text("{}")

    def stop(*args, **kwargs):
        raise ValueError("stopped where the model would load")

    monkeypatch.setattr("interactvlm_ros.loading.build_estimator", stop)
    refused(capsys, ["demo", str(out), "--quiet", "--force"], "ValueError: stopped where the model would load")
    with AnyReader([out / "input_bag"]) as reader:  # rewritten: the demo's two frames (image, detections, CameraInfo)
        assert reader.message_count == 6
    assert (out / "report" / "report.json").read_text() == "{}"  # untouched: the run stopped before writing


def test_outputs_are_checked_before_the_model_loads(tmp_path, capsys, no_model, mcap_bag):
    def argv(out, *extra):
        return ["replay", str(mcap_bag), str(out), "--tiny", "--quiet", *extra]

    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    refused(capsys, argv(a_file / "out"), r"output bag .*a_file/out: .*a_file is not a directory")
    if os.geteuid() == 0:  # root writes anywhere: a folder under a file fails for root too
        report = a_file / "report"
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        report = locked / "report"
    refused(capsys, argv(tmp_path / "out", "--report-dir", str(report)),
            rf"report directory {re.escape(str(report))}: "
            r"(.*a_file is not a directory|cannot create .*locked/report \(Permission denied\))")
    full = tmp_path / "full"
    full.mkdir()
    (full / "notes.txt").write_text("x")
    refused(capsys, argv(tmp_path / "out", "--report-dir", str(full)),
            r"report directory .*full is not empty; .*--force")
    refused(capsys, argv(full), r"output bag .*full exists; .*--force")
    refused(capsys, argv(full, "--force"), r"output bag .*full exists and is not a rosbag2 bag.*not replacing it")
    refused(capsys, argv(mcap_bag, "--force"), "would replace the input bag")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "full", *(["locked"] if os.geteuid() else [])]
    assert (full / "notes.txt").read_text() == "x"


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_unwritable_outputs_are_refused_before_the_model_loads(tmp_path, capsys, no_model, mcap_bag):
    """/proc is a folder where nothing can be created, though os.access says it is writable (as
    it says of every folder to root): the outputs are refused before the model loads, and the
    message names the path given and the folder at fault, not the hidden staging folder."""
    def argv(out, *extra):
        return ["replay", str(mcap_bag), str(out), "--tiny", "--quiet", *extra]

    missing = Path("/proc/interactvlm-ros-test")
    for out, problem in ((Path("/proc/out"), "cannot write in /proc"),
                         (missing / "out", f"cannot create {missing}")):
        error = refused(capsys, argv(out), rf"^interactvlm-ros replay: ValueError: output bag {re.escape(str(out))}: "
                                           rf"{re.escape(problem)} \(.+\)$")
        assert ".partial" not in error and "probe" not in error
    out = tmp_path / "new" / "folders" / "out"  # creatable: made for the check, then removed
    refused(capsys, argv(out, "--report-dir", str(missing / "report")),
            rf"^interactvlm-ros replay: ValueError: report directory {re.escape(str(missing))}/report: "
            rf"cannot create {re.escape(str(missing))} \(.+\)$")
    assert list(tmp_path.iterdir()) == []


def test_unreadable_input_bags_are_refused_in_one_line(tmp_path, capsys, no_model, mcap_bag):
    yaml = shutil.copytree(mcap_bag, tmp_path / "garbage_yaml")
    (yaml / "metadata.yaml").write_text("rosbag2_bagfile_information: [\n\t:")
    not_sqlite = tmp_path / "not_sqlite.db3"
    not_sqlite.write_bytes(b"not a database" * 100)
    not_mcap = tmp_path / "not_mcap.mcap"
    not_mcap.write_bytes(b"not an mcap file" * 100)
    stub = tmp_path / "stub.mcap"  # cut off before its first message
    stub.write_bytes((mcap_bag / "in.mcap").read_bytes()[:300])
    for bag, cause in ((yaml, "Could not load YAML"), (not_sqlite, "file is not a database"),
                       (not_mcap, "File magic is invalid"),
                       (stub, "File end magic is invalid.*cut off before its first message")):
        refused(capsys, ["replay", str(bag), str(tmp_path / "out"), "--tiny", "--quiet"],
                rf"^interactvlm-ros replay: ValueError: cannot open input bag {re.escape(str(bag))}: .*{cause}")
    assert not (tmp_path / "out").exists() and not hidden(tmp_path)


def test_cut_off_mcap_is_processed_up_to_the_cut(tmp_path, capsys, mcap_bag, shared_model):
    """rosbags refuses an mcap file without its end (AnyReaderError: File end magic is invalid.):
    replay reads it record by record up to the cut, writes a complete output bag and exits 1."""
    cut = shutil.copytree(mcap_bag, tmp_path / "cut")
    data = (cut / "in.mcap").read_bytes()
    (cut / "in.mcap").write_bytes(data[:len(data) // 2])  # images and detections of stamps 1 and 2
    out, report = shutil.copytree(mcap_bag, tmp_path / "out"), tmp_path / "report"  # an earlier run's
    report.mkdir()
    (report / "sample_07.png").write_bytes(b"stale")
    (report / "notes.txt").write_text("kept")
    refused(capsys, ["replay", str(cut), str(out), "--report-dir", str(report), "--tiny", "--render-size", "96",
                     "--quiet", "--force"],
            r"^interactvlm-ros replay: BagReadError: .*cut broke off after 4 messages \(ReaderError: in.mcap: .*cut off"
            r".*\); processed what was read, see .*replay_summary.json$", code=1)
    summary = json.loads((report / "replay_summary.json").read_text())
    assert summary["error"]["messages_read"] == 4 and "cut off inside a record" in summary["error"]["message"]
    assert {r["stamp_ns"]: r["outcome"] for r in summary["inputs"]} == {1 * S: "processed", 2 * S: "processed"}
    assert [m.header.stamp.sec for m in read_interactions(out)] == [1, 2]  # replaced, closed, readable
    assert not (report / "sample_07.png").exists() and (report / "notes.txt").read_text() == "kept"
    assert not hidden(tmp_path)


def test_rosbags_read_error_mid_way_is_recorded(tmp_path, monkeypatch):
    """A damaged sqlite3 page: rosbags raises apsw.CorruptError while iterating."""
    bag = write_bag(tmp_path / "in", "sqlite3")
    db = bag / "in.db3"
    data = bytearray(db.read_bytes())
    page = int(len(data) * 0.6) // 4096 * 4096  # an overflow page of the third image
    data[page:page + 4096] = b"\xff" * 4096
    db.write_bytes(data)
    seen = []
    monkeypatch.setattr("interactvlm_ros.ros.replay._process",
                        lambda _processor, _settings, _image, _detections, stamp, *rest: seen.append(stamp))
    result = replay(bag, tmp_path / "out", object(), None, progress=False)
    assert result.error["message"] == "CorruptError: database disk image is malformed"
    assert seen == [1 * S, 2 * S][:len(seen)] and result.error["messages_read"] >= 4 + len(seen)
    with AnyReader([tmp_path / "out"]) as reader:  # closed and readable
        assert {c.topic for c in reader.connections} == {INTERACTIONS_TOPIC, MARKERS_TOPIC}


def test_interrupted_replay_leaves_no_output_bag(tmp_path, monkeypatch, mcap_bag):
    def interrupt(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr("interactvlm_ros.ros.replay._process", interrupt)
    with pytest.raises(KeyboardInterrupt):
        replay(mcap_bag, tmp_path / "out", object(), None, progress=False)
    assert list(tmp_path.iterdir()) == []


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


def test_replay_pairs_depth_like_the_node_wherever_it_lies_in_the_bag(tmp_path, settings, estimator):
    """Depth + CameraInfo recorded after their image (aligned depth comes later), one frame's
    depth missing, one depth 30 ms off its image (within the slop): objects get their points from
    the depth of their own image; the frame without depth falls back to the proxy, counted."""
    from interactvlm_ros.ros.bags import camera_info_msg, depth_image_msg
    from interactvlm_ros.ros.conversions import affordance_from_cloud

    ms = 1_000_000
    typestore = project_typestore()
    k = [100.0, 0.0, 63.5, 0.0, 100.0, 47.5, 0.0, 0.0, 1.0]
    ball = Detection("sports ball", (40, 20, 80, 60), 0.9, "ball")
    with Writer(tmp_path / "in", version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        images = writer.add_connection("/camera/color/image_raw", "sensor_msgs/msg/Image", typestore=typestore)
        dets = writer.add_connection("/detections", "vision_msgs/msg/Detection2DArray", typestore=typestore)
        depths = writer.add_connection("/camera/aligned_depth_to_color/image_raw", "sensor_msgs/msg/Image",
                                       typestore=typestore)
        infos = writer.add_connection("/camera/color/camera_info", "sensor_msgs/msg/CameraInfo", typestore=typestore)
        for second, depth_offset, distance in ((1, 0, 0.8), (2, None, None), (3, 30 * ms, 1.6)):
            stamp = second * S
            writer.write(images, stamp, serialize_message(image_msg(RGB, stamp)))
            writer.write(dets, stamp + 5 * ms, serialize_message(detections_msg([ball], stamp)))
            if depth_offset is not None:  # logged 200 ms after the image
                metres = np.full((96, 128), 3.0, np.float32)
                metres[20:60, 40:80] = distance
                writer.write(depths, stamp + 200 * ms, serialize_message(depth_image_msg(metres, stamp + depth_offset,
                                                                                         "depth_optical")))
                writer.write(infos, stamp + 200 * ms, serialize_message(camera_info_msg(k, 128, 96, stamp)))
        # A second image with the first frame's stamp: the first is used, the second counted.
        writer.write(images, 4 * S, serialize_message(image_msg(np.zeros_like(RGB), 1 * S)))
    result = replay(tmp_path / "in", tmp_path / "out", estimator, ProcessingSettings(markers=False), slop_ns=50 * ms,
                    progress=False, depth_topic="/camera/aligned_depth_to_color/image_raw")
    assert result.counts["processed"] == 3 and result.counts["no_depth_for_image"] == 1
    assert result.counts["skipped:duplicate_stamp"] == 1
    clouds = {m.header.stamp.sec: m.interactions[0].object_affordance for _, m, _ in result.outputs}
    assert {s: c.geometry_source for s, c in clouds.items()} == {1: "depth", 2: "proxy:sphere", 3: "depth"}
    for second, distance in ((1, 0.8), (3, 1.6)):
        points, _ = affordance_from_cloud(clouds[second].points)
        assert clouds[second].header.frame_id == "depth_optical" and np.allclose(points[:, 2], distance)
    # Without the depth topic named, the two Image topics are ambiguous: a clear refusal.
    with pytest.raises(ValueError, match="need exactly one image topic"):
        replay(tmp_path / "in", tmp_path / "out2", estimator, ProcessingSettings(markers=False), progress=False)
