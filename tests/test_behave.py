"""BEHAVE: the converter on a tiny release-layout fixture made here, and the reconstruction metrics.

No real BEHAVE or SMPL-H files exist here. The fixture is one sequence with two fitted frames
(and one without fits) seen by two Kinects, a synthetic SMPL-H-like model of 6890 vertices
(each bound rigidly to one of 52 joints, with shape and pose correctives) and a box as the
object template. Expected values are computed independently of the code under test: forward
kinematics written out here, the box's signed distance in closed form, masks read back.
"""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from PIL import Image as PILImage
from scipy.spatial.transform import Rotation

from test_smpl import _skeleton
from interactvlm_ros.eval import metrics
from interactvlm_ros.eval.groundtruth import GroundTruthSample, load_ground_truth, save_ground_truth
from interactvlm_ros.ros import bags, datasets
from interactvlm_ros.safe_pickle import RefusedGlobalError

rclpy_serialization = pytest.importorskip("rclpy.serialization")
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from vision_msgs.msg import Detection2DArray  # noqa: E402

MSG_CLASSES = {bags.IMAGE_TOPIC: Image, bags.DETECTIONS_TOPIC: Detection2DArray, bags.DEPTH_TOPIC: Image,
               bags.CAMERA_INFO_TOPIC: CameraInfo}
SEQ = "Date01_Sub01_boxsmall_hand"
WIDTH, HEIGHT, FOCAL = 64, 48, 50.0
BOX_EXTENTS = np.array([0.3, 0.2, 0.4])
BOX_OFFSET = np.array([1.0, 2.0, 3.0])  # the template is not centred in its file
#: camera -> world (Kinect 1's colour camera) of Kinects 0 and 1
KINECT_POSES = {0: (Rotation.from_euler("xyz", [10, -60, 5], degrees=True).as_matrix(), np.array([1.5, -0.2, 0.8])),
                1: (np.eye(3), np.zeros(3))}
#: (x0, y0, x1, y1) pixel-edge rectangles of the person and object masks per (frame, kinect)
MASKS = {(1, 0): ((8, 0, 40, 48), (32, 16, 56, 40)), (1, 1): ((0, 8, 24, 40), (16, 24, 48, 48)),
         (2, 0): ((16, 8, 48, 40), (40, 8, 64, 32)), (2, 1): ((8, 0, 32, 32), (24, 16, 40, 40))}


# --------------------------------------------------------------------------------------------
# fixture


def smplh_like_model():
    """Model arrays (SMPL-H key layout) of 6890 vertices, each bound to one of 52 joints."""
    joints, parents = _skeleton("smplh")
    rng = np.random.default_rng(7)
    owner = np.arange(6890) % 52
    v_template = joints[owner] + rng.uniform(-0.02, 0.02, (6890, 3))
    weights = np.zeros((6890, 52))
    weights[np.arange(6890), owner] = 1.0
    regressor = weights.T / weights.sum(axis=0)[:, None]
    faces = np.concatenate([np.stack([ids[:-2], ids[1:-1], ids[2:]], axis=1)
                            for ids in (np.flatnonzero(owner == j) for j in range(52))])
    return {"v_template": v_template, "f": faces.astype(np.uint32),
            "shapedirs": rng.normal(size=(6890, 3, 10)) * 0.01,
            "posedirs": rng.normal(size=(6890, 3, 51 * 9)) * 0.002, "J_regressor": regressor,
            "weights": weights, "kintree_table": np.stack([parents, np.arange(52)]).astype(np.uint32)}


