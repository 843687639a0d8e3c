"""vision_backend onnxruntime: ``export-onnx`` on the tiny checkpoint, each graph against the
torch path (tolerance: 1e-4 of the output's largest magnitude; float32 reassociation gives
~1e-6, a wrong layer, normalisation or prompt wiring gives 1e-2 to 1e0), the refusals, and
the estimator built with the parameter.

The graphs are exported once per session (about 15-20 s: torch's dynamo exporter)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")

from interactvlm_ros.localize.onnx_vision import (FINGERPRINTS, GRAPHS, MANIFEST, MAX_BATCH, fingerprint,  # noqa: E402
                                                  fingerprints_match, providers_for)

#: Largest |onnxruntime - torch| accepted, relative to the largest |torch| value.
TOLERANCE = 1e-4


def close(actual, expected) -> float:
    """max |actual - expected| / max |expected|."""
    actual, expected = (torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x).float()
                        for x in (actual, expected))
    assert actual.shape == expected.shape
    return float((actual - expected).abs().max() / expected.abs().max())


@pytest.fixture(scope="session")
def onnx_dir(tiny_checkpoint, tmp_path_factory):
    """The tiny checkpoint's graphs, exported by the command line."""
    from interactvlm_ros.cli import main

    out = tmp_path_factory.mktemp("onnx") / "tiny-onnx"
    assert main(["export-onnx", str(tiny_checkpoint), str(out), "--clip-dir", str(tiny_checkpoint / "clip")]) == 0
    return out


@pytest.fixture(scope="session")
def onnx_model(tiny_checkpoint, onnx_dir):
    from interactvlm_ros.localize.builder import load_mvloc

    model = load_mvloc(tiny_checkpoint, tiny_checkpoint / "clip")
    model.use_onnx(onnx_dir)
    return model


def test_export_writes_the_graphs_and_manifest(onnx_dir, tiny_model):
    manifest = json.loads((onnx_dir / MANIFEST).read_text())
    assert manifest["model_id"] == "tiny"
    assert manifest["num_views"] == 4 and manifest["sam_image_size"] == tiny_model.sam_image_size
    for name, (file, inputs, output) in GRAPHS.items():
        entry = manifest["graphs"][name]
        assert (onnx_dir / file).is_file() and entry["inputs"] == list(inputs) and entry["output"] == output
        assert entry["max_relative_error"] < TOLERANCE
    assert manifest["graphs"]["sam_mask_decoder"]["output_shape"][0] == 1
    with np.load(onnx_dir / FINGERPRINTS) as stored:
        assert sorted(stored.files) == sorted(GRAPHS)


def test_onnx_model_reports_its_backend_and_released_the_torch_modules(onnx_model, tiny_model, onnx_dir):
    assert onnx_model.vision_backend == "onnxruntime" and tiny_model.vision_backend == "torch"
    assert all(providers == ["CPUExecutionProvider"] for providers in onnx_model.onnx_vision.providers.values())
    model, reference = onnx_model.model, tiny_model.model
    assert model.vision_tower is None and model.sam.vision_encoder is None and model.sam.mask_decoder is None
    released = sum(p.numel() for m in (reference.vision_tower, reference.sam.vision_encoder,
                                       reference.sam.mask_decoder) for p in m.parameters())
    count = sum(p.numel() for p in model.parameters())
    assert count == sum(p.numel() for p in reference.parameters()) - released and released > 0
    with pytest.raises(RuntimeError, match="already runs its vision stages in onnxruntime"):
        onnx_model.use_onnx(onnx_dir)


def test_clip_features_equal_torch(onnx_model, tiny_model):
    rgb = (np.random.default_rng(0).random((120, 170, 3)) * 255).astype(np.uint8)
    expected = tiny_model.encode_image(rgb)
    assert close(onnx_model.encode_image(rgb), expected) < TOLERANCE


