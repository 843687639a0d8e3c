"""Regenerate tests/data/variants_reference.npz by running InteractVLM's OWN code on the
project's tiny checkpoints of the joint human-object and the 2D human-contact models.

This script is NOT part of the test suite and is never imported by it. It has two steps, run
in two environments:

1. ``write-checkpoints`` (the project's venv): writes each case's tiny checkpoint with the
   project's ``write_tiny_checkpoint`` (:data:`CASES`), exactly as tests/test_variants.py
   rebuilds them::

       .venv/bin/python tests/data/make_variant_fixture.py write-checkpoints /tmp/variants

2. ``reference`` (a transformers 4.31 venv, InteractVLM's versions) loads each one into
   InteractVLM's ``InteractVLMForCausalLM`` with ``from_pretrained`` and runs its
   ``evaluate()`` on CPU in float32::

       python3 -m venv /tmp/ivlm-ref
       /tmp/ivlm-ref/bin/pip install torch==2.13.0 transformers==4.31.0 tokenizers==0.13.3 \\
           sentencepiece==0.2.3 accelerate==0.21.0 pillow numpy joblib safetensors einops
       /tmp/ivlm-ref/bin/pip install --no-deps torchvision==0.28.0
       git clone https://github.com/saidwivedi/InteractVLM /tmp/InteractVLM    # commit 79b4bf2
       /tmp/ivlm-ref/bin/python tests/data/make_variant_fixture.py reference \\
           --interactvlm /tmp/InteractVLM --checkpoints /tmp/variants --out tests/data/variants_reference.npz

(The committed fixture was made with torch 2.13.0+cpu, transformers 4.31.0, tokenizers 0.13.3,
sentencepiece 0.2.3, accelerate 0.21.0, pillow 13.0.0, numpy 2.4.6, torchvision 0.28.0 and
InteractVLM at commit 79b4bf2.)

What runs is InteractVLM's code: ``model/InteractVLM.py`` (``from_pretrained``, ``evaluate``,
``process_embeddings``, ``AttentionSplitter``, ``VIv1CamPoseEncoder``, ``ModifiedSAM``), its
LLaVA (``llava_arch``, ``LlavaLlamaForCausalLM``, ``CLIPVisionTower``, ``conv_templates``,
``tokenizer_image_token``), its segment_anything (``Sam``, ``ImageEncoderViT``,
``PromptEncoder`` with ``text_embeds``, ``MaskDecoder``, ``postprocess_masks``,
``ResizeLongestSide``), ``preprocess_data/constants.py`` (view cameras), run_demo.py's
``preprocess`` and datasets/base_contact_dataset.py's ``normalize_cam_params`` (their
definitions are read from those files and executed: the files cannot be imported, they need
pytorch3d, SMPL-X, OpenCV) and transformers 4.31's
``generate`` and slow ``LlamaTokenizer``. Replaced, and why:

* ``build_sam_vit_h`` is fixed to ViT-H (1280 wide, 32 blocks, 1024 px) and reads Meta's
  weights: the same ``Sam`` is built with segment_anything's own classes at the tiny
  checkpoint's sizes (read off its weights), then ``from_pretrained`` loads the checkpoint into
  it as into the real one;
* ``HumanContact3DPredictor`` / ``ObjectPCAfford3DPredictor`` / ``ObjectMeshContact3DPredictor``
  load InteractVLM's registered data files (``./data``): replaced by modules that return None
  (they lift masks to 3D after ``evaluate`` has made them; the project's lifting is tested
  elsewhere);
* ``Tensor.cuda`` is a no-op (CPU run); ``wandb`` (imported by utils/utils.py) is an empty
  module; torchvision is registered without running its ``__init__`` (the wheel's compiled
  ops need CUDA libraries; only ``transforms.functional``'s PIL code is used, by
  ``ResizeLongestSide``);
* CLIP is the tiny checkpoint's ``clip/`` directory, passed as ``vision_tower=`` (the kwarg
  overrides config.json's hub id, which is never downloaded).

The tiny models answer their mask token at once; every run here forces its answer with one
``LogitsProcessor`` (:class:`ForceTokens`: the case's mask token, then ``</s>``) given to
``generate`` (``model.generate`` is wrapped to add it: ``evaluate`` passes no processor of its
own). The project's test gives the same processor to ``MVLoc.generate``, which stops at the
mask token; the second forced token (EOS) only ends InteractVLM's generation, which does not
stop at a mask token. Forcing changes no hidden state: the mask embedding is the model's own.

What it writes (``--out``, npz; float32 unless noted):

* ``meta`` (str): JSON with the versions, the InteractVLM commit, and per case: its
  ``write_tiny_checkpoint`` kwargs, the sha256 of its weights / CLIP weights / tokenizer
  files (:func:`tensor_sha256`, :func:`file_sha256`), and per run: the question, the forced
  token ids, the cameras' source.
* ``image_blocks`` (12, 20, 3) uint8 and ``render_blocks`` (4, 16, 16, 3) uint8 (random
  colours): the camera image (96, 160, 3) (:func:`image_from_blocks`; non-square, so that
  ResizeLongestSide, the padding and the crop back are exercised) and the 4 "views" of the
  joint runs (4, 256, 256, 3) (:func:`renders_from_blocks`; structured images, not renders
  of a mesh: the model only sees pixels); ``image_sha256`` / ``renders_sha256`` in ``meta``.
* per run ``<case>/<run>/``: ``prompt_ids`` int64 (IMAGE_TOKEN_INDEX -200 in place of the
  image), ``output_ids`` int64 (the generated ids: forced mask token, ``</s>``),
  ``cam_params`` (V, 5) (what ``evaluate`` got for this run), ``pre_split`` (256,) (the
  input of ``process_embeddings``: ``text_hidden_fcs`` of the mask token's hidden state, the
  same for every view), ``processed`` (V, 256) (its output: camera-conditioned, then through the
  splitter branch of the token), ``masks`` (V, len(rows), len(cols)): ``evaluate``'s
  ``pred_masks[0]`` (logits after ``postprocess_masks``) at the pixels ``rows`` x ``cols``
  (int64; every 16th row/column of the joint renders from 3, every 4th of the 2D image from 1
  plus the last row and column), and ``full_shape`` int64 (the shape of ``pred_masks[0]``).
"""

