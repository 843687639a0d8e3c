"""The static-cache decode path (``MVLoc.decode_cache = "static"``, localize/decoding.py) gives
the answers of the dynamic path: same tokens, stop reasons and mask tokens, next-token scores and
mask embeddings within float rounding."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from interactvlm_ros.localize.decoding import StaticDecoder, round_up, row_bucket
from interactvlm_ros.localize.prompts import HUMAN_CONTACT_PROMPT, OBJECT_AFFORDANCE_PROMPT

LABELS = ["cup", "tennis racket", "sports ball", "bottle", "cell phone"]


@pytest.fixture(scope="module")
def plain(tiny_variant_model):
    """The joint tiny model without its [HSEG] arrangement (as in test_batching): plainly random
    answers that differ per prompt, and three mask tokens."""
    return tiny_variant_model("hcontact-ocontact", emit_seg=False)


def features_of(model, seed):
    image = np.random.default_rng(seed).integers(0, 255, (64, 80, 3), np.uint8)
    return model.encode_image(image)


class Script:
    """Logits processor: per prompt, ``free`` steps of the model's own argmax, then ``final``
    forced (a mask token or EOS; None: free to the end). Records every step's scores per
    prompt (the prompts of one test are all different)."""

    def __init__(self, model, plans: dict[str, tuple[int, int | None]]):
        self.plans = {tuple(model.prompt_ids(q)): plan for q, plan in plans.items()}
        self.scores = {p: [] for p in self.plans}

    def __call__(self, input_ids, scores):
        ids = tuple(input_ids[0].tolist())
        prompt = next(p for p in self.plans if ids[:len(p)] == p)
        self.scores[prompt].append(scores[0].clone())
        free, final = self.plans[prompt]
        if final is None or len(ids) - len(prompt) != free:
            return scores
        forced = torch.full_like(scores, -1e9)
        forced[0, final] = 0.0
        return forced


def run_both(model, monkeypatch, requests, max_new_tokens, make_processor=lambda: None, decoder=None,
             compiled=False):
    """(dynamic answers, static answers, dynamic processor, static processor, the decoder)."""
    processors = [make_processor(), make_processor()]
    dynamic = model.generate_batch(requests, max_new_tokens, processors[0])
    decoder = decoder or StaticDecoder()
    with monkeypatch.context() as patch:
        patch.setattr(model, "decode_cache", "static")
        patch.setattr(model, "static_decoder", decoder)
        patch.setattr(model, "compile_decode", compiled)
        static = model.generate_batch(requests, max_new_tokens, processors[1])
    return dynamic, static, processors[0], processors[1], decoder


def assert_same(dynamic, static, scripts=None):
    assert len(dynamic) == len(static)
    for d, s in zip(dynamic, static):
        assert (s.token_ids, s.stop_reason, s.seg_token, s.text) == (d.token_ids, d.stop_reason, d.seg_token, d.text)
        assert (s.seg_embedding is None) == (d.seg_embedding is None)
        if d.seg_embedding is not None:
            torch.testing.assert_close(s.seg_embedding, d.seg_embedding, rtol=1e-5, atol=1e-5)
    if scripts is not None:
        for prompt, recorded in scripts[0].scores.items():
            assert len(scripts[1].scores[prompt]) == len(recorded) > 0
            for s, d in zip(scripts[1].scores[prompt], recorded):
                torch.testing.assert_close(s, d, rtol=1e-5, atol=1e-5)


def test_one_request(plain, monkeypatch):
    """One request (no suffix prefill, one row): 4 free tokens then [OSEG]."""
    question = HUMAN_CONTACT_PROMPT.format(object=LABELS[0])
    oseg = next(i for i, t in plain.seg_tokens.items() if t == "[OSEG]")
    dynamic, static, *scripts, decoder = run_both(plain, monkeypatch, [(features_of(plain, 0), question)], 16,
                                                  lambda: Script(plain, {question: (4, oseg)}))
    assert dynamic[0].stop_reason == "seg" and dynamic[0].seg_token == "[OSEG]" and len(dynamic[0].token_ids) == 5
    assert_same(dynamic, static, scripts)
    assert [rows for rows, _ in decoder.shapes] == [1] and decoder.grown == 0


def test_rows_finishing_at_different_steps(plain, monkeypatch):
    """Five requests over two images, questions of different lengths (5 rows: 8 static rows,
    3 padding): [HSEG] at once, [OSEG] after 2, EOS after 3, [SEG] after 6, one to
    max_new_tokens; a finished row stays in the static batch while the others go on."""
    tokens = {name: i for i, name in plain.seg_tokens.items()}
    eos = plain.tokenizer.eos_token_id
    questions = [HUMAN_CONTACT_PROMPT.format(object=LABELS[0]), OBJECT_AFFORDANCE_PROMPT.format(object=LABELS[1]),
                 HUMAN_CONTACT_PROMPT.format(object=LABELS[2]), OBJECT_AFFORDANCE_PROMPT.format(object=LABELS[3]),
                 HUMAN_CONTACT_PROMPT.format(object=LABELS[4])]
    plans = dict(zip(questions, [(0, tokens["[HSEG]"]), (2, tokens["[OSEG]"]), (3, eos), (6, tokens["[SEG]"]),
                                 (99, None)]))
    first, second = features_of(plain, 1), features_of(plain, 2)
    requests = [(first if i % 2 == 0 else second, q) for i, q in enumerate(questions)]
    assert len({len(plain.prompt_ids(q)) for q in questions}) > 2
    dynamic, static, *scripts, decoder = run_both(plain, monkeypatch, requests, 9, lambda: Script(plain, plans))
    assert [a.stop_reason for a in dynamic] == ["seg", "seg", "eos", "seg", "max_new_tokens"]
    assert [len(a.token_ids) for a in dynamic] == [1, 3, 4, 7, 9]
    assert_same(dynamic, static, scripts)
    assert {rows for rows, _ in decoder.shapes} == {8}


def test_free_answers_to_max_new_tokens(plain, monkeypatch):
    """No logits processor (the batched argmax): three free answers, all to max_new_tokens; and
    max_new_tokens 1 (no decode step at all)."""
    features = features_of(plain, 3)
    requests = [(features, HUMAN_CONTACT_PROMPT.format(object=label)) for label in LABELS[:3]]
    dynamic, static, *_ = run_both(plain, monkeypatch, requests, 7)
    assert [a.stop_reason for a in dynamic] == ["max_new_tokens"] * 3
    assert len({tuple(a.token_ids) for a in dynamic}) > 1  # rows differ: a mix-up would show
    assert_same(dynamic, static)
    dynamic, static, _, _, decoder = run_both(plain, monkeypatch, requests, 1)
    assert_same(dynamic, static)
    assert decoder.shapes == set()


def test_cache_bucket_boundaries_crossed(plain, monkeypatch):
    """Buckets of 4 slots: answers of 10 and 14 tokens cross three boundaries (each a longer
    cache, the content copied); the answers equal the dynamic path's, and again from the pooled
    caches on a second call."""
    questions = [HUMAN_CONTACT_PROMPT.format(object=LABELS[1]), OBJECT_AFFORDANCE_PROMPT.format(object=LABELS[2])]
    seg = plain.spec.seg_token_idx
    plans = dict(zip(questions, [(9, seg), (13, seg)]))
    requests = [(features_of(plain, 4), q) for q in questions]
    dynamic, static, *scripts, decoder = run_both(plain, monkeypatch, requests, 20, lambda: Script(plain, plans),
                                                  StaticDecoder(bucket=4))
    assert [len(a.token_ids) for a in dynamic] == [10, 14]
    assert_same(dynamic, static, scripts)
    lengths = sorted(length for _, length in decoder.shapes)
    assert decoder.grown == len(lengths) - 1 >= 3 and all(b - a == 4 for a, b in zip(lengths, lengths[1:]))
    with monkeypatch.context() as patch:  # the pool's caches, holding the last call's keys and values
        patch.setattr(plain, "decode_cache", "static")
        patch.setattr(plain, "static_decoder", decoder)
        assert_same(dynamic, plain.generate_batch(requests, 20, Script(plain, plans)))
    assert decoder.grown == 2 * (len(lengths) - 1)


def test_compiled_step_traces_whole_and_once_per_shape(plain, monkeypatch):
    """The step through dynamo with ``fullgraph=True`` (no graph break anywhere in the LLaMA
    forward with the static cache) on the eager backend (inductor is the slow part: see the next
    test): the same answers, and one compile per (rows, length) shape however many steps and
    calls (nothing that changes per step is guarded); then the same with guard evaluation
    skipped for compiled shapes (the compiled graphs are picked by their cache shapes alone)."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    questions = [HUMAN_CONTACT_PROMPT.format(object=LABELS[3]), OBJECT_AFFORDANCE_PROMPT.format(object=LABELS[4])]
    seg = plain.spec.seg_token_idx
    plans = dict(zip(questions, [(3, seg), (12, seg)]))
    requests = [(features_of(plain, 5), q) for q in questions]
    decoder = StaticDecoder(bucket=8, compile_options=dict(backend="eager", fullgraph=True, dynamic=False))
    for skip_guard_eval in (False, True, True):
        decoder.skip_guard_eval = skip_guard_eval
        dynamic, static, *scripts, _ = run_both(plain, monkeypatch, requests, 16, lambda: Script(plain, plans),
                                                decoder, compiled=True)
        assert_same(dynamic, static, scripts)
    assert len(decoder.shapes) == 2  # the prompt's bucket and one more
    assert counters["stats"]["unique_graphs"] == len(decoder.shapes)
    torch._dynamo.reset()


