"""The original-SAM <-> transformers ``SamModel`` state-dict mapping (localize/sam_keys.py).

Ground truth is ``tests/data/sam_tiny_original.npz``, produced by Meta's original code
(segment-anything 1.0, torch 2.13.0+cpu) with ``tests/data/make_sam_fixture.py``, which runs
in a separate virtual environment holding ``segment-anything`` and is never imported here
(see its docstring for the command). It holds:

* the state dict of a tiny, randomly initialised original ``Sam`` (seed 0; 32 x 32 images,
  4 x 4 patches so an 8 x 8 token grid, ViT width 32, 2 blocks of which block 1 is global
  and block 0 uses 3 x 3 windows (padded grid), MLP ratio 2, prompt dim 16, mask-decoder
  depth 2 with 2 heads, IoU head 24 wide) under the released key names
  ``model.visual_model.*``;
* a fixed already-normalised 2-view image batch with its image embeddings, the dense
  positional encoding, and the low-res mask logits + IoU of the mask decoder called as
  ../shared/DESIGN.md section 3 describes: one external sparse embedding (1, 1, C) per
  view, the no-mask dense embedding, ``multimask_output=False``, one view at a time;
* the same decode done the way the public InteractVLM.py calls LISA's unmodified decoder
  with all views at once (image embeddings (V, C, h, w), sparse (1, V, C)): the batch
  axes broadcast, so every view is decoded with all V tokens;
* the prompt encoder's outputs for points (with padding), a box and a mask input, and a
  multimask decode of the point prompt (covers every prompt-encoder and mask-token weight);
* the key names and shapes of the full ViT-H model (``build_sam_vit_h``), not its values.

``SamModel.forward`` only takes points/boxes/masks, so the [SEG] path calls the submodules
directly (see ``_decode_seg``). Tolerances are relative to each reference's largest
magnitude (2e-5 of it), since the tiny model's mask logits are small (|x| < 0.25).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import transformers

from interactvlm_ros.localize.sam_keys import (  # noqa: E402
    HF_TIED_KEYS,
    SamKeyError,
    hf_config_from_sam_state_dict,
    hf_state_dict_to_sam,
    sam_state_dict_to_hf,
)

FIXTURE = Path(__file__).parent / "data" / "sam_tiny_original.npz"
PREFIX = "model.visual_model."
REL_TOL = 2e-5


@pytest.fixture(scope="module")
def fixture() -> dict:
    with np.load(FIXTURE, allow_pickle=False) as data:
        arrays = {name: data[name] for name in data.files}
    state_dict = {
        name[len("sd/") :]: torch.from_numpy(value)
        for name, value in arrays.items()
        if name.startswith("sd/")
    }
    return {
        "state_dict": state_dict,
        "config": json.loads(str(arrays["config_json"])),
        "t": {name: torch.from_numpy(v) for name, v in arrays.items() if v.dtype.kind in "fi"},
        "vith": dict(zip(arrays["vith_keys"].tolist(), arrays["vith_shapes"].tolist())),
    }


def _hf_config(fixture):
    return hf_config_from_sam_state_dict(
        fixture["state_dict"],
        PREFIX,
        mask_decoder_num_attention_heads=fixture["config"]["decoder_num_heads"],
    )


def _hf_model(fixture, attn_implementation: str = "sdpa"):
    config = _hf_config(fixture)
    config._attn_implementation = attn_implementation
    model = transformers.SamModel(config).eval()
    model.load_state_dict(sam_state_dict_to_hf(fixture["state_dict"], PREFIX), strict=True)
    return model


def _assert_close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    assert actual.shape == expected.shape
    atol = REL_TOL * float(expected.abs().max())
    torch.testing.assert_close(actual, expected, rtol=0.0, atol=atol)


def _decode_seg(model, image_embeddings: torch.Tensor, sparse: torch.Tensor):
    """InteractVLM's [SEG] decode with SamModel: external sparse tokens, no mask prompt.

    ``image_embeddings`` (V, C, h, w), ``sparse`` (V, T, C): T tokens for view v ->
    mask logits (V, 1, 4h, 4w) and IoU (V, 1). SamModel's decoder takes sparse prompts as
    (batch, point_batch, tokens, C): each view is a batch entry with one prompt of T tokens.
    """
    views = image_embeddings.shape[0]
    image_pe = model.get_image_wide_positional_embeddings().repeat(views, 1, 1, 1)
    no_mask = model.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1)
    dense = no_mask.expand(views, -1, *image_embeddings.shape[-2:])
    masks, iou = model.mask_decoder(
        image_embeddings=image_embeddings,
        image_positional_embeddings=image_pe,
        sparse_prompt_embeddings=sparse[:, None],  # (V, 1, T, C)
        dense_prompt_embeddings=dense,
        multimask_output=False,
    )
    return masks[:, 0], iou[:, 0]  # drop the point-batch axis


# --- round trips ----------------------------------------------------------------------


def _tiny_hf_config():
    return transformers.SamConfig(
        vision_config={
            "hidden_size": 24,
            "num_hidden_layers": 3,
            "num_attention_heads": 3,
            "global_attn_indexes": [2],
            "window_size": 2,
            "image_size": 24,
            "patch_size": 4,
            "output_channels": 16,
            "mlp_dim": 40,
            "num_pos_feats": 8,
        },
        prompt_encoder_config={
            "hidden_size": 16,
            "image_size": 24,
            "patch_size": 4,
            "mask_input_channels": 8,
        },
        mask_decoder_config={
            "hidden_size": 16,
            "mlp_dim": 24,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "iou_head_depth": 4,
            "iou_head_hidden_dim": 12,
        },
    )


def test_round_trip_hf_sam_hf_is_identity():
    torch.manual_seed(0)
    config = _tiny_hf_config()
    model = transformers.SamModel(config)
    hf = model.state_dict()
    sam = hf_state_dict_to_sam(hf, prefix=PREFIX)
    assert all(key.startswith(PREFIX) for key in sam)
    assert len(sam) == len(hf) - len(HF_TIED_KEYS)
    back = sam_state_dict_to_hf(sam, prefix=PREFIX)
    assert list(back) != [] and set(back) == set(hf)
    for key, tensor in hf.items():
        assert torch.equal(back[key], tensor), key

    inferred = hf_config_from_sam_state_dict(
        sam, PREFIX, mask_decoder_num_attention_heads=config.mask_decoder_config.num_attention_heads
    )
    for sub in ("vision_config", "prompt_encoder_config", "mask_decoder_config"):
        expected, got = getattr(config, sub).to_dict(), getattr(inferred, sub).to_dict()
        if sub == "mask_decoder_config":  # SAM's value, not transformers' default
            assert got.pop("layer_norm_eps") == 1e-5
            expected.pop("layer_norm_eps")
        for key, value in expected.items():
            if key != "transformers_version":
                assert got[key] == value, (sub, key)


def test_round_trip_sam_hf_sam_is_identity(fixture):
    sam = fixture["state_dict"]
    back = hf_state_dict_to_sam(sam_state_dict_to_hf(sam, PREFIX), prefix=PREFIX)
    assert set(back) == set(sam)
    for key, tensor in sam.items():
        assert back[key] is tensor, key  # same tensors, nothing copied or transformed


def test_hf_to_sam_writes_the_released_key_set(fixture):
    """A fresh SamModel of the fixture's config converts to exactly the original key set."""
    torch.manual_seed(1)
    model = transformers.SamModel(_hf_config(fixture))
    sam = hf_state_dict_to_sam(model.state_dict(), prefix=PREFIX)
    original = fixture["state_dict"]
    assert set(sam) == set(original)
    for key, tensor in original.items():
        assert sam[key].shape == tensor.shape, key


