"""SMPL-H / SMPL-X loading, posing and contact conversion on tiny synthetic model files.

No real SMPL files exist here. Each synthetic model has one small box (8 vertices) per joint,
centred on a made-up skeleton (+x = body's left, +y up) and bound rigidly to its joint, so
posing has exact answers: a box moves by its kinematic chain's rigid transform.
"""

from __future__ import annotations

import pickle
import pickletools
import sys
import types

import numpy as np
import pytest
import scipy.sparse as sp

from interactvlm_ros.geometry.body_parts import BODY_PARTS, part_of_smpl_joint
from interactvlm_ros.geometry.smpl import (
    NUM_JOINTS,
    body_mesh,
    canonical_pose,
    load_conversion_matrix,
    load_model_file,
    resolve_model_path,
    smplh_to_smplx,
)

BODY_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19]
BODY_JOINTS = [  # pelvis, hips, spine1, knees, spine2, ankles, spine3, feet, neck, collars, head,
    # shoulders, elbows, wrists (SMPL order)
    (0, 0, 0), (0.1, -0.1, 0), (-0.1, -0.1, 0), (0, 0.1, 0), (0.1, -0.5, 0), (-0.1, -0.5, 0),
    (0, 0.2, 0), (0.1, -0.9, 0), (-0.1, -0.9, 0), (0, 0.3, 0), (0.1, -0.95, 0.1), (-0.1, -0.95, 0.1),
    (0, 0.5, 0), (0.1, 0.45, 0), (-0.1, 0.45, 0), (0, 0.6, 0), (0.2, 0.45, 0), (-0.2, 0.45, 0),
    (0.45, 0.45, 0), (-0.45, 0.45, 0), (0.7, 0.45, 0), (-0.7, 0.45, 0),
]
HALF = 0.01  # box half size, metres


def _skeleton(model_type):
    """(J, 3) joint positions and (J,) parents of a made-up SMPL-H / SMPL-X skeleton."""
    joints, parents = list(BODY_JOINTS), list(BODY_PARENTS)
    if model_type == "smplx":  # jaw, left eye, right eye, all children of the head
        joints += [(0, 0.55, 0.05), (0.03, 0.62, 0.08), (-0.03, 0.62, 0.08)]
        parents += [15, 15, 15]
    for side, wrist in ((1, 20), (-1, 21)):  # 15 left-hand then 15 right-hand joints
        for finger in range(5):
            for k in range(3):
                parents.append(wrist if k == 0 else len(joints) - 1)
                joints.append((side * (0.75 + 0.03 * k), 0.45, -0.04 + 0.02 * finger))
    return np.array(joints), np.array(parents)


