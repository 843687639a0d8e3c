#!/usr/bin/env python3
"""Quantised loading on CUDA: the "small" random preset in bfloat16, 8-bit and 4-bit
(bitsandbytes), printing GPU memory after loading and whether the answer / masks match the
bfloat16 model's. Exits with code 2 without CUDA or bitsandbytes. Weights are random.

    python benchmarks/gpu_quantized.py [--device cuda:0]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

from interactvlm_ros.geometry.camera import BODY_VIEWS
from interactvlm_ros.localize.builder import load_mvloc
from interactvlm_ros.localize.prompts import HUMAN_CONTACT_PROMPT
from interactvlm_ros.localize.tiny import write_tiny_checkpoint


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda:0")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("CUDA is not available")
        return 2
    try:
        import bitsandbytes  # noqa: F401 - only checking that it is installed
    except ImportError:
        print("bitsandbytes is not installed")
        return 2
    from skimage import data

    photo = data.astronaut()
    with tempfile.TemporaryDirectory() as work:
        checkpoint = write_tiny_checkpoint(Path(work) / "small", preset="small")
        reference = None
        for quantization in ("none", "8bit", "4bit"):
            torch.cuda.empty_cache()
            before = torch.cuda.memory_allocated(args.device)
            model = load_mvloc(checkpoint, checkpoint / "clip", args.device, "bfloat16", quantization)
            loaded = (torch.cuda.memory_allocated(args.device) - before) / 2**20
            features = model.encode_image(photo)
            answer = model.generate(features, HUMAN_CONTACT_PROMPT.format(object="helmet"))
            views = torch.zeros(4, 256, 64, 64, device=args.device, dtype=torch.bfloat16)
            masks = model.decode_masks(model.sparse_prompt_embeddings(answer.seg_embedding, model.cameras(list(BODY_VIEWS))),
                                       views, 256)
            if reference is None:
                reference = (answer.text, masks)
                match = "reference"
            else:
                difference = float(abs(masks - reference[1]).max())
                match = f"answer {'equal' if answer.text == reference[0] else 'DIFFERENT'}, max |mask diff| {difference:.3g}"
            print(f"[{quantization}] {loaded:.0f} MiB after loading; {match}")
            del model
    return 0


if __name__ == "__main__":
    sys.exit(main())
