#!/usr/bin/env python3
"""GPU smoke test: the tiny and the "small" random MV-Loc configurations end to end on CUDA
(render, SAM encode, generation, mask decode, lift), printing per-stage times and the peak
GPU memory, for float32 and bfloat16. Exits with a message (code 2) when CUDA is absent.

    python benchmarks/gpu_smoke.py [--device cuda:0] [--render-size 1024] [--repeats 3]

Weights are random: timings and memory only.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path


import torch

from interactvlm_ros.geometry.body import load_body_model
from interactvlm_ros.geometry.objects import ObjectLibrary
from interactvlm_ros.localize.builder import load_mvloc
from interactvlm_ros.localize.tiny import write_tiny_checkpoint
from interactvlm_ros.pipeline import Detection, InteractionEstimator


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda:0")
    parser.add_argument("--render-size", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("CUDA is not available: nothing to measure (run this on a GPU machine)")
        return 2
    from skimage import data

    photo = data.astronaut()
    detections = [Detection("sports ball", (345.0, 345.0, 495.0, 495.0), 0.9, "helmet")]
    print(f"{torch.cuda.get_device_name(args.device)}, torch {torch.__version__}, render {args.render_size}px; "
          "weights are RANDOM")
    leaks = {}
    with tempfile.TemporaryDirectory() as work:
        for preset in ("tiny", "small"):
            checkpoint = write_tiny_checkpoint(Path(work) / preset, preset=preset, sam_image_size=1024)
            for dtype in ("float32", "bfloat16"):
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(args.device)
                before = torch.cuda.memory_allocated(args.device)
                start = time.perf_counter()
                model = load_mvloc(checkpoint, checkpoint / "clip", args.device, dtype)
                estimator = InteractionEstimator(model, model, load_body_model("anny"), ObjectLibrary(),
                                                 render_size=args.render_size)
                estimator.warm_up()
                estimator.estimate(photo, detections)  # object renders and embeddings
                torch.cuda.synchronize(args.device)
                setup_s = time.perf_counter() - start
                runs = []
                for _ in range(args.repeats):
                    result = estimator.estimate(photo, detections)
                    torch.cuda.synchronize(args.device)
                    runs.append(result.timings_ms)
                stages = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
                peak = torch.cuda.max_memory_allocated(args.device) / 2**20
                line = ", ".join(f"{k} {v:.1f}" for k, v in stages.items())
                print(f"[{preset} {dtype}] setup {setup_s:.1f} s; per image (ms): {line}; peak GPU memory {peak:.0f} MiB")
                # What the node's cleanup does: drop every reference, collect, return the cache.
                del estimator, model, result
                gc.collect()
                torch.cuda.empty_cache()
                leaks[f"{preset}_{dtype}"] = torch.cuda.memory_allocated(args.device) - before
                print(f"[{preset} {dtype}] after release: {leaks[f'{preset}_{dtype}'] / 2**20:.1f} MiB more allocated "
                      "than before loading")
    print("RESULT " + " ".join(f"leaked_mib_{k}={v / 2**20:.1f}" for k, v in leaks.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
