"""State-dict key mapping: original ``segment_anything`` SAM <-> transformers ``SamModel``.

InteractVLM (like LISA) keeps Meta's original SAM code, so its checkpoints store SAM under
``model.visual_model.{image_encoder,prompt_encoder,mask_decoder}.*`` with the original key
names. transformers' ``SamModel`` (checked against transformers 5.23.0) computes the same
functions under other names. Every tensor maps ONE-TO-ONE AND UNCHANGED: no transpose, no
reshape, no scale (the fused ``qkv`` projection keeps its (3 * hidden, hidden) layout, the
random Fourier matrix keeps its (2, embed_dim // 2) layout and scale 1). The one
non-bijective entry is the Fourier matrix, which ``SamModel`` holds twice, as a tied pair.

Mapping, per module (original key relative to ``prefix`` -> ``SamModel`` key); ``{i}`` is
any index, ``.*`` stands for ``.weight`` and ``.bias``:

``image_encoder.`` -> ``vision_encoder.``
    ==================================  =========================================
    patch_embed.proj.*                  patch_embed.projection.*
    pos_embed                           pos_embed
    blocks.{i}.norm1.*                  layers.{i}.layer_norm1.*
    blocks.{i}.attn.qkv.* (fused)       layers.{i}.attn.qkv.* (fused, same layout)
    blocks.{i}.attn.proj.*              layers.{i}.attn.proj.*
    blocks.{i}.attn.rel_pos_{h,w}       layers.{i}.attn.rel_pos_{h,w}
    blocks.{i}.norm2.*                  layers.{i}.layer_norm2.*
    blocks.{i}.mlp.lin{1,2}.*           layers.{i}.mlp.lin{1,2}.*
    neck.0.weight (1x1 conv, no bias)   neck.conv1.weight
    neck.1.* (LayerNorm2d)              neck.layer_norm1.*
    neck.2.weight (3x3 conv, no bias)   neck.conv2.weight
    neck.3.* (LayerNorm2d)              neck.layer_norm2.*
    ==================================  =========================================

``prompt_encoder.`` -> ``prompt_encoder.`` (first row: full ``SamModel`` keys)
    ==================================  =========================================
    pe_layer.positional_encoding_       (1) shared_image_embedding.positional_embedding
    gaussian_matrix  (2, dim // 2)      (2) prompt_encoder.shared_embedding.
                                        positional_embedding, tied twin of (1)
    point_embeddings.{i}.weight         point_embed.{i}.weight
    not_a_point_embed.weight            not_a_point_embed.weight
    no_mask_embed.weight                no_mask_embed.weight
    mask_downscaling.0.* (conv)         mask_embed.conv1.*
    mask_downscaling.1.* (LayerNorm2d)  mask_embed.layer_norm1.*
    mask_downscaling.3.* (conv)         mask_embed.conv2.*
    mask_downscaling.4.* (LayerNorm2d)  mask_embed.layer_norm2.*
    mask_downscaling.6.* (conv 1x1)     mask_embed.conv3.*
    ==================================  =========================================

``mask_decoder.`` -> ``mask_decoder.``
    ==================================  =========================================
    iou_token.weight                    iou_token.weight
    mask_tokens.weight                  mask_tokens.weight
    transformer.layers.{i}.{A}.{P}.*    transformer.layers.{i}.{A}.{P}.*
    transformer.layers.{i}.norm{n}.*    transformer.layers.{i}.layer_norm{n}.*
    transformer.layers.{i}.mlp.lin{k}.* transformer.layers.{i}.mlp.lin{k}.*
    transformer.final_attn_token_to_    transformer.final_attn_token_to_
    image.{P}.*                         image.{P}.*
    transformer.norm_final_attn.*       transformer.layer_norm_final_attn.*
    output_upscaling.0.* (ConvT)        upscale_conv1.*
    output_upscaling.1.* (LayerNorm2d)  upscale_layer_norm.*
    output_upscaling.3.* (ConvT)        upscale_conv2.*
    output_hypernetworks_mlps.{i}.      output_hypernetworks_mlps.{i}.
    layers.0.* / layers.1.* / layers.2.*   proj_in.* / layers.0.* / proj_out.*
    iou_prediction_head.layers.0.*      iou_prediction_head.proj_in.*
    iou_prediction_head.layers.{j}.*    iou_prediction_head.layers.{j-1}.*
    (0 < j < depth - 1)
    iou_prediction_head.layers.         iou_prediction_head.proj_out.*
    {depth-1}.*
    ==================================  =========================================

    A in self_attn, cross_attn_token_to_image, cross_attn_image_to_token;
    P in q_proj, k_proj, v_proj, out_proj; n in 1..4; k in 1, 2.

(``output_upscaling.2``/``.4`` and ``mask_downscaling.2``/``.5`` are parameter-free GELUs.)

Keys that are not mapped:

* original side, DROPPED: ``pixel_mean`` and ``pixel_std`` (preprocessing constants; SAM
  registers them non-persistent, so checkpoints normally lack them; transformers keeps them
  in the image processor). Any key given in ``ignore`` (e.g. InteractVLM's
  ``human_mask_decoder.`` / ``object_mask_decoder.`` copies in "DifDe" models) is dropped
  too. Keys outside ``prefix`` are not looked at (the rest of the InteractVLM checkpoint).
* transformers side: ``prompt_encoder.shared_embedding.positional_embedding`` is the tied
  twin of ``shared_image_embedding.positional_embedding``; both are written (a plain
  ``load_state_dict(strict=True)`` wants both) and, when read back, must be equal.
* Everything else is an error: :class:`SamKeyError` (a ``ValueError``) lists every key that
  has no counterpart ("unmapped") and every key the model's layout needs but the state dict
  lacks ("missing"). The layout (number of ViT blocks, decoder layers, mask tokens, point
  embeddings, IoU-head depth) is read off the key indices, so a missing trailing block
  cannot be detected; anything else missing can.

Building the matching model (``hf_config_from_sam_state_dict`` derives every size from the
shapes; only the mask decoder's head count is not in the weights, 8 in every released SAM)::

    from transformers import SamModel
    config = hf_config_from_sam_state_dict(sd, prefix="model.visual_model.")
    with torch.device("meta"):  # skip the random init of ~640 M parameters for ViT-H
        model = SamModel(config)
    model.load_state_dict(sam_state_dict_to_hf(sd, prefix="model.visual_model."), assign=True)
    model.eval()  # (assign=True leaves the tied twins as two Parameters over one tensor)

Numerical equivalence with the original code (tests/test_sam_keys.py) additionally needs the
mask decoder's LayerNorm eps: the original ``TwoWayTransformer`` uses ``nn.LayerNorm``'s
default 1e-5 while transformers' ``SamMaskDecoderConfig`` defaults to 1e-6; the config built
here sets 1e-5 (with 1e-6 the tiny test model's mask logits move by ~5e-5 of their range).

No ROS imports; ``transformers`` is imported only by :func:`hf_config_from_sam_state_dict`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping

import torch

__all__ = [
    "HF_TIED_KEYS",
    "SAM_DROPPED_KEYS",
    "SAM_MASK_DECODER_HEADS",
    "SamKeyError",
    "SamLayout",
    "hf_config_from_sam_state_dict",
    "hf_state_dict_to_sam",
    "key_pairs",
    "sam_state_dict_to_hf",
]

#: Original keys (relative to the prefix) that carry no weights and are dropped.
SAM_DROPPED_KEYS = ("pixel_mean", "pixel_std")

#: ``SamModel`` key -> the key it is tied to (same tensor, written twice).
HF_TIED_KEYS = {
    "prompt_encoder.shared_embedding.positional_embedding": (
        "shared_image_embedding.positional_embedding"
    ),
}

#: Head count of the mask decoder's transformer in every released SAM (not in the weights).
SAM_MASK_DECODER_HEADS = 8

_ATTENTIONS = ("self_attn", "cross_attn_token_to_image", "cross_attn_image_to_token")
_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "out_proj")
# Both SAM and SamModel build the mask decoder's hypernetwork MLPs with 3 layers.
_HYPERNETWORK_DEPTH = 3
# prompt_encoder.mask_downscaling index -> SamMaskEmbedding attribute (2 and 5 are GELUs).
_MASK_DOWNSCALING = (
    (0, "conv1"), (1, "layer_norm1"), (3, "conv2"), (4, "layer_norm2"), (6, "conv3")
)
_GAUSSIAN = "prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"


class SamKeyError(ValueError):
    """State dict keys without a counterpart (``unmapped``) or absent (``missing``)."""

    def __init__(self, what: str, unmapped: Iterable[str] = (), missing: Iterable[str] = ()):
        self.unmapped = sorted(unmapped)
        self.missing = sorted(missing)
        parts = [what]
        if self.unmapped:
            parts.append(f"{len(self.unmapped)} unmapped key(s): {', '.join(self.unmapped)}")
        if self.missing:
            parts.append(f"{len(self.missing)} missing key(s): {', '.join(self.missing)}")
        super().__init__("; ".join(parts))


@dataclass(frozen=True)
class SamLayout:
    """The counts that fix SAM's key set (the sizes live in the tensors' shapes)."""

    vision_layers: int
    decoder_layers: int
    num_mask_tokens: int
    num_point_embeddings: int
    iou_head_depth: int


def _wb(sam: str, hf: str) -> list[tuple[str, str]]:
    """The weight and bias pairs of one layer."""
    return [(f"{sam}.weight", f"{hf}.weight"), (f"{sam}.bias", f"{hf}.bias")]


def _mlp(module: str, depth: int) -> list[tuple[str, str]]:
    """SAM ``MLP.layers.{0..depth-1}`` -> SamFeedForward ``proj_in``, ``layers``, ``proj_out``."""
    pairs = _wb(f"{module}.layers.0", f"{module}.proj_in")
    for j in range(1, depth - 1):
        pairs += _wb(f"{module}.layers.{j}", f"{module}.layers.{j - 1}")
    return pairs + _wb(f"{module}.layers.{depth - 1}", f"{module}.proj_out")


def key_pairs(layout: SamLayout) -> list[tuple[str, str]]:
    """Every (original key, ``SamModel`` key) pair of a SAM model with this layout.

    The tied twin of :data:`HF_TIED_KEYS` is not listed.
    """
    if layout.iou_head_depth < 2:
        raise ValueError(f"SamModel needs an IoU head of depth >= 2, not {layout.iou_head_depth}")
    # Image encoder.
    ie, ve = "image_encoder", "vision_encoder"
    pairs = _wb(f"{ie}.patch_embed.proj", f"{ve}.patch_embed.projection")
    pairs.append((f"{ie}.pos_embed", f"{ve}.pos_embed"))
    for i in range(layout.vision_layers):
        sam, hf = f"{ie}.blocks.{i}", f"{ve}.layers.{i}"
        pairs += _wb(f"{sam}.norm1", f"{hf}.layer_norm1")
        pairs += _wb(f"{sam}.attn.qkv", f"{hf}.attn.qkv")
        pairs += _wb(f"{sam}.attn.proj", f"{hf}.attn.proj")
        pairs += [(f"{sam}.attn.rel_pos_{a}", f"{hf}.attn.rel_pos_{a}") for a in "hw"]
        pairs += _wb(f"{sam}.norm2", f"{hf}.layer_norm2")
        pairs += _wb(f"{sam}.mlp.lin1", f"{hf}.mlp.lin1")
        pairs += _wb(f"{sam}.mlp.lin2", f"{hf}.mlp.lin2")
    pairs.append((f"{ie}.neck.0.weight", f"{ve}.neck.conv1.weight"))
    pairs += _wb(f"{ie}.neck.1", f"{ve}.neck.layer_norm1")
    pairs.append((f"{ie}.neck.2.weight", f"{ve}.neck.conv2.weight"))
    pairs += _wb(f"{ie}.neck.3", f"{ve}.neck.layer_norm2")
    # Prompt encoder.
    pe = "prompt_encoder"
    pairs.append((_GAUSSIAN, "shared_image_embedding.positional_embedding"))
    pairs += [
        (f"{pe}.point_embeddings.{i}.weight", f"{pe}.point_embed.{i}.weight")
        for i in range(layout.num_point_embeddings)
    ]
    pairs.append((f"{pe}.not_a_point_embed.weight", f"{pe}.not_a_point_embed.weight"))
    pairs.append((f"{pe}.no_mask_embed.weight", f"{pe}.no_mask_embed.weight"))
    for index, name in _MASK_DOWNSCALING:
        pairs += _wb(f"{pe}.mask_downscaling.{index}", f"{pe}.mask_embed.{name}")
    # Mask decoder.
    md = "mask_decoder"
    pairs.append((f"{md}.iou_token.weight", f"{md}.iou_token.weight"))
    pairs.append((f"{md}.mask_tokens.weight", f"{md}.mask_tokens.weight"))
    for i in range(layout.decoder_layers):
        layer = f"{md}.transformer.layers.{i}"
        for attention in _ATTENTIONS:
            for proj in _PROJECTIONS:
                pairs += _wb(f"{layer}.{attention}.{proj}", f"{layer}.{attention}.{proj}")
        for n in range(1, 5):
            pairs += _wb(f"{layer}.norm{n}", f"{layer}.layer_norm{n}")
        pairs += _wb(f"{layer}.mlp.lin1", f"{layer}.mlp.lin1")
        pairs += _wb(f"{layer}.mlp.lin2", f"{layer}.mlp.lin2")
    for proj in _PROJECTIONS:
        final = f"{md}.transformer.final_attn_token_to_image.{proj}"
        pairs += _wb(final, final)
    pairs += _wb(f"{md}.transformer.norm_final_attn", f"{md}.transformer.layer_norm_final_attn")
    pairs += _wb(f"{md}.output_upscaling.0", f"{md}.upscale_conv1")
    pairs += _wb(f"{md}.output_upscaling.1", f"{md}.upscale_layer_norm")
    pairs += _wb(f"{md}.output_upscaling.3", f"{md}.upscale_conv2")
    for i in range(layout.num_mask_tokens):
        pairs += _mlp(f"{md}.output_hypernetworks_mlps.{i}", _HYPERNETWORK_DEPTH)
    return pairs + _mlp(f"{md}.iou_prediction_head", layout.iou_head_depth)


def _count(keys: Iterable[str], pattern: str) -> int:
    """1 + the largest index captured by ``pattern``; 0 when no key matches."""
    regex = re.compile(pattern)
    indices = [int(m.group(1)) for m in map(regex.match, keys) if m]
    return max(indices) + 1 if indices else 0


def _layout(sd: Mapping[str, torch.Tensor], hf: bool) -> SamLayout:
    """The layout implied by a state dict's key indices (``hf``: SamModel names)."""
    tokens = sd.get("mask_decoder.mask_tokens.weight")
    if tokens is not None and tokens.dim() == 2:
        num_mask_tokens = int(tokens.shape[0])
    else:
        num_mask_tokens = _count(sd, r"mask_decoder\.output_hypernetworks_mlps\.(\d+)\.")
    blocks = r"vision_encoder\.layers\." if hf else r"image_encoder\.blocks\."
    points = r"prompt_encoder\.point_embed\." if hf else r"prompt_encoder\.point_embeddings\."
    iou_layers = _count(sd, r"mask_decoder\.iou_prediction_head\.layers\.(\d+)\.")
    return SamLayout(
        vision_layers=_count(sd, blocks + r"(\d+)\."),
        decoder_layers=_count(sd, r"mask_decoder\.transformer\.layers\.(\d+)\."),
        num_mask_tokens=num_mask_tokens,
        num_point_embeddings=_count(sd, points + r"(\d+)\."),
        # SamFeedForward: proj_in + layers + proj_out; SAM's MLP: layers only.
        iou_head_depth=iou_layers + 2 if hf else max(iou_layers, 2),
    )


