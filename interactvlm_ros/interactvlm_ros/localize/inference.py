"""Loading MV-Loc from an InteractVLM checkpoint and running it.

Inference for one (image, object) pair, as InteractVLM's ``evaluate`` does it, with two
shortcuts that do not change the result:

* generation is greedy with a KV cache and stops as soon as ``[SEG]`` is produced (or at EOS
  or ``max_new_tokens``); the hidden state used for the masks is the last-layer state of the
  position that *predicted* ``[SEG]`` (LISA's one-token offset, ``img_emb_len`` = 255), which
  a cached step already has;
* the SAM image embeddings of the renders (constant for the body, per mesh for objects) are
  computed once by :meth:`MVLoc.encode_views` and reused for every detection and frame.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..geometry.camera import ViewSpec
from .checkpoint import SAM_PREFIX, CheckpointError, map_checkpoint_keys, read_config, read_state_dict
from .model import MVLocModel, MVLocSpec, normalized_camera
from .placement import (balanced_device_map, block_bytes, bytes_per_device, check_device_memory, check_devices_exist,
                        describe, explicit_device_map, gpu_budgets, model_blocks)
from .prompts import IMAGE_TOKEN_INDEX, IM_END_TOKEN, IM_START_TOKEN, SEG_TOKEN, conversation
from .sam_keys import hf_config_from_sam_state_dict
from .tokenizer import LlamaSlowTokenizer

#: SAM's pixel normalisation (segment_anything ``Sam.pixel_mean`` / ``pixel_std``), 0-255 RGB.
SAM_PIXEL_MEAN = (123.675, 116.28, 103.53)
SAM_PIXEL_STD = (58.395, 57.12, 57.375)

#: Generation limit per answer: InteractVLM's (``run_demo.py``, ``max_new_tokens=512``).
MAX_NEW_TOKENS = 512

#: Longest question accepted, characters (InteractVLM's longest template + a 64-character label
#: is under 300).
MAX_QUESTION_LENGTH = 1024

#: Marker InteractVLM-ros writes into config.json of randomly initialised checkpoints.
RANDOM_WEIGHTS_KEY = "interactvlm_ros_random_weights"

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}

#: LlamaConfig fields copied from config.json.
_LLAMA_FIELDS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                 "num_key_value_heads", "max_position_embeddings", "rms_norm_eps", "rope_theta", "rope_scaling",
                 "hidden_act", "bos_token_id", "eos_token_id", "pad_token_id", "tie_word_embeddings",
                 "attention_bias", "mlp_bias", "head_dim")


@dataclass
class Answer:
    """One generated answer.

    Attributes:
        text: the generated text (special tokens kept, e.g. ending in "[SEG]"), decoded as
            transformers 4.31 decodes it (see :mod:`.tokenizer`).
        token_ids: the generated token ids.
        seg_hidden: (H,) last-layer hidden state that predicted [SEG], or None without [SEG].
        stop_reason: why generation ended: "seg" (the [SEG] token), "eos" (end of sequence
            without [SEG]) or "max_new_tokens" (the limit reached without [SEG]).
    """

    text: str
    token_ids: list[int]
    seg_hidden: torch.Tensor | None
    stop_reason: str = "seg"


class MVLoc:
    """A loaded MV-Loc model with its tokenizer and CLIP preprocessing.

    Attributes:
        model: the :class:`MVLocModel` (eval mode) in ``dtype``, its blocks on the devices of
            ``device_map``.
        device_map: block name -> device (see :mod:`.placement`), read from the loaded model.
        spec: its architecture fields; config: the raw config.json.
        model_id: the checkpoint directory's name.
        weights_are_random: True for checkpoints written by ``make-tiny-checkpoint``.
    """

    def __init__(self, model: MVLocModel, tokenizer, image_processor, config: dict, model_id: str):
        self.model = model
        self.spec = model.spec
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.config = config
        self.model_id = model_id
        self.weights_are_random = bool(config.get(RANDOM_WEIGHTS_KEY, False))
        self.dtype = next(model.sam.parameters()).dtype  # SAM is never quantised
        self.device_map = {block: str(_device_of(model.get_submodule(block))) for block in model_blocks(model)}
        if tokenizer.convert_tokens_to_ids(SEG_TOKEN) != self.spec.seg_token_idx:
            raise CheckpointError(
                f"tokenizer id of {SEG_TOKEN} is {tokenizer.convert_tokens_to_ids(SEG_TOKEN)} but config.json "
                f"says seg_token_idx = {self.spec.seg_token_idx}")
        self.sam_image_size = int(model.sam.config.vision_config.image_size)

    @property
    def placement(self) -> str:
        """Where the blocks are, e.g. "cuda:0" or "cuda:0: vision_tower..language_model.model.layers.19;
        cuda:1: language_model.model.layers.20..sam"."""
        return describe(self.device_map)

    # ----------------------------------------------------------------------------- image side
    @torch.inference_mode()
    def encode_image(self, rgb: np.ndarray) -> torch.Tensor:
        """CLIP features of an RGB photo, projected into the language model.

        Args:
            rgb: (H, W, 3) uint8 RGB.

        Returns:
            (1, N, H) tensor: N = CLIP patch tokens (256 for ViT-L/14 at 224), H = LLM width.
        """
        pixels = self.image_processor(images=rgb, return_tensors="pt")["pixel_values"]
        pixels = pixels.to(_device_of(self.model.vision_tower), self.dtype)
        out = self.model.vision_tower(pixels, output_hidden_states=True)
        features = out.hidden_states[self.spec.mm_vision_select_layer][:, 1:]
        return self.model.mm_projector(features.to(_device_of(self.model.mm_projector)))

    @torch.inference_mode()
    def encode_views(self, images: np.ndarray) -> torch.Tensor:
        """SAM image embeddings of rendered views.

        Args:
            images: (V, S, S, 3) uint8 RGB renders; resized to SAM's input size (longest side)
                when S differs, normalised with SAM's pixel mean/std, zero-padded.

        Returns:
            (V, C, h, w) embeddings (C = 256, h = w = 64 for ViT-H at 1024).
        """
        pixels = torch.as_tensor(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
        size = self.sam_image_size
        if pixels.shape[-1] != size or pixels.shape[-2] != size:
            scale = size / max(pixels.shape[-2:])
            new = (round(pixels.shape[-2] * scale), round(pixels.shape[-1] * scale))
            pixels = F.interpolate(pixels, size=new, mode="bilinear", align_corners=False, antialias=True)
            pixels = F.pad(pixels, (0, size - new[1], 0, size - new[0]))
        mean = torch.tensor(SAM_PIXEL_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(SAM_PIXEL_STD).view(1, 3, 1, 1)
        pixels = ((pixels - mean) / std).to(_device_of(self.model.sam), self.dtype)
        return torch.cat([self.model.sam.get_image_embeddings(pixels[i:i + 1]) for i in range(len(pixels))])

    # ------------------------------------------------------------------------------ text side
    def prompt_ids(self, question: str) -> list[int]:
        """Token ids of the llava_v1 prompt with IMAGE_TOKEN_INDEX where the image goes, as
        InteractVLM builds them (transformers 4.31's slow LlamaTokenizer and LLaVA's
        ``tokenizer_image_token``; see :mod:`.tokenizer`).

        Raises:
            ValueError: an empty question or one longer than :data:`MAX_QUESTION_LENGTH`
                characters (bounded before tokenisation: labels are validated earlier, this
                is the last guard against a prompt that would stall the model).
        """
        if len(question) > MAX_QUESTION_LENGTH:
            raise ValueError(f"question of {len(question)} characters (limit {MAX_QUESTION_LENGTH})")
        return self.tokenizer.image_prompt_ids(conversation(question, self.spec.mm_use_im_start_end))

    @torch.inference_mode()
    def answer(self, image_features: torch.Tensor, question: str, max_new_tokens: int = MAX_NEW_TOKENS) -> Answer:
        """Greedy answer to ``question`` about the image, stopping at [SEG], EOS or
        ``max_new_tokens`` (default 512, InteractVLM's; generation normally stops at [SEG]
        long before, so the limit costs nothing then).

        Args:
            image_features: (1, N, H) from :meth:`encode_image`; question: the user turn.
            max_new_tokens: most tokens generated (>= 1).

        Raises:
            ValueError: max_new_tokens < 1.
        """
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
        ids = self.prompt_ids(question)
        position = ids.index(IMAGE_TOKEN_INDEX)
        embed = self.model.language_model.get_input_embeddings()
        embed_device = _device_of(embed)
        text_ids = torch.tensor([i for i in ids if i != IMAGE_TOKEN_INDEX], device=embed_device)[None]
        text = embed(text_ids)
        image_features = image_features.to(text.device, text.dtype)
        inputs = torch.cat([text[:, :position], image_features, text[:, position:]], dim=1)
        lm = self.model.language_model
        out = lm(inputs_embeds=inputs, use_cache=True, output_hidden_states=True)
        generated: list[int] = []
        seg_hidden = None
        stop_reason = "max_new_tokens"
        eos = self.tokenizer.eos_token_id
        for step in range(max_new_tokens):
            next_id = int(out.logits[0, -1].argmax())
            generated.append(next_id)
            if next_id == self.spec.seg_token_idx:
                seg_hidden = out.hidden_states[-1][0, -1]
                stop_reason = "seg"
                break
            if next_id == eos:
                stop_reason = "eos"
                break
            if step + 1 < max_new_tokens:
                out = lm(input_ids=torch.tensor([[next_id]], device=embed_device),
                         past_key_values=out.past_key_values, use_cache=True, output_hidden_states=True)
        return Answer(self.tokenizer.decode(generated, skip_special_tokens=False), generated, seg_hidden, stop_reason)

    # ------------------------------------------------------------------------------ mask side
    @torch.inference_mode()
    def view_prompts(self, seg_hidden: torch.Tensor, cameras: list[list[float]]) -> torch.Tensor:
        """(V, 256) per-view prompt embeddings: text_hidden_fcs([SEG] state), multiplied by the
        camera encoding of each view when the model is camera-conditioned."""
        head = self.model.text_hidden_fcs[0]
        embedding = head(seg_hidden[None].to(_device_of(head)))  # (1, 256)
        num_views = len(cameras)
        embedding = embedding.expand(num_views, -1)
        encoder = self.model.cam_pose_encoder
        if encoder is not None:
            cams = torch.tensor(cameras, device=_device_of(encoder), dtype=embedding.dtype)
            embedding = embedding * encoder(cams).to(embedding.device)
        return embedding

    @torch.inference_mode()
    def decode_masks(self, prompts: torch.Tensor, view_embeddings: torch.Tensor, output_size: int,
                     as_tensor: bool = False):
        """Mask logits per view.

        Each view is decoded with all V view-conditioned embeddings as its sparse prompt (what
        InteractVLM's batch-1 token set broadcast over the V image embeddings amounts to) and
        the no-mask dense embedding; the single low-resolution mask (``multimask_output=False``)
        is upsampled bilinearly to SAM's input size and then to ``output_size``.

        Args:
            prompts: (V, 256) from :meth:`view_prompts`; view_embeddings: (V, C, h, w).

        Returns:
            (V, output_size, output_size) float32 logits: numpy, or a torch tensor on SAM's
            device when ``as_tensor`` (lifting can then stay on that device).
        """
        sam = self.model.sam
        device = _device_of(sam)
        num_views = prompts.shape[0]
        if view_embeddings.shape[0] != num_views:
            raise ValueError(f"{num_views} prompts for {view_embeddings.shape[0]} views")
        _, channels, height, width = view_embeddings.shape
        sparse = prompts[None, None].expand(num_views, 1, num_views, channels)
        dense = sam.prompt_encoder.no_mask_embed.weight.reshape(1, channels, 1, 1).expand(num_views, channels,
                                                                                        height, width)
        positional = sam.get_image_wide_positional_embeddings().expand(num_views, -1, -1, -1)
        low_res, _ = sam.mask_decoder(
            image_embeddings=view_embeddings.to(device, self.dtype),
            image_positional_embeddings=positional.to(device, self.dtype),
            sparse_prompt_embeddings=sparse.to(device, self.dtype),
            dense_prompt_embeddings=dense.to(device, self.dtype),
            multimask_output=False,
        )[:2]
        masks = low_res[:, 0, :1].float()  # (V, 1, h', w')
        masks = F.interpolate(masks, size=(self.sam_image_size, self.sam_image_size), mode="bilinear",
                              align_corners=False)
        if output_size != self.sam_image_size:
            masks = F.interpolate(masks, size=(output_size, output_size), mode="bilinear", align_corners=False)
        return masks[:, 0] if as_tensor else masks[:, 0].cpu().numpy()

    def cameras(self, views: list[ViewSpec], dist: float | None = None) -> list[list[float]]:
        """Normalised camera-conditioning inputs of the views (see ``normalized_camera``)."""
        return [normalized_camera(v, dist) for v in views]


def _device_of(module: torch.nn.Module) -> torch.device:
    """Device of a module's first parameter (or buffer)."""
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")


def _resolve_clip_dir(clip_dir, spec: MVLocSpec) -> Path:
    candidates = [Path(clip_dir)] if clip_dir else []
    if not clip_dir and Path(spec.vision_tower).is_dir():
        candidates.append(Path(spec.vision_tower))
    for candidate in candidates:
        if (candidate / "config.json").is_file():
            return candidate
    raise FileNotFoundError(
        f"CLIP vision tower not found{': ' + str(clip_dir) if clip_dir else ''}. InteractVLM checkpoints do not "
        f"contain it: pass the directory of a local copy of {spec.vision_tower} (config.json, weights, "
        "preprocessor_config.json); it is never downloaded at run time")


@dataclass
class CheckpointPlan:
    """A checkpoint read and checked against the architecture, nothing loaded on a device.

    Attributes:
        directory, config, spec, llama_config; mapped: module key -> tensor (memory-mapped
        where the file format allows); model: the MVLocModel on the meta device;
        problems: key / shape mismatches (empty when loadable).
    """

    directory: Path
    config: dict
    spec: MVLocSpec
    llama_config: object
    mapped: dict
    model: MVLocModel
    problems: list[str]

    def parameter_bytes(self, dtype: torch.dtype) -> int:
        """Bytes of every parameter and buffer in ``dtype`` (floating point ones), CLIP excluded."""
        return sum(block_bytes(self.model, dtype).values())


def plan_checkpoint(checkpoint_dir: str | os.PathLike) -> CheckpointPlan:
    """Read config and weights (memory-mapped) and check every key and shape against MV-Loc
    built on the meta device. Nothing is allocated on a device.

    Raises:
        FileNotFoundError: missing directory, config or weight files.
        CheckpointError: keys that do not map at all; ValueError: unsupported configuration.
    """
    from transformers import LlamaConfig

    checkpoint_dir = Path(checkpoint_dir)
    config = read_config(checkpoint_dir)
    spec = MVLocSpec.from_config(config)
    state = read_state_dict(checkpoint_dir)
    sam_state = {k[len(SAM_PREFIX):]: v for k, v in state.items() if k.startswith(SAM_PREFIX)}
    mapped = map_checkpoint_keys(state)
    llama_config = LlamaConfig(**{k: config[k] for k in _LLAMA_FIELDS if k in config})
    with torch.device("meta"):
        model = MVLocModel(spec, llama_config, hf_config_from_sam_state_dict(sam_state))
    expected = model.state_dict()
    missing = sorted(set(expected) - set(mapped))
    unexpected = sorted(set(mapped) - set(expected))
    wrong = sorted(f"{k}: {tuple(mapped[k].shape)} != {tuple(expected[k].shape)}"
                   for k in set(expected) & set(mapped) if mapped[k].shape != expected[k].shape)
    problems = []
    if missing:
        problems.append(f"missing from the checkpoint: {', '.join(missing[:20])}")
    if unexpected:
        problems.append(f"not in the model: {', '.join(unexpected[:20])}")
    if wrong:
        problems.append(f"wrong shapes: {'; '.join(wrong[:20])}")
    return CheckpointPlan(checkpoint_dir, config, spec, llama_config, mapped, model, problems)


#: Quantisation of the language model's decoder layers (bitsandbytes, CUDA only).
QUANTIZATIONS = ("none", "8bit", "4bit")


def quantize_linear_layers(module: torch.nn.Module, quantization: str, compute_dtype: torch.dtype, device) -> int:
    """Replace the ``nn.Linear`` layers inside ``module`` (a LLaMA decoder layer) with
    bitsandbytes 8-bit (``Linear8bitLt``, LLM.int8, outlier threshold 6.0) or 4-bit NF4
    (``Linear4bit``) layers on the CUDA ``device``; :func:`load_mvloc` applies it to the decoder
    layers only (embeddings, ``lm_head``, SAM, CLIP and the projections stay in ``compute_dtype``).

    Returns:
        the number of layers replaced.

    Raises:
        ValueError: unknown quantisation, or a device that is not CUDA.
        ImportError: bitsandbytes is not installed (it is optional: ``pip install bitsandbytes``).
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {', '.join(QUANTIZATIONS)}, got {quantization!r}")
    if quantization == "none":
        return 0
    if torch.device(device).type != "cuda":
        raise ValueError(f"{quantization} quantisation needs a CUDA device (bitsandbytes), got {device}")
    try:
        import bitsandbytes as bnb
    except ImportError as error:
        raise ImportError(f"{quantization} quantisation needs bitsandbytes: pip install bitsandbytes") from error
    replaced = 0
    for parent in module.modules():
        for name, child in list(parent.named_children()):
            if type(child) is not torch.nn.Linear:
                continue
            bias = child.bias is not None
            if quantization == "8bit":
                quantized = bnb.nn.Linear8bitLt(child.in_features, child.out_features, bias=bias,
                                                has_fp16_weights=False, threshold=6.0)
                quantized.weight = bnb.nn.Int8Params(child.weight.data.to(torch.float16).cpu(),
                                                     requires_grad=False, has_fp16_weights=False)
            else:
                quantized = bnb.nn.Linear4bit(child.in_features, child.out_features, bias=bias,
                                              compute_dtype=compute_dtype, quant_type="nf4")
                quantized.weight = bnb.nn.Params4bit(child.weight.data.to(compute_dtype).cpu(),
                                                     requires_grad=False, quant_type="nf4")
            if bias:
                quantized.bias = torch.nn.Parameter(child.bias.data.to(compute_dtype), requires_grad=False)
            setattr(parent, name, quantized.to(device))  # moving to CUDA quantises the weights
            replaced += 1
    return replaced


def _move(module: torch.nn.Module, device: str, dtype: torch.dtype) -> None:
    """Parameters and buffers of ``module`` to ``device``, floating ones in ``dtype``;
    bitsandbytes layers (already placed and quantised) are left alone."""
    for submodule in module.modules():
        if submodule.__class__.__module__.startswith("bitsandbytes"):
            continue
        for name, parameter in list(submodule.named_parameters(recurse=False)):
            data = parameter.data.to(device, dtype if parameter.is_floating_point() else parameter.dtype)
            setattr(submodule, name, torch.nn.Parameter(data, requires_grad=False))
        for name, buffer in list(submodule.named_buffers(recurse=False)):
            submodule._buffers[name] = buffer.to(device)


def plan_device_map(sizes: dict[str, int], device: str | torch.device,
                    device_map: str | dict[str, str] | None = None,
                    max_memory: dict[str, int] | None = None) -> dict[str, str]:
    """Block -> device for :func:`load_mvloc` (see :mod:`.placement`).

    Args:
        sizes: block -> bytes (:func:`~.placement.block_bytes`), in execution order.
        device: the device of every block (``device_map`` None) or of the blocks an explicit
            map does not name.
        device_map: None, "auto" (balanced over the CUDA devices, see
            :func:`~.placement.gpu_budgets`) or {block or module: device}.
        max_memory: device -> bytes, caps for "auto" (and the devices it may use).

    Raises:
        ValueError: bad names or devices, max_memory without "auto", "auto" without CUDA.
        MemoryError: "auto" and the model does not fit.
    """
    if max_memory and device_map != "auto":
        raise ValueError("max_memory applies to device_map auto only")
    if device_map is None:
        return {block: str(torch.device(device)) for block in sizes}
    if device_map == "auto":
        return balanced_device_map(sizes, gpu_budgets(max_memory or {}))
    if isinstance(device_map, str):
        raise ValueError(f"device_map must be None, 'auto' or a mapping, got {device_map!r}")
    return explicit_device_map(list(sizes), device_map, device)


def load_mvloc(checkpoint_dir: str | os.PathLike, clip_dir: str | os.PathLike | None = None,
               device: str | torch.device = "cpu", dtype: str = "float32", quantization: str = "none",
               device_map: str | dict[str, str] | None = None, max_memory: str | dict[str, int] | None = None
               ) -> MVLoc:
    """Load an InteractVLM checkpoint directory and its separately stored CLIP tower.

    Args:
        checkpoint_dir: the ``save_pretrained`` directory (config.json, tokenizer, weights).
        clip_dir: local copy of the CLIP vision tower (``openai/clip-vit-large-patch14``);
            defaults to config.json's ``vision_tower`` when that is an existing directory.
        device: torch device, e.g. "cuda:0".
        dtype: "float32", "bfloat16" or "float16".
        quantization: "none", "8bit" or "4bit" (the LLaMA decoder layers, with bitsandbytes on
            CUDA; see :func:`quantize_linear_layers`).
        device_map: split the model over devices (see :mod:`.placement`): None (all on
            ``device``), "auto", {block or module: device} or its text form
            "sam=cuda:1,vision_tower=cuda:1". Tensors cross devices between blocks through
            accelerate's ``dispatch_model`` hooks; a "cpu" entry runs that block on the CPU.
        max_memory: with "auto": {device: bytes} or "cuda:0=20GiB,cuda:1=10GiB", the devices to
            use and a cap on each one's parameters.

    Raises:
        FileNotFoundError: missing directory, config, weights, tokenizer or CLIP tower.
        CheckpointError: keys that do not map, keys the model lacks or the checkpoint lacks
            (all listed), wrong shapes, inconsistent token ids, a CLIP tower of the wrong width.
        MemoryError: a CUDA device without enough free memory for its blocks (checked before
            loading), or a model that does not fit the "auto" budgets.
        ValueError: unsupported configuration, dtype, quantisation, device map or max_memory, or
            a CUDA device this machine does not have.
        ImportError: quantisation without bitsandbytes.
    """
    from transformers import CLIPImageProcessorPil, CLIPVisionConfig, CLIPVisionModel
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding
    from transformers.utils import logging as transformers_logging

    from .placement import parse_device_map, parse_max_memory

    transformers_logging.disable_progress_bar()

    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {', '.join(QUANTIZATIONS)}, got {quantization!r}")
    if isinstance(device_map, str):
        device_map = parse_device_map(device_map)
    max_memory = parse_max_memory(max_memory) if max_memory else None
    torch_dtype = DTYPES[dtype]
    checkpoint_dir = Path(checkpoint_dir)
    spec = MVLocSpec.from_config(read_config(checkpoint_dir))
    clip_path = _resolve_clip_dir(clip_dir, spec)
    plan = plan_checkpoint(checkpoint_dir)
    if plan.problems:
        raise CheckpointError(f"{checkpoint_dir}: " + " | ".join(plan.problems))
    clip_config = CLIPVisionConfig.from_pretrained(clip_path, local_files_only=True)
    if clip_config.hidden_size != spec.mm_hidden_size:
        raise CheckpointError(f"CLIP tower {clip_path} has width {clip_config.hidden_size}, the checkpoint's "
                              f"projector expects mm_hidden_size {spec.mm_hidden_size}")
    model = plan.model
    with torch.device("meta"):
        model.vision_tower = CLIPVisionModel(clip_config)  # sizes only; replaced by the loaded tower
    sizes = block_bytes(model, torch_dtype, quantization)
    placement = plan_device_map(sizes, device, device_map, max_memory)
    not_cuda = sorted({d for b, d in placement.items() if ".layers." in b and torch.device(d).type != "cuda"})
    if quantization != "none" and not_cuda:
        raise ValueError(f"{quantization} quantisation needs the decoder layers on CUDA devices (bitsandbytes), "
                         f"got {', '.join(not_cuda)}")
    check_devices_exist(placement.values())
    check_device_memory(bytes_per_device(sizes, placement))
    model.vision_tower = None  # the checkpoint has no CLIP weights; the loaded tower is attached below

    model.load_state_dict({k: v.to(torch_dtype) if v.is_floating_point() else v for k, v in plan.mapped.items()},
                          strict=True, assign=True)
    model.language_model.model.rotary_emb = LlamaRotaryEmbedding(config=plan.llama_config)  # non-persistent
    model.vision_tower = CLIPVisionModel.from_pretrained(clip_path, local_files_only=True, dtype=torch_dtype)
    for block, block_device in placement.items():
        module = model.get_submodule(block)
        if ".layers." in block and quantization != "none":
            quantize_linear_layers(module, quantization, torch_dtype, block_device)
            _move(module, block_device, torch_dtype)
        else:
            module.to(device=block_device, dtype=torch_dtype)
    if len(set(placement.values())) > 1:
        import logging

        from accelerate import dispatch_model

        # Hooks move each block's inputs to its device. main_device "cpu" keeps "cpu" blocks
        # running on the CPU (accelerate would otherwise stream their weights to the GPU); its
        # warning that "cpu" parameters were offloaded to the meta device is then wrong, so it is
        # muted and the claim checked below instead.
        devices = list(dict.fromkeys(placement.values()))
        accelerate_logger = logging.getLogger("accelerate.big_modeling")
        level = accelerate_logger.level
        accelerate_logger.setLevel(logging.ERROR)
        try:
            dispatch_model(model, placement, main_device="cpu" if "cpu" in devices else devices[0])
        finally:
            accelerate_logger.setLevel(level)
        offloaded = [name for name, tensor in model.state_dict().items() if tensor.device.type == "meta"]
        if offloaded:
            raise RuntimeError(f"accelerate left {len(offloaded)} tensors on the meta device "
                               f"(e.g. {offloaded[0]}); device map: {describe(placement)}")
    model.eval()
    tokenizer = LlamaSlowTokenizer.from_pretrained(checkpoint_dir)
    for token in (SEG_TOKEN, IM_START_TOKEN, IM_END_TOKEN):
        if tokenizer.convert_tokens_to_ids(token) == tokenizer.unk_token_id:
            raise CheckpointError(f"the tokenizer in {checkpoint_dir} lacks the token {token}")
    image_processor = CLIPImageProcessorPil.from_pretrained(clip_path, local_files_only=True)
    return MVLoc(model, tokenizer, image_processor, plan.config, checkpoint_dir.name)
