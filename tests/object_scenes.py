"""Synthetic scenes for the joint fit: a posed person touching an object with a known pose.

Shared by tests/test_reconstruction.py and benchmarks/joint_fit.py. The person is one of
tests/body_poses.py's poses, posed through the open body's rig and placed in front of the
camera (``body_poses.camera_placement``). The object (a proxy of ``geometry.objects`` or the
asymmetric mug below), turned at random, comes towards a body part along a direction (out of
the hand's palm plane, or forward from the chest) from 30 cm away until it touches the body
(its dense surface sample within 5 mm of a body vertex; it moves by the clearance left, so it
never passes through a part), so it never enters the body; a hand's object must touch mostly
the hand. The truth
contact: body vertices within 2 cm of the object's surface, object vertices within 2 cm of the
body; the maps the fit gets are those with soft edges and noise (:func:`noisy_contact`); the box
is the placed mesh's projection (the object fully in view, each side at least 12 px),
optionally with Gaussian noise per side (redrawn where it would halve a side).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import trimesh
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

import body_poses
from interactvlm_ros.geometry.depth import Intrinsics
from interactvlm_ros.geometry.mesh import TriangleMesh
from interactvlm_ros.geometry.objects import proxy_mesh
from interactvlm_ros.geometry.open_body import load_open_body_arrays

#: A 640 x 480 camera (Kinect-like focal length).
INTRINSICS = Intrinsics(fx=525.0, fy=525.0, cx=319.5, cy=239.5, width=640, height=480)
#: Metres: the truth contact regions (vertices this close to the other surface).
CONTACT_M = 0.02
#: Pixels: the smallest box side of a scene's object (a detector misses smaller objects; box
#: noise must not turn a box inside out).
MIN_BOX_PX = 12
#: Metres: the object stops when its surface sample comes this close to a body vertex.
TOUCH_M = 0.005


def mug_mesh() -> TriangleMesh:
    """An asymmetric object: a 10 cm tall cylinder of radius 4 cm with a ring handle on +X
    (model frame, long axis +Y, metres)."""
    upright = trimesh.transformations.rotation_matrix(-np.pi / 2, [1, 0, 0])
    body = trimesh.creation.cylinder(radius=0.04, height=0.10, sections=32)
    body.apply_transform(upright)
    body = body.subdivide().subdivide()
    handle = trimesh.creation.torus(major_radius=0.03, minor_radius=0.008, major_sections=24, minor_sections=8)
    handle.apply_transform(trimesh.transformations.rotation_matrix(np.pi / 2, [1, 0, 0]))  # ring in the x-y plane
    handle.apply_translation([0.055, 0.0, 0.0])
    keep = handle.vertices[:, 0] > 0.035  # the half of the ring outside the cylinder
    faces = handle.faces[keep[handle.faces].all(axis=1)]
    used, remap = np.unique(faces, return_inverse=True)
    vertices = np.concatenate([body.vertices, handle.vertices[used]])
    faces = np.concatenate([body.faces, remap.reshape(-1, 3) + len(body.vertices)])
    return TriangleMesh(vertices, faces, name="mesh:mug")


def _d4_about_y() -> np.ndarray:
    """The 8 rotations that map a box with a square cross-section about Y onto itself."""
    turns = [Rotation.from_rotvec([0.0, k * math.pi / 2, 0.0]) for k in range(4)]
    flip = Rotation.from_rotvec([math.pi, 0.0, 0.0])
    return np.stack([r.as_matrix() for r in turns] + [(r * flip).as_matrix() for r in turns])


#: name -> (mesh, its symmetry rotations in the model frame, or None for a continuous symmetry:
#: rotation error undefined).
OBJECTS = {
    "cup": (proxy_mesh("cylinder", 0.12), None),
    "box": (proxy_mesh("box", 0.3), _d4_about_y()),
    "ball": (proxy_mesh("sphere", 0.22), None),
    "mug": (mug_mesh(), np.eye(3)[None]),
}

#: (pose, object, body part touched, approach direction: "palm" (either side of the hand's
#: plane) or "forward" (the body's front)).
SCENES = (
    ("handing_over", "cup", "right hand", "palm"),
    ("handing_over", "mug", "right hand", "palm"),
    ("reaching_forward", "ball", "right hand", "palm"),
    ("reaching_forward", "mug", "right hand", "palm"),
    ("holding_at_chest", "box", "chest", "forward"),
    ("holding_at_chest", "cup", "left hand", "palm"),
    ("carrying_box", "box", "right hand", "palm"),
    ("carrying_box", "mug", "left hand", "palm"),
)


@dataclass
class Scene:
    """One synthetic scene. ``rotation`` / ``translation``: the truth, model -> optical
    (``x = rotation @ p + translation``); contact maps in [0, 1] (noisy); truth_* the
    noise-free regions (bool); ``box`` xyxy pixels."""

    name: str
    body_vertices: np.ndarray
    body_normals: np.ndarray
    human_contact: np.ndarray
    object_mesh: TriangleMesh
    object_contact: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    box: np.ndarray
    truth_human: np.ndarray
    truth_object: np.ndarray
    symmetries: np.ndarray | None

    @property
    def placed(self) -> np.ndarray:
        return self.object_mesh.vertices.astype(np.float64) @ self.rotation.T + self.translation


class SceneMaker:
    """Builds scenes; holds the fitter (rig) and the open body's part labels."""

    def __init__(self, fitter):
        self.fitter = fitter
        arrays = load_open_body_arrays()
        self.part_names = [str(name) for name in arrays["part_names"]]
        self.part_labels = np.asarray(arrays["part_labels"])
        self.faces = np.asarray(fitter.rig.faces, np.int64)

    def body(self, pose: str, rng, jitter: float = 0.05):
        """(vertices (V, 3), normals (V, 3), body rotation (3, 3)) of a pose, placed."""
        values = body_poses.jitter(body_poses.joint_values(self.fitter, pose), rng, jitter)
        rotation, root = body_poses.camera_placement(rng)
        translation = np.asarray(root) - self.fitter.rig.rest_joints[0]
        vertices = self.fitter.rig.posed_vertices(*self.fitter.compose(values, rotation, translation))
        normals = TriangleMesh(vertices, self.faces).vertex_normals().astype(np.float64)
        return vertices, normals, rotation

    def scene(self, spec, rng, *, box_noise_px: float = 0.0, contact_noise: float = 0.1, tries: int = 50) -> Scene:
        """A scene of ``spec`` (a row of :data:`SCENES`); RuntimeError after ``tries`` draws
        that did not give a touching, fully visible placement."""
        pose, object_name, part, approach = spec
        mesh, symmetries = OBJECTS[object_name]
        model = mesh.vertices.astype(np.float64)
        sample = trimesh.sample.sample_surface(trimesh.Trimesh(model, mesh.faces, process=False), 4000, seed=0)[0]
        part_ids = np.flatnonzero(self.part_labels == self.part_names.index(part))
        for attempt in range(tries):
            if attempt % 5 == 0:  # a few object draws per body
                vertices, normals, body_rotation = self.body(pose, rng)
                tree = cKDTree(vertices)
                anchor = vertices[part_ids].mean(axis=0)
            if approach == "forward":
                direction = body_rotation[:, 2]
            else:
                centred = vertices[part_ids] - anchor
                direction = np.linalg.svd(centred, full_matrices=False)[2][2] * rng.choice([-1.0, 1.0])
            rotation = Rotation.random(random_state=rng).as_matrix()
            centre = model.mean(axis=0)
            surface = (sample - centre) @ rotation.T
            radius = np.linalg.norm(model - centre, axis=1).max()
            offset = radius + 0.3
            clearance = tree.query(surface + anchor + offset * direction)[0].min()
            if clearance < 0.02:
                continue  # something else of the body is in the way at the start
            while clearance > TOUCH_M + 0.001 and offset > -radius:
                offset -= clearance - TOUCH_M  # no point moves further than the clearance: never passes through
                clearance = tree.query(surface + anchor + offset * direction)[0].min()
            if offset <= -radius:
                continue
            translation = anchor + offset * direction - rotation @ centre
            placed = model @ rotation.T + translation
            human_distance = cKDTree(surface + anchor + offset * direction).query(vertices)[0]
            truth_human = human_distance < CONTACT_M
            object_distance = tree.query(placed)[0]
            truth_object = object_distance < CONTACT_M
            on_part = np.isin(np.flatnonzero(truth_human), part_ids).mean() if truth_human.any() else 0.0
            if truth_human.sum() < 10 or truth_object.sum() < 3 or (approach == "palm" and on_part < 0.5):
                continue
            if placed[:, 2].min() <= 0.1:
                continue
            u = INTRINSICS.fx * placed[:, 0] / placed[:, 2] + INTRINSICS.cx
            v = INTRINSICS.fy * placed[:, 1] / placed[:, 2] + INTRINSICS.cy
            box = np.array([u.min(), v.min(), u.max(), v.max()])
            if box[0] < 0 or box[1] < 0 or box[2] > INTRINSICS.width - 1 or box[3] > INTRINSICS.height - 1:
                continue
            if min(box[2] - box[0], box[3] - box[1]) < MIN_BOX_PX:
                continue
            clean = box
            while True:  # noise that keeps at least half of each side (a detector's box is never inside out)
                box = clean + rng.normal(0.0, box_noise_px, 4)
                if np.all(box[2:] - box[:2] >= 0.5 * (clean[2:] - clean[:2])):
                    break
            return Scene(
                name=f"{pose}/{object_name}", body_vertices=vertices.astype(np.float32),
                body_normals=normals.astype(np.float32),
                human_contact=noisy_contact(human_distance, rng, contact_noise),
                object_mesh=mesh, object_contact=noisy_contact(object_distance, rng, contact_noise),
                rotation=rotation, translation=translation, box=box, truth_human=truth_human,
                truth_object=truth_object, symmetries=symmetries)
        raise RuntimeError(f"no touching, visible placement of {object_name} at {part} in {tries} draws")


