"""Regenerate tests/data/tokenizers/ from the REAL transformers 4.31 slow LlamaTokenizer.

This script is NOT part of the test suite and is never imported by it. It needs
transformers 4.31.0 (the version InteractVLM trains and evaluates with), which the project
environment does not install, and InteractVLM's public code for LLaVA's conversation template
and ``tokenizer_image_token``. Run it in its own virtual environment:

    python3 -m venv /tmp/tok431
    /tmp/tok431/bin/pip install transformers==4.31.0 sentencepiece==0.2.3 torch==2.13.0 pillow
    git clone https://github.com/saidwivedi/InteractVLM /tmp/InteractVLM
    .venv/bin/interactvlm-ros make-tiny-checkpoint /tmp/tiny          # the project's tiny model
    /tmp/tok431/bin/python tests/data/make_tokenizer_fixture.py \
        --interactvlm /tmp/InteractVLM --tiny /tmp/tiny --out tests/data/tokenizers

(The committed fixture was made with transformers 4.31.0, tokenizers 0.13.3, sentencepiece
0.2.3, torch 2.13.0+cpu and InteractVLM at commit 79b4bf2.) Only ``model/llava/conversation.py``
and ``model/llava/mm_utils.py`` of InteractVLM are loaded, by file path, without running
``model/llava/__init__.py`` (which would build the whole model).

What it writes into ``--out``:

* ``llama_like/``: a SentencePiece model trained here with LLaMA's settings (BPE, byte
  fallback, identity normalisation, split digits, dummy prefix, no whitespace collapsing,
  <unk>=0 <s>=1 </s>=2, no pad), 1000 pieces, on text that leaves some characters (``ü``,
  ``ß``, emoji) to byte fallback; then a tokenizer built from it exactly as InteractVLM builds
  its own (``LlamaTokenizer(legacy=True)``, ``pad_token = unk_token``, ``add_tokens("[SEG]")``,
  ``add_tokens([<im_start>, <im_end>], special_tokens=True)``) and saved with 4.31's
  ``save_pretrained``: the release layout.
* ``llama_like_hu_obj/``: the same with the joint model's tokens (``token_type`` Gen-Hu-Obj:
  ``[SEG]``, ``[HSEG]``, ``[OSEG]``, then ``<im_start>``, ``<im_end>``).
* ``expected.json``: for each tokenizer (those two, ``llama_like`` loaded with
  ``legacy=False``, and the project's tiny ``tokenizer.model`` given by ``--tiny``, identified
  by its SHA-256), reloaded with ``AutoTokenizer.from_pretrained(dir, use_fast=False)`` as
  InteractVLM's demo does:
  - ``prompt_ids``: ``tokenizer_image_token`` ids of each of the top-level ``prompts``: the
    llava_v1 conversation text (InteractVLM's ``conv_templates["llava_v1"]`` with
    ``<im_start><image><im_end>\\n`` + question) for every question template of the project
    (contact, affordance, 2D contact, object contact) and one more of InteractVLM's training
    list, with object names that have spaces, digits, punctuation, non-ASCII, upper case;
  - ``encodes``: ``tokenizer(text).input_ids`` of plain texts, some containing added tokens
    and special tokens with and without surrounding whitespace;
  - ``decodes``: ``tokenizer.decode(ids, skip_special_tokens=s)`` of answer ids built from
    InteractVLM's answer templates (``encode`` without BOS, ``</s>`` appended), for s in
    {False, True}, and the ids themselves.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import io
import json
import shutil
import sys
import types
from pathlib import Path

import sentencepiece
import transformers
from transformers import AutoTokenizer, LlamaTokenizer

IM_START, IM_END = "<im_start>", "<im_end>"

#: Object names: spaces, digits, punctuation, non-ASCII, upper case, byte fallback.
OBJECTS = ["cup", "tennis racket", "Cup", "wine glass 2", "café", "Würstchen", "mug (blue)", "T-shirt",
           "3d printer", "hot-dog!", "Straße sign", "pizza 🍕", "scene", "teddy_bear", "a  b"]

#: Question templates: the project's (see interactvlm_ros/localize/prompts.py) and the other
#: training questions of InteractVLM's utils/utils.py. {object} is the object name.
QUESTIONS = [
    "Which body parts are in contact with the {object}? Segment these contact areas.",
    "What type of affordance does the human-object interaction suggest? Then, segment the area on the {object} "
    "where the human is making contact.",
    "Segment the area on the human's body that is in direct contact with the {object} in this image.",
    "Segment the area on the {object} where the human is making direct contact in this image.",
    "Looking at the {object}, what parts of the human body are touching it? Show these contact regions.",
]

ENCODES = [
    "cup", " cup", "Cup  ", "The contacting body parts are left hand, right hand, and the contact region is [SEG].",
    "[SEG]", " [SEG] ", "a[SEG]b", "a [SEG] b", "[HSEG] and [OSEG]", "<im_start><image><im_end>",
    "x <im_start>\ny", "</s>", "a </s> b", "<s>hello", "hello <unk> world", "line\nbreak", "tab\tin", "12345",
    "Würstchen café", "🍕", "", " ", "\n",
]

BODY_PARTS = ["left hand", "right hand", "left forearm", "right upper arm", "head", "left foot"]
ANSWERS = [
    "The contacting body parts are {parts}, and the contact region is [SEG].",
    "The involved body parts are {parts}, with the contact mask at [SEG].",
    "Contact occurs at {parts}, with the contact points shown at [SEG].",
    "Body parts: {parts}, contact mask: [SEG].",
    "The affordance type is grasp, and the contact region is [SEG].",
    "Sure, it is [SEG].",
    "[SEG].",
    "The contacting body parts are {parts}, and the contact region is [HSEG]. Object: [OSEG].",
    "It is n't 're 's , . ! ? done",
]

CORPUS = [
    "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, "
    "detailed, and polite answers to the human's questions.", "USER: ASSISTANT:",
    *(q.format(object=o) for q in QUESTIONS for o in ("cup", "bottle", "chair", "tennis racket", "café", "book")),
    *(a.format(parts=", ".join(BODY_PARTS[:k])) for a in ANSWERS for k in range(1, 6)),
    "0 1 2 3 4 5 6 7 8 9 ( ) - ! ? , . : ; ' \" / T shirt hot dog printer pizza sign glass wine mug blue",
]


def _load_interactvlm(root: Path):
    """InteractVLM's conversation templates and tokenizer_image_token, loaded by file path."""
    package = types.ModuleType("llava")
    package.__path__ = [str(root / "model" / "llava")]
    sys.modules["llava"] = package
    modules = {}
    for name in ("constants", "conversation", "mm_utils"):
        spec = importlib.util.spec_from_file_location(f"llava.{name}", root / "model" / "llava" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        modules[name] = module
    return modules["conversation"].conv_templates, modules["mm_utils"].tokenizer_image_token


def _train_llama_like(path: Path) -> None:
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 4), model_writer=model, vocab_size=1000, model_type="bpe",
        byte_fallback=True, normalization_rule_name="identity", split_digits=True, add_dummy_prefix=True,
        remove_extra_whitespaces=False, allow_whitespace_only_pieces=True, character_coverage=0.99,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=1, minloglevel=2, hard_vocab_limit=False)
    path.write_bytes(model.getvalue())


