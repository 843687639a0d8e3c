#!/usr/bin/env python3
"""Real-size timings: InteractVLM's released architecture at full size, with RANDOM weights built
directly on the device (no checkpoint files), in bfloat16 and with 4-bit NF4 decoder layers.

Architecture ("real" preset): LLaVA's LLaMA-2-13B (width 5120, 40 layers, 40 heads, MLP 13824,
vocabulary 32003), CLIP ViT-L/14 at 224 px, SAM ViT-H at 1024 px (32 blocks of width 1280, global
attention in blocks 7/15/23/31) with SAM's standard mask decoder, the [SEG] head and the vi_v1
camera encoder; assembled as ``localize.builder.load_mvloc`` does (same ``MVLocModel``, ``MVLoc``
wrapper, 4-bit via ``quantization.quantize_linear_layers`` on every decoder layer, embeddings /
``lm_head`` / CLIP / SAM in bfloat16). "small" and "tiny" use ``localize.tiny.PRESETS`` (for CPU).

Weights are random, so the answers are scripted: a logits processor forces InteractVLM's answer
templates ("The contacting body parts are left hand, right hand, and the contact region is
[SEG]", "The affordance type is grasp, and the contact region is [SEG]") token by token, so every
path generates a real answer's number of tokens and ends at [SEG] (forcing changes which token is
fed back, not the work done). The tokenizer is ``tiny``'s (a 400-piece SentencePiece model in
LLaMA's format): it splits words more finely than LLaMA's 32000 pieces, so prompts (~140 text
tokens + 256 image tokens) and answers (23 and 27 tokens with [SEG]) are somewhat LONGER than
with the real tokenizer (answers of about 20 tokens): prefill and frame times err high; ms per
token does not depend on it.

Measured, medians of --repeats runs after one warm-up (CUDA synchronised around each run):

* stages of one question: CLIP encode (``MVLoc.encode_image``); prefill (``MVLoc.generate`` with
  ``max_new_tokens=1``: prompt embedding, one forward over prompt + image tokens, one token);
  ms per decode token ((full scripted answer - prefill) / (answer tokens - 1), KV cache, batch 1);
  SAM ViT-H encode of the 4 body renders (``MVLoc.image_embeddings``, renders of the project's
  renderer at --render-size); mask decode of 4 views (``decode_masks``, on the device); lift
  (``PreparedViews.lift`` of the body);
* decode ms/token divided by the bandwidth floor: the bytes a decode step must read, every LLaMA
  weight except the input embedding table (one row read per token): decoder layers (with NF4's
  quantisation statistics), final norm and ``lm_head``; divided by the device's memory bandwidth,
  nominal (table by GPU name) and measured here (device-to-device copy of a large tensor,
  2 x bytes / time). The KV cache (~0.3 GB at this length for 13B) is not counted in the floor;
* ms per decode token with each KV cache of --decode (batch 1, the same scripted answer; median
  over --decode-repeats of (answer - prefill) / (tokens - 1), prefill and answer timed in pairs):
  "dynamic" (transformers' ``DynamicCache``, the figure above, measured again), "static"
  (``localize.decoding``: preallocated cache, static shapes per step) and "static-compiled" (that
  step through ``torch.compile(mode="reduce-overhead")``: CUDA graphs on CUDA, inductor's C++
  kernels on a CPU; its first call, timed apart, compiles) and "static-compiled-unguarded" (the
  same, dynamo's guards skipped after compiling: ``StaticDecoder.skip_guard_eval``); each
  divided by the floor;
* per frame: ``InteractionEstimator(model, model, ...).estimate(image, N detections,
  image_region="full")`` for each N of --detections, with ``batch_detections`` True and False
  (each detection asks the human-contact and the affordance question of the one model, on the
  body and on a cached box proxy); body and proxy renders and their SAM embeddings are warm
  (cached by the estimator, as after the first frame);
* depth frames: each detection's geometry is a new point cloud (``PointCloudGeometry``, 2048
  random points on a sphere, "depth") every frame, so every frame renders 4 splat views per
  detection and SAM-encodes them: frame time for N of --depth-detections (batched; median of
  --depth-repeats, 2 by default: at 1024 px the splat renders take seconds on a CPU);
* the InteractVLM-style reference per question, measured end to end in the same run: CLIP
  encode, generation WITHOUT KV cache (every step re-runs the whole sequence, as InteractVLM's
  ``use_cache=False``; the answer + "." + EOS, as its ``evaluate`` generates on to EOS), SAM
  encode of the 4 renders (InteractVLM encodes them for every query), mask decode and lift;
  against the project's question (CLIP, KV-cached generation stopping at [SEG], decode, lift with
  cached SAM embeddings). The reference per frame is COMPOSED: 2 N x the reference question
  (InteractVLM answers each question separately), compared with the measured frame;
* peak GPU memory (``torch.cuda.max_memory_allocated``, reset per section: build, stages, frames,
  depth; ``peak_gib`` is the largest after the build, ``build_peak_gib`` the build's, which for
  4-bit holds the bfloat16 model before quantisation; "n/a" on CPU).

Not measured: real weights (answers scripted, masks meaningless), LLaMA's own tokenizer (see
above), person association / cropping (whole image), 8-bit, the joint model's third question,
two separate 13B models for contact and affordance (one model serves both here: same time, half
the memory of a deployment with two), ROS transport, first-frame rendering and disk caches, the
scripting itself (one small host-device copy per answer and step, inside the project path's
times), CLIP re-encoding that LLaVA may do per uncached step (counted once per question).

    python benchmarks/real_size.py                       # CUDA: --preset real, bf16 and 4bit
    python benchmarks/real_size.py --preset small --render-size 256 --repeats 1   # CPU (float32)
    python benchmarks/real_size.py --preset tiny --render-size 256 --repeats 1    # CPU smoke run (~30 s)
    python benchmarks/real_size.py --dtypes bf16 --detections 1 --depth-detections 1 --depth-repeats 1
        # CUDA, shortest run with the decode modes (compile time on a GPU not measured yet)

Do not run "real" on a CPU (26 GB of weights in bfloat16). The last line:
``RESULT preset=... device=... <dtype>_decode_ms_per_token=... <dtype>_floor_ratio=...
<dtype>_decode_ms_per_token_<mode>=... <dtype>_floor_ratio_<mode>=... (mode: dynamic, static,
static_compiled, static_compiled_unguarded; also <dtype>_floor_ratio_measured_<mode>,
<dtype>_decode_first_call_s_<mode>, <dtype>_decode_<mode>_skipped=failed)
<dtype>_frame_ms_<N>=... <dtype>_batched_speedup_<N>=... <dtype>_reference_ratio=...
<dtype>_peak_gib=... ...``. No timing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.util
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from interactvlm_ros.detection import Detection
from interactvlm_ros.geometry.body import load_body_model
from interactvlm_ros.geometry.camera import BODY_VIEWS
from interactvlm_ros.geometry.objects import ObjectLibrary, PointCloudGeometry
from interactvlm_ros.localize.checkpoint import RANDOM_WEIGHTS_KEY
from interactvlm_ros.localize.model import MVLocModel, MVLocSpec
from interactvlm_ros.localize.predictor import MAX_NEW_TOKENS, MVLoc
from interactvlm_ros.localize.prompts import (HUMAN_CONTACT_PROMPT, IMAGE_TOKEN_INDEX, OBJECT_AFFORDANCE_PROMPT,
                                              SEG_TOKEN)
from interactvlm_ros.localize.quantization import move_unquantized, quantize_linear_layers
from interactvlm_ros.localize.tiny import CLIP_PREPROCESSOR, PRESETS as TINY_PRESETS, _write_tokenizer
from interactvlm_ros.localize.tokenizer import LlamaSlowTokenizer
from interactvlm_ros.multiview import prepare_body_views
from interactvlm_ros.pipeline import InteractionEstimator
from interactvlm_ros.render.views import Renderer

#: LLaVA-LLaMA-2-13B as InteractVLM releases it (config.json; vocabulary 32000 + [SEG],
#: <im_start>, <im_end>).
LLAMA_13B = dict(hidden_size=5120, intermediate_size=13824, num_hidden_layers=40, num_attention_heads=40,
                 num_key_value_heads=40, max_position_embeddings=4096, rms_norm_eps=1e-5)
LLAMA_13B_VOCAB = 32003
#: openai/clip-vit-large-patch14's vision tower (224 px, 256 patch tokens + CLS).
CLIP_VIT_L14 = dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                    image_size=224, patch_size=14, projection_dim=768)
#: SAM ViT-H's image encoder, as ``sam_keys.hf_config_from_sam_state_dict`` reads it from the
#: released weights.
SAM_VIT_H = dict(hidden_size=1280, num_hidden_layers=32, num_attention_heads=16, global_attn_indexes=[7, 15, 23, 31],
                 mlp_dim=5120, image_size=1024, patch_size=16, window_size=14, output_channels=256,
                 layer_norm_eps=1e-6, hidden_act="gelu")
#: SAM's standard mask decoder (width 256, 2 two-way layers, 8 heads, MLP 2048).
SAM_MASK_DECODER = dict(hidden_size=256, mlp_dim=2048, num_hidden_layers=2, num_attention_heads=8,
                        iou_head_hidden_dim=256, hidden_act="relu", layer_norm_eps=1e-5)
#: preset -> (LLaMA sizes, CLIP sizes, SAM vision sizes, SAM decoder sizes, vocabulary size).
PRESETS = {"real": (LLAMA_13B, CLIP_VIT_L14, SAM_VIT_H, SAM_MASK_DECODER, LLAMA_13B_VOCAB), **TINY_PRESETS}

#: --dtypes name -> (compute dtype, quantisation of the decoder layers).
DTYPES = {"bf16": (torch.bfloat16, "none"), "fp16": (torch.float16, "none"), "fp32": (torch.float32, "none"),
          "4bit": (torch.bfloat16, "4bit")}

#: --decode name -> (``MVLoc.decode_cache``, ``MVLoc.compile_decode``, ``StaticDecoder.skip_guard_eval``).
DECODE_MODES = {"dynamic": ("dynamic", False, False), "static": ("static", False, False),
                "static-compiled": ("static", True, False), "static-compiled-unguarded": ("static", True, True)}

#: Nominal memory bandwidth, bytes/s, by (all lower-case substrings of) the GPU's name.
NOMINAL_BANDWIDTH = [(("h200",), 4.8e12), (("h100", "pcie"), 2.0e12), (("h100", "hbm3"), 3.35e12),
                     (("h100", "sxm"), 3.35e12), (("a100", "80gb"), 2.0e12), (("l40s",), 0.864e12)]

ANSWERS = {HUMAN_CONTACT_PROMPT: "The contacting body parts are left hand, right hand, and the contact region is",
           OBJECT_AFFORDANCE_PROMPT: "The affordance type is grasp, and the contact region is"}
#: The question of the per-stage timings.
QUESTION = HUMAN_CONTACT_PROMPT.format(object="cup")
LABELS = ["cup", "bottle", "bowl", "cell phone", "book", "laptop", "remote", "sports ball", "apple", "vase"]
#: Points per depth cloud (PIAD's clouds have 2048).
DEPTH_POINTS = 2048


# ------------------------------------------------------------------------------- scripting
class ScriptedAnswers:
    """Logits processor forcing, per question (recognised by its prompt), its template's tokens
    and then [SEG]. The forced score rows are built once per device (no work per step beyond
    reading the ids)."""

    def __init__(self, model: MVLoc, questions: list[tuple[str, str]]):
        seg = model.tokenizer.convert_tokens_to_ids(SEG_TOKEN)
        plans = {}
        for question, answer in questions:
            plans[tuple(model.prompt_ids(question))] = model.tokenizer.encode(answer, add_special_tokens=False) + [seg]
        self.plans = sorted(plans.items(), key=lambda plan: -len(plan[0]))
        self.tokens = sorted({t for _, tokens in self.plans for t in tokens})
        self._rows: dict[tuple, torch.Tensor] = {}

    def answer_tokens(self, model: MVLoc, question: str) -> list[int]:
        prompt = tuple(model.prompt_ids(question))
        return next(tokens for ids, tokens in self.plans if ids == prompt)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        ids = tuple(input_ids[0].tolist())
        prompt, tokens = next(plan for plan in self.plans if ids[:len(plan[0])] == plan[0])
        key = (scores.device, scores.dtype)
        if key not in self._rows:
            rows = torch.full((len(self.tokens), scores.shape[-1]), float("-inf"), dtype=scores.dtype)
            rows[torch.arange(len(self.tokens)), torch.tensor(self.tokens)] = 0.0
            self._rows[key] = rows.to(scores.device)
        row = self.tokens.index(tokens[len(ids) - len(prompt)])
        return self._rows[key][row:row + 1]


class ScriptedMVLoc(MVLoc):
    """MVLoc whose answers follow :attr:`script` unless a processor is given (the estimator calls
    ``generate`` / ``generate_batch`` without one)."""

    script: ScriptedAnswers | None = None

    def generate_batch(self, requests, max_new_tokens=MAX_NEW_TOKENS, logits_processor=None):
        return super().generate_batch(requests, max_new_tokens, logits_processor or self.script)


# ---------------------------------------------------------------------------------- building
@contextlib.contextmanager
def default_dtype(dtype: torch.dtype):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


@torch.no_grad()
def usual_scale_(encoder: torch.nn.Module) -> None:
    """``tiny._randomise_sam_image_encoder``'s rule, in place on the device: transformers
    initialises SAM's image encoder at 1e-10 (outputs ~1e-20); matrices N(0, 1/fan_in), biases and
    position tables N(0, 0.1^2), LayerNorm weights 1 + N(0, 0.1^2)."""
    for name, tensor in encoder.named_parameters():
        if "layer_norm" in name and name.endswith("weight"):
            tensor.normal_(1.0, 0.1)
        elif tensor.dim() >= 2 and name.endswith("weight"):
            tensor.normal_(0.0, tensor[0].numel() ** -0.5)
        else:
            tensor.normal_(0.0, 0.1)


def build_mvloc(preset: str, device: torch.device, dtype_name: str, tokenizer_dir: Path) -> MVLoc:
    """The preset's MV-Loc with random weights, created on ``device`` in the compute dtype (no
    CPU copy of the weights), wrapped as ``builder.load_mvloc`` wraps a loaded checkpoint; with
    "4bit" every decoder layer then goes through ``quantize_linear_layers`` as in ``load_mvloc``
    (which passes each weight through the CPU on its way to bitsandbytes)."""
    from transformers import CLIPImageProcessorPil, CLIPVisionConfig, CLIPVisionModel, LlamaConfig, SamConfig
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    llama_sizes, clip_sizes, sam_vision, sam_decoder, vocab_size = PRESETS[preset]
    compute_dtype, quantization = DTYPES[dtype_name]
    tokenizer = LlamaSlowTokenizer.from_pretrained(tokenizer_dir)
    config = {  # the config.json keys MVLocSpec and MVLoc read, with InteractVLM's 3D-contact values
        "model_type": "llava", **llama_sizes, "vocab_size": max(len(tokenizer), vocab_size or 0),
        "hidden_act": "silu", "tie_word_embeddings": False, "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id, "pad_token_id": 0, "vision_tower": "openai/clip-vit-large-patch14",
        "mm_hidden_size": clip_sizes["hidden_size"], "mm_vision_select_layer": -2, "mm_use_im_start_end": True,
        "out_dim": 256, "img_emb_len": 255, "seg_token_idx": tokenizer.convert_tokens_to_ids(SEG_TOKEN),
        "token_type": "Gen", "multiview_channels": 4, "multiview_cam_cond": True, "cam_encoder_type": "vi_v1",
        RANDOM_WEIGHTS_KEY: True, "interactvlm_ros_preset": preset,
    }
    spec = MVLocSpec.from_config(config)
    llama = LlamaConfig(**{k: v for k, v in config.items() if k in llama_sizes or k in (
        "vocab_size", "hidden_act", "tie_word_embeddings", "bos_token_id", "eos_token_id", "pad_token_id")})
    sam = SamConfig(vision_config=sam_vision, mask_decoder_config=sam_decoder, prompt_encoder_config=dict(
        image_size=sam_vision["image_size"], patch_size=sam_vision["patch_size"]))
    with torch.device(device), default_dtype(compute_dtype):
        model = MVLocModel(spec, llama, sam, vision_tower=CLIPVisionModel(CLIPVisionConfig(**clip_sizes)))
        usual_scale_(model.sam.vision_encoder)
    if quantization != "none":
        for layer in model.language_model.model.layers:
            quantize_linear_layers(layer, quantization, compute_dtype, device)
            move_unquantized(layer, device, compute_dtype)
    model.eval()
    image_processor = CLIPImageProcessorPil(**{k: v for k, v in CLIP_PREPROCESSOR.items()
                                               if k != "image_processor_type"})
    return ScriptedMVLoc(model, tokenizer, image_processor, config, f"random-{preset}-{dtype_name}")


def parameter_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _tensor_bytes(value) -> int:
    return value.numel() * value.element_size() if isinstance(value, torch.Tensor) else 0


def _quant_state_bytes(state) -> int:
    """Bytes of a bitsandbytes NF4 ``QuantState`` (absmax, code, offset, nested state)."""
    if state is None:
        return 0
    total = sum(_tensor_bytes(getattr(state, name, None)) for name in ("absmax", "code", "offset"))
    return total + _quant_state_bytes(getattr(state, "state2", None))


def streamed_bytes(language_model: torch.nn.Module) -> int:
    """Bytes a decode step reads: every LLaMA parameter and buffer except the input embedding
    table (decoder layers incl. NF4 statistics, final norm, ``lm_head``)."""
    embedding = language_model.get_input_embeddings()
    skip = {id(t) for t in embedding.parameters()}
    total = 0
    for tensor in [*language_model.parameters(), *language_model.buffers()]:
        if id(tensor) in skip:
            continue
        total += _tensor_bytes(tensor) + _quant_state_bytes(getattr(tensor, "quant_state", None))
    return total


# --------------------------------------------------------------------------------- measuring
def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_ms(function, repeats: int, device: torch.device):
    """(median milliseconds of ``repeats`` calls, last result), one uncounted call first."""
    function()
    times, result = [], None
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        result = function()
        synchronize(device)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), result


class PeakMemory:
    """Peak GPU memory per section (``max_memory_allocated``); None on CPU."""

    def __init__(self, device: torch.device):
        self.device = device
        self.sections: dict[str, float] = {}

    @contextlib.contextmanager
    def section(self, name: str):
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        yield
        if self.device.type == "cuda":
            self.sections[name] = torch.cuda.max_memory_allocated(self.device) / 2**30

    def peak(self, exclude: tuple[str, ...] = ()) -> float | None:
        values = [v for k, v in self.sections.items() if k not in exclude]
        return max(values) if values else None


def gb_per_s(value: float) -> str:
    return f"{value / 1e9:,.1f} GB/s"


def measured_bandwidth(device: torch.device) -> float:
    """Bytes/s of a copy between two large tensors on the device (read + write = 2 x bytes)."""
    size = 2 * 2**30 if device.type == "cuda" else 256 * 2**20
    source = torch.ones(size, dtype=torch.uint8, device=device)
    target = torch.empty_like(source)
    iterations = 20 if device.type == "cuda" else 5
    target.copy_(source)
    synchronize(device)
    start = time.perf_counter()
    for _ in range(iterations):
        target.copy_(source)
    synchronize(device)
    elapsed = time.perf_counter() - start
    del source, target
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return 2 * size * iterations / elapsed


def nominal_bandwidth(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device).lower()
    return next((value for parts, value in NOMINAL_BANDWIDTH if all(p in name for p in parts)), None)


def set_decode_mode(model: MVLoc, mode: str) -> None:
    """The model's decode loop as ``mode`` of :data:`DECODE_MODES` says."""
    from interactvlm_ros.localize.decoding import StaticDecoder

    model.decode_cache, model.compile_decode, skip_guard_eval = DECODE_MODES[mode]
    if model.decode_cache == "static":
        model.static_decoder = model.static_decoder or StaticDecoder()
        model.static_decoder.skip_guard_eval = skip_guard_eval


