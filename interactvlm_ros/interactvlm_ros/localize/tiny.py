"""Tiny, randomly initialised MV-Loc checkpoints in the released format (for tests and the demo).

``write_tiny_checkpoint(DIR)`` writes what an InteractVLM release directory holds, only
small: ``config.json`` (LlavaConfig fields, ``model_type: llava``), tokenizer files,
weights under the released key names sharded into ``pytorch_model-0000x-of-00002.bin`` with
``pytorch_model.bin.index.json`` (or safetensors), and beside it, in ``DIR/clip``, a tiny CLIP
vision tower with the 224 px ``preprocessor_config.json`` of ``openai/clip-vit-large-patch14``.
Loading it goes through exactly the code that loads a real checkpoint.

The weights are random (fixed seed), stored in bfloat16 like InteractVLM's bf16 training, with
arrangements for plumbing: every token embedding carries a constant in channel 0 and the row
of ``lm_head`` of the variant's mask token (``[SEG]``; ``[HSEG]`` for the joint model) reads
that channel, so the tiny model answers that token at once and the mask path always runs,
whatever the question: a random model cannot answer [HSEG] to the human question and [OSEG]
to the object question, so tests that need [OSEG] script the answer with
``MVLoc.generate(..., logits_processor=...)``. The joint model's attention splitter gets a
larger input projection (:data:`SPLITTER_INPUT_SCALE`) so that its two branches differ
measurably, and SAM's image encoder gets weights of a usual scale (transformers' default
initialisation makes its output ~1e-20 for any image). Outputs are meaningless and every
result built from them reports ``weights_are_random = true`` (config.json carries
``interactvlm_ros_random_weights``). The tokenizer is in LLaMA's format (a SentencePiece model
trained here on the prompts and answers, 400 pieces, plus InteractVLM's added tokens).

``variant`` picks which released model's layout and config values are written
(:data:`VARIANTS`): 3D human contact (the default), scene contact, object affordance, the joint
human-object model and 2D human contact.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch


from .checkpoint import RANDOM_WEIGHTS_KEY, unmap_module_keys
from .variants import VARIANTS
from .model import MVLocModel, MVLocSpec
from .prompts import (
    AFFORDANCES,
    HSEG_TOKEN,
    HUMAN_CONTACT_PROMPT,
    IM_END_TOKEN,
    IM_START_TOKEN,
    OBJECT_AFFORDANCE_PROMPT,
    OSEG_TOKEN,
    SEG_TOKEN,
    SYSTEM_PROMPT,
)
from .tokenizer import LlamaSlowTokenizer
from ..geometry.body_parts import BODY_PARTS

#: Sizes of the tiny model: a 2-layer LLaMA of width 64, a 2-layer CLIP ViT of width 32 at
#: 224 px / patch 14 (256 tokens, as ViT-L/14), a 2-block SAM ViT of width 32 at 256 px (renders
#: are resized to SAM's input size; ``sam_image_size=1024`` gives the released models' input).
TINY_LLAMA = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=4, max_position_embeddings=1024, rms_norm_eps=1e-5)
TINY_CLIP = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                 image_size=224, patch_size=14, projection_dim=32)
TINY_SAM_VISION = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, global_attn_indexes=[1],
                       window_size=14, mlp_dim=64, output_channels=256, image_size=256, patch_size=16)
#: The mask decoder keeps SAM's width 256 (the [SEG] prompt size) with a narrow MLP.
TINY_SAM_DECODER = dict(mlp_dim=64, iou_head_hidden_dim=32, layer_norm_eps=1e-5)

#: Size presets: "tiny" (a few MB, tests and the demo) and "small" (~200 MB in bf16, for
#: benchmarks: LLaMA width 768 x 6 layers with LLaMA's 32000-token vocabulary, CLIP width 256,
#: SAM ViT width 256 x 4 blocks and SAM's full mask decoder).
PRESETS = {
    "tiny": (TINY_LLAMA, TINY_CLIP, TINY_SAM_VISION, TINY_SAM_DECODER, None),
    "small": (dict(hidden_size=768, intermediate_size=2048, num_hidden_layers=6, num_attention_heads=12,
                   num_key_value_heads=12, max_position_embeddings=2048, rms_norm_eps=1e-5),
              dict(TINY_CLIP, hidden_size=256, intermediate_size=1024, num_hidden_layers=4, num_attention_heads=4),
              dict(TINY_SAM_VISION, hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                   global_attn_indexes=[1, 3], mlp_dim=1024, image_size=1024),
              dict(layer_norm_eps=1e-5), 32000),
}

#: Plumbing arrangement of the joint variant: factor on the attention splitter's input projection
#: (see :func:`write_tiny_checkpoint`).
SPLITTER_INPUT_SCALE = 64.0

#: openai/clip-vit-large-patch14's preprocessing (shortest side 224, bicubic, centre crop).
CLIP_PREPROCESSOR = {
    "crop_size": {"height": 224, "width": 224}, "do_center_crop": True, "do_normalize": True,
    "do_resize": True, "do_rescale": True, "rescale_factor": 1 / 255, "do_convert_rgb": True,
    "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711],
    "resample": 3, "size": {"shortest_edge": 224}, "image_processor_type": "CLIPImageProcessor",
}




def _write_tokenizer(directory: Path, extra_tokens: tuple[str, ...] = ()) -> None:
    """A LLaMA-format tokenizer, as a released checkpoint ships it: a SentencePiece BPE model
    (``tokenizer.model``; <unk>=0, <s>=1, </s>=2, byte fallback) trained here on the prompt
    and answer text, ``tokenizer_config.json`` naming ``LlamaTokenizer``, and the tokens
    InteractVLM adds: ``[SEG]`` (not special), ``<im_start>``, ``<im_end>`` (special), then
    ``extra_tokens`` (the joint model's [HSEG], [OSEG]; not special, as ``add_tokens`` adds them)."""
    import io

    import sentencepiece

    corpus = [SYSTEM_PROMPT, HUMAN_CONTACT_PROMPT, OBJECT_AFFORDANCE_PROMPT, "USER: ASSISTANT:",
              "The contacting body parts are " + ", ".join(BODY_PARTS) + ", and the contact region is",
              "The affordance type is " + ", ".join(AFFORDANCES) + ", and the contact region is",
              "cup bottle chair camera tripod helmet person ball book laptop bag"] * 8
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus), model_writer=model, vocab_size=400, model_type="bpe", unk_id=0, bos_id=1,
        eos_id=2, pad_id=-1, byte_fallback=True, character_coverage=1.0, num_threads=1, minloglevel=2)
    (directory / "tokenizer.model").write_bytes(model.getvalue())
    # The files transformers 4.31's save_pretrained writes for InteractVLM's tokenizer
    # (LlamaTokenizer, pad = unk, [SEG] then <im_start>, <im_end> added with add_tokens).
    added = {token: 400 + i for i, token in enumerate((SEG_TOKEN, IM_START_TOKEN, IM_END_TOKEN) + extra_tokens)}
    (directory / "added_tokens.json").write_text(json.dumps(added, indent=2, sort_keys=True))

    def token(content: str, marked: bool) -> dict:
        return {**({"__type": "AddedToken"} if marked else {}), "content": content, "lstrip": False,
                "normalized": True, "rstrip": False, "single_word": False}

    special = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
    (directory / "special_tokens_map.json").write_text(json.dumps(
        {**{k: token(v, False) for k, v in special.items()}, "pad_token": "<unk>"}, indent=2, sort_keys=True))
    (directory / "tokenizer_config.json").write_text(json.dumps(
        {"add_bos_token": True, "add_eos_token": False, "clean_up_tokenization_spaces": False, "legacy": True,
         "model_max_length": 512, "pad_token": None, "padding_side": "right", "sp_model_kwargs": {},
         "tokenizer_class": "LlamaTokenizer", **{k: token(v, True) for k, v in special.items()}},
        indent=2, sort_keys=True))


