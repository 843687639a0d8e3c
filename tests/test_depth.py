"""Object point clouds from registered depth (geometry/depth.py), checked on synthetic RGB-D
rendered from known meshes by the project's own OpenGL rasteriser.

How a render becomes a depth camera: ``MeshFragments.depth`` is the view-frame z of the
surface hit at each pixel centre. The renderer (geometry/camera.py) puts pixel column c's
centre at the continuous coordinate u = c + 0.5 with u = S/2 * (1 - x_ndc) and
x_ndc = x_view / (z tan(fov/2)); the optical frame has x_opt = -x_view, y_opt = -y_view,
z_opt = z_view, so u = S/2 + f x_opt / z with f = S / (2 tan(fov/2)). In the ROS/OpenCV
convention (pixel c's centre at c) that is c = f x_opt / z + (S - 1) / 2: fx = fy = f and
cx = cy = (S - 1) / 2. ``test_render_intrinsics_convention`` checks this against
Camera.project, and the noiseless test shows that cx = S / 2 would be off by millimetres.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import trimesh

from interactvlm_ros.geometry.camera import Camera, look_at_view_transform
from interactvlm_ros.geometry.depth import (
    Intrinsics,
    back_project,
    check_registered,
    depth_to_metres,
    downsample,
    farthest_point_indices,
    largest_depth_cluster,
    object_points_from_depth,
)
from interactvlm_ros.render.gl import GLRasterizer

SIZE = 128
MM = 1e-3
VIEW_TO_OPTICAL = np.array([-1.0, -1.0, 1.0])


@pytest.fixture(scope="module")
def rasterizer():
    gl = GLRasterizer()
    yield gl
    gl.release()


def intrinsics_of(camera: Camera) -> Intrinsics:
    f = camera.image_size / (2.0 * camera.tan_half_fov)
    c = (camera.image_size - 1) / 2.0
    return Intrinsics(fx=f, fy=f, cx=c, cy=c, width=camera.image_size, height=camera.image_size)


def to_optical(camera: Camera, world_points: np.ndarray) -> np.ndarray:
    return camera.world_to_view(world_points) * VIEW_TO_OPTICAL


def tilted_camera() -> Camera:
    rotation, translation = look_at_view_transform(1.3, 20.0, 30.0)
    return Camera(rotation=rotation, translation=translation, image_size=SIZE)


def front_camera() -> Camera:
    """View frame = world frame: the camera at the origin looking along +Z."""
    return Camera(rotation=np.eye(3), translation=np.zeros(3), image_size=SIZE)


def box_mesh(centre=(0.1, 0.0, 0.05)) -> trimesh.Trimesh:
    mesh = trimesh.creation.box(extents=(0.30, 0.20, 0.25))
    mesh.apply_transform(trimesh.transformations.euler_matrix(0.3, 0.5, 0.2))
    mesh.apply_translation(centre)
    return mesh


def sphere_mesh(centre=(-0.1, 0.05, 0.0), radius=0.15) -> trimesh.Trimesh:
    mesh = trimesh.creation.icosphere(subdivisions=3, radius=radius)
    mesh.apply_translation(centre)
    return mesh


def render(rasterizer, mesh: trimesh.Trimesh, camera: Camera):
    _, fragments = rasterizer.rasterize_mesh(np.asarray(mesh.vertices), np.asarray(mesh.faces), camera)
    return fragments


def mask_box(mask: np.ndarray, pad: float = 1.0) -> tuple[float, float, float, float]:
    """The detector-style box (image spans [0, S]) around a pixel mask, scaled by ``pad``."""
    rows, cols = np.nonzero(mask)
    x0, x1, y0, y1 = cols.min(), cols.max() + 1.0, rows.min(), rows.max() + 1.0
    cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2 * pad, (y1 - y0) / 2 * pad
    return (cx - hw, cy - hh, cx + hw, cy + hh)


def point_triangle_distance(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(P,) distance from each point to the nearest of (F, 3, 3) triangles (Ericson's
    closest-point-on-triangle, vectorised; trimesh's proximity query needs rtree)."""
    best = np.full(len(points), np.inf)
    a, b, c = (triangles[None, :, i, :] for i in range(3))
    ab, ac = b - a, c - a
    for start in range(0, len(points), 128):
        p = points[start:start + 128, None, :]
        ap, bp, cp = p - a, p - b, p - c
        d1, d2 = (ab * ap).sum(-1), (ac * ap).sum(-1)
        d3, d4 = (ab * bp).sum(-1), (ac * bp).sum(-1)
        d5, d6 = (ab * cp).sum(-1), (ac * cp).sum(-1)
        va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
        with np.errstate(divide="ignore", invalid="ignore"):
            denom = va + vb + vc
            closest = a + ab * (vb / denom)[..., None] + ac * (vc / denom)[..., None]  # inside
            regions = [  # lowest priority first, as Ericson tests them in reverse
                ((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0),
                 b + (c - b) * ((d4 - d3) / ((d4 - d3) + (d5 - d6)))[..., None]),
                ((vb <= 0) & (d2 >= 0) & (d6 <= 0), a + ac * (d2 / (d2 - d6))[..., None]),
                ((d6 >= 0) & (d5 <= d6), np.broadcast_to(c, closest.shape)),
                ((vc <= 0) & (d1 >= 0) & (d3 <= 0), a + ab * (d1 / (d1 - d3))[..., None]),
                ((d3 >= 0) & (d4 <= d3), np.broadcast_to(b, closest.shape)),
                ((d1 <= 0) & (d2 <= 0), np.broadcast_to(a, closest.shape)),
            ]
        for region, point in regions:
            closest = np.where(region[..., None], point, closest)
        best[start:start + 128] = np.linalg.norm(closest - p, axis=-1).min(axis=1)
    return best


