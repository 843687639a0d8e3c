"""Joint-reconstruction scoring (eval.evaluate.score_reconstruction) on known geometry: a body and
an object whose ground truth is known exactly, moved by known amounts."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from interactvlm_ros.eval.evaluate import BEHAVE_REFERENCE, Reconstruction, score_reconstruction
from interactvlm_ros.eval.groundtruth import GroundTruthSample


def box(size, centre=(0.0, 0.0, 0.0)):
    mesh = trimesh.creation.box(extents=size)
    mesh = trimesh.Trimesh(*trimesh.remesh.subdivide_to_size(mesh.vertices, mesh.faces, 0.05))
    return np.asarray(mesh.vertices + centre, np.float64), np.asarray(mesh.faces, np.int64)


BODY, BODY_FACES = box((0.4, 1.6, 0.3), (0.0, 0.0, 2.5))
CUP, CUP_FACES = box((0.08, 0.12, 0.08))
POSE = np.eye(4)
POSE[:3, 3] = (0.25, 0.1, 2.4)  # the cup beside the body's right side


def truth(stamp=1):
    return {(stamp, "cup"): GroundTruthSample(stamp, "cup", "cup", body_model="box_body", contact=np.zeros(len(BODY)),
                                              body_vertices=BODY, body_faces=BODY_FACES, object_vertices=CUP,
                                              object_faces=CUP_FACES, object_pose=POSE)}


def placed(shift=(0.0, 0.0, 0.0), body_shift=(0.0, 0.0, 0.0), **kwargs):
    return Reconstruction(1, "cup", "box_body", BODY + body_shift, BODY_FACES, CUP + POSE[:3, 3] + shift, CUP_FACES,
                          "contact_fit", **kwargs)


def test_an_exact_reconstruction_scores_only_the_sampling_floor_and_a_shift_adds_its_size():
    _, (exact,) = score_reconstruction([placed()], truth())
    assert exact["chamfer_human_cm"] < 3.0 and exact["chamfer_object_cm"] < 1.0  # 6000 samples of 2.5 m², of 0.05 m²
    assert exact["penetration_cm"] == 0.0
    _, (moved,) = score_reconstruction([placed(shift=(0.0, 0.0, 0.2))], truth())
    # 20 cm off along z: each direction's mean nearest distance is at most 20 cm and at least
    # the part of the shift that leaves the cup's 8 cm depth: 12 cm.
    assert 24.0 <= moved["chamfer_object_cm"] <= 40.0
    assert moved["chamfer_human_cm"] == pytest.approx(exact["chamfer_human_cm"], abs=1e-9)


def test_the_aligned_protocol_forgives_a_common_shift_and_the_camera_frame_does_not():
    _, (shifted,) = score_reconstruction([placed(shift=(0.3, 0.0, 0.0), body_shift=(0.3, 0.0, 0.0))], truth())
    _, (exact,) = score_reconstruction([placed()], truth())
    assert shifted["chamfer_human_aligned_cm"] == pytest.approx(exact["chamfer_human_aligned_cm"], abs=0.2)
    assert shifted["chamfer_object_aligned_cm"] == pytest.approx(exact["chamfer_object_aligned_cm"], abs=0.2)
    assert shifted["chamfer_human_cm"] > 20.0 and shifted["chamfer_object_cm"] > 30.0


def test_a_cup_inside_the_body_penetrates_by_its_depth():
    into = placed(shift=(-0.05, -0.1, 0.1))  # the cup straddles the body's side (x = 0.2 m)
    _, (sample,) = score_reconstruction([into], truth())
    assert sample["penetration_cm"] > 1.0


def test_depth_points_score_against_the_mesh_and_what_cannot_be_scored_says_why():
    points = trimesh.sample.sample_surface(trimesh.Trimesh(CUP + POSE[:3, 3], CUP_FACES), 3000, seed=1)[0]
    depth = Reconstruction(1, "cup", "box_body", BODY, BODY_FACES, points, None, "depth")
    _, (sample,) = score_reconstruction([depth], truth())
    assert sample["chamfer_object_cm"] < 1.0 and "penetration_cm" not in sample
    assert "chamfer_object_aligned_cm" not in sample  # no template vertices: only the camera-frame figure
    unposed = Reconstruction(1, "cup", placement="contact_fit", object_vertices=CUP, object_faces=CUP_FACES)
    unplaced = Reconstruction(1, "cup", "box_body", BODY, BODY_FACES)
    reasons = [s["not_scored"] for s in score_reconstruction([unposed, unplaced], truth())[1]]
    assert reasons == ["the person was not posed", "the object was not placed in the camera frame"]
    assert score_reconstruction([placed()], {})[1] == []  # no ground truth: nothing scored
    assert BEHAVE_REFERENCE["InteractVLM"] == {"chamfer_human_cm": 5.77, "chamfer_object_cm": 19.20, "f1": 0.379}


def test_the_ground_truths_template_placed_by_contact_gets_its_triangles_and_the_aligned_protocol():
    template = Reconstruction(1, "cup", "box_body", BODY, BODY_FACES, CUP + POSE[:3, 3], None, "contact_fit")
    _, (sample,) = score_reconstruction([template], truth())
    assert "chamfer_object_aligned_cm" in sample and sample["penetration_cm"] == 0.0
    assert sample["chamfer_object_cm"] < 1.0