def forward_kinematics(model, pose, betas, trans):
    """SMPL-H's forward function written out: shape, pose correctives, rigid joint chain."""
    rotations = Rotation.from_rotvec(np.asarray(pose).reshape(52, 3)).as_matrix()
    shaped = model["v_template"] + model["shapedirs"] @ betas
    joints = model["J_regressor"] @ shaped
    feature = (rotations[1:] - np.eye(3)).reshape(-1)
    posed_rest = shaped + np.einsum("vcp,p->vc", model["posedirs"], feature)
    parents = model["kintree_table"][0].astype(np.int64)
    world_r, world_t = np.zeros((52, 3, 3)), np.zeros((52, 3))
    world_r[0], world_t[0] = rotations[0], joints[0]
    for j in range(1, 52):
        p = parents[j]
        world_r[j] = world_r[p] @ rotations[j]
        world_t[j] = world_r[p] @ (joints[j] - joints[p]) + world_t[p]
    owner = np.argmax(model["weights"], axis=1)
    local = posed_rest - joints[owner]
    return np.einsum("vij,vj->vi", world_r[owner], local) + world_t[owner] + trans


def box_signed_distance(points):
    """Signed distance to the box of BOX_EXTENTS centred at the origin (negative inside)."""
    q = np.abs(points) - BOX_EXTENTS / 2
    return np.linalg.norm(np.maximum(q, 0), axis=1) + np.minimum(q.max(axis=1), 0)


def person_fit(frame):
    rng = np.random.default_rng(frame)
    return {"pose": rng.normal(0, 0.3, 156).astype(np.float32), "betas": rng.normal(0, 1, 10).astype(np.float32),
            "trans": np.array([0.1 * frame, 0.2, 2.5], np.float32)}


def object_fit(model, fit, frame):
    """A pose putting the box's face 5 mm inside the right wrist's cloud of vertices."""
    body = forward_kinematics(model, fit["pose"], fit["betas"], fit["trans"])
    wrist = body[np.arange(6890) % 52 == 21].mean(axis=0)
    rotation = Rotation.from_euler("xyz", [20 * frame, 35, -10], degrees=True)
    return {"angle": rotation.as_rotvec().astype(np.float32),
            "trans": (wrist + rotation.apply([BOX_EXTENTS[0] / 2 - 0.005, 0, 0])).astype(np.float32)}


def write_jpeg_mask(path, rect):
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    x0, y0, x1, y1 = rect
    mask[y0:y1, x0:x1] = 255
    PILImage.fromarray(mask).save(path, quality=100)


@pytest.fixture
def behave(tmp_path):
    import trimesh

    root, body_dir = tmp_path / "behave", tmp_path / "body_models"
    model = smplh_like_model()
    (body_dir / "smplh").mkdir(parents=True)
    for gender in ("male", "female"):
        np.savez(body_dir / "smplh" / f"SMPLH_{gender}.npz", **model)
    (root / "objects" / "boxsmall").mkdir(parents=True)
    template = trimesh.creation.box(extents=BOX_EXTENTS)
    template.vertices += BOX_OFFSET
    template.export(root / "objects" / "boxsmall" / "boxsmall_f1000.ply")
    for k, (rotation, translation) in KINECT_POSES.items():
        (root / "calibs" / "intrinsics" / str(k)).mkdir(parents=True)
        color = {"fx": FOCAL, "fy": FOCAL, "cx": 31.5, "cy": 23.5, "width": WIDTH, "height": HEIGHT,
                 "opencv": [31.5, 23.5, FOCAL, FOCAL] + [0.0] * 8}
        (root / "calibs" / "intrinsics" / str(k) / "calibration.json").write_text(json.dumps({"color": color}))
        (root / "calibs" / "Date01" / "config" / str(k)).mkdir(parents=True)
        (root / "calibs" / "Date01" / "config" / str(k) / "config.json").write_text(
            json.dumps({"rotation": rotation.reshape(-1).tolist(), "translation": translation.tolist()}))
    (root / "split.json").write_text(json.dumps({"train": [], "test": [SEQ]}))
    seq = root / "sequences" / SEQ
    seq.mkdir(parents=True)
    (seq / "info.json").write_text(json.dumps({"config": "/elsewhere/Date01/config", "intrinsic": "../../calibs/intrinsics",
                                              "cat": "boxsmall", "gender": "male", "kinects": [0, 1, 2, 3]}))
    fits = {}
    for frame in (1, 2, 3):
        folder = seq / f"t000{frame}.000"
        folder.mkdir()
        for k in (0, 1):
            rng = np.random.default_rng(10 * frame + k)
            PILImage.fromarray(rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)).save(
                folder / f"k{k}.color.jpg", quality=95)
            PILImage.fromarray(rng.integers(500, 4000, (HEIGHT, WIDTH)).astype(np.uint16)).save(folder / f"k{k}.depth.png")
            if (frame, k) in MASKS:
                write_jpeg_mask(folder / f"k{k}.person_mask.jpg", MASKS[frame, k][0])
                write_jpeg_mask(folder / f"k{k}.obj_rend_mask.jpg", MASKS[frame, k][1])
        if frame == 3:  # no registration for this frame
            continue
        person = person_fit(frame)
        obj = object_fit(model, person, frame)
        fits[folder.name] = (person, obj)
        (folder / "person" / "fit02").mkdir(parents=True)
        (folder / "person" / "fit02" / "person_fit.pkl").write_bytes(pickle.dumps(person, protocol=2))
        (folder / "boxsmall" / "fit01").mkdir(parents=True)
        (folder / "boxsmall" / "fit01" / "boxsmall_fit.pkl").write_bytes(pickle.dumps(obj, protocol=2))
    return {"root": root, "body_dir": body_dir, "model": model, "fits": fits, "seq": seq}


