"""MV-Loc, InteractVLM's localisation model, assembled from transformers parts.

Architecture (InteractVLM's model/InteractVLM.py and components.py; LISA's LLaVA code):

* ``vision_tower``: CLIP ViT-L/14 (``CLIPVisionModel``) at 224 px; the hidden states of layer
  ``mm_vision_select_layer`` (-2) without the CLS token: 256 tokens of ``mm_hidden_size``.
* ``mm_projector``: one ``Linear(mm_hidden_size, H)`` (LLaVA v1).
* ``language_model``: ``LlamaForCausalLM`` (LoRA already merged in released checkpoints).
* ``text_hidden_fcs``: ``Linear(H, H), ReLU, Linear(H, 256), Dropout(0)`` applied to the
  last-layer hidden state that predicts ``[SEG]``.
* ``cam_pose_encoder`` (``cam_encoder_type='vi_v1'``): ``Linear(5,128), ReLU, Linear(128,128),
  ReLU`` on the normalised camera ``(dist/10, elev/360, azim/360, (x+1)/2, (y+1)/2)``, then a
  per-view ``Linear(128, 256)`` and a sigmoid; the [SEG] embedding is multiplied by it per view.
* ``attention_splitter`` (joint models, ``token_type`` "Gen-Hu-Obj" / "Gen-Int"): InteractVLM's
  ``AttentionSplitter`` (components.py), one attention over the V view-conditioned embeddings
  with a human and an object query; ``[HSEG]`` takes the human output, ``[OSEG]`` the object
  output, ``[SEG]`` neither (``InteractVLMForCausalLM.process_embeddings``).
* ``sam``: SAM (ViT-H in the released models) as ``transformers.SamModel``: image encoder on
  each 1024 x 1024 render, prompt encoder's no-mask dense embedding, mask decoder with the
  view-conditioned [SEG] embeddings as the sparse prompt, one mask per view.

The released variants differ only in config values and these optional modules:
3D human contact and scene contact ("Gen", 4 body views, vi_v1), object affordance ("Gen",
4 object views, vi_v1), the joint human-object model ("Gen-Hu-Obj": [SEG], [HSEG], [OSEG] and
the splitter) and 2D human contact (``multiview_channels`` 1: SAM runs on the camera image,
see :meth:`.predictor.MVLoc.image_contact`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..geometry.camera import ViewSpec

#: Camera encoders this implementation supports (all released InteractVLM 3D models use vi_v1).
SUPPORTED_CAMERA_ENCODERS = ("vi_v1",)

#: InteractVLM's token types (``utils/utils.py`` ``add_new_tokens``; ``model/InteractVLM.py``
#: strips a "-DifDe" suffix first): "Gen" ([SEG] only), "Gen-Hu-Obj" ([SEG], [HSEG], [OSEG]
#: and the attention splitter: the released joint model), "Gen-Int" ([SEG] and one [ISEG]
#: for both, which always takes the splitter's human branch).
BASE_TOKEN_TYPES = ("Gen", "Gen-Hu-Obj", "Gen-Int")
#: Base token types with an attention splitter (``InteractVLM.py``: ``base_token_type in
#: ['Gen-Hu-Obj', 'Gen-Int']``).
SPLITTER_TOKEN_TYPES = ("Gen-Hu-Obj", "Gen-Int")
#: The suffix that gives InteractVLM's ``ModifiedSAM`` separate human / object decoders.
DIFFERENT_DECODERS_SUFFIX = "-DifDe"


def normalized_camera(view: ViewSpec, dist: float | None = None) -> list[float]:
    """InteractVLM's camera-conditioning input: ``[dist/10, elev/360, azim/360, (x+1)/2, (y+1)/2]``
    (datasets/base_contact_dataset.py ``normalize_cam_params``); ``dist`` overrides the
    view's distance (object views are conditioned with dist 2 but rendered at 1.5)."""
    d = view.dist if dist is None else dist
    return [d / 10.0, view.elev / 360.0, view.azim / 360.0, (view.x + 1.0) / 2.0, (view.y + 1.0) / 2.0]


