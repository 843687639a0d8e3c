"""Where MV-Loc's modules live: one device, or split over several GPUs (a device map).

MV-Loc is a chain of *blocks* run in this order (:func:`model_blocks`): the CLIP vision tower,
the projector, LLaMA's token embedding, rotary embedding, decoder layers, final norm and
``lm_head``, the [SEG] head (``text_hidden_fcs``), the camera encoder and SAM. A device map
assigns each block to one device; blocks are never split (a LLaMA decoder layer keeps its
residual stream on one device, SAM and CLIP stay whole), so tensors cross devices only between
blocks. Moving them is left to accelerate's ``dispatch_model`` hooks (the mechanism behind
transformers' ``device_map``).

Two ways to get a map:

* ``"auto"``: :func:`balanced_device_map` cuts the chain into contiguous pieces whose sizes are
  proportional to each GPU's budget (free memory / :data:`MEMORY_HEADROOM`, capped by
  ``max_memory``), the same idea as transformers' ``device_map="balanced"`` but computed
  from the block sizes alone, so it is testable without the GPUs;
* explicit ``"sam=cuda:1,vision_tower=cuda:1"``: :func:`explicit_device_map` puts the named
  blocks (or every block under a named module, e.g. ``language_model``) on the given devices
  and the rest on the default device.

Block sizes are counted in the load dtype, with quantised decoder-layer weights at 1 byte
(8-bit) or 0.5 byte (4-bit) per weight.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

#: Headroom over the parameter bytes for activations, KV cache and SAM embeddings.
MEMORY_HEADROOM = 1.25

#: Bytes per weight of quantised decoder-layer Linear weights (bitsandbytes LLM.int8 / NF4;
#: NF4's per-64-block absmax adds ~0.03 byte, ignored).
QUANTIZED_WEIGHT_BYTES = {"8bit": 1.0, "4bit": 0.5}


def model_blocks(model: torch.nn.Module) -> list[str]:
    """Names of the blocks of an :class:`~.model.MVLocModel`, in execution order.

    The CLIP tower is included when attached (``model.vision_tower`` not None); the camera
    encoder and the attention splitter (joint models) when the model has them. Every parameter
    and buffer of the model belongs to exactly one block.
    """
    lm = "language_model"
    names = ["vision_tower"] if model.vision_tower is not None else []
    names += ["mm_projector", f"{lm}.model.embed_tokens", f"{lm}.model.rotary_emb"]
    names += [f"{lm}.model.layers.{i}" for i in range(len(model.language_model.model.layers))]
    names += [f"{lm}.model.norm", f"{lm}.lm_head", "text_hidden_fcs"]
    if model.cam_pose_encoder is not None:
        names.append("cam_pose_encoder")
    if getattr(model, "attention_splitter", None) is not None:
        names.append("attention_splitter")
    names.append("sam")
    return names


def block_bytes(model: torch.nn.Module, dtype: torch.dtype, quantization: str = "none") -> dict[str, int]:
    """Bytes of each block's parameters and buffers once loaded (see :func:`model_blocks`).

    Floating-point tensors count in ``dtype``, others in their own dtype; with ``quantization``
    "8bit" / "4bit" the decoder layers' ``*_proj.weight`` count at
    :data:`QUANTIZED_WEIGHT_BYTES`. A weight shared by two blocks (tied embeddings) counts once,
    in the first. Works on the meta device.
    """
    size = torch.tensor([], dtype=dtype).element_size()
    seen: set[int] = set()
    result = {}
    for block in model_blocks(model):
        module = model.get_submodule(block)
        total = 0.0
        for name, tensor in [*module.named_parameters(remove_duplicate=False),
                             *module.named_buffers(remove_duplicate=False)]:
            if id(tensor) in seen:
                continue
            seen.add(id(tensor))
            per = size if tensor.is_floating_point() else tensor.element_size()
            if (quantization in QUANTIZED_WEIGHT_BYTES and ".layers." in block and name.endswith("proj.weight")):
                per = QUANTIZED_WEIGHT_BYTES[quantization]
            total += tensor.numel() * per
        result[block] = int(total)
    return result


def parse_bytes(text: str) -> int:
    """"20GiB", "20GB", "512MiB", "1000000" -> bytes (GB = 10**9, GiB = 2**30), with
    accelerate's ``convert_file_size_to_int`` (what ``max_memory`` takes in transformers).

    Raises:
        ValueError: not a positive size.
    """
    from accelerate.utils import convert_file_size_to_int

    text = text.strip().replace(" ", "")
    try:
        size = int(text) if text.isdigit() else convert_file_size_to_int(text)
    except (ValueError, TypeError):
        size = 0
    if size <= 0:
        raise ValueError(f"not a memory size: {text!r} (examples: 20GiB, 500MiB, 12GB)")
    return int(size)


def _pairs(text: str, what: str) -> list[tuple[str, str]]:
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"{what}: expected name=value entries separated by commas, got {item!r}")
        pairs.append((key.strip(), value.strip()))
    return pairs


def normalize_device(device: str | int | torch.device) -> str:
    """"cuda" -> "cuda:0", 1 -> "cuda:1", "cpu" -> "cpu".

    Raises:
        ValueError: not a cpu or cuda device.
    """
    if isinstance(device, int) or (isinstance(device, str) and device.isdigit()):
        device = f"cuda:{int(device)}"
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda:{0 if device.index is None else device.index}"
    if device.type == "cpu":
        return "cpu"
    raise ValueError(f"device map entries must be cpu or cuda devices, got {device}")


def parse_max_memory(value: str | Mapping) -> dict[str, int]:
    """"cuda:0=20GiB,cuda:1=10GiB" -> {"cuda:0": 20 * 2**30, "cuda:1": 10 * 2**30}; "" -> {}.
    A mapping is normalised the same way ({0: "20GiB", "cuda:1": 10**10} is accepted).

    Raises:
        ValueError: malformed entries, sizes or devices.
    """
    pairs = value.items() if isinstance(value, Mapping) else _pairs(value, "max_memory")
    return {normalize_device(key): parse_bytes(str(size)) for key, size in pairs}


def parse_device_map(text: str) -> str | dict[str, str] | None:
    """The ``device_map`` parameter: "" -> None (everything on ``device``), "auto", or
    "module=device,..." -> {module: device}.

    Raises:
        ValueError: malformed entries or devices.
    """
    text = text.strip()
    if not text:
        return None
    if text == "auto":
        return "auto"
    return {key: normalize_device(value) for key, value in _pairs(text, "device_map")}


def explicit_device_map(blocks: list[str], overrides: Mapping[str, str],
                        default: str | torch.device) -> dict[str, str]:
    """Blocks on ``default`` except those named in ``overrides`` (a block name, or a module
    containing blocks: "language_model" moves all of LLaMA, "language_model.model.layers.3"
    one layer). A longer (more specific) name wins over a shorter one.

    Raises:
        ValueError: a name that is neither a block nor a module containing blocks (the
            message lists the blocks).
    """
    result = {block: normalize_device(default) for block in blocks}
    for name in sorted(overrides, key=len):
        covered = [b for b in blocks if b == name or b.startswith(name + ".")]
        if not covered:
            raise ValueError(f"device_map: {name!r} is not a block of this model nor a module containing "
                             f"blocks; blocks are: {', '.join(blocks)}")
        for block in covered:
            result[block] = normalize_device(overrides[name])
    return result


def balanced_device_map(sizes: Mapping[str, int], budgets: Mapping[str, int]) -> dict[str, str]:
    """Cut the block chain (``sizes`` in execution order) into one contiguous piece per
    device (``budgets`` in device order), each piece's share of the total as close as possible
    to the device's share of the summed budgets without exceeding its budget.

    Returns:
        block -> device. A device may receive no block (a small model on a large first GPU).

    Raises:
        MemoryError: the blocks do not fit the budgets (message gives both totals).
    """
    devices = list(budgets)
    if not devices:
        raise ValueError("no device to place the model on")
    total = sum(sizes.values())
    capacity = sum(budgets.values())
    if total > capacity:
        raise MemoryError(f"the model needs {total / 2**30:.2f} GiB of parameters; the budgets of "
                          f"{', '.join(devices)} add up to {capacity / 2**30:.2f} GiB "
                          f"(free memory / {MEMORY_HEADROOM} or max_memory)")
    result: dict[str, str] = {}
    placed = 0  # bytes placed on earlier devices and the current one
    device_index, used = 0, 0
    target = total * budgets[devices[0]] / capacity
    for block, size in sizes.items():
        # Move on while this device is full or past its share (the last device takes the rest).
        while device_index < len(devices) - 1 and (
                used + size > budgets[devices[device_index]] or placed + size / 2 > target):
            device_index, used = device_index + 1, 0
            target += total * budgets[devices[device_index]] / capacity
        if used + size > budgets[devices[device_index]]:
            raise MemoryError(f"block {block} ({size / 2**30:.2f} GiB) does not fit the remaining budget of "
                              f"{devices[device_index]}; budgets: " + ", ".join(
                                  f"{d} {b / 2**30:.2f} GiB" for d, b in budgets.items()))
        result[block] = devices[device_index]
        used += size
        placed += size
    return result


def bytes_per_device(sizes: Mapping[str, int], device_map: Mapping[str, str]) -> dict[str, int]:
    """Sum of block sizes per device."""
    result: dict[str, int] = {}
    for block, device in device_map.items():
        result[device] = result.get(device, 0) + sizes[block]
    return result


def check_devices_exist(devices) -> None:
    """Refuse CUDA devices this machine does not have (instead of torch's assertion on a
    CPU-only build or an invalid-ordinal error deep inside loading).

    Raises:
        ValueError: a CUDA device without CUDA, or an index beyond ``torch.cuda.device_count()``.
    """
    for device in dict.fromkeys(devices):
        device = torch.device(device)
        if device.type != "cuda":
            continue
        if not torch.cuda.is_available():
            raise ValueError(f"device {device} requested but CUDA is not available here "
                             f"(torch {torch.__version__}); use device cpu")
        count = torch.cuda.device_count()
        if (device.index or 0) >= count:
            raise ValueError(f"device {device} requested; the CUDA devices here are cuda:0..cuda:{count - 1}")


def check_device_memory(required: Mapping[str, int]) -> None:
    """Refuse early when a CUDA device cannot hold its part of the model.

    Args:
        required: device -> parameter bytes (CPU entries are not checked).

    Raises:
        MemoryError: bytes x MEMORY_HEADROOM exceed a device's free memory (every such
            device is named).
    """
    problems = []
    for device, needed_bytes in required.items():
        device = torch.device(device)
        if device.type != "cuda" or not torch.cuda.is_available():
            continue
        free, total = torch.cuda.mem_get_info(device)
        needed = int(needed_bytes * MEMORY_HEADROOM)
        if needed > free:
            problems.append(f"about {needed / 2**30:.1f} GiB on {device} (parameters x {MEMORY_HEADROOM}) but "
                            f"{free / 2**30:.1f} of {total / 2**30:.1f} GiB are free")
    if problems:
        raise MemoryError("the model needs " + "; ".join(problems) + ". Use dtype bfloat16/float16, quantization "
                          "8bit/4bit, split it with device_map, or free the GPU")


def gpu_budgets(max_memory: Mapping[str, int]) -> dict[str, int]:
    """Per-GPU parameter budgets for ``device_map="auto"``: free memory / MEMORY_HEADROOM of
    each device in ``max_memory`` (all visible CUDA devices when empty), capped by its
    ``max_memory`` entry.

    Raises:
        ValueError: no CUDA device, a device that does not exist, or a cpu entry.
    """
    if not torch.cuda.is_available():
        raise ValueError("device_map auto splits the model over CUDA devices; none is available")
    count = torch.cuda.device_count()
    devices = list(max_memory) or [f"cuda:{i}" for i in range(count)]
    budgets = {}
    for device in devices:
        index = torch.device(device).index
        if torch.device(device).type != "cuda" or index is None or index >= count:
            raise ValueError(f"max_memory names {device}; the CUDA devices here are cuda:0..cuda:{count - 1}")
        free, _ = torch.cuda.mem_get_info(device)
        budgets[device] = min(int(free / MEMORY_HEADROOM), max_memory.get(device, free))
    return budgets


def describe(device_map: Mapping[str, str]) -> str:
    """The device when there is one ("cuda:0"), else one entry per run of blocks on a device:
    "cuda:0: vision_tower..language_model.model.layers.19; cuda:1: ..."."""
    if len(set(device_map.values())) == 1:
        return next(iter(device_map.values()))
    runs: list[list] = []
    for block, device in device_map.items():
        if runs and runs[-1][0] == device:
            runs[-1][2] = block
        else:
            runs.append([device, block, block])
    return "; ".join(f"{d}: {a}" if a == b else f"{d}: {a}..{b}" for d, a, b in runs)


def device_of(module: torch.nn.Module) -> torch.device:
    """Device of a module's first parameter (or buffer); the CPU for a module without either."""
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")
