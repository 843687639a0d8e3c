#!/usr/bin/env python3
"""Device maps on CUDA: the "small" random preset loaded on one GPU and split by a device map,
printing each device's share, the memory the GPU holds after loading and the time of one
answer (CLIP + generation) and one mask decode. Exits with code 2 without CUDA. Weights are
random (plumbing); the numbers show what moves, not a real model's speed.

With one GPU the split uses the CPU as the second device (what a robot with a small GPU can
do); with two or more GPUs it also runs device_map "auto".

    python benchmarks/gpu_device_map.py [--dtype float32]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from interactvlm_ros.geometry.camera import BODY_VIEWS
from interactvlm_ros.localize.builder import load_mvloc, plan_checkpoint
from interactvlm_ros.localize.prompts import HUMAN_CONTACT_PROMPT
from interactvlm_ros.localize.tiny import write_tiny_checkpoint


def _timed(function, repeats: int = 5) -> tuple[float, object]:
    result = function()  # warm-up
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        result = function()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("CUDA is not available")
        return 2
    y, x = np.mgrid[0:256, 0:256]
    photo = np.stack([x, y, (x + y) // 2], axis=-1).astype(np.uint8)
    question = HUMAN_CONTACT_PROMPT.format(object="helmet")
    with tempfile.TemporaryDirectory() as work:
        checkpoint = write_tiny_checkpoint(Path(work) / "small", preset="small")
        layers = plan_checkpoint(checkpoint).llama_config.num_hidden_layers
        maps = {"single GPU": None,
                "CLIP, SAM, layers 3-5 on cpu": ",".join(
                    ["vision_tower=cpu", "sam=cpu"] + [f"language_model.model.layers.{i}=cpu"
                                                      for i in range(layers // 2, layers)])}
        if torch.cuda.device_count() > 1:
            maps["auto"] = "auto"
        print(f"{torch.cuda.get_device_name(0)} x {torch.cuda.device_count()}, torch {torch.__version__}, "
              f"{args.dtype}, small preset (RANDOM weights)")
        baseline = None
        for name, device_map in maps.items():
            torch.cuda.empty_cache()
            before = torch.cuda.memory_allocated(0)
            model = load_mvloc(checkpoint, checkpoint / "clip", "cuda:0", args.dtype, device_map=device_map)
            held = (torch.cuda.memory_allocated(0) - before) / 2**20
            answer_s, answer = _timed(lambda m=model: m.generate(m.encode_image(photo), question))
            views = model.image_embeddings(np.repeat(photo[None], 4, axis=0))
            prompts = model.sparse_prompt_embeddings(answer.seg_embedding, model.cameras(list(BODY_VIEWS)))
            decode_s, _ = _timed(lambda m=model: m.decode_masks(prompts, views, 256))
            baseline = baseline or (held, answer_s, decode_s)
            print(f"[{name}] {model.placement}")
            print(f"    cuda:0 holds {held:.0f} MiB ({held / baseline[0]:.2f}x of one GPU); "
                  f"answer ({len(answer.token_ids)} tokens) {answer_s * 1e3:.1f} ms ({answer_s / baseline[1]:.2f}x), "
                  f"mask decode {decode_s * 1e3:.1f} ms ({decode_s / baseline[2]:.2f}x)")
            del model
    return 0


if __name__ == "__main__":
    sys.exit(main())
