#!/usr/bin/env python3
"""Where a decode step's time goes, per KV cache of ``MVLoc.generate_batch`` (real_size.py's
--decode modes: dynamic, static, static-compiled, static-compiled-unguarded): torch.profiler over
the decode steps of ``real_size.py``'s scripted answer (batch 1), started by the logits processor
at its first call (after the prefill) and stopped when ``generate`` returns, divided by the steps
(answer tokens - 1). The operators' own time is grouped as

* matmul: ``aten::mm`` / ``addmm`` / ``linear`` ... (projections, MLP, ``lm_head``);
* attention: ``scaled_dot_product_attention`` and its kernels;
* compiled kernels: inductor's generated code (the ``Torch-Compiled Region`` / ``CompiledFxGraph``
  frames' own time: fused elementwise work, norms, rotary, cache writes);
* other ops: every other aten op (elementwise, norms, rotary, copies, indexing, cache updates,
  the argmax and the host copies of the loop);
* outside ops: wall time not inside any operator: Python (transformers' forward, the decode
  loop, the logits processor), dispatch and the profiler's own per-op cost.

dynamo's guard evaluation of a compiled step shows as the operator ``TorchDynamo Cache Lookup``
("other ops"; listed among the top operators).

On CUDA the kernels' device time is grouped the same way and the GPU's idle share of the wall
time is printed (launch and host overhead the GPU waits for). Profiling adds a few microseconds
per operator: "outside ops" and the step time are inflated by it, most for the eager paths (the
unprofiled ms/token is real_size.py's). On a shared CPU use --threads 1: with 2 OpenMP threads
and a busy core, a parallel region can stall for a scheduler slice (~8 ms seen here).

    python benchmarks/decode_profile.py --preset small --threads 1   # CPU (fp32)
    python benchmarks/decode_profile.py --preset real --dtype bf16     # CUDA

Weights are random; answers scripted (real_size.ScriptedAnswers). The last line:
``RESULT preset=... device=... <mode>_step_ms=... <mode>_<group>_pct=... [<mode>_gpu_idle_pct=...]``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from interactvlm_ros.localize.prompts import HUMAN_CONTACT_PROMPT
from interactvlm_ros.localize.tiny import _write_tokenizer
# (this folder is on sys.path when the script runs)
from real_size import (ANSWERS, DECODE_MODES, DTYPES, PRESETS, QUESTION, ScriptedAnswers, build_mvloc,
                       set_decode_mode, synchronize)

GROUPS = ("matmul", "attention", "compiled kernels", "other ops")


def group_of(name: str) -> str | None:
    """The group of a profiler event name; None for this script's own frames."""
    lowered = name.lower()
    if lowered.startswith("profilerstep") or lowered == "generate":
        return None
    if "compiledfxgraph" in lowered or "torch-compiled region" in lowered or "compiledfunction" in lowered \
            or lowered.startswith(("cpp_fused", "triton_", "graph_")):
        return "compiled kernels"
    if "attention" in lowered or "sdpa" in lowered or "flash" in lowered or "softmax" in lowered:
        return "attention"
    if any(part in lowered for part in ("::mm", "addmm", "bmm", "linear", "matmul", "gemm", "gemv", "cublas",
                                        "mkldnn", "onednn", "sgemm")):
        return "matmul"
    return "other ops"


class ProfileDecode:
    """Logits processor: the script's, starting the profiler at its first call (the prefill
    done, CUDA synchronised first)."""

    def __init__(self, script, prof, device: torch.device):
        self.script, self.prof, self.device, self.start = script, prof, device, None

    def __call__(self, input_ids, scores):
        if self.start is None:
            synchronize(self.device)
            self.prof.start()
            self.start = time.perf_counter()
        return self.script(input_ids, scores)