def _arrays(model_type, posedirs=None):
    """The model file contents (real key layout) for one box per joint."""
    joints, parents = _skeleton(model_type)
    num_joints = len(joints)
    corners = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)]) * HALF
    box_faces = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                          [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
    v_template = (joints[:, None, :] + corners[None]).reshape(-1, 3)
    num_vertices = len(v_template)
    owner = np.repeat(np.arange(num_joints), 8)
    weights = np.zeros((num_vertices, num_joints))
    weights[np.arange(num_vertices), owner] = 1.0
    regressor = np.zeros((num_joints, num_vertices))
    regressor[owner, np.arange(num_vertices)] = 1.0 / 8  # joint = centre of its box
    kintree = np.stack([parents, np.arange(num_joints)]).astype(np.uint32)  # root parent 2**32-1
    rng = np.random.default_rng(0)
    return {
        "v_template": v_template,
        "f": (box_faces[None] + 8 * np.arange(num_joints)[:, None, None]).reshape(-1, 3).astype(np.uint32),
        "shapedirs": rng.normal(size=(num_vertices, 3, 10)) * 0.01,
        "posedirs": np.zeros((num_vertices, 3, (num_joints - 1) * 9)) if posedirs is None else posedirs,
        "J_regressor": regressor,
        "weights": weights,
        "kintree_table": kintree,
        "bs_style": "lbs",
    }


def _write_npz(path, arrays):
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return path


def _write_chumpy_pickle(path, arrays, monkeypatch, protocol=2, sparse=sp.csc_matrix, renames=()):
    """An original-style pickle: Ch objects for some arrays, sparse J_regressor, protocol 2.

    A fake ``chumpy`` / ``chumpy.ch`` is registered only while pickling, so loading must
    work without any chumpy module. ``renames``: (old, new) module paths replaced in the
    pickle's GLOBAL opcodes (``module\nname\n``), e.g. to name old scipy / numpy modules."""
    chumpy, chumpy_ch = types.ModuleType("chumpy"), types.ModuleType("chumpy.ch")

    class Ch:
        pass

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    chumpy_ch.Ch = chumpy.Ch = Ch
    chumpy.ch = chumpy_ch

    def ch(value):
        obj = Ch()
        obj.__dict__.update({"x": value, "_dirty_vars": set(), "_itr": None})
        return obj

    data = dict(arrays)
    for key in ("v_template", "shapedirs", "weights"):
        data[key] = ch(arrays[key])
    data["J_regressor"] = sparse(arrays["J_regressor"])
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "chumpy", chumpy)
        patch.setitem(sys.modules, "chumpy.ch", chumpy_ch)
        payload = pickle.dumps(data, protocol=protocol)
    assert b"chumpy.ch" in payload and "chumpy" not in sys.modules
    for old, new in renames:
        assert f"c{old}\n".encode() in payload, old
        payload = payload.replace(f"c{old}\n".encode(), f"c{new}\n".encode())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(payload)
    return path


def _rot_z(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _box(joint):
    return slice(8 * joint, 8 * joint + 8)


# ---------------------------------------------------------------- loading


@pytest.mark.parametrize("model_type", ["smplh", "smplx"])
def test_chumpy_pickle_and_npz_load_to_identical_arrays(tmp_path, monkeypatch, model_type):
    arrays = _arrays(model_type)
    from_pkl = load_model_file(_write_chumpy_pickle(tmp_path / "m.pkl", arrays, monkeypatch))
    from_npz = load_model_file(_write_npz(tmp_path / "m.npz", arrays))
    assert "chumpy" not in sys.modules
    assert sp.issparse(from_pkl["J_regressor"])
    assert set(from_pkl) == set(from_npz) == set(arrays)
    for key, value in from_npz.items():
        pkl_value = from_pkl[key].toarray() if sp.issparse(from_pkl[key]) else from_pkl[key]
        assert pkl_value.dtype == value.dtype, key
        np.testing.assert_array_equal(pkl_value, value, err_msg=key)
    assert from_npz["v_template"].dtype == np.float32  # float64 in the file
    assert from_npz["kintree_table"].dtype == np.uint32
    np.testing.assert_array_equal(from_npz["v_template"], arrays["v_template"].astype(np.float32))


def test_pickle_naming_other_globals_is_refused(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"v_template": types.SimpleNamespace()}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="types.SimpleNamespace"):
        load_model_file(path)


@pytest.mark.parametrize("protocol", [0, 2])  # 0: copy_reg / __builtin__ names (Python 2)
@pytest.mark.parametrize("sparse, module", [
    (sp.csc_matrix, "scipy.sparse.csc"), (sp.csc_matrix, "scipy.sparse._csc"),  # scipy < / >= 1.8
    (sp.csr_matrix, "scipy.sparse.csr"), (sp.csr_matrix, "scipy.sparse._csr"),
])
@pytest.mark.parametrize("numpy_module", ["numpy.core.multiarray", "numpy._core.multiarray"])
def test_pickle_with_real_model_file_globals_loads(tmp_path, monkeypatch, protocol, sparse, module,
                                                  numpy_module):
    """The globals real SMPL-family pickles name, under old and new scipy / numpy module paths."""
    arrays = _arrays("smplh")
    renames = [(sparse.__module__, module), (np.zeros(1).__reduce__()[0].__module__, numpy_module)]
    path = _write_chumpy_pickle(tmp_path / "m.pkl", arrays, monkeypatch, protocol, sparse, renames)
    if protocol == 0:
        assert b"ccopy_reg\n_reconstructor\n" in path.read_bytes()
    loaded = load_model_file(path)
    assert sp.issparse(loaded["J_regressor"])
    np.testing.assert_array_equal(loaded["J_regressor"].toarray(), arrays["J_regressor"].astype(np.float32))
    np.testing.assert_array_equal(loaded["v_template"], arrays["v_template"].astype(np.float32))


