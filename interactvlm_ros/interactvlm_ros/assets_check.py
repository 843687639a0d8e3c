"""``interactvlm-ros check-assets DIR...``: validate the directories a deployment needs without
running the model: InteractVLM checkpoints (config, tokenizer, every weight key and shape
against the architecture on the meta device), the CLIP tower, SMPL-H / SMPL-X model folders,
and InteractVLM's official precomputed body renders. No ROS imports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

#: Files that identify InteractVLM's official body assets.
OFFICIAL_ASSET_FILES = ("pixel_to_vertex_map_1024.npz", "bary_coords_map_1024.npz")


@dataclass
class AssetReport:
    """Result for one directory: what it is, and the problems found (empty: usable)."""

    path: Path
    kind: str
    facts: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _config(path: Path) -> dict | None:
    try:
        return json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return None


def classify(path: Path) -> str:
    """"checkpoint", "clip", "body_models", "official_assets" or "unknown"."""
    config = _config(path)
    if config is not None:
        if config.get("model_type") == "llava" or "seg_token_idx" in config:
            return "checkpoint"
        if config.get("model_type") in ("clip", "clip_vision_model") or "vision_config" in config:
            return "clip"
    if any((path / name).is_file() for name in OFFICIAL_ASSET_FILES):
        return "official_assets"
    names = {p.name.lower() for pattern in ("*", "*/*", "*/*/*") for p in path.glob(pattern)} if path.is_dir() else set()
    if any(n.startswith(("smplh_", "smplx_")) or n == "model.npz" for n in names):
        return "body_models"
    return "unknown"


def _check_checkpoint(report: AssetReport) -> None:
    import torch

    from .localize.builder import plan_checkpoint

    plan = plan_checkpoint(report.path)
    report.problems += plan.problems
    count = sum(t.numel() for t in plan.model.state_dict().values())
    report.facts.append(f"model_id {report.path.name}, LLM width {plan.spec.hidden_size}, "
                        f"{count / 1e6:,.1f} M parameters ({plan.parameter_bytes(torch.bfloat16) / 2**30:.1f} GiB in "
                        f"bfloat16, CLIP tower not included)")
    report.facts.append(f"camera encoder: {plan.spec.cam_encoder_type if plan.spec.multiview_cam_cond else 'none'}; "
                        f"seg_token_idx {plan.spec.seg_token_idx}; vision tower {plan.spec.vision_tower}")
    from .localize.checkpoint import RELEASE_CONFIG_KEYS, REFERENCE_REQUIRED_CONFIG_KEYS

    missing = [k for k in REFERENCE_REQUIRED_CONFIG_KEYS if k not in plan.config]
    if missing:
        report.problems.append(f"config.json lacks keys InteractVLM's own loader needs: {', '.join(missing)}")
    absent = [k for k in RELEASE_CONFIG_KEYS if k not in plan.config and k not in missing]
    if absent:
        report.facts.append(f"config.json lacks {len(absent)} optional keys of a released config: {', '.join(absent)}")
    if plan.config.get("interactvlm_ros_random_weights"):
        report.facts.append("RANDOM weights (written by make-tiny-checkpoint)")
    if not (report.path / "tokenizer.model").is_file():
        report.problems.append("no tokenizer.model (the SentencePiece model InteractVLM's slow LlamaTokenizer reads)")
    else:
        from .localize.tokenizer import LlamaSlowTokenizer

        tokenizer = LlamaSlowTokenizer.from_pretrained(report.path)
        seg = tokenizer.convert_tokens_to_ids("[SEG]")
        report.facts.append(f"tokenizer: {len(tokenizer)} tokens, added {', '.join(tokenizer.added_tokens)}")
        if seg != plan.spec.seg_token_idx:
            report.problems.append(f"tokenizer id of [SEG] is {seg}, config.json says {plan.spec.seg_token_idx}")


def _check_clip(report: AssetReport) -> None:
    from transformers import CLIPVisionConfig

    vision = CLIPVisionConfig.from_pretrained(report.path, local_files_only=True)
    tokens = (vision.image_size // vision.patch_size) ** 2
    report.facts.append(f"CLIP vision width {vision.hidden_size}, {vision.num_hidden_layers} layers, "
                        f"{vision.image_size} px / patch {vision.patch_size} ({tokens} tokens)")
    if not (report.path / "preprocessor_config.json").is_file():
        report.problems.append("no preprocessor_config.json (CLIP image preprocessing)")
    if not any(report.path.glob("*.safetensors")) and not any(report.path.glob("*.bin")):
        report.problems.append("no weights (*.safetensors or *.bin)")


def _check_body_models(report: AssetReport) -> None:
    from .geometry.smpl import body_mesh

    found = False
    for model_type in ("smplh", "smplx"):
        try:
            mesh = body_mesh(model_type, report.path)
        except FileNotFoundError:
            continue
        except ValueError as error:
            report.problems.append(f"{model_type}: {error}")
            found = True
            continue
        found = True
        report.facts.append(f"{model_type}: {mesh.num_vertices} vertices, {mesh.num_faces} faces (Vitruvian pose)")
    if not found:
        report.problems.append("no SMPL-H or SMPL-X model file found (e.g. smplh/SMPLH_NEUTRAL.npz)")


def _check_official_assets(report: AssetReport) -> None:
    from .multiview import load_official_body_views

    views = load_official_body_views(report.path)
    visible = int(views.lifter.visible.any(axis=0).sum())
    report.facts.append(f"official body renders: {len(views.views)} views at {views.images.shape[1]} px, "
                        f"{visible} of {views.lifter.num_targets} vertices visible")


CHECKS = {"checkpoint": _check_checkpoint, "clip": _check_clip, "body_models": _check_body_models,
          "official_assets": _check_official_assets}


def check_assets(paths) -> list[AssetReport]:
    """One report per directory; never raises for a bad directory (the problem is reported)."""
    reports = []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            reports.append(AssetReport(path, "missing", problems=["not a directory"]))
            continue
        report = AssetReport(path, classify(path))
        check = CHECKS.get(report.kind)
        if check is None:
            report.problems.append("not recognised: expected an InteractVLM checkpoint, a CLIP tower, SMPL-H/SMPL-X "
                                   "model files or InteractVLM's official body renders")
        else:
            try:
                check(report)
            except Exception as error:  # noqa: BLE001 - reported, the next directory is checked
                report.problems.append(f"{type(error).__name__}: {error}")
        reports.append(report)
    return reports


def format_reports(reports: list[AssetReport]) -> str:
    lines = []
    for report in reports:
        lines.append(f"{'OK     ' if report.ok else 'PROBLEM'} {report.path} ({report.kind})")
        lines += [f"        {fact}" for fact in report.facts]
        lines += [f"        MISSING/WRONG: {problem}" for problem in report.problems]
    return "\n".join(lines)