def read_bag(path):
    return [(topic, t, rclpy_serialization.deserialize_message(raw, MSG_CLASSES[topic]))
            for topic, _, t, raw in bags.read_messages(path)]


def stamp_ns(msg):
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


# --------------------------------------------------------------------------------------------
# converter


def test_convert_behave_bag_and_ground_truth(behave, tmp_path):
    from interactvlm_ros.ros.conversions import detection_from_msg

    result = datasets.convert_behave(behave["root"], tmp_path / "out" / "behave_test", kinects=(0, 1),
                                     body_model_dir=behave["body_dir"])
    assert (result.frames, result.samples) == (4, 4)
    assert any(s.startswith(f"{SEQ}/t0003.000: no fit") for s in result.skipped)
    views = [(frame, k) for frame in (1, 2) for k in (0, 1)]
    stamps = [datasets.DEFAULT_START_NS + i * datasets.DEFAULT_PERIOD_NS for i in range(4)]
    by_topic: dict = {}
    for topic, t, msg in read_bag(result.bag):
        assert stamp_ns(msg) == t
        by_topic.setdefault(topic, []).append(msg)
    assert {topic: len(msgs) for topic, msgs in by_topic.items()} == {t: 4 for t in MSG_CLASSES}
    for i, ((frame, k), stamp) in enumerate(zip(views, stamps)):
        folder = behave["seq"] / f"t000{frame}.000"
        image, dets = by_topic[bags.IMAGE_TOPIC][i], by_topic[bags.DETECTIONS_TOPIC][i]
        depth, info = by_topic[bags.DEPTH_TOPIC][i], by_topic[bags.CAMERA_INFO_TOPIC][i]
        assert {stamp_ns(m) for m in (image, dets, depth, info)} == {stamp}
        assert image.header.frame_id == depth.header.frame_id == info.header.frame_id == f"k{k}_color"
        assert bytes(image.data) == np.asarray(PILImage.open(folder / f"k{k}.color.jpg").convert("RGB")).tobytes()
        assert depth.encoding == "16UC1"
        assert bytes(depth.data) == np.asarray(PILImage.open(folder / f"k{k}.depth.png")).astype("<u2").tobytes()
        assert list(info.k) == [FOCAL, 0.0, 31.5, 0.0, FOCAL, 23.5, 0.0, 0.0, 1.0] and list(info.d) == [0.0] * 5
        detections = [detection_from_msg(d, j) for j, d in enumerate(dets.detections)]
        assert [(d.id, d.label, d.score) for d in detections] == [("person", "person", 1.0), ("boxsmall", "box", 1.0)]
        for detection, rect, name in zip(detections, MASKS[frame, k], ("person_mask", "obj_rend_mask")):
            mask = np.asarray(PILImage.open(folder / f"k{k}.{name}.jpg")) > 127
            ys, xs = np.nonzero(mask)
            assert tuple(detection.bbox_xyxy) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == rect

    truth = load_ground_truth(result.sidecar)
    assert list(truth) == [(stamp, "boxsmall") for stamp in stamps]
    model = behave["model"]
    for ((frame, k), stamp) in zip(views, stamps):
        sample = truth[(stamp, "boxsmall")]
        person, obj = behave["fits"][f"t000{frame}.000"]
        world = forward_kinematics(model, person["pose"].astype(np.float64), person["betas"].astype(np.float64),
                                   person["trans"].astype(np.float64))
        rotation, translation = KINECT_POSES[k]
        assert sample.object_label == "box" and sample.body_model == "smplh"
        np.testing.assert_allclose(sample.body_vertices, (world - translation) @ rotation, atol=2e-5)
        np.testing.assert_array_equal(sample.body_faces, model["f"].astype(np.int32))
        object_rotation = Rotation.from_rotvec(obj["angle"].astype(np.float64)).as_matrix()
        template_world = (sample.object_vertices @ object_rotation.T + obj["trans"].astype(np.float64))
        np.testing.assert_allclose(sample.object_vertices_in_camera(), (template_world - translation) @ rotation,
                                   atol=2e-5)
        np.testing.assert_allclose(np.sort(sample.object_vertices, axis=0),  # the template, centred
                                   np.sort(np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)])
                                           * BOX_EXTENTS / 2, axis=0), atol=1e-6)
        in_box = (world - obj["trans"].astype(np.float64)) @ object_rotation  # body in the box's frame
        expected = (box_signed_distance(in_box) < 0.02).astype(np.float32)
        assert 0 < expected.sum() < 6890
        np.testing.assert_array_equal(sample.contact, expected)


