"""Regenerate tests/data/sam_tiny_original.npz from the ORIGINAL segment-anything code.

This script is NOT part of the test suite and is never imported by it: it needs Meta's
`segment-anything` package, which the project environment does not install. Run it in a
separate virtual environment:

    python3 -m venv /tmp/sam-venv
    /tmp/sam-venv/bin/pip install torch==2.13.0 segment-anything==1.0 numpy
    /tmp/sam-venv/bin/python tests/data/make_sam_fixture.py tests/data/sam_tiny_original.npz

(The fixture committed in the repository was made with torch 2.13.0+cpu, numpy 2.4.6 and
segment-anything 1.0.) `segment_anything/__init__.py` imports the predictor, which needs
torchvision; only `segment_anything.modeling` is used here, so the package is registered
without running its `__init__` and torchvision is not needed.

What it writes (all float32 unless noted, float64 nowhere):

* ``sd/<key>``: the state dict of a tiny randomly initialised `Sam` (fixed seed) under the
  key names of the released InteractVLM/LISA checkpoints, i.e. prefixed with
  ``model.visual_model.``. Zero-initialised tensors (``pos_embed``, ``rel_pos_*``) and the
  LayerNorm affine parameters are re-randomised so that every tensor matters.
* ``config_json`` (str): the tiny configuration, including the mask decoder's head count,
  which cannot be read off the weights.
* ``image`` (2, 3, 32, 32): an already normalised input batch (two "views").
* ``image_embeddings`` (2, C, 8, 8): ``image_encoder(image)``.
* ``image_pe`` (1, C, 8, 8): ``prompt_encoder.get_dense_pe()``.
* ``sparse`` (2, 1, C): one external sparse prompt embedding per view, the way InteractVLM
  feeds the projected [SEG] embedding.
* ``seg_masks`` (2, 1, 32, 32), ``seg_iou`` (2, 1): per view v, ``mask_decoder`` on
  ``image_embeddings[v:v+1]``, ``image_pe``, ``sparse[v:v+1]`` and the no-mask dense
  embedding ``no_mask_embed.weight.reshape(1, -1, 1, 1).expand(1, -1, 8, 8)``,
  ``multimask_output=False``.
* ``shared_masks`` (2, 1, 32, 32), ``shared_iou`` (2, 1): ONE call with all views at once,
  as the public InteractVLM.py does with LISA's decoder: ``image_embeddings`` (2, C, 8, 8),
  ``sparse_prompt_embeddings = sparse.reshape(1, 2, C)`` (one prompt holding both views'
  tokens), the no-mask dense embedding; the batch dimensions broadcast inside the
  unmodified decoder, so view v is decoded with both tokens.
* ``points`` (1, 2, 2), ``point_labels`` (1, 2) int64, ``box`` (1, 4), ``mask_input``
  (1, 1, 32, 32) and the prompt encoder's outputs for them: ``points_sparse`` (points
  only, so one padding point is appended), ``box_sparse``, ``mask_dense``.
* ``point_masks`` (1, 3, 32, 32), ``point_iou`` (1, 3): ``mask_decoder`` on view 0 with
  the point prompt and the mask input, ``multimask_output=True``.
* ``vith_keys`` (str array), ``vith_shapes`` (int64, -1 padded to 4 dims): key names and
  shapes of the full ViT-H model built by ``build_sam_vit_h`` (on the meta device; nothing
  of it is run).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from functools import partial

import numpy as np
import torch

PREFIX = "model.visual_model."

TINY = {
    "img_size": 32,
    "patch_size": 4,  # 8 x 8 token grid
    "embed_dim": 32,
    "depth": 2,
    "num_heads": 2,
    "mlp_ratio": 2.0,  # not SAM's 4: the HF config must get mlp_dim from the weights
    "global_attn_indexes": [1],
    "window_size": 3,  # 8 is not a multiple of 3: exercises window padding
    "prompt_embed_dim": 16,
    "mask_in_chans": 8,
    "decoder_depth": 2,
    "decoder_mlp_dim": 32,
    "decoder_num_heads": 2,
    "num_multimask_outputs": 3,
    "iou_head_depth": 3,
    "iou_head_hidden_dim": 24,
}


def _import_modeling():
    """Import segment_anything.modeling without running the package __init__ (torchvision)."""
    spec = importlib.util.find_spec("segment_anything")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("segment-anything is not installed in this interpreter")
    if "segment_anything" not in sys.modules:
        package = types.ModuleType("segment_anything")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["segment_anything"] = package
    import segment_anything.modeling as modeling

    return modeling


def build_tiny(modeling):
    c = TINY
    grid = c["img_size"] // c["patch_size"]
    return modeling.Sam(
        image_encoder=modeling.ImageEncoderViT(
            img_size=c["img_size"],
            patch_size=c["patch_size"],
            embed_dim=c["embed_dim"],
            depth=c["depth"],
            num_heads=c["num_heads"],
            mlp_ratio=c["mlp_ratio"],
            out_chans=c["prompt_embed_dim"],
            qkv_bias=True,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            use_abs_pos=True,
            use_rel_pos=True,
            window_size=c["window_size"],
            global_attn_indexes=tuple(c["global_attn_indexes"]),
        ),
        prompt_encoder=modeling.PromptEncoder(
            embed_dim=c["prompt_embed_dim"],
            image_embedding_size=(grid, grid),
            input_image_size=(c["img_size"], c["img_size"]),
            mask_in_chans=c["mask_in_chans"],
        ),
        mask_decoder=modeling.MaskDecoder(
            num_multimask_outputs=c["num_multimask_outputs"],
            transformer=modeling.TwoWayTransformer(
                depth=c["decoder_depth"],
                embedding_dim=c["prompt_embed_dim"],
                mlp_dim=c["decoder_mlp_dim"],
                num_heads=c["decoder_num_heads"],
            ),
            transformer_dim=c["prompt_embed_dim"],
            iou_head_depth=c["iou_head_depth"],
            iou_head_hidden_dim=c["iou_head_hidden_dim"],
        ),
    ).eval()


def randomise(model: torch.nn.Module, modeling) -> None:
    """Give the zero/one-initialised tensors random values so that each one is tested."""
    norm_types = (torch.nn.LayerNorm, modeling.common.LayerNorm2d)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, norm_types):
                module.weight.copy_(1.0 + 0.1 * torch.randn_like(module.weight))
                module.bias.copy_(0.1 * torch.randn_like(module.bias))
        for name, param in model.named_parameters():
            if name.endswith(("pos_embed", "rel_pos_h", "rel_pos_w")):
                param.copy_(0.5 * torch.randn_like(param))


def vit_h_shapes(modeling_build) -> tuple[np.ndarray, np.ndarray]:
    with torch.device("meta"):
        sam = modeling_build()
    keys, shapes = [], []
    for key, tensor in sam.state_dict().items():
        keys.append(key)
        shapes.append(list(tensor.shape) + [-1] * (4 - tensor.dim()))
    return np.array(keys), np.array(shapes, dtype=np.int64)


def main(out_path: str) -> None:
    modeling = _import_modeling()
    import segment_anything.build_sam as build_sam  # noqa: E402  (needs only .modeling)

    torch.manual_seed(0)
    sam = build_tiny(modeling)
    randomise(sam, modeling)
    c = TINY
    grid = c["img_size"] // c["patch_size"]
    dim = c["prompt_embed_dim"]

    gen = torch.Generator().manual_seed(1)
    image = torch.randn(2, 3, c["img_size"], c["img_size"], generator=gen)
    sparse = torch.randn(2, 1, dim, generator=gen)
    points = torch.rand(1, 2, 2, generator=gen) * c["img_size"]
    point_labels = torch.tensor([[1, 0]], dtype=torch.int64)
    box = torch.tensor([[3.0, 5.0, 20.0, 27.0]])
    mask_input = torch.randn(1, 1, 4 * grid, 4 * grid, generator=gen)

    with torch.no_grad():
        image_embeddings = sam.image_encoder(image)
        image_pe = sam.prompt_encoder.get_dense_pe()
        no_mask = sam.prompt_encoder.no_mask_embed.weight.reshape(1, -1, 1, 1).expand(
            1, -1, grid, grid
        )
        seg_masks, seg_iou = [], []
        for v in range(image.shape[0]):
            masks, iou = sam.mask_decoder(
                image_embeddings=image_embeddings[v : v + 1],
                image_pe=image_pe,
                sparse_prompt_embeddings=sparse[v : v + 1],
                dense_prompt_embeddings=no_mask,
                multimask_output=False,
            )
            seg_masks.append(masks)
            seg_iou.append(iou)

        shared_masks, shared_iou = sam.mask_decoder(
            image_embeddings=image_embeddings,
            image_pe=image_pe,
            sparse_prompt_embeddings=sparse.reshape(1, -1, dim),
            dense_prompt_embeddings=no_mask,
            multimask_output=False,
        )

        points_sparse, _ = sam.prompt_encoder(points=(points, point_labels), boxes=None, masks=None)
        box_sparse, _ = sam.prompt_encoder(points=None, boxes=box, masks=None)
        _, mask_dense = sam.prompt_encoder(points=None, boxes=None, masks=mask_input)
        point_masks, point_iou = sam.mask_decoder(
            image_embeddings=image_embeddings[:1],
            image_pe=image_pe,
            sparse_prompt_embeddings=points_sparse,
            dense_prompt_embeddings=mask_dense,
            multimask_output=True,
        )

    arrays = {f"sd/{PREFIX}{k}": v.numpy() for k, v in sam.state_dict().items()}
    vith_keys, vith_shapes = vit_h_shapes(build_sam.build_sam_vit_h)
    arrays.update(
        config_json=np.array(json.dumps(TINY)),
        image=image.numpy(),
        image_embeddings=image_embeddings.numpy(),
        image_pe=image_pe.numpy(),
        sparse=sparse.numpy(),
        seg_masks=torch.cat(seg_masks).numpy(),
        seg_iou=torch.cat(seg_iou).numpy(),
        shared_masks=shared_masks.numpy(),
        shared_iou=shared_iou.numpy(),
        points=points.numpy(),
        point_labels=point_labels.numpy(),
        box=box.numpy(),
        mask_input=mask_input.numpy(),
        points_sparse=points_sparse.numpy(),
        box_sparse=box_sparse.numpy(),
        mask_dense=mask_dense.numpy(),
        point_masks=point_masks.numpy(),
        point_iou=point_iou.numpy(),
        vith_keys=vith_keys,
        vith_shapes=vith_shapes,
    )
    for name, value in arrays.items():
        if value.dtype == np.float64:
            raise AssertionError(f"{name} is float64")
    np.savez_compressed(out_path, **arrays)
    print(f"wrote {out_path}: {len(arrays)} arrays")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "sam_tiny_original.npz")