def _calling(module, name, *args):
    """A protocol-2 pickle of {'v_template': module.name(*args)} (just the global when no args)."""
    call = f"c{module}\n{name}\n".encode()
    if args:
        call += pickletools.optimize(pickle.dumps(args, protocol=2))[2:-1] + pickle.REDUCE
    return b"\x80\x02}" + pickletools.optimize(pickle.dumps("v_template", protocol=2))[2:-1] + call + b"s."


@pytest.mark.parametrize("loader", [load_model_file, load_conversion_matrix])
@pytest.mark.parametrize("module, name, call", [
    ("scipy.sparse", "save_npz", True),
    ("scipy.sparse", "load_npz", True),
    ("scipy.sparse", "test", False),  # calling it would run scipy's test suite
    ("os", "system", True),
    ("builtins", "eval", True),
    ("numpy", "save", True),
    ("numpy.lib.npyio", "save", True),
    ("numpy", "load", True),
    ("subprocess", "Popen", True),
    ("scipy.sparse", "csc_matrix", False),  # real classes under paths no pickle names
    ("scipy.sparse._csr", "csc_matrix", False),
    ("scipy.sparse._coo", "coo_matrix", False),
    ("numpy.testing", "ndarray", False),
])
def test_pickle_naming_a_refused_global_writes_nothing(tmp_path, loader, module, name, call):
    target = tmp_path / "written"
    existing = tmp_path / "existing.npz"
    sp.save_npz(existing, sp.csc_matrix(np.eye(2)))
    args = {
        "save_npz": (str(target), sp.csc_matrix(np.eye(2))), "load_npz": (str(existing),),
        "system": (f"touch {target}",), "eval": (f"open({str(target)!r}, 'w').close()",),
        "save": (str(target), np.zeros(2)), "load": (str(existing),),
        "Popen": (["touch", str(target)],),
    }[name] if call else ()
    path = tmp_path / "evil.pkl"
    path.write_bytes(_calling(module, name, *args))
    before = sorted(tmp_path.iterdir())
    with pytest.raises(pickle.UnpicklingError) as error:
        loader(path)
    assert f"global {module}.{name}" in str(error.value) and str(path) in str(error.value)
    assert sorted(tmp_path.iterdir()) == before and not list(tmp_path.glob("written*"))


def test_missing_file_names_path_and_where_to_get_models(tmp_path):
    path = tmp_path / "SMPLH_NEUTRAL.pkl"
    with pytest.raises(FileNotFoundError) as error:
        load_model_file(path)
    message = str(error.value)
    assert str(path) in message and "mano.is.tue.mpg.de" in message and "smpl-x.is.tue.mpg.de" in message


@pytest.mark.parametrize(
    "layout",
    ["smplh/SMPLH_NEUTRAL.pkl", "smplh/SMPLH_NEUTRAL.npz", "SMPLH_NEUTRAL.npz", "SMPLH_neutral.pkl",
     "neutral/model.npz", "smplh/neutral/model.npz"],
)
def test_resolve_model_path_layouts(tmp_path, layout):
    target = tmp_path / layout
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"")
    assert resolve_model_path(tmp_path, "smplh") == target
    assert resolve_model_path(target, "smplh") == target  # a file is taken as it is