def test_convert_behave_undistorts_onto_the_camera_info(behave, tmp_path):
    """With lens distortion the written pixels follow the pinhole CameraInfo: an object mask
    block lands where OpenCV's undistortion of its centre says."""
    import cv2

    calibration = behave["root"] / "calibs" / "intrinsics" / "0" / "calibration.json"
    data = json.loads(calibration.read_text())
    data["color"]["opencv"][4] = 0.5  # k1
    calibration.write_text(json.dumps(data))
    folder = behave["seq"] / "t0001.000"
    write_jpeg_mask(folder / "k0.obj_rend_mask.jpg", (48, 32, 56, 40))
    result = datasets.convert_behave(behave["root"], tmp_path / "distorted", limit=1, kinects=(0,),
                                     body_model_dir=behave["body_dir"])
    assert result.frames == 1
    messages = read_bag(result.bag)
    box = detection_boxes(next(m for topic, _, m in messages if topic == bags.DETECTIONS_TOPIC))[1]
    k = np.array([[FOCAL, 0, 31.5], [0, FOCAL, 23.5], [0, 0, 1]])
    distortion = np.array([0.5, 0, 0, 0, 0, 0, 0, 0])
    expected = cv2.undistortPoints(np.array([[[51.5, 35.5]]]), k, distortion, P=k).reshape(2)
    centre = np.array([(box[0] + box[2] - 1) / 2, (box[1] + box[3] - 1) / 2])
    assert np.linalg.norm(centre - expected) < 1.0 and np.linalg.norm(expected - (51.5, 35.5)) > 1.5
    info = next(m for topic, _, m in messages if topic == bags.CAMERA_INFO_TOPIC)
    assert list(info.d) == [0.0] * 5 and info.k[0] == FOCAL