class CameraPoseEncoder(nn.Module):
    """InteractVLM's ``VIv1CamPoseEncoder``: per view v, ``sigmoid(view_transforms[v](spatial_encoder(c)))``.

    Input: (V, 5) normalised cameras; output: (V, out_dim) factors in (0, 1).
    """

    def __init__(self, num_views: int, out_dim: int = 256, hidden: int = 128):
        super().__init__()
        self.spatial_encoder = nn.Sequential(nn.Linear(5, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())
        self.view_transforms = nn.ModuleList([nn.Linear(hidden, out_dim) for _ in range(num_views)])

    def forward(self, cameras: torch.Tensor) -> torch.Tensor:
        if cameras.shape != (len(self.view_transforms), 5):
            raise ValueError(f"cameras must have shape ({len(self.view_transforms)}, 5), got {tuple(cameras.shape)}")
        features = self.spatial_encoder(cameras)
        return torch.stack([torch.sigmoid(t(features[v])) for v, t in enumerate(self.view_transforms)])


class AttentionSplitter(nn.Module):
    """InteractVLM's ``AttentionSplitter`` (model/components.py), same parameter names.

    For x of shape (..., L, D) (InteractVLM: (1, V, 256), the camera-conditioned embedding of
    each of the V views; the views are the attention's sequence)::

        p = input_proj(x)                                   # (..., L, hidden)
        k, v = key(p), value(p)
        A_h = softmax(query_human(p) k^T / sqrt(hidden))    # (..., L, L), over the last axis
        A_o = softmax(query_object(p) k^T / sqrt(hidden))
        human, object = output_proj(A_h v), output_proj(A_o v)   # (..., L, D) each

    Args:
        input_dim: D (``out_dim``, 256); hidden: 128 (InteractVLM's default, the only one used).
    """

    def __init__(self, input_dim: int = 256, hidden: int = 128):
        super().__init__()
        self.input_proj = nn.Linear(input_dim, hidden)
        self.query_human = nn.Linear(hidden, hidden)
        self.query_object = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)
        self.output_proj = nn.Linear(hidden, input_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        projected = self.input_proj(x)
        keys = self.key(projected)
        values = self.value(projected)
        scale = keys.shape[-1] ** 0.5
        outputs = []
        for query in (self.query_human, self.query_object):
            attention = torch.softmax(query(projected) @ keys.transpose(-2, -1) / scale, dim=-1)
            outputs.append(self.output_proj(attention @ values))
        return outputs[0], outputs[1]


@dataclass(frozen=True)
class MVLocSpec:
    """The architecture fields of an InteractVLM ``config.json`` that the model reads.

    ``token_type`` is InteractVLM's: a base type of :data:`BASE_TOKEN_TYPES`, optionally with
    the "-DifDe" suffix. ``hseg_token_idx`` / ``oseg_token_idx`` are the ids of [HSEG] / [OSEG]
    ([ISEG] twice for "Gen-Int"), None for "Gen".

    Raises (from :meth:`from_config`):
        ValueError: a required field is missing, or a configuration this implementation
            does not support (an unknown token type, a joint type without its token ids, other
            camera encoders).
    """

    hidden_size: int
    mm_hidden_size: int
    out_dim: int
    seg_token_idx: int
    img_emb_len: int
    multiview_channels: int
    multiview_cam_cond: bool
    cam_encoder_type: str
    mm_vision_select_layer: int
    mm_use_im_start_end: bool
    vision_tower: str
    token_type: str
    hseg_token_idx: int | None = None
    oseg_token_idx: int | None = None

    @property
    def base_token_type(self) -> str:
        """``token_type`` without "-DifDe" (InteractVLM's ``base_token_type``)."""
        return self.token_type.replace(DIFFERENT_DECODERS_SUFFIX, "")

    @property
    def has_splitter(self) -> bool:
        """Whether the model has InteractVLM's attention splitter ([HSEG]/[OSEG] branches)."""
        return self.base_token_type in SPLITTER_TOKEN_TYPES

    @property
    def different_decoders(self) -> bool:
        """InteractVLM's ``use_diff_decoder`` ("DifDe" in ``token_type``). After
        ``from_pretrained`` its ``human_mask_decoder`` and ``object_mask_decoder`` are the very
        module ``mask_decoder`` is (``ModifiedSAM.__init__``; they are separated only by
        ``initialize_separate_decoders``, which inference never calls), so inference uses one
        decoder; :func:`.checkpoint.map_checkpoint_keys` checks that the copies agree."""
        return DIFFERENT_DECODERS_SUFFIX in self.token_type

    @classmethod
    def from_config(cls, config: dict) -> "MVLocSpec":
        required = ("hidden_size", "seg_token_idx", "vocab_size", "num_hidden_layers", "num_attention_heads",
                    "intermediate_size")
        missing = [k for k in required if k not in config]
        if missing:
            raise ValueError(f"config.json lacks {', '.join(missing)}")
        token_type = config.get("token_type", "Gen")
        if not isinstance(token_type, str):
            raise ValueError(f"token_type must be a string, got {token_type!r}")
        base = token_type.replace(DIFFERENT_DECODERS_SUFFIX, "")
        if base not in BASE_TOKEN_TYPES:
            raise ValueError(f"token_type {token_type!r} is not one of InteractVLM's "
                             f"({', '.join(BASE_TOKEN_TYPES)}, each optionally with {DIFFERENT_DECODERS_SUFFIX})")
        split_ids = {}
        for key in ("hseg_token_idx", "oseg_token_idx"):
            value = config.get(key)
            if base in SPLITTER_TOKEN_TYPES and not isinstance(value, int):
                raise ValueError(f"token_type {token_type!r} needs an integer {key} in config.json, got {value!r}")
            split_ids[key] = int(value) if base in SPLITTER_TOKEN_TYPES else None
        spec = cls(
            hidden_size=int(config["hidden_size"]),
            mm_hidden_size=int(config.get("mm_hidden_size", 1024)),
            out_dim=int(config.get("out_dim", 256)),
            seg_token_idx=int(config["seg_token_idx"]),
            img_emb_len=int(config.get("img_emb_len", 255)),
            multiview_channels=int(config.get("multiview_channels", 4)),
            multiview_cam_cond=bool(config.get("multiview_cam_cond", False)),
            cam_encoder_type=str(config.get("cam_encoder_type", "vi_v1")),
            mm_vision_select_layer=int(config.get("mm_vision_select_layer", -2)),
            mm_use_im_start_end=bool(config.get("mm_use_im_start_end", True)),
            vision_tower=str(config.get("vision_tower", config.get("mm_vision_tower", "openai/clip-vit-large-patch14"))),
            token_type=token_type,
            **split_ids,
        )
        if spec.multiview_cam_cond and spec.cam_encoder_type not in SUPPORTED_CAMERA_ENCODERS:
            raise ValueError(f"camera encoder {spec.cam_encoder_type!r} is not supported "
                             f"(supported: {', '.join(SUPPORTED_CAMERA_ENCODERS)})")
        return spec


class MVLocModel(nn.Module):
    """The modules of MV-Loc (see the module docstring); inference lives in :mod:`.inference`.

    Args:
        spec: architecture fields; llama_config: a ``transformers.LlamaConfig``;
        sam_config: a ``transformers.SamConfig``; vision_tower: a loaded ``CLIPVisionModel``
        (or None to attach one later).
    """

    def __init__(self, spec: MVLocSpec, llama_config, sam_config, vision_tower=None):
        super().__init__()
        from transformers import LlamaForCausalLM, SamModel

        self.spec = spec
        self.language_model = LlamaForCausalLM(llama_config)
        self.mm_projector = nn.Linear(spec.mm_hidden_size, spec.hidden_size)
        self.text_hidden_fcs = nn.ModuleList([
            nn.Sequential(nn.Linear(spec.hidden_size, spec.hidden_size), nn.ReLU(inplace=True),
                          nn.Linear(spec.hidden_size, spec.out_dim), nn.Dropout(0.0))
        ])
        self.cam_pose_encoder = (
            CameraPoseEncoder(spec.multiview_channels, spec.out_dim) if spec.multiview_cam_cond else None
        )
        self.attention_splitter = AttentionSplitter(spec.out_dim) if spec.has_splitter else None
        self.sam = SamModel(sam_config)
        self.vision_tower = vision_tower