def write_tiny_checkpoint(directory: str | os.PathLike, seed: int = 0, weight_format: str = "bin",
                          camera_conditioned: bool | None = None, shards: int = 2, emit_seg: bool = True,
                          preset: str = "tiny", sam_image_size: int | None = None, variant: str = "hcontact") -> Path:
    """Write a tiny random MV-Loc checkpoint and its CLIP tower (``directory/clip``).

    Args:
        directory: created if needed; existing files of the same names are overwritten.
        seed: torch seed of the random initialisation (same seed, same bytes of weights).
        weight_format: "bin" (torch, as the released checkpoints) or "safetensors".
        camera_conditioned: write the vi_v1 camera encoder (``multiview_cam_cond``); None: the
            variant's value (true for the 3D models, false for "2d-hcontact").
        shards: number of weight files (an index JSON is written when > 1).
        emit_seg: apply the plumbing arrangement that makes the model answer its mask token
            at once (False: all weights plainly random).
        preset: "tiny" or "small" (see :data:`PRESETS`).
        sam_image_size: SAM's input size (px, a multiple of 16); None: the preset's (tiny 256,
            small 1024).
        variant: a key of :data:`VARIANTS` ("hcontact", "hcontact-wscene", "oafford",
            "hcontact-ocontact", "2d-hcontact").

    Returns:
        The checkpoint directory.

    Raises:
        ValueError: unknown preset, variant or weight format.
    """
    from transformers import CLIPVisionConfig, CLIPVisionModel, LlamaConfig, SamConfig
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()

    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    release = VARIANTS[variant]
    llama_sizes, clip_sizes, sam_vision, sam_decoder, vocab_size = PRESETS[preset]
    if sam_image_size is not None:
        sam_vision = dict(sam_vision, image_size=int(sam_image_size))
    if weight_format not in ("bin", "safetensors"):
        raise ValueError(f"weight_format must be 'bin' or 'safetensors', got {weight_format!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    _write_tokenizer(directory, release.extra_tokens)
    tokenizer = LlamaSlowTokenizer.from_pretrained(directory)
    seg = tokenizer.convert_tokens_to_ids(SEG_TOKEN)
    split_ids = {"hseg_token_idx": None, "oseg_token_idx": None}
    if release.extra_tokens:
        split_ids = {"hseg_token_idx": tokenizer.convert_tokens_to_ids(HSEG_TOKEN),
                     "oseg_token_idx": tokenizer.convert_tokens_to_ids(OSEG_TOKEN)}
    # Every key of a released config.json (checkpoint.RELEASE_CONFIG_KEYS), with the values
    # InteractVLM's training script gives its 3D human-contact model, then the variant's, so that
    # InteractVLM's own InteractVLMForCausalLM can read this config too; the project's keys last.
    clip_name = "openai/clip-vit-large-patch14"
    config = {
        "_name_or_path": "interactvlm_ros/tiny-random", "architectures": ["InteractVLMForCausalLM"],
        "model_type": "llava", **llama_sizes, "vocab_size": max(len(tokenizer), vocab_size or 0), "hidden_act": "silu",
        "initializer_range": 0.02, "pretraining_tp": 1, "rope_scaling": None, "tie_word_embeddings": False,
        "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id, "pad_token_id": 0,
        "torch_dtype": "bfloat16", "transformers_version": "4.31.0", "use_cache": False,
        "vision_tower": clip_name, "mm_vision_tower": clip_name, "mm_hidden_size": clip_sizes["hidden_size"],
        "mm_vision_select_layer": -2, "mm_vision_select_feature": "patch", "use_mm_proj": True,
        "mm_use_im_start_end": True, "mm_use_im_patch_token": False, "image_aspect_ratio": "square",
        "image_grid_pinpoints": None, "tune_mm_mlp_adapter": False, "freeze_mm_mlp_adapter": True,
        "pretrain_mm_mlp_adapter": None, "mm_resampler_type": None, "tune_mm_vision_resampler": False,
        "train_mask_decoder": True, "out_dim": 256, "use_fusion": False, "use_uncertainty": False,
        "img_emb_len": 255, "seg_token_idx": seg, **split_ids, "token_type": "Gen",
        "hC_sam_view_type": "4MV-Z_Vitru", "oC_sam_view_type": "4MV-Z_HM", "hC_loss_weight": 3.0,
        "oC_loss_weight": 0.0, "hC_question_type": "parts", "oC_question_type": "afford_obj",
        "multiview_channels": 4, "multiview_cam_cond": True, "cam_encoder_type": "vi_v1",
        **release.config,
        RANDOM_WEIGHTS_KEY: True, "interactvlm_ros_tiny_seed": seed, "interactvlm_ros_preset": preset,
        "interactvlm_ros_variant": variant,
    }
    if camera_conditioned is not None:
        config["multiview_cam_cond"] = bool(camera_conditioned)
    spec = MVLocSpec.from_config(config)
    llama = LlamaConfig(**{k: v for k, v in config.items() if k in llama_sizes or k in (
        "vocab_size", "hidden_act", "tie_word_embeddings", "bos_token_id", "eos_token_id", "pad_token_id")})
    sam = SamConfig(vision_config=sam_vision, mask_decoder_config=sam_decoder)
    model = MVLocModel(spec, llama, sam)
    _randomise_sam_image_encoder(model.sam.vision_encoder, seed)
    if emit_seg:
        with torch.no_grad():  # the plumbing arrangement described in the module docstring
            model.language_model.get_input_embeddings().weight[:, 0] = 4.0
            model.language_model.lm_head.weight[tokenizer.convert_tokens_to_ids(release.emit), 0] = 8.0
            if model.attention_splitter is not None:
                # Random weights of the usual scale give attention logits of ~1e-3 over the
                # views: uniform attention, under which the human and object branches coincide
                # and a swapped branch would go unnoticed. A larger input projection makes the
                # attention depend on the view (branches differ by ~1e-2 relative).
                model.attention_splitter.input_proj.weight.mul_(SPLITTER_INPUT_SCALE)
                model.attention_splitter.input_proj.bias.mul_(SPLITTER_INPUT_SCALE)
    state = unmap_module_keys({k: v.to(torch.bfloat16).contiguous() for k, v in model.state_dict().items()})
    _save_weights(directory, state, weight_format, shards)
    (directory / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))

    clip = CLIPVisionModel(CLIPVisionConfig(**clip_sizes))
    clip.save_pretrained(directory / "clip", safe_serialization=True)
    (directory / "clip" / "preprocessor_config.json").write_text(json.dumps(CLIP_PREPROCESSOR, indent=2))
    return directory


