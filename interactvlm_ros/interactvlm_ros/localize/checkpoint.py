"""Reading InteractVLM checkpoint directories: config, weight shards and the key mapping.

A released InteractVLM checkpoint is a Hugging Face ``save_pretrained`` directory written by
transformers 4.31 (``config.json`` with ``model_type: llava``, tokenizer files, weights as
``pytorch_model*.bin`` or ``model*.safetensors``, sharded with an index JSON). The CLIP vision
tower is not in it (InteractVLM's merge script drops ``vision_tower`` keys); it is loaded
from a separate directory (``openai/clip-vit-large-patch14``).

Key mapping, checkpoint -> :class:`~.model.MVLocModel` (explicit; anything else is an error):

==========================================  ==========================================
checkpoint key                              module key
==========================================  ==========================================
``model.embed_tokens.*``                    ``language_model.model.embed_tokens.*``
``model.layers.{i}.*``                      ``language_model.model.layers.{i}.*``
``model.norm.*``                            ``language_model.model.norm.*``
``lm_head.*``                               ``language_model.lm_head.*``
``model.mm_projector.*``                    ``mm_projector.*``
``model.text_hidden_fcs.0.{0,2}.*``         ``text_hidden_fcs.0.{0,2}.*``
``cam_pose_encoder.*``                      ``cam_pose_encoder.*``
``attention_splitter.*`` (joint models)     ``attention_splitter.*``
``model.visual_model.{image_encoder,        ``sam.*`` through :func:`.sam_keys.sam_state_dict_to_hf`
prompt_encoder,mask_decoder}.*``
``model.visual_model.{human,object}_mask_   checked equal to ``mask_decoder.*``, then dropped
decoder.*`` ("DifDe" token types only)      (see :func:`sam_weights`)
``model.layers.{i}.self_attn.rotary_emb.    ignored (recomputed; old transformers saved it)
inv_freq``
==========================================  ==========================================
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterator, Mapping

import torch

from .sam_keys import hf_state_dict_to_sam, sam_state_dict_to_hf

SAM_PREFIX = "model.visual_model."

#: (checkpoint prefix, module prefix), tried in order; SAM keys are handled separately.
PREFIX_MAP: tuple[tuple[str, str], ...] = (
    ("model.mm_projector.", "mm_projector."),
    ("model.text_hidden_fcs.", "text_hidden_fcs."),
    ("model.", "language_model.model."),
    ("lm_head.", "language_model.lm_head."),
    ("cam_pose_encoder.", "cam_pose_encoder."),
    ("attention_splitter.", "attention_splitter."),
)

#: The decoder copies of InteractVLM's "DifDe" models, relative to :data:`SAM_PREFIX`.
DECODER_COPIES = ("human_mask_decoder.", "object_mask_decoder.")

#: Checkpoint keys that carry no weights and are dropped.
IGNORED_KEYS = re.compile(r"^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$")

#: File names of the weights, in the order they are looked for.
WEIGHT_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


#: The keys of a released checkpoint's ``config.json`` (transformers 4.31 ``save_pretrained`` of
#: ``InteractVLMForCausalLM`` after InteractVLM's merge script): LLaMA / PretrainedConfig,
#: LLaVA's ``mm_*`` and InteractVLM's own. Read from InteractVLM's ``model/InteractVLM.py``,
#: ``train.py``, ``merge_lora_weights_and_save_hf_model.py`` and LLaVA's ``llava_arch.py``.
RELEASE_CONFIG_KEYS: tuple[str, ...] = (
    # transformers 4.31 / LlamaConfig
    "_name_or_path", "architectures", "bos_token_id", "eos_token_id", "pad_token_id", "hidden_act", "hidden_size",
    "initializer_range", "intermediate_size", "max_position_embeddings", "model_type", "num_attention_heads",
    "num_hidden_layers", "num_key_value_heads", "pretraining_tp", "rms_norm_eps", "rope_scaling",
    "tie_word_embeddings", "torch_dtype", "transformers_version", "use_cache", "vocab_size",
    # LLaVA (llava_arch.initialize_vision_modules and InteractVLM's defaults)
    "vision_tower", "mm_vision_tower", "mm_hidden_size", "mm_vision_select_layer", "mm_vision_select_feature",
    "use_mm_proj", "mm_use_im_start_end", "mm_use_im_patch_token", "image_aspect_ratio", "image_grid_pinpoints",
    "tune_mm_mlp_adapter", "freeze_mm_mlp_adapter", "pretrain_mm_mlp_adapter", "mm_resampler_type",
    "tune_mm_vision_resampler",
    # InteractVLM
    "train_mask_decoder", "out_dim", "use_fusion", "use_uncertainty", "img_emb_len", "seg_token_idx",
    "hseg_token_idx", "oseg_token_idx", "token_type", "hC_sam_view_type", "oC_sam_view_type", "hC_loss_weight",
    "oC_loss_weight", "hC_question_type", "oC_question_type", "multiview_channels", "multiview_cam_cond",
    "cam_encoder_type",
)

#: The keys without which InteractVLM's own ``InteractVLMForCausalLM.from_pretrained(dir)``
#: fails (AttributeError / KeyError in its ``__init__``, ``llava_arch`` or the CLIP encoder).
REFERENCE_REQUIRED_CONFIG_KEYS: tuple[str, ...] = (
    "vision_tower", "hC_sam_view_type", "oC_sam_view_type", "hC_loss_weight", "oC_loss_weight", "seg_token_idx",
    "hseg_token_idx", "oseg_token_idx", "token_type", "img_emb_len", "multiview_channels", "multiview_cam_cond",
    "use_fusion", "use_uncertainty", "mm_vision_select_layer", "mm_hidden_size", "train_mask_decoder", "out_dim",
    "cam_encoder_type",
)


#: Marker interactvlm_ros writes into config.json of randomly initialised checkpoints.
RANDOM_WEIGHTS_KEY = "interactvlm_ros_random_weights"


class CheckpointError(ValueError):
    """A checkpoint directory that cannot be loaded; the message says exactly why."""


def read_config(checkpoint_dir: str | Path) -> dict:
    """``config.json`` of a checkpoint directory as a dict.

    Raises:
        FileNotFoundError: the directory or its config.json is missing.
    """
    path = Path(checkpoint_dir) / "config.json"
    if not Path(checkpoint_dir).is_dir():
        raise FileNotFoundError(f"checkpoint directory not found: {checkpoint_dir}")
    if not path.is_file():
        raise FileNotFoundError(f"{checkpoint_dir} has no config.json: not a Hugging Face checkpoint directory")
    return json.loads(path.read_text())


def weight_files(checkpoint_dir: str | Path) -> list[Path]:
    """The weight files of a checkpoint, from its index JSON when sharded.

    Raises:
        FileNotFoundError: no weights, or a shard named by the index is missing.
    """
    directory = Path(checkpoint_dir)
    for index_name in WEIGHT_INDEXES:
        index = directory / index_name
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            missing = [s for s in shards if not (directory / s).is_file()]
            if missing:
                raise FileNotFoundError(f"{index} names missing shards: {', '.join(missing)}")
            return [directory / s for s in shards]
    for name in WEIGHT_FILES:
        if (directory / name).is_file():
            return [directory / name]
    raise FileNotFoundError(
        f"no weights in {directory}: expected one of {', '.join(WEIGHT_INDEXES + WEIGHT_FILES)}"
    )


def iter_tensors(path: Path) -> Iterator[tuple[str, torch.Tensor]]:
    """(key, tensor) pairs of one weight file (.safetensors or a torch .bin, loaded safely)."""
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            for key in handle.keys():
                yield key, handle.get_tensor(key)
    else:
        yield from torch.load(path, map_location="cpu", weights_only=True, mmap=True).items()


def read_state_dict(checkpoint_dir: str | Path) -> dict[str, torch.Tensor]:
    """Every tensor of a checkpoint, under its checkpoint key.

    Raises:
        CheckpointError: a key present in two shards.
    """
    state: dict[str, torch.Tensor] = {}
    for path in weight_files(checkpoint_dir):
        for key, tensor in iter_tensors(path):
            if key in state:
                raise CheckpointError(f"key {key} appears in more than one weight file")
            state[key] = tensor
    return state


def sam_weights(state: Mapping[str, torch.Tensor], different_decoders: bool = False) -> dict[str, torch.Tensor]:
    """The SAM part of a checkpoint in segment_anything's names (``SAM_PREFIX`` removed).

    For "DifDe" token types (``different_decoders``) the checkpoint may also hold
    ``human_mask_decoder.*`` and ``object_mask_decoder.*``. InteractVLM's ``ModifiedSAM``
    registers both as the very module ``mask_decoder`` is, at every load (only training calls
    ``initialize_separate_decoders``), so its inference decodes with ONE set of weights; its
    merge script loads the trained weights into that shared module and saves it under all three
    names, i.e. identical copies. Those copies are dropped here after checking that they equal
    ``mask_decoder.*``: if they differ, which set InteractVLM would end up with depends on
    the order in which its loader happens to read the keys, so there is no defined model.

    Raises:
        CheckpointError: decoder copies without a "DifDe" token type are left in place (and then
            rejected by the SAM mapping as unmapped keys); copies that differ from
            ``mask_decoder.*`` or lack one of its keys.
    """
    sam = {k[len(SAM_PREFIX):]: v for k, v in state.items() if k.startswith(SAM_PREFIX)}
    if not different_decoders:
        return sam
    for copy in DECODER_COPIES:
        keys = [k for k in sam if k.startswith(copy)]
        if not keys:
            continue
        differing = sorted(k for k in keys if not torch.equal(
            sam[k], sam.get("mask_decoder." + k[len(copy):], torch.empty(0))))
        if differing:
            raise CheckpointError(
                f"{SAM_PREFIX}{copy}* differs from {SAM_PREFIX}mask_decoder.* ({len(differing)} tensors, e.g. "
                f"{differing[0]}): InteractVLM shares one decoder module under the three names at load time, so "
                "which weights it would use depends on the order its loader reads the keys; no defined model")
        for key in keys:
            del sam[key]
    return sam


def map_checkpoint_keys(state: Mapping[str, torch.Tensor], different_decoders: bool = False
                        ) -> dict[str, torch.Tensor]:
    """Checkpoint keys -> module keys (table in the module docstring).

    Args:
        state: checkpoint key -> tensor; different_decoders: the model's token type has
            "DifDe" (see :func:`sam_weights`).

    Raises:
        CheckpointError: keys no rule maps (listed), or SAM keys the SAM mapping rejects.
    """
    mapped: dict[str, torch.Tensor] = {}
    sam = sam_weights(state, different_decoders)
    unmapped = []
    for key, tensor in state.items():
        if key.startswith(SAM_PREFIX) or IGNORED_KEYS.match(key):
            continue
        renamed = _rename(key, PREFIX_MAP)
        if renamed is None:
            unmapped.append(key)
        else:
            mapped[renamed] = tensor
    if unmapped:
        raise CheckpointError(f"{len(unmapped)} checkpoint keys are not part of MV-Loc: {', '.join(sorted(unmapped)[:20])}")
    if not sam:
        raise CheckpointError(f"the checkpoint has no SAM weights (keys starting with {SAM_PREFIX})")
    try:
        mapped.update({f"sam.{k}": v for k, v in sam_state_dict_to_hf(sam).items()})
    except ValueError as error:
        raise CheckpointError(f"SAM weights: {error}") from error
    return mapped


def _rename(key: str, prefixes) -> str | None:
    """``key`` with the first matching (old prefix, new prefix) replaced, or None."""
    for old, new in prefixes:
        if key.startswith(old):
            return new + key[len(old):]
    return None


def unmap_module_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of :func:`map_checkpoint_keys` (module keys -> released checkpoint keys); the
    vision tower is left out, as InteractVLM's checkpoints leave it out."""
    out: dict[str, torch.Tensor] = {}
    sam = {}
    for key, tensor in state.items():
        if key.startswith("vision_tower."):
            continue
        if key.startswith("sam."):
            sam[key[len("sam."):]] = tensor
            continue
        renamed = _rename(key, [(target, source) for source, target in PREFIX_MAP])
        if renamed is None:
            raise CheckpointError(f"module key {key} has no checkpoint name")
        out[renamed] = tensor
    out.update({SAM_PREFIX + k: v for k, v in hf_state_dict_to_sam(sam).items()})
    return out
