"""``interactvlm-ros``: command-line tools.

    interactvlm-ros make-tiny-checkpoint DIR [--model VARIANT] [--seed N] [--format bin|safetensors]
    interactvlm-ros check-assets DIR...
    interactvlm-ros export-onnx CHECKPOINT_DIR [OUT_DIR] [--clip-dir DIR]
    interactvlm-ros replay IN_BAG OUT_BAG [model options] [--params-file YAML] [--report-dir DIR] [--force]
    interactvlm-ros demo [OUT_DIR] [model options] [--force]
    interactvlm-ros convert {damon,piad,behave} ROOT OUT_BAG [options]   (a dataset -> input bag + sidecar)

    interactvlm-ros params [NAME...]            (the node's parameters; ros2 param describe)
    interactvlm-ros dump-params [FILE]          (the parameter file, every parameter at its default)
    interactvlm-ros lifecycle NODE TRANSITION   (ros2 lifecycle set)

Model options: the node parameters marked for the command line in :mod:`.config`, e.g.
--contact-checkpoint-dir (alias --checkpoint-dir), --affordance-checkpoint-dir, --clip-dir,
--use-tiny-checkpoint (alias --tiny), --device, --dtype, --body-model...
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _make_tiny_checkpoint(args) -> int:
    from .localize.tiny import write_tiny_checkpoint

    from .localize.variants import VARIANTS

    variant = next((name for name, v in VARIANTS.items() if args.model in (name, v.release)))
    directory = write_tiny_checkpoint(args.directory, seed=args.seed, weight_format=args.format, variant=variant)
    print(f"wrote a tiny {variant} MV-Loc checkpoint with RANDOM weights (seed {args.seed}) to {directory}; "
          f"its CLIP tower is in {directory / 'clip'}. Outputs of this model are meaningless.")
    return 0


def _check_assets(args) -> int:
    from .assets_check import check_assets, format_reports

    reports = check_assets(args.directories)
    print(format_reports(reports))
    return 0 if all(r.ok for r in reports) else 1


def _export_onnx(args) -> int:
    from .localize.onnx_vision import export_onnx, load_vision_modules

    out_dir = Path(args.out_dir) if args.out_dir else Path(args.checkpoint_dir) / "onnx"
    modules = load_vision_modules(args.checkpoint_dir, args.clip_dir)
    export_onnx(modules, out_dir)
    print(f"wrote the vision graphs of {modules.model_id} to {out_dir}; run the node with vision_backend:=onnxruntime"
          f"{'' if not args.out_dir else ' and contact_onnx_dir / affordance_onnx_dir set to it'}")
    return 0


#: Short names kept for options of the parameter table (earlier releases used them).
OPTION_ALIASES = {"contact_checkpoint_dir": ("--checkpoint-dir",), "use_tiny_checkpoint": ("--tiny",)}


def _model_options(parser: argparse.ArgumentParser) -> None:
    """One option per parameter of the table marked ``cli`` (``--name-with-dashes``), with its
    description, type and choices; unset options leave the parameter file / default value."""
    from .config import PARAMETERS

    group = parser.add_argument_group("model (node parameters; see `interactvlm-ros params`)")
    group.add_argument("--params-file", help="node parameter YAML (launch/config/interactvlm.yaml format)")
    for parameter in (p for p in PARAMETERS if p.cli):
        names = ("--" + parameter.name.replace("_", "-"), *OPTION_ALIASES.get(parameter.name, ()))
        if isinstance(parameter.default, bool):
            group.add_argument(*names, dest=parameter.name, action="store_true", default=None,
                               help=parameter.description)
        else:
            group.add_argument(*names, dest=parameter.name, type=type(parameter.default),
                               choices=parameter.choices or None, help=parameter.description)


def _settings(args) -> dict:
    """Defaults, then the parameter file, then the command-line options given."""
    from .config import PARAMETERS, check_settings, default_settings

    settings = default_settings()
    if args.params_file:
        from .ros.parameters import read_parameters_file

        settings.update(read_parameters_file(args.params_file))
    settings.update({p.name: getattr(args, p.name) for p in PARAMETERS if p.cli and getattr(args, p.name) is not None})
    check_settings(settings)
    return settings


def _processing_settings(settings: dict):
    import dataclasses

    from .ros.processing import ProcessingSettings

    # Offline nothing is dropped for being too many, and the markers are always written.
    return dataclasses.replace(ProcessingSettings.from_parameters(settings.__getitem__), max_detections=100,
                               markers=True)


def run_replay(in_bag: Path, out_bag: Path, settings: dict, report_dir: Path, image_topic=None,
               detections_topic=None, progress: bool = True, figures: int = 4, geodesic: str | None = None,
               force: bool = False, estimator=None, depth_topic: str | None = None,
               camera_info_topic: str | None = None, people=None, camera_note: str = "") -> dict:
    """Replay, account for every input, score against ground truth when there is any, and draw
    a few samples. Returns the paths written.

    ``geodesic``: None (no geodesic error), "mesh" (shortest edge paths on the body mesh,
    an upper bound of the geodesic) or the path of a (V, V) .npy matrix in metres (e.g.
    InteractVLM's ``smpl_neutral_geodesic_dist.npy``).

    Outputs and input are checked before the model loads (ValueError / FileNotFoundError);
    ``force`` replaces an existing output bag and overwrites a non-empty report directory.
    Raises BagReadError (with the paths) after writing everything when the input bag broke
    off mid-way.

    ``estimator``: an already loaded ``InteractionEstimator`` to use (its settings are then the
    model's) with ``people`` (the people stage, or None); None builds both from ``settings``
    after the checks (what the command does).
    ``depth_topic`` / ``camera_info_topic``: registered depth for the objects' points (see
    ``ros.replay.replay``).

    Figures: ``sample_NN.png`` for the first ``figures`` interactions and ``people_NN.png``
    for the first ``figures`` images with people and a CameraInfo (``ros.figures``: the posed
    bodies over the image and in the optical frame), ``camera_note`` in their caption (where
    the intrinsics came from)."""
    from .eval.evaluate import object_map_pictures, sample_pictures, score
    from .eval.groundtruth import load_ground_truth, sidecar_path
    from .eval.report import sample_figure, write_report
    from .geometry.mesh import TriangleMesh
    from .geometry.objects import ObjectGeometry, PointCloudGeometry
    from .loading import build_estimator, build_people
    from .ros.figures import people_figure_from_msgs
    from .ros.replay import BagReadError, check_inputs, check_outputs, replay, write_summary

    check_outputs(out_bag, report_dir, force, in_bag)
    check_inputs(in_bag, image_topic, detections_topic, depth_topic, camera_info_topic)
    ground_truth = {}
    sidecar = sidecar_path(in_bag)
    if sidecar.is_file():
        ground_truth = load_ground_truth(sidecar)

    def geometries(stamp, detection_id):  # the dataset's own object: its points, or its mesh (BEHAVE)
        truth = ground_truth.get((stamp, detection_id))
        if truth is not None and truth.points is not None:
            return PointCloudGeometry(truth.points, f"points:{sidecar.name}#{detection_id}")
        if truth is not None and truth.object_vertices is not None:  # the template, placed by its contact
            mesh = TriangleMesh(truth.object_vertices, truth.object_faces, name=truth.object_label)
            return ObjectGeometry.from_mesh(mesh, f"mesh:{sidecar.name}#{detection_id}")
        return None

    keepalive = None
    if estimator is None:
        people = build_people(settings, log=lambda line: print(f"WARNING: {line}"))
        estimator, keepalive = build_estimator(settings, log=lambda line: print(f"WARNING: {line}"))
    result = replay(in_bag, out_bag, estimator, _processing_settings(settings), image_topic, detections_topic,
                    slop_ns=int(float(settings["sync_slop"]) * 1e9), geometries=geometries, progress=progress,
                    force=force, depth_topic=depth_topic, camera_info_topic=camera_info_topic, people=people)
    report_dir.mkdir(parents=True, exist_ok=True)
    for stale in (*report_dir.glob("sample_*.png"), *report_dir.glob("people_*.png")):  # an earlier run's (--force)
        stale.unlink()
    paths = {"bag": out_bag, "summary": report_dir / "replay_summary.json"}
    write_summary(paths["summary"], result, in_bag, out_bag, estimator.model_id, estimator.weights_are_random)
    estimates = [(stamp, estimate) for stamp, _, estimate in result.outputs]
    if ground_truth:
        distances = None
        if geodesic == "mesh":
            from .eval.metrics import mesh_geodesic_distances

            distances = mesh_geodesic_distances(estimator.body.vertices, estimator.body.faces)
        elif geodesic:
            import numpy as np

            distances = np.load(geodesic, allow_pickle=False)
            if distances.shape != (estimator.body.num_vertices,) * 2:
                raise ValueError(f"{geodesic}: a {distances.shape} matrix for a {estimator.body.num_vertices}-vertex body")
        summary, per_sample = score(estimates, ground_truth, distances, float(settings["threshold"]))
    else:
        summary, per_sample = {"overall": {}, "per_class": {}}, [
            {"stamp_ns": stamp, "detection_id": i.detection.id, "object_label": i.detection.label,
             "body_parts": list(i.human_contact.body_parts) if i.human_contact else [],
             "affordance": i.object_affordance.affordance if i.object_affordance else None,
             "not_scored": "no ground truth (no sidecar " + sidecar.name + ")"}
            for stamp, estimate in estimates for i in estimate.interactions]
    paths.update(write_report(report_dir, summary, per_sample, estimator.weights_are_random, estimator.model_id))
    if any(t.body_vertices is not None and t.object_vertices is not None for t in ground_truth.values()):
        paths["reconstruction"] = _score_reconstruction(result, estimator, ground_truth, report_dir)
    drawn = 0
    for stamp, estimate in estimates:
        if stamp not in result.images:
            continue
        for interaction in estimate.interactions:
            if drawn >= figures:
                break
            image = result.images[stamp]
            body, obj = sample_pictures(estimator.renderer, estimator, interaction, image=image)
            title = f"{interaction.detection.label} ({interaction.detection.id})"
            if interaction.object_affordance is not None and interaction.object_affordance.affordance:
                title += f": {interaction.object_affordance.affordance}"
            boxes = [(interaction.detection.bbox_xyxy, "yellow", interaction.detection.label)]
            if interaction.person is not None:
                boxes.append((interaction.person.bbox_xyxy, "cyan", f"person {interaction.person.id}"))
            if interaction.image_region is not None:
                boxes.append((interaction.image_region, "white", "region the model saw"))
            is_2d = interaction.human_contact is not None and interaction.human_contact.image_probabilities is not None
            paths[f"sample_{drawn}"] = sample_figure(report_dir / f"sample_{drawn:02d}.png", image, body, obj, title,
                                                     estimator.weights_are_random, boxes,
                                                     "human contact (2D)" if is_2d else "human contact",
                                                     object_map_pictures(estimator.renderer, estimator, interaction))
            drawn += 1
    drawn = 0
    for stamp, message, _ in result.outputs:
        info = result.camera_infos.get(stamp)
        if drawn >= figures or not message.persons or stamp not in result.images or info is None:
            continue
        try:
            paths[f"people_{drawn}"] = people_figure_from_msgs(
                report_dir / f"people_{drawn:02d}.png", result.images[stamp], info, message,
                {estimator.body.name: estimator.body.faces}, camera_note)
            drawn += 1
        except ValueError as error:
            print(f"WARNING: no people figure of the image stamped {stamp / 1e9:.3f} s: {error}")
    counts = ", ".join(f"{k}: {v}" for k, v in sorted(result.counts.items()))
    print(f"inputs: {counts or 'none'}")
    print(f"model {estimator.model_id}, ground truth: {sidecar if ground_truth else 'none'}")
    if estimator.weights_are_random:
        print("WARNING: the model has RANDOM weights: every output and score below is meaningless")
    del keepalive
    if result.error:
        raise BagReadError(f"{in_bag} broke off after {result.error['messages_read']} messages "
                           f"({result.error['message']}); processed what was read, see {paths['summary']}", paths)
    return paths


def _score_reconstruction(result, estimator, ground_truth, report_dir: Path) -> Path:
    """Joint-reconstruction metrics of a replay against a sidecar with bodies and object poses
    (BEHAVE): ``reconstruction.json`` and a line beside the reference numbers."""
    import json

    from .eval.evaluate import BEHAVE_REFERENCE, score_reconstruction
    from .eval.report import to_json_compatible
    from .geometry.body import load_body_model
    from .ros.replay import reconstructions

    faces = {estimator.body.name: estimator.body.faces}
    if estimator.body.name != "anny":  # the people stage poses the rendered body
        faces["anny"] = load_body_model("anny").faces
    outputs = [r for stamp, message, _ in result.outputs
               for r in reconstructions(stamp, message, faces, estimator.objects)]
    summary, samples = score_reconstruction(outputs, ground_truth)
    path = report_dir / "reconstruction.json"
    path.write_text(json.dumps(to_json_compatible({
        "model_id": estimator.model_id, "weights_are_random": estimator.weights_are_random,
        "protocol": "chamfer_*_cm: the posed body and the placed object against the ground truth in the camera "
                    "frame, 6000 surface samples each; chamfer_*_aligned_cm: after one similarity alignment of "
                    "human and object together (BEHAVE's joint-reconstruction evaluation), where the body is SMPL-H "
                    "and the object the ground truth's template",
        "reference_behave": BEHAVE_REFERENCE, "summary": summary, "per_sample": samples}), indent=2))
    overall = summary.get("overall", {})

    def cm(key):
        value = overall.get(key)
        return "n/a" if value is None else f"{value:.2f}"

    print(f"reconstruction ({overall.get('count', 0)} samples): Chamfer human / object {cm('chamfer_human_cm')} / "
          f"{cm('chamfer_object_cm')} cm in the camera frame, {cm('chamfer_human_aligned_cm')} / "
          f"{cm('chamfer_object_aligned_cm')} cm aligned; BEHAVE reference (single image): InteractVLM "
          f"{BEHAVE_REFERENCE['InteractVLM']['chamfer_human_cm']} / {BEHAVE_REFERENCE['InteractVLM']['chamfer_object_cm']}"
          f" cm, F1 {BEHAVE_REFERENCE['InteractVLM']['f1']}")
    return path


def _run_and_list(command: str, *args, **kwargs) -> int:
    """run_replay, then the paths written; exit status 1 (one line on stderr) when the input
    bag broke off mid-way."""
    from .ros.replay import BagReadError

    try:
        paths, error = run_replay(*args, **kwargs), None
    except BagReadError as broken:
        paths, error = broken.paths, broken
    for name, path in paths.items():
        print(f"{name}: {path}")
    if error is not None:
        print(f"interactvlm-ros {command}: BagReadError: {error}", file=sys.stderr)
        return 1
    return 0


def _replay(args) -> int:
    return _run_and_list("replay", Path(args.in_bag), Path(args.out_bag), _settings(args),
                         Path(args.report_dir) if args.report_dir else Path(f"{args.out_bag}_report"),
                         args.image_topic, args.detections_topic, progress=not args.quiet, geodesic=args.geodesic,
                         force=args.force, depth_topic=args.depth_topic, camera_info_topic=args.camera_info_topic)


#: Horizontal field of view assumed for the demo's photos, degrees (their cameras are unknown).
DEMO_HORIZONTAL_FOV_DEG = 50.0


def demo_intrinsics(width: int, height: int, fov_deg: float = DEMO_HORIZONTAL_FOV_DEG) -> list[float]:
    """K (9 values, row-major, pixels) of a ``width`` x ``height`` photo whose camera is unknown:
    square pixels, ``fov_deg`` degrees horizontal field of view (``fx = fy = (width / 2) /
    tan(fov / 2)``) and the principal point at the image centre (``((width - 1) / 2, (height - 1)
    / 2)``: CameraInfo's pixel centres at integer coordinates).

    Raises:
        ValueError: a size < 1 or a field of view outside (0, 180) degrees.
    """
    import math

    if width < 1 or height < 1 or not 0.0 < fov_deg < 180.0:
        raise ValueError(f"demo_intrinsics: need a positive size and 0 < fov_deg < 180, got {width}x{height}, "
                         f"{fov_deg}")
    focal = (width / 2.0) / math.tan(math.radians(fov_deg) / 2.0)
    return [focal, 0.0, (width - 1) / 2.0, 0.0, focal, (height - 1) / 2.0, 0.0, 0.0, 1.0]


def _demo(args) -> int:
    """Two real photos from scikit-image with one detection each -> bag -> replay -> report."""
    try:
        from skimage import data
    except ImportError as error:
        raise ImportError("the demo's photos come with scikit-image: pip install -r "
                          "interactvlm_ros/requirements-test.txt (or scikit-image)") from error

    from .detection import Detection
    from .ros.bags import Frame, write_input_bag
    from .ros.replay import check_outputs, remove_bag

    out = Path(args.out_dir)
    if out.is_dir() and any(out.iterdir()) and not args.force:
        raise ValueError(f"{out} is not empty; remove it, choose another folder or pass --force")
    check_outputs(out / "input_bag", force=args.force)
    check_outputs(out / "interactions_bag", out / "report", force=args.force)
    camera = data.camera()  # a man operating a camera on a tripod, 512 x 512 grey
    astronaut = data.astronaut()  # an astronaut holding a helmet, 512 x 512
    # Hand-drawn boxes, as a detector would give them: the object and the person holding it.
    # The photos' cameras are unknown: each gets assumed intrinsics (demo_intrinsics), so that
    # the people are placed by PnP.
    frames = [
        Frame(1_700_000_000_000_000_000, camera[:, :, None].repeat(3, axis=2),
              [Detection("camera", (240.0, 65.0, 360.0, 175.0), 0.9, "camera-0"),
               Detection("person", (110.0, 40.0, 330.0, 512.0), 0.9, "person-0")],
              k=demo_intrinsics(camera.shape[1], camera.shape[0])),
        Frame(1_700_000_000_100_000_000, astronaut,
              [Detection("helmet", (345.0, 345.0, 495.0, 495.0), 0.9, "helmet-0"),
               Detection("person", (40.0, 10.0, 470.0, 512.0), 0.9, "person-0")],
              k=demo_intrinsics(astronaut.shape[1], astronaut.shape[0])),
    ]
    settings = _settings(args)
    if not (settings["contact_checkpoint_dir"] or settings["affordance_checkpoint_dir"]):
        settings["use_tiny_checkpoint"] = True
    if (out / "input_bag").exists():  # checked above: a bag, and --force
        remove_bag(out / "input_bag")
    in_bag = write_input_bag(out / "input_bag", frames)
    print(f"demo input bag: {in_bag}")
    return _run_and_list("demo", in_bag, out / "interactions_bag", settings, out / "report",
                         progress=not args.quiet, force=args.force,
                         camera_note=f"intrinsics assumed: {DEMO_HORIZONTAL_FOV_DEG:g} degrees horizontal field of "
                                     "view, principal point at the image centre (the photo's camera is unknown)")


def _convert(args) -> int:
    """A dataset -> input bag + ground-truth sidecar (ros.datasets), then what was written."""
    from .ros import datasets

    common = dict(limit=args.limit, compressed=args.compressed, storage=args.storage)
    if args.dataset == "damon":
        result = datasets.convert_damon(args.root, args.out_bag, split=args.split, contact=args.contact,
                                        trust_pickle=args.trust_pickle, **common)
    elif args.dataset == "piad":
        result = datasets.convert_piad(args.root, args.out_bag, split=args.split, **common)
    else:
        result = datasets.convert_behave(args.root, args.out_bag, body_model_dir=args.body_model_dir,
                                         split=None if args.split == "all" else args.split,
                                         sequences=args.sequences, kinects=args.kinects, **common)
    print(f"bag: {result.bag}\nsidecar: {result.sidecar}\nframes: {result.frames}, samples: {result.samples}, "
          f"skipped: {len(result.skipped)}")
    for line in result.skipped[:args.show_skipped]:
        print(f"  skipped {line}")
    if len(result.skipped) > args.show_skipped:
        print(f"  ... {len(result.skipped) - args.show_skipped} more (--show-skipped N)")
    return 0


def _convert_parser(commands) -> None:
    convert = commands.add_parser("convert", help="convert a dataset (DAMON, PIAD, BEHAVE) into an input bag "
                                                  "and its ground-truth sidecar OUT_BAG.groundtruth.npz")
    datasets = convert.add_subparsers(dest="dataset", required=True)

    def add(name: str, help_text: str, split: str, split_help: str = ""):
        parser = datasets.add_parser(name, help=help_text, description=help_text)
        parser.add_argument("root", help="the dataset's release folder")
        parser.add_argument("out_bag", help="bag folder to create (must not exist)")
        parser.add_argument("--split", default=split, help=f"default: {split}{split_help}")
        parser.add_argument("--limit", type=int, help="convert at most this many images")
        parser.add_argument("--compressed", action="store_true", help="JPEG images (CompressedImage) instead of rgb8")
        parser.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
        parser.add_argument("--show-skipped", type=int, default=10, metavar="N",
                            help="list the first N dataset entries left out and why (default 10)")
        parser.set_defaults(run=_convert)
        return parser

    damon = add("damon", "DAMON (DECO release or InteractVLM's copy): whole-image detections, per-object SMPL "
                         "contact", "test")
    damon.add_argument("--contact", choices=("auto", "objectwise", "binary"), default="auto")
    damon.add_argument("--trust-pickle", action="store_true",
                       help="load object arrays with numpy's allow_pickle (runs code the file names; only for "
                            "files you trust)")
    add("piad", "PIAD (IAG-Net layout, e.g. Data/Seen): one object detection per image, per-point affordance",
        "Test")
    behave = add("behave", "BEHAVE: one frame per Kinect view (colour, registered depth + CameraInfo, person and "
                           "object boxes from the masks); the sidecar holds SMPL-H contact (body vertices within 2 "
                           "cm of the object or inside it), the SMPL-H body and the object mesh + pose in the "
                           "view's camera frame", "test", " (from split.json); all: every sequence folder")
    behave.add_argument("--body-model-dir", required=True,
                        help="folder with the SMPL-H model files SMPLH_male / SMPLH_female (.pkl or .npz, MANO "
                             "v1.2, https://mano.is.tue.mpg.de): BEHAVE's fits are SMPL-H parameters")
    behave.add_argument("--sequences", nargs="+", metavar="NAME", help="only these sequences of the split")
    behave.add_argument("--kinects", nargs="+", type=int, default=[0, 1, 2, 3], metavar="K",
                        help="Kinect ids whose views to convert (default 0 1 2 3)")


def _dump_params(args) -> int:
    """The node's parameter file (every parameter at its default), to a file or stdout."""
    from .config import parameters_yaml

    if args.file:
        Path(args.file).write_text(parameters_yaml())
    else:
        print(parameters_yaml(), end="")
    return 0


def _params(args) -> int:
    """The node's parameters from its table, as ``ros2 param describe`` shows them."""
    from .config import BY_NAME, PARAMETERS

    unknown = [n for n in args.names if n not in BY_NAME]
    if unknown:
        raise ValueError(f"unknown parameters: {', '.join(unknown)}")
    for parameter in (BY_NAME[n] for n in args.names) if args.names else PARAMETERS:
        limits = (f"; range {parameter.range[0]}..{parameter.range[1]}" if parameter.range else "") + (
            f"; one of {', '.join(parameter.choices)}" if parameter.choices else "") + (
            "; not empty" if parameter.nonempty else "")
        print(f"{parameter.name} ({type(parameter.default).__name__}, default {parameter.default!r}"
              f"{', read-only' if parameter.read_only else ''}{limits})\n    {parameter.description}")
    return 0


def _lifecycle(args) -> int:
    from .ros.lifecycle_client import change_state

    print(change_state(args.node, args.transition, args.timeout))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="interactvlm-ros", description="interactvlm_ros tools")
    commands = parser.add_subparsers(dest="command", required=True)
    tiny = commands.add_parser("make-tiny-checkpoint",
                               help="write a tiny randomly initialised checkpoint in InteractVLM's format")
    tiny.add_argument("directory")
    from .localize.variants import VARIANTS

    tiny.add_argument("--model", default="hcontact", metavar="VARIANT",
                      choices=tuple(VARIANTS) + tuple(v.release for v in VARIANTS.values()),
                      help="the release whose layout and config to write, by short or release name: " + "; ".join(
                          f"{name} = {variant.release}" for name, variant in VARIANTS.items()))
    tiny.add_argument("--seed", type=int, default=0)
    tiny.add_argument("--format", choices=("bin", "safetensors"), default="bin")
    tiny.set_defaults(run=_make_tiny_checkpoint)

    check = commands.add_parser("check-assets", help="validate checkpoint, CLIP, body-model and official-asset "
                                                     "directories without running the model")
    check.add_argument("directories", nargs="+")
    check.set_defaults(run=_check_assets)

    export = commands.add_parser("export-onnx", help="export CLIP, SAM's image encoder and SAM's mask decoder of a "
                                                     "checkpoint to ONNX (for vision_backend onnxruntime)")
    export.add_argument("checkpoint_dir")
    export.add_argument("out_dir", nargs="?", help="default: CHECKPOINT_DIR/onnx (where the node looks by default)")
    export.add_argument("--clip-dir", help="local copy of openai/clip-vit-large-patch14 (as the node's clip_dir)")
    export.set_defaults(run=_export_onnx)

    replay = commands.add_parser("replay", help="run a ROS 2 bag (mcap or sqlite3) through the pipeline offline")
    replay.add_argument("in_bag")
    replay.add_argument("out_bag")
    replay.add_argument("--image-topic")
    replay.add_argument("--detections-topic")
    replay.add_argument("--depth-topic", help="registered depth image topic (16UC1 mm / 32FC1 m, aligned to the "
                                              "colour image): objects get their points from depth, as the node's "
                                              "use_depth; paired by stamp like the detections (sync_slop)")
    replay.add_argument("--camera-info-topic", help="CameraInfo of the colour camera (with --depth-topic; needed "
                                                    "only when the bag has several)")
    replay.add_argument("--report-dir", help="default: OUT_BAG_report")
    replay.add_argument("--quiet", action="store_true", help="no progress bar")
    replay.add_argument("--force", action="store_true", help="replace an existing OUT_BAG (a rosbag2 bag only) "
                                                             "and overwrite a non-empty report directory")
    replay.add_argument("--geodesic", help="geodesic error: 'mesh' (edge paths on the body) or a (V, V) .npy "
                                           "distance matrix in metres")
    _model_options(replay)
    replay.set_defaults(run=_replay)

    demo = commands.add_parser("demo", help="the pipeline on two real photos; outputs in OUT_DIR")
    demo.add_argument("out_dir", nargs="?", default="demo_out")
    demo.add_argument("--quiet", action="store_true")
    demo.add_argument("--force", action="store_true", help="replace the outputs of an earlier demo in OUT_DIR")
    _model_options(demo)
    demo.set_defaults(run=_demo)

    _convert_parser(commands)

    params = commands.add_parser("params", help="describe the node's parameters (ros2 param describe without ros2)")
    params.add_argument("names", nargs="*", help="parameter names (default: all)")
    params.set_defaults(run=_params)

    dump = commands.add_parser("dump-params", help="write the node's parameter file (every parameter at its default)")
    dump.add_argument("file", nargs="?", help="default: standard output")
    dump.set_defaults(run=_dump_params)

    lifecycle = commands.add_parser("lifecycle", help="trigger a lifecycle transition of a running node "
                                                      "(ros2 lifecycle set without ros2)")
    lifecycle.add_argument("node", help="e.g. /interactvlm_node")
    lifecycle.add_argument("transition", choices=("configure", "activate", "deactivate", "cleanup", "shutdown", "get"))
    lifecycle.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the node")
    lifecycle.set_defaults(run=_lifecycle)

    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (FileNotFoundError, FileExistsError, ValueError, MemoryError, ImportError) as error:
        # Configuration problems (missing files, bad parameters, a GPU too small): one line, no traceback.
        from .loading import ConfigurationError

        text = error if isinstance(error, ConfigurationError) else f"{type(error).__name__}: {error}"
        print(f"interactvlm-ros {args.command}: {text}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