def test_sam_image_embeddings_equal_torch(onnx_model, tiny_model):
    views = (np.random.default_rng(1).random((4, 48, 48, 3)) * 255).astype(np.uint8)
    assert close(onnx_model.image_embeddings(views), tiny_model.image_embeddings(views)) < TOLERANCE
    photo = (np.random.default_rng(2).random((90, 140, 3)) * 255).astype(np.uint8)
    (got, got_size), (expected, expected_size) = onnx_model.image_embedding(photo), tiny_model.image_embedding(photo)
    assert got_size == expected_size and close(got, expected) < TOLERANCE


def test_mask_decoder_equals_torch_for_one_and_several_answers(onnx_model, tiny_model):
    generator = torch.Generator().manual_seed(3)
    embeddings = tiny_model.image_embeddings((np.random.default_rng(4).random((4, 32, 32, 3)) * 255).astype(np.uint8))
    sparse = torch.randn(3, 4, 256, generator=generator)
    expected = tiny_model.decode_masks(sparse, embeddings, 64)
    got = onnx_model.decode_masks(sparse, embeddings, 64)
    assert got.shape == (3, 4, 64, 64) and close(got, expected) < TOLERANCE
    # One answer, and per-answer embeddings (B, V, C, h, w).
    assert close(onnx_model.low_res_masks(sparse[0], embeddings), tiny_model.low_res_masks(sparse[0], embeddings)) \
        < TOLERANCE
    stacked = torch.stack([embeddings, embeddings.flip(0)])
    assert close(onnx_model.low_res_masks(sparse[:2], stacked), tiny_model.low_res_masks(sparse[:2], stacked)) \
        < TOLERANCE
    # The masks depend on the prompt: a wiring mistake that dropped it would pass the above only by luck.
    assert close(expected[0], expected[1]) > 1e-3


def test_whole_prediction_equals_torch(onnx_model, tiny_model):
    """CLIP -> generation -> SAM encoder -> decoder: the same answer and masks."""
    from interactvlm_ros.localize.prompts import HUMAN_CONTACT_PROMPT

    rgb = (np.random.default_rng(5).random((100, 100, 3)) * 255).astype(np.uint8)
    views = (np.random.default_rng(6).random((4, 40, 40, 3)) * 255).astype(np.uint8)
    cameras = [[0.2, 0.0, float(v) / 4, 0.5, 0.5] for v in range(4)]
    seg = tiny_model.spec.seg_token_idx

    def force_seg(ids, scores):  # the random model's own answer rarely ends in [SEG]
        if ids.shape[1] - len(tiny_model.prompt_ids(HUMAN_CONTACT_PROMPT)) >= 3:
            scores = scores.clone()
            scores[:, seg] = scores.max() + 1
        return scores

    results = [model.predict(model.encode_image(rgb), HUMAN_CONTACT_PROMPT, lambda m=model: m.image_embeddings(views),
                             cameras, 64, max_new_tokens=8, logits_processor=force_seg)
               for model in (onnx_model, tiny_model)]
    (answer, masks), (expected_answer, expected_masks) = results
    assert answer.token_ids == expected_answer.token_ids and answer.stop_reason == "seg"
    assert close(answer.seg_embedding, expected_answer.seg_embedding) < TOLERANCE
    assert close(masks, expected_masks) < TOLERANCE


def test_graphs_of_another_checkpoint_are_refused(onnx_dir, tiny_variant):
    from interactvlm_ros.localize.builder import load_mvloc

    other = tiny_variant("hcontact", seed=1)
    model = load_mvloc(other, other / "clip")
    with pytest.raises(ValueError, match="another checkpoint.*weights differ: clip_vision, sam_image_encoder, "
                                         "sam_mask_decoder"):
        model.use_onnx(onnx_dir)
    assert model.vision_backend == "torch"


def test_graphs_of_another_layout_are_refused(onnx_dir, tiny_variant_model):
    """The 2D model decodes one view: graphs made for four are refused before any weight is read."""
    with pytest.raises(ValueError, match="exported for another model: num_views 4 \\(model: 1\\)"):
        tiny_variant_model("2d-hcontact").use_onnx(onnx_dir)


def test_missing_export_names_the_command(tiny_model, tmp_path):
    with pytest.raises(FileNotFoundError, match="interactvlm-ros export-onnx CHECKPOINT_DIR"):
        tiny_model.use_onnx(tmp_path / "nothing")
    assert tiny_model.vision_backend == "torch"