def decode_per_token(model: MVLoc, features: torch.Tensor, mode: str, expected: list[int], repeats: int,
                     device: torch.device) -> tuple[float, float]:
    """(ms per decode token, seconds of the first call) of the scripted answer to QUESTION with
    the KV cache of ``mode`` (:data:`DECODE_MODES`): the median over ``repeats`` pairs, each a
    prefill (``max_new_tokens=1``) followed by the whole answer, of (answer - prefill) /
    (tokens - 1) (paired, so that a slow spell of a shared machine shifts both). The first call
    is timed apart and not counted (the first compiled mode compiles the step there, and on CUDA
    records its CUDA graph; later compiled modes reuse it); the answer must equal ``expected``.
    The model is back on the dynamic cache afterwards."""
    set_decode_mode(model, mode)

    def timed(max_new_tokens):
        synchronize(device)
        start = time.perf_counter()
        reply = model.generate(features, QUESTION, max_new_tokens)
        synchronize(device)
        return (time.perf_counter() - start) * 1e3, reply

    try:
        first, answer = timed(MAX_NEW_TOKENS)
        timed(1)
        per_token = []
        for _ in range(repeats):
            prefill, _ = timed(1)
            whole, answer = timed(MAX_NEW_TOKENS)
            per_token.append((whole - prefill) / max(1, len(answer.token_ids) - 1))
    finally:
        set_decode_mode(model, "dynamic")
    if answer.token_ids != expected:
        raise RuntimeError(f"{mode} decoding answered {answer.token_ids}, the dynamic path {expected}")
    return statistics.median(per_token), first / 1e3


