"""The vision stages of MV-Loc in ONNX Runtime: export (``interactvlm-ros export-onnx``) and
inference (node parameter ``vision_backend: onnxruntime``).

Three graphs are exported, float32, opset :data:`OPSET`, with a dynamic batch axis, by
torch's ONNX exporter (``torch.onnx.export(..., dynamo=True)``):

====================  ===========================================  =======================================
file                  input (float32)                              output (float32)
====================  ===========================================  =======================================
clip_vision.onnx      ``pixel_values`` (B, 3, 224, 224), CLIP's    ``image_features`` (B, N, mm_hidden):
                      preprocessing already applied                the hidden states of layer
                                                                   ``mm_vision_select_layer`` without CLS
                                                                   (LLaVA's feature; N = 256 for ViT-L/14)
sam_image_encoder     ``pixel_values`` (B, 3, S, S), SAM-          ``image_embeddings`` (B, 256, S/16, S/16)
.onnx                 normalised and padded (S = 1024 for ViT-H)
sam_mask_decoder      ``image_embeddings`` (B, 256, h, w),         ``low_res_masks`` (B, 1, 4h, 4w): SAM's
.onnx                 ``sparse_prompt_embeddings`` (B, 1, V, 256)  mask decoder, one mask, with the no-mask
                                                                   dense embedding and the image-wide
                                                                   positional embedding inside
====================  ===========================================  =======================================

Beside them ``manifest.json`` (model id, shapes, opset, versions, the largest difference to
torch measured right after export) and ``fingerprints.npz``: per graph, 16 values sampled
from every tensor of the torch modules it was exported from. :meth:`OnnxVision.load` checks
those samples against the model being served (cast to its dtype, exactly), so graphs exported
from another checkpoint are refused instead of silently giving other masks.

The pre- and post-processing (resizing, SAM's normalisation and padding, upsampling the masks)
stay in torch in :class:`~.predictor.MVLoc`, shared by both backends.

Execution providers, in order of preference, among those the installed onnxruntime has: on a
CUDA device TensorRT where its libraries are installed (fp16 when the model runs in half
precision or bfloat16; engines cached per export, by default under ``<onnx_dir>/tensorrt_cache``;
a new batch size outside an engine's shapes builds another, which takes seconds), then CUDA; on the CPU, the CPU provider. A CUDA device with an
onnxruntime that has neither (the CPU wheel) is refused: vision would silently run on the CPU.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .placement import device_of

#: ONNX opset of the exported graphs.
OPSET = 18
#: Graph name -> (file, input names, output name).
GRAPHS = {
    "clip_vision": ("clip_vision.onnx", ("pixel_values",), "image_features"),
    "sam_image_encoder": ("sam_image_encoder.onnx", ("pixel_values",), "image_embeddings"),
    "sam_mask_decoder": ("sam_mask_decoder.onnx", ("image_embeddings", "sparse_prompt_embeddings"),
                         "low_res_masks"),
}
MANIFEST = "manifest.json"
#: TensorRT's engine cache inside the export directory, when no other is given.
TENSORRT_CACHE = "tensorrt_cache"
FINGERPRINTS = "fingerprints.npz"
#: Values sampled per tensor for the fingerprints (evenly spaced over the flattened tensor).
SAMPLES_PER_TENSOR = 16
#: Largest batch the graphs are exported for (torch.export needs a bound).
MAX_BATCH = 256


class OnnxExportError(RuntimeError):
    """An exported graph whose output differs from torch's beyond the export tolerance."""


class _ClipFeatures(torch.nn.Module):
    """CLIP vision tower -> LLaVA's image feature (hidden states of one layer, CLS dropped)."""

    def __init__(self, tower, layer: int):
        super().__init__()
        self.tower, self.layer = tower, layer

    def forward(self, pixel_values):
        return self.tower(pixel_values, output_hidden_states=True).hidden_states[self.layer][:, 1:]


class _SamImageEncoder(torch.nn.Module):
    def __init__(self, sam):
        super().__init__()
        self.sam = sam

    def forward(self, pixel_values):
        return self.sam.get_image_embeddings(pixel_values)


