"""A person's landmarks placed in the camera's optical frame (body/placement.py), checked on a
synthetic person with a known pose.

The person: a plausible 33-landmark BlazePose skeleton (standing, 1.78 m from the top of the
head to the soles, the right arm reaching forward) in MediaPipe's world frame (x right,
y down, z away from the camera, origin between the hips), rotated and placed 2-4 m in front of
a pinhole camera. The depth camera sees a body made of spheres: one per landmark, of radius
``SURFACE_TO_JOINT_M`` around the joint landmarks (so the skin lies that far in front of them)
and a 12 mm one whose front touches each surface landmark (face, fingers, feet), joined along
the bones by smaller spheres; a wall stands behind. A landmark whose own surface is hidden by
another part of the body gets a low visibility, as the pose source would give it. Noise: 1 px
on the image landmarks, 1 cm on the world landmarks and on every depth pixel.

The body's skin uses the module's own offsets, so the depth tests check the geometry of the
skin-to-joint correction (along each viewing ray), not how well the offsets fit real people.
"""

from __future__ import annotations

import numpy as np
import pytest

from interactvlm_ros.body.placement import (
    LANDMARK_NAMES,
    METHOD_DEPTH,
    METHOD_PNP,
    METHOD_PNP_DEPTH_DISAGREES,
    METHOD_PNP_TOO_LITTLE_DEPTH,
    MIN_PNP_LANDMARKS,
    SURFACE_TO_JOINT_M,
    VISIBILITY_MIN,
    place_person,
    rigid_transform,
    sample_landmark_depth,
)
from interactvlm_ros.geometry.depth import DepthFrame, Intrinsics
from interactvlm_ros.reasons import Reason, Rejected

WIDTH, HEIGHT = 1280, 960
INTRINSICS = Intrinsics(fx=650.0, fy=650.0, cx=(WIDTH - 1) / 2, cy=(HEIGHT - 1) / 2, width=WIDTH, height=HEIGHT)
WALL_Z = 6.0
SURFACE_SPHERE_M = 0.012
CM = 0.01
INDEX = {name: i for i, name in enumerate(LANDMARK_NAMES)}

# MediaPipe world frame: x right (the person's left is on the image's right when they face the
# camera), y down, z away from the camera, metres, origin between the hips.
_HALF = {  # left-side landmarks; the right side mirrors x (the right arm is set below)
    "eye_inner": (0.015, -0.755, -0.085), "eye": (0.032, -0.757, -0.08), "eye_outer": (0.048, -0.757, -0.072),
    "ear": (0.075, -0.74, -0.0), "shoulder": (0.19, -0.5, 0.0), "elbow": (0.23, -0.23, 0.03),
    "wrist": (0.25, 0.02, -0.05), "pinky": (0.26, 0.1, -0.05), "index": (0.24, 0.11, -0.08),
    "thumb": (0.22, 0.07, -0.09), "hip": (0.1, 0.0, 0.0), "knee": (0.11, 0.45, -0.03),
    "ankle": (0.1, 0.87, 0.03), "heel": (0.1, 0.93, 0.08), "foot_index": (0.13, 0.95, -0.13),
}
_REACH = {"elbow": (-0.26, -0.3, -0.2), "wrist": (-0.22, -0.3, -0.46), "pinky": (-0.25, -0.29, -0.53),
          "index": (-0.2, -0.31, -0.55), "thumb": (-0.17, -0.33, -0.5)}


def _skeleton() -> np.ndarray:
    points = np.zeros((33, 3))
    points[INDEX["nose"]] = (0.0, -0.72, -0.11)
    points[INDEX["mouth_left"]] = (0.025, -0.68, -0.09)
    points[INDEX["mouth_right"]] = (-0.025, -0.68, -0.09)
    for part, (x, y, z) in _HALF.items():
        points[INDEX["left_" + part]] = (x, y, z)
        points[INDEX["right_" + part]] = _REACH.get(part, (-x, y, z))
    return points


SKELETON = _skeleton()
BONES = [("left_shoulder", "right_shoulder"), ("left_hip", "right_hip"), ("left_shoulder", "left_hip"),
         ("right_shoulder", "right_hip"), ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
         ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"), ("left_hip", "left_knee"),
         ("left_knee", "left_ankle"), ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
         ("left_wrist", "left_index"), ("right_wrist", "right_index"), ("left_ankle", "left_foot_index"),
         ("right_ankle", "right_foot_index"), ("nose", "left_ear"), ("nose", "right_ear")]


