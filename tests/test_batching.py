"""Batched generation gives each request what it would get alone."""

from __future__ import annotations

import gc

import numpy as np
import pytest
import torch

from interactvlm_ros.localize.decoding import StaticDecoder, row_bucket
from interactvlm_ros.localize.prompts import HUMAN_CONTACT_PROMPT, OBJECT_AFFORDANCE_PROMPT

LABELS = ["cup", "tennis racket", "sports ball", "bottle"]


class ScriptedAnswer:
    """Forces request-specific answers: ``length`` free tokens (the model's own argmax), then
    the mask token; recognises its request by the prompt's length and last token."""

    def __init__(self, plans: dict[tuple[int, int], tuple[int, int]]):
        self.plans = plans  # (prompt length, last prompt id) -> (free tokens, forced id)
        self.prompt_lengths = sorted({k[0] for k in plans}, reverse=True)

    def __call__(self, input_ids, scores):
        ids = input_ids[0].tolist()
        for length in self.prompt_lengths:
            plan = self.plans.get((length, ids[length - 1])) if len(ids) >= length else None
            if plan is not None and len(ids) - length == plan[0]:
                forced = torch.full_like(scores, -1e9)
                forced[0, plan[1]] = 0.0
                return forced
        return scores


@pytest.fixture(scope="module")
def plain(tiny_variant_model):
    """The joint tiny model without its [HSEG] arrangement: plainly random answers, which
    differ per prompt (a batch that mixed rows up would show)."""
    return tiny_variant_model("hcontact-ocontact", emit_seg=False)


def features_of(model, seed):
    image = np.random.default_rng(seed).integers(0, 255, (64, 80, 3), np.uint8)
    return model.encode_image(image)


class Recorder:
    """Records each step's next-token scores per prompt and, when given the tokens of an
    earlier run, forces them (teacher forcing: random weights have near-ties, down to 1e-4,
    which float rounding may flip; the scores themselves must agree)."""

    def __init__(self, prompts, forced=None):
        self.prompts = [tuple(p) for p in prompts]
        self.scores = {p: [] for p in self.prompts}
        self.forced = forced

    def __call__(self, input_ids, scores):
        ids = tuple(input_ids[0].tolist())
        prompt = next(p for p in self.prompts if ids[:len(p)] == p)
        step = len(ids) - len(prompt)
        self.scores[prompt].append(scores[0].clone())
        if self.forced is None:
            return scores
        forced = torch.full_like(scores, -1e9)
        forced[0, self.forced[self.prompts.index(prompt)][step]] = 0.0
        return forced


def test_free_answers_match_one_by_one(plain):
    """Four requests over two images with questions of different lengths: per step and row,
    the batch's next-token scores equal those of the request generated alone."""
    first, second = features_of(plain, 0), features_of(plain, 1)
    requests = [(first, HUMAN_CONTACT_PROMPT.format(object=LABELS[0])),
                (second, OBJECT_AFFORDANCE_PROMPT.format(object=LABELS[1])),
                (first, HUMAN_CONTACT_PROMPT.format(object=LABELS[2])),
                (second, HUMAN_CONTACT_PROMPT.format(object=LABELS[3]))]
    prompts = [plain.prompt_ids(q) for _, q in requests]
    alone_scores = Recorder(prompts)
    alone = [plain.generate(features, question, 6, alone_scores) for features, question in requests]
    batch_scores = Recorder(prompts, forced=[a.token_ids for a in alone])
    batched = plain.generate_batch(requests, 6, batch_scores)
    assert [a.token_ids for a in batched] == [a.token_ids for a in alone]
    assert [a.stop_reason for a in batched] == [a.stop_reason for a in alone]
    for prompt in batch_scores.prompts:
        assert len(batch_scores.scores[prompt]) == len(alone_scores.scores[prompt]) == 6
        for b, a in zip(batch_scores.scores[prompt], alone_scores.scores[prompt]):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
    assert len({tuple(a.token_ids) for a in alone}) > 1  # the rows differ: a mix-up would show
    assert plain.generate_batch([], 4) == []


