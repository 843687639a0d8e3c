"""Body parts on a posed body: each part's vertices and the centroid of its contact."""

from __future__ import annotations

import numpy as np
import pytest

from interactvlm_ros.geometry.body_parts import BODY_PARTS, part_contact_centroids, part_vertex_ids

VERTICES = np.array([[0.0, 0.0, 1.0], [0.2, 0.0, 1.0], [0.4, 0.6, 1.0], [1.0, 1.0, 3.0], [1.0, -1.0, 3.0]])
PARTS = {"right hand": np.array([0, 1, 2]), "left hand": np.array([3, 4])}


def test_part_vertex_ids_lists_every_part():
    ids = part_vertex_ids(np.array([2, 0, 2, 1]), ("a", "b", "c"))
    assert list(ids) == ["a", "b", "c"]
    assert [ids[k].tolist() for k in ("a", "b", "c")] == [[1], [3], [0, 2]]
    assert part_vertex_ids(np.zeros(0, np.int16))["right hand"].size == 0
    with pytest.raises(ValueError, match=r"part_labels must index part_names \(0..2\), got \[0, 3\]"):
        part_vertex_ids(np.array([0, 3]), ("a", "b", "c"))
    with pytest.raises(ValueError, match="1-D integer"):
        part_vertex_ids(np.array([0.5]))


def test_open_body_parts_cover_every_vertex_once():
    from interactvlm_ros.geometry.open_body import load_open_body

    body = load_open_body()
    ids = part_vertex_ids(body.part_labels, body.part_names)
    assert set(ids) == set(BODY_PARTS)
    assert sorted(np.concatenate(list(ids.values())).tolist()) == list(range(body.num_vertices))
    # the right hand is on the body's right (-X: +X is the body's left in the canonical pose)
    assert body.vertices[ids["right hand"], 0].mean() < -0.5


def test_centroid_of_each_parts_contact_vertices():
    p = np.array([0.9, 0.5, 0.49, 0.1, 0.2])
    centroids = part_contact_centroids(VERTICES, p, 0.5, ["right hand", "left hand", "chest", "right hand"], PARTS)
    assert centroids.shape == (4, 3) and centroids.dtype == np.float32
    np.testing.assert_allclose(centroids[0], [0.1, 0.0, 1.0], atol=1e-7)  # vertices 0 and 1; 2 is below 0.5
    np.testing.assert_array_equal(centroids[3], centroids[0])
    assert np.isnan(centroids[1]).all()  # no left-hand vertex reaches the threshold
    assert np.isnan(centroids[2]).all()  # a part without vertices in the mapping
    lower = part_contact_centroids(VERTICES, p, 0.15, ["right hand", "left hand"], PARTS)
    np.testing.assert_allclose(lower, [[0.2, 0.2, 1.0], [1.0, -1.0, 3.0]], atol=1e-6)
    # compared in float32 like HumanContact.contact_vertices: 0.49999997 (float32) is below 0.5
    edge = part_contact_centroids(VERTICES, np.float32([0.49999997, 0.5, 0, 0, 0]), 0.5, ["right hand"], PARTS)
    np.testing.assert_allclose(edge[0], VERTICES[1], atol=1e-7)
    assert part_contact_centroids(VERTICES, p, 0.5, [], PARTS).shape == (0, 3)


@pytest.mark.parametrize("vertices, probabilities, threshold, parts, reason", [
    (VERTICES[:, :2], np.zeros(5), 0.5, PARTS, r"vertices must have shape \(V, 3\)"),
    (np.full((5, 3), np.nan), np.zeros(5), 0.5, PARTS, "non-finite"),
    (VERTICES, np.zeros(4), 0.5, PARTS, "5 vertices but 4 probabilities"),
    (VERTICES, np.full(5, 1.2), 0.5, PARTS, r"probabilities must lie in \[0, 1\]"),
    (VERTICES, np.zeros(5), 1.5, PARTS, r"threshold must lie in \[0, 1\], got 1.5"),
    (VERTICES, np.zeros(5), 0.5, {"right hand": np.array([0, 5])}, r"part 'right hand': vertex ids must lie in \[0, 5\)"),
])
def test_centroids_refuse_bad_input(vertices, probabilities, threshold, parts, reason):
    with pytest.raises(ValueError, match=reason):
        part_contact_centroids(vertices, probabilities, threshold, ["right hand"], parts)
