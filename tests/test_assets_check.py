"""check-assets: each kind of directory recognised, validated without running the model,
and every problem reported (never an exception)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from interactvlm_ros.assets_check import check_assets, classify, format_reports
from interactvlm_ros.cli import main as cli_main
from interactvlm_ros.geometry.camera import BODY_VIEWS


@pytest.fixture(scope="module")
def tiny(tiny_checkpoint):
    return tiny_checkpoint


def test_a_good_checkpoint_and_clip_tower(tiny, capsys):
    reports = check_assets([tiny, tiny / "clip"])
    assert [(r.kind, r.ok) for r in reports] == [("checkpoint", True), ("clip", True)]
    assert any("RANDOM weights" in fact for fact in reports[0].facts)
    assert any("256 tokens" in fact for fact in reports[1].facts)
    assert cli_main(["check-assets", str(tiny), str(tiny / "clip")]) == 0
    assert "OK      " in capsys.readouterr().out


def test_problems_are_listed(tiny, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(tiny, broken)
    index = json.loads((broken / "pytorch_model.bin.index.json").read_text())
    shard = broken / "pytorch_model-00001-of-00002.bin"
    state = torch.load(shard, weights_only=True)
    key = next(k for k in state if k.startswith("model.layers.1."))
    del state[key], index["weight_map"][key]
    torch.save(state, shard)
    (broken / "pytorch_model.bin.index.json").write_text(json.dumps(index))
    (broken / "tokenizer.model").unlink()
    (tmp_path / "clip").mkdir()
    shutil.copy(tiny / "clip" / "config.json", tmp_path / "clip" / "config.json")
    (tmp_path / "empty").mkdir()
    reports = check_assets([broken, tmp_path / "clip", tmp_path / "empty", tmp_path / "absent"])
    assert [r.ok for r in reports] == [False] * 4
    text = format_reports(reports)
    assert "missing from the checkpoint: language_model.model.layers.1." in text
    assert "no tokenizer" in text
    assert "no preprocessor_config.json" in text and "no weights" in text
    assert "not recognised" in text and "not a directory" in text
    assert cli_main(["check-assets", str(broken)]) == 1


def test_release_config_keys(tiny, tmp_path):
    """The tiny checkpoint writes every key of a released config.json; check-assets names the
    keys InteractVLM's own loader cannot do without, and the optional ones that are absent."""
    from interactvlm_ros.localize.checkpoint import RELEASE_CONFIG_KEYS, REFERENCE_REQUIRED_CONFIG_KEYS

    config = json.loads((tiny / "config.json").read_text())
    assert len(RELEASE_CONFIG_KEYS) == 55 and set(REFERENCE_REQUIRED_CONFIG_KEYS) <= set(RELEASE_CONFIG_KEYS)
    assert set(RELEASE_CONFIG_KEYS) <= set(config)
    assert (config["hseg_token_idx"], config["oseg_token_idx"], config["use_fusion"]) == (None, None, False)
    broken = tmp_path / "broken"
    shutil.copytree(tiny, broken)
    (broken / "config.json").write_text(json.dumps({k: v for k, v in config.items()
                                                    if k not in ("use_fusion", "out_dim", "image_grid_pinpoints")}))
    (report,) = check_assets([broken])
    assert report.problems == ["config.json lacks keys InteractVLM's own loader needs: use_fusion, out_dim"]
    assert "config.json lacks 1 optional keys of a released config: image_grid_pinpoints" in report.facts


def test_body_models_and_official_assets(tmp_path):
    import test_smpl  # the synthetic SMPL-H files of the body-model tests

    (tmp_path / "body" / "smplh").mkdir(parents=True)
    test_smpl._write_npz(tmp_path / "body" / "smplh" / "SMPLH_NEUTRAL.npz", test_smpl._arrays("smplh"))
    assets = tmp_path / "hcontact_vitruvian"
    assets.mkdir()
    vertex_maps, bary_maps = {}, {}
    for view in BODY_VIEWS:
        Image.fromarray(np.full((1024, 1024, 3), 200, np.uint8)).save(assets / f"body_render_norm_{view.name}.png")
        ids = np.full((1024, 1024, 3), -1, np.int64)
        ids[500:510, 500:510] = [0, 1, 2]
        vertex_maps[view.name] = ids
        bary_maps[view.name] = np.full((1024, 1024, 3), 1 / 3, np.float32)
    np.savez(assets / "pixel_to_vertex_map_1024.npz", **vertex_maps)
    np.savez(assets / "bary_coords_map_1024.npz", **bary_maps)
    body, official = check_assets([tmp_path / "body", assets])
    assert (body.kind, body.ok) == ("body_models", True) and "smplh: 416 vertices" in body.facts[0]
    assert (official.kind, official.ok) == ("official_assets", True)
    assert "3 of 6890 vertices visible" in official.facts[0]
    assert classify(tmp_path) == "body_models"




@pytest.mark.parametrize("variant", ["hcontact-wscene", "oafford", "hcontact-ocontact", "2d-hcontact"])
def test_every_release_variant_is_accepted(tiny_variant, variant, capsys):
    """make-tiny-checkpoint's release layouts of the other released models pass check-assets
    (config values, tokenizer with every mask token, every weight key and shape)."""
    directory = tiny_variant(variant)
    (report,) = check_assets([directory])
    assert report.kind == "checkpoint" and report.ok, format_reports([report])


def test_cli_writes_each_variant_and_refuses_unknown_ones(tmp_path, capsys):
    release = "interactvlm-3d-hcontact-ocontact"  # release names are accepted besides the short ones
    assert cli_main(["make-tiny-checkpoint", str(tmp_path / "joint"), "--model", release]) == 0
    assert "tiny hcontact-ocontact MV-Loc checkpoint" in capsys.readouterr().out
    config = json.loads((tmp_path / "joint" / "config.json").read_text())
    assert (config["token_type"], config["hseg_token_idx"], config["oseg_token_idx"]) == (
        "Gen-Hu-Obj", config["seg_token_idx"] + 3, config["seg_token_idx"] + 4)
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["make-tiny-checkpoint", str(tmp_path / "x"), "--model", "3d-everything"])
    assert exit_info.value.code == 2
    assert "invalid choice: '3d-everything' (choose from 'hcontact', 'hcontact-wscene', 'oafford', " \
           "'hcontact-ocontact', '2d-hcontact', 'interactvlm-3d-hcontact-damon'," in capsys.readouterr().err
