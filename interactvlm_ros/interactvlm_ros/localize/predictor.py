"""MV-Loc inference: one (image, question) -> answer -> [SEG] embedding -> per-view masks,
as InteractVLM's ``evaluate`` does it, with two shortcuts that do not change the result:

* generation is greedy with a KV cache and stops as soon as a mask token is produced (``[SEG]``,
  and for the joint models ``[HSEG]`` / ``[OSEG]``), or at EOS or ``max_new_tokens``; the hidden
  state used for the masks is the last-layer state of the position that *predicted* that token
  (LISA's one-token offset, ``img_emb_len`` = 255), which a cached step already has;
* the SAM image embeddings of the renders (constant for the body, per mesh for objects) are
  computed once by :meth:`MVLoc.image_embeddings` and reused for every detection and frame.

Where InteractVLM's ``evaluate`` differs from the first shortcut: it generates on (to EOS or
512 tokens) and uses the hidden state of EVERY mask token of the answer, all of them decoded
together through the splitter branch of the FIRST one (``tokens.append(output_ids[i,
valid_indices[0]])``); its training answers hold exactly one mask token, and so do the answers
it produces, so stopping at the first one gives its result. An answer with several would give
InteractVLM one mask per token, each with the first token's branch; this implementation
returns the first token's mask only.

Joint models (``token_type`` "Gen-Hu-Obj"): the answer's token picks the attention-splitter
branch (:meth:`MVLoc.sparse_prompt_embeddings`); ask one question per map (the human-contact
question answers [HSEG], the object questions [OSEG]) with the views of that map.

2D human contact (``interactvlm-2d-hcontact``, ``multiview_channels`` 1): SAM runs on the camera
image itself (:meth:`MVLoc.image_contact`), as run_demo.py's 'h2dcontact' path does.

Names follow LLaVA / LISA and SAM: :meth:`MVLoc.generate` (the answer),
``seg_embedding`` (the hidden state that predicted ``[SEG]``), :meth:`MVLoc.sparse_prompt_embeddings`
(its projection, conditioned per view on the camera), :meth:`MVLoc.image_embeddings` (SAM's
image encoder on the renders) and :meth:`MVLoc.decode_masks` (SAM's mask decoder).
Loading is in :mod:`.builder`. CLIP, SAM's image encoder and SAM's mask decoder run in torch or,
after :meth:`MVLoc.use_onnx`, in onnxruntime (:mod:`.onnx_vision`), behind the same methods.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..geometry.camera import ViewSpec
from .checkpoint import RANDOM_WEIGHTS_KEY, CheckpointError
from .model import MVLocModel, normalized_camera
from .placement import describe, device_of, model_blocks
from .prompts import HSEG_TOKEN, IMAGE_TOKEN_INDEX, ISEG_TOKEN, OSEG_TOKEN, SEG_TOKEN, conversation
from .quantization import DECODE_CACHES

#: SAM's pixel normalisation (segment_anything ``Sam.pixel_mean`` / ``pixel_std``), 0-255 RGB.
SAM_PIXEL_MEAN = (123.675, 116.28, 103.53)
SAM_PIXEL_STD = (58.395, 57.12, 57.375)

#: Generation limit per answer: InteractVLM's (``run_demo.py``, ``max_new_tokens=512``).
MAX_NEW_TOKENS = 512

#: Longest question accepted, characters (InteractVLM's longest template + a 64-character label
#: is under 300).
MAX_QUESTION_LENGTH = 1024

#: The camera-conditioning input of the 2D model when its config says ``multiview_cam_cond``:
#: InteractVLM trained it with ``torch.zeros(1, 5)`` "dummy cam_params"
#: (datasets/hcontact_2d.py ``__getitem__``; datasets/dataset.py ``collate_fn`` keeps (1, 5)
#: for one channel), the input its ``evaluate`` conditions on when given the loader's
#: cameras. (run_demo.py passes ``torch.rand(1, 5)`` instead; with ``vi_v1`` its
#: ``process_embeddings`` indexes that as a 5-vector and fails, so the demo defines nothing.)
IMAGE_CONTACT_CAMERA = (0.0, 0.0, 0.0, 0.0, 0.0)

#: ``logits_processor`` for :meth:`MVLoc.generate`: transformers' ``LogitsProcessor`` protocol,
#: ``processor(input_ids (1, L) int64, scores (1, vocab) float32) -> scores``.
LogitsProcessor = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Answer:
    """One generated answer.

    Attributes:
        text: the generated text (special tokens kept, e.g. ending in "[SEG]"), decoded as
            transformers 4.31 decodes it (see :mod:`.tokenizer`).
        token_ids: the generated token ids.
        seg_embedding: (H,) last-layer hidden state of the position that predicted the mask
            token (LISA's ``pred_embeddings`` before ``text_hidden_fcs``), or None without one.
        stop_reason: why generation ended: "seg" (a mask token), "eos" (end of sequence
            without one) or "max_new_tokens" (the limit reached without one).
        seg_token: the mask token that ended the answer: "[SEG]", or for joint models
            "[HSEG]" / "[OSEG]" ("[ISEG]" for "Gen-Int"); None without one. It decides the
            attention-splitter branch (:meth:`MVLoc.sparse_prompt_embeddings`).
    """

    text: str
    token_ids: list[int]
    seg_embedding: torch.Tensor | None
    stop_reason: str = "seg"
    seg_token: str | None = None


@dataclass
class Prefill:
    """The prompts of a :meth:`MVLoc.generate_batch` call run through the language model: what
    its decode loops start from, and nothing more: no logits or per-layer hidden states of the
    prompts' other positions, no per-image prefix cache beside the batch's (for LLaMA-13B in
    bfloat16 those would be 0.48 MB and 0.82 MB per prompt token: ~400 MB per image of a
    300-token prompt, alive while the answers are decoded).

    Attributes:
        scores: (B, vocab) float32 next-token logits of each request's last prompt position.
        hidden: (B, H) last-layer hidden states of those positions (after the final norm).
        cache: a ``DynamicCache`` of B rows x T slots (every row padded to the same T); the
            decode loop takes it (:meth:`take_cache`), so that it is freed as soon as the loop
            lets go of it.
        mask: (B, T) int64 attention mask (1 a real token, 0 padding), None when all are real.
        lengths: per row, the real tokens after the shared prefix (0 without suffix).
        prefix_length: tokens of the shared prefix (row r's next position is
            ``prefix_length + lengths[r]``).
    """

    scores: torch.Tensor
    hidden: torch.Tensor
    cache: object
    mask: torch.Tensor | None
    lengths: list[int]
    prefix_length: int

    def take_cache(self):
        """The cache, no longer referenced here.

        Raises:
            RuntimeError: already taken."""
        if self.cache is None:
            raise RuntimeError("the prefill's cache was already taken")
        cache, self.cache = self.cache, None
        return cache


def last_positions(lm, last: list[int], **inputs) -> tuple[object, torch.Tensor, torch.Tensor]:
    """One forward of the ``LlamaForCausalLM`` ``lm`` (``use_cache``; ``inputs``: its keyword
    arguments, e.g. ``input_ids`` (B, T) or ``inputs_embeds`` (B, T, H)), keeping only position
    ``last[r]`` of row r (negative: from the end).

    ``lm.model``, then ``lm.lm_head`` on every position, as ``lm``'s forward runs them (the same
    matrix product, hence the same bits), its (B, T, vocab) result dropped at once; no
    per-layer hidden states are collected.

    Returns:
        (cache, scores (B, vocab) float32 on the head's device, hidden (B, H) last-layer states
        after the final norm on the norm's device).
    """
    out = lm.model(use_cache=True, **inputs)
    states = out.last_hidden_state

    def pick(tensor: torch.Tensor) -> torch.Tensor:
        rows = torch.arange(len(last), device=tensor.device)
        return tensor[rows, torch.tensor(last, device=tensor.device)]

    return out.past_key_values, pick(lm.lm_head(states)).float(), pick(states)


class MVLoc:
    """A loaded MV-Loc model with its tokenizer and CLIP preprocessing.

    Attributes:
        model: the :class:`MVLocModel` (eval mode) in ``dtype``, its blocks on the devices of
            ``device_map``.
        device_map: block name -> device (see :mod:`.placement`), read from the loaded model.
        spec: its architecture fields; config: the raw config.json.
        model_id: the checkpoint directory's name.
        weights_are_random: True for checkpoints written by ``make-tiny-checkpoint``.
    """

    def __init__(self, model: MVLocModel, tokenizer, image_processor, config: dict, model_id: str):
        self.model = model
        self.spec = model.spec
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.config = config
        self.model_id = model_id
        self.weights_are_random = bool(config.get(RANDOM_WEIGHTS_KEY, False))
        #: KV cache of :meth:`generate_batch`'s decode loop: "dynamic" (a growing ``DynamicCache``,
        #: finished answers leave the batch) or "static" (:mod:`.decoding`: a preallocated cache,
        #: static shapes per step, the same answers).
        self.decode_cache = "dynamic"
        #: With decode_cache "static": run each decode step through ``torch.compile(mode=
        #: "reduce-overhead")`` (CUDA graphs on CUDA; one compile per row / cache-length bucket).
        self.compile_decode = False
        #: The :class:`~.decoding.StaticDecoder` of the static path (its cache pool and compiled
        #: step), made on first use; assign one to choose its cache-length bucket or pool size.
        self.static_decoder = None
        self.dtype = next(model.sam.parameters()).dtype  # SAM is never quantised
        self.device_map = {block: str(device_of(model.get_submodule(block))) for block in model_blocks(model)}
        for token, key, idx in mask_tokens(self.spec):
            found = tokenizer.convert_tokens_to_ids(token)
            if found != idx:
                raise CheckpointError(f"tokenizer id of {token} is {found} but config.json says {key} = {idx}")
        self.sam_image_size = int(model.sam.config.vision_config.image_size)
        #: None (torch) or an :class:`~.onnx_vision.OnnxVision` running CLIP, SAM's image encoder
        #: and its mask decoder (:meth:`use_onnx`).
        self.onnx_vision = None

    def use_onnx(self, directory, tensorrt_cache=None) -> None:
        """Run CLIP, SAM's image encoder and SAM's mask decoder in onnxruntime from an
        ``export-onnx`` directory of this checkpoint (:class:`~.onnx_vision.OnnxVision`;
        ``tensorrt_cache``: where TensorRT's engines go); everything else stays in torch.

        Once the graphs are loaded (and their fingerprints checked), the torch modules they
        replace are released (``model.vision_tower``, ``model.sam.vision_encoder`` and
        ``model.sam.mask_decoder`` become None: ~1.8 GiB in bfloat16 at the released sizes), so
        the switch is one way. On failure nothing changes.

        Raises:
            FileNotFoundError, ValueError, RuntimeError, ImportError: see
                :meth:`.onnx_vision.OnnxVision.load` (e.g. graphs of another checkpoint).
            RuntimeError: the model already runs in onnxruntime.
        """
        from .onnx_vision import OnnxVision, VisionModules

        if self.onnx_vision is not None:
            raise RuntimeError(f"{self.model_id} already runs its vision stages in onnxruntime "
                               f"({self.onnx_vision.directory})")
        vision = OnnxVision.load(directory, VisionModules.of(self), self.dtype, tensorrt_cache)
        self.onnx_vision = vision
        self.model.vision_tower = None
        self.model.sam.vision_encoder = None
        self.model.sam.mask_decoder = None
        if any(device.type == "cuda" for device in vision.devices.values()):
            torch.cuda.empty_cache()

    @property
    def vision_backend(self) -> str:
        """"torch" or "onnxruntime" (see :meth:`use_onnx`)."""
        return "torch" if self.onnx_vision is None else "onnxruntime"

    @property
    def vision_description(self) -> str:
        """"torch", or "onnxruntime (<the first provider of each graph's session>)", e.g.
        "onnxruntime (CUDAExecutionProvider)"."""
        if self.onnx_vision is None:
            return "torch"
        first = sorted({providers[0] for providers in self.onnx_vision.providers.values()})
        return f"onnxruntime ({', '.join(first)})"

    def _sam_encoder(self, pixels: torch.Tensor) -> torch.Tensor:
        """SAM's image encoder: (B, 3, S, S) normalised, padded -> (B, C, h, w) in ``dtype``."""
        if self.onnx_vision is None:
            return self.model.sam.get_image_embeddings(pixels)
        return self.onnx_vision.run("sam_image_encoder", pixels).to(self.dtype)

    @property
    def seg_tokens(self) -> dict[int, str]:
        """Mask-token id -> token: [SEG]; joint models also [HSEG], [OSEG] ("Gen-Int": [ISEG])."""
        tokens: dict[int, str] = {}
        for token, _, idx in mask_tokens(self.spec):
            tokens.setdefault(idx, token)
        return tokens

    @property
    def placement(self) -> str:
        """Where the blocks are, e.g. "cuda:0" or "cuda:0: vision_tower..language_model.model.layers.19;
        cuda:1: language_model.model.layers.20..sam"."""
        return describe(self.device_map)

    # ----------------------------------------------------------------------------- image side
    @torch.inference_mode()
    def encode_image(self, rgb: np.ndarray) -> torch.Tensor:
        """CLIP features of an RGB photo, projected into the language model.

        Args:
            rgb: (H, W, 3) uint8 RGB.

        Returns:
            (1, N, H) tensor: N = CLIP patch tokens (256 for ViT-L/14 at 224), H = LLM width.
        """
        # channels_last always: the processor's guess reads a (3, 3, 3) crop as channels-first.
        pixels = self.image_processor(images=rgb, return_tensors="pt",
                                      input_data_format="channels_last")["pixel_values"]
        if self.onnx_vision is None:
            pixels = pixels.to(device_of(self.model.vision_tower), self.dtype)
            out = self.model.vision_tower(pixels, output_hidden_states=True)
            features = out.hidden_states[self.spec.mm_vision_select_layer][:, 1:]
        else:  # (the image processor's float32 pixels, as the graph takes them)
            features = self.onnx_vision.run("clip_vision", pixels).to(self.dtype)
        return self.model.mm_projector(features.to(device_of(self.model.mm_projector)))

    @torch.inference_mode()
    def image_embeddings(self, images: np.ndarray) -> torch.Tensor:
        """SAM image embeddings of rendered views.

        Args:
            images: (V, S, S, 3) uint8 RGB renders; resized to SAM's input size (longest side)
                when S differs, normalised with SAM's pixel mean/std, zero-padded.

        Returns:
            (V, C, h, w) embeddings (C = 256, h = w = 64 for ViT-H at 1024).
        """
        pixels = torch.as_tensor(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float()
        size = self.sam_image_size
        if pixels.shape[-1] != size or pixels.shape[-2] != size:
            scale = size / max(pixels.shape[-2:])
            new = (round(pixels.shape[-2] * scale), round(pixels.shape[-1] * scale))
            pixels = F.interpolate(pixels, size=new, mode="bilinear", align_corners=False, antialias=True)
        pixels = self._normalize_and_pad(pixels)
        return torch.cat([self._sam_encoder(pixels[i:i + 1]) for i in range(len(pixels))])

    def _normalize_and_pad(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, h, w) float 0-255 RGB -> (B, 3, S, S) in SAM's dtype on SAM's device:
        ``(x - pixel_mean) / pixel_std``, then zeros below and to the right up to S = SAM's
        input size (segment_anything ``Sam.preprocess``; run_demo.py ``preprocess``)."""
        size = self.sam_image_size
        mean = torch.tensor(SAM_PIXEL_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(SAM_PIXEL_STD).view(1, 3, 1, 1)
        pixels = (pixels - mean) / std
        pixels = F.pad(pixels, (0, size - pixels.shape[-1], 0, size - pixels.shape[-2]))
        return pixels.to(device_of(self.model.sam), self.dtype)

    def sam_input_size(self, height: int, width: int) -> tuple[int, int]:
        """(h, w) of an image of ``height`` x ``width`` resized to SAM's input size S along its
        longest side: segment_anything's ``ResizeLongestSide.get_preprocess_shape``,
        ``scale = S / max(H, W)``, each side ``int(side * scale + 0.5)``."""
        scale = self.sam_image_size * 1.0 / max(height, width)
        return int(height * scale + 0.5), int(width * scale + 0.5)

    @torch.inference_mode()
    def image_embedding(self, rgb: np.ndarray) -> tuple[torch.Tensor, tuple[int, int]]:
        """SAM image embedding of a camera image, for the 2D model (:meth:`image_contact`),
        prepared as run_demo.py's 'h2dcontact' path does: segment_anything's
        ``ResizeLongestSide(S).apply_image`` (PIL bilinear resize of the uint8 image to
        :meth:`sam_input_size`, through torchvision's ``resize`` on a PIL image; the result
        is uint8), :meth:`_normalize_and_pad`, SAM's image encoder.

        Args:
            rgb: (H, W, 3) uint8 RGB.

        Returns:
            ((1, C, h, w) embedding, (h, w) size of the resized image inside the padded input).

        Raises:
            ValueError: not an (H, W, 3) uint8 array.
        """
        from PIL import Image

        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or min(rgb.shape[:2]) < 1:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {rgb.shape} {rgb.dtype}")
        height, width = self.sam_input_size(*rgb.shape[:2])
        resized = np.array(Image.fromarray(np.ascontiguousarray(rgb)).resize((width, height), Image.BILINEAR))
        pixels = torch.from_numpy(resized).permute(2, 0, 1)[None].float()
        return self._sam_encoder(self._normalize_and_pad(pixels)), (height, width)

    # ------------------------------------------------------------------------------ text side
    def prompt_ids(self, question: str) -> list[int]:
        """Token ids of the llava_v1 prompt with IMAGE_TOKEN_INDEX where the image goes, as
        InteractVLM builds them (transformers 4.31's slow LlamaTokenizer and LLaVA's
        ``tokenizer_image_token``; see :mod:`.tokenizer`).

        Raises:
            ValueError: an empty question or one longer than :data:`MAX_QUESTION_LENGTH`
                characters (bounded before tokenisation: labels are validated earlier, this
                is the last guard against a prompt that would stall the model).
        """
        if len(question) > MAX_QUESTION_LENGTH:
            raise ValueError(f"question of {len(question)} characters (limit {MAX_QUESTION_LENGTH})")
        return self.tokenizer.image_prompt_ids(conversation(question, self.spec.mm_use_im_start_end))

    @torch.inference_mode()
    def generate(self, image_features: torch.Tensor, question: str, max_new_tokens: int = MAX_NEW_TOKENS,
                 logits_processor: LogitsProcessor | None = None) -> Answer:
        """Greedy answer to ``question`` about the image, stopping at the first mask token
        ([SEG]; joint models also [HSEG] / [OSEG]), EOS or ``max_new_tokens`` (default 512,
        InteractVLM's; generation normally stops at the mask token long before, so the limit
        costs nothing then).

        Args:
            image_features: (1, N, H) from :meth:`encode_image`; question: the user turn.
            max_new_tokens: most tokens generated (>= 1).
            logits_processor: optional, transformers' ``LogitsProcessor`` protocol: called at
                every step with ``input_ids`` (1, L) int64, the prompt ids as LLaVA's
                ``generate`` sees them (:data:`~.prompts.IMAGE_TOKEN_INDEX` in place of the
                image) followed by the tokens generated so far, and ``scores`` (1, vocab)
                float32, the next-token logits; the argmax of what it returns is the next
                token. The same object given to transformers' ``generate`` (a
                ``LogitsProcessorList`` entry) sees the same arguments there. Used to constrain
                or script answers (e.g. tests force [OSEG] from the random tiny model); it
                does not change the hidden state of the step, so the mask embedding of a
                forced token is the model's own.

        Raises:
            ValueError: max_new_tokens < 1.
        """
        return self.generate_batch([(image_features, question)], max_new_tokens, logits_processor)[0]

    @torch.inference_mode()
    def generate_batch(self, requests: Sequence[tuple[torch.Tensor, str]], max_new_tokens: int = MAX_NEW_TOKENS,
                       logits_processor: LogitsProcessor | None = None) -> list[Answer]:
        """Greedy answers to several (image features, question) pairs at once, each exactly as
        :meth:`generate` would give it alone (same tokens; hidden states within float
        rounding: the batch pads, and masked positions add exact zeros to the attention).

        How: every prompt starts with the same text (system prompt, ``USER: <im_start>``),
        its image's 256 tokens and the same text again (``<im_end>\n``) up to where the
        questions differ. That shared prefix is prefilled once per distinct image features
        (requests with the same tensor object share it), its KV cache gathered into one batch;
        the rest of each prompt is prefilled as one padded batch (padding masked, positions
        per sequence), then all answers are decoded together, a sequence leaving the batch at
        its mask token, EOS or ``max_new_tokens``. Of the prompts only the batch's KV cache and
        each one's last position (its logits and last-layer state, :class:`Prefill`) are kept.

        The decode loop follows :attr:`decode_cache`: "dynamic" (the default) grows a
        ``DynamicCache`` by one slot per step and drops finished sequences from it; "static"
        (:class:`~.decoding.StaticDecoder`) copies the prefill into a preallocated cache (rows
        padded to a power of two, length a multiple of 128 slots, grown by 128 when an answer
        reaches its end) and runs every step with the same shapes, finished sequences staying in
        their rows with their outputs ignored, so that the step can be compiled
        (:attr:`compile_decode`: ``torch.compile(mode="reduce-overhead")``, CUDA graphs on
        CUDA). Both give the same answers in float32 (tokens, stop reasons, mask tokens; mask
        embeddings within float rounding; in half precision the rounding can flip a near-tie);
        the logits processor is called with the same arguments.

        Args:
            requests: (image_features (1, N, H) from :meth:`encode_image`, question) pairs;
                image features of one image shared by several requests should be the same
                tensor object.
            max_new_tokens: most tokens generated per answer (>= 1).
            logits_processor: see :meth:`generate`; called per sequence with its own ids.

        Returns:
            One :class:`Answer` per request, in order.

        Raises:
            ValueError: max_new_tokens < 1, image features of different lengths, a
                :attr:`decode_cache` other than "dynamic" / "static", or :attr:`compile_decode`
                with the dynamic cache.
        """
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
        if self.decode_cache not in DECODE_CACHES:
            raise ValueError(f"decode_cache must be one of {', '.join(DECODE_CACHES)}, got {self.decode_cache!r}")
        if self.compile_decode and self.decode_cache != "static":
            raise ValueError('compile_decode needs decode_cache = "static" (the dynamic cache changes shape per step)')
        if not requests:
            return []
        lm = self.model.language_model
        prompts = [self.prompt_ids(question) for _, question in requests]
        prefill = self._prefill(requests, prompts)
        if self.decode_cache == "static":
            from .decoding import StaticDecoder

            if self.static_decoder is None:
                self.static_decoder = StaticDecoder()
            return self.static_decoder.decode(lm, prefill, prompts, max_new_tokens, logits_processor,
                                              self._stop_rules(), compiled=self.compile_decode)
        device = device_of(lm.get_input_embeddings())
        count = len(requests)
        cache, mask, lengths = prefill.take_cache(), prefill.mask, prefill.lengths
        scores, hidden = prefill.scores, prefill.hidden
        answers: list[Answer | None] = [None] * count
        generated: list[list[int]] = [[] for _ in range(count)]
        active = list(range(count))  # request index of each batch row
        finished = self._stop_rules()
        for step in range(max_new_tokens):
            keep, next_ids = [], []
            for row, request in enumerate(active):
                next_id = next_token(scores[row:row + 1], prompts[request], generated[request], logits_processor)
                generated[request].append(next_id)
                answers[request] = finished(generated[request], hidden, row, step + 1 == max_new_tokens)
                if answers[request] is None:
                    keep.append(row)
                    next_ids.append(next_id)
            if not keep:
                break
            if len(keep) < len(active):  # finished sequences leave the batch
                cache.batch_select_indices(torch.tensor(keep, device=device))
                mask = mask[keep] if mask is not None else None
                lengths = [lengths[row] for row in keep]
            active = [active[row] for row in keep]
            kwargs = {}
            if mask is not None:
                mask = torch.cat([mask, torch.ones(len(active), 1, dtype=mask.dtype, device=device)], dim=1)
                kwargs = dict(attention_mask=mask, position_ids=torch.tensor(
                    [[prefill.prefix_length + n + step] for n in lengths], device=device))
            cache, scores, hidden = last_positions(lm, [-1] * len(active), input_ids=torch.tensor(
                next_ids, device=device)[:, None], past_key_values=cache, **kwargs)
        return answers

    def _prefill(self, requests: Sequence[tuple[torch.Tensor, str]], prompts: list[list[int]]) -> Prefill:
        """The prompts of :meth:`generate_batch` through the language model, keeping only what
        the decode loops read (:class:`Prefill`): the shared prefix once per distinct image
        features (its cache alone: no logits, no hidden states, except for a single request,
        whose last position they are), then the padded suffixes as one batch from the prefix
        caches gathered into one ``DynamicCache`` (the per-image caches dropped once gathered).

        Raises:
            ValueError: image features of different lengths.
        """
        lm = self.model.language_model
        embed = lm.get_input_embeddings()
        device = device_of(embed)
        if len({features.shape[1] for features, _ in requests}) > 1:
            raise ValueError("image features of different lengths cannot share a batch")
        # The shared prefix: the longest common prefix of the prompts, leaving each at least
        # one token of its own unless there is a single request (then the whole prompt).
        shared = len(prompts[0])
        for ids in prompts[1:]:
            differs = next((i for i, (a, b) in enumerate(zip(prompts[0], ids)) if a != b), len(ids))
            shared = min(shared, differs)
        if len(requests) > 1:
            shared = min(shared, min(len(ids) for ids in prompts) - 1)
        position = prompts[0].index(IMAGE_TOKEN_INDEX)
        if position >= shared:
            raise ValueError("the prompts differ before the image")  # not the case for conversation()
        prefix_text = embed(torch.tensor([[i for i in prompts[0][:shared] if i != IMAGE_TOKEN_INDEX]], device=device))
        prefix_length = prefix_text.shape[1] + requests[0][0].shape[1]  # text without <image>, + image tokens
        suffixes = [ids[shared:] for ids in prompts]
        count = len(requests)

        def prefix_inputs(features: torch.Tensor) -> torch.Tensor:
            spliced = features.to(prefix_text.device, prefix_text.dtype)
            return torch.cat([prefix_text[:, :position], spliced, prefix_text[:, position:]], dim=1)

        if count == 1 and not suffixes[0]:  # the whole prompt is the prefix
            cache, scores, hidden = last_positions(lm, [-1], inputs_embeds=prefix_inputs(requests[0][0]))
            return Prefill(scores, hidden, cache, None, [0], prefix_length)
        from transformers import DynamicCache

        caches = {}
        for features, _ in requests:  # one prefill per distinct image features: its cache only
            if id(features) not in caches:
                caches[id(features)] = lm.model(inputs_embeds=prefix_inputs(features), use_cache=True).past_key_values
        keys = [id(features) for features, _ in requests]
        cache = DynamicCache(ddp_cache_data=[
            (torch.cat([caches[k].layers[layer].keys for k in keys]),
             torch.cat([caches[k].layers[layer].values for k in keys]))
            for layer in range(len(caches[keys[0]].layers))])
        del caches  # gathered into ``cache``: not kept through the suffix prefill
        lengths = [len(suffix) for suffix in suffixes]
        width = max(lengths)
        pad = 0  # any id: padded positions are masked out (LLaMA's <unk>, its pad_token_id 0)
        suffix_ids = torch.tensor([suffix + [pad] * (width - len(suffix)) for suffix in suffixes], device=device)
        mask = torch.cat([torch.ones(count, prefix_length, dtype=torch.long, device=device),
                          torch.tensor([[1] * n + [0] * (width - n) for n in lengths], device=device)], dim=1)
        positions = prefix_length + torch.arange(width, device=device).expand(count, width)
        cache, scores, hidden = last_positions(lm, [n - 1 for n in lengths], input_ids=suffix_ids,
                                               attention_mask=mask, position_ids=positions, past_key_values=cache)
        return Prefill(scores, hidden, cache, mask, lengths, prefix_length)

    def _answer(self, generated: list[int], seg_embedding, stop_reason: str, seg_token: str | None = None) -> Answer:
        text = self.tokenizer.decode(generated, skip_special_tokens=False)
        return Answer(text, list(generated), seg_embedding, stop_reason, seg_token)

    def _stop_rules(self) -> Callable[[list[int], torch.Tensor, int, bool], Answer | None]:
        """The stop rules of both decode loops, with this model's mask tokens and EOS read once
        per call of :meth:`generate_batch`: ``finished(generated, hidden, row, last_step)`` is the
        answer when ``generated``'s last token ends it (a mask token, with ``hidden[row]``, the
        last-layer state that predicted it, as its mask embedding; EOS; or ``last_step``, the
        ``max_new_tokens``-th token), else None."""
        seg_tokens, eos = self.seg_tokens, self.tokenizer.eos_token_id

        def finished(generated: list[int], hidden: torch.Tensor, row: int, last_step: bool) -> Answer | None:
            next_id = generated[-1]
            if next_id in seg_tokens:
                return self._answer(generated, hidden[row], "seg", seg_tokens[next_id])
            if next_id == eos:
                return self._answer(generated, None, "eos")
            if last_step:
                return self._answer(generated, None, "max_new_tokens")
            return None

        return finished

    # ------------------------------------------------------------------------------ mask side
    @torch.inference_mode()
    def sparse_prompt_embeddings(self, seg_embedding: torch.Tensor, cameras: list[list[float]],
                                 seg_token: str | None = None) -> torch.Tensor:
        """(V, 256) per-view sparse prompt embeddings for SAM's mask decoder, as InteractVLM's
        ``process_embeddings`` makes them:

        1. ``e = text_hidden_fcs(seg_embedding)``, repeated for the V views;
        2. camera-conditioned models (``vi_v1``): ``e_v = e * cam_pose_encoder(c)_v``;
        3. joint models (attention splitter): the (V, 256) result is ONE sequence of V tokens
           through :class:`~.model.AttentionSplitter`; ``[HSEG]`` returns its human output,
           ``[OSEG]`` its object output (``[ISEG]``, "Gen-Int": the human output, InteractVLM
           tests [HSEG]'s id first), ``[SEG]`` (or None) the conditioned embedding unchanged.

        Args:
            seg_embedding: (H,) from :meth:`generate`; cameras: V normalised cameras
                (:meth:`cameras`); seg_token: the answer's mask token (``Answer.seg_token``).

        Raises:
            ValueError: a seg_token this model does not have.
        """
        head = self.model.text_hidden_fcs[0]
        embedding = head(seg_embedding[None].to(device_of(head)))  # (1, 256)
        num_views = len(cameras)
        embedding = embedding.expand(num_views, -1)
        encoder = self.model.cam_pose_encoder
        if encoder is not None:
            cams = torch.tensor(cameras, device=device_of(encoder), dtype=embedding.dtype)
            embedding = embedding * encoder(cams).to(embedding.device)
        if seg_token is not None and seg_token not in self.seg_tokens.values():
            raise ValueError(f"{seg_token} is not a mask token of this model ({', '.join(self.seg_tokens.values())})")
        splitter = self.model.attention_splitter
        if splitter is None or seg_token in (None, SEG_TOKEN):
            return embedding
        token_id = next(i for i, t in self.seg_tokens.items() if t == seg_token)
        human, obj = splitter(embedding[None].to(device_of(splitter)))
        if token_id == self.spec.hseg_token_idx:
            return human[0].to(embedding.device)
        return obj[0].to(embedding.device)

    @torch.inference_mode()
    def low_res_masks(self, sparse_prompt_embeddings: torch.Tensor, image_embeddings: torch.Tensor) -> torch.Tensor:
        """SAM's mask decoder, one low-resolution mask per view (``multimask_output=False``).

        Each view is decoded with all V embeddings as its sparse prompt (what InteractVLM's
        batch-1 token set broadcast over the V image embeddings amounts to) and the no-mask
        dense embedding. Several answers are decoded in one decoder call when given as a batch.

        Args:
            sparse_prompt_embeddings: (V, 256) from :meth:`sparse_prompt_embeddings`, or
                (B, V, 256) for B answers;
            image_embeddings: (V, C, h, w) from :meth:`image_embeddings` (or
                :meth:`image_embedding`, V = 1), shared by the B answers, or (B, V, C, h, w).

        Returns:
            (V, 1, 4h, 4w) float32 logits on SAM's device, or (B, V, 1, 4h, 4w).
        """
        sam = self.model.sam
        device = device_of(sam)
        batched = sparse_prompt_embeddings.dim() == 3
        sparse = sparse_prompt_embeddings if batched else sparse_prompt_embeddings[None]
        count, num_views, channels = sparse.shape
        if image_embeddings.dim() == 4:
            image_embeddings = image_embeddings[None].expand(count, *image_embeddings.shape)
        if image_embeddings.shape[:2] != (count, num_views):
            raise ValueError(f"{count} x {num_views} prompts for {tuple(image_embeddings.shape[:2])} image embeddings")
        _, _, _, height, width = image_embeddings.shape
        tokens = sparse[:, None, None].expand(count, num_views, 1, num_views, channels)
        total = count * num_views
        if self.onnx_vision is not None:
            low_res = self.onnx_vision.run("sam_mask_decoder", image_embeddings.reshape(total, channels, height, width),
                                           tokens.reshape(total, 1, num_views, channels))
            masks = low_res.to(device).reshape(count, num_views, 1, *low_res.shape[-2:])
            return masks if batched else masks[0]
        dense = sam.prompt_encoder.no_mask_embed.weight.reshape(1, channels, 1, 1).expand(total, channels, height,
                                                                                        width)
        positional = sam.get_image_wide_positional_embeddings().expand(total, -1, -1, -1)
        low_res, _ = sam.mask_decoder(
            image_embeddings=image_embeddings.reshape(total, channels, height, width).to(device, self.dtype),
            image_positional_embeddings=positional.to(device, self.dtype),
            sparse_prompt_embeddings=tokens.reshape(total, 1, num_views, channels).to(device, self.dtype),
            dense_prompt_embeddings=dense.to(device, self.dtype),
            multimask_output=False,
        )[:2]
        masks = low_res[:, 0, :1].float().reshape(count, num_views, 1, *low_res.shape[-2:])
        return masks if batched else masks[0]

    @torch.inference_mode()
    def decode_masks(self, sparse_prompt_embeddings: torch.Tensor, image_embeddings: torch.Tensor, output_size: int,
                     as_tensor: bool = False):
        """Mask logits per view: :meth:`low_res_masks` upsampled bilinearly to SAM's input size
        and then to ``output_size`` (InteractVLM's ``postprocess_masks`` for renders that fill
        SAM's input).

        Args:
            sparse_prompt_embeddings: (V, 256) from :meth:`sparse_prompt_embeddings`, or
                (B, V, 256) for B answers decoded at once;
            image_embeddings: (V, C, h, w) from :meth:`image_embeddings`, or (B, V, C, h, w).

        Returns:
            (V, output_size, output_size) float32 logits, or (B, V, ...): numpy, or a torch
            tensor on SAM's device when ``as_tensor`` (lifting can then stay on that device).
        """
        low_res = self.low_res_masks(sparse_prompt_embeddings, image_embeddings)
        masks = low_res.reshape(-1, 1, *low_res.shape[-2:])
        masks = F.interpolate(masks, size=(self.sam_image_size, self.sam_image_size), mode="bilinear",
                              align_corners=False)
        if output_size != self.sam_image_size:
            masks = F.interpolate(masks, size=(output_size, output_size), mode="bilinear", align_corners=False)
        masks = masks.reshape(*low_res.shape[:-3], output_size, output_size)
        return masks if as_tensor else masks.cpu().numpy()

    def answers_masks(self, answers: Sequence[Answer], image_embeddings: Sequence[torch.Tensor],
                      cameras: list[list[float]], output_size: int, timings: dict[str, float] | None = None):
        """:meth:`answer_masks` for several answers in one decoder call (their views share the
        cameras; each has its own (V, C, h, w) image embeddings, e.g. of its own mesh).

        Returns:
            One (V, S, S) float32 tensor on SAM's device per answer, None for an answer without
            a mask token.
        """
        timings = {} if timings is None else timings
        with_mask = [i for i, answer in enumerate(answers) if answer.seg_embedding is not None]
        result: list[torch.Tensor | None] = [None] * len(answers)
        if not with_mask:
            return result

        def decode():
            sparse = torch.stack([self.sparse_prompt_embeddings(answers[i].seg_embedding, cameras,
                                                                answers[i].seg_token) for i in with_mask])
            embeddings = image_embeddings[with_mask[0]]
            if any(image_embeddings[i] is not embeddings for i in with_mask):
                embeddings = torch.stack([image_embeddings[i].to(embeddings.device) for i in with_mask])
            return self.decode_masks(sparse, embeddings, output_size, as_tensor=True)

        masks = _timed(timings, "decode", decode)
        for row, i in enumerate(with_mask):
            result[i] = masks[row]
        return result

    @torch.inference_mode()
    def postprocess_masks(self, low_res: torch.Tensor, input_size: tuple[int, int],
                          original_size: tuple[int, int]) -> torch.Tensor:
        """segment_anything's ``Sam.postprocess_masks``: upsample (bilinear, align_corners
        False) to the padded S x S input, crop the resized image (``input_size`` (h, w), top
        left), resize (bilinear) to ``original_size`` (H, W).

        Args:
            low_res: (B, 1, h', w') from :meth:`low_res_masks`.

        Returns:
            (B, H, W) float32 logits on SAM's device.
        """
        masks = F.interpolate(low_res.float(), (self.sam_image_size, self.sam_image_size), mode="bilinear",
                              align_corners=False)
        masks = masks[..., :input_size[0], :input_size[1]]
        return F.interpolate(masks, tuple(original_size), mode="bilinear", align_corners=False)[:, 0]

    def predict(self, image_features: torch.Tensor, question: str,
                image_embeddings: torch.Tensor | Callable[[], torch.Tensor], cameras: list[list[float]],
                output_size: int, max_new_tokens: int = MAX_NEW_TOKENS, timings: dict[str, float] | None = None,
                logits_processor: LogitsProcessor | None = None):
        """The whole MV-Loc sequence for one question: :meth:`generate`, then, when the answer
        holds a mask token, :meth:`sparse_prompt_embeddings` (with that token's splitter branch
        for joint models) and :meth:`decode_masks`.

        Args:
            image_features: (1, N, H) from :meth:`encode_image`; question: the user turn.
            image_embeddings: (V, C, h, w) SAM embeddings of the V views, or a function giving
                them (called only when the answer has a mask token).
            cameras: V normalised cameras of those views (:meth:`cameras`).
            output_size: S of the returned logits.
            timings: if given, milliseconds are added to its "generate", "sam_encode" and
                "decode" entries.
            logits_processor: passed to :meth:`generate`.

        Returns:
            (answer, logits): logits (V, S, S) float32 on SAM's device, or None when the answer
            has no mask token (see ``answer.stop_reason``).
        """
        timings = {} if timings is None else timings
        answer = _timed(timings, "generate",
                        lambda: self.generate(image_features, question, max_new_tokens, logits_processor))
        return answer, self.answer_masks(answer, image_embeddings, cameras, output_size, timings)

    def answer_masks(self, answer: Answer, image_embeddings: torch.Tensor | Callable[[], torch.Tensor],
                     cameras: list[list[float]], output_size: int, timings: dict[str, float] | None = None):
        """The mask side of :meth:`predict` for an answer already generated (e.g. by
        :meth:`generate_batch`): (V, S, S) float32 logits on SAM's device, or None when the
        answer has no mask token. Arguments as for :meth:`predict`."""
        if answer.seg_embedding is None:
            return None
        timings = {} if timings is None else timings
        if callable(image_embeddings):
            image_embeddings = _timed(timings, "sam_encode", image_embeddings)
        return _timed(timings, "decode", lambda: self.decode_masks(
            self.sparse_prompt_embeddings(answer.seg_embedding, cameras, answer.seg_token), image_embeddings,
            output_size, as_tensor=True))

    def image_contact(self, image_features: torch.Tensor, rgb: np.ndarray, question: str,
                      max_new_tokens: int = MAX_NEW_TOKENS, timings: dict[str, float] | None = None,
                      logits_processor: LogitsProcessor | None = None, image_embedding=None):
        """The 2D human-contact model on one camera image, as run_demo.py's 'h2dcontact' path
        runs InteractVLM's ``evaluate``: :meth:`generate`; when the answer has a mask token,
        :meth:`image_embedding` of ``rgb`` (SAM on the image itself, one "view"),
        :meth:`sparse_prompt_embeddings` with one camera (:data:`IMAGE_CONTACT_CAMERA`, read
        only when the config says ``multiview_cam_cond``), :meth:`low_res_masks` and
        :meth:`postprocess_masks` back to the image's pixels.

        The logits are raw: InteractVLM's demo thresholds them at 0.5 (not a sigmoid).

        Args:
            image_features: (1, N, H) from :meth:`encode_image` of the same image (or crop).
            rgb: (H, W, 3) uint8 RGB, the image SAM segments and whose pixels the mask is in.
            question: e.g. :data:`~.prompts.HUMAN_CONTACT_2D_PROMPT` formatted.
            timings: if given, milliseconds are added to "generate", "sam_encode", "decode".
            logits_processor: passed to :meth:`generate`.
            image_embedding: optional ``(embedding, input_size)`` from :meth:`image_embedding`
                of ``rgb`` (computed here when None).

        Returns:
            (answer, logits): logits (H, W) float32 on SAM's device in ``rgb``'s pixels, or
            None when the answer has no mask token.

        Raises:
            ValueError: the model is a multi-view model (``multiview_channels`` != 1): its
                embedding is made for V views and InteractVLM has no single-image path for it.
        """
        self._check_2d()
        timings = {} if timings is None else timings
        answer = _timed(timings, "generate",
                        lambda: self.generate(image_features, question, max_new_tokens, logits_processor))
        return answer, self.image_answer_masks(answer, rgb, timings, image_embedding)

    def _check_2d(self) -> None:
        if self.spec.multiview_channels != 1:
            raise ValueError(f"image_contact needs a 2D model (multiview_channels 1); {self.model_id} has "
                             f"multiview_channels {self.spec.multiview_channels}: use predict with its views")

    def image_answer_masks(self, answer: Answer, rgb: np.ndarray, timings: dict[str, float] | None = None,
                           image_embedding=None):
        """The mask side of :meth:`image_contact` for an answer already generated: (H, W)
        float32 logits on SAM's device in ``rgb``'s pixels, or None without a mask token.

        Raises:
            ValueError: not a 2D model (see :meth:`image_contact`)."""
        self._check_2d()
        if answer.seg_embedding is None:
            return None
        timings = {} if timings is None else timings
        if image_embedding is None:
            image_embedding = _timed(timings, "sam_encode", lambda: self.image_embedding(rgb))
        embedding, input_size = image_embedding

        def decode():
            sparse = self.sparse_prompt_embeddings(answer.seg_embedding, [list(IMAGE_CONTACT_CAMERA)],
                                                   answer.seg_token)
            return self.postprocess_masks(self.low_res_masks(sparse, embedding), input_size, rgb.shape[:2])[0]

        return _timed(timings, "decode", decode)

    def cameras(self, views: list[ViewSpec], dist: float | None = None) -> list[list[float]]:
        """Normalised camera-conditioning inputs of the views (see ``normalized_camera``)."""
        return [normalized_camera(v, dist) for v in views]


def next_token(scores: torch.Tensor, prompt: list[int], generated: list[int],
               logits_processor: LogitsProcessor | None) -> int:
    """Greedy next token of one sequence (both decode loops): the argmax of ``scores`` (1, vocab)
    float32, after ``logits_processor`` when given, called with the ids as LLaVA's ``generate``
    sees them, ``prompt + generated`` as (1, L) int64 (see :meth:`MVLoc.generate`)."""
    if logits_processor is not None:
        scores = logits_processor(torch.tensor([prompt + generated], device=scores.device), scores)
    return int(scores[0].argmax())


def mask_tokens(spec) -> list[tuple[str, str, int]]:
    """(token, config key, id) of each mask token of a model (:class:`~.model.MVLocSpec`): [SEG];
    "Gen-Hu-Obj": also [HSEG], [OSEG]; "Gen-Int": also [ISEG] (under both keys). InteractVLM's
    ``evaluate`` takes every one of them as a mask token (``seg_mask | hseg_mask | oseg_mask``)."""
    tokens = [(SEG_TOKEN, "seg_token_idx", spec.seg_token_idx)]
    if spec.base_token_type == "Gen-Hu-Obj":
        tokens += [(HSEG_TOKEN, "hseg_token_idx", spec.hseg_token_idx), (OSEG_TOKEN, "oseg_token_idx",
                                                                          spec.oseg_token_idx)]
    elif spec.base_token_type == "Gen-Int":
        tokens += [(ISEG_TOKEN, "hseg_token_idx", spec.hseg_token_idx), (ISEG_TOKEN, "oseg_token_idx",
                                                                          spec.oseg_token_idx)]
    return tokens


def _timed(timings: dict[str, float], stage: str, function):
    """``function()``, its milliseconds added to ``timings[stage]``."""
    start = time.perf_counter()
    result = function()
    timings[stage] = timings.get(stage, 0.0) + (time.perf_counter() - start) * 1e3
    return result