def rotation(yaw_deg: float, pitch_deg: float = 0.0) -> np.ndarray:
    """About the optical y axis (the person turns), then about x (the camera looks down)."""
    a, b = np.radians(yaw_deg), np.radians(pitch_deg)
    yaw = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    pitch = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    return pitch @ yaw


def project(points: np.ndarray) -> np.ndarray:
    return np.stack([INTRINSICS.fx * points[:, 0] / points[:, 2] + INTRINSICS.cx,
                     INTRINSICS.fy * points[:, 1] / points[:, 2] + INTRINSICS.cy], axis=1)


def _body_spheres(camera_xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rays = camera_xyz / np.linalg.norm(camera_xyz, axis=1, keepdims=True)
    on_surface = SURFACE_TO_JOINT_M == 0
    radii = np.where(on_surface, SURFACE_SPHERE_M, SURFACE_TO_JOINT_M)
    centres = camera_xyz + np.where(on_surface, SURFACE_SPHERE_M, 0.0)[:, None] * rays
    bone_centres, bone_radii = [centres], [radii]
    for a, b in BONES:
        i, j = INDEX[a], INDEX[b]
        steps = np.linspace(0, 1, max(int(np.linalg.norm(camera_xyz[j] - camera_xyz[i]) / 0.01), 2))[1:-1]
        bone_centres.append(camera_xyz[i] + steps[:, None] * (camera_xyz[j] - camera_xyz[i]))
        bone_radii.append(0.6 * np.full(steps.size, min(radii[i], radii[j])))
    return np.concatenate(bone_centres), np.concatenate(bone_radii)


def render_depth(camera_xyz: np.ndarray, wall_z: float = WALL_Z) -> np.ndarray:
    """(H, W) float32 depth (z, metres) of the sphere body in front of a wall, ray-cast per pixel."""
    depth = np.full((HEIGHT, WIDTH), wall_z, dtype=np.float64)
    for centre, radius in zip(*_body_spheres(camera_xyz)):
        (u, v), reach = project(centre[None])[0], INTRINSICS.fx * radius / (centre[2] - radius) + 2
        u0, u1 = max(int(u - reach), 0), min(int(u + reach) + 1, WIDTH)
        v0, v1 = max(int(v - reach), 0), min(int(v + reach) + 1, HEIGHT)
        if u0 >= u1 or v0 >= v1:
            continue
        uu, vv = np.meshgrid(np.arange(u0, u1), np.arange(v0, v1))
        rays = np.stack([(uu - INTRINSICS.cx) / INTRINSICS.fx, (vv - INTRINSICS.cy) / INTRINSICS.fy,
                         np.ones(uu.shape)], axis=-1)
        rays /= np.linalg.norm(rays, axis=-1, keepdims=True)
        along = rays @ centre
        disc = along ** 2 - (centre @ centre - radius ** 2)
        hit = disc >= 0
        z = (along - np.sqrt(np.where(hit, disc, 0))) * rays[..., 2]
        patch = depth[v0:v1, u0:u1]
        patch[hit] = np.minimum(patch[hit], z[hit])
    return depth.astype(np.float32)


def own_surface_visible(camera_xyz: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """(33,) bool: the depth at each landmark's pixel is its own skin (not an occluder in front)."""
    rays = camera_xyz / np.linalg.norm(camera_xyz, axis=1, keepdims=True)
    skin_z = (camera_xyz - SURFACE_TO_JOINT_M[:, None] * rays)[:, 2]
    u, v = np.rint(project(camera_xyz)).astype(int).T
    inside = (u >= 0) & (u < WIDTH) & (v >= 0) & (v < HEIGHT)
    seen = np.full(33, np.nan)
    seen[inside] = depth[v[inside], u[inside]]
    return inside & (seen > skin_z - 0.01)


def person_box(image_xy: np.ndarray, margin: float = 25.0) -> tuple[float, float, float, float]:
    low, high = image_xy.min(axis=0) - margin, image_xy.max(axis=0) + margin
    return (max(low[0], 0.0), max(low[1], 0.0), min(high[0], WIDTH), min(high[1], HEIGHT))


HIDDEN = ["left_eye_outer", "right_ear", "left_heel"]  # given visibility 0 (the pose source's guess)


def scene(yaw_deg: float, translation, pitch_deg: float = 10.0, seed: int = 0, noise: bool = True,
          wall_z: float = WALL_Z):
    """The pose source's output and the depth image for a person at a known pose.

    Returns (truth (33, 3) camera frame, image_xy, visibility, world_xyz, box, depth (H, W))."""
    rng = np.random.default_rng(seed)
    truth = SKELETON @ rotation(yaw_deg, pitch_deg).T + np.asarray(translation, dtype=np.float64)
    depth = render_depth(truth, wall_z)
    visibility = np.where(own_surface_visible(truth, depth), 0.95, 0.2)
    visibility[[INDEX[name] for name in HIDDEN]] = 0.0
    image_xy = project(truth)
    world = SKELETON.copy()
    if noise:
        image_xy = image_xy + rng.normal(0.0, 1.0, image_xy.shape)  # 1 px
        world = world + rng.normal(0.0, CM, world.shape)  # 1 cm
        depth = (depth + rng.normal(0.0, CM, depth.shape)).astype(np.float32)  # 1 cm
    return truth, image_xy, visibility, world, person_box(project(truth)), depth


def errors(placement, truth: np.ndarray) -> np.ndarray:
    return np.linalg.norm(placement.camera_xyz.astype(np.float64) - truth, axis=1)


def frame(depth: np.ndarray) -> DepthFrame:
    return DepthFrame(metres=depth, intrinsics=INTRINSICS, frame_id="camera_color_optical_frame")


POSES = [(20.0, (0.2, 0.1, 2.0)), (-30.0, (-0.3, 0.05, 3.0)), (40.0, (0.4, 0.0, 4.0))]


def test_the_synthetic_scene_is_what_the_tests_assume():
    truth, image_xy, visibility, _, box, depth = scene(*POSES[1])
    height = SKELETON[:, 1].max() - SKELETON[:, 1].min() + 0.08  # + the top of the head above the eyes
    assert 1.7 < height < 1.85
    assert np.all((image_xy > 0) & (image_xy < (WIDTH, HEIGHT)))
    assert np.count_nonzero(visibility >= VISIBILITY_MIN) >= 20
    # The depth at a visible joint is its skin, SURFACE_TO_JOINT_M in front of the joint centre.
    shoulder = INDEX["left_shoulder"]
    u, v = np.rint(project(truth[[shoulder]])[0]).astype(int)
    assert abs(depth[v, u] - (truth[shoulder, 2] - 0.05 * truth[shoulder, 2] / np.linalg.norm(truth[shoulder]))) < 0.03
    assert float(np.median(depth[:5, :5])) == pytest.approx(WALL_Z, abs=0.02)


@pytest.mark.parametrize("yaw, translation", POSES)
def test_depth_places_the_person_within_3_cm_despite_the_background_behind_a_hand(yaw, translation):
    truth, image_xy, visibility, world, box, depth = scene(yaw, translation)
    # The depth behind the left hand shows the wall (flying pixels, a misregistered edge).
    outliers = [INDEX[name] for name in ("left_wrist", "left_index", "left_thumb")]
    for u, v in np.rint(image_xy[outliers]).astype(int):
        depth[v - 4:v + 5, u - 4:u + 5] = WALL_Z
    visibility[outliers] = 0.9
    placement = place_person(image_xy, visibility, world, box, depth=frame(depth))
    assert placement.method == METHOD_DEPTH and placement.residual_unit == "m"
    assert not placement.support[outliers].any()  # the wall behind the hand is rejected
    assert placement.inliers >= 15
    error = errors(placement, truth)
    assert np.median(error) <= 3 * CM, np.median(error)
    assert np.percentile(error, 90) <= 5 * CM
    assert placement.residual < 3 * CM
    assert placement.camera_xyz.dtype == np.float32 and placement.camera_xyz.shape == (33, 3)
    np.testing.assert_allclose(placement.rotation @ placement.rotation.T, np.eye(3), atol=1e-9)
    assert np.linalg.det(placement.rotation) == pytest.approx(1.0)
    # The hip-centred world origin lands on the true hip centre.
    np.testing.assert_allclose(placement.translation, translation, atol=3 * CM)


@pytest.mark.parametrize("yaw, translation", POSES)
def test_pnp_places_the_person_within_its_tolerance(yaw, translation):
    truth, image_xy, visibility, world, box, _ = scene(yaw, translation)
    placement = place_person(image_xy, visibility, world, box, intrinsics=INTRINSICS)
    assert placement.method == METHOD_PNP and placement.residual_unit == "px"
    assert np.array_equal(placement.support, visibility >= VISIBILITY_MIN)
    error = errors(placement, truth)
    # With 1 px and 1 cm of noise the median error is 1.6-1.7 cm here (at most 2.6 / 3.1 /
    # 3.8 cm at 2 / 3 / 4 m over 8 noise seeds): tolerance 1.5 % of the distance.
    assert np.median(error) <= 0.015 * translation[2], np.median(error)
    assert np.percentile(error, 90) <= 0.025 * translation[2]
    # The residual is the noise: 1 px, and 1 cm of world noise seen at the person's distance.
    assert placement.residual < 2 * np.hypot(1.0, INTRINSICS.fx * CM / translation[2]) * np.sqrt(2)


def test_pnp_distance_scales_with_the_world_landmarks_size():
    """Monocular scale: the same image with world landmarks twice as large places the person
    twice as far."""
    truth, image_xy, visibility, world, box, _ = scene(-30.0, (0.0, 0.0, 2.5), noise=False)
    placement = place_person(image_xy, visibility, 2 * world, box, intrinsics=INTRINSICS)
    np.testing.assert_allclose(placement.camera_xyz, 2 * truth, atol=1e-4)


SPREAD_OUT = ["nose", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
              "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"]


def skin_patches(truth: np.ndarray, used: list[int]) -> np.ndarray:
    """A depth image holding, in the 5 x 5 window of each used landmark, exactly the depth of
    its skin (SURFACE_TO_JOINT_M in front of it along its ray); NaN elsewhere."""
    rays = truth / np.linalg.norm(truth, axis=1, keepdims=True)
    skin_z = (truth - SURFACE_TO_JOINT_M[:, None] * rays)[:, 2]
    depth = np.full((HEIGHT, WIDTH), np.nan, dtype=np.float32)
    for i in used:
        u, v = np.rint(project(truth[[i]])[0]).astype(int)
        assert np.all(np.isnan(depth[v - 2:v + 3, u - 2:u + 3])), "windows overlap"
        depth[v - 2:v + 3, u - 2:u + 3] = skin_z[i]
    return depth


def test_identity_rotation_is_recovered_to_float_precision():
    """No noise, no rotation: depth windows holding exactly each joint's skin depth, and exact
    projections, give back the pose to float precision on both paths."""
    translation = np.array([0.1, -0.05, 3.0])
    truth = SKELETON + translation
    image_xy = project(truth)
    # Landmarks whose 5 x 5 depth windows do not overlap.
    used = [INDEX[name] for name in SPREAD_OUT + ["left_foot_index"]]
    visibility = np.zeros(33)
    visibility[used] = 1.0
    depth = skin_patches(truth, used)
    box = person_box(image_xy)
    for placement in (place_person(image_xy, visibility, SKELETON, box, depth=frame(depth)),
                      place_person(image_xy, visibility, SKELETON, box, intrinsics=INTRINSICS)):
        np.testing.assert_allclose(placement.rotation, np.eye(3), atol=1e-6)
        np.testing.assert_allclose(placement.translation, translation, atol=2e-6)
        np.testing.assert_allclose(placement.camera_xyz, truth, atol=2e-6)
    assert placement.method == METHOD_PNP and placement.residual < 1e-6


def test_no_depth_at_the_landmarks_falls_back_to_pnp():
    truth, image_xy, visibility, world, box, depth = scene(20.0, (0.2, 0.1, 2.0))
    holes = np.full_like(depth, np.nan)
    placement = place_person(image_xy, visibility, world, box, depth=frame(holes))
    assert placement.method == METHOD_PNP_TOO_LITTLE_DEPTH
    assert np.median(errors(placement, truth)) <= 0.015 * 2.0
    # Landmarks outside the person's box are not sampled: a box around the head only leaves
    # the face's depth, too small a patch to fix the body's rotation; PnP uses every visible
    # landmark.
    head = [INDEX[name] for name in LANDMARK_NAMES[:11]]
    placement = place_person(image_xy, visibility, world, person_box(image_xy[head], margin=2), depth=frame(depth))
    assert placement.method == METHOD_PNP_TOO_LITTLE_DEPTH
    assert np.array_equal(placement.support, visibility >= VISIBILITY_MIN)
    assert np.median(errors(placement, truth)) <= 0.015 * 2.0


def test_depth_of_another_scene_falls_back_to_pnp():
    """Depth that no rigid body pose explains (here: the wall alone, the person absent from it)."""
    truth, image_xy, visibility, world, box, _ = scene(-30.0, (-0.3, 0.05, 3.0))
    wall = np.full((HEIGHT, WIDTH), WALL_Z, dtype=np.float32)
    placement = place_person(image_xy, visibility, world, box, depth=frame(wall))
    assert placement.method == METHOD_PNP_DEPTH_DISAGREES
    assert np.median(errors(placement, truth)) <= 0.015 * 3.0


def test_no_camera_info():
    _, image_xy, visibility, world, box, _ = scene(20.0, (0.2, 0.1, 2.0))
    with pytest.raises(Rejected) as raised:
        place_person(image_xy, visibility, world, box)
    assert raised.value.reason is Reason.NO_CAMERA_INFO


def test_too_few_landmarks():
    _, image_xy, visibility, world, box, depth = scene(20.0, (0.2, 0.1, 2.0))
    few = np.zeros(33)
    few[[INDEX["left_shoulder"], INDEX["right_shoulder"], INDEX["left_hip"]]] = 1.0
    for source in ({"depth": frame(depth)}, {"intrinsics": INTRINSICS}):
        with pytest.raises(Rejected) as raised:
            place_person(image_xy, few, world, box, **source)
        assert raised.value.reason is Reason.TOO_FEW_LANDMARKS
    # Five landmarks: enough for depth, not for PnP.
    few[[INDEX["right_hip"], INDEX["nose"]]] = 1.0
    assert np.count_nonzero(few) < MIN_PNP_LANDMARKS
    with pytest.raises(Rejected) as raised:
        place_person(image_xy, few, world, box, intrinsics=INTRINSICS)
    assert raised.value.reason is Reason.TOO_FEW_LANDMARKS
    assert place_person(image_xy, few, world, box, depth=frame(depth)).method == METHOD_DEPTH
    # Degenerate sets: world landmarks on a line, image landmarks on one pixel.
    line = np.outer(np.linspace(-0.9, 0.9, 33), (0.0, 1.0, 0.0))
    for world_xyz, pixels in ((line, image_xy), (world, np.tile(image_xy[:1], (33, 1)))):
        for source in ({"depth": frame(depth)}, {"intrinsics": INTRINSICS}):
            with pytest.raises(Rejected) as raised:
                place_person(pixels, visibility, world_xyz, box, **source)
            assert raised.value.reason is Reason.TOO_FEW_LANDMARKS and "too close to a line" in raised.value.detail


def test_no_depth_at_landmarks():
    """Depth given, none under the landmarks, and too few landmarks for PnP."""
    _, image_xy, _, world, box, depth = scene(20.0, (0.2, 0.1, 2.0))
    five = np.zeros(33)
    five[[INDEX[name] for name in ("nose", "left_shoulder", "right_shoulder", "left_hip", "right_hip")]] = 1.0
    with pytest.raises(Rejected) as raised:
        place_person(image_xy, five, world, box, depth=frame(np.full_like(depth, np.nan)))
    assert raised.value.reason is Reason.NO_DEPTH_AT_LANDMARKS
    assert "5 visible landmarks are too few for PnP" in raised.value.detail


@pytest.mark.parametrize("use_depth", [True, False])
def test_person_behind_camera(use_depth):
    """A hidden landmark that the pose source put 4 m in front of the body ends up behind the camera."""
    _, image_xy, visibility, world, box, depth = scene(0.0, (0.0, 0.0, 3.0), pitch_deg=0.0)
    world[INDEX["right_heel"], 2] = -4.0
    visibility[INDEX["right_heel"]] = 0.0
    source = {"depth": frame(depth)} if use_depth else {"intrinsics": INTRINSICS}
    with pytest.raises(Rejected) as raised:
        place_person(image_xy, visibility, world, box, **source)
    assert raised.value.reason is Reason.PERSON_BEHIND_CAMERA
    assert "right_heel" in raised.value.detail


def test_person_too_far():
    truth = SKELETON @ rotation(20.0).T + (0.0, 0.0, 12.0)
    used = [INDEX[name] for name in SPREAD_OUT if not name.endswith("wrist")]  # 2 px apart from the elbows
    visibility = np.zeros(33)
    visibility[used] = 1.0
    with pytest.raises(Rejected) as raised:
        place_person(project(truth), visibility, SKELETON, person_box(project(truth)),
                     depth=frame(skin_patches(truth, used)))
    assert raised.value.reason is Reason.PERSON_TOO_FAR
    assert "the depth placement puts the person 11.9 m away" in raised.value.detail
    # A world skeleton 4 times too large is placed 4 times as far by PnP.
    _, image_xy, visibility, world, box, _ = scene(20.0, (0.0, 0.0, 3.0), noise=False)
    with pytest.raises(Rejected) as raised:
        place_person(image_xy, visibility, 4 * world, box, intrinsics=INTRINSICS)
    assert raised.value.reason is Reason.PERSON_TOO_FAR
    assert place_person(image_xy, visibility, 4 * world, box, intrinsics=INTRINSICS,
                        max_distance=15.0).translation[2] == pytest.approx(12.0, abs=1e-3)


def test_reasons_are_caveats_with_a_warning():
    for reason in (Reason.NO_CAMERA_INFO, Reason.TOO_FEW_LANDMARKS, Reason.NO_DEPTH_AT_LANDMARKS,
                   Reason.PERSON_BEHIND_CAMERA, Reason.PERSON_TOO_FAR):
        assert reason.severity == "warn" and not reason.drops


def test_malformed_inputs_name_the_input():
    _, image_xy, visibility, world, box, depth = scene(20.0, (0.2, 0.1, 2.0), noise=False)
    cases = [
        (dict(image_xy=image_xy[:32]), "image_xy must have shape"),
        (dict(world_xyz=np.where(np.arange(33)[:, None] == 3, np.nan, world)), "world_xyz has non-finite"),
        (dict(visibility=visibility * 2), "visibility must lie in [0, 1]"),
        (dict(box=(10, 10, 5, 20)), "box must be 4 finite numbers"),
        (dict(intrinsics=Intrinsics(600.0, 600.0, 320.0, 240.0, 640, 480), depth=frame(depth)),
         "differ from the registered depth image's"),
    ]
    for change, message in cases:
        arguments = dict(image_xy=image_xy, visibility=visibility, world_xyz=world, box=box, intrinsics=INTRINSICS)
        arguments.update(change)
        with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
            place_person(**arguments)


def test_sample_landmark_depth_takes_the_window_median_and_ignores_invalid_pixels():
    depth = np.full((20, 30), np.nan, dtype=np.float32)
    depth[5:10, 5:10] = 2.0
    depth[5, 5] = 9.0  # one outlier in the window
    depth[15:20, 20:25] = 3.0
    depth[15, 20:25] = np.nan  # 20 of 25 valid
    depth[0, 28] = 4.0  # a single valid pixel: too few
    z = sample_landmark_depth(depth, np.array([[7.2, 6.8], [22.0, 17.4], [28.0, 0.0], [40.0, 5.0]]))
    assert z[0] == 2.0 and z[1] == 3.0
    assert np.isnan(z[2]) and np.isnan(z[3])  # too few valid pixels; outside the image
    with pytest.raises(ValueError, match="window must be a positive odd"):
        sample_landmark_depth(depth, np.zeros((1, 2)), window=4)


def test_rigid_transform_recovers_a_rotation_and_refuses_a_reflection():
    rng = np.random.default_rng(3)
    source = rng.normal(size=(10, 3))
    truth = rotation(35.0, -20.0)
    r, t = rigid_transform(source, source @ truth.T + (1.0, 2.0, 3.0))
    np.testing.assert_allclose(r, truth, atol=1e-12)
    np.testing.assert_allclose(t, (1.0, 2.0, 3.0), atol=1e-12)
    mirrored = source * (-1.0, 1.0, 1.0)  # the best orthogonal map would be a reflection
    r, _ = rigid_transform(source, mirrored)
    assert np.linalg.det(r) == pytest.approx(1.0)