def detection_boxes(msg):
    from interactvlm_ros.ros.conversions import detection_from_msg

    return [tuple(detection_from_msg(d, j).bbox_xyxy) for j, d in enumerate(msg.detections)]


def test_convert_behave_errors(behave, tmp_path):
    root, body_dir = behave["root"], behave["body_dir"]
    with pytest.raises(FileNotFoundError, match="mano.is.tue.mpg.de"):
        datasets.convert_behave(root, tmp_path / "a", body_model_dir=tmp_path / "no_models")
    assert not (tmp_path / "a").exists()
    with pytest.raises(ValueError, match="no split 'val'"):
        datasets.convert_behave(root, tmp_path / "b", split="val", body_model_dir=body_dir)
    with pytest.raises(ValueError, match="kinects must be distinct ids in 0-3"):
        datasets.convert_behave(root, tmp_path / "c", kinects=(1, 4), body_model_dir=body_dir)
    with pytest.raises(ValueError, match="not in split"):
        datasets.convert_behave(root, tmp_path / "d", sequences=["Date09_Sub09_stool"], body_model_dir=body_dir)
    with pytest.raises(ValueError, match="needs body_model_dir"):
        datasets.convert_behave(root, tmp_path / "e", body_model_dir=None)
    with pytest.raises(FileNotFoundError, match="calibration file .*intrinsics/2/calibration.json"):
        datasets.convert_behave(root, tmp_path / "f", kinects=(2,), body_model_dir=body_dir)
    fit = behave["seq"] / "t0001.000" / "person" / "fit02" / "person_fit.pkl"
    fit.write_bytes(b"\x80\x02cos\nsystem\n(X\x04\x00\x00\x00trueqtR.")
    with pytest.raises(RefusedGlobalError, match="os.system"):
        datasets.convert_behave(root, tmp_path / "g", body_model_dir=body_dir, kinects=(0, 1))
    assert not (tmp_path / "g").exists()
    fit.unlink()
    (behave["seq"] / "t0002.000" / "person" / "fit02" / "person_fit.pkl").unlink()
    with pytest.raises(ValueError, match="no convertible samples"):  # no frame has both fits now
        datasets.convert_behave(root, tmp_path / "h", body_model_dir=body_dir, kinects=(0, 1))
    assert not (tmp_path / "h").exists()


def test_cli_convert_behave(behave, tmp_path, capsys):
    from interactvlm_ros.cli import main

    out = tmp_path / "cli_bag"
    args = ["convert", "behave", str(behave["root"]), str(out), "--body-model-dir", str(behave["body_dir"]),
            "--kinects", "1", "--limit", "1", "--storage", "sqlite3"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert f"sidecar: {tmp_path / 'cli_bag.groundtruth.npz'}" in printed and "frames: 1, samples: 1" in printed
    assert list(load_ground_truth(tmp_path / "cli_bag.groundtruth.npz")) == [(datasets.DEFAULT_START_NS, "boxsmall")]
    assert next(out.glob("*.db3")).is_file()
    assert main(args) == 2  # the bag exists: one line, no traceback
    assert "FileExistsError" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["convert", "behave", str(behave["root"]), str(out)])  # --body-model-dir is required
    assert "--body-model-dir" in capsys.readouterr().err


def test_posed_vertices_checks_its_parameters(tmp_path):
    from interactvlm_ros.geometry.smpl import load_model_arrays, posed_vertices

    np.savez(tmp_path / "SMPLH_male.npz", **smplh_like_model())
    arrays = load_model_arrays("smplh", tmp_path / "SMPLH_male.npz")
    assert arrays["shapedirs"].shape == (6890, 3, 10)
    rest = posed_vertices(arrays, np.zeros(156))
    np.testing.assert_allclose(posed_vertices(arrays, np.zeros((52, 3)), translation=[1, 2, 3]), rest + [1, 2, 3])
    with pytest.raises(ValueError, match="52 x 3 axis-angle"):
        posed_vertices(arrays, np.zeros(72))
    with pytest.raises(ValueError, match="11 betas for a model with 10 shape directions"):
        posed_vertices(arrays, np.zeros(156), np.zeros(11))
    with pytest.raises(ValueError, match="translation must be 3 values"):
        posed_vertices(arrays, np.zeros(156), translation=[0, 0])
    with pytest.raises(ValueError, match="finite"):
        posed_vertices(arrays, np.full(156, np.nan))


