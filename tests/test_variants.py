"""The joint human-object model ([HSEG]/[OSEG], attention splitter) and the 2D human-contact
model (SAM on the camera image), compared with InteractVLM's own ``evaluate()`` run on the same
tiny checkpoints (tests/data/variants_reference.npz, written by
tests/data/make_variant_fixture.py in a transformers 4.31 venv with InteractVLM's code), plus
their loading rules and the other tiny release variants."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from interactvlm_ros.geometry.camera import BODY_VIEWS, OBJECT_CONDITIONING_DIST, OBJECT_VIEWS
from interactvlm_ros.localize.builder import load_mvloc
from interactvlm_ros.localize.checkpoint import CheckpointError, read_state_dict
from interactvlm_ros.localize.model import AttentionSplitter, MVLocSpec
from interactvlm_ros.localize.placement import model_blocks
from interactvlm_ros.localize.predictor import IMAGE_CONTACT_CAMERA
from interactvlm_ros.localize.prompts import (HUMAN_CONTACT_2D_PROMPT, HUMAN_CONTACT_PROMPT, IMAGE_TOKEN_INDEX,
                                              OBJECT_AFFORDANCE_PROMPT, OBJECT_CONTACT_PROMPT, parse_answer)
from interactvlm_ros.localize.tiny import SPLITTER_INPUT_SCALE, VARIANTS

FIXTURE_PATH = Path(__file__).parent / "data" / "variants_reference.npz"
FIXTURE = dict(np.load(FIXTURE_PATH))
META = json.loads(str(FIXTURE["meta"]))
#: Agreement required with InteractVLM's float32 CPU results: max |ours - theirs| at most this
#: fraction of max |theirs| of each array (measured: <= 2.2e-6; transformers 5 vs 4.31 LLaMA and
#: CLIP kernels, same SAM arithmetic).
RTOL = 1e-4
REGENERATE = "regenerate tests/data/variants_reference.npz (see tests/data/make_variant_fixture.py)"


def close(ours, theirs) -> float:
    """max |ours - theirs| / max |theirs|."""
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


class ForceTokens:
    """The LogitsProcessor the fixture script gives transformers' generate: at generated step
    i < len(tokens) every logit but ``tokens[i]``'s becomes -inf."""

    def __init__(self, prompt_length: int, tokens: list[int]):
        self.prompt_length, self.tokens = prompt_length, list(tokens)
        self.seen: list[torch.Tensor] = []

    def __call__(self, input_ids, scores):
        self.seen.append(input_ids.clone())
        step = input_ids.shape[1] - self.prompt_length
        if 0 <= step < len(self.tokens):
            forced = torch.full_like(scores, float("-inf"))
            forced[:, self.tokens[step]] = 0.0
            return forced
        return scores