def _interactvlm_tokenizer(model_file: Path, out: Path, seg_tokens: list[str]) -> None:
    """A tokenizer made the way InteractVLM makes it, saved by 4.31 (the release layout)."""
    tokenizer = LlamaTokenizer(vocab_file=str(model_file), legacy=True)
    tokenizer.pad_token = tokenizer.unk_token
    for token in seg_tokens:
        tokenizer.add_tokens(token)
    tokenizer.add_tokens([IM_START, IM_END], special_tokens=True)
    if out.exists():
        shutil.rmtree(out)
    tokenizer.save_pretrained(str(out))


def _prompts(conv_templates) -> list[dict]:
    """The llava_v1 conversation of each (question, object): every object with the first two
    questions (the 3D contact and affordance prompts), five objects with the others."""
    prompts = []
    for number, question in enumerate(QUESTIONS):
        for name in OBJECTS if number < 2 else OBJECTS[3:8]:
            conv = conv_templates["llava_v1"].copy()
            conv.messages = []
            conv.append_message(conv.roles[0], IM_START + "<image>" + IM_END + "\n" + question.format(object=name))
            conv.append_message(conv.roles[1], "")
            prompts.append({"question": question, "object": name, "text": conv.get_prompt()})
    return prompts


def _cases(tokenizer, prompts, tokenizer_image_token) -> dict:
    encodes = [{"text": t, "ids": [int(i) for i in tokenizer(t).input_ids]} for t in ENCODES]
    decodes = []
    for answer in ANSWERS:
        for count in (1, 3, 6):
            text = answer.format(parts=", ".join(BODY_PARTS[:count]))
            ids = [int(i) for i in tokenizer(text, add_special_tokens=False).input_ids] + [tokenizer.eos_token_id]
            for skip in (False, True):
                decodes.append({"ids": ids, "skip_special_tokens": skip,
                                "text": tokenizer.decode(ids, skip_special_tokens=skip)})
            if "{parts}" not in answer:
                break
    decodes.append({"ids": [tokenizer.bos_token_id, 5, 6, 7], "skip_special_tokens": False,
                    "text": tokenizer.decode([tokenizer.bos_token_id, 5, 6, 7])})
    return {"length": len(tokenizer), "bos": tokenizer.bos_token_id, "eos": tokenizer.eos_token_id,
            "prompt_ids": [[int(i) for i in tokenizer_image_token(p["text"], tokenizer)] for p in prompts],
            "encodes": encodes, "decodes": decodes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interactvlm", type=Path, required=True, help="a clone of saidwivedi/InteractVLM")
    parser.add_argument("--tiny", type=Path, required=True, help="a checkpoint from make-tiny-checkpoint")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if transformers.__version__ != "4.31.0":
        sys.exit(f"needs transformers 4.31.0, found {transformers.__version__}")
    conv_templates, tokenizer_image_token = _load_interactvlm(args.interactvlm)
    args.out.mkdir(parents=True, exist_ok=True)
    scratch = args.out / "_llama_like.model"
    _train_llama_like(scratch)
    _interactvlm_tokenizer(scratch, args.out / "llama_like", ["[SEG]"])
    _interactvlm_tokenizer(scratch, args.out / "llama_like_hu_obj", ["[SEG]", "[HSEG]", "[OSEG]"])
    scratch.unlink()

    prompts = _prompts(conv_templates)
    expected = {"transformers": transformers.__version__, "sentencepiece": sentencepiece.__version__,
                "prompts": prompts, "tokenizers": {}}
    tiny_model = args.tiny / "tokenizer.model"
    sources = {
        "llama_like": (args.out / "llama_like", {}),
        "llama_like_nonlegacy": (args.out / "llama_like", {"legacy": False}),
        "llama_like_hu_obj": (args.out / "llama_like_hu_obj", {}),
        "tiny": (args.tiny, {}),
    }
    for name, (directory, kwargs) in sources.items():
        tokenizer = AutoTokenizer.from_pretrained(str(directory), use_fast=False, **kwargs)
        assert type(tokenizer).__name__ == "LlamaTokenizer", type(tokenizer)
        entry = {"directory": directory.name if name != "tiny" else None, "kwargs": kwargs,
                 **_cases(tokenizer, prompts, tokenizer_image_token)}
        if name == "tiny":
            entry["tokenizer_model_sha256"] = hashlib.sha256(tiny_model.read_bytes()).hexdigest()
        expected["tokenizers"][name] = entry
    (args.out / "expected.json").write_text(json.dumps(expected, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