@pytest.mark.skipif(os.environ.get("INTERACTVLM_TEST_COMPILE") != "1",
                    reason="inductor compile takes ~25 s cold on a CPU: INTERACTVLM_TEST_COMPILE=1 runs it")
def test_inductor_compiled_step(plain, monkeypatch):
    """The step as deployed (``torch.compile(mode="reduce-overhead")``: inductor, plus CUDA graphs
    on CUDA) gives the dynamic path's answers."""
    torch._dynamo.reset()
    questions = [HUMAN_CONTACT_PROMPT.format(object=LABELS[0]), OBJECT_AFFORDANCE_PROMPT.format(object=LABELS[2])]
    seg = plain.spec.seg_token_idx
    plans = dict(zip(questions, [(2, seg), (5, seg)]))
    requests = [(features_of(plain, 6), q) for q in questions]
    dynamic, static, *scripts, _ = run_both(plain, monkeypatch, requests, 8, lambda: Script(plain, plans),
                                            compiled=True)
    assert_same(dynamic, static, scripts)
    torch._dynamo.reset()


def test_settings_are_checked(plain, monkeypatch):
    features = features_of(plain, 7)
    monkeypatch.setattr(plain, "decode_cache", "paged")
    with pytest.raises(ValueError, match="decode_cache"):
        plain.generate_batch([(features, "a question")], 4)
    monkeypatch.setattr(plain, "decode_cache", "dynamic")
    monkeypatch.setattr(plain, "compile_decode", True)
    with pytest.raises(ValueError, match="compile_decode"):
        plain.generate_batch([(features, "a question")], 4)
    with pytest.raises(ValueError, match="bucket"):
        StaticDecoder(bucket=0)
    assert [row_bucket(n) for n in (1, 2, 3, 4, 5, 8, 9)] == [1, 2, 4, 4, 8, 8, 16]
    assert [round_up(n, 128) for n in (1, 128, 129, 400)] == [128, 128, 256, 512]