def profiled(model, features, device: torch.device):
    """(ms per decode step, {group: host self ms per step}, {group: device self ms per step},
    steps) over the decode steps of one scripted answer."""
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    prof = profile(activities=activities)
    processor = ProfileDecode(model.script, prof, device)
    answer = model.generate(features, QUESTION, 512, processor)
    synchronize(device)
    wall = (time.perf_counter() - processor.start) * 1e3
    prof.stop()
    steps = len(answer.token_ids) - 1
    host, dev, ops = defaultdict(float), defaultdict(float), []
    for event in prof.key_averages():
        group = group_of(event.key)
        if group is None:
            continue
        host_ms = event.self_cpu_time_total / 1e3 / steps
        dev_ms = getattr(event, "self_device_time_total", 0.0) / 1e3 / steps
        host[group] += host_ms
        dev[group] += dev_ms
        ops.append((event.key, host_ms, dev_ms, event.count / steps))
    return wall / steps, host, dev, steps, ops


def main() -> None:
    cuda = torch.cuda.is_available()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=list(PRESETS), default=None, help="default: real on CUDA, small on CPU")
    parser.add_argument("--device", default="cuda:0" if cuda else "cpu")
    parser.add_argument("--dtype", choices=[k for k, v in DTYPES.items() if v[1] == "none"], default=None,
                        help="default: bf16 on CUDA, fp32 on CPU")
    parser.add_argument("--decode", nargs="+", choices=list(DECODE_MODES), default=list(DECODE_MODES))
    parser.add_argument("--repeats", type=int, default=3, help="profiled answers per mode (the median is kept)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--top", type=int, default=8, help="operators listed per mode")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    preset = args.preset or ("real" if device.type == "cuda" else "small")
    dtype = args.dtype or ("bf16" if device.type == "cuda" else "fp32")
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as directory:
        _write_tokenizer(Path(directory))
        model = build_mvloc(preset, device, dtype, Path(directory))
    model.script = ScriptedAnswers(model, [(QUESTION, ANSWERS[HUMAN_CONTACT_PROMPT])])
    image = np.random.default_rng(0).integers(0, 255, (480, 640, 3), np.uint8)
    features = model.encode_image(image)
    load = os.getloadavg()[0]
    print(f"preset {preset}, {dtype} on {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"load {load:.2f}")
    fields = [f"preset={preset}", f"device={device.type}", f"dtype={dtype}"]
    for mode in args.decode:
        set_decode_mode(model, mode)
        model.generate(features, QUESTION)  # warm-up (compiles for static-compiled)
        model.generate(features, QUESTION, 1)
        runs = sorted((profiled(model, features, device) for _ in range(args.repeats)), key=lambda run: run[0])
        step_ms, host, dev, steps, ops = runs[len(runs) // 2]
        set_decode_mode(model, "dynamic")
        host = {g: host[g] for g in GROUPS}
        outside = step_ms - sum(host.values())
        key = mode.replace("-", "_")
        shares = {**host, "outside ops": outside}
        print(f"\n{mode}: {step_ms:.2f} ms per decode step (profiled; {steps} steps, median of {args.repeats})")
        print("  host time per step: " + ", ".join(f"{g} {v:.2f} ms ({100 * v / step_ms:.0f}%)"
                                                  for g, v in shares.items()))
        column = 2 if device.type == "cuda" else 1
        top = sorted(ops, key=lambda op: -op[column])[:args.top]
        print(f"  top {args.top} operators by {'GPU' if column == 2 else 'host'} self time per step: "
              + "; ".join(f"{op[0]} {op[column]:.3f} ms x{op[3]:.0f}" for op in top))
        fields += [f"{key}_step_ms={step_ms:.4g}"]
        fields += [f"{key}_{g.replace(' ', '_')}_pct={100 * v / step_ms:.3g}" for g, v in shares.items()]
        if device.type == "cuda":
            dev = {g: dev[g] for g in GROUPS}
            busy = sum(dev.values())
            print("  GPU time per step: " + ", ".join(f"{g} {v:.3f} ms" for g, v in dev.items())
                  + f"; idle {step_ms - busy:.3f} ms ({100 * (step_ms - busy) / step_ms:.0f}% of the step)")
            fields += [f"{key}_gpu_busy_ms={busy:.4g}", f"{key}_gpu_idle_pct={100 * (step_ms - busy) / step_ms:.3g}"]
    print("RESULT " + " ".join(fields))


if __name__ == "__main__":
    main()