def test_behave_labels_and_split(behave):
    assert [datasets.behave_label(n) for n in ("chairwood", "yogaball", "backpack", "newthing")] == [
        "chair", "yoga ball", "backpack", "newthing"]
    assert datasets.behave_sequences(behave["root"]) == [SEQ]
    assert datasets.behave_sequences(behave["root"], "train") == []
    assert datasets.behave_sequences(behave["root"], None) == [SEQ]


# --------------------------------------------------------------------------------------------
# sidecar geometry


def geometry_sample(stamp, faces, **changes):
    rng = np.random.default_rng(stamp)
    pose = np.eye(4)
    pose[:3, :3] = Rotation.from_euler("xyz", [10, 20, 30], degrees=True).as_matrix()
    pose[:3, 3] = [0.1, 0.2, 2.0]
    fields = dict(image_stamp_ns=stamp, detection_id="boxsmall", object_label="box", body_model="smplh",
                  contact=(rng.random(6890) > 0.9).astype(np.float32), body_vertices=rng.normal(size=(6890, 3)),
                  body_faces=faces, object_vertices=rng.normal(size=(8, 3)), object_faces=np.array([[0, 1, 2], [5, 6, 7]]),
                  object_pose=pose)
    fields.update(changes)
    return GroundTruthSample(**fields)


def test_groundtruth_geometry_round_trip_stores_body_faces_once(tmp_path):
    faces = np.random.default_rng(0).integers(0, 6890, (13776, 3)).astype(np.int32)
    samples = [geometry_sample(1, faces), geometry_sample(2, faces.copy()),
               GroundTruthSample(3, "cup", "cup", "smplh", np.zeros(6890))]
    path = save_ground_truth(tmp_path / "geo.groundtruth.npz", samples)
    with np.load(path) as raw:
        assert int(raw["format_version"]) == 2
        assert [k for k in raw.files if "faces" in k] == ["object_faces/0", "object_faces/1", "body_faces/smplh"]
    loaded = load_ground_truth(path)
    for sample in samples:
        got = loaded[sample.key]
        for name in ("contact", "body_vertices", "body_faces", "object_vertices", "object_faces", "object_pose"):
            want = getattr(sample, name)
            assert (getattr(got, name) is None) if want is None else np.array_equal(getattr(got, name), want), name
    assert loaded[(1, "boxsmall")].body_faces is loaded[(2, "boxsmall")].body_faces  # one array in memory
    camera = loaded[(1, "boxsmall")].object_vertices_in_camera()
    pose = samples[0].object_pose.astype(np.float64)
    np.testing.assert_allclose(camera, samples[0].object_vertices @ pose[:3, :3].T + pose[:3, 3], atol=1e-6)
    with pytest.raises(ValueError, match="body_faces differ"):
        save_ground_truth(tmp_path / "x.npz", [geometry_sample(1, faces), geometry_sample(2, faces[::-1].copy())])
    version1 = {k: v for k, v in np.load(save_ground_truth(tmp_path / "v1.npz", samples[2:])).items()}
    version1["format_version"] = np.array(1)
    np.savez(tmp_path / "v1.npz", **version1)
    assert list(load_ground_truth(tmp_path / "v1.npz")) == [(3, "cup")]
    version1["object_pose/0"] = np.eye(4, dtype=np.float32)  # geometry keys are version 2's
    np.savez(tmp_path / "v1bad.npz", **version1)
    with pytest.raises(ValueError, match="unexpected array 'object_pose/0'"):
        load_ground_truth(tmp_path / "v1bad.npz")