def test_decode_parameters_reach_the_models_and_the_estimate(tmp_path):
    """``decode_cache`` / ``compile_decode`` through build_estimator: a compile without the
    static cache is refused before any model loads; the static cache gives the dynamic
    estimate (answers, maps)."""
    from interactvlm_ros.loading import ConfigurationError, build_estimator
    from interactvlm_ros.pipeline import Detection

    with pytest.raises(ConfigurationError, match="compile_decode = True: ValueError: compile_decode needs "
                                                 "decode_cache static"):
        build_estimator({"use_tiny_checkpoint": True, "compile_decode": True}, log=lambda line: None)
    estimator, keepalive = build_estimator({"use_tiny_checkpoint": True, "decode_cache": "static", "render_size": 64,
                                            "cache_dir": str(tmp_path), "max_new_tokens": 6}, log=lambda line: None)
    model = estimator.contact_model
    assert model.decode_cache == "static" and not model.compile_decode
    rgb = np.random.default_rng(9).integers(0, 255, (80, 120, 3), np.uint8)
    detections = [Detection("cup", (20, 10, 60, 50), 0.9, "d0"), Detection("bottle", (70, 20, 110, 70), 0.8, "d1")]
    static = estimator.estimate(rgb, detections).interactions
    assert model.static_decoder is not None  # the static path ran (the tiny model answers [SEG] at once)
    model.decode_cache = "dynamic"
    dynamic = estimator.estimate(rgb, detections).interactions
    for a, b in zip(static, dynamic):
        assert a.human_contact.answer == b.human_contact.answer
        assert a.object_affordance.answer == b.object_affordance.answer
        np.testing.assert_allclose(a.human_contact.vertex_probabilities, b.human_contact.vertex_probabilities,
                                   atol=1e-5)
        np.testing.assert_allclose(a.object_affordance.probabilities, b.object_affordance.probabilities, atol=1e-5)