def _randomise_sam_image_encoder(encoder: torch.nn.Module, seed: int) -> None:
    """Give SAM's image encoder weights that make its output depend on the image.

    transformers initialises ``SamVisionEncoder`` with ``SamVisionConfig.initializer_range``,
    1e-10 by default, and zeros / ones for biases, positional tables and LayerNorms, so a random
    encoder outputs ~1e-20 whatever the image, and a wrong resize, padding or normalisation of
    the input would change no mask. Here, from a generator of its own (the other weights keep
    their values): matrices and convolution kernels N(0, 1/fan_in), biases, ``pos_embed`` and
    ``rel_pos_*`` N(0, 0.1^2), LayerNorm weights 1 + N(0, 0.1^2)."""
    generator = torch.Generator().manual_seed(seed + 7919)
    with torch.no_grad():
        for name, tensor in encoder.named_parameters():
            noise = torch.randn(tensor.shape, generator=generator)
            if "layer_norm" in name and name.endswith("weight"):
                tensor.copy_(1.0 + 0.1 * noise)
            elif tensor.dim() >= 2 and name.endswith("weight"):
                tensor.copy_(noise / tensor[0].numel() ** 0.5)
            else:
                tensor.copy_(0.1 * noise)


def _save_weights(directory: Path, state: dict, weight_format: str, shards: int) -> None:
    keys = sorted(state)
    groups = [keys[i::shards] for i in range(shards)] if shards > 1 else [keys]
    extension = "bin" if weight_format == "bin" else "safetensors"
    stem = "pytorch_model" if weight_format == "bin" else "model"
    weight_map = {}
    for number, group in enumerate(groups, start=1):
        name = f"{stem}-{number:05d}-of-{len(groups):05d}.{extension}" if len(groups) > 1 else f"{stem}.{extension}"
        part = {k: state[k] for k in group}
        if weight_format == "bin":
            torch.save(part, directory / name)
        else:
            from safetensors.torch import save_file

            save_file(part, str(directory / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(group, name))
    if len(groups) > 1:
        total = sum(t.numel() * t.element_size() for t in state.values())
        (directory / f"{stem}.{extension}.index.json").write_text(
            json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2, sort_keys=True))
