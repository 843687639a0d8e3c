"""Tokenisation equal to transformers 4.31's slow LlamaTokenizer + LLaVA's
tokenizer_image_token, compared with ids and texts written by the real thing
(tests/data/make_tokenizer_fixture.py, transformers 4.31.0 in its own venv)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from interactvlm_ros.localize.prompts import IMAGE_TOKEN_INDEX, conversation
from interactvlm_ros.localize.tokenizer import LlamaSlowTokenizer, TokenizerError

DATA = Path(__file__).parent / "data" / "tokenizers"
EXPECTED = json.loads((DATA / "expected.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module", params=sorted(EXPECTED["tokenizers"]))
def case(request, tiny_checkpoint):
    """(name, our tokenizer, the 4.31 expectations) for each fixture tokenizer."""
    name = request.param
    entry = EXPECTED["tokenizers"][name]
    if name == "tiny":
        model = (tiny_checkpoint / "tokenizer.model").read_bytes()
        assert hashlib.sha256(model).hexdigest() == entry["tokenizer_model_sha256"], (
            "make-tiny-checkpoint now trains a different tokenizer.model: regenerate the fixture "
            "(tests/data/make_tokenizer_fixture.py)")
        directory = tiny_checkpoint
    else:
        directory = DATA / entry["directory"]
    return name, LlamaSlowTokenizer.from_pretrained(directory, **entry["kwargs"]), entry


def test_vocabulary(case):
    _, tokenizer, entry = case
    assert (len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id) == (
        entry["length"], entry["bos"], entry["eos"])


def test_conversation_text_is_llava_v1():
    """The project's llava_v1 prompt is character for character LLaVA's conv_templates output."""
    for prompt in EXPECTED["prompts"]:
        assert conversation(prompt["question"].format(object=prompt["object"])) == prompt["text"]


def test_prompt_ids_equal_transformers_4_31(case):
    name, tokenizer, entry = case
    assert len(entry["prompt_ids"]) == len(EXPECTED["prompts"]) >= 40
    for prompt, expected in zip(EXPECTED["prompts"], entry["prompt_ids"]):
        assert tokenizer.image_prompt_ids(prompt["text"]) == expected, (name, prompt["object"], prompt["question"])
        assert expected.count(IMAGE_TOKEN_INDEX) == 1


def test_encode_equals_transformers_4_31(case):
    name, tokenizer, entry = case
    for item in entry["encodes"]:
        assert tokenizer.encode(item["text"]) == item["ids"], (name, item["text"])


def test_decode_equals_transformers_4_31(case):
    name, tokenizer, entry = case
    for item in entry["decodes"]:
        assert tokenizer.decode(item["ids"], item["skip_special_tokens"]) == item["text"], (name, item)


def test_added_tokens_strip_their_neighbours_whitespace():
    """The rule the fast tokenizer of later transformers breaks: "USER: <im_start>" loses its
    trailing space and "<im_end>\\n" its newline before SentencePiece sees them."""
    tokenizer = LlamaSlowTokenizer.from_pretrained(DATA / "llama_like")
    assert tokenizer.encode("USER: <im_start>") == tokenizer.encode("USER:<im_start>")
    assert tokenizer.encode("<im_end>\nWhich") == tokenizer.encode("<im_end>Which")
    assert tokenizer.tokenize("a [SEG] b")[1] == "[SEG]"
    # LLaMA's </s> is an AddedToken without lstrip/rstrip: its neighbours keep their spaces.
    assert tokenizer.encode("a </s>") != tokenizer.encode("a</s>")


def test_joint_model_tokens():
    tokenizer = LlamaSlowTokenizer.from_pretrained(DATA / "llama_like_hu_obj")
    base = tokenizer.sp_model.get_piece_size()
    assert [tokenizer.convert_tokens_to_ids(t) for t in ("[SEG]", "[HSEG]", "[OSEG]", "<im_start>", "<im_end>")] \
        == list(range(base, base + 5))
    assert tokenizer.decode([base + 1, base + 2]) == "[HSEG] [OSEG]"


def test_bad_tokenizer_files(tmp_path):
    directory = tmp_path / "t"
    shutil.copytree(DATA / "llama_like", directory)
    (directory / "added_tokens.json").write_text(json.dumps({"[SEG]": 5000}))
    with pytest.raises(TokenizerError, match=r"'\[SEG\]' has id 5000, expected 918"):
        LlamaSlowTokenizer.from_pretrained(directory)
    (directory / "added_tokens.json").write_text("{not json")
    with pytest.raises(TokenizerError, match="added_tokens.json"):
        LlamaSlowTokenizer.from_pretrained(directory)
    (directory / "added_tokens.json").unlink()
    (directory / "tokenizer.model").write_bytes(b"not a model")
    with pytest.raises(TokenizerError, match="is not a SentencePiece model"):
        LlamaSlowTokenizer.from_pretrained(directory)
    (directory / "tokenizer.model").unlink()
    with pytest.raises(FileNotFoundError, match="tokenizer.model"):
        LlamaSlowTokenizer.from_pretrained(directory)