def tensor_sha256(tensors: dict) -> str:
    """make_variant_fixture.tensor_sha256: sha256 over (key, dtype, shape, bytes), keys sorted."""
    digest = hashlib.sha256()
    for key in sorted(tensors):
        tensor = tensors[key].detach().cpu().contiguous()
        digest.update(f"{key}|{str(tensor.dtype).replace('torch.', '')}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def image_from_blocks(blocks):
    """make_variant_fixture.image_from_blocks."""
    y, x = np.mgrid[:blocks.shape[0] * 8, :blocks.shape[1] * 8]
    return (blocks.astype(np.int64).repeat(8, 0).repeat(8, 1) + ((x + 2 * y) % 56)[..., None]).astype(np.uint8)


def renders_from_blocks(blocks):
    """make_variant_fixture.renders_from_blocks."""
    y, x = np.mgrid[:blocks.shape[1] * 16, :blocks.shape[2] * 16]
    ramps = np.stack([(x * (v + 1) + y) % 56 for v in range(blocks.shape[0])])[..., None]
    return (blocks.astype(np.int64).repeat(16, 1).repeat(16, 2) + ramps).astype(np.uint8)


_CACHE: dict = {}
IMAGE = image_from_blocks(FIXTURE["image_blocks"])
RENDERS = renders_from_blocks(FIXTURE["render_blocks"])
RUNS = [(case, run) for case in META["cases"] for run in META["cases"][case]["runs"]]


@pytest.fixture(autouse=True)
def _no_grad():
    with torch.no_grad():
        yield


def case_kwargs(case: str) -> dict:
    return dict(META["cases"][case]["kwargs"])


@pytest.fixture(scope="module")
def reference_model(tiny_variant, tiny_variant_model):
    """case -> the project's model of that fixture case, after checking that the checkpoint is
    the one the fixture was made from."""

    def get(case):
        kwargs = case_kwargs(case)
        directory = tiny_variant(kwargs.pop("variant"), **kwargs)
        entry = META["cases"][case]
        assert tensor_sha256(read_state_dict(directory)) == entry["weights_sha256"], (
            f"write_tiny_checkpoint now writes other weights for {case} ({entry['kwargs']}): {REGENERATE}")
        from safetensors.torch import load_file

        assert tensor_sha256(load_file(str(directory / "clip" / "model.safetensors"))) == entry["clip_sha256"], (
            f"the tiny CLIP tower of {case} changed: {REGENERATE}")
        tokenizer_files = [directory / "tokenizer.model", directory / "added_tokens.json"]
        digest = hashlib.sha256()
        for path in tokenizer_files:
            digest.update(path.name.encode() + b"|" + path.read_bytes())
        assert digest.hexdigest() == entry["tokenizer_sha256"], f"the tiny tokenizer of {case} changed: {REGENERATE}"
        variant = entry["kwargs"]["variant"]
        return tiny_variant_model(variant, **{k: v for k, v in entry["kwargs"].items() if k != "variant"})

    return get


def test_fixture_inputs_and_questions():
    """The rebuilt inputs are the fixture's, and the project's questions are InteractVLM's (the
    fixture script checked these strings against utils/utils.py and run_demo.py)."""
    assert hashlib.sha256(IMAGE.tobytes()).hexdigest() == META["image_sha256"]
    assert hashlib.sha256(RENDERS.tobytes()).hexdigest() == META["renders_sha256"]
    assert IMAGE.shape == (96, 160, 3) and RENDERS.shape == (4, 256, 256, 3)
    questions = {(case, run): entry["question"] for case in META["cases"]
                 for run, entry in META["cases"][case]["runs"].items()}
    assert questions[("joint", "hseg")] == HUMAN_CONTACT_PROMPT
    assert questions[("joint", "oseg")] == OBJECT_CONTACT_PROMPT
    assert questions[("joint", "seg")] == OBJECT_AFFORDANCE_PROMPT
    assert questions[("image2d", "seg")] == questions[("image2d_camcond", "seg")] == HUMAN_CONTACT_2D_PROMPT


@pytest.mark.parametrize("case, run", RUNS)
def test_equals_interactvlm_evaluate(reference_model, case, run):
    """Prompt ids exactly; the mask token's projected embedding, its camera-conditioned and
    split version (InteractVLM's process_embeddings) and the mask logits within RTOL."""
    model = reference_model(case)
    entry = META["cases"][case]["runs"][run]
    key = f"{case}/{run}/"
    question = entry["question"].format(object=META["object"])
    ids = model.prompt_ids(question)
    assert ids == FIXTURE[key + "prompt_ids"].tolist()
    features = model.encode_image(IMAGE)
    force = ForceTokens(len(ids), entry["forced_ids"])
    rows, cols = FIXTURE[key + "rows"], FIXTURE[key + "cols"]
    if case == "joint":
        answer = model.generate(features, question, logits_processor=force)
        cameras = (model.cameras(list(BODY_VIEWS)) if entry["cameras"] == "human"
                   else model.cameras(list(OBJECT_VIEWS), OBJECT_CONDITIONING_DIST))
        prompts = model.sparse_prompt_embeddings(answer.seg_embedding, cameras, answer.seg_token)
        if "renders" not in _CACHE:
            _CACHE["renders"] = model.image_embeddings(RENDERS)  # SAM's encoder once for the joint runs
        masks = model.decode_masks(prompts, _CACHE["renders"], RENDERS.shape[1])
    else:
        answer, logits = model.image_contact(features, IMAGE, question, logits_processor=force)
        cameras = [list(IMAGE_CONTACT_CAMERA)]
        prompts = model.sparse_prompt_embeddings(answer.seg_embedding, cameras, answer.seg_token)
        masks = logits.cpu().numpy()[None]
    # InteractVLM generates on until the forced </s>; the project stops at the mask token.
    assert answer.token_ids == FIXTURE[key + "output_ids"].tolist()[:1] and answer.stop_reason == "seg"
    assert answer.seg_token == entry["forced"] and FIXTURE[key + "output_ids"][1] == model.tokenizer.eos_token_id
    if entry["cameras"] == "demo":  # run_demo.py's torch.rand(1, 5), never read without conditioning
        assert model.model.cam_pose_encoder is None
    else:
        np.testing.assert_allclose(np.asarray(cameras, np.float32), FIXTURE[key + "cam_params"], rtol=0, atol=1e-7)
    projected = model.model.text_hidden_fcs[0](answer.seg_embedding[None])[0]
    assert close(projected, FIXTURE[key + "pre_split"]) < RTOL
    assert close(prompts, FIXTURE[key + "processed"]) < RTOL
    assert masks.shape == tuple(FIXTURE[key + "full_shape"])
    assert close(masks[:, rows][:, :, cols], FIXTURE[key + "masks"]) < RTOL
    if model.model.attention_splitter is not None:
        # The comparison would catch a wrong branch: each other mask token is far off.
        for other in set(model.seg_tokens.values()) - {answer.seg_token}:
            wrong = model.sparse_prompt_embeddings(answer.seg_embedding, cameras, other)
            assert close(wrong, FIXTURE[key + "processed"]) > 50 * RTOL, other


def test_joint_generation_stops_at_the_first_mask_token(tiny_variant_model):
    """The joint tiny model answers [HSEG] at once; a scripted answer stops at the first of
    [SEG]/[HSEG]/[OSEG], records which, and keeps the hidden state that predicted it."""
    model = tiny_variant_model("hcontact-ocontact")
    tokens = {t: model.tokenizer.convert_tokens_to_ids(t) for t in ("[SEG]", "[HSEG]", "[OSEG]")}
    assert tokens == {"[SEG]": 400, "[HSEG]": 403, "[OSEG]": 404}  # LISA's 32000 / 32003 / 32004, shifted
    features = model.encode_image(IMAGE)
    question = OBJECT_CONTACT_PROMPT.format(object="cup")
    plain = model.generate(features, question)
    assert (plain.text, plain.seg_token, plain.token_ids) == ("[HSEG]", "[HSEG]", [403])
    ids = model.prompt_ids(question)
    word = 100  # an ordinary SentencePiece piece
    assert word not in model.seg_tokens and word != model.tokenizer.eos_token_id
    force = ForceTokens(len(ids), [word, tokens["[OSEG]"], tokens["[HSEG]"]])
    answer = model.generate(features, question, logits_processor=force)
    assert answer.token_ids == [word, 404] and answer.seg_token == "[OSEG]" and answer.stop_reason == "seg"
    assert parse_answer(answer.text).has_seg
    # The processor saw LLaVA's input_ids: the prompt (image placeholder kept), then the answer.
    assert force.seen[0].tolist() == [ids] and force.seen[1].tolist() == [ids + [word]]
    assert IMAGE_TOKEN_INDEX in force.seen[0][0].tolist()
    # The embedding is the hidden state of the position that predicted [OSEG] (uncached pass).
    position = ids.index(IMAGE_TOKEN_INDEX)
    text_ids = [i for i in ids if i != IMAGE_TOKEN_INDEX] + answer.token_ids
    embedded = model.model.language_model.get_input_embeddings()(torch.tensor([text_ids]))
    inputs = torch.cat([embedded[:, :position], features, embedded[:, position:]], dim=1)
    hidden = model.model.language_model(inputs_embeds=inputs, output_hidden_states=True).hidden_states[-1]
    torch.testing.assert_close(answer.seg_embedding, hidden[0, -2], rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="not a mask token"):
        model.sparse_prompt_embeddings(answer.seg_embedding, model.cameras(list(BODY_VIEWS)), "[ISEG]")


def test_splitter_branches(tiny_variant_model):
    """[HSEG] -> human output, [OSEG] -> object output, [SEG] -> the conditioned embedding;
    the attention runs over the V views (one sequence)."""
    model = tiny_variant_model("hcontact-ocontact")
    seg = torch.linspace(-1, 1, model.spec.hidden_size)
    cameras = model.cameras(list(BODY_VIEWS))
    plain = model.sparse_prompt_embeddings(seg, cameras, "[SEG]")
    human, obj = model.model.attention_splitter(plain[None])
    torch.testing.assert_close(model.sparse_prompt_embeddings(seg, cameras, "[HSEG]"), human[0])
    torch.testing.assert_close(model.sparse_prompt_embeddings(seg, cameras, "[OSEG]"), obj[0])
    torch.testing.assert_close(model.sparse_prompt_embeddings(seg, cameras), plain)
    splitter = model.model.attention_splitter
    assert isinstance(splitter, AttentionSplitter)
    # Views interact: changing one view's input changes every view's output.
    changed = plain.clone()
    changed[0] *= 2
    assert not torch.allclose(splitter(changed[None])[0][0, 3], human[0, 3])


def test_variants_write_their_release_layout(tiny_variant):
    """Each variant's config values and keys; the joint tokenizer adds [HSEG], [OSEG] after
    [SEG], <im_start>, <im_end>; the joint weights hold InteractVLM's attention_splitter.*."""
    expected = {
        "hcontact": dict(token_type="Gen", multiview_channels=4, multiview_cam_cond=True,
                         hC_sam_view_type="4MV-Z_Vitru", hC_loss_weight=3.0, oC_loss_weight=0.0),
        "hcontact-wscene": dict(token_type="Gen", hC_sam_view_type="4MV-Z_Vitru_FootGround", multiview_channels=4),
        "oafford": dict(token_type="Gen", hC_loss_weight=0.0, oC_loss_weight=3.0, oC_sam_view_type="4MV-Z_HM",
                        oC_question_type="afford", multiview_channels=4, multiview_cam_cond=True),
        "hcontact-ocontact": dict(token_type="Gen-Hu-Obj", seg_token_idx=400, hseg_token_idx=403, oseg_token_idx=404,
                                  vocab_size=405, oC_loss_weight=3.0, hC_loss_weight=3.0,
                                  oC_sam_view_type="4MV-Z_HM_BM", hC_sam_view_type="4MV-Z_Vitru",
                                  oC_question_type="afford", multiview_channels=4, multiview_cam_cond=True),
        "2d-hcontact": dict(token_type="Gen", multiview_channels=1, multiview_cam_cond=False, hseg_token_idx=None),
    }
    assert set(expected) == set(VARIANTS)
    for variant, values in expected.items():
        directory = tiny_variant(variant)
        config = json.loads((directory / "config.json").read_text())
        assert {k: config[k] for k in values} == values, variant
        keys = set(read_state_dict(directory))
        splitter = {k for k in keys if k.startswith("attention_splitter.")}
        assert bool(splitter) == (variant == "hcontact-ocontact")
        assert any(k.startswith("cam_pose_encoder.") for k in keys) == (variant != "2d-hcontact")
    added = json.loads((tiny_variant("hcontact-ocontact") / "added_tokens.json").read_text())
    assert sorted(added, key=added.get) == ["[SEG]", "<im_start>", "<im_end>", "[HSEG]", "[OSEG]"]
    state = read_state_dict(tiny_variant("hcontact-ocontact"))
    shapes = {k: tuple(v.shape) for k, v in state.items() if k.startswith("attention_splitter.")}
    assert shapes == {"attention_splitter.input_proj.weight": (128, 256), "attention_splitter.input_proj.bias": (128,),
                      **{f"attention_splitter.{n}.{p}": (128, 128) if p == "weight" else (128,)
                         for n in ("query_human", "query_object", "key", "value") for p in ("weight", "bias")},
                      "attention_splitter.output_proj.weight": (256, 128),
                      "attention_splitter.output_proj.bias": (256,)}
    assert SPLITTER_INPUT_SCALE > 1


def test_other_variants_load_and_answer(tiny_variant_model):
    """The scene and affordance variants load through the released-checkpoint path and answer
    (their mask path is the 3D human-contact model's, tested in test_localize.py)."""
    for variant in ("hcontact-wscene", "oafford"):
        model = tiny_variant_model(variant)
        answer = model.generate(model.encode_image(IMAGE), OBJECT_AFFORDANCE_PROMPT.format(object="cup"))
        assert answer.seg_token == "[SEG]" and model.spec.multiview_channels == 4
        assert model.sparse_prompt_embeddings(answer.seg_embedding, model.cameras(
            list(OBJECT_VIEWS), OBJECT_CONDITIONING_DIST), answer.seg_token).shape == (4, 256)


def test_joint_model_blocks_cover_the_splitter(tiny_variant_model):
    model = tiny_variant_model("hcontact-ocontact").model
    blocks = model_blocks(model)
    assert blocks[-2:] == ["attention_splitter", "sam"]
    owned = {f"{b}.{n}" for b in blocks for n, _ in model.get_submodule(b).named_parameters()}
    assert owned == {n for n, _ in model.named_parameters()}


def _copy(directory, target):
    shutil.copytree(directory, target)
    return target


def _rewrite(directory, edit_config=None, edit_state=None, edit_added=None):
    if edit_config:
        config = json.loads((directory / "config.json").read_text())
        edit_config(config)
        (directory / "config.json").write_text(json.dumps(config))
    if edit_added:
        added = json.loads((directory / "added_tokens.json").read_text())
        edit_added(added)
        (directory / "added_tokens.json").write_text(json.dumps(added))
    if edit_state:
        index_path = directory / "pytorch_model.bin.index.json"
        index = json.loads(index_path.read_text())
        shard = directory / "pytorch_model-00001-of-00002.bin"
        state = torch.load(shard, weights_only=True)
        others = {k: v for k, v in read_state_dict(directory).items() if k not in state}
        edit_state(state, others)
        for key in state:
            index["weight_map"][key] = shard.name
        for key in [k for k in index["weight_map"] if k not in state and k not in others]:
            del index["weight_map"][key]
        torch.save(state, shard)
        index_path.write_text(json.dumps(index))


def test_joint_loading_errors(tiny_variant, tmp_path):
    joint = tiny_variant("hcontact-ocontact")
    broken = _copy(joint, tmp_path / "ids")
    _rewrite(broken, edit_config=lambda c: c.update(oseg_token_idx=402))
    with pytest.raises(CheckpointError,
                       match=r"tokenizer id of \[OSEG\] is 404 but config.json says oseg_token_idx = 402"):
        load_mvloc(broken, joint / "clip")
    broken = _copy(joint, tmp_path / "no-oseg")
    _rewrite(broken, edit_added=lambda a: a.pop("[OSEG]"))
    with pytest.raises(CheckpointError, match=r"\[OSEG\]"):
        load_mvloc(broken, joint / "clip")
    broken = _copy(joint, tmp_path / "no-splitter")
    for shard in sorted(broken.glob("pytorch_model-*.bin")):
        part = torch.load(shard, weights_only=True)
        torch.save({k: v for k, v in part.items() if not k.startswith("attention_splitter.")}, shard)
    index = json.loads((broken / "pytorch_model.bin.index.json").read_text())
    index["weight_map"] = {k: v for k, v in index["weight_map"].items() if not k.startswith("attention_splitter.")}
    (broken / "pytorch_model.bin.index.json").write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match=r"missing from the checkpoint: attention_splitter\."):
        load_mvloc(broken, joint / "clip")
    for config, message in (({"token_type": "Gen-Hu-Obj", "hseg_token_idx": None}, "needs an integer hseg_token_idx"),
                            ({"token_type": "Gen-Foo"}, "not one of InteractVLM's"),
                            ({"token_type": None}, "must be a string")):
        with pytest.raises(ValueError, match=message):
            MVLocSpec.from_config({**json.loads((joint / "config.json").read_text()), **config})


