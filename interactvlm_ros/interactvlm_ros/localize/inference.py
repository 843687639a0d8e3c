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
from .prompts import IMAGE_TOKEN, IMAGE_TOKEN_INDEX, IM_END_TOKEN, IM_START_TOKEN, SEG_TOKEN, conversation
from .sam_keys import hf_config_from_sam_state_dict

#: SAM's pixel normalisation (segment_anything ``Sam.pixel_mean`` / ``pixel_std``), 0-255 RGB.
SAM_PIXEL_MEAN = (123.675, 116.28, 103.53)
SAM_PIXEL_STD = (58.395, 57.12, 57.375)

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
        text: the generated text (special tokens kept, e.g. ending in "[SEG]").
        token_ids: the generated token ids.
        seg_hidden: (H,) last-layer hidden state that predicted [SEG], or None without [SEG].
    """

    text: str
    token_ids: list[int]
    seg_hidden: torch.Tensor | None


class MVLoc:
    """A loaded MV-Loc model with its tokenizer and CLIP preprocessing.

    Attributes:
        model: the :class:`MVLocModel` (eval mode) on ``device`` in ``dtype``.
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
        parameter = next(model.parameters())
        self.device, self.dtype = parameter.device, parameter.dtype
        if tokenizer.convert_tokens_to_ids(SEG_TOKEN) != self.spec.seg_token_idx:
            raise CheckpointError(
                f"tokenizer id of {SEG_TOKEN} is {tokenizer.convert_tokens_to_ids(SEG_TOKEN)} but config.json "
                f"says seg_token_idx = {self.spec.seg_token_idx}")
        self.sam_image_size = int(model.sam.config.vision_config.image_size)

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
        pixels = pixels.to(self.device, self.dtype)
        out = self.model.vision_tower(pixels, output_hidden_states=True)
        features = out.hidden_states[self.spec.mm_vision_select_layer][:, 1:]
        return self.model.mm_projector(features)

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
        pixels = ((pixels - mean) / std).to(self.device, self.dtype)
        return torch.cat([self.model.sam.get_image_embeddings(pixels[i:i + 1]) for i in range(len(pixels))])

    # ------------------------------------------------------------------------------ text side
    def prompt_ids(self, question: str) -> list[int]:
        """Token ids of the llava_v1 prompt with IMAGE_TOKEN_INDEX where the image goes
        (LLaVA's ``tokenizer_image_token``: BOS once, then the chunks around ``<image>``)."""
        before, after = conversation(question, self.spec.mm_use_im_start_end).split(IMAGE_TOKEN)
        first = self.tokenizer(before).input_ids
        second = self.tokenizer(after).input_ids
        bos = self.tokenizer.bos_token_id
        if bos is not None and second and second[0] == bos:
            second = second[1:]
        return first + [IMAGE_TOKEN_INDEX] + second

    @torch.inference_mode()
    def answer(self, image_features: torch.Tensor, question: str, max_new_tokens: int = 32) -> Answer:
        """Greedy answer to ``question`` about the image, stopping at [SEG], EOS or max_new_tokens."""
        ids = self.prompt_ids(question)
        position = ids.index(IMAGE_TOKEN_INDEX)
        embed = self.model.language_model.get_input_embeddings()
        text_ids = torch.tensor([i for i in ids if i != IMAGE_TOKEN_INDEX], device=self.device)[None]
        text = embed(text_ids)
        inputs = torch.cat([text[:, :position], image_features.to(text.dtype), text[:, position:]], dim=1)
        lm = self.model.language_model
        out = lm(inputs_embeds=inputs, use_cache=True, output_hidden_states=True)
        generated: list[int] = []
        seg_hidden = None
        eos = self.tokenizer.eos_token_id
        for _ in range(max_new_tokens):
            next_id = int(out.logits[0, -1].argmax())
            generated.append(next_id)
            if next_id == self.spec.seg_token_idx:
                seg_hidden = out.hidden_states[-1][0, -1]
                break
            if next_id == eos:
                break
            out = lm(input_ids=torch.tensor([[next_id]], device=self.device), past_key_values=out.past_key_values,
                     use_cache=True, output_hidden_states=True)
        return Answer(self.tokenizer.decode(generated, skip_special_tokens=False), generated, seg_hidden)

    # ------------------------------------------------------------------------------ mask side
    @torch.inference_mode()
    def view_prompts(self, seg_hidden: torch.Tensor, cameras: list[list[float]]) -> torch.Tensor:
        """(V, 256) per-view prompt embeddings: text_hidden_fcs([SEG] state), multiplied by the
        camera encoding of each view when the model is camera-conditioned."""
        embedding = self.model.text_hidden_fcs[0](seg_hidden[None])  # (1, 256)
        num_views = len(cameras)
        embedding = embedding.expand(num_views, -1)
        if self.model.cam_pose_encoder is not None:
            cams = torch.tensor(cameras, device=self.device, dtype=embedding.dtype)
            embedding = embedding * self.model.cam_pose_encoder(cams)
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
            (V, output_size, output_size) float32 logits: numpy, or a torch tensor on the
            model's device when ``as_tensor`` (lifting can then stay on that device).
        """
        sam = self.model.sam
        num_views = prompts.shape[0]
        if view_embeddings.shape[0] != num_views:
            raise ValueError(f"{num_views} prompts for {view_embeddings.shape[0]} views")
        _, channels, height, width = view_embeddings.shape
        sparse = prompts[None, None].expand(num_views, 1, num_views, channels)
        dense = sam.prompt_encoder.no_mask_embed.weight.reshape(1, channels, 1, 1).expand(num_views, channels,
                                                                                        height, width)
        positional = sam.get_image_wide_positional_embeddings().expand(num_views, -1, -1, -1)
        low_res, _ = sam.mask_decoder(
            image_embeddings=view_embeddings.to(self.dtype),
            image_positional_embeddings=positional.to(self.dtype),
            sparse_prompt_embeddings=sparse.to(self.dtype),
            dense_prompt_embeddings=dense.to(self.dtype),
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
        size = torch.tensor([], dtype=dtype).element_size()
        return sum(t.numel() * (size if t.is_floating_point() else t.element_size())
                   for t in self.model.state_dict().values())


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


#: Headroom over the parameter bytes for activations, KV cache and SAM embeddings.
MEMORY_HEADROOM = 1.25


def check_device_memory(required_bytes: int, device: str | torch.device) -> None:
    """Refuse early when a CUDA device cannot hold the model.

    Raises:
        MemoryError: ``required_bytes`` x MEMORY_HEADROOM exceeds the device's free memory.
    """
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return
    free, total = torch.cuda.mem_get_info(device)
    needed = int(required_bytes * MEMORY_HEADROOM)
    if needed > free:
        raise MemoryError(
            f"the model needs about {needed / 2**30:.1f} GiB on {device} (parameters x {MEMORY_HEADROOM}); "
            f"{free / 2**30:.1f} of {total / 2**30:.1f} GiB are free. Use dtype bfloat16/float16, free the "
            "GPU, or choose another device")


#: Quantisation of the language model's decoder layers (bitsandbytes, CUDA only).
QUANTIZATIONS = ("none", "8bit", "4bit")


def quantize_language_model(model: MVLocModel, quantization: str, compute_dtype: torch.dtype, device) -> int:
    """Replace the ``nn.Linear`` layers of the LLaMA decoder layers with bitsandbytes 8-bit
    (``Linear8bitLt``, LLM.int8) or 4-bit NF4 (``Linear4bit``) layers on ``device``; the
    embeddings, ``lm_head``, SAM, CLIP and the projections stay in ``compute_dtype``.

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
    for layer in model.language_model.model.layers:
        for parent in layer.modules():
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


