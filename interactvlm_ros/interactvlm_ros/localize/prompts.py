"""InteractVLM's prompts, the llava_v1 conversation template, and answer parsing.

Prompts and answer templates are InteractVLM's (its run_demo.py and utils/utils.py); the
conversation template is LLaVA v1's ``conv_llava_v1`` as LISA uses it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..reasons import Reason, Rejected

#: Special tokens added to the tokenizer (LISA / InteractVLM).
SEG_TOKEN = "[SEG]"
#: The joint model's tokens (``token_type`` "Gen-Hu-Obj", InteractVLM's utils/utils.py
#: ``add_new_tokens``): [HSEG] ends a human-contact answer, [OSEG] an object answer (its
#: datasets replace HTOKEN / OTOKEN of the answer templates with them).
HSEG_TOKEN = "[HSEG]"
OSEG_TOKEN = "[OSEG]"
#: ``token_type`` "Gen-Int": one token for both (its [HSEG] and [OSEG] ids are the same).
ISEG_TOKEN = "[ISEG]"
IMAGE_TOKEN = "<image>"
IM_START_TOKEN = "<im_start>"
IM_END_TOKEN = "<im_end>"
#: Placeholder id of the image in the token sequence; replaced by the projected CLIP tokens.
IMAGE_TOKEN_INDEX = -200

SYSTEM_PROMPT = (
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions."
)

HUMAN_CONTACT_PROMPT = "Which body parts are in contact with the {object}? Segment these contact areas."
OBJECT_AFFORDANCE_PROMPT = (
    "What type of affordance does the human-object interaction suggest? Then, segment the area "
    "on the {object} where the human is making contact."
)
#: The 2D human-contact model's question: run_demo.py's ``BASE_PROMPT`` of its 'h2dcontact' path
#: (= HCONTACT_QUESTION_LIST[0] of utils/utils.py, the "simple" question; training used the
#: body-parts questions, datasets/hcontact_2d.py).
HUMAN_CONTACT_2D_PROMPT = "Segment the area on the human's body that is in direct contact with the {object} in this image."
#: The joint model's object-contact question: OCONTACT_QUESTION_LIST[0] of InteractVLM's
#: utils/utils.py (datasets/ocontact_3d.py uses that list whatever ``oC_question_type`` says;
#: answers end in [OSEG] for "Gen-Hu-Obj"). The joint model's object-affordance and human-contact
#: questions are :data:`OBJECT_AFFORDANCE_PROMPT` and :data:`HUMAN_CONTACT_PROMPT` ("afford"
#: and "parts" question types in scripts/run_train.sh).
OBJECT_CONTACT_PROMPT = "Segment the area on the {object} where the human is making direct contact in this image."

#: Affordance words of PIAD and LEMON, the datasets InteractVLM's affordance models learnt from.
AFFORDANCES_PIAD = ("grasp", "contain", "lift", "open", "lay", "sit", "support", "wrapgrasp", "pour",
                    "move", "display", "push", "listen", "wear", "press", "cut", "stab")
AFFORDANCES_LEMON = ("grasp", "pull", "lift", "open", "lay", "sit", "support", "wrapgrasp", "pour",
                     "move", "ride", "play", "listen", "carry", "press", "cut", "stab")
AFFORDANCES = tuple(dict.fromkeys(AFFORDANCES_PIAD + AFFORDANCES_LEMON))


def conversation(question: str, use_im_start_end: bool = True) -> str:
    """The llava_v1 prompt for one question about one image, ready for generation:
    ``"{system} USER: <im_start><image><im_end>\\n{question} ASSISTANT:"``.

    Raises:
        ValueError: an empty question.
    """
    if not question.strip():
        raise ValueError("the question is empty")
    image = f"{IM_START_TOKEN}{IMAGE_TOKEN}{IM_END_TOKEN}" if use_im_start_end else IMAGE_TOKEN
    return f"{SYSTEM_PROMPT} USER: {image}\n{question} ASSISTANT:"


#: Longest detector label accepted (characters), the default of the node's max_label_length.
MAX_LABEL_LENGTH = 64
#: Characters an object label may hold: letters and digits of any script, underscore, space,
#: and - ' . , & + ( ). Anything else (control characters, newlines, tabs, '/', '<', '[', ...)
#: is not part of an object name and would change the prompt's structure.
_LABEL = re.compile(r"[\w \-'.,&+()]*")


def object_name(label: str, max_length: int = MAX_LABEL_LENGTH, reserved: tuple[str, ...] = ()) -> str:
    """A detector class label as the prompts name it: lower case, '_' as spaces, runs of
    spaces as one, validated before it reaches a prompt.

    Args:
        label: the detector's class label (e.g. "Dining_Table").
        max_length: longest label accepted, characters (checked first, so a huge label costs
            nothing).
        reserved: strings the label must not contain: the model's special and added tokens
            (``<image>``, ``[SEG]``, ``</s>``...).

    Returns:
        e.g. "dining table".

    Raises:
        Rejected: reason ``invalid_label``, with what is wrong (too long, a reserved token,
            characters outside letters/digits/space/_-'.,&+(), or no letter or digit).
    """
    if len(label) > max_length:
        raise Rejected(Reason.INVALID_LABEL, f"label of {len(label)} characters (limit {max_length})")
    for token in reserved:
        if token and token in label:
            raise Rejected(Reason.INVALID_LABEL, f"label {label!r} contains the model's token {token!r}")
    if not _LABEL.fullmatch(label):
        bad = sorted({c for c in label if not _LABEL.fullmatch(c)})
        raise Rejected(Reason.INVALID_LABEL, f"label {label!r} contains characters that are not part of an "
                                             f"object name: {''.join(bad)!r}")
    name = re.sub(r" +", " ", label.replace("_", " ")).strip().lower()
    if not any(c.isalnum() for c in name):
        raise Rejected(Reason.INVALID_LABEL, f"label {label!r} has no letter or digit")
    return name


@dataclass(frozen=True)
class ParsedAnswer:
    """What an answer says besides its masks.

    Attributes:
        text: the answer, special tokens left in place.
        body_parts: body parts named in a human-contact answer (in order, deduplicated).
        affordance: the affordance word of an object-affordance answer, "" when none.
        has_seg: whether the answer produced a mask token: [SEG], or [HSEG] / [OSEG] / [ISEG]
            of the joint models (none: no mask).
    """

    text: str
    body_parts: tuple[str, ...] = ()
    affordance: str = ""
    has_seg: bool = False


_PARTS = re.compile(r"body parts? (?:are|is)\s+(.+?)(?:,?\s+and the contact region|\.|$)", re.IGNORECASE)
_AFFORDANCE = re.compile(r"affordance(?: type)? is\s+([a-z\- ]+?)(?:,|\.|\s+and\b|$)", re.IGNORECASE)


def parse_answer(text: str) -> ParsedAnswer:
    """Parse "The contacting body parts are left hand, right hand, and the contact region is
    [SEG]." or "The affordance type is grasp, and the contact region is [SEG]."."""
    clean = text.replace("</s>", "").strip()
    parts: tuple[str, ...] = ()
    match = _PARTS.search(clean)
    if match:
        names = re.split(r",\s*|\s+and\s+", match.group(1))
        parts = tuple(dict.fromkeys(n.strip().lower() for n in names if n.strip()))
    affordance = ""
    match = _AFFORDANCE.search(clean)
    if match:
        affordance = match.group(1).strip().lower()
    has_seg = any(token in clean for token in (SEG_TOKEN, HSEG_TOKEN, OSEG_TOKEN, ISEG_TOKEN))
    return ParsedAnswer(text=clean, body_parts=parts, affordance=affordance, has_seg=has_seg)