def _select(
    state_dict: Mapping[str, torch.Tensor], prefix: str, ignore: Iterable[str]
) -> dict[str, torch.Tensor]:
    """The original-format entries under ``prefix`` (prefix removed), less the dropped keys."""
    ignore = tuple(ignore)
    selected = {}
    for key, tensor in state_dict.items():
        if not key.startswith(prefix):
            continue
        rel = key[len(prefix) :]
        if rel in SAM_DROPPED_KEYS or (ignore and rel.startswith(ignore)):
            continue
        selected[rel] = tensor
    if not selected:
        raise SamKeyError(f"no SAM keys under prefix {prefix!r}")
    return selected


def _check(what: str, have: Iterable[str], want: Iterable[str], prefix: str = "") -> None:
    have, want = set(have), set(want)
    if have != want:
        raise SamKeyError(
            what,
            unmapped=(prefix + k for k in have - want),
            missing=(prefix + k for k in want - have),
        )


def sam_state_dict_to_hf(
    state_dict: Mapping[str, torch.Tensor], prefix: str = "", *, ignore: Iterable[str] = ()
) -> dict[str, torch.Tensor]:
    """Original SAM state dict -> ``SamModel`` state dict (the same tensors, not copies).

    ``prefix`` selects the SAM entries of a larger checkpoint (``"model.visual_model."`` for
    InteractVLM/LISA) and is removed; keys outside it are not looked at. ``ignore``: key
    prefixes, relative to ``prefix``, to drop on purpose. Raises :class:`SamKeyError` naming
    every unmapped and every missing key (with ``prefix``).
    """
    sd = _select(state_dict, prefix, ignore)
    pairs = key_pairs(_layout(sd, hf=False))
    _check("original SAM state dict does not fit SamModel", sd, (s for s, _ in pairs), prefix)
    out = {hf: sd[sam] for sam, hf in pairs}
    for twin, source in HF_TIED_KEYS.items():
        out[twin] = out[source]
    return out


