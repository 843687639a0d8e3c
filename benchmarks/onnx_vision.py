#!/usr/bin/env python3
"""ONNX Runtime against torch for the vision stages, measured in one run on the
same modules with RANDOM weights.

Modules: CLIP's vision tower, SAM's image encoder and SAM's mask decoder of a preset, float32, on
the CPU ("real": CLIP ViT-L/14 at 224 px and SAM ViT-H at 1024 px, the released models' sizes,
built from ``real_size.py``'s configurations; "small" / "tiny": ``localize.tiny.PRESETS``).
Exported with ``localize.onnx_vision.export_onnx`` (the code behind ``interactvlm-ros
export-onnx``) and run through ``OnnxVision.run`` (I/O binding) on the CPU provider; torch runs
the same wrapper modules under ``inference_mode``. Per stage, median of --repeats after one
warm-up call:

* ``clip``: one 224 x 224 image (``MVLoc.encode_image``'s tower call);
* ``sam_encoder``: one S x S view (``MVLoc.image_embeddings`` encodes views one at a time);
* ``mask_decoder``: 2 answers x 4 views in one call (``MVLoc.low_res_masks``).

The ratio is ONNX Runtime / torch (below 1: onnxruntime is faster). No GPU figures: on a GPU run
it with --device cuda:0 (CUDA / TensorRT providers need onnxruntime-gpu).

    python benchmarks/onnx_vision.py --preset small
    python benchmarks/onnx_vision.py --preset real --repeats 3     # ~4 GB of float32 weights

Last line: ``RESULT preset=... device=... threads=... <stage>_torch_ms=... <stage>_onnxruntime_ms=...
<stage>_ratio=...`` for each stage, and ``export_s=...``. No timing is asserted.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import tempfile
import time
from pathlib import Path

import torch

from interactvlm_ros.localize.onnx_vision import (OnnxVision, VisionModules, _ClipFeatures, _SamImageEncoder,
                                                  _SamMaskDecoder, export_onnx)


def _real_size():
    spec = importlib.util.spec_from_file_location("real_size", Path(__file__).with_name("real_size.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build(preset: str, device: torch.device) -> VisionModules:
    """The preset's CLIP tower and SAM, random weights (SAM's encoder at usual scale), float32."""
    from transformers import CLIPVisionConfig, CLIPVisionModel, SamConfig, SamModel
    from transformers.utils import logging as transformers_logging

    transformers_logging.set_verbosity_error()
    real_size = _real_size()
    _, clip_sizes, sam_vision, sam_decoder, _ = real_size.PRESETS[preset]
    torch.manual_seed(0)
    with torch.device(device):
        sam = SamModel(SamConfig(vision_config=sam_vision, mask_decoder_config=sam_decoder, prompt_encoder_config=dict(
            image_size=sam_vision["image_size"], patch_size=sam_vision["patch_size"])))
        real_size.usual_scale_(sam.vision_encoder)
        tower = CLIPVisionModel(CLIPVisionConfig(**clip_sizes))
    return VisionModules(sam.eval(), tower.eval(), -2, 4, f"random-{preset}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=("real", "small", "tiny"), default="small")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    real_size = _real_size()
    device = torch.device(args.device)
    modules = build(args.preset, device)
    sam_size = modules.sam_image_size
    clip_size = int(modules.vision_tower.config.image_size)
    side = sam_size // int(modules.sam.config.vision_config.patch_size)
    import onnxruntime

    print(f"machine: {real_size.describe_machine(device)}; onnxruntime {onnxruntime.__version__}")
    print(f"preset {args.preset}: CLIP {sum(p.numel() for p in modules.vision_tower.parameters()) / 1e6:.1f} M "
          f"parameters at {clip_size} px, SAM {sum(p.numel() for p in modules.sam.parameters()) / 1e6:.1f} M at "
          f"{sam_size} px (RANDOM weights, float32)")
    with tempfile.TemporaryDirectory(prefix="onnx-vision-bench-") as directory:
        start = time.perf_counter()
        export_onnx(modules, directory, log=lambda line: print("  " + line))
        export_s = time.perf_counter() - start
        vision = OnnxVision.load(directory, modules, torch.float32)
        print(f"export {export_s:.1f} s; providers {vision.providers['sam_image_encoder']}")
        generator = torch.Generator().manual_seed(1)
        inputs = {
            "clip": (torch.randn(1, 3, clip_size, clip_size, generator=generator),),
            "sam_encoder": (torch.randn(1, 3, sam_size, sam_size, generator=generator),),
            "mask_decoder": (torch.randn(8, 256, side, side, generator=generator),
                             torch.randn(8, 1, 4, 256, generator=generator)),
        }
        inputs = {k: tuple(x.to(device) for x in v) for k, v in inputs.items()}
        torch_stages = {"clip": _ClipFeatures(modules.vision_tower, modules.select_layer),
                        "sam_encoder": _SamImageEncoder(modules.sam), "mask_decoder": _SamMaskDecoder(modules.sam)}
        graphs = {"clip": "clip_vision", "sam_encoder": "sam_image_encoder", "mask_decoder": "sam_mask_decoder"}
        result = {"preset": args.preset, "device": device.type, "threads": torch.get_num_threads()}
        print(f"  {'stage':14s} {'torch ms':>10s} {'onnxruntime ms':>15s} {'ratio':>7s}   max |difference| / max |torch|")
        for stage, module in torch_stages.items():
            with torch.inference_mode():
                torch_ms, expected = real_size.median_ms(lambda: module(*inputs[stage]), args.repeats, device)
            ort_ms, got = real_size.median_ms(lambda: vision.run(graphs[stage], *inputs[stage]), args.repeats, device)
            error = float((got - expected).abs().max() / expected.abs().max())
            print(f"  {stage:14s} {torch_ms:10.1f} {ort_ms:15.1f} {ort_ms / torch_ms:7.2f}   {error:.1e}")
            result.update({f"{stage}_torch_ms": f"{torch_ms:.1f}", f"{stage}_onnxruntime_ms": f"{ort_ms:.1f}",
                           f"{stage}_ratio": f"{ort_ms / torch_ms:.3f}"})
        result["export_s"] = f"{export_s:.1f}"
    print(f"load average {os.getloadavg()[0]:.2f} at the end")
    print("RESULT " + " ".join(f"{k}={v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