def test_gen_int_takes_the_human_branch(tiny_variant, tmp_path):
    """"Gen-Int": one [ISEG] for both ids; InteractVLM tests [HSEG]'s id first, so it always
    takes the splitter's human branch."""
    directory = _copy(tiny_variant("hcontact-ocontact"), tmp_path / "gen-int")

    def tokens(added):
        added.pop("[OSEG]")
        added["[ISEG]"] = added.pop("[HSEG]")

    _rewrite(directory, edit_config=lambda c: c.update(token_type="Gen-Int", oseg_token_idx=403), edit_added=tokens)
    model = load_mvloc(directory, directory / "clip")
    assert model.seg_tokens == {400: "[SEG]", 403: "[ISEG]"}
    seg = torch.linspace(-1, 1, model.spec.hidden_size)
    cameras = model.cameras(list(BODY_VIEWS))
    human, _ = model.model.attention_splitter(model.sparse_prompt_embeddings(seg, cameras)[None])
    torch.testing.assert_close(model.sparse_prompt_embeddings(seg, cameras, "[ISEG]"), human[0])
    assert model.generate(model.encode_image(IMAGE), HUMAN_CONTACT_PROMPT.format(object="cup"),
                          logits_processor=ForceTokens(len(model.prompt_ids(HUMAN_CONTACT_PROMPT.format(object="cup"))),
                                                       [403])).seg_token == "[ISEG]"