@pytest.mark.parametrize("changes, message", [
    (dict(object_pose=None), "go together"),
    (dict(object_pose=np.diag([2.0, 1, 1, 1])), "not a rigid transform"),
    (dict(object_pose=np.diag([-1.0, 1, 1, 1])), "not a rigid transform"),
    (dict(object_faces=np.array([[0, 1, 8]])), "object_faces index vertices outside"),
    (dict(object_faces=np.zeros((1, 3))), "integer array"),
    (dict(body_vertices=np.zeros((100, 3))), "6890 vertices, body_vertices has 100"),
    (dict(body_vertices=np.full((6890, 3), np.nan)), "non-finite"),
    (dict(body_vertices=None), "body_faces without body_vertices"),
    (dict(body_model="anny", contact=np.zeros(5), body_vertices=np.zeros((6, 3)), body_faces=None),
     "6 body vertices but 5 contact values"),
])
def test_groundtruth_geometry_validation(changes, message):
    faces = np.zeros((1, 3), np.int32)
    with pytest.raises(ValueError, match=message):
        geometry_sample(1, faces, **changes)


# --------------------------------------------------------------------------------------------
# metrics


def test_similarity_transform_recovers_scale_rotation_translation():
    rng = np.random.default_rng(1)
    source = rng.normal(size=(50, 3))
    rotation = Rotation.from_euler("xyz", [30, -50, 100], degrees=True).as_matrix()
    target = 1.7 * source @ rotation.T + [0.3, -2.0, 5.0]
    scale, r, t = metrics.similarity_transform(source, target)
    assert scale == pytest.approx(1.7) and np.allclose(r, rotation) and np.allclose(t, [0.3, -2.0, 5.0])
    mirrored = source * [-1, 1, 1]  # no rotation maps it: the best proper rotation, det +1
    assert np.linalg.det(metrics.similarity_transform(source, mirrored)[1]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.similarity_transform(source, target[:-1])


def test_chamfer_distance_adds_both_directions():
    a = np.array([[0.0, 0, 0]])
    b = np.array([[1.0, 0, 0], [3.0, 0, 0]])
    assert metrics.chamfer_distance(a, b) == pytest.approx(1.0 + (1.0 + 3.0) / 2)


def square(size=1.0):
    vertices = np.array([[0, 0, 0], [size, 0, 0], [size, size, 0], [0, size, 0]], float)
    return vertices, np.array([[0, 1, 2], [0, 2, 3]])


def test_reconstruction_chamfer_alignments():
    import trimesh

    body = trimesh.creation.icosphere(subdivisions=2, radius=0.3)
    human, faces = np.asarray(body.vertices), np.asarray(body.faces)
    plate, plate_faces = square()
    plate = plate + [0.5, 0, 0]
    rotation = Rotation.from_euler("z", 40, degrees=True).as_matrix()
    moved = lambda v: 0.5 * v @ rotation.T + [1.0, 2.0, 3.0]  # noqa: E731
    combined = metrics.reconstruction_chamfer(moved(human), human, faces, moved(plate), plate_faces, plate,
                                              plate_faces)
    # aligned exactly: the same samples as the ground truth against itself (seeded), i.e. sampling noise only
    noise = metrics.reconstruction_chamfer(human, human, faces, plate, plate_faces, plate, plate_faces,
                                           alignment="none")
    assert combined == pytest.approx(noise, rel=1e-6) and noise["chamfer_object_cm"] < 2.0
    raw = metrics.reconstruction_chamfer(moved(human), human, faces, moved(plate), plate_faces, plate, plate_faces,
                                         alignment="none")
    assert raw["chamfer_human_cm"] > 100
    lifted = plate + [0, 0, 0.1]  # the object 10 cm off along its normal, the human exact
    scores = metrics.reconstruction_chamfer(human, human, faces, lifted, plate_faces, plate, plate_faces,
                                            alignment="human")
    assert scores["chamfer_object_cm"] == pytest.approx(20.0, rel=0.02)
    assert scores == metrics.reconstruction_chamfer(human, human, faces, lifted, plate_faces, plate, plate_faces,
                                                    alignment="human")  # seeded sampling repeats
    other, other_faces = square(0.5)
    with pytest.raises(ValueError, match="use alignment 'human'"):
        metrics.reconstruction_chamfer(human, human, faces, np.vstack([other, other]), np.vstack([other_faces] * 2),
                                       plate, plate_faces)
    with pytest.raises(ValueError, match="alignment must be one of"):
        metrics.reconstruction_chamfer(human, human, faces, plate, plate_faces, plate, plate_faces, alignment="icp")


def test_signed_distance_contact_and_penetration_on_a_cube():
    import trimesh

    cube = trimesh.creation.box(extents=(1, 1, 1))
    vertices, faces = np.asarray(cube.vertices), np.asarray(cube.faces)
    points = np.array([[0, 0, 0], [0.4, 0, 0], [0.515, 0, 0], [0.53, 0, 0], [0, 0.7, 0.7], [0.45, 0.3, 0]])
    distances = metrics.signed_distance(points, vertices, faces)
    np.testing.assert_allclose(distances, [-0.5, -0.1, 0.015, 0.03, np.hypot(0.2, 0.2), -0.05], atol=1e-12)
    np.testing.assert_array_equal(metrics.proximity_contact(points, vertices, faces), [1, 1, 1, 0, 0, 1])
    np.testing.assert_array_equal(metrics.proximity_contact(points, vertices, faces, threshold=0.04),
                                  [1, 1, 1, 1, 0, 1])
    depth = metrics.penetration_depth(points, vertices, faces)
    assert depth == {"penetration_cm": pytest.approx(50.0), "penetrating_vertices": 3}
    assert metrics.penetration_depth(points[[2, 3]], vertices, faces) == {"penetration_cm": 0.0,
                                                                          "penetrating_vertices": 0}
    with pytest.raises(ValueError, match="threshold must be > 0"):
        metrics.proximity_contact(points, vertices, faces, threshold=0)
    with pytest.raises(ValueError, match="faces index vertices outside"):
        metrics.signed_distance(points, vertices, faces + 100)


def test_replay_of_a_behave_bag_writes_the_reconstruction_report(behave, tmp_path, tiny_checkpoint, capsys,
                                                                  monkeypatch):
    """Convert, then replay with the tiny RANDOM model: the reconstruction report lists every
    object of the sidecar and says why it is not scored (the synthetic images hold nobody
    BlazePose finds: no posed person), beside the reference numbers."""
    from interactvlm_ros.cli import main

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    bag = tmp_path / "behave_bag"
    assert main(["convert", "behave", str(behave["root"]), str(bag), "--body-model-dir", str(behave["body_dir"]),
                 "--kinects", "0", "--storage", "sqlite3"]) == 0
    out = tmp_path / "replayed"
    assert main(["replay", str(bag), str(out), "--contact-checkpoint-dir", str(tiny_checkpoint),
                 "--affordance-checkpoint-dir", str(tiny_checkpoint), "--clip-dir", str(tiny_checkpoint / "clip"),
                 "--depth-topic", "/camera/depth_registered/image_raw", "--render-size", "64"]) == 0
    printed = capsys.readouterr().out
    report = json.loads((tmp_path / "replayed_report" / "reconstruction.json").read_text())
    truth = load_ground_truth(tmp_path / "behave_bag.groundtruth.npz")
    assert len(report["per_sample"]) == len(truth) == 2
    assert {s["not_scored"] for s in report["per_sample"]} == {"the person was not posed"}
    assert report["reference_behave"]["InteractVLM"]["chamfer_object_cm"] == 19.2 and report["weights_are_random"]
    assert "reconstruction (2 samples)" in printed and "InteractVLM 5.77 / 19.2 cm" in printed
