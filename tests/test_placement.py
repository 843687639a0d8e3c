"""Device maps: blocks, sizes, parsing, balanced and explicit maps, memory refusal, and (with
CUDA) a model split between a GPU and the CPU giving the single-device answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interactvlm_ros.localize.builder import load_mvloc, plan_checkpoint, plan_device_map
from interactvlm_ros.localize.placement import (MEMORY_HEADROOM, balanced_device_map, block_bytes,
                                                bytes_per_device, check_device_memory, describe,
                                                explicit_device_map, gpu_budgets, model_blocks, parse_bytes,
                                                parse_device_map, parse_max_memory)
from interactvlm_ros.localize.tiny import TINY_LLAMA, write_tiny_checkpoint

GiB = 2**30


@pytest.fixture(scope="module")
def tiny(tiny_checkpoint):
    return tiny_checkpoint


@pytest.fixture(scope="module")
def meta_model(tiny):
    from transformers import CLIPVisionConfig, CLIPVisionModel

    model = plan_checkpoint(tiny).model
    with torch.device("meta"):
        model.vision_tower = CLIPVisionModel(CLIPVisionConfig.from_pretrained(tiny / "clip"))
    return model


@pytest.fixture
def two_gpus(monkeypatch):
    """torch.cuda reporting two devices with 10 and 20 GiB free (of 24)."""
    free = {0: 10 * GiB, 1: 20 * GiB}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free[torch.device(device).index], 24 * GiB))
    return free


def test_blocks_cover_every_tensor_once_in_execution_order(meta_model):
    blocks = model_blocks(meta_model)
    layers = TINY_LLAMA["num_hidden_layers"]
    assert blocks[:4] == ["vision_tower", "mm_projector", "language_model.model.embed_tokens",
                          "language_model.model.rotary_emb"]
    assert blocks[4:4 + layers] == [f"language_model.model.layers.{i}" for i in range(layers)]
    assert blocks[4 + layers:] == ["language_model.model.norm", "language_model.lm_head", "text_hidden_fcs",
                                   "cam_pose_encoder", "sam"]
    owners = {key: [b for b in blocks if key.startswith(b + ".")] for key in meta_model.state_dict()}
    assert all(len(owner) == 1 for owner in owners.values()), {k: v for k, v in owners.items() if len(v) != 1}


def test_block_bytes_in_the_load_dtype_and_quantised(meta_model):
    hidden, mm_hidden = meta_model.spec.hidden_size, meta_model.spec.mm_hidden_size
    bf16 = block_bytes(meta_model, torch.bfloat16)
    assert bf16["mm_projector"] == (mm_hidden * hidden + hidden) * 2
    assert block_bytes(meta_model, torch.float32)["mm_projector"] == (mm_hidden * hidden + hidden) * 4
    layer = meta_model.language_model.model.layers[0]
    weights = sum(p.numel() for n, p in layer.named_parameters() if n.endswith("proj.weight"))
    others = sum(p.numel() for n, p in layer.named_parameters() if not n.endswith("proj.weight"))
    name = "language_model.model.layers.0"
    assert bf16[name] == (weights + others) * 2
    assert block_bytes(meta_model, torch.bfloat16, "8bit")[name] == weights + others * 2
    assert block_bytes(meta_model, torch.bfloat16, "4bit")[name] == weights // 2 + others * 2
    assert block_bytes(meta_model, torch.bfloat16, "4bit")["sam"] == bf16["sam"]  # only decoder layers shrink


def test_sizes_and_maps_parse():
    assert parse_bytes("20GiB") == 20 * GiB and parse_bytes("1.5 GB") == 1_500_000_000
    assert parse_bytes("512MiB") == 512 * 2**20 and parse_bytes("1000") == 1000
    for bad in ("20 parsecs", "-1GiB", "0", "GiB", ""):
        with pytest.raises(ValueError, match="not a memory size"):
            parse_bytes(bad)
    assert parse_max_memory("cuda:0=20GiB, 1=10GB") == {"cuda:0": 20 * GiB, "cuda:1": 10**10}
    assert parse_max_memory("") == {}
    assert parse_max_memory({0: "20GiB", "cuda:1": 10**10}) == {"cuda:0": 20 * GiB, "cuda:1": 10**10}
    assert parse_device_map("") is None and parse_device_map(" auto ") == "auto"
    assert parse_device_map("sam=1, vision_tower=cuda") == {"sam": "cuda:1", "vision_tower": "cuda:0"}
    assert parse_device_map("language_model=cpu") == {"language_model": "cpu"}
    with pytest.raises(ValueError, match="expected name=value"):
        parse_device_map("sam")
    with pytest.raises(ValueError, match="must be cpu or cuda devices"):
        parse_device_map("sam=meta")


def test_explicit_map_names_blocks_or_modules_and_the_longest_name_wins():
    blocks = ["vision_tower", *[f"language_model.model.layers.{i}" for i in range(12)], "sam"]
    result = explicit_device_map(blocks, {"language_model": "cuda:1", "language_model.model.layers.1": "cpu",
                                          "sam": "cuda:2"}, "cuda")
    assert result["vision_tower"] == "cuda:0" and result["sam"] == "cuda:2"
    assert result["language_model.model.layers.1"] == "cpu"
    assert result["language_model.model.layers.10"] == "cuda:1"  # "layers.1" is not a prefix of "layers.10"
    assert list(result) == blocks
    with pytest.raises(ValueError, match=r"'language_mod' is not a block.*blocks are: vision_tower"):
        explicit_device_map(blocks, {"language_mod": "cpu"}, "cpu")


def test_balanced_map_is_contiguous_and_proportional_to_the_budgets():
    sizes = {f"b{i}": 1 for i in range(10)}
    assert list(balanced_device_map(sizes, {"cuda:0": 10, "cuda:1": 10}).values()) == ["cuda:0"] * 5 + ["cuda:1"] * 5
    # Shares 3/12 and 9/12 of 10 bytes: 2.5 and 7.5; the third block's midpoint (2.5) is still within cuda:0's.
    assert list(balanced_device_map(sizes, {"cuda:0": 3, "cuda:1": 9}).values()) == ["cuda:0"] * 3 + ["cuda:1"] * 7
    # Device order is the budgets' order.
    assert list(balanced_device_map(sizes, {"cuda:1": 9, "cuda:0": 3}).values()) == ["cuda:1"] * 8 + ["cuda:0"] * 2
    # A block larger than the first device's budget goes to the next one, with what follows.
    assert balanced_device_map({"a": 1, "b": 5, "c": 1}, {"cuda:0": 4, "cuda:1": 6}) == {
        "a": "cuda:0", "b": "cuda:1", "c": "cuda:1"}
    # A small model on a large first GPU only uses what its share asks for.
    assert set(balanced_device_map({"a": 1}, {"cuda:0": 10, "cuda:1": 10}).values()) == {"cuda:0"}


def test_balanced_map_refuses_what_does_not_fit():
    with pytest.raises(MemoryError, match=r"needs 0.00 GiB.*add up to 0.00 GiB"):
        balanced_device_map({"a": 6, "b": 6}, {"cuda:0": 5, "cuda:1": 5})
    # Enough in total, but blocks are never split: 3 + 3 does not fit cuda:1's 5.
    with pytest.raises(MemoryError, match="block c .* does not fit the remaining budget of cuda:1"):
        balanced_device_map({"a": 3, "b": 3, "c": 3}, {"cuda:0": 4, "cuda:1": 5})


def test_memory_is_checked_per_device(two_gpus):
    check_device_memory({"cuda:0": int(10 * GiB / MEMORY_HEADROOM) - 1, "cpu": 10**15})  # fits; CPU unchecked
    with pytest.raises(MemoryError) as error:
        check_device_memory({"cuda:0": 10 * GiB, "cuda:1": 10 * GiB})
    message = str(error.value)
    assert "about 12.5 GiB on cuda:0 (parameters x 1.25) but 10.0 of 24.0 GiB are free" in message
    assert "cuda:1" not in message  # 12.5 GiB fit in its 20 GiB
    assert "device_map" in message


def test_auto_budgets_from_free_memory_and_max_memory(two_gpus):
    assert gpu_budgets({}) == {"cuda:0": int(10 * GiB / MEMORY_HEADROOM), "cuda:1": int(20 * GiB / MEMORY_HEADROOM)}
    assert gpu_budgets({"cuda:1": 4 * GiB}) == {"cuda:1": 4 * GiB}  # only the devices named
    with pytest.raises(ValueError, match="max_memory names cuda:3; the CUDA devices here are cuda:0..cuda:1"):
        gpu_budgets({"cuda:3": GiB})
    sizes = {f"b{i}": GiB for i in range(12)}
    placement = plan_device_map(sizes, "cpu", "auto")  # budgets 8 and 16 GiB: shares 4 and 8
    assert bytes_per_device(sizes, placement) == {"cuda:0": 4 * GiB, "cuda:1": 8 * GiB}
    assert describe(placement) == "cuda:0: b0..b3; cuda:1: b4..b11"


def test_plan_device_map_without_and_with_a_map():
    sizes = {"a": 1, "b": 1}
    assert plan_device_map(sizes, "cpu") == {"a": "cpu", "b": "cpu"}
    assert plan_device_map(sizes, "cuda", {"b": "cuda:1"}) == {"a": "cuda:0", "b": "cuda:1"}
    with pytest.raises(ValueError, match="max_memory applies to device_map auto only"):
        plan_device_map(sizes, "cpu", None, {"cuda:0": 1})
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device_map auto splits the model over CUDA devices; none"):
            plan_device_map(sizes, "cpu", "auto")


def test_loading_refuses_before_allocating_when_a_gpu_of_the_map_is_too_small(tiny, two_gpus):
    two_gpus[1] = 1000  # bytes
    with pytest.raises(MemoryError, match=r"on cuda:1 .* but 0.0 of 24.0 GiB are free"):
        load_mvloc(tiny, tiny / "clip", device="cpu", device_map="sam=cuda:1")
    with pytest.raises(ValueError, match="8bit quantisation needs the decoder layers on CUDA devices.*got cpu"):
        load_mvloc(tiny, tiny / "clip", device="cuda:0", quantization="8bit",
                   device_map="language_model.model.layers.1=cpu")


def test_a_single_device_load_reports_its_placement(tiny):
    model = load_mvloc(tiny, tiny / "clip", device_map="sam=cpu")
    assert set(model.device_map.values()) == {"cpu"} and model.placement == "cpu"


def _run(model) -> tuple:
    """Answer, view embeddings and masks of a fixed synthetic photo (plumbing: random weights)."""
    from interactvlm_ros.geometry.camera import BODY_VIEWS
    from interactvlm_ros.localize.prompts import HUMAN_CONTACT_PROMPT

    y, x = np.mgrid[0:256, 0:256]
    photo = np.stack([x, y, (x + y) // 2], axis=-1).astype(np.uint8)
    answer = model.generate(model.encode_image(photo), HUMAN_CONTACT_PROMPT.format(object="helmet"))
    views = model.image_embeddings(np.repeat(photo[None], 4, axis=0))
    masks = model.decode_masks(model.sparse_prompt_embeddings(answer.seg_embedding, model.cameras(list(BODY_VIEWS))), views, 256)
    return answer, views.float().cpu(), masks


def _assert_same(result, reference):
    (answer, views, masks), (ref_answer, ref_views, ref_masks) = result, reference
    assert answer.token_ids == ref_answer.token_ids and answer.seg_embedding is not None
    torch.testing.assert_close(answer.seg_embedding.float().cpu(), ref_answer.seg_embedding.float().cpu(),
                               atol=1e-3, rtol=1e-3)
    torch.testing.assert_close(views, ref_views, atol=1e-3, rtol=1e-3)
    assert np.abs(masks - ref_masks).max() < 1e-2 * max(1.0, np.abs(ref_masks).max())


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return write_tiny_checkpoint(tmp_path_factory.mktemp("placement") / "small", preset="small")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_model_split_between_gpu_and_cpu_answers_as_on_one_device(small):
    """Half of LLaMA, CLIP and SAM on the CPU, the rest on cuda:0: tensors cross devices inside
    the decoder stack and between blocks. float32 so both devices compute alike."""
    layers = plan_checkpoint(small).llama_config.num_hidden_layers
    split = ",".join(["vision_tower=cpu", "sam=cpu"] +
                     [f"language_model.model.layers.{i}=cpu" for i in range(layers // 2, layers)])
    single = load_mvloc(small, small / "clip", "cuda:0", "float32")
    assert set(single.device_map.values()) == {"cuda:0"}
    reference = _run(single)
    del single
    model = load_mvloc(small, small / "clip", "cuda:0", "float32", device_map=split)
    placement = model.device_map
    assert placement["sam"] == "cpu" and placement[f"language_model.model.layers.{layers - 1}"] == "cpu"
    assert placement["language_model.model.layers.0"] == "cuda:0" and placement["mm_projector"] == "cuda:0"
    assert model.placement.startswith("cpu: vision_tower; cuda:0: mm_projector..")
    _assert_same(_run(model), reference)
    del model
    # "auto" with the one GPU named in max_memory: every block there, by the real free memory.
    auto = load_mvloc(small, small / "clip", "cpu", "float32", device_map="auto", max_memory="cuda:0=100GiB")
    assert auto.placement == "cuda:0"
    _assert_same(_run(auto), reference)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_4bit_model_split_between_gpu_and_cpu_answers_as_on_one_device(small):
    """Quantised decoder layers on cuda:0 (bitsandbytes), CLIP, the [SEG] head and SAM on the CPU."""
    pytest.importorskip("bitsandbytes")
    reference = _run(load_mvloc(small, small / "clip", "cuda:0", "float32", "4bit"))
    model = load_mvloc(small, small / "clip", "cuda:0", "float32", "4bit",
                       device_map="vision_tower=cpu,text_hidden_fcs=cpu,sam=cpu")
    assert type(model.model.language_model.model.layers[0].mlp.up_proj).__name__ == "Linear4bit"
    assert model.device_map["sam"] == "cpu" and model.device_map["language_model.model.layers.0"] == "cuda:0"
    _assert_same(_run(model), reference)