def distance_to_mesh(mesh: trimesh.Trimesh, camera: Camera, points: np.ndarray) -> np.ndarray:
    """(P,) distance (metres) from optical-frame points to the mesh seen by ``camera``."""
    triangles = to_optical(camera, mesh.vertices)[np.asarray(mesh.faces)]
    return point_triangle_distance(np.asarray(points, np.float64), triangles)


def test_point_triangle_distance_oracle():
    triangle = np.array([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    points = np.array([[0.2, 0.2, 0.5], [-1.0, -1.0, 0.0], [2.0, 0.0, 0.0], [0.0, 3.0, 1.0],
                       [0.5, -2.0, 0.0], [1.0, 1.0, 0.0], [-3.0, 0.5, 0.0]])
    expected = [0.5, math.sqrt(2), 1.0, math.sqrt(5), 2.0, math.sqrt(0.5), 3.0]
    np.testing.assert_allclose(point_triangle_distance(points, triangle), expected, atol=1e-12)
    sphere = sphere_mesh(centre=(0.0, 0.0, 0.0), radius=1.0)
    far = np.random.default_rng(0).normal(size=(20, 3))
    far *= (3.0 / np.linalg.norm(far, axis=1))[:, None]
    distance = point_triangle_distance(far, np.asarray(sphere.vertices)[np.asarray(sphere.faces)])
    assert np.all((distance > 2.0 - 1e-9) & (distance < 2.0 + 0.02))  # faceted unit sphere


def hit_points(mesh: trimesh.Trimesh, camera: Camera, fragments) -> np.ndarray:
    """Exact optical-frame surface points under each hit pixel (row-major), from barycentrics."""
    hit = fragments.mask
    corners = np.asarray(mesh.vertices)[np.asarray(mesh.faces)[fragments.face_ids[hit]]]
    world = np.einsum("nk,nkj->nj", fragments.barycentric[hit].astype(np.float64), corners)
    return to_optical(camera, world)


# ---------------------------------------------------------------------------------------------
# (a) noiseless depth of known meshes


def test_render_intrinsics_convention():
    camera = tilted_camera()
    intrinsics = intrinsics_of(camera)
    world = np.random.default_rng(1).uniform(-0.3, 0.3, size=(50, 3))
    uv, _ = camera.project(world)  # pixel centres at half-integers
    optical = to_optical(camera, world)
    u = intrinsics.fx * optical[:, 0] / optical[:, 2] + intrinsics.cx
    v = intrinsics.fy * optical[:, 1] / optical[:, 2] + intrinsics.cy
    np.testing.assert_allclose(np.stack([u, v], axis=1), uv - 0.5, atol=1e-9)


@pytest.mark.parametrize("make_mesh", [box_mesh, sphere_mesh], ids=["box", "sphere"])
def test_back_projection_lies_on_the_mesh(rasterizer, make_mesh):
    camera = tilted_camera()
    mesh = make_mesh()
    fragments = render(rasterizer, mesh, camera)
    assert fragments.mask.sum() > 300
    depth = depth_to_metres(fragments.depth, "32FC1")  # background +inf -> NaN
    assert np.isnan(depth[~fragments.mask]).all()
    intrinsics = intrinsics_of(camera)
    points = back_project(depth, intrinsics, box=mask_box(fragments.mask))
    assert points.dtype == np.float32 and points.shape == (fragments.mask.sum(), 3)
    assert distance_to_mesh(mesh, camera, points).max() < MM
    # Pixel by pixel: the very surface point the renderer hit at the pixel centre.
    np.testing.assert_allclose(points, hit_points(mesh, camera, fragments), atol=0.2 * MM)
    # The test can tell a half-pixel error in the principal point apart.
    shifted = Intrinsics(intrinsics.fx, intrinsics.fy, SIZE / 2.0, SIZE / 2.0, SIZE, SIZE)
    wrong = back_project(depth, shifted, box=mask_box(fragments.mask))
    assert np.abs(wrong - hit_points(mesh, camera, fragments)).max() > 2 * MM


def test_back_projection_with_a_mask(rasterizer):
    camera = tilted_camera()
    box, sphere = box_mesh(), sphere_mesh()
    both = trimesh.util.concatenate([box, sphere])
    fragments = render(rasterizer, both, camera)
    on_sphere = fragments.face_ids >= len(box.faces)
    depth = depth_to_metres(fragments.depth, "32FC1")
    points = back_project(depth, intrinsics_of(camera), box=None, mask=on_sphere)
    assert points.shape == (on_sphere.sum(), 3)
    assert distance_to_mesh(sphere, camera, points).max() < MM


# ---------------------------------------------------------------------------------------------
# (b) background rejection


def wall(z: float) -> trimesh.Trimesh:
    """A 6 m x 6 m plane facing the camera at view depth z (front_camera: view = world)."""
    return trimesh.Trimesh([[-3, -3, z], [3, -3, z], [3, 3, z], [-3, 3, z]], [[0, 1, 2], [0, 2, 3]])


@pytest.mark.parametrize("pad", [1.0, 1.6], ids=["tight-box", "loose-box"])
@pytest.mark.parametrize("shape", ["sphere", "box"])
def test_wall_behind_the_object_is_rejected(rasterizer, shape, pad):
    camera = front_camera()
    if shape == "sphere":
        obj = sphere_mesh(centre=(0.08, -0.05, 1.0))
    else:
        obj = trimesh.creation.box(extents=(0.25, 0.3, 0.2))
        obj.apply_transform(trimesh.transformations.euler_matrix(0.2, 0.6, 0.1))
        obj.apply_translation((0.05, -0.05, 1.0))
    scene = trimesh.util.concatenate([obj, wall(2.0)])  # the wall 1 m behind the object's centre
    fragments = render(rasterizer, scene, camera)
    on_object = fragments.face_ids >= 0
    on_object &= fragments.face_ids < len(obj.faces)
    box = mask_box(on_object, pad)
    depth = depth_to_metres(fragments.depth, "32FC1")
    intrinsics = intrinsics_of(camera)

    points = back_project(depth, intrinsics, box=box)
    object_points = back_project(depth, intrinsics, box=box, mask=on_object)
    wall_share = 1.0 - len(object_points) / len(points)
    assert wall_share > (0.5 if pad > 1 else 0.05)  # the loose box is mostly wall

    keep = largest_depth_cluster(points, gap=0.05)
    kept = points[keep]
    assert distance_to_mesh(obj, camera, kept).max() < MM
    assert keep.sum() >= 0.95 * len(object_points)

    cloud = object_points_from_depth(depth, intrinsics, box, count=512)
    assert cloud.shape == (512, 3) and cloud.dtype == np.float32
    assert distance_to_mesh(obj, camera, cloud).max() < MM


def test_too_few_valid_points_gives_none(rasterizer):
    camera = front_camera()
    fragments = render(rasterizer, sphere_mesh(centre=(0.0, 0.0, 1.0)), camera)
    depth = depth_to_metres(fragments.depth, "32FC1")
    intrinsics = intrinsics_of(camera)
    assert object_points_from_depth(depth, intrinsics, (0, 0, 10, 10)) is None  # background only
    few = np.zeros_like(fragments.mask)
    few[np.nonzero(fragments.mask)[0][:20], np.nonzero(fragments.mask)[1][:20]] = True
    assert object_points_from_depth(depth, intrinsics, None, mask=few, min_points=50) is None
    assert object_points_from_depth(depth, intrinsics, None, mask=few, min_points=10, count=64).shape == (64, 3)


def test_cluster_rule_prefers_the_nearest_large_cluster():
    rng = np.random.default_rng(0)

    def slab(z, n):
        return np.column_stack([rng.uniform(-1, 1, n), rng.uniform(-1, 1, n), z + rng.uniform(-0.01, 0.01, n)])

    flying, obj, background = slab(0.5, 5), slab(1.0, 30), slab(2.0, 65)
    points = np.concatenate([background, obj, flying])
    keep = largest_depth_cluster(points, gap=0.05)
    np.testing.assert_array_equal(keep, np.r_[np.zeros(65, bool), np.ones(30, bool), np.zeros(5, bool)])
    # The object below min_fraction: the largest cluster (the background) wins.
    keep = largest_depth_cluster(points, gap=0.05, min_fraction=0.5)
    assert keep[:65].all() and not keep[65:].any()
    # No cluster reaches min_fraction: the largest, the nearest of equals.
    four = np.concatenate([slab(1.0, 24), slab(2.0, 28), slab(3.0, 24), slab(4.0, 24)])
    assert np.array_equal(np.nonzero(largest_depth_cluster(four))[0], np.arange(24, 52))
    tie = np.concatenate([slab(3.0, 10), slab(1.0, 10), slab(2.0, 10)])
    assert np.array_equal(np.nonzero(largest_depth_cluster(tie, min_fraction=0.9))[0], np.arange(10, 20))
    # A jump of exactly gap does not split; one just above it does.
    z = np.array([0.5, 0.75, 1.0])
    line = np.column_stack([np.zeros(3), np.zeros(3), z])
    assert largest_depth_cluster(line, gap=0.25).all()
    assert largest_depth_cluster(line, gap=0.2).sum() == 1
    assert largest_depth_cluster(np.zeros((0, 3))).shape == (0,)
    with pytest.raises(ValueError):
        largest_depth_cluster(line, gap=0.0)
    with pytest.raises(ValueError):
        largest_depth_cluster(line, min_fraction=1.5)
    with pytest.raises(ValueError):
        largest_depth_cluster(np.array([[0.0, 0.0, np.nan]]))


# ---------------------------------------------------------------------------------------------
# (c) encodings and invalid depth


def test_invalid_depth_is_ignored():
    depth = np.full((4, 5), 1.5, np.float32)
    depth[0, 0], depth[0, 1], depth[1, 2], depth[2, 3], depth[3, 4], depth[3, 0] = (
        0.0, np.nan, np.inf, -np.inf, -0.5, -0.0)
    metres = depth_to_metres(depth, "32FC1")
    assert metres.dtype == np.float32 and np.isnan(metres).sum() == 6
    assert np.all(metres[np.isfinite(metres)] == np.float32(1.5))
    intrinsics = Intrinsics(fx=4.0, fy=4.0, cx=2.0, cy=1.5, width=5, height=4)
    assert back_project(metres, intrinsics).shape == (14, 3)
    # back_project also skips non-positive and non-finite values it is given directly.
    assert back_project(depth, intrinsics).shape == (14, 3)
    # depth_to_metres does not modify its input.
    assert depth[0, 0] == 0.0 and np.isinf(depth[1, 2])


def test_millimetres_convert_exactly():
    mm = np.array([[0, 1, 999, 1000], [1234, 4095, 65535, 0]], np.uint16)
    metres = depth_to_metres(mm, "16UC1")
    assert metres.dtype == np.float32 and metres.shape == (2, 4)
    assert np.isnan(metres[0, 0]) and np.isnan(metres[1, 3])
    for value, got in zip(mm.ravel(), metres.ravel()):
        if value:
            assert got == np.float32(value / 1000.0), (value, got)
    assert metres[1, 0] == np.float32(1.234)
    # Big-endian data (Image.is_bigendian) read with its byte order gives the same values.
    assert np.array_equal(depth_to_metres(mm.astype(">u2"), "16UC1"), metres, equal_nan=True)
    intrinsics = Intrinsics(fx=2.0, fy=2.0, cx=1.5, cy=0.5, width=4, height=2)
    points = back_project(metres, intrinsics)
    assert points.shape == (6, 3)
    np.testing.assert_array_equal(points[:, 2], metres[mm > 0])


def test_depth_encoding_errors():
    with pytest.raises(ValueError, match="encoding"):
        depth_to_metres(np.zeros((2, 2), np.uint16), "mono16")
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        depth_to_metres(np.zeros((2, 2, 1), np.float32), "32FC1")
    with pytest.raises(ValueError, match="integers"):
        depth_to_metres(np.zeros((2, 2), np.float32), "16UC1")
    with pytest.raises(ValueError, match="floats"):
        depth_to_metres(np.zeros((2, 2), np.uint16), "32FC1")


# ---------------------------------------------------------------------------------------------
# (d) sizes, boxes and downsampling


def test_registered_size_mismatch_raises():
    check_registered((480, 640), (480, 640, 3))
    with pytest.raises(ValueError, match=r"640x480.*1280x720"):
        check_registered((480, 640), (720, 1280, 3))
    intrinsics = Intrinsics(fx=500.0, fy=500.0, cx=319.5, cy=239.5, width=640, height=480)
    with pytest.raises(ValueError, match="intrinsics"):
        back_project(np.ones((480, 639), np.float32), intrinsics)
    with pytest.raises(ValueError, match="mask"):
        back_project(np.ones((480, 640), np.float32), intrinsics, mask=np.ones((480, 639), bool))
    with pytest.raises(ValueError):
        back_project(np.ones((480, 640, 1), np.float32), intrinsics)


def test_box_selects_pixels_by_their_centres():
    depth = np.ones((6, 8), np.float32)
    intrinsics = Intrinsics(fx=1.0, fy=1.0, cx=0.0, cy=0.0, width=8, height=6)

    def pixels(box):
        points = back_project(depth, intrinsics, box=box)
        return sorted({(int(round(p[0])), int(round(p[1]))) for p in points})  # z = 1: (u, v)

    assert len(pixels((0, 0, 8, 6))) == 48 and len(pixels(None)) == 48
    assert pixels((2, 3, 4, 5)) == [(2, 3), (2, 4), (3, 3), (3, 4)]
    # x: centre 2.5 < 2.6 is outside, 4.5 <= 4.5 inside (closed box); y: centre 4.5 > 4.4 outside
    assert pixels((2.6, 3, 4.5, 4.4)) == [(3, 3), (4, 3)]
    assert len(pixels((-10, -10, 2, 100))) == 12  # clipped to the image
    assert pixels((20, 0, 30, 6)) == [] and pixels((3.1, 3.1, 3.4, 3.4)) == []
    for bad in [(0, 0, np.nan, 6), (5, 0, 2, 6)]:
        with pytest.raises(ValueError, match="box"):
            back_project(depth, intrinsics, box=bad)


def test_back_projection_formula():
    depth = np.array([[2.0, 4.0]], np.float32)
    intrinsics = Intrinsics(fx=2.0, fy=4.0, cx=0.5, cy=1.0, width=2, height=1)
    points = back_project(depth, intrinsics)
    expected = [[(0 - 0.5) * 2 / 2, (0 - 1) * 2 / 4, 2], [(1 - 0.5) * 4 / 2, (0 - 1) * 4 / 4, 4]]
    np.testing.assert_allclose(points, expected)


def test_downsample_counts_and_determinism():
    rng = np.random.default_rng(3)
    cloud = rng.normal(size=(3000, 3))
    for count in (1, 100, 2999, 3000, 4000):
        out = downsample(cloud, count=count, seed=5)
        assert out.shape == (count, 3) and out.dtype == np.float32
        np.testing.assert_array_equal(out, downsample(cloud, count=count, seed=5))
    # N < count: every point once, then seeded draws with replacement.
    small = cloud[:10]
    out = downsample(small, count=25, seed=1)
    np.testing.assert_array_equal(out[:10], small.astype(np.float32))
    assert {tuple(p) for p in out} == {tuple(p) for p in small.astype(np.float32)}
    assert not np.array_equal(out, downsample(small, count=25, seed=2))
    # N > count: distinct input points; the candidate cap is seeded and deterministic.
    out = downsample(cloud, count=100)
    assert len({tuple(p) for p in out}) == 100
    capped = downsample(cloud, count=100, seed=7, max_candidates=500)
    np.testing.assert_array_equal(capped, downsample(cloud, count=100, seed=7, max_candidates=500))
    assert not np.array_equal(capped, downsample(cloud, count=100, seed=8, max_candidates=500))
    with pytest.raises(ValueError, match="empty"):
        downsample(np.zeros((0, 3)), count=10)
    with pytest.raises(ValueError):
        downsample(cloud, count=0)
    with pytest.raises(ValueError):
        downsample(cloud, count=100, max_candidates=50)
    with pytest.raises(ValueError):
        downsample(np.zeros((5, 2)), count=3)


def min_pairwise_distance(points: np.ndarray) -> float:
    d = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=-1)
    return float(d[np.triu_indices(len(points), 1)].min())


def test_farthest_point_sampling_spreads_points():
    g = np.linspace(0.0, 1.0, 80)
    grid = np.stack(np.meshgrid(g, g, indexing="ij"), axis=-1).reshape(-1, 2)
    grid = np.column_stack([grid, np.full(len(grid), 1.0)])
    count = 64
    fps = downsample(grid, count=count)
    rng = np.random.default_rng(0)
    random_min = max(min_pairwise_distance(grid[rng.choice(len(grid), count, replace=False)]) for _ in range(5))
    fps_min = min_pairwise_distance(fps)
    assert fps_min > 3 * random_min
    # For 64 points on a unit square, a perfect 8 x 8 lattice has spacing 1/7; FPS is within 2x.
    assert fps_min > 0.5 / 7
    # Starts at the point nearest the centroid; indices are distinct.
    indices = farthest_point_indices(grid, count)
    assert len(set(indices.tolist())) == count
    to_centroid = np.linalg.norm(grid - grid.mean(axis=0), axis=1)
    assert to_centroid[indices[0]] == pytest.approx(to_centroid.min(), abs=1e-6)


# ---------------------------------------------------------------------------------------------
# (e) CameraInfo K


def test_from_camera_info_is_row_major():
    k = [500.0, 0.0, 320.5, 0.0, 510.0, 240.25, 0.0, 0.0, 1.0]
    intrinsics = Intrinsics.from_camera_info(k, 640, 480)
    assert (intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy) == (500.0, 510.0, 320.5, 240.25)
    assert (intrinsics.width, intrinsics.height) == (640, 480)
    np.testing.assert_array_equal(intrinsics.matrix, np.reshape(k, (3, 3)))
    assert Intrinsics.from_camera_info(np.array(k), 640, 480) == intrinsics


@pytest.mark.parametrize(
    "k, width, height, match",
    [
        ([500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0], 640, 480, "9 elements"),
        ([0.0] * 9, 640, 480, "uncalibrated"),
        ([-500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0], 640, 480, "focal"),
        ([500.0, 0.0, 320.0, 0.0, 0.0, 240.0, 0.0, 0.0, 1.0], 640, 480, "focal"),
        ([500.0, 3.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0], 640, 480, "pinhole"),
        ([500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 0.0], 640, 480, "pinhole"),
        ([500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 320.0, 240.0, 1.0], 640, 480, "pinhole"),  # column-major K
        ([500.0, 0.0, np.nan, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0], 640, 480, "non-finite"),
        ([500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0], 0, 480, "width"),
        ([500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0], 640, -1, "height"),
    ],
)
def test_from_camera_info_rejects_bad_k(k, width, height, match):
    with pytest.raises(ValueError, match=match):
        Intrinsics.from_camera_info(k, width, height)


def test_intrinsics_constructor_validates():
    with pytest.raises(ValueError, match="fx"):
        Intrinsics(fx=0.0, fy=1.0, cx=0.0, cy=0.0, width=1, height=1)
    with pytest.raises(ValueError, match="cy"):
        Intrinsics(fx=1.0, fy=1.0, cx=0.0, cy=math.inf, width=1, height=1)
    with pytest.raises(ValueError, match="width"):
        Intrinsics(fx=1.0, fy=1.0, cx=0.0, cy=0.0, width=2.5, height=1)