def load_mvloc(checkpoint_dir: str | os.PathLike, clip_dir: str | os.PathLike | None = None,
               device: str | torch.device = "cpu", dtype: str = "float32", quantization: str = "none") -> MVLoc:
    """Load an InteractVLM checkpoint directory and its separately stored CLIP tower.

    Args:
        checkpoint_dir: the ``save_pretrained`` directory (config.json, tokenizer, weights).
        clip_dir: local copy of the CLIP vision tower (``openai/clip-vit-large-patch14``);
            defaults to config.json's ``vision_tower`` when that is an existing directory.
        device: torch device, e.g. "cuda:0".
        dtype: "float32", "bfloat16" or "float16".
        quantization: "none", "8bit" or "4bit" (the LLaMA decoder layers, with bitsandbytes on
            CUDA; see :func:`quantize_language_model`).

    Raises:
        FileNotFoundError: missing directory, config, weights, tokenizer or CLIP tower.
        CheckpointError: keys that do not map, keys the model lacks or the checkpoint lacks
            (all listed), wrong shapes, inconsistent token ids.
        MemoryError: a CUDA device without enough free memory (checked before loading).
        ValueError: unsupported configuration, dtype or quantisation.
        ImportError: quantisation without bitsandbytes.
    """
    from transformers import AutoTokenizer, CLIPImageProcessorPil, CLIPVisionModel
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()

    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {', '.join(QUANTIZATIONS)}, got {quantization!r}")
    if quantization != "none" and torch.device(device).type != "cuda":
        raise ValueError(f"{quantization} quantisation needs a CUDA device (bitsandbytes), got {device}")
    torch_dtype = DTYPES[dtype]
    checkpoint_dir = Path(checkpoint_dir)
    spec = MVLocSpec.from_config(read_config(checkpoint_dir))
    clip_path = _resolve_clip_dir(clip_dir, spec)
    plan = plan_checkpoint(checkpoint_dir)
    if plan.problems:
        raise CheckpointError(f"{checkpoint_dir}: " + " | ".join(plan.problems))
    layer_bytes = sum(t.numel() for k, t in plan.model.state_dict().items() if ".layers." in k and
                      k.startswith("language_model.") and k.endswith("proj.weight"))
    saved = {"none": 0.0, "8bit": 1.0, "4bit": 1.5}[quantization]  # bytes per weight saved vs 2-byte dtypes
    check_device_memory(int(plan.parameter_bytes(torch_dtype) - saved * layer_bytes * (
        torch.tensor([], dtype=torch_dtype).element_size() / 2)), device)
    model = plan.model
    model.load_state_dict({k: v.to(torch_dtype) if v.is_floating_point() else v for k, v in plan.mapped.items()},
                          strict=True, assign=True)
    model.language_model.model.rotary_emb = LlamaRotaryEmbedding(config=plan.llama_config)  # non-persistent
    vision = CLIPVisionModel.from_pretrained(clip_path, local_files_only=True, dtype=torch_dtype)
    if vision.config.hidden_size != spec.mm_hidden_size:
        raise CheckpointError(f"CLIP tower {clip_path} has width {vision.config.hidden_size}, the checkpoint's "
                              f"projector expects mm_hidden_size {spec.mm_hidden_size}")
    model.vision_tower = vision
    if quantization == "none":
        model.to(device=device, dtype=torch_dtype).eval()
    else:
        quantize_language_model(model, quantization, torch_dtype, device)
        for module in model.modules():  # everything not quantised: the requested dtype, on the device
            if module.__class__.__module__.startswith("bitsandbytes"):
                continue
            for name, parameter in list(module.named_parameters(recurse=False)):
                setattr(module, name, torch.nn.Parameter(parameter.data.to(device, torch_dtype if
                        parameter.is_floating_point() else parameter.dtype), requires_grad=False))
            for name, buffer in list(module.named_buffers(recurse=False)):
                module._buffers[name] = buffer.to(device)
        model.eval()
    tokenizer = AutoTokenizer.from_pretrained(checkpoint_dir, local_files_only=True)
    for token in (SEG_TOKEN, IM_START_TOKEN, IM_END_TOKEN):
        if tokenizer.convert_tokens_to_ids(token) in (None, tokenizer.unk_token_id):
            raise CheckpointError(f"the tokenizer in {checkpoint_dir} lacks the token {token}")
    image_processor = CLIPImageProcessorPil.from_pretrained(clip_path, local_files_only=True)
    return MVLoc(model, tokenizer, image_processor, plan.config, checkpoint_dir.name)