def noisy_contact(distance: np.ndarray, rng, noise: float) -> np.ndarray:
    """Contact probabilities from the distance to the other surface (metres): 1 within
    :data:`CONTACT_M` falling to 0 over the next 1.5 cm (a logistic edge), each in-region
    vertex scaled by U(0.75, 1), plus Gaussian noise of ``noise``, clipped to [0, 1]."""
    soft = 1.0 / (1.0 + np.exp((distance - CONTACT_M - 0.0075) / 0.0025))
    soft = soft * rng.uniform(0.75, 1.0, len(distance)) + rng.normal(0.0, noise, len(distance))
    return np.clip(soft, 0.0, 1.0).astype(np.float32)


def chamfer(a: np.ndarray, b: np.ndarray) -> float:
    """Symmetric Chamfer distance (metres): the mean of the two mean nearest-neighbour
    distances between the point sets (N, 3) and (M, 3)."""
    return 0.5 * (cKDTree(b).query(a)[0].mean() + cKDTree(a).query(b)[0].mean())


def rotation_error_deg(estimate: np.ndarray, truth: np.ndarray, symmetries: np.ndarray | None) -> float:
    """The smallest angle (degrees) between the estimated and true model -> optical rotations
    over the object's symmetries (NaN for a continuous symmetry)."""
    if symmetries is None:
        return float("nan")
    angles = [Rotation.from_matrix(estimate.T @ truth @ s).magnitude() for s in symmetries]
    return float(np.degrees(min(angles)))