def test_mask_tokens_at_different_steps_give_the_same_embeddings(plain):
    """Each sequence leaves the batch at its own mask token ([HSEG], [OSEG], [SEG] after 0, 3
    and 5 free tokens); its mask embedding equals the one generated alone."""
    features, other = features_of(plain, 2), features_of(plain, 3)
    questions = [HUMAN_CONTACT_PROMPT.format(object=label) for label in LABELS[:3]]
    ids = [plain.prompt_ids(q) for q in questions]
    tokens = {name: i for i, name in plain.seg_tokens.items()}
    plans = {(len(p), p[-1]): plan for p, plan in zip(ids, [(0, tokens["[HSEG]"]), (3, tokens["[OSEG]"]),
                                                            (5, tokens["[SEG]"])])}
    assert len(plans) == 3
    script = ScriptedAnswer(plans)
    # The last request repeats the second question for another image (two cups, two people).
    requests = [(features, q) for q in questions] + [(other, questions[1])]
    batched = plain.generate_batch(requests, 16, script)
    alone = [plain.generate(f, q, 16, script) for f, q in requests]
    assert [a.seg_token for a in batched] == ["[HSEG]", "[OSEG]", "[SEG]", "[OSEG]"]
    assert not torch.allclose(alone[1].seg_embedding, alone[3].seg_embedding)
    for b, a in zip(batched, alone):
        assert b.token_ids == a.token_ids and b.stop_reason == a.stop_reason == "seg" and b.text == a.text
        torch.testing.assert_close(b.seg_embedding, a.seg_embedding, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="max_new_tokens"):
        plain.generate_batch([(features, questions[0])], 0)


def live_storages() -> dict[int, torch.Tensor]:
    """Storage address -> one live CPU tensor on it, of every dense tensor the garbage collector
    sees once unreachable cycles are collected (sparse ones, e.g. lifting matrices other tests
    keep, have no single storage and are never made by decoding)."""
    gc.collect()
    found = {}
    for obj in gc.get_objects():
        if type(obj) in (torch.Tensor, torch.nn.Parameter) and obj.device.type == "cpu" and obj.layout == torch.strided:
            storage = obj.untyped_storage()
            if storage.nbytes():
                found.setdefault(storage.data_ptr(), obj)
    return found


@pytest.mark.parametrize("decode_cache", ["dynamic", "static"])
@pytest.mark.parametrize("images", [1, 2])
def test_decoding_keeps_only_the_last_prompt_positions(plain, monkeypatch, decode_cache, images):
    """While answers are decoded, nothing of the prompts' other positions is alive: no logits or
    hidden states of every position (one prefix prefill per image), no per-image KV cache beside
    the batch's. At each decode step, every floating-point tensor made by generate_batch,
    outside the step's KV cache, holds at most one vocabulary-wide or hidden-wide vector per
    batch row. (One request alone: its whole prompt is the prefix.)"""
    features = [features_of(plain, 10 + i) for i in range(images)]
    questions = [HUMAN_CONTACT_PROMPT.format(object=label) for label in LABELS[:3]]
    requests = [(features[0], questions[0])] if images == 1 else \
        [(features[i % images], q) for i, q in enumerate(questions)]
    lm = plain.model.language_model
    widths = {lm.config.vocab_size, lm.config.hidden_size}
    rows = row_bucket(len(requests))
    decoder = StaticDecoder(bucket=1024)  # no growth: the only static cache is the step's
    monkeypatch.setattr(plain, "decode_cache", decode_cache)
    monkeypatch.setattr(plain, "static_decoder", decoder)
    before = live_storages()  # held: no address of theirs can be reused during the call
    steps = []

    def check(module, args, kwargs):
        if kwargs.get("input_ids") is None or kwargs["input_ids"].shape[1] != 1:
            return  # a prefill
        cache = kwargs["past_key_values"]
        kv = {t.untyped_storage().data_ptr() for layer in cache.layers for t in (layer.keys, layer.values)}
        kept = []
        for address, tensor in live_storages().items():
            if address in before or address in kv or not tensor.is_floating_point():
                continue
            vectors = tensor.untyped_storage().nbytes() // (tensor.shape[-1] * tensor.element_size())
            if tensor.shape[-1] not in widths or vectors > rows:
                kept.append(tuple(tensor.shape))
        steps.append(kept)

    handle = lm.model.register_forward_pre_hook(check, with_kwargs=True)
    try:
        seg = next(i for i, token in plain.seg_tokens.items() if token == "[SEG]")
        script = ScriptedAnswer({(len(p), p[-1]): (3, seg)
                                 for p in (plain.prompt_ids(q) for _, q in requests)})
        answers = plain.generate_batch(requests, 8, script)
    finally:
        handle.remove()
    assert [a.stop_reason for a in answers] == ["seg"] * len(requests)
    assert len(steps) == 3 and steps == [[]] * 3, steps
    assert decoder.grown == 0


