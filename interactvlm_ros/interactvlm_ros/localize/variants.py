"""The released InteractVLM models as tiny checkpoint variants: which config values, tokens
and modules each release has (plain data, no torch: the parameter table takes its choices
from here). :func:`.tiny.write_tiny_checkpoint` writes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .prompts import HSEG_TOKEN, OSEG_TOKEN, SEG_TOKEN


@dataclass(frozen=True)
class TinyVariant:
    """One released InteractVLM model as a tiny checkpoint.

    Attributes:
        release: the released model's name (InteractVLM's fetch_data.sh).
        config: config.json values that differ from the "hcontact" variant's.
        extra_tokens: mask tokens the tokenizer adds after ``[SEG]``, ``<im_start>``,
            ``<im_end>`` (InteractVLM's ``add_new_tokens`` on LISA's tokenizer, which already
            holds those three: [HSEG] = [SEG] + 3, [OSEG] = [SEG] + 4, as 32003 / 32004 in the
            release); their ids go to ``hseg_token_idx`` / ``oseg_token_idx``.
        emit: the token the plumbing arrangement makes the model answer.
        note: where the values come from.
    """

    release: str
    config: dict = field(default_factory=dict)
    extra_tokens: tuple[str, ...] = ()
    emit: str = SEG_TOKEN
    note: str = ""


#: The release variants. Config values are those of InteractVLM's scripts/run_train.sh blocks
#: after train.py and merge_lora_weights_and_save_hf_model.py (replayed with its own code; the
#: "hcontact" values are the base of :func:`write_tiny_checkpoint`).
VARIANTS: dict[str, TinyVariant] = {
    "hcontact": TinyVariant(
        "interactvlm-3d-hcontact-damon",
        note="3D human contact: token_type Gen, 4 body views (4MV-Z_Vitru), vi_v1 camera conditioning"),
    "hcontact-wscene": TinyVariant(
        "interactvlm-3d-hcontact-wScene-damon-lemon-rich",
        {"hC_sam_view_type": "4MV-Z_Vitru_FootGround", "oC_question_type": "afford"},
        note="human contact with the scene: the 3D human-contact architecture; run_train.sh names the view "
             "type 4MV-Z_Vitru_wScene, which InteractVLM renamed 4MV-Z_Vitru_FootGround (same views) and which "
             "its current code needs"),
    "oafford": TinyVariant(
        "interactvlm-3d-oafford-lemon-piad",
        {"hC_loss_weight": 0.0, "oC_loss_weight": 3.0, "oC_question_type": "afford"},
        note="object affordance: 4 object views (4MV-Z_HM), vi_v1. run_train.sh spells its dataset "
             "'offord_seg', which selects no training data and would give multiview_channels 1; the release "
             "was trained on oafford_seg, so multiview_channels is 4 (OBJS_VIEW_DICT['4MV-Z_HM'] grid)"),
    "hcontact-ocontact": TinyVariant(
        "interactvlm-3d-hcontact-ocontact",
        {"token_type": "Gen-Hu-Obj", "oC_loss_weight": 3.0, "oC_sam_view_type": "4MV-Z_HM_BM",
         "oC_question_type": "afford"},
        extra_tokens=(HSEG_TOKEN, OSEG_TOKEN), emit=HSEG_TOKEN,
        note="joint human-object model: [SEG], [HSEG], [OSEG] and the attention splitter; one shared mask "
             "decoder (no -DifDe in run_train.sh); human views 4MV-Z_Vitru, object views 4MV-Z_HM_BM"),
    "2d-hcontact": TinyVariant(
        "interactvlm-2d-hcontact",
        # No training script for this model exists in InteractVLM's repository, so its config
        # values are unknown. multiview_channels 1 is what train.py computes for a dataset
        # without multi-view renders; multiview_cam_cond is unknown (false here; with true the
        # model is conditioned on the zero camera its training fed, predictor.IMAGE_CONTACT_CAMERA);
        # loss weights 0 build no 3D lifting module (evaluate() never lifts 'h2dcontact').
        {"multiview_channels": 1, "multiview_cam_cond": False, "hC_loss_weight": 0.0, "oC_loss_weight": 0.0},
        note="2D human contact: SAM on the camera image (one view), no camera conditioning; config values "
             "not published (no training script), see the comment in VARIANTS"),
}
