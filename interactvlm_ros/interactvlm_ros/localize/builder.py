"""Building MV-Loc from an InteractVLM checkpoint directory: reading and checking it
(:func:`plan_checkpoint`), placing its blocks on devices (:func:`plan_device_map`, see
:mod:`.placement`), optional quantisation (:mod:`.quantization`) and the tokenizer
(:mod:`.tokenizer`). :func:`load_mvloc` returns the predictor (:class:`~.predictor.MVLoc`).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from .checkpoint import CheckpointError, map_checkpoint_keys, read_config, read_state_dict, sam_weights
from .model import MVLocModel, MVLocSpec
from .placement import (balanced_device_map, block_bytes, bytes_per_device, check_device_memory, check_devices_exist,
                        describe, explicit_device_map, gpu_budgets)
from .predictor import MVLoc, mask_tokens
from .prompts import IM_END_TOKEN, IM_START_TOKEN
from .quantization import check_quantization, move_unquantized, quantize_linear_layers, torch_dtype
from .sam_keys import hf_config_from_sam_state_dict
from .tokenizer import LlamaSlowTokenizer

#: LlamaConfig fields copied from config.json.
_LLAMA_FIELDS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                 "num_key_value_heads", "max_position_embeddings", "rms_norm_eps", "rope_theta", "rope_scaling",
                 "hidden_act", "bos_token_id", "eos_token_id", "pad_token_id", "tie_word_embeddings",
                 "attention_bias", "mlp_bias", "head_dim")


class ClipTowerError(ValueError):
    """The CLIP vision tower (``clip_dir``) cannot be used: not found, unreadable, or of
    another width than the checkpoint's projector expects; the message says which."""


def _resolve_clip_dir(clip_dir, spec: MVLocSpec) -> Path:
    """The CLIP tower's directory: ``clip_dir``, or config.json's ``vision_tower`` when that is
    a directory.

    Raises:
        ClipTowerError: neither holds a config.json.
    """
    candidates = [Path(clip_dir)] if clip_dir else []
    if not clip_dir and Path(spec.vision_tower).is_dir():
        candidates.append(Path(spec.vision_tower))
    for candidate in candidates:
        if (candidate / "config.json").is_file():
            return candidate
    raise ClipTowerError(
        f"CLIP vision tower not found{': ' + str(clip_dir) if clip_dir else ''}. InteractVLM checkpoints do not "
        f"contain it: pass the directory of a local copy of {spec.vision_tower} (config.json, weights, "
        "preprocessor_config.json); it is never downloaded at run time")


@contextmanager
def _clip_tower(clip_path: Path):
    """Errors reading the CLIP tower's files become ClipTowerError (naming the directory)."""
    try:
        yield
    except (OSError, ValueError) as error:
        raise ClipTowerError(f"CLIP tower {clip_path}: {type(error).__name__}: {error}") from error


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
    sam_state = sam_weights(state, spec.different_decoders)
    mapped = map_checkpoint_keys(state, spec.different_decoders)
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
        FileNotFoundError: missing directory, config, weights or tokenizer.
        ClipTowerError: a CLIP tower that is missing, unreadable or of the wrong width.
        CheckpointError: keys that do not map, keys the model lacks or the checkpoint lacks
            (all listed), wrong shapes, inconsistent token ids.
        MemoryError: a CUDA device without enough free memory for its blocks (checked before
            loading), or a model that does not fit the "auto" budgets.
        QuantizationError: an unknown quantisation, decoder layers off CUDA, or bitsandbytes
            not installed (:func:`~.quantization.check_quantization`).
        ValueError: unsupported configuration, dtype, device map or max_memory, or a CUDA
            device this machine does not have.
    """
    from transformers import CLIPImageProcessorPil, CLIPVisionConfig, CLIPVisionModel
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding
    from transformers.utils import logging as transformers_logging

    from .placement import parse_device_map, parse_max_memory

    transformers_logging.disable_progress_bar()

    compute_dtype = torch_dtype(dtype)
    check_quantization(quantization)
    if isinstance(device_map, str):
        device_map = parse_device_map(device_map)
    max_memory = parse_max_memory(max_memory) if max_memory else None
    checkpoint_dir = Path(checkpoint_dir)
    spec = MVLocSpec.from_config(read_config(checkpoint_dir))
    clip_path = _resolve_clip_dir(clip_dir, spec)
    plan = plan_checkpoint(checkpoint_dir)
    if plan.problems:
        raise CheckpointError(f"{checkpoint_dir}: " + " | ".join(plan.problems))
    with _clip_tower(clip_path):
        clip_config = CLIPVisionConfig.from_pretrained(clip_path, local_files_only=True)
    if clip_config.hidden_size != spec.mm_hidden_size:
        raise ClipTowerError(f"CLIP tower {clip_path} has width {clip_config.hidden_size}, the checkpoint's "
                             f"projector expects mm_hidden_size {spec.mm_hidden_size}")
    model = plan.model
    with torch.device("meta"):
        model.vision_tower = CLIPVisionModel(clip_config)  # sizes only; replaced by the loaded tower
    sizes = block_bytes(model, compute_dtype, quantization)
    placement = plan_device_map(sizes, device, device_map, max_memory)
    check_quantization(quantization, [d for b, d in placement.items() if ".layers." in b])
    check_devices_exist(placement.values())
    check_device_memory(bytes_per_device(sizes, placement))
    model.vision_tower = None  # the checkpoint has no CLIP weights; the loaded tower is attached below

    model.load_state_dict({k: v.to(compute_dtype) if v.is_floating_point() else v for k, v in plan.mapped.items()},
                          strict=True, assign=True)
    model.language_model.model.rotary_emb = LlamaRotaryEmbedding(config=plan.llama_config)  # non-persistent
    with _clip_tower(clip_path):
        model.vision_tower = CLIPVisionModel.from_pretrained(clip_path, local_files_only=True, dtype=compute_dtype)
    for block, block_device in placement.items():
        module = model.get_submodule(block)
        if ".layers." in block and quantization != "none":
            quantize_linear_layers(module, quantization, compute_dtype, block_device)
            move_unquantized(module, block_device, compute_dtype)
        else:
            module.to(device=block_device, dtype=compute_dtype)
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
    for token in dict.fromkeys([t for t, _, _ in mask_tokens(plan.spec)] + [IM_START_TOKEN, IM_END_TOKEN]):
        if tokenizer.convert_tokens_to_ids(token) == tokenizer.unk_token_id:
            raise CheckpointError(f"the tokenizer in {checkpoint_dir} lacks the token {token}")
    with _clip_tower(clip_path):
        image_processor = CLIPImageProcessorPil.from_pretrained(clip_path, local_files_only=True)
    return MVLoc(model, tokenizer, image_processor, plan.config, checkpoint_dir.name)