def test_the_estimator_gives_the_same_results_batched_and_one_by_one(tiny_variant_model):
    """The joint model, three objects, two people (three regions), with object contact:
    batched and sequential estimates agree (answers equal, maps within float rounding)."""
    from interactvlm_ros.detection import Detection
    from interactvlm_ros.geometry.body import load_body_model
    from interactvlm_ros.geometry.objects import ObjectLibrary
    from interactvlm_ros.pipeline import InteractionEstimator

    model = tiny_variant_model("hcontact-ocontact")
    library = ObjectLibrary(proxies={"cup": ["cylinder", 0.1], "bottle": ["cylinder", 0.25]})
    body = load_body_model("anny")
    image = np.random.default_rng(5).integers(0, 255, (120, 320, 3), np.uint8)
    objects = [Detection("cup", (20, 40, 40, 60), 0.9, "a"), Detection("bottle", (220, 30, 240, 80), 0.8, "b"),
               Detection("cup", (120, 100, 140, 118), 0.7, "c")]
    persons = [Detection("person", (0, 0, 60, 120), 0.9, "p"), Detection("person", (200, 0, 260, 120), 0.9, "q")]
    results = []
    for batch in (True, False):
        estimator = InteractionEstimator(model, model, body, library, render_size=64, batch_detections=batch)
        results.append(estimator.estimate(image, objects, persons=persons, region_margin=0.0))
    batched, alone = results
    assert len({i.image_region for i in batched.interactions}) == 3
    for b, a in zip(batched.interactions, alone.interactions):
        assert b.human_contact.answer == a.human_contact.answer and b.human_contact.has_mask
        assert b.object_affordance.contact_answer == a.object_affordance.contact_answer
        np.testing.assert_allclose(b.human_contact.vertex_probabilities, a.human_contact.vertex_probabilities,
                                   atol=1e-5)
        np.testing.assert_allclose(b.object_affordance.probabilities, a.object_affordance.probabilities, atol=1e-5)
        np.testing.assert_allclose(b.object_affordance.contact, a.object_affordance.contact, atol=1e-5)


def test_depth_clouds_of_all_detections_are_encoded_in_one_sam_batch(tiny_model, monkeypatch):
    """Point clouds change every frame, so their 4 views are encoded per call: all detections'
    renders go through SAM's image encoder together, each detection's masks equal to the
    one-by-one estimate's."""
    from interactvlm_ros.detection import Detection
    from interactvlm_ros.geometry.body import load_body_model
    from interactvlm_ros.geometry.objects import ObjectLibrary, PointCloudGeometry
    from interactvlm_ros.pipeline import InteractionEstimator

    rng = np.random.default_rng(6)
    clouds = {}
    for i in range(3):
        points = rng.normal(size=(300, 3))
        points *= (0.05 + 0.03 * i) / np.linalg.norm(points, axis=1, keepdims=True)  # spheres of 5, 8, 11 cm
        clouds[f"d{i}"] = PointCloudGeometry(points.astype(np.float32), "depth")
    detections = [Detection("cup", (10 + 30 * i, 10, 30 + 30 * i, 40), 0.9, f"d{i}") for i in range(3)]
    image = rng.integers(0, 255, (64, 128, 3), np.uint8)
    calls = []
    original = tiny_model.image_embeddings
    monkeypatch.setattr(tiny_model, "image_embeddings", lambda images: calls.append(len(images)) or original(images))
    results = []
    for batch in (True, False):
        estimator = InteractionEstimator(None, tiny_model, load_body_model("anny"), ObjectLibrary(), render_size=64,
                                         batch_detections=batch)
        calls.clear()
        results.append(estimator.estimate(image, detections, geometries=clouds, image_region="full"))
        assert calls == ([12] if batch else [4, 4, 4])
    for b, a in zip(*(r.interactions for r in results)):
        np.testing.assert_allclose(b.object_affordance.probabilities, a.object_affordance.probabilities, atol=1e-5)
