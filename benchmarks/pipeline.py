#!/usr/bin/env python3
"""Per-stage timings of the RLL pipeline for one detection, with the tiny and the "small"
(~200 MB) random MV-Loc configurations, and the ratio of this project's path to a reference
path that does what InteractVLM's ``evaluate`` does:

* project path: KV-cached greedy generation stopping at [SEG]; SAM embeddings of the body
  renders computed once (cached), so per detection only the mask decoder runs;
* reference path: generation without a KV cache (InteractVLM's config sets use_cache=False,
  so every step re-runs the whole sequence) up to the end of the answer ("[SEG]", ".", EOS:
  two tokens past [SEG]), and SAM's image encoder re-run on the 4 renders for every detection.

Weights are random, so the "answer" is made realistic in length: both paths generate exactly
20 tokens (InteractVLM's answers, e.g. "The contacting body parts are left hand, right hand,
and the contact region is [SEG]", are about 20 LLaMA tokens; fewer if the random model emits
EOS, as printed), the reference 2 more, and the masks are decoded from a fixed random state.
Medians of --repeats runs; ratios are the figures to compare. Then the people stage's cost per
person and frame (BlazePose, placement, body fit): what ``body_pose_source: none`` saves.

    python benchmarks/pipeline.py [--presets tiny small] [--repeats 3] [--render-size 1024]
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time

import numpy as np
import torch

from interactvlm_ros.geometry.body import load_body_model
from interactvlm_ros.geometry.camera import BODY_VIEWS
from interactvlm_ros.localize.builder import load_mvloc
from interactvlm_ros.localize.prompts import HUMAN_CONTACT_PROMPT, IMAGE_TOKEN_INDEX
from interactvlm_ros.localize.tiny import write_tiny_checkpoint
from interactvlm_ros.multiview import prepare_body_views
from interactvlm_ros.render.views import Renderer

QUESTION = HUMAN_CONTACT_PROMPT.format(object="helmet")
#: Tokens of a typical answer up to [SEG] ("The contacting body parts are left hand, right hand,
#: and the contact region is [SEG]" is about 20 LLaMA tokens).
ANSWER_TOKENS = 20


def median_ms(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), result


@torch.inference_mode()
def generate_without_cache(model, features, steps):
    """InteractVLM-style generation: every step re-runs the full sequence (use_cache=False)."""
    ids = model.prompt_ids(QUESTION)
    position = ids.index(IMAGE_TOKEN_INDEX)
    text_ids = [i for i in ids if i != IMAGE_TOKEN_INDEX]
    embed = model.model.language_model.get_input_embeddings()
    for _ in range(steps):
        embedded = embed(torch.tensor([text_ids], device=embed.weight.device))
        inputs = torch.cat([embedded[:, :position], features, embedded[:, position:]], dim=1)
        out = model.model.language_model(inputs_embeds=inputs, use_cache=False, output_hidden_states=True)
        text_ids.append(int(out.logits[0, -1].argmax()))
    return text_ids


def run(preset, repeats, render_size, prepared, directory):
    # SAM at the released models' 1024 px input for both presets (the tiny default is 256).
    checkpoint = write_tiny_checkpoint(directory / preset, preset=preset, emit_seg=False, sam_image_size=1024)
    size_mb = sum(p.stat().st_size for p in checkpoint.rglob("*") if p.is_file()) / 1e6
    model = load_mvloc(checkpoint, checkpoint / "clip")
    from skimage import data

    photo = data.astronaut()
    # Random weights never say [SEG]: generate exactly ANSWER_TOKENS tokens (no [SEG] id
    # matches), the length of a real answer, and decode masks from a fixed state instead.
    model.spec = dataclasses.replace(model.spec, seg_token_idx=-1)
    features = model.encode_image(photo)
    t_clip, features = median_ms(lambda: model.encode_image(photo), repeats)
    t_gen, answer = median_ms(lambda: model.generate(features, QUESTION, max_new_tokens=ANSWER_TOKENS), repeats)
    t_gen_ref, _ = median_ms(lambda: generate_without_cache(model, features, len(answer.token_ids) + 2), repeats)
    seg_embedding = torch.randn(model.spec.hidden_size, generator=torch.Generator().manual_seed(0))
    t_sam, embeddings = median_ms(lambda: model.image_embeddings(prepared.images), max(1, repeats // 2))
    cameras = model.cameras(list(BODY_VIEWS))
    t_dec, logits = median_ms(
        lambda: model.decode_masks(model.sparse_prompt_embeddings(seg_embedding, cameras), embeddings, render_size), repeats)
    t_lift, _ = median_ms(lambda: prepared.lift(logits), repeats)
    ours = t_gen + t_dec + t_lift
    reference = t_gen_ref + t_sam + t_dec + t_lift
    print(f"\n[{preset}] checkpoint {size_mb:.0f} MB, answer {len(answer.token_ids)} tokens, render {render_size}px")
    print(f"  CLIP encode (once per image)    {t_clip:9.1f} ms")
    print(f"  generate, KV cache, stop [SEG]  {t_gen:9.1f} ms   reference (no cache, +2 tokens) {t_gen_ref:9.1f} ms"
          f"   ratio {t_gen_ref / t_gen:5.1f}")
    print(f"  SAM encode 4 renders            {t_sam:9.1f} ms   (project: once per body/mesh; reference: every detection)")
    print(f"  mask decode 4 views             {t_dec:9.1f} ms")
    print(f"  lift                            {t_lift:9.1f} ms")
    print(f"  per detection: project {ours:9.1f} ms, reference {reference:9.1f} ms, ratio {reference / ours:5.1f}")
    return reference / ours


def people_stage(repeats):
    """Median milliseconds per step of the people stage (``body.people``) for the astronaut photo's
    person with assumed intrinsics (PnP), warm-started as in a stream: what ``body_pose_source:
    none`` saves per person and frame."""
    import math

    from skimage import data

    from interactvlm_ros.body.fit import BodyFitter
    from interactvlm_ros.body.people import PeopleEstimator
    from interactvlm_ros.body.pose_source import MediaPipePoseSource
    from interactvlm_ros.detection import Detection
    from interactvlm_ros.geometry.depth import Intrinsics

    photo = data.astronaut()
    focal = 256.0 / math.tan(math.radians(25.0))
    camera = Intrinsics(focal, focal, 255.5, 255.5, 512, 512)
    person = Detection("person", (40.0, 10.0, 470.0, 512.0), 0.9, "person-0")
    from interactvlm_ros.reconstruction import proximity_fields

    steps = {"body_pose": [], "placement": [], "body_fit": [], "proximity": []}
    cloud = np.random.default_rng(0).normal(0.0, 0.05, (2048, 3))  # an object's depth points (2048, as PIAD)
    with MediaPipePoseSource() as source:
        people = PeopleEstimator(source, BodyFitter(), load_body_model("anny"))
        for frame in range(repeats + 1):
            result = people.estimate(photo, [person], intrinsics=camera, stamp=frame * 0.1)
            start = time.perf_counter()
            proximity_fields(result.persons[0].posed.vertices, cloud + result.persons[0].posed.vertices.mean(axis=0))
            result.timings_ms["proximity"] = (time.perf_counter() - start) * 1e3
            if frame:  # the first frame is the cold start
                for name, values in steps.items():
                    values.append(result.timings_ms[name])
    medians = {name: statistics.median(values) for name, values in steps.items()}
    print("\n[people stage] one person (BlazePose + PnP placement + body fit, warm-started) and the proximity "
          "fields of one 2048-point object, per frame (the contact fit of an object without depth: "
          "benchmarks/joint_fit.py)")
    for name, value in medians.items():
        print(f"  {name:30s}  {value:9.1f} ms")
    total = sum(medians.values())
    print(f"  in all                          {total:9.1f} ms   (saved by body_pose_source: none)")
    return total


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "small"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--render-size", type=int, default=1024)
    parser.add_argument("--people-repeats", type=int, default=10, help="frames of the people stage (0: skip it)")
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU; weights are RANDOM (timing only)")
    prepared = prepare_body_views(load_body_model("anny"), Renderer(), None, BODY_VIEWS, args.render_size)
    with tempfile.TemporaryDirectory() as directory:
        from pathlib import Path

        ratios = {preset: run(preset, args.repeats, args.render_size, prepared, Path(directory))
                  for preset in args.presets}
    people = people_stage(args.people_repeats) if args.people_repeats else None
    print("RESULT " + " ".join(f"{preset}_ratio={ratio:.2f}" for preset, ratio in ratios.items())
          + (f" people_ms={people:.1f}" if people is not None else ""))


if __name__ == "__main__":
    main()