class _SamMaskDecoder(torch.nn.Module):
    """SAM's mask decoder as :meth:`.predictor.MVLoc.low_res_masks` calls it (no-mask dense
    embedding, image-wide positional embedding, one mask)."""

    def __init__(self, sam):
        super().__init__()
        self.sam = sam

    def forward(self, image_embeddings, sparse_prompt_embeddings):
        count, channels, height, width = image_embeddings.shape
        dense = self.sam.prompt_encoder.no_mask_embed.weight.reshape(1, channels, 1, 1).expand(
            count, channels, height, width)
        positional = self.sam.get_image_wide_positional_embeddings().expand(count, -1, -1, -1)
        low_res = self.sam.mask_decoder(image_embeddings=image_embeddings, image_positional_embeddings=positional,
                                        sparse_prompt_embeddings=sparse_prompt_embeddings,
                                        dense_prompt_embeddings=dense, multimask_output=False)[0]
        return low_res[:, 0, :1]


@dataclass
class VisionModules:
    """The torch modules the graphs are exported from.

    Attributes:
        sam: ``transformers.SamModel``; vision_tower: ``CLIPVisionModel``;
        select_layer: LLaVA's ``mm_vision_select_layer``; num_views: V of the sparse prompt
        (``multiview_channels``); model_id: the checkpoint directory's name.
    """

    sam: torch.nn.Module
    vision_tower: torch.nn.Module
    select_layer: int
    num_views: int
    model_id: str

    @classmethod
    def of(cls, mvloc) -> "VisionModules":
        """The modules of a loaded :class:`~.predictor.MVLoc`."""
        return cls(mvloc.model.sam, mvloc.model.vision_tower, mvloc.spec.mm_vision_select_layer,
                   mvloc.spec.multiview_channels, mvloc.model_id)

    @property
    def sam_image_size(self) -> int:
        """S, SAM's input side (1024 for ViT-H)."""
        return int(self.sam.config.vision_config.image_size)

    def graph_modules(self) -> dict[str, torch.nn.Module]:
        """Graph name -> the module its fingerprint is taken from."""
        return {"clip_vision": self.vision_tower, "sam_image_encoder": self.sam.vision_encoder,
                "sam_mask_decoder": torch.nn.ModuleDict({"prompt_encoder": self.sam.prompt_encoder,
                                                         "mask_decoder": self.sam.mask_decoder,
                                                         "shared_image_embedding": self.sam.shared_image_embedding})}


def load_vision_modules(checkpoint_dir: str | os.PathLike, clip_dir: str | os.PathLike | None = None
                        ) -> VisionModules:
    """SAM and CLIP of a checkpoint in float32 on the CPU, without the language model (a 13B
    checkpoint needs ~4 GB for these instead of ~55 GB for all of it).

    Raises:
        FileNotFoundError, CheckpointError, ValueError: as :func:`.builder.load_mvloc`.
    """
    from transformers import CLIPVisionModel

    from .builder import _resolve_clip_dir, plan_checkpoint
    from .checkpoint import CheckpointError

    plan = plan_checkpoint(checkpoint_dir)
    if plan.problems:
        raise CheckpointError(f"{checkpoint_dir}: " + " | ".join(plan.problems))
    sam = plan.model.sam
    sam.load_state_dict({k[len("sam."):]: v.float() if v.is_floating_point() else v
                         for k, v in plan.mapped.items() if k.startswith("sam.")}, strict=True, assign=True)
    sam.to("cpu", torch.float32).eval()
    clip = CLIPVisionModel.from_pretrained(_resolve_clip_dir(clip_dir, plan.spec), local_files_only=True,
                                           dtype=torch.float32).eval()
    return VisionModules(sam, clip, plan.spec.mm_vision_select_layer, plan.spec.multiview_channels,
                         Path(checkpoint_dir).name)


def fingerprint(module: torch.nn.Module) -> np.ndarray:
    """(K,) float32: :data:`SAMPLES_PER_TENSOR` values of every floating-point parameter and
    buffer (``state_dict`` order), evenly spaced over each flattened tensor, as float32.

    Compared with :func:`fingerprints_match` after casting to the served dtype."""
    samples = []
    for tensor in module.state_dict().values():
        if not tensor.is_floating_point():
            continue
        flat = tensor.detach().reshape(-1)
        index = torch.linspace(0, flat.numel() - 1, min(SAMPLES_PER_TENSOR, flat.numel()), device=flat.device)
        samples.append(flat[index.round().long()].float().cpu())
    return torch.cat(samples).numpy() if samples else np.zeros(0, np.float32)


