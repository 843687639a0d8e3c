#!/usr/bin/env python3
"""Batched detections vs one at a time: the estimate of one image with N detections, each asked
the human-contact and the affordance question (one model serves both, as the tiny checkpoints
do), with ``InteractionEstimator(batch_detections=True)`` (``MVLoc.generate_batch``: the shared
prompt prefix prefilled once, all answers decoded together) and ``False`` (one ``generate`` per
question), in the same run on the same machine.

Weights are random, so answers are scripted to a realistic length: a logits processor forces
InteractVLM's answer templates ("The contacting body parts are left hand, right hand, and the
contact region is [SEG]", "The affordance type is grasp, and the contact region is [SEG]") token
by token, in both paths (forcing changes which token is fed back, not the work done). Both paths
give the same answers (checked here too). Medians of --repeats runs after one warm-up.

    python benchmarks/batching.py [--preset small|tiny] [--detections 8] [--repeats 3] [--render-size 256]

The last line: ``RESULT sequential_ms=<x> batched_ms=<y> speedup=<x/y> generate_speedup=<...>``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import torch

from interactvlm_ros.detection import Detection
from interactvlm_ros.geometry.body import load_body_model
from interactvlm_ros.geometry.objects import ObjectLibrary
from interactvlm_ros.localize.builder import load_mvloc
from interactvlm_ros.localize.tiny import write_tiny_checkpoint
from interactvlm_ros.pipeline import InteractionEstimator
# The scripted answers and the timing of the real-size benchmark (this folder is on sys.path
# when the script runs).
from real_size import ANSWERS, LABELS, ScriptedAnswers, median_ms

CPU = torch.device("cpu")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small", choices=("tiny", "small"))
    parser.add_argument("--detections", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--render-size", type=int, default=256)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU ({os.cpu_count()} cores, load "
          f"{os.getloadavg()[0]:.2f}); preset {args.preset}; weights are RANDOM (timing only)")
    labels = [LABELS[i % len(LABELS)] for i in range(args.detections)]
    detections = [Detection(label, (40.0 + 40 * i, 200.0, 80.0 + 40 * i, 260.0), 0.9, f"d{i}")
                  for i, label in enumerate(labels)]
    questions = [(p.format(object=label), answer) for label in labels for p, answer in ANSWERS.items()]
    from skimage import data

    photo = data.astronaut()
    with tempfile.TemporaryDirectory() as directory:
        checkpoint = write_tiny_checkpoint(Path(directory) / args.preset, preset=args.preset, emit_seg=False,
                                           sam_image_size=1024)
        model = load_mvloc(checkpoint, checkpoint / "clip")
        script = ScriptedAnswers(model, questions)
        generate_batch = model.generate_batch
        model.generate_batch = lambda requests, max_new_tokens=512, logits_processor=None: generate_batch(
            requests, max_new_tokens, script)
        objects = ObjectLibrary(proxies={label: ["box", 0.2] for label in set(labels)})
        body = load_body_model("anny")
        timings, answers = {}, {}
        for batch in (False, True):
            estimator = InteractionEstimator(model, model, body, objects, render_size=args.render_size,
                                             batch_detections=batch)
            estimator.warm_up()
            name = "batched" if batch else "sequential"
            timings[name], result = median_ms(lambda: estimator.estimate(photo, detections, image_region="full"),
                                              args.repeats, CPU)
            answers[name] = [(i.human_contact.answer, i.object_affordance.answer) for i in result.interactions]
            stages = result.timings_ms
            print(f"  {name:10s} {timings[name]:9.1f} ms per image ({args.detections} detections, "
                  f"{2 * args.detections} answers of {len(script.plans[0][1])}/{len(script.plans[-1][1])} tokens): "
                  + ", ".join(f"{k} {v:.0f}" for k, v in stages.items() if k != "total"))
        assert answers["batched"] == answers["sequential"], "batched answers differ from sequential ones"
        features = model.encode_image(photo)
        requests = [(features, q) for q, _ in questions]
        t_seq, _ = median_ms(lambda: [model.generate(f, q) for f, q in requests], args.repeats, CPU)
        t_batch, _ = median_ms(lambda: model.generate_batch(requests), args.repeats, CPU)
        print(f"  generation only: sequential {t_seq:.1f} ms, batched {t_batch:.1f} ms, ratio {t_seq / t_batch:.2f}")
    sequential, batched = timings["sequential"], timings["batched"]
    print(f"RESULT sequential_ms={sequential:.1f} batched_ms={batched:.1f} speedup={sequential / batched:.2f} "
          f"generate_speedup={t_seq / t_batch:.2f}")


if __name__ == "__main__":
    main()