from __future__ import annotations

import argparse
import ast
import functools
import hashlib
import importlib.machinery
import importlib.util
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np

#: The cases: checkpoint directory name -> ``write_tiny_checkpoint`` kwargs.
CASES = {
    "joint": {"variant": "hcontact-ocontact", "seed": 0},
    "image2d": {"variant": "2d-hcontact", "seed": 0},
    # The 2D model with camera conditioning (its real config value is unknown): InteractVLM's
    # training and evaluate.py loaders give it torch.zeros(1, 5) cameras.
    "image2d_camcond": {"variant": "2d-hcontact", "seed": 0, "camera_conditioned": True},
}

#: The runs of each case: (run name, question, forced mask token, cameras).
#: Questions are InteractVLM's: HCONTACT_PARTS_QUESTION_LIST[0], OCONTACT_QUESTION_LIST[0],
#: OAFFORD_AFFORD_QUESTION_LIST[0] (utils/utils.py), run_demo.py's 2D BASE_PROMPT.
RUNS = {
    "joint": [
        ("hseg", "Which body parts are in contact with the {object}? Segment these contact areas.", "[HSEG]",
         "human"),
        ("oseg", "Segment the area on the {object} where the human is making direct contact in this image.",
         "[OSEG]", "object"),
        ("seg", "What type of affordance does the human-object interaction suggest? Then, segment the area on "
                "the {object} where the human is making contact.", "[SEG]", "object"),
    ],
    "image2d": [("seg", "Segment the area on the human's body that is in direct contact with the {object} in "
                        "this image.", "[SEG]", "demo")],
    "image2d_camcond": [("seg", "Segment the area on the human's body that is in direct contact with the "
                                "{object} in this image.", "[SEG]", "training")],
}
OBJECT = "cup"
IMAGE_SIZE = (96, 160)
SAM_SIZE = 256