@torch.inference_mode()
def generate_without_cache(model: MVLoc, features: torch.Tensor, question: str, tokens: list[int]):
    """InteractVLM-style generation (``use_cache=False``): every step runs the whole sequence
    (prompt, image tokens, answer so far) with hidden states; the greedy pick is computed and
    ``tokens`` (the scripted answer) is fed back. Returns the hidden state that predicted [SEG]."""
    ids = model.prompt_ids(question)
    position = ids.index(IMAGE_TOKEN_INDEX)
    text_ids = [i for i in ids if i != IMAGE_TOKEN_INDEX]
    lm = model.model.language_model
    embed = lm.get_input_embeddings()
    seg_hidden = None
    for token in tokens:
        embedded = embed(torch.tensor([text_ids], device=embed.weight.device))
        inputs = torch.cat([embedded[:, :position], features.to(embedded.dtype), embedded[:, position:]], dim=1)
        out = lm(inputs_embeds=inputs, use_cache=False, output_hidden_states=True)
        int(out.logits[0, -1].argmax())  # the greedy pick (overridden by the script)
        if token == model.spec.seg_token_idx and seg_hidden is None:
            seg_hidden = out.hidden_states[-1][0, -1]
        text_ids.append(token)
    return seg_hidden


def check_scripted(estimate, expected: int) -> None:
    """Every answer of the frame followed its script to [SEG] (else the work would not be a
    real answer's)."""
    stops = [part.stop_reason for i in estimate.interactions for part in (i.human_contact, i.object_affordance)
             if part is not None]
    if len(stops) != expected or any(stop != "seg" for stop in stops):
        raise RuntimeError(f"expected {expected} answers ending in [SEG], got stop reasons {stops}")


