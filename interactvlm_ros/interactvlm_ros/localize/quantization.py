"""Numeric formats of MV-Loc: the precisions it loads in, the optional 8-/4-bit
quantisation of its LLaMA decoder layers (bitsandbytes, CUDA only), the runtimes of its
vision stages (:data:`VISION_BACKENDS`, see :mod:`.onnx_vision`) and of its decode loop
(:data:`DECODE_CACHES`, see :mod:`.decoding`).

Torch is imported inside the functions, so the names (:data:`PRECISIONS`, :data:`QUANTIZATIONS`,
:data:`VISION_BACKENDS`, :data:`DECODE_CACHES`) can be read by the parameter table without loading torch.

transformers' own bitsandbytes integration (``replace_with_bnb_linear``) replaces layers with
empty quantised ones that its ``from_pretrained`` machinery then fills; MV-Loc is assembled
from parts and loads its state dict itself, so layers are replaced here after loading, with
the same bitsandbytes classes and settings (LLM.int8 threshold 6.0, NF4).
"""

from __future__ import annotations

import importlib.util
from typing import Iterable

#: Precisions a model loads in (``dtype`` parameter).
PRECISIONS = ("float32", "bfloat16", "float16")
#: Quantisation of the language model's decoder layers (bitsandbytes, CUDA only).
QUANTIZATIONS = ("none", "8bit", "4bit")
#: Where CLIP, SAM's image encoder and SAM's mask decoder run: torch, onnxruntime from an
#: ``export-onnx`` directory (:class:`.onnx_vision.OnnxVision`), or auto (onnxruntime where
#: an export is found and it measured faster; see ``loading._use_onnx``).
VISION_BACKENDS = ("auto", "torch", "onnxruntime")
#: The KV cache of the decode loop (``MVLoc.decode_cache``): a growing ``DynamicCache``, or the
#: preallocated static-shape cache of :mod:`.decoding` (which ``MVLoc.compile_decode`` compiles).
DECODE_CACHES = ("dynamic", "static")
_ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def torch_dtype(name: str):
    """The torch dtype of a precision name (or its short form fp32 / bf16 / fp16).

    Raises:
        ValueError: an unknown name.
    """
    import torch

    name = _ALIASES.get(name, name)
    if name not in PRECISIONS:
        raise ValueError(f"dtype must be one of {', '.join(PRECISIONS)}, got {name!r}")
    return getattr(torch, name)


class QuantizationError(ValueError):
    """A quantisation that cannot be applied: an unknown mode, decoder layers off CUDA, or
    bitsandbytes not installed (it is optional: ``pip install bitsandbytes``)."""


def check_quantization(quantization: str, devices: Iterable | None = None) -> None:
    """Refuse a quantisation that cannot be applied, before anything is loaded.

    Args:
        quantization: one of :data:`QUANTIZATIONS`.
        devices: the devices of the decoder layers to quantise; None checks the mode only.

    Raises:
        QuantizationError: an unknown mode; with ``devices``: a device that is not CUDA
            (bitsandbytes runs on CUDA only; named), or bitsandbytes not installed.
    """
    import torch

    if quantization not in QUANTIZATIONS:
        raise QuantizationError(f"quantization must be one of {', '.join(QUANTIZATIONS)}, got {quantization!r}")
    if quantization == "none" or devices is None:
        return
    not_cuda = sorted({str(torch.device(d)) for d in devices if torch.device(d).type != "cuda"})
    if not_cuda:
        raise QuantizationError(f"{quantization} quantisation needs the decoder layers on CUDA devices (bitsandbytes "
                                f"runs on CUDA only), got {', '.join(not_cuda)}")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise QuantizationError(f"{quantization} quantisation needs bitsandbytes: pip install bitsandbytes")


def quantize_linear_layers(module, quantization: str, compute_dtype, device) -> int:
    """Replace the ``nn.Linear`` layers inside ``module`` (a LLaMA decoder layer) with
    bitsandbytes 8-bit (``Linear8bitLt``, LLM.int8, outlier threshold 6.0) or 4-bit NF4
    (``Linear4bit``) layers on the CUDA ``device``; :func:`load_mvloc` applies it to the decoder
    layers only (embeddings, ``lm_head``, SAM, CLIP and the projections stay in ``compute_dtype``).

    Returns:
        the number of layers replaced.

    Raises:
        QuantizationError: unknown quantisation, a device that is not CUDA, or bitsandbytes not
            installed (see :func:`check_quantization`).
    """
    import torch

    check_quantization(quantization, [device])
    if quantization == "none":
        return 0
    import bitsandbytes as bnb

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


def move_unquantized(module, device: str, dtype) -> None:
    """Parameters and buffers of ``module`` to ``device``, floating ones in ``dtype``;
    bitsandbytes layers (already placed and quantised) are left alone."""
    import torch

    for submodule in module.modules():
        if submodule.__class__.__module__.startswith("bitsandbytes"):
            continue
        for name, parameter in list(submodule.named_parameters(recurse=False)):
            data = parameter.data.to(device, dtype if parameter.is_floating_point() else parameter.dtype)
            setattr(submodule, name, torch.nn.Parameter(data, requires_grad=False))
        for name, buffer in list(submodule.named_buffers(recurse=False)):
            submodule._buffers[name] = buffer.to(device)