# --- numerical equivalence with the original code ------------------------------------


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
def test_matches_original_sam(fixture, attn_implementation):
    t = fixture["t"]
    model = _hf_model(fixture, attn_implementation)
    with torch.no_grad():
        embeddings = model.get_image_embeddings(t["image"])
        _assert_close(embeddings, t["image_embeddings"])
        _assert_close(model.get_image_wide_positional_embeddings(), t["image_pe"])

        # Decode from the reference embeddings so that the decoder is checked on its own.
        masks, iou = _decode_seg(model, t["image_embeddings"], t["sparse"])
        _assert_close(masks, t["seg_masks"])
        _assert_close(iou, t["seg_iou"])
        # ... and end to end from the image.
        masks, _ = _decode_seg(model, embeddings, t["sparse"])
        _assert_close(masks, t["seg_masks"])
        # All views' tokens for every view (the original decoder's broadcast).
        views, _, dim = t["sparse"].shape
        shared = t["sparse"].reshape(1, views, dim).expand(views, -1, -1)
        masks, iou = _decode_seg(model, t["image_embeddings"], shared)
        _assert_close(masks, t["shared_masks"])
        _assert_close(iou, t["shared_iou"])

        # Prompt encoder: SamModel adds a point-batch axis (dim 1).
        points, labels = t["points"][:, None], t["point_labels"][:, None]
        sparse, _ = model.prompt_encoder(points, labels, None, None)
        _assert_close(sparse[:, 0], t["points_sparse"])
        sparse, _ = model.prompt_encoder(None, None, t["box"][:, None], None)
        _assert_close(sparse[:, 0], t["box_sparse"])
        _, dense = model.prompt_encoder(None, None, None, t["mask_input"])
        _assert_close(dense, t["mask_dense"])

        masks, iou = model.mask_decoder(
            image_embeddings=t["image_embeddings"][:1],
            image_positional_embeddings=t["image_pe"],
            sparse_prompt_embeddings=t["points_sparse"][:, None],
            dense_prompt_embeddings=t["mask_dense"],
            multimask_output=True,
        )
        _assert_close(masks[:, 0], t["point_masks"])
        _assert_close(iou[:, 0], t["point_iou"])


