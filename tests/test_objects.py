"""Object meshes: loading, InteractVLM's normalisation and its inverse, the class map, proxies."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from interactvlm_ros.geometry.objects import (
    DEFAULT_PROXIES,
    PROXY_SHAPES,
    ObjectGeometry,
    ObjectLibrary,
    load_mesh,
    normalize_points,
    proxy_mesh,
)


def _box_file(tmp_path, name="box.ply", extents=(0.2, 0.1, 0.4), offset=(1.0, 2.0, 3.0)):
    box = trimesh.creation.box(extents=extents)
    box.apply_translation(offset)
    path = tmp_path / name
    box.export(path)
    return path


@pytest.mark.parametrize("suffix", [".obj", ".ply", ".stl", ".glb"])
def test_mesh_formats_load_with_their_coordinates(tmp_path, suffix):
    path = _box_file(tmp_path, "box" + suffix)
    mesh = load_mesh(path)
    assert mesh.num_faces == 12
    np.testing.assert_allclose(mesh.vertices.min(axis=0), [0.9, 1.95, 2.8], atol=1e-6)
    np.testing.assert_allclose(mesh.vertices.max(axis=0), [1.1, 2.05, 3.2], atol=1e-6)


def test_normalisation_and_its_inverse(tmp_path):
    # An asymmetric mesh: a box plus a far vertex-heavy lump, so mean != bbox centre.
    box = trimesh.creation.box(extents=(0.2, 0.1, 0.4))
    lump = trimesh.creation.icosphere(subdivisions=3, radius=0.02)
    lump.apply_translation([0.1, 0.0, 0.2])
    scene = trimesh.util.concatenate([box, lump])
    path = tmp_path / "asym.obj"
    scene.export(path)
    geometry = ObjectGeometry.from_mesh(load_mesh(path), "mesh:asym.obj")
    vertices = geometry.mesh.vertices.astype(np.float64)
    np.testing.assert_allclose(geometry.centre, vertices.mean(axis=0), atol=1e-9)
    assert not np.allclose(geometry.centre, (vertices.min(0) + vertices.max(0)) / 2, atol=1e-3)
    assert geometry.scale == pytest.approx(0.42, abs=1e-6)  # z extent: 0.4 box + lump reaching 0.22
    normalized = geometry.normalized()
    np.testing.assert_allclose(normalized.vertices.mean(axis=0), 0, atol=1e-6)
    assert np.ptp(normalized.vertices, axis=0).max() == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(geometry.to_object_frame(normalized.vertices), geometry.mesh.vertices, atol=1e-6)
    np.testing.assert_array_equal(normalized.faces, geometry.mesh.faces)


def test_bad_mesh_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.obj"):
        load_mesh(tmp_path / "missing.obj")
    (tmp_path / "mesh.xyz").write_text("0 0 0\n")
    with pytest.raises(ValueError, match="unsupported mesh type"):
        load_mesh(tmp_path / "mesh.xyz")
    points_only = tmp_path / "points.ply"
    trimesh.PointCloud(np.random.default_rng(0).normal(size=(10, 3))).export(points_only)
    with pytest.raises(ValueError, match="no triangles"):
        load_mesh(points_only)


@pytest.mark.parametrize("shape", PROXY_SHAPES)
def test_proxies_are_closed_upright_and_sized(shape):
    mesh = proxy_mesh(shape, size=0.25)
    extent = np.ptp(mesh.vertices, axis=0)
    assert extent.max() == pytest.approx(0.25, rel=1e-6)
    assert np.argmax(extent) == 1 or shape == "sphere"  # long axis is +Y
    assert trimesh.Trimesh(mesh.vertices, mesh.faces).is_watertight
    assert mesh.num_vertices >= 100  # enough vertices to carry an affordance map
    assert mesh.name == f"proxy:{shape}"
    with pytest.raises(ValueError, match="unknown proxy shape"):
        proxy_mesh("torus")


def test_library_from_yaml(tmp_path):
    (tmp_path / "meshes").mkdir()
    _box_file(tmp_path / "meshes", "mug.obj")
    config = tmp_path / "objects.yaml"
    config.write_text("meshes:\n  cup: meshes/mug.obj\nproxies:\n  drill: [capsule, 0.3]\n")
    library = ObjectLibrary.from_yaml(config)
    cup = library.get("cup")
    assert cup.source == "mesh:meshes/mug.obj"  # relative to the map: no absolute robot paths in messages
    assert library.get("cup") is cup  # loaded once
    drill = library.get("drill")
    assert drill.source == "proxy:capsule" and drill.scale == pytest.approx(0.3)
    assert library.get("bottle").source == "proxy:cylinder"  # default proxies
    assert library.get("giraffe") is None
    assert {"cup", "drill", "bottle"} <= set(library.classes)
    without_defaults = ObjectLibrary({}, use_default_proxies=False)
    assert without_defaults.get("bottle") is None and without_defaults.classes == []


def test_bad_library_configs(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.yaml"):
        ObjectLibrary.from_yaml(tmp_path / "nothing.yaml")
    config = tmp_path / "objects.yaml"
    config.write_text("meshes:\n  cup: meshes/absent.obj\n")
    with pytest.raises(FileNotFoundError, match="absent.obj"):
        ObjectLibrary.from_yaml(config)
    config.write_text("mesh:\n  cup: mug.obj\n")
    with pytest.raises(ValueError, match="expected keys"):
        ObjectLibrary.from_yaml(config)
    with pytest.raises(ValueError, match="proxy must be"):
        ObjectLibrary({}, {"drill": ["cone", 0.3]})
    config.write_text("meshes:\n  cup: [unclosed\n")
    with pytest.raises(ValueError, match=r"objects.yaml: not valid YAML \(.*line 2"):
        ObjectLibrary.from_yaml(config)
    config.write_text("meshes: [a, b]\n")
    with pytest.raises(ValueError, match="must map class names"):
        ObjectLibrary.from_yaml(config)
    # A corrupt mesh is reported when the library is built (configure), naming the file.
    (tmp_path / "corrupt.obj").write_bytes(b"v 0 0 0\nv \xff\xfe 1 2\nf 1 2 3\n" + bytes(range(256)))
    config.write_text("meshes:\n  cup: corrupt.obj\n")
    with pytest.raises(ValueError, match=r"corrupt.obj: (not a readable obj mesh|no triangles)"):
        ObjectLibrary.from_yaml(config)
    assert all(shape in PROXY_SHAPES and size > 0 for shape, size in DEFAULT_PROXIES.values())


def test_point_cloud_normalisation():
    points = np.array([[1.0, 1.0, 1.0], [3.0, 1.0, 1.0], [2.0, 1.0, 4.0]])
    normalized, centre, scale = normalize_points(points)
    np.testing.assert_allclose(centre, [2.0, 1.0, 2.0])
    assert scale == pytest.approx(2.0)  # the third point is 2 from the mean
    np.testing.assert_allclose(normalized, [[-0.5, 0, -0.5], [0.5, 0, -0.5], [0, 0, 1]], atol=1e-7)
    np.testing.assert_allclose(normalized * scale + centre, points, atol=1e-6)
    for bad, reason in ((np.zeros((0, 3)), "N >= 1"), (np.ones((4, 3)), "coincide"),
                        (np.array([[0, 0, np.inf]]), "non-finite")):
        with pytest.raises(ValueError, match=reason):
            normalize_points(bad)