def image_from_blocks(blocks: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8 colours -> (8h, 8w, 3) uint8: 8 x 8 blocks plus a diagonal ramp (edges and
    gradients for the resize). tests/test_variants.py builds the image the same way."""
    y, x = np.mgrid[:blocks.shape[0] * 8, :blocks.shape[1] * 8]
    return (blocks.astype(np.int64).repeat(8, 0).repeat(8, 1) + ((x + 2 * y) % 56)[..., None]).astype(np.uint8)


def renders_from_blocks(blocks: np.ndarray) -> np.ndarray:
    """(V, h, w, 3) uint8 colours -> (V, 16h, 16w, 3) uint8: 16 x 16 blocks plus a ramp that
    differs per view. tests/test_variants.py builds the renders the same way."""
    y, x = np.mgrid[:blocks.shape[1] * 16, :blocks.shape[2] * 16]
    ramps = np.stack([(x * (v + 1) + y) % 56 for v in range(blocks.shape[0])])[..., None]
    return (blocks.astype(np.int64).repeat(16, 1).repeat(16, 2) + ramps).astype(np.uint8)


def mask_pixels(shape: tuple[int, int], joint: bool) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the stored mask pixels (see the module docstring)."""
    if joint:
        return np.arange(3, shape[0], 16), np.arange(3, shape[1], 16)
    rows = np.unique(np.r_[np.arange(1, shape[0], 4), shape[0] - 1])
    cols = np.unique(np.r_[np.arange(1, shape[1], 4), shape[1] - 1])
    return rows, cols


def tensor_sha256(tensors: dict) -> str:
    """sha256 over (key, dtype, shape, raw bytes) of every tensor, keys sorted: the same
    number in any torch version for the same weights, whatever the file layout."""
    import torch

    digest = hashlib.sha256()
    for key in sorted(tensors):
        tensor = tensors[key].detach().cpu().contiguous()
        digest.update(f"{key}|{str(tensor.dtype).replace('torch.', '')}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def checkpoint_tensors(directory: Path) -> dict:
    """Every tensor of a checkpoint directory's ``pytorch_model*.bin`` / ``model*.safetensors``."""
    import torch

    tensors = {}
    for path in sorted(directory.glob("pytorch_model*.bin")):
        tensors.update(torch.load(path, map_location="cpu", weights_only=True))
    for path in sorted(directory.glob("model*.safetensors")):
        from safetensors.torch import load_file

        tensors.update(load_file(str(path)))
    return tensors


def file_sha256(paths) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(Path(path).name.encode() + b"|" + Path(path).read_bytes())
    return digest.hexdigest()


def hashes(directory: Path) -> dict:
    """The fingerprints of one tiny checkpoint directory (weights, CLIP, tokenizer files)."""
    return {"weights_sha256": tensor_sha256(checkpoint_tensors(directory)),
            "clip_sha256": tensor_sha256(checkpoint_tensors(directory / "clip")),
            "tokenizer_sha256": file_sha256([directory / "tokenizer.model", directory / "added_tokens.json"])}


class ForceTokens:
    """A transformers ``LogitsProcessor``: at generated step i < len(tokens) every logit but
    ``tokens[i]``'s becomes -inf; later steps are left alone.

    Args:
        prompt_length: length of the prompt ids (with IMAGE_TOKEN_INDEX) generation starts from.
    """

    def __init__(self, prompt_length: int, tokens: list[int]):
        self.prompt_length = prompt_length
        self.tokens = list(tokens)

    def __call__(self, input_ids, scores):
        import torch

        step = input_ids.shape[1] - self.prompt_length
        if 0 <= step < len(self.tokens):
            forced = torch.full_like(scores, float("-inf"))
            forced[:, self.tokens[step]] = 0.0
            return forced
        return scores


# ------------------------------------------------------------------------------- step 1
def write_checkpoints(out: Path) -> None:
    from interactvlm_ros.localize.tiny import write_tiny_checkpoint

    for name, kwargs in CASES.items():
        directory = write_tiny_checkpoint(out / name, **kwargs)
        print(f"wrote {directory}: {hashes(directory)['weights_sha256']}")


# ------------------------------------------------------------------------------- step 2
def _import_interactvlm(root: Path):
    """InteractVLM's model module with the replacements listed in the module docstring."""
    import torch
    from torch import nn

    sys.path.insert(0, str(root))
    spec = importlib.util.find_spec("torchvision")
    if spec is None:
        raise SystemExit("torchvision is not installed (pip install --no-deps torchvision==0.28.0)")
    package = types.ModuleType("torchvision")
    package.__path__ = list(spec.submodule_search_locations)
    package.__spec__ = spec
    sys.modules["torchvision"] = package
    wandb = types.ModuleType("wandb")
    wandb.__spec__ = importlib.machinery.ModuleSpec("wandb", None)
    sys.modules["wandb"] = wandb
    torch.Tensor.cuda = lambda self, *args, **kwargs: self

    import model.InteractVLM as interactvlm
    from model.segment_anything import modeling

    class NoLifting(nn.Module):
        """Stands in for a 3D predictor (needs InteractVLM's data files); returns None."""

        def __init__(self, *args, **kwargs):
            super().__init__()

        def forward(self, *args, **kwargs):
            return None

    interactvlm.HumanContact3DPredictor = NoLifting
    interactvlm.ObjectPCAfford3DPredictor = NoLifting
    interactvlm.ObjectMeshContact3DPredictor = NoLifting
    return interactvlm, modeling


def _tiny_sam_builder(modeling, state: dict):
    """``build_sam_vit_h``'s construction (build_sam.py ``_build_sam``) at the sizes of the
    checkpoint's SAM weights; the mask decoder's 8 heads are not in the weights (SAM's)."""
    import torch

    prefix = "model.visual_model."
    sd = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    embed_dim = sd["image_encoder.patch_embed.proj.weight"].shape[0]
    patch = sd["image_encoder.patch_embed.proj.weight"].shape[-1]
    grid = sd["image_encoder.pos_embed"].shape[1]
    depth = len({k.split(".")[2] for k in sd if k.startswith("image_encoder.blocks.")})
    rel = [sd[f"image_encoder.blocks.{i}.attn.rel_pos_h"].shape[0] for i in range(depth)]
    global_blocks = [i for i in range(depth) if rel[i] == 2 * grid - 1]
    window = next((r + 1) // 2 for r in rel if r != 2 * grid - 1)
    heads = embed_dim // (sd["image_encoder.blocks.0.attn.rel_pos_h"].shape[1])
    mlp_ratio = sd["image_encoder.blocks.0.mlp.lin1.weight"].shape[0] / embed_dim
    prompt_dim = sd["image_encoder.neck.0.weight"].shape[0]
    decoder_depth = len({k.split(".")[3] for k in sd if k.startswith("mask_decoder.transformer.layers.")})
    iou_depth = len({k.split(".")[3] for k in sd if k.startswith("mask_decoder.iou_prediction_head.layers.")})
    sizes = dict(embed_dim=embed_dim, patch=patch, img_size=grid * patch, depth=depth, heads=heads,
                 global_blocks=global_blocks, window=window, mlp_ratio=mlp_ratio)

    def build(checkpoint=None):
        assert checkpoint is None
        size = grid * patch
        return modeling.Sam(
            image_encoder=modeling.ImageEncoderViT(
                depth=depth, embed_dim=embed_dim, img_size=size, mlp_ratio=mlp_ratio,
                norm_layer=functools.partial(torch.nn.LayerNorm, eps=1e-6), num_heads=heads, patch_size=patch,
                qkv_bias=True, use_rel_pos=True, global_attn_indexes=global_blocks, window_size=window,
                out_chans=prompt_dim),
            prompt_encoder=modeling.PromptEncoder(
                embed_dim=prompt_dim, image_embedding_size=(grid, grid), input_image_size=(size, size),
                mask_in_chans=sd["prompt_encoder.mask_downscaling.3.weight"].shape[0]),
            mask_decoder=modeling.MaskDecoder(
                num_multimask_outputs=sd["mask_decoder.mask_tokens.weight"].shape[0] - 1,
                transformer=modeling.TwoWayTransformer(
                    depth=decoder_depth, embedding_dim=prompt_dim,
                    mlp_dim=sd["mask_decoder.transformer.layers.0.mlp.lin1.weight"].shape[0], num_heads=8),
                transformer_dim=prompt_dim, iou_head_depth=iou_depth,
                iou_head_hidden_dim=sd["mask_decoder.iou_prediction_head.layers.0.weight"].shape[0]),
            pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375]).eval()

    return build, sizes


def _function_from(path: Path, name: str):
    """A top-level function of an InteractVLM file that cannot be imported (its imports need
    pytorch3d, cv2, SMPL-X...): its definition is read from the file and executed alone."""
    import torch
    import torch.nn.functional as F

    tree = ast.parse(path.read_text())
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    namespace = {"torch": torch, "F": F}
    exec(compile(ast.Module(body=[node], type_ignores=[]), str(path), "exec"), namespace)
    return namespace[name]


def _run_demo_2d_prompt(root: Path) -> str:
    """The 'h2dcontact' BASE_PROMPT string of run_demo.py (checked against :data:`RUNS`)."""
    text = (root / "run_demo.py").read_text()
    start = text.index("elif 'h2dcontact' in args.contact_type")
    line = next(l for l in text[start:].splitlines() if "BASE_PROMPT" in l)
    return ast.literal_eval(line.split("=", 1)[1].strip())[0]


def reference(root: Path, checkpoints: Path, out: Path) -> None:
    import torch
    import transformers
    from transformers import AutoTokenizer, CLIPImageProcessor, LogitsProcessorList

    if transformers.__version__ != "4.31.0":
        raise SystemExit(f"needs transformers 4.31.0, found {transformers.__version__}")
    interactvlm, modeling = _import_interactvlm(root)
    from model.llava import conversation as conversation_lib
    from model.llava.mm_utils import tokenizer_image_token
    from model.segment_anything.utils.transforms import ResizeLongestSide
    from preprocess_data.constants import HUMAN_VIEW_DICT, OBJS_VIEW_DICT
    import utils.utils as ivlm_utils

    preprocess = _function_from(root / "run_demo.py", "preprocess")
    normalize_cam_params = _function_from(root / "datasets" / "base_contact_dataset.py", "normalize_cam_params")
    questions = {"[HSEG]": ivlm_utils.HCONTACT_PARTS_QUESTION_LIST[0], "[OSEG]": ivlm_utils.OCONTACT_QUESTION_LIST[0],
                 "[SEG]": ivlm_utils.OAFFORD_AFFORD_QUESTION_LIST[0]}
    for _, question, forced, _ in RUNS["joint"]:
        assert questions[forced].replace("{class_name}", "{object}") == "<image>\n" + question, forced
    assert _run_demo_2d_prompt(root) == RUNS["image2d"][0][1]

    commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    import PIL
    import accelerate
    import tokenizers
    meta = {"versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                         "tokenizers": tokenizers.__version__, "accelerate": accelerate.__version__,
                         "pillow": PIL.__version__, "numpy": np.__version__},
            "interactvlm_commit": commit, "object": OBJECT, "cases": {}}
    rng = np.random.default_rng(7)
    image_blocks = rng.integers(0, 200, (IMAGE_SIZE[0] // 8, IMAGE_SIZE[1] // 8, 3)).astype(np.uint8)
    render_blocks = rng.integers(0, 200, (4, SAM_SIZE // 16, SAM_SIZE // 16, 3)).astype(np.uint8)
    image, renders = image_from_blocks(image_blocks), renders_from_blocks(render_blocks)
    meta["image_sha256"] = hashlib.sha256(image.tobytes()).hexdigest()
    meta["renders_sha256"] = hashlib.sha256(renders.tobytes()).hexdigest()
    arrays = {"image_blocks": image_blocks, "render_blocks": render_blocks}

    for case, kwargs in CASES.items():
        directory = checkpoints / case
        entry = {"kwargs": kwargs, **hashes(directory), "runs": {}}
        state = checkpoint_tensors(directory)
        build, sizes = _tiny_sam_builder(modeling, state)
        entry["sam_sizes"] = sizes
        interactvlm.build_sam_vit_h = build

        tokenizer = AutoTokenizer.from_pretrained(str(directory), model_max_length=512, padding_side="right",
                                                  use_fast=False)
        tokenizer.pad_token = tokenizer.unk_token
        model = interactvlm.InteractVLMForCausalLM.from_pretrained(
            str(directory), low_cpu_mem_usage=True, vision_tower=str(directory / "clip"),
            torch_dtype=torch.float32, train_from_LISA=False, train_from_LLAVA=False)
        model.config.eos_token_id = tokenizer.eos_token_id
        model.config.bos_token_id = tokenizer.bos_token_id
        model.config.pad_token_id = tokenizer.pad_token_id
        model.get_model().initialize_vision_modules(model.get_model().config)
        model.get_model().get_vision_tower().to(dtype=torch.float32)
        # transformers 5 (the project's venv) saves CLIPVisionModel without the "vision_model."
        # prefix of its keys and 4.31's from_pretrained does not put it back: it loads nothing
        # (every CLIP weight stays random). The same tensors are loaded with the prefix restored.
        from safetensors.torch import load_file

        clip = model.get_model().get_vision_tower().vision_tower
        clip.load_state_dict({"vision_model." + k: v for k, v in
                              load_file(str(directory / "clip" / "model.safetensors")).items()}, strict=True)
        # LLaMA's rotary inv_freq is a persistent buffer in 4.31 that the checkpoint lacks (newer
        # transformers do not save it): it keeps the value its constructor computed.
        head_dim = model.config.hidden_size // model.config.num_attention_heads
        expected = 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))
        for layer in model.get_model().layers:
            assert torch.equal(layer.self_attn.rotary_emb.inv_freq, expected)
        model = model.float().eval()
        clip_image_processor = CLIPImageProcessor.from_pretrained(model.config.vision_tower)
        transform = ResizeLongestSide(SAM_SIZE)
        generate = model.generate

        recorded = {}
        process = model.process_embeddings

        def recording(embedding, cam_params, token, process=process, recorded=recorded):
            recorded["pre_split"] = embedding.detach().clone()
            result = process(embedding, cam_params, token)
            recorded["processed"] = result.detach().clone()
            return result

        model.process_embeddings = recording

        for run, question, forced, cameras in RUNS[case]:
            conv = conversation_lib.conv_templates["llava_v1"].copy()
            conv.messages = []
            prompt = "<image>\n" + question.format(object=OBJECT)
            prompt = prompt.replace("<image>", "<im_start><image><im_end>")
            conv.append_message(conv.roles[0], prompt)
            conv.append_message(conv.roles[1], "")
            input_ids = tokenizer_image_token(conv.get_prompt(), tokenizer, return_tensors="pt").unsqueeze(0)
            image_clip = clip_image_processor.preprocess(image, return_tensors="pt")["pixel_values"][0].unsqueeze(0)
            if case == "joint":
                views = [transform.apply_image(view) for view in renders]
                resize_list = [views[0].shape[:2]]
                original_size_list = resize_list
                sam_input = torch.stack([preprocess(torch.from_numpy(v).permute(2, 0, 1).contiguous(),
                                                    img_size=SAM_SIZE) for v in views]).unsqueeze(0)
                table = HUMAN_VIEW_DICT[model.config.hC_sam_view_type] if cameras == "human" else \
                    OBJS_VIEW_DICT[model.config.oC_sam_view_type]
                cam_params = torch.stack([normalize_cam_params(table["cam_params"][v])
                                          for v in table["cam_params"]]).unsqueeze(0).float()
                contact_type = "hcontact" if cameras == "human" else "ocontact"
            else:
                original_size_list = [image.shape[:2]]
                sam_image = transform.apply_image(image)
                resize_list = [sam_image.shape[:2]]
                sam_input = preprocess(torch.from_numpy(sam_image).permute(2, 0, 1).contiguous(),
                                       img_size=SAM_SIZE).unsqueeze(0).unsqueeze(0)
                if cameras == "demo":
                    cam_params = torch.rand(1, 5, generator=torch.Generator().manual_seed(0))  # run_demo.py:253
                else:
                    cam_params = torch.zeros(1, 1, 5)  # hcontact_2d.py's dummy, batched by collate_fn
                contact_type = "h2dcontact"
            prompt_ids = input_ids[0].tolist()
            forced_ids = [tokenizer.convert_tokens_to_ids(forced), tokenizer.eos_token_id]
            model.generate = functools.partial(generate, logits_processor=LogitsProcessorList(
                [ForceTokens(len(prompt_ids), forced_ids)]))
            recorded.clear()
            output = model.evaluate(image_clip.float(), sam_input.float(), input_ids, cam_params, resize_list,
                                    original_size_list=original_size_list, contact_type=contact_type,
                                    max_new_tokens=512, tokenizer=tokenizer)
            pre_split = recorded["pre_split"][0]
            assert torch.equal(pre_split, pre_split[:1].expand_as(pre_split))  # the same for every view
            output_ids = output["output_ids"][0, len(prompt_ids):].tolist()
            assert output_ids == forced_ids, (case, run, output_ids)
            masks = output["pred_masks"][0].float()
            rows, cols = mask_pixels(tuple(masks.shape[-2:]), case == "joint")
            key = f"{case}/{run}/"
            arrays.update({
                key + "prompt_ids": np.array(prompt_ids, np.int64),
                key + "output_ids": np.array(output_ids, np.int64),
                key + "cam_params": cam_params.reshape(-1, 5).float().numpy(),
                key + "pre_split": recorded["pre_split"][0, 0].float().numpy(),
                key + "processed": recorded["processed"][0].float().numpy(),
                key + "masks": masks[:, rows][:, :, cols].numpy(),
                key + "rows": rows.astype(np.int64), key + "cols": cols.astype(np.int64),
                key + "full_shape": np.array(masks.shape, np.int64),
            })
            entry["runs"][run] = {"question": question, "forced": forced, "forced_ids": forced_ids,
                                  "cameras": cameras, "contact_type": contact_type,
                                  "answer": tokenizer.decode(output_ids, skip_special_tokens=False)}
            print(f"{case}/{run}: {entry['runs'][run]['answer']!r}, masks {tuple(masks.shape)}")
        meta["cases"][case] = entry
    arrays["meta"] = np.array(json.dumps(meta, indent=1, sort_keys=True))
    for name, value in arrays.items():
        if value.dtype == np.float64:
            raise AssertionError(f"{name} is float64")
    np.savez_compressed(out, **arrays)
    print(f"wrote {out} ({out.stat().st_size} bytes)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    write = commands.add_parser("write-checkpoints", help="step 1, in the project's venv")
    write.add_argument("checkpoints", type=Path)
    run = commands.add_parser("reference", help="step 2, in a transformers 4.31 venv")
    run.add_argument("--interactvlm", type=Path, required=True, help="a clone of saidwivedi/InteractVLM")
    run.add_argument("--checkpoints", type=Path, required=True, help="the directory step 1 wrote")
    run.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "write-checkpoints":
        write_checkpoints(args.checkpoints)
    else:
        reference(args.interactvlm, args.checkpoints, args.out)


if __name__ == "__main__":
    main()