def test_different_decoders_share_one_decoder(tiny_variant, tiny_variant_model, tmp_path):
    """"-DifDe": InteractVLM's human/object decoders are the mask_decoder module itself after
    from_pretrained; copies equal to mask_decoder.* load (and change nothing), differing copies
    or copies without DifDe are refused."""
    joint = tiny_variant("hcontact-ocontact")
    prefix = "model.visual_model."

    def add_copies(tweak):
        def edit(state, others):
            decoder = {k: v for k, v in {**others, **state}.items() if k.startswith(prefix + "mask_decoder.")}
            for copy in ("human_mask_decoder.", "object_mask_decoder."):
                for key, value in decoder.items():
                    state[key.replace("mask_decoder.", copy, 1)] = value.clone()
            tweak(state)
        return edit

    same = _copy(joint, tmp_path / "difde")
    _rewrite(same, edit_config=lambda c: c.update(token_type="Gen-Hu-Obj-DifDe"), edit_state=add_copies(lambda s: None))
    model = load_mvloc(same, same / "clip")
    assert model.spec.different_decoders and model.spec.base_token_type == "Gen-Hu-Obj"
    reference = tiny_variant_model("hcontact-ocontact")
    state, expected = model.model.state_dict(), reference.model.state_dict()
    assert state.keys() == expected.keys() and all(torch.equal(state[k], expected[k]) for k in state)

    differing = _copy(joint, tmp_path / "difde-differing")

    def tweak(state):
        key = prefix + "object_mask_decoder.iou_token.weight"
        state[key] = state[key] + 1

    _rewrite(differing, edit_config=lambda c: c.update(token_type="Gen-Hu-Obj-DifDe"), edit_state=add_copies(tweak))
    with pytest.raises(CheckpointError, match=r"object_mask_decoder\.\* differs .*no defined model"):
        load_mvloc(differing, differing / "clip")
    undeclared = _copy(joint, tmp_path / "copies-without-difde")
    _rewrite(undeclared, edit_state=add_copies(lambda s: None))
    with pytest.raises(CheckpointError, match="human_mask_decoder"):
        load_mvloc(undeclared, undeclared / "clip")