def depth_detections(count: int) -> list[Detection]:
    return [Detection(LABELS[i % len(LABELS)], (40.0 + 40 * i, 200.0, 80.0 + 40 * i, 260.0), 0.9, f"depth{i}")
            for i in range(count)]


def random_cloud(generator: np.random.Generator) -> np.ndarray:
    """2048 points on a 10 cm sphere 1 m in front of the camera (metres)."""
    points = generator.normal(size=(DEPTH_POINTS, 3))
    return (0.1 * points / np.linalg.norm(points, axis=1, keepdims=True) + (0.0, 0.0, 1.0)).astype(np.float32)


# ------------------------------------------------------------------------------------- runs
def run_dtype(dtype_name: str, args, device: torch.device, tokenizer_dir: Path, photo: np.ndarray, body,
              renderer: Renderer, prepared, bandwidth: dict) -> dict:
    """Everything for one dtype; the model is freed when this returns."""
    memory = PeakMemory(device)
    result: dict[str, float] = {}
    start = time.perf_counter()
    with memory.section("build"):
        model = build_mvloc(args.preset, device, dtype_name, tokenizer_dir)
        synchronize(device)
    build_s = time.perf_counter() - start
    lm = model.model.language_model
    weights_gib = torch.cuda.memory_allocated(device) / 2**30 if device.type == "cuda" else None
    counts = {name: parameter_count(module) / 1e6 for name, module in (
        ("LLaMA", lm), ("CLIP", model.model.vision_tower), ("SAM", model.model.sam))}
    stream = streamed_bytes(lm)
    print(f"\n[{dtype_name}] preset {args.preset}, RANDOM weights built on {device} in {build_s:.1f} s: "
          + ", ".join(f"{k} {v:,.1f} M parameters" for k, v in counts.items())
          + (f"; {weights_gib:.2f} GiB allocated" if weights_gib is not None else ""))

    labels = [LABELS[i % len(LABELS)] for i in range(max(args.detections + args.depth_detections))]
    questions = [(QUESTION, ANSWERS[HUMAN_CONTACT_PROMPT])]
    questions += [(p.format(object=label), answer) for label in labels for p, answer in ANSWERS.items()]
    script = ScriptedAnswers(model, questions)
    model.script = script
    repeats = args.repeats
    cameras = model.cameras(list(BODY_VIEWS))

    # --- stages of one question
    with memory.section("stages"):
        t_clip, features = median_ms(lambda: model.encode_image(photo), repeats, device)
        t_prefill, _ = median_ms(lambda: model.generate(features, QUESTION, max_new_tokens=1), repeats, device)
        t_answer, answer = median_ms(lambda: model.generate(features, QUESTION), repeats, device)
        assert answer.stop_reason == "seg", f"scripted answer did not end at [SEG]: {answer.stop_reason}"
        answer_tokens = len(answer.token_ids)
        decode_ms = (t_answer - t_prefill) / max(1, answer_tokens - 1)
        t_sam, embeddings = median_ms(lambda: model.image_embeddings(prepared.images), repeats, device)
        sparse = model.sparse_prompt_embeddings(answer.seg_embedding, cameras, answer.seg_token)
        t_decode, logits = median_ms(lambda: model.decode_masks(sparse, embeddings, args.render_size, as_tensor=True),
                                     repeats, device)
        t_lift, _ = median_ms(lambda: prepared.lift(logits), repeats, device)

        def project_question():
            _, masks = model.predict(model.encode_image(photo), QUESTION, embeddings, cameras, args.render_size)
            return prepared.lift(masks)

        reference_tokens = script.answer_tokens(model, QUESTION) + model.tokenizer.encode(
            ".", add_special_tokens=False)[-1:] + [model.tokenizer.eos_token_id]

        def reference_question():
            image_features = model.encode_image(photo)
            seg_hidden = generate_without_cache(model, image_features, QUESTION, reference_tokens)
            view_embeddings = model.image_embeddings(prepared.images)
            masks = model.decode_masks(model.sparse_prompt_embeddings(seg_hidden, cameras), view_embeddings,
                                       args.render_size, as_tensor=True)
            return prepared.lift(masks)

        t_project_q, _ = median_ms(project_question, repeats, device)
        t_reference_q, _ = median_ms(reference_question, repeats, device)
    prompt_text = len([i for i in model.prompt_ids(QUESTION) if i != IMAGE_TOKEN_INDEX])
    floor_nominal = stream / bandwidth["nominal"] * 1e3 if bandwidth["nominal"] else None
    floor_measured = stream / bandwidth["measured"] * 1e3
    kv_bytes = (prompt_text + features.shape[1] + answer_tokens) * lm.config.num_hidden_layers * 2 * (
        lm.config.num_key_value_heads * (lm.config.hidden_size // lm.config.num_attention_heads)) * (
        torch.tensor([], dtype=DTYPES[dtype_name][0]).element_size())
    print(f"  {'stage (one question)':44s} {'ms':>9s}")
    print(f"  {'CLIP encode':44s} {t_clip:9.1f}")
    print(f"  {'prefill (generate, max_new_tokens=1)':44s} {t_prefill:9.1f}   {prompt_text} text + "
          f"{features.shape[1]} image tokens")
    print(f"  {'decode, per token (KV cache, batch 1)':44s} {decode_ms:9.2f}   answer of {answer_tokens} tokens "
          f"ending in [SEG] in {t_answer:.1f} ms")
    floors = [f"{floor_measured:.3f} ms at the measured {gb_per_s(bandwidth['measured'])} "
              f"(ratio {decode_ms / floor_measured:.2f})"]
    if floor_nominal:
        floors.insert(0, f"{floor_nominal:.3f} ms at the nominal {gb_per_s(bandwidth['nominal'])} "
                         f"(ratio {decode_ms / floor_nominal:.2f})")
    print(f"    bandwidth floor: {stream / 1e9:.3f} GB read per token (LLaMA weights without the input "
          f"embedding; KV cache of ~{kv_bytes / 1e9:.2f} GB not counted): " + "; ".join(floors))
    print(f"  {f'SAM encode, 4 views ({args.render_size} px renders)':44s} {t_sam:9.1f}")
    print(f"  {'mask decode, 4 views':44s} {t_decode:9.1f}")
    print(f"  {'lift (body)':44s} {t_lift:9.1f}")
    print(f"  per question, end to end: project {t_project_q:.1f} ms (CLIP, KV-cached generation to [SEG], decode, "
          f"lift; SAM embeddings cached); reference {t_reference_q:.1f} ms (CLIP, {len(reference_tokens)} uncached "
          f"steps, SAM encode of 4 views, decode, lift): ratio {t_reference_q / t_project_q:.2f}")
    result.update(clip_ms=t_clip, prefill_ms=t_prefill, decode_ms_per_token=decode_ms, answer_tokens=answer_tokens,
                  sam4_ms=t_sam, mask_decode_ms=t_decode, lift_ms=t_lift, question_ms=t_project_q,
                  reference_question_ms=t_reference_q, reference_ratio=t_reference_q / t_project_q,
                  floor_ratio_measured=decode_ms / floor_measured, streamed_gb=stream / 1e9)
    if floor_nominal:
        result["floor_ratio"] = decode_ms / floor_nominal

    # --- decode per token with each KV cache of --decode (batch 1)
    print(f"  decode per token by KV cache (batch 1, median of {args.decode_repeats} prefill/answer pairs each; "
          f"ratio to the bandwidth floor, measured{' / nominal' if floor_nominal else ''}):")
    with memory.section("decode"):
        for mode in args.decode:
            key = mode.replace("-", "_")
            try:
                mode_ms, first = decode_per_token(model, features, mode, answer.token_ids, args.decode_repeats,
                                                  device)
            except Exception as error:  # e.g. torch.compile failing on this device or with 4-bit layers
                print(f"    {mode:26s} failed: {type(error).__name__}: {str(error).splitlines()[0][:200]}")
                result[f"decode_{key}_skipped"] = "failed"
                continue
            result.update({f"decode_ms_per_token_{key}": mode_ms, f"decode_first_call_s_{key}": first,
                           f"floor_ratio_measured_{key}": mode_ms / floor_measured})
            if floor_nominal:
                result[f"floor_ratio_{key}"] = mode_ms / floor_nominal
            ratios = f"{mode_ms / floor_measured:.2f}" + (f" / {mode_ms / floor_nominal:.2f}" if floor_nominal else "")
            print(f"    {mode:26s} {mode_ms:9.2f} ms   ratio {ratios}   (first call {first:.2f} s)")
    decoder = model.static_decoder
    if decoder is not None:
        print(f"    static shapes (rows, cache length): {sorted(decoder.shapes)}")
        decoder.clear()

    # --- frames with N detections (body + cached box proxy per detection)
    objects = ObjectLibrary(proxies={label: ["box", 0.2] for label in set(labels)})
    estimators = {batch: InteractionEstimator(model, model, body, objects, renderer, render_size=args.render_size,
                                              body_views=prepared, batch_detections=batch) for batch in (True, False)}
    for estimator in estimators.values():
        estimator.warm_up()
    print("  per frame, N detections x 2 questions, image_region full (ms):")
    print(f"    {'N':>3s} {'batched':>9s} {'sequential':>10s} {'speedup':>7s} {'reference*':>10s} {'ratio':>6s}   "
          "stages of the batched frame")
    with memory.section("frames"):
        for count in args.detections:
            detections = [Detection(label, (40.0 + 40 * i, 200.0, 80.0 + 40 * i, 260.0), 0.9, f"d{i}")
                          for i, label in enumerate(labels[:count])]
            times, stages = {}, {}
            for batch, estimator in estimators.items():
                times[batch], estimate = median_ms(
                    lambda: estimator.estimate(photo, detections, image_region="full"), repeats, device)
                stages[batch] = estimate.timings_ms
                check_scripted(estimate, 2 * count)
            reference = 2 * count * t_reference_q
            print(f"    {count:3d} {times[True]:9.1f} {times[False]:10.1f} {times[False] / times[True]:7.2f} "
                  f"{reference:10.1f} {reference / times[True]:6.2f}   "
                  + ", ".join(f"{k} {v:.0f}" for k, v in stages[True].items() if k != "total"))
            result.update({f"frame_ms_{count}": times[True], f"frame_seq_ms_{count}": times[False],
                           f"batched_speedup_{count}": times[False] / times[True],
                           f"reference_ratio_frame_{count}": reference / times[True]})
    print("    speedup: sequential / batched; * reference per frame: composed, 2 N x the measured reference "
          "question; ratio: reference / batched")

    # --- depth frames: a new point cloud per detection every frame
    generator = np.random.default_rng(0)
    with memory.section("depth"):
        for count in args.depth_detections:
            detections = depth_detections(count)

            def depth_frame():
                geometries = {d.id: PointCloudGeometry(random_cloud(generator), "depth") for d in detections}
                return estimators[True].estimate(photo, detections, geometries=geometries, image_region="full")

            t_depth, estimate = median_ms(depth_frame, args.depth_repeats, device)
            check_scripted(estimate, 2 * count)
            print(f"  depth frame, N={count} point clouds (4 splat renders + SAM encodes each per frame): "
                  f"{t_depth:9.1f} ms   " + ", ".join(f"{k} {v:.0f}" for k, v in estimate.timings_ms.items()
                                                        if k != "total"))
            result[f"depth_frame_ms_{count}"] = t_depth
    if device.type == "cuda":
        print("  peak GPU memory, GiB: " + ", ".join(f"{k} {v:.2f}" for k, v in memory.sections.items())
              + ("  (build: the bfloat16 model before its decoder layers are quantised)"
                 if DTYPES[dtype_name][1] != "none" else ""))
        result.update(peak_gib=memory.peak(exclude=("build",)), build_peak_gib=memory.sections["build"],
                      weights_gib=weights_gib)
    else:
        print("  peak GPU memory: n/a (CPU)")
    return result  # the model and everything holding it go with this frame


def describe_machine(device: torch.device) -> str:
    import transformers

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    text = (f"torch {torch.__version__}, transformers {transformers.__version__}, {platform.processor() or 'cpu'} "
            f"({os.cpu_count()} cores, {torch.get_num_threads()} torch threads, load {load:.2f})")
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        free, total = torch.cuda.mem_get_info(device)
        text += (f"; {properties.name} ({total / 2**30:.0f} GiB, {free / 2**30:.0f} GiB free, "
                 f"{properties.multi_processor_count} SMs), CUDA {torch.version.cuda}")
        try:
            import bitsandbytes

            text += f", bitsandbytes {bitsandbytes.__version__}"
        except ImportError:
            text += ", bitsandbytes not installed"
    return text


def main() -> None:
    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=list(PRESETS), default=None,
                        help="model sizes (default: real on CUDA, small on CPU)")
    parser.add_argument("--device", default="cuda:0" if cuda else "cpu")
    parser.add_argument("--dtypes", nargs="+", choices=list(DTYPES), default=None,
                        help="default: bf16 4bit on CUDA, fp32 on CPU (bf16 matmuls are slow on CPUs)")
    parser.add_argument("--detections", nargs="+", type=int, default=[1, 2, 4, 8])
    parser.add_argument("--depth-detections", nargs="+", type=int, default=[1, 4])
    parser.add_argument("--decode", nargs="+", choices=list(DECODE_MODES), default=list(DECODE_MODES),
                        help="KV caches of the per-token decode timing: dynamic (growing DynamicCache), static "
                             "(localize.decoding, preallocated), static-compiled (its step through torch.compile "
                             "'reduce-overhead': CUDA graphs on CUDA, inductor alone on a CPU), "
                             "static-compiled-unguarded (the same without dynamo's guard evaluation once "
                             "compiled); default all. The rest of the benchmark uses the dynamic cache")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--decode-repeats", type=int, default=None,
                        help="prefill/answer pairs per --decode mode (default: max(5, --repeats))")
    parser.add_argument("--depth-repeats", type=int, default=2,
                        help="timed depth frames per N (each renders 4 splat views per detection: seconds at 1024 px)")
    parser.add_argument("--render-size", type=int, default=1024, help="render / lift size (InteractVLM: 1024)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda:0")
    args.preset = args.preset or ("real" if device.type == "cuda" else "small")
    dtypes = args.dtypes or (["bf16", "4bit"] if device.type == "cuda" else ["fp32"])
    if args.preset == "real" and device.type != "cuda":
        parser.error("the real preset needs a GPU (26 GB of weights in bfloat16); use --preset small on a CPU")
    args.decode_repeats = args.decode_repeats or max(5, args.repeats)
    if min(args.detections + args.depth_detections + [args.repeats, args.depth_repeats, args.decode_repeats]) < 1:
        parser.error("detection counts and repeats must be >= 1")
    started = time.perf_counter()
    torch.manual_seed(0)
    print(describe_machine(device))
    if hasattr(os, "getloadavg") and os.getloadavg()[0] > (os.cpu_count() or 1) - 0.5:
        print(f"note: load {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores: CPU timings are contended "
              "(fewer threads, e.g. --threads 1, suffer less)")
    print(f"preset {args.preset}, dtypes {' '.join(dtypes)}, decode {' '.join(args.decode)}, "
          f"detections {args.detections}, depth detections "
          f"{args.depth_detections}, repeats {args.repeats} (depth {args.depth_repeats}), renders {args.render_size} "
          "px; weights are RANDOM "
          "(timing only), answers scripted to InteractVLM's templates")
    runnable, skipped = [], {}
    for name in dtypes:
        if DTYPES[name][1] != "none" and device.type != "cuda":
            skipped[name] = "no_cuda"
            print(f"note: {name} skipped: bitsandbytes quantisation needs a CUDA device")
            continue
        if DTYPES[name][1] != "none" and importlib.util.find_spec("bitsandbytes") is None:
            skipped[name] = "no_bitsandbytes"
            print(f"note: {name} skipped: bitsandbytes is not installed")
            continue
        runnable.append(name)
    bandwidth = {"measured": measured_bandwidth(device), "nominal": nominal_bandwidth(device)}
    print(f"memory bandwidth: measured {gb_per_s(bandwidth['measured'])} (device copy, 2 x bytes / time)"
          + (f", nominal {gb_per_s(bandwidth['nominal'])}" if bandwidth["nominal"] else
             (", nominal unknown for this GPU" if device.type == "cuda" else "")))
    from skimage import data

    photo = data.astronaut()
    body = load_body_model("anny")
    renderer = Renderer()
    start = time.perf_counter()
    prepared = prepare_body_views(body, renderer, None, BODY_VIEWS, args.render_size)
    print(f"body views rendered at {args.render_size} px in {time.perf_counter() - start:.1f} s "
          "(once, not timed below)")
    results = {}
    with tempfile.TemporaryDirectory() as directory:
        _write_tokenizer(Path(directory))
        for name in runnable:
            start = time.perf_counter()
            results[name] = run_dtype(name, args, device, Path(directory), photo, body, renderer, prepared,
                                      bandwidth)
            print(f"  [{name}] done in {time.perf_counter() - start:.0f} s")
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
    print(f"\ntotal wall time {time.perf_counter() - started:.0f} s")
    fields = [f"preset={args.preset}", f"device={device.type}", "weights=random"]
    for name, values in results.items():
        for key, value in values.items():
            fields.append(f"{name}_{key}={value:.4g}" if isinstance(value, float) else f"{name}_{key}={value}")
        if device.type != "cuda":
            fields.append(f"{name}_peak_gib=n/a")
    fields += [f"{name}_skipped={reason}" for name, reason in skipped.items()]
    print("RESULT " + " ".join(fields))


if __name__ == "__main__":
    main()
