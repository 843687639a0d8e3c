"""MV-Loc: the tiny checkpoint through the real loading path, loading errors, generation."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil

import numpy as np
import pytest
import torch

from interactvlm_ros.cli import main as cli_main
from interactvlm_ros.geometry.camera import BODY_VIEWS
from interactvlm_ros.localize.checkpoint import CheckpointError, read_state_dict
from interactvlm_ros.localize.builder import ClipTowerError, load_mvloc
from interactvlm_ros.localize.prompts import HUMAN_CONTACT_PROMPT, IMAGE_TOKEN_INDEX, conversation
from interactvlm_ros.localize.tiny import write_tiny_checkpoint

QUESTION = HUMAN_CONTACT_PROMPT.format(object="cup")


@pytest.fixture(scope="module")
def tiny(tiny_checkpoint):
    return tiny_checkpoint


@pytest.fixture(scope="module")
def model(tiny_model):
    return tiny_model


@pytest.fixture(scope="module")
def photo():
    from skimage import data

    return data.astronaut()  # (512, 512, 3) uint8


def outputs(model, photo, views):
    """Answer and (4, 128, 128) masks; SAM's image encoder runs once, on the first view (at
    1024 px it is the slow part on a CPU), and its embedding serves all four views."""
    features = model.encode_image(photo)
    answer = model.generate(features, QUESTION)
    prompts = model.sparse_prompt_embeddings(answer.seg_embedding, model.cameras(list(BODY_VIEWS)))
    embeddings = model.image_embeddings(views[:1]).expand(4, -1, -1, -1)
    return answer, model.decode_masks(prompts, embeddings, 128)


def test_cli_writes_a_loadable_random_checkpoint(tmp_path, capsys):
    assert cli_main(["make-tiny-checkpoint", str(tmp_path / "c"), "--seed", "3"]) == 0
    assert "RANDOM" in capsys.readouterr().out
    config = json.loads((tmp_path / "c" / "config.json").read_text())
    assert config["model_type"] == "llava" and config["interactvlm_ros_random_weights"] is True
    index = json.loads((tmp_path / "c" / "pytorch_model.bin.index.json").read_text())
    assert sorted(set(index["weight_map"].values())) == ["pytorch_model-00001-of-00002.bin",
                                                         "pytorch_model-00002-of-00002.bin"]
    keys = set(index["weight_map"])
    assert {"model.embed_tokens.weight", "lm_head.weight", "model.mm_projector.weight",
            "model.text_hidden_fcs.0.0.weight", "model.text_hidden_fcs.0.2.bias",
            "cam_pose_encoder.view_transforms.3.weight", "model.visual_model.image_encoder.blocks.1.attn.qkv.weight",
            "model.visual_model.prompt_encoder.no_mask_embed.weight",
            "model.visual_model.mask_decoder.output_hypernetworks_mlps.0.layers.2.weight"} <= keys
    assert not any("vision_tower" in k for k in keys)
    size = sum(p.stat().st_size for p in (tmp_path / "c").rglob("*") if p.is_file())
    assert size < 10_000_000


def test_round_trip_loaded_weights_are_the_written_ones(tiny, model):
    written = read_state_dict(tiny)
    loaded = model.model.state_dict()
    assert torch.equal(loaded["language_model.lm_head.weight"], written["lm_head.weight"].float())
    assert torch.equal(loaded["sam.vision_encoder.layers.0.attn.qkv.weight"],
                       written["model.visual_model.image_encoder.blocks.0.attn.qkv.weight"].float())
    assert torch.equal(loaded["text_hidden_fcs.0.2.weight"], written["model.text_hidden_fcs.0.2.weight"].float())
    assert model.weights_are_random and model.model_id == "tiny"


def test_formats_and_loads_give_identical_weights(tiny, model, photo, tmp_path):
    """Loading twice, and the same seed written as one safetensors file, give the very same
    tensors (hence outputs); another seed gives other weights and other masks."""
    views = np.random.default_rng(0).integers(0, 256, (4, 128, 128, 3), dtype=np.uint8)
    answer, masks = outputs(model, photo, views)
    assert answer.text == "[SEG]"
    assert masks.shape == (4, 128, 128) and masks.dtype == np.float32 and np.all(np.isfinite(masks))
    reference = model.model.state_dict()

    def same_weights(other) -> bool:
        state = other.model.state_dict()
        return state.keys() == reference.keys() and all(torch.equal(state[k], reference[k]) for k in reference)

    assert same_weights(load_mvloc(tiny, tiny / "clip"))
    other = write_tiny_checkpoint(tmp_path / "st", weight_format="safetensors", shards=1)
    assert (other / "model.safetensors").is_file() and same_weights(load_mvloc(other, other / "clip"))
    seed1 = load_mvloc(write_tiny_checkpoint(tmp_path / "s1", seed=1), tmp_path / "s1" / "clip")
    assert not same_weights(seed1)
    _, masks1 = outputs(seed1, photo, views)
    assert not np.allclose(masks, masks1)


def test_bfloat16_loading(tiny, photo):
    half = load_mvloc(tiny, tiny / "clip", dtype="bfloat16")
    assert all(p.dtype == torch.bfloat16 for p in half.model.parameters())
    views = np.full((4, 64, 64, 3), 128, np.uint8)
    answer, masks = outputs(half, photo, views)
    assert answer.text == "[SEG]" and np.all(np.isfinite(masks))
    with pytest.raises(ValueError, match="dtype"):
        load_mvloc(tiny, tiny / "clip", dtype="int8")


def _copy(tiny, tmp_path):
    target = tmp_path / "broken"
    shutil.copytree(tiny, target)
    return target


def _edit_shard(directory, edit):
    index = json.loads((directory / "pytorch_model.bin.index.json").read_text())
    shard = directory / "pytorch_model-00001-of-00002.bin"
    state = torch.load(shard, weights_only=True)
    edit(state, index["weight_map"])
    torch.save(state, shard)
    (directory / "pytorch_model.bin.index.json").write_text(json.dumps(index))


def test_loading_fails_clearly_on_missing_extra_and_misshapen_keys(tiny, tmp_path):
    broken = _copy(tiny, tmp_path)

    def drop(state, weight_map):
        key = next(k for k in state if k.startswith("model.layers.0.mlp"))
        del state[key], weight_map[key]
        drop.key = key

    _edit_shard(broken, drop)
    with pytest.raises(CheckpointError, match=r"missing from the checkpoint: language_model\.model\.layers\.0\.mlp"):
        load_mvloc(broken, tiny / "clip")

    # A key the model lacks (an unknown SAM head), and the joint model's attention splitter.
    for folder, key, shape, message in (("b", "model.visual_model.extra_head.weight", (2,), "extra_head.weight"),
                                        ("c", "attention_splitter.key.weight", (2, 2), "attention_splitter.key.weight")):
        broken = _copy(tiny, tmp_path / folder)

        def add(state, weight_map, key=key, shape=shape):
            state[key] = torch.zeros(shape)
            weight_map[key] = "pytorch_model-00001-of-00002.bin"

        _edit_shard(broken, add)
        with pytest.raises(CheckpointError, match=re.escape(message)):
            load_mvloc(broken, tiny / "clip")

    broken = _copy(tiny, tmp_path / "d")

    def reshape(state, weight_map):
        key = "model.mm_projector.weight" if "model.mm_projector.weight" in state else next(iter(state))
        state[key] = torch.zeros(3, 3)
        reshape.key = key

    _edit_shard(broken, reshape)
    with pytest.raises(CheckpointError, match="wrong shapes|SAM weights"):
        load_mvloc(broken, tiny / "clip")


def test_loading_fails_clearly_on_missing_files(tiny, tmp_path):
    with pytest.raises(ClipTowerError, match="CLIP vision tower not found"):
        load_mvloc(tiny, tmp_path / "no-clip")
    with pytest.raises(ClipTowerError, match="CLIP vision tower not found.*never downloaded"):
        load_mvloc(tiny)  # config.json names the hub id, which is not a directory
    with pytest.raises(FileNotFoundError, match="checkpoint directory not found"):
        load_mvloc(tmp_path / "nothing", tiny / "clip")
    broken = _copy(tiny, tmp_path)
    (broken / "pytorch_model-00002-of-00002.bin").unlink()
    with pytest.raises(FileNotFoundError, match="missing shards: pytorch_model-00002-of-00002.bin"):
        load_mvloc(broken, tiny / "clip")
    config = json.loads((tiny / "config.json").read_text())
    (broken / "config.json").write_text(json.dumps({**config, "token_type": "Gen-Hu-Obj"}))
    with pytest.raises(ValueError, match="token_type 'Gen-Hu-Obj' needs an integer hseg_token_idx"):
        load_mvloc(broken, tiny / "clip")
    # A joint token type on a single-task checkpoint: no attention splitter in its weights.
    broken = _copy(tiny, tmp_path / "joint")
    (broken / "config.json").write_text(json.dumps({**config, "token_type": "Gen-Hu-Obj", "hseg_token_idx": 401,
                                                    "oseg_token_idx": 402}))
    with pytest.raises(CheckpointError, match=r"missing from the checkpoint: attention_splitter\."):
        load_mvloc(broken, tiny / "clip")
    broken = _copy(tiny, tmp_path / "e")
    (broken / "config.json").write_text(json.dumps({**config, "mm_hidden_size": 48}))
    with pytest.raises(CheckpointError, match=r"mm_projector.weight: \(64, 32\) != \(64, 48\)"):
        load_mvloc(broken, tiny / "clip")
    (broken / "config.json").write_text(json.dumps({**config, "seg_token_idx": 5}))
    with pytest.raises(CheckpointError, match="seg_token_idx = 5"):
        load_mvloc(broken, tiny / "clip")


def test_prompt_tokens(model):
    ids = model.prompt_ids(QUESTION)
    assert ids.count(IMAGE_TOKEN_INDEX) == 1 and ids[0] == model.tokenizer.bos_token_id
    assert ids.count(model.tokenizer.bos_token_id) == 1
    text = model.tokenizer.decode([i for i in ids if i != IMAGE_TOKEN_INDEX], skip_special_tokens=False)
    assert "<im_start> <im_end>" in text or "<im_start><im_end>" in text
    assert ids[ids.index(IMAGE_TOKEN_INDEX) - 1] == model.tokenizer.convert_tokens_to_ids("<im_start>")
    assert ids[ids.index(IMAGE_TOKEN_INDEX) + 1] == model.tokenizer.convert_tokens_to_ids("<im_end>")
    assert conversation(QUESTION).endswith("ASSISTANT:")


def test_generation_stops_at_seg_with_the_state_that_predicted_it(tmp_path, photo):
    """With plainly random weights: run free (no stop token), declare a later generated token
    the [SEG] token, and check that generation then stops right there and returns the hidden
    state a full, uncached forward pass gives at the position that predicted it (LISA's
    offset)."""
    directory = write_tiny_checkpoint(tmp_path / "plain", emit_seg=False)
    model = load_mvloc(directory, directory / "clip")
    features = model.encode_image(photo)
    model.spec = dataclasses.replace(model.spec, seg_token_idx=-1)  # nothing stops it
    free = model.generate(features, QUESTION, max_new_tokens=12)
    assert len(free.token_ids) >= 5 and free.seg_embedding is None
    assert free.stop_reason == ("eos" if free.token_ids[-1] == model.tokenizer.eos_token_id else "max_new_tokens")
    stop_at = next(i for i in range(2, len(free.token_ids)) if free.token_ids[i] not in free.token_ids[:i])
    model.spec = dataclasses.replace(model.spec, seg_token_idx=free.token_ids[stop_at])
    stopped = model.generate(features, QUESTION, max_new_tokens=12)
    assert stopped.token_ids == free.token_ids[: stop_at + 1] and stopped.stop_reason == "seg"
    # Reference: the whole sequence in one uncached pass; the state before the [SEG] token.
    ids = model.prompt_ids(QUESTION)
    position = ids.index(IMAGE_TOKEN_INDEX)
    text_ids = [i for i in ids if i != IMAGE_TOKEN_INDEX] + stopped.token_ids
    with torch.inference_mode():
        embedded = model.model.language_model.get_input_embeddings()(torch.tensor([text_ids]))
        inputs = torch.cat([embedded[:, :position], features, embedded[:, position:]], dim=1)
        hidden = model.model.language_model(inputs_embeds=inputs, use_cache=False,
                                            output_hidden_states=True).hidden_states[-1]
    torch.testing.assert_close(stopped.seg_embedding, hidden[0, -2], rtol=1e-4, atol=1e-5)
    # max_new_tokens bounds a run without [SEG].
    model.spec = dataclasses.replace(model.spec, seg_token_idx=-1)
    limited = model.generate(features, QUESTION, max_new_tokens=3)
    assert limited.token_ids == free.token_ids[:3] and limited.stop_reason == "max_new_tokens"
    with pytest.raises(ValueError, match="max_new_tokens must be at least 1"):
        model.generate(features, QUESTION, max_new_tokens=0)


def test_camera_conditioning(model):
    seg = torch.ones(model.spec.hidden_size)
    cameras = model.cameras(list(BODY_VIEWS))
    assert cameras[1] == pytest.approx([0.2, 315 / 360, 315 / 360, 0.5, 0.65])
    prompts = model.sparse_prompt_embeddings(seg, cameras)
    base = model.model.text_hidden_fcs[0](seg[None])
    factors = model.model.cam_pose_encoder(torch.tensor(cameras))
    assert prompts.shape == (4, 256)
    torch.testing.assert_close(prompts, base.expand(4, -1) * factors)
    assert torch.all((factors > 0) & (factors < 1))
    assert not torch.allclose(prompts[0], prompts[1])


def test_quantization_is_refused_clearly_without_cuda(tiny):
    with pytest.raises(ValueError, match="8bit quantisation needs the decoder layers on CUDA devices"):
        load_mvloc(tiny, tiny / "clip", device="cpu", quantization="8bit")
    with pytest.raises(ValueError, match="quantization must be one of"):
        load_mvloc(tiny, tiny / "clip", quantization="2bit")