def test_vit_h_layout(fixture):
    """The released ViT-H key set maps onto SamModel(ViT-H config) key for key, shape for shape."""
    sam = {
        PREFIX + key: torch.empty([n for n in shape if n >= 0], device="meta")
        for key, shape in fixture["vith"].items()
    }
    config = hf_config_from_sam_state_dict(sam, PREFIX)
    vision = config.vision_config
    assert vision.hidden_size == 1280 and vision.num_hidden_layers == 32
    assert vision.num_attention_heads == 16
    assert list(vision.global_attn_indexes) == [7, 15, 23, 31] and vision.window_size == 14
    assert (vision.image_size, vision.patch_size, vision.mlp_dim) == (1024, 16, 5120)
    assert (vision.output_channels, vision.num_pos_feats) == (256, 128)
    assert config.prompt_encoder_config.mask_input_channels == 16
    decoder = config.mask_decoder_config
    assert (decoder.hidden_size, decoder.mlp_dim, decoder.num_attention_heads) == (256, 2048, 8)
    assert (decoder.attention_downsample_rate, decoder.num_multimask_outputs) == (2, 3)
    assert (decoder.iou_head_depth, decoder.iou_head_hidden_dim) == (3, 256)

    with torch.device("meta"):
        model = transformers.SamModel(config)
    expected = {key: tuple(t.shape) for key, t in model.state_dict().items()}
    mapped = {key: tuple(t.shape) for key, t in sam_state_dict_to_hf(sam, PREFIX).items()}
    assert mapped == expected
    assert len(mapped) == len(sam) + 1  # + the tied positional-embedding twin


# --- errors and deliberate drops -----------------------------------------------------


def test_unmapped_and_missing_keys_are_named(fixture):
    sam = dict(fixture["state_dict"])
    extra = PREFIX + "mask_decoder.extra_head.weight"
    gone = PREFIX + "mask_decoder.iou_token.weight"
    sam[extra] = torch.zeros(1)
    del sam[gone]
    with pytest.raises(SamKeyError) as info:
        sam_state_dict_to_hf(sam, PREFIX)
    assert info.value.unmapped == [extra] and info.value.missing == [gone]
    assert extra in str(info.value) and gone in str(info.value)
    assert isinstance(info.value, ValueError)


def test_missing_inner_block_key_is_named(fixture):
    sam = dict(fixture["state_dict"])
    gone = PREFIX + "image_encoder.blocks.0.attn.rel_pos_w"
    del sam[gone]
    with pytest.raises(SamKeyError, match="rel_pos_w") as info:
        sam_state_dict_to_hf(sam, PREFIX)
    assert info.value.missing == [gone] and info.value.unmapped == []


def test_hf_side_errors_are_named(fixture):
    hf = sam_state_dict_to_hf(fixture["state_dict"], PREFIX)
    broken = dict(hf)
    broken["vision_encoder.extra.weight"] = torch.zeros(1)
    del broken["mask_decoder.upscale_conv2.bias"]
    with pytest.raises(SamKeyError) as info:
        hf_state_dict_to_sam(broken)
    assert info.value.unmapped == ["vision_encoder.extra.weight"]
    assert info.value.missing == ["mask_decoder.upscale_conv2.bias"]

    # Either tied twin alone is enough; two different values are an error.
    for twin, source in HF_TIED_KEYS.items():
        for drop in (twin, source):
            single = {k: v for k, v in hf.items() if k != drop}
            assert set(hf_state_dict_to_sam(single)) == set(hf_state_dict_to_sam(hf))
        mismatched = dict(hf, **{twin: hf[source] + 1.0})
        with pytest.raises(ValueError, match="tied"):
            hf_state_dict_to_sam(mismatched)


def test_prefix_dropped_and_ignored_keys(fixture):
    sam = dict(fixture["state_dict"])
    reference = sam_state_dict_to_hf(sam, PREFIX)
    # Keys outside the prefix (the LLM, text_hidden_fcs, ...) are not looked at.
    sam["model.text_hidden_fcs.0.0.weight"] = torch.zeros(2, 2)
    sam["lm_head.weight"] = torch.zeros(2, 2)
    # SAM's preprocessing constants are dropped.
    sam[PREFIX + "pixel_mean"] = torch.tensor([123.675, 116.28, 103.53]).view(-1, 1, 1)
    sam[PREFIX + "pixel_std"] = torch.tensor([58.395, 57.12, 57.375]).view(-1, 1, 1)
    assert sam_state_dict_to_hf(sam, PREFIX).keys() == reference.keys()

    # A second decoder copy (InteractVLM "DifDe" models) fails unless ignored on purpose.
    for name in ("human_mask_decoder", "object_mask_decoder"):
        sam.update(
            {
                PREFIX + name + key[len(PREFIX + "mask_decoder") :]: value
                for key, value in fixture["state_dict"].items()
                if key.startswith(PREFIX + "mask_decoder.")
            }
        )
    with pytest.raises(SamKeyError, match="human_mask_decoder.iou_token.weight"):
        sam_state_dict_to_hf(sam, PREFIX)
    ignored = ("human_mask_decoder.", "object_mask_decoder.")
    assert sam_state_dict_to_hf(sam, PREFIX, ignore=ignored).keys() == reference.keys()

    with pytest.raises(SamKeyError, match="no SAM keys under prefix"):
        sam_state_dict_to_hf(sam, "model.other.")