def fingerprints_match(exported: np.ndarray, served: np.ndarray, dtype: torch.dtype) -> bool:
    """Whether the fingerprint of the served module (in ``dtype``) is that of the exported one.

    The export takes float32 copies of the checkpoint's values (exact for float32, bfloat16 and
    float16 checkpoints); the served model holds the same values rounded once to ``dtype``. So
    the exported samples rounded to ``dtype`` equal the served ones exactly when the checkpoint
    is the same."""
    if exported.shape != served.shape:
        return False
    rounded = torch.from_numpy(exported).to(dtype).float().numpy()
    return bool(np.array_equal(rounded, served, equal_nan=True))


def export_onnx(modules: VisionModules, out_dir: str | os.PathLike, log=print, atol: float = 1e-3) -> Path:
    """Export the three graphs of :data:`GRAPHS` into ``out_dir`` with ``manifest.json`` and
    ``fingerprints.npz``, and check each one against torch on a random input (batch 2).

    Args:
        modules: float32 modules (:func:`load_vision_modules` or :meth:`VisionModules.of`).
        out_dir: created if missing; existing graphs are replaced.
        log: called with one line per graph.
        atol: largest |onnxruntime - torch| accepted, relative to max |torch| of the output.

    Returns:
        ``out_dir``.

    Raises:
        ValueError: modules that are not float32.
        OnnxExportError: a graph whose output differs from torch's by more than ``atol``.
    """
    import onnxruntime

    sam, tower = modules.sam, modules.vision_tower
    for name, module in (("sam", sam), ("vision_tower", tower)):
        dtypes = {p.dtype for p in module.parameters()}
        if dtypes != {torch.float32}:
            raise ValueError(f"export float32 modules ({name} is {', '.join(map(str, dtypes))}): "
                             "load the checkpoint with dtype float32 on the CPU (load_vision_modules)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # The manifest and fingerprints go first and come back last: an export that fails or is
    # interrupted half-way leaves a directory that load refuses (no manifest), never new graphs
    # beside an older export's fingerprints.
    for stale in (out_dir / MANIFEST, out_dir / FINGERPRINTS):
        stale.unlink(missing_ok=True)
    sam_size = modules.sam_image_size
    clip_size = int(tower.config.image_size)
    embedding_size = sam_size // int(sam.config.vision_config.patch_size)
    channels = int(sam.config.vision_config.output_channels)
    generator = torch.Generator().manual_seed(0)
    example = {
        "clip_vision": (torch.randn(2, 3, clip_size, clip_size, generator=generator),),
        "sam_image_encoder": (torch.randn(2, 3, sam_size, sam_size, generator=generator),),
        "sam_mask_decoder": (torch.randn(2, channels, embedding_size, embedding_size, generator=generator),
                             torch.randn(2, 1, modules.num_views, channels, generator=generator)),
    }
    device = device_of(sam)  # the graphs are traced where the modules are (CPU or a GPU)
    example = {name: tuple(x.to(device) for x in tensors) for name, tensors in example.items()}
    wrappers = {"clip_vision": _ClipFeatures(tower, modules.select_layer), "sam_image_encoder": _SamImageEncoder(sam),
                "sam_mask_decoder": _SamMaskDecoder(sam)}
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    manifest = {"model_id": modules.model_id, "opset": OPSET, "torch": torch.__version__,
                "onnxruntime": onnxruntime.__version__, "dtype": "float32", "num_views": modules.num_views,
                "sam_image_size": sam_size, "clip_image_size": clip_size, "mm_vision_select_layer": modules.select_layer,
                "graphs": {}}
    fingerprints = {}
    for name, (file, inputs, output) in GRAPHS.items():
        wrapper = wrappers[name].eval()
        with torch.inference_mode():
            expected = wrapper(*example[name])
        path = out_dir / file
        for stale in (path, path.with_name(path.name + ".data")):
            stale.unlink(missing_ok=True)
        # The exporter reports its steps on stdout and warns about torch internals (pytree
        # deprecations, axis names it merges); failures raise, so both are kept off the user's console.
        with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.filterwarnings("ignore", message=".*axis name.*", category=UserWarning)
            program = torch.onnx.export(wrapper, example[name], dynamo=True, input_names=list(inputs),
                                        output_names=[output], opset_version=OPSET,
                                        dynamic_shapes={key: {0: batch} for key in inputs}, verbose=False)
            program.save(str(path), external_data=_needs_external_data(wrapper))
        session = onnxruntime.InferenceSession(str(path), _session_options(), providers=["CPUExecutionProvider"])
        got = session.run(None, {key: value.cpu().numpy() for key, value in zip(inputs, example[name])})[0]
        scale = float(expected.abs().max()) or 1.0
        error = float(np.abs(got - expected.cpu().numpy()).max()) / scale
        if got.shape != tuple(expected.shape) or not error <= atol:
            raise OnnxExportError(f"{file}: onnxruntime differs from torch by {error:.2e} (relative to max |output| "
                                  f"{scale:.3g}; tolerance {atol:g}), shapes {got.shape} / {tuple(expected.shape)}")
        manifest["graphs"][name] = {"file": file, "inputs": list(inputs), "output": output,
                                    "output_shape": list(expected.shape[1:]), "max_relative_error": error}
        fingerprints[name] = fingerprint(modules.graph_modules()[name])
        log(f"{file}: exported, onnxruntime vs torch max |difference| {error:.1e} of max |output| {scale:.3g}")
    np.savez(out_dir / FINGERPRINTS, **fingerprints)
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return out_dir


def _needs_external_data(module: torch.nn.Module) -> bool:
    """Protobuf files are limited to 2 GiB: larger models keep their weights in a .data file."""
    return sum(p.numel() * p.element_size() for p in module.parameters()) > 1 << 30


def providers_for(device: torch.device, half: bool, cache_dir: Path) -> list:
    """onnxruntime execution providers for a graph on ``device`` (see the module docstring).

    TensorRT is chosen only where its libraries are installed (the ``tensorrt`` Python package:
    onnxruntime-gpu lists the provider whether or not they are); the CUDA provider's memory
    arena grows by what is requested (``kSameAsRequested``), not by powers of two.

    Raises:
        RuntimeError: a CUDA device without onnxruntime's CUDA or TensorRT provider.
    """
    import importlib.util

    import onnxruntime

    available = onnxruntime.get_available_providers()
    if importlib.util.find_spec("tensorrt") is None:
        available = [name for name in available if name != "TensorrtExecutionProvider"]
    if device.type == "cpu":
        return ["CPUExecutionProvider"]
    if device.type != "cuda":
        raise RuntimeError(f"vision_backend onnxruntime runs on cpu or cuda devices, not {device}")
    index = device.index if device.index is not None else torch.cuda.current_device()
    chosen = []
    if "TensorrtExecutionProvider" in available:
        chosen.append(("TensorrtExecutionProvider", {
            "device_id": index, "trt_fp16_enable": half, "trt_engine_cache_enable": True,
            "trt_engine_cache_path": str(cache_dir)}))
    if "CUDAExecutionProvider" in available:
        chosen.append(("CUDAExecutionProvider", {"device_id": index, "arena_extend_strategy": "kSameAsRequested"}))
    if not chosen:
        raise RuntimeError(f"the installed onnxruntime has no CUDA provider (available: {', '.join(available)}): "
                           f"install onnxruntime-gpu to run the vision graphs on {device}, or use vision_backend "
                           "torch")
    return chosen + ["CPUExecutionProvider"]


class OnnxVision:
    """The three graphs of an export directory as onnxruntime sessions, each on the device of
    the torch block it replaces. Inputs and outputs are torch tensors, passed to onnxruntime by
    pointer (I/O binding) on that device; inputs are cast to float32, outputs are float32.

    Attributes:
        directory, manifest; providers: graph name -> the providers of its session.
    """

    def __init__(self, directory: Path, manifest: dict, sessions: dict, devices: dict[str, torch.device]):
        self.directory, self.manifest, self.sessions, self.devices = directory, manifest, sessions, devices
        self.providers = {name: session.get_providers() for name, session in sessions.items()}
        #: Largest batch per onnxruntime call (:meth:`run` splits larger ones).
        self.max_batch = MAX_BATCH

    @classmethod
    def load(cls, directory: str | os.PathLike, modules: VisionModules, dtype: torch.dtype,
             tensorrt_cache: str | os.PathLike | None = None) -> "OnnxVision":
        """Open the graphs exported from the checkpoint of ``modules``.

        Args:
            directory: an ``export-onnx`` output directory.
            modules: the torch modules the graphs stand in for (:meth:`VisionModules.of` of a
                loaded :class:`~.predictor.MVLoc`), on the devices the graphs are to run on.
            dtype: the precision those modules are served in (their fingerprints are compared
                after rounding to it; half precision selects TensorRT's fp16 mode).
            tensorrt_cache: where TensorRT keeps its engines (default ``<directory>/tensorrt_cache``),
                in a subdirectory per export (named by a digest of its manifest and
                fingerprints, so engines of replaced graphs are never reused).

        Raises:
            FileNotFoundError: a missing directory, manifest or graph.
            ValueError: graphs exported from another checkpoint (fingerprints differ), for
                another number of views or sizes, or by another opset version of this code.
            RuntimeError: no onnxruntime provider for the model's device.
            ImportError: onnxruntime is not installed.
        """
        import onnxruntime

        directory = Path(directory)
        if not (directory / MANIFEST).is_file():
            raise FileNotFoundError(f"{directory / MANIFEST} not found: export the vision graphs first with "
                                    f"`interactvlm-ros export-onnx CHECKPOINT_DIR {directory}`")
        manifest = json.loads((directory / MANIFEST).read_text())
        wanted = {"num_views": modules.num_views, "sam_image_size": modules.sam_image_size,
                  "mm_vision_select_layer": modules.select_layer, "opset": OPSET}
        wrong = [f"{key} {manifest.get(key)!r} (model: {value!r})" for key, value in wanted.items()
                 if manifest.get(key) != value]
        if wrong:
            raise ValueError(f"{directory} was exported for another model: {'; '.join(wrong)}")
        with np.load(directory / FINGERPRINTS) as stored:
            exported = {name: stored[name] for name in GRAPHS if name in stored}
        mismatched = [name for name, module in modules.graph_modules().items()
                      if name not in exported or not fingerprints_match(exported[name], fingerprint(module), dtype)]
        if mismatched:
            raise ValueError(f"{directory} holds graphs of another checkpoint than {modules.model_id} (weights differ: "
                             f"{', '.join(mismatched)}; exported from {manifest.get('model_id')!r}): run "
                             "`interactvlm-ros export-onnx` on this checkpoint")
        devices = {"clip_vision": device_of(modules.vision_tower), "sam_image_encoder": device_of(modules.sam),
                   "sam_mask_decoder": device_of(modules.sam)}
        half = dtype in (torch.float16, torch.bfloat16)
        options = _session_options()
        digest = hashlib.sha256((directory / MANIFEST).read_bytes() + (directory / FINGERPRINTS).read_bytes())
        engines = Path(tensorrt_cache or directory / TENSORRT_CACHE) / digest.hexdigest()[:16]
        sessions = {}
        for name, entry in manifest["graphs"].items():
            path = directory / entry["file"]
            if not path.is_file():
                raise FileNotFoundError(f"{path} not found (the export in {directory} is incomplete)")
            providers = providers_for(devices[name], half, engines)
            sessions[name] = onnxruntime.InferenceSession(str(path), options, providers=providers)
        return cls(directory, manifest, sessions, devices)

    def run(self, name: str, *inputs: torch.Tensor) -> torch.Tensor:
        """Run graph ``name`` on torch tensors (batch first); returns its float32 output on the
        graph's device. Batches above ``max_batch`` (:data:`MAX_BATCH`, the export's bound) run
        in chunks of that size.

        Raises:
            ValueError: an empty batch, or inputs whose batch sizes differ.
        """
        count = inputs[0].shape[0]
        if count < 1 or any(x.shape[0] != count for x in inputs):
            raise ValueError(f"{name}: batch of {[x.shape[0] for x in inputs]} (1..n, the same for every input)")
        if count > self.max_batch:
            return torch.cat([self.run(name, *(x[start:start + self.max_batch] for x in inputs))
                              for start in range(0, count, self.max_batch)])
        entry = self.manifest["graphs"][name]
        device = self.devices[name]
        session = self.sessions[name]
        binding = session.io_binding()
        tensors = [x.to(device, torch.float32).contiguous() for x in inputs]  # kept alive until the run ends
        for input_name, tensor in zip(entry["inputs"], tensors):
            binding.bind_input(input_name, device.type, _index(device), np.float32, tuple(tensor.shape),
                               tensor.data_ptr())
        output = torch.empty((count, *entry["output_shape"]), dtype=torch.float32, device=device)
        binding.bind_output(entry["output"], device.type, _index(device), np.float32, tuple(output.shape),
                            output.data_ptr())
        if device.type == "cuda":
            torch.cuda.current_stream(device).synchronize()  # the inputs are ready before onnxruntime reads them
        session.run_with_iobinding(binding)
        return output


def _session_options():
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only (constant folding warns about every CastLike it cannot fold)
    # As many threads as torch and no spinning between runs: the sessions run between torch's
    # stages, and spinning threads would take the cores torch needs next.
    options.intra_op_num_threads = torch.get_num_threads()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def _index(device: torch.device) -> int:
    return device.index if device.index is not None else 0