def test_resolve_model_path_prefers_npz_and_honours_gender(tmp_path):
    for name in ("smplx/SMPLX_NEUTRAL.pkl", "smplx/SMPLX_NEUTRAL.npz", "smplx/SMPLX_FEMALE.npz"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert resolve_model_path(tmp_path, "smplx") == tmp_path / "smplx/SMPLX_NEUTRAL.npz"
    assert resolve_model_path(tmp_path, "smplx", "female") == tmp_path / "smplx/SMPLX_FEMALE.npz"


def test_resolve_model_path_lists_every_path_tried(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        resolve_model_path(tmp_path, "smplx")
    message = str(error.value)
    for tried in ("smplx/SMPLX_NEUTRAL.npz", "smplx/SMPLX_NEUTRAL.pkl", "SMPLX_neutral.pkl",
                  "neutral/model.npz", "smplx/neutral/model.npz"):
        assert str(tmp_path / tried) in message
    assert "smpl-x.is.tue.mpg.de" in message


def test_bad_model_type_pose_and_gender(tmp_path):
    path = _write_npz(tmp_path / "m.npz", _arrays("smplh"))
    with pytest.raises(ValueError, match="smplh"):
        body_mesh("smpl", path)
    with pytest.raises(ValueError, match="vitruvian"):
        body_mesh("smplh", path, pose="a-pose")
    with pytest.raises(ValueError, match="gender"):
        resolve_model_path(tmp_path, "smplh", "other")


def test_missing_keys_are_listed(tmp_path):
    arrays = _arrays("smplh")
    del arrays["weights"], arrays["posedirs"]
    path = _write_npz(tmp_path / "m.npz", arrays)
    with pytest.raises(ValueError, match=r"lacks required keys \['weights', 'posedirs'\]") as error:
        body_mesh("smplh", path)
    assert str(path) in str(error.value)


def test_wrong_model_type_for_file_is_a_shape_error(tmp_path):
    path = _write_npz(tmp_path / "m.npz", _arrays("smplh"))  # 52 joints
    with pytest.raises(ValueError, match=r"weights has shape \(416, 52\), expected \(416, 55\)"):
        body_mesh("smplx", path)


# ---------------------------------------------------------------- posing


@pytest.mark.parametrize("model_type", ["smplh", "smplx"])
def test_zero_pose_is_the_template(tmp_path, model_type):
    arrays = _arrays(model_type)
    mesh = body_mesh(model_type, _write_npz(tmp_path / "m.npz", arrays), pose="zero")
    np.testing.assert_allclose(mesh.vertices, arrays["v_template"], rtol=0, atol=1e-7)
    np.testing.assert_array_equal(mesh.faces, arrays["f"].astype(np.int64))
    assert mesh.name == model_type and mesh.part_names == BODY_PARTS


@pytest.mark.parametrize("model_type", ["smplh", "smplx"])
def test_vitruvian_rotates_each_leg_about_its_hip(tmp_path, monkeypatch, model_type):
    arrays = _arrays(model_type)
    path = _write_chumpy_pickle(tmp_path / "m.pkl", arrays, monkeypatch)
    vertices = body_mesh(model_type, path).vertices
    template = arrays["v_template"]
    joints, _ = _skeleton(model_type)
    for hip, leg, angle in ((1, (1, 4, 7, 10), np.pi / 6), (2, (2, 5, 8, 11), -np.pi / 6)):
        for joint in leg:  # hip, knee, ankle, foot boxes: rigid rotation about the hip joint
            expected = (template[_box(joint)] - joints[hip]) @ _rot_z(angle).T + joints[hip]
            np.testing.assert_allclose(vertices[_box(joint)], expected, rtol=0, atol=1e-6)
    others = [j for j in range(NUM_JOINTS[model_type]) if j not in (1, 2, 4, 5, 7, 8, 10, 11)]
    for joint in others:  # pelvis, spine, arms, head, hands do not move
        np.testing.assert_allclose(vertices[_box(joint)], template[_box(joint)], rtol=0, atol=1e-7)
    # the legs spread apart: left ankle towards +x (the body's left), right ankle towards -x
    left_dx = vertices[_box(7)][:, 0].mean() - template[_box(7)][:, 0].mean()
    right_dx = vertices[_box(8)][:, 0].mean() - template[_box(8)][:, 0].mean()
    assert left_dx == pytest.approx(0.4, abs=1e-6) and right_dx == pytest.approx(-0.4, abs=1e-6)


def test_canonical_pose_values():
    pose = canonical_pose("smplx")
    assert pose.shape == (55, 3)
    expected = np.zeros((55, 3))
    expected[1, 2], expected[2, 2] = np.pi / 6, -np.pi / 6
    np.testing.assert_array_equal(pose, expected)
    assert not canonical_pose("smplh", "zero").any()


def test_pose_blend_shapes_use_smplx_layout(tmp_path):
    """posedirs[v, c, p] multiplies element p of the flattened (R_j - I), j >= 1."""
    arrays = _arrays("smplh")
    posedirs = np.zeros_like(arrays["posedirs"])
    vertex = 3  # a pelvis vertex: rigidly fixed, so only its pose offset shows
    posedirs[vertex, 0, 0] = 1.0  # x offset <- (R_1 - I)[0, 0] = cos 30 - 1
    posedirs[vertex, 1, 9 + 3] = 2.0  # y offset <- 2 (R_2 - I)[1, 0] = 2 sin(-30)
    arrays["posedirs"] = posedirs
    vertices = body_mesh("smplh", _write_npz(tmp_path / "m.npz", arrays)).vertices
    offset = vertices[vertex] - arrays["v_template"][vertex]
    np.testing.assert_allclose(offset, [np.cos(np.pi / 6) - 1, 2 * np.sin(-np.pi / 6), 0], atol=1e-6)


@pytest.mark.parametrize("model_type", ["smplh", "smplx"])
def test_part_labels_follow_the_dominant_joint(tmp_path, model_type):
    arrays = _arrays(model_type)
    arrays["weights"][0] = 0.0
    arrays["weights"][0, [0, 7]] = [0.3, 0.7]  # a pelvis-box vertex mostly bound to the left ankle
    mesh = body_mesh(model_type, _write_npz(tmp_path / "m.npz", arrays), pose="zero")
    body = 22 if model_type == "smplh" else 25
    expected = np.repeat([part_of_smpl_joint(j, body) for j in range(NUM_JOINTS[model_type])], 8)
    expected[0] = BODY_PARTS.index("left foot")
    np.testing.assert_array_equal(mesh.part_labels, expected)
    names = [mesh.part_names[label] for label in mesh.part_labels[_box(NUM_JOINTS[model_type] - 1)]]
    assert set(names) == {"right hand"}
    if model_type == "smplx":
        assert {mesh.part_names[label] for label in mesh.part_labels[_box(22).start : _box(24).stop]} == {"head"}


# ---------------------------------------------------------------- SMPL-H -> SMPL-X


def _hand_made_matrix():
    """(10475, 6890): identity on the first 6890 rows; rows 6890.. mix three vertices."""
    m = sp.lil_matrix((10475, 6890), dtype=np.float32)
    m[np.arange(6890), np.arange(6890)] = 1.0
    m[6890, [0, 1, 2]] = [0.2, 0.3, 0.5]
    m[6891, [5, 6]] = [0.7, 0.7]  # row sum > 1: clipped
    m[6892, [5]] = [-1.0]  # negative: clipped
    return m.tocsr()


def test_smplh_to_smplx_hand_computed(tmp_path):
    path = tmp_path / "smplh2smplx.npz"
    sp.save_npz(path, _hand_made_matrix())
    matrix = load_conversion_matrix(path)
    p = np.linspace(0, 1, 6890)
    p[5] = p[6] = 1.0
    out = smplh_to_smplx(p, matrix)
    assert out.shape == (10475,) and out.dtype == np.float32
    np.testing.assert_allclose(out[:6890], p, atol=1e-6)
    assert out[6890] == pytest.approx(0.2 * p[0] + 0.3 * p[1] + 0.5 * p[2], abs=1e-6)
    assert out[6891] == 1.0 and out[6892] == 0.0
    assert not out[6893:].any()
    assert out.min() >= 0 and out.max() <= 1


def test_deftrafo_pickle_keeps_the_vertex_half(tmp_path):
    """'mtx' of shape (10475, 2 * 6890): the second half (normals) is dropped."""
    normals = 5.0 * sp.eye(10475, 6890, k=3)  # stands in for the normal-transfer block
    full = sp.hstack([_hand_made_matrix(), normals]).tocsc()
    path = tmp_path / "smplh2smplx_deftrafo_setup.pkl"
    path.write_bytes(pickle.dumps({"mtx": full, "faces": np.zeros((3, 3), np.int64)}, protocol=2))
    matrix = load_conversion_matrix(path)
    assert matrix.shape == (10475, 6890)
    assert (matrix != _hand_made_matrix()).nnz == 0


@pytest.mark.parametrize("kind", ["npy", "npz-matrix", "pkl-matrix"])
def test_small_dense_matrix_files(tmp_path, kind):
    dense = np.array([[1, 0, 0], [0, 0.5, 0.5], [0.25, 0.25, 0.5], [0, 0, 0]], dtype=np.float64)
    if kind == "npy":
        path = tmp_path / "m.npy"
        np.save(path, dense)
    elif kind == "npz-matrix":
        path = tmp_path / "m.npz"
        np.savez(path, matrix=dense)
    else:
        path = tmp_path / "smpl_to_smplx.pkl"
        path.write_bytes(pickle.dumps({"matrix": dense}))
    matrix = load_conversion_matrix(path, num_smplx_vertices=4, num_smplh_vertices=3)
    out = smplh_to_smplx([0.2, 0.4, 1.0], matrix)
    np.testing.assert_allclose(out, [0.2, 0.7, 0.65, 0.0], atol=1e-6)


def test_conversion_shape_errors(tmp_path):
    path = tmp_path / "m.npy"
    np.save(path, np.eye(3))
    with pytest.raises(ValueError, match=r"shape \(3, 3\), expected \(10475, 6890\)"):
        load_conversion_matrix(path)
    with pytest.raises(ValueError, match=r"probabilities must have shape \(6890,\)"):
        smplh_to_smplx(np.zeros(10475), _hand_made_matrix())
    with pytest.raises(ValueError, match="no conversion matrix"):
        bad = tmp_path / "two.npz"
        np.savez(bad, a=np.eye(2), b=np.eye(2))
        load_conversion_matrix(bad)
    with pytest.raises(FileNotFoundError, match="smpl-x.is.tue.mpg.de"):
        load_conversion_matrix(tmp_path / "absent.pkl")


def test_body_model_entry_point(tmp_path):
    from interactvlm_ros.geometry.body import load_body_model

    (tmp_path / "smplh").mkdir()
    _write_npz(tmp_path / "smplh" / "SMPLH_NEUTRAL.npz", _arrays("smplh"))
    body = load_body_model("smplh", tmp_path)
    np.testing.assert_allclose(body.vertices, body_mesh("smplh", tmp_path, pose="vitruvian").vertices)
    assert body.name == "smplh"
    assert load_body_model("anny").num_vertices == 13718
    with pytest.raises(FileNotFoundError, match="body model directory"):
        load_body_model("smplx")
    with pytest.raises(FileNotFoundError, match="SMPLX_NEUTRAL"):
        load_body_model("smplx", tmp_path)
    with pytest.raises(ValueError, match="unknown body model"):
        load_body_model("smpl")
