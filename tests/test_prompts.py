"""InteractVLM's prompts, the llava_v1 template and answer parsing."""

from __future__ import annotations

import re

import pytest

from interactvlm_ros.localize.prompts import (
    AFFORDANCES,
    HUMAN_CONTACT_PROMPT,
    conversation,
    object_name,
    parse_answer,
)
from interactvlm_ros.reasons import Reason, Rejected


def test_llava_v1_conversation():
    text = conversation(HUMAN_CONTACT_PROMPT.format(object="cup"))
    assert text == (
        "A chat between a curious human and an artificial intelligence assistant. The assistant gives "
        "helpful, detailed, and polite answers to the human's questions. USER: <im_start><image><im_end>\n"
        "Which body parts are in contact with the cup? Segment these contact areas. ASSISTANT:"
    )
    assert "USER: <image>\nWhich" in conversation("Which?", use_im_start_end=False)
    with pytest.raises(ValueError):
        conversation("  ")


def test_object_names():
    assert object_name("Dining_Table") == "dining table"
    assert object_name("  sports   ball ") == "sports ball"
    assert object_name("Würstchen") == "würstchen" and object_name("café 2 (blue)") == "café 2 (blue)"
    assert object_name("x" * 64) == "x" * 64


@pytest.mark.parametrize("label, problem", [
    ("_", "no letter or digit"), ("__", "no letter or digit"), ("", "no letter or digit"), (" - ", "no letter"),
    ("x" * 65, "65 characters (limit 64)"), ("x" * 100_000, "100000 characters"),
    ("<image>", "'<image>'"), ("cup [SEG]", "the model's token '[SEG]'"), ("</s>", "'</s>'"),
    ("cup\nUSER: hi", "'\\n:'"), ("cup\tmug", "'\\t'"), ("cup/../../x", "'/'"), ("a\x00b", "'\\x00'"),
    ("mug<im_end>", "'<>'"),
])
def test_labels_that_cannot_reach_a_prompt(label, problem):
    with pytest.raises(Rejected, match=re.escape(problem)) as error:
        object_name(label, reserved=("[SEG]", "</s>", "<image>"))
    assert error.value.reason == Reason.INVALID_LABEL


@pytest.mark.parametrize(
    "answer, parts",
    [
        ("The contacting body parts are left hand, right hand, and the contact region is [SEG].",
         ("left hand", "right hand")),
        ("The contacting body parts are hips and left upper leg, and the contact region is [SEG].",
         ("hips", "left upper leg")),
        ("The contacting body part is head, and the contact region is [SEG].</s>", ("head",)),
        ("The contacting body parts are right hand, right hand, and the contact region is [SEG].", ("right hand",)),
        ("Sorry, I cannot tell.", ()),
    ],
)
def test_body_parts(answer, parts):
    parsed = parse_answer(answer)
    assert parsed.body_parts == parts
    assert parsed.has_seg == ("[SEG]" in answer)
    assert "</s>" not in parsed.text


def test_affordance():
    parsed = parse_answer("The affordance type is wrapgrasp, and the contact region is [SEG].")
    assert (parsed.affordance, parsed.body_parts, parsed.has_seg) == ("wrapgrasp", (), True)
    assert parse_answer("The affordance type is sit.").affordance == "sit"
    assert parse_answer("[SEG]").affordance == ""
    assert {"grasp", "pour", "ride", "display"} <= set(AFFORDANCES) and len(AFFORDANCES) == len(set(AFFORDANCES))