def test_incomplete_export_is_refused(onnx_dir, tiny_checkpoint, tmp_path):
    from interactvlm_ros.localize.builder import load_mvloc

    copy = tmp_path / "onnx"
    shutil.copytree(onnx_dir, copy)
    (copy / GRAPHS["sam_mask_decoder"][0]).unlink()
    with pytest.raises(FileNotFoundError, match="sam_mask_decoder.onnx not found"):
        load_mvloc(tiny_checkpoint, tiny_checkpoint / "clip").use_onnx(copy)


def test_batches_above_the_bound_run_in_chunks(onnx_model, tiny_model, monkeypatch):
    """Above the export's batch bound (:data:`MAX_BATCH` rows, e.g. 65 answers x 4 views) the
    rows go through onnxruntime in chunks: here a bound of 3 for 5 answers x 4 views."""
    assert onnx_model.onnx_vision.max_batch == MAX_BATCH
    embeddings = tiny_model.image_embeddings((np.random.default_rng(10).random((4, 32, 32, 3)) * 255).astype(np.uint8))
    sparse = torch.randn(5, 4, 256, generator=torch.Generator().manual_seed(11))
    monkeypatch.setattr(onnx_model.onnx_vision, "max_batch", 3)
    got = onnx_model.low_res_masks(sparse, embeddings)
    assert close(got, tiny_model.low_res_masks(sparse, embeddings)) < TOLERANCE
    with pytest.raises(ValueError, match="batch of \\[0\\]"):
        onnx_model.onnx_vision.run("clip_vision", torch.zeros(0, 3, 224, 224))
    with pytest.raises(ValueError, match="batch of \\[2, 1\\]"):
        onnx_model.onnx_vision.run("sam_mask_decoder", torch.zeros(2, 256, 16, 16), torch.zeros(1, 1, 4, 256))