def hf_state_dict_to_sam(
    state_dict: Mapping[str, torch.Tensor], prefix: str = ""
) -> dict[str, torch.Tensor]:
    """``SamModel`` state dict -> original SAM state dict, ``prefix`` prepended to every key.

    The same tensors, not copies. Of a tied pair (:data:`HF_TIED_KEYS`) either key or both
    may be given; both must then be equal. Raises :class:`SamKeyError` naming every unmapped
    and every missing key.
    """
    sd = dict(state_dict)
    for twin, source in HF_TIED_KEYS.items():
        if twin not in sd:
            continue
        tensor = sd.pop(twin)
        if source not in sd:
            sd[source] = tensor
        elif tensor.shape != sd[source].shape or not torch.equal(tensor, sd[source]):
            raise ValueError(f"tied SamModel tensors differ: {twin} != {source}")
    pairs = key_pairs(_layout(sd, hf=True))
    _check("SamModel state dict does not fit SAM", sd, (hf for _, hf in pairs))
    return {prefix + sam: sd[hf] for sam, hf in pairs}


def hf_config_from_sam_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    prefix: str = "",
    *,
    mask_decoder_num_attention_heads: int = SAM_MASK_DECODER_HEADS,
    ignore: Iterable[str] = (),
):
    """The ``transformers.SamConfig`` of the ``SamModel`` that takes this original state dict.

    Every size comes from the tensor shapes; not in the weights are the mask decoder's head
    count (argument; 8 in SAM) and the LayerNorm epsilons (SAM's: 1e-6, but 1e-5 in the mask
    decoder's transformer). Windowed and global ViT blocks are told apart by the length of
    ``rel_pos_h`` (2 * window - 1 vs 2 * grid - 1); a window as large as the token grid is
    the same computation as global attention and is reported as global.
    """
    from transformers import SamConfig

    sam_state_dict_to_hf(state_dict, prefix, ignore=ignore)  # validates the key set
    sd = _select(state_dict, prefix, ignore)
    layout = _layout(sd, hf=False)
    if not (layout.vision_layers and layout.decoder_layers):
        raise ValueError("SAM state dict without ViT blocks or mask decoder layers")

    def shape(key: str) -> tuple[int, ...]:
        return tuple(sd[key].shape)

    hidden, channels, patch, patch_w = shape("image_encoder.patch_embed.proj.weight")
    _, grid, grid_w, _ = shape("image_encoder.pos_embed")
    if patch != patch_w or grid != grid_w:
        raise ValueError("only square patches and square token grids are supported")
    global_layers, windows = [], set()
    for i in range(layout.vision_layers):
        length = shape(f"image_encoder.blocks.{i}.attn.rel_pos_h")[0]
        if length != shape(f"image_encoder.blocks.{i}.attn.rel_pos_w")[0] or length % 2 == 0:
            raise ValueError(f"ViT block {i}: unexpected relative position table length {length}")
        size = (length + 1) // 2
        if size == grid:
            global_layers.append(i)
        else:
            windows.add(size)
    if len(windows) > 1:
        raise ValueError(f"windowed ViT blocks use different window sizes {sorted(windows)}")
    head_dim = shape("image_encoder.blocks.0.attn.rel_pos_h")[1]
    decoder_hidden = shape("mask_decoder.iou_token.weight")[1]
    cross_attention_dim = shape(
        "mask_decoder.transformer.layers.0.cross_attn_token_to_image.q_proj.weight"
    )[0]
    vision_config = {
        "hidden_size": hidden,
        "num_channels": channels,
        "num_hidden_layers": layout.vision_layers,
        "num_attention_heads": hidden // head_dim,
        "image_size": grid * patch,
        "patch_size": patch,
        "output_channels": shape("image_encoder.neck.0.weight")[0],
        "mlp_dim": shape("image_encoder.blocks.0.mlp.lin1.weight")[0],
        "window_size": windows.pop() if windows else 0,
        "global_attn_indexes": global_layers,
        "num_pos_feats": shape(_GAUSSIAN)[1],
        "qkv_bias": True,
        "use_abs_pos": True,
        "use_rel_pos": True,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-6,
    }
    prompt_encoder_config = {
        "hidden_size": shape("prompt_encoder.no_mask_embed.weight")[1],
        "image_size": grid * patch,
        "patch_size": patch,
        "mask_input_channels": shape("prompt_encoder.mask_downscaling.3.weight")[0],
        "num_point_embeddings": layout.num_point_embeddings,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-6,
    }
    mask_decoder_config = {
        "hidden_size": decoder_hidden,
        "hidden_act": "relu",
        "mlp_dim": shape("mask_decoder.transformer.layers.0.mlp.lin1.weight")[0],
        "num_hidden_layers": layout.decoder_layers,
        "num_attention_heads": mask_decoder_num_attention_heads,
        "attention_downsample_rate": decoder_hidden // cross_attention_dim,
        "num_multimask_outputs": layout.num_mask_tokens - 1,
        "iou_head_depth": layout.iou_head_depth,
        "iou_head_hidden_dim": shape("mask_decoder.iou_prediction_head.layers.0.weight")[0],
        "layer_norm_eps": 1e-5,  # nn.LayerNorm's default, used by SAM's TwoWayTransformer
    }
    return SamConfig(
        vision_config=vision_config,
        prompt_encoder_config=prompt_encoder_config,
        mask_decoder_config=mask_decoder_config,
    )