def test_image_contact_sizes_and_refusals(tiny_variant_model, tiny_model):
    """The 2D path returns logits in the input image's pixels for portrait, landscape and
    square images; a multi-view model is refused; bad images are refused."""
    model = tiny_variant_model("2d-hcontact")
    assert model.model.cam_pose_encoder is None
    question = HUMAN_CONTACT_2D_PROMPT.format(object="cup")
    for shape in ((160, 96), (300, 17)):  # (96, 160) is the fixture's
        rgb = np.resize(IMAGE, shape + (3,))
        embedding, size = model.image_embedding(rgb)
        assert size == model.sam_input_size(*shape) and max(size) == model.sam_image_size
        answer, logits = model.image_contact(model.encode_image(rgb), rgb, question, image_embedding=(embedding, size))
        assert answer.seg_token == "[SEG]" and logits.shape == shape and logits.dtype == torch.float32
    assert model.sam_input_size(96, 160) == (154, 256)  # int(96 * 1.6 + 0.5)
    # The tiny SAM encoder's output depends on the image (else the comparisons with InteractVLM
    # could not see a wrong resize, padding or normalisation).
    embedding, _ = model.image_embedding(IMAGE)
    flipped, _ = model.image_embedding(np.ascontiguousarray(IMAGE[::-1]))
    assert embedding.abs().max() > 1 and (embedding - flipped).abs().max() > 0.1
    with pytest.raises(ValueError, match="needs a 2D model"):
        tiny_model.image_contact(tiny_model.encode_image(IMAGE), IMAGE, question)
    with pytest.raises(ValueError, match="uint8"):
        model.image_embedding(IMAGE.astype(np.float32))