def test_an_interrupted_export_is_refused_not_mixed(onnx_dir, tiny_model, tiny_variant, tmp_path, monkeypatch):
    """Re-exporting another checkpoint into a directory that holds an export and failing
    half-way leaves no manifest: the old model does not load new graphs under old fingerprints."""
    from interactvlm_ros.localize import onnx_vision
    from interactvlm_ros.localize.onnx_vision import export_onnx, load_vision_modules

    copy = tmp_path / "onnx"
    shutil.copytree(onnx_dir, copy)
    other = tiny_variant("hcontact", seed=1)

    def fail(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(onnx_vision.torch.onnx, "export", fail)
    with pytest.raises(RuntimeError, match="interrupted"):
        export_onnx(load_vision_modules(other, other / "clip"), copy, log=lambda line: None)
    with pytest.raises(FileNotFoundError, match="export the vision graphs first"):
        tiny_model.use_onnx(copy)


def test_bfloat16_model_accepts_float32_graphs_of_its_checkpoint(onnx_dir, tiny_checkpoint, tiny_model):
    """Fingerprints compare after rounding to the served dtype, so a bfloat16 model matches
    its float32 export exactly; the outputs come back in bfloat16."""
    from interactvlm_ros.localize.builder import load_mvloc

    model = load_mvloc(tiny_checkpoint, tiny_checkpoint / "clip", dtype="bfloat16")
    model.use_onnx(onnx_dir)
    rgb = (np.random.default_rng(7).random((64, 64, 3)) * 255).astype(np.uint8)
    features = model.encode_image(rgb)
    assert features.dtype == torch.bfloat16
    assert close(features, tiny_model.encode_image(rgb)) < 2e-2  # bfloat16 inputs and projector


def test_fingerprints_match_after_rounding_only():
    module = torch.nn.Linear(64, 64)
    exported = fingerprint(module)
    half = torch.nn.Linear(64, 64).to(torch.float16)
    half.load_state_dict(module.state_dict())
    assert fingerprints_match(exported, fingerprint(half), torch.float16)
    assert not fingerprints_match(exported, fingerprint(half), torch.float32)  # rounded != original
    with torch.no_grad():
        half.weight[0, 0] += 0.01  # the first value of every tensor is sampled
    assert not fingerprints_match(exported, fingerprint(half), torch.float16)


def test_providers(tmp_path):
    assert providers_for(torch.device("cpu"), False, tmp_path) == ["CPUExecutionProvider"]
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(RuntimeError, match="no CUDA provider.*install onnxruntime-gpu"):
            providers_for(torch.device("cuda:0"), True, tmp_path)
    with pytest.raises(RuntimeError, match="cpu or cuda devices"):
        providers_for(torch.device("meta"), False, tmp_path)


def test_estimator_with_onnxruntime_equals_torch(onnx_dir, tmp_path):
    """``vision_backend: onnxruntime`` through build_estimator: the tiny checkpoint's graphs
    come from the cache (here pre-filled with the session's export of the same checkpoint),
    and the interactions equal the torch backend's."""
    from interactvlm_ros.loading import build_estimator
    from interactvlm_ros.pipeline import Detection

    shutil.copytree(onnx_dir, tmp_path / "cache" / "onnx" / "tiny-random-hcontact")
    settings = {"use_tiny_checkpoint": True, "cache_dir": str(tmp_path / "cache"), "render_size": 64,
                "max_new_tokens": 4}
    onnx, keep = build_estimator({**settings, "vision_backend": "onnxruntime"}, log=lambda line: None)
    reference, keep_reference = build_estimator(settings, log=lambda line: None)
    assert onnx.contact_model.vision_description == "onnxruntime (CPUExecutionProvider)"
    assert reference.contact_model.vision_description == "torch"
    rgb = (np.random.default_rng(8).random((80, 120, 3)) * 255).astype(np.uint8)
    detections = [Detection("cup", (20, 10, 60, 50), 0.9, "d0")]
    (got,), (expected,) = onnx.estimate(rgb, detections).interactions, reference.estimate(rgb, detections).interactions
    assert got.human_contact.has_mask and expected.human_contact.has_mask
    assert got.human_contact.answer == expected.human_contact.answer
    assert close(got.human_contact.vertex_probabilities, expected.human_contact.vertex_probabilities) < TOLERANCE
    assert got.object_affordance.answer == expected.object_affordance.answer
    assert close(got.object_affordance.probabilities, expected.object_affordance.probabilities) < TOLERANCE


def test_auto_uses_an_export_beside_the_checkpoint_on_the_cpu(onnx_dir, tiny_checkpoint, tmp_path):
    """``vision_backend: auto`` (the default): torch without an export; onnxruntime once
    ``<checkpoint>/onnx`` holds one (the CPU is where onnxruntime measured faster); an export
    of another checkpoint there is an error naming the parameter, not a silent fallback."""
    from interactvlm_ros.config import default_settings
    from interactvlm_ros.loading import ConfigurationError, _use_onnx
    from interactvlm_ros.localize.builder import load_mvloc
    from interactvlm_ros.localize.tiny import write_tiny_checkpoint

    assert default_settings()["vision_backend"] == "auto"
    checkpoint = tmp_path / "hcontact"
    shutil.copytree(tiny_checkpoint, checkpoint)
    settings = {**default_settings(), "contact_checkpoint_dir": str(checkpoint)}
    model = load_mvloc(checkpoint, checkpoint / "clip")
    _use_onnx(settings, model, None, None)
    assert model.vision_backend == "torch"
    shutil.copytree(onnx_dir, checkpoint / "onnx")
    _use_onnx(settings, model, None, None)
    assert model.vision_description == "onnxruntime (CPUExecutionProvider)"

    # One model serving both: one export directory, not two that may disagree.
    with pytest.raises(ConfigurationError, match="affordance_onnx_dir = 'elsewhere'.*set contact_onnx_dir only"):
        _use_onnx({**settings, "affordance_onnx_dir": "elsewhere"}, model, model, None)
    other = write_tiny_checkpoint(tmp_path / "other", seed=1)
    shutil.copytree(onnx_dir, other / "onnx")
    with pytest.raises(ConfigurationError, match="contact_onnx_dir = .*other/onnx.*another checkpoint"):
        _use_onnx({**settings, "contact_checkpoint_dir": str(other)}, load_mvloc(other, other / "clip"), None, None)
