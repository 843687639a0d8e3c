"""MV-Loc inference: one (image, question) -> answer -> [SEG] embedding -> per-view masks,
as InteractVLM's ``evaluate`` does it, with two shortcuts that do not change the result:

* generation is greedy with a KV cache and stops as soon as ``[SEG]`` is produced (or at EOS
  or ``max_new_tokens``); the hidden state used for the masks is the last-layer state of the
  position that *predicted* ``[SEG]`` (LISA's one-token offset, ``img_emb_len`` = 255), which
  a cached step already has;
* the SAM image embeddings of the renders (constant for the body, per mesh for objects) are
  computed once by :meth:`MVLoc.image_embeddings` and reused for every detection and frame.

Names follow LLaVA / LISA and SAM: :meth:`MVLoc.generate` (the answer),
``seg_embedding`` (the hidden state that predicted ``[SEG]``), :meth:`MVLoc.sparse_prompt_embeddings`
(its projection, conditioned per view on the camera), :meth:`MVLoc.image_embeddings` (SAM's
image encoder on the renders) and :meth:`MVLoc.decode_masks` (SAM's mask decoder).
Loading is in :mod:`.builder`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..geometry.camera import ViewSpec
from .checkpoint import RANDOM_WEIGHTS_KEY, CheckpointError
from .model import MVLocModel, normalized_camera
from .placement import describe, model_blocks
from .prompts import IMAGE_TOKEN_INDEX, SEG_TOKEN, conversation

#: SAM's pixel normalisation (segment_anything ``Sam.pixel_mean`` / ``pixel_std``), 0-255 RGB.
SAM_PIXEL_MEAN = (123.675, 116.28, 103.53)
SAM_PIXEL_STD = (58.395, 57.12, 57.375)

#: Generation limit per answer: InteractVLM's (``run_demo.py``, ``max_new_tokens=512``).
MAX_NEW_TOKENS = 512

#: Longest question accepted, characters (InteractVLM's longest template + a 64-character label
#: is under 300).
MAX_QUESTION_LENGTH = 1024


@dataclass
class Answer:
    """One generated answer.

    Attributes:
        text: the generated text (special tokens kept, e.g. ending in "[SEG]"), decoded as
            transformers 4.31 decodes it (see :mod:`.tokenizer`).
        token_ids: the generated token ids.
        seg_embedding: (H,) last-layer hidden state of the position that predicted [SEG]
            (LISA's ``pred_embeddings`` before ``text_hidden_fcs``), or None without [SEG].
        stop_reason: why generation ended: "seg" (the [SEG] token), "eos" (end of sequence
            without [SEG]) or "max_new_tokens" (the limit reached without [SEG]).
    """

    text: str
    token_ids: list[int]
    seg_embedding: torch.Tensor | None
    stop_reason: str = "seg"


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
        self.dtype = next(model.sam.parameters()).dtype  # SAM is never quantised
        self.device_map = {block: str(_device_of(model.get_submodule(block))) for block in model_blocks(model)}
        if tokenizer.convert_tokens_to_ids(SEG_TOKEN) != self.spec.seg_token_idx:
            raise CheckpointError(
                f"tokenizer id of {SEG_TOKEN} is {tokenizer.convert_tokens_to_ids(SEG_TOKEN)} but config.json "
                f"says seg_token_idx = {self.spec.seg_token_idx}")
        self.sam_image_size = int(model.sam.config.vision_config.image_size)

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
        pixels = self.image_processor(images=rgb, return_tensors="pt")["pixel_values"]
        pixels = pixels.to(_device_of(self.model.vision_tower), self.dtype)
        out = self.model.vision_tower(pixels, output_hidden_states=True)
        features = out.hidden_states[self.spec.mm_vision_select_layer][:, 1:]
        return self.model.mm_projector(features.to(_device_of(self.model.mm_projector)))

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
            pixels = F.pad(pixels, (0, size - new[1], 0, size - new[0]))
        mean = torch.tensor(SAM_PIXEL_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(SAM_PIXEL_STD).view(1, 3, 1, 1)
        pixels = ((pixels - mean) / std).to(_device_of(self.model.sam), self.dtype)
        return torch.cat([self.model.sam.get_image_embeddings(pixels[i:i + 1]) for i in range(len(pixels))])

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
    def generate(self, image_features: torch.Tensor, question: str, max_new_tokens: int = MAX_NEW_TOKENS) -> Answer:
        """Greedy answer to ``question`` about the image, stopping at [SEG], EOS or
        ``max_new_tokens`` (default 512, InteractVLM's; generation normally stops at [SEG]
        long before, so the limit costs nothing then).

        Args:
            image_features: (1, N, H) from :meth:`encode_image`; question: the user turn.
            max_new_tokens: most tokens generated (>= 1).

        Raises:
            ValueError: max_new_tokens < 1.
        """
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
        ids = self.prompt_ids(question)
        position = ids.index(IMAGE_TOKEN_INDEX)
        embed = self.model.language_model.get_input_embeddings()
        embed_device = _device_of(embed)
        text_ids = torch.tensor([i for i in ids if i != IMAGE_TOKEN_INDEX], device=embed_device)[None]
        text = embed(text_ids)
        image_features = image_features.to(text.device, text.dtype)
        inputs = torch.cat([text[:, :position], image_features, text[:, position:]], dim=1)
        lm = self.model.language_model
        out = lm(inputs_embeds=inputs, use_cache=True, output_hidden_states=True)
        generated: list[int] = []
        seg_embedding = None
        stop_reason = "max_new_tokens"
        eos = self.tokenizer.eos_token_id
        for step in range(max_new_tokens):
            next_id = int(out.logits[0, -1].argmax())
            generated.append(next_id)
            if next_id == self.spec.seg_token_idx:
                seg_embedding = out.hidden_states[-1][0, -1]
                stop_reason = "seg"
                break
            if next_id == eos:
                stop_reason = "eos"
                break
            if step + 1 < max_new_tokens:
                out = lm(input_ids=torch.tensor([[next_id]], device=embed_device),
                         past_key_values=out.past_key_values, use_cache=True, output_hidden_states=True)
        return Answer(self.tokenizer.decode(generated, skip_special_tokens=False), generated, seg_embedding, stop_reason)

    # ------------------------------------------------------------------------------ mask side
    @torch.inference_mode()
    def sparse_prompt_embeddings(self, seg_embedding: torch.Tensor, cameras: list[list[float]]) -> torch.Tensor:
        """(V, 256) per-view sparse prompt embeddings for SAM's mask decoder:
        ``text_hidden_fcs(seg_embedding)``, multiplied by the camera encoding of each view when
        the model is camera-conditioned (InteractVLM's ``vi_v1``).

        Args:
            seg_embedding: (H,) from :meth:`generate`; cameras: V normalised cameras
                (:meth:`cameras`)."""
        head = self.model.text_hidden_fcs[0]
        embedding = head(seg_embedding[None].to(_device_of(head)))  # (1, 256)
        num_views = len(cameras)
        embedding = embedding.expand(num_views, -1)
        encoder = self.model.cam_pose_encoder
        if encoder is not None:
            cams = torch.tensor(cameras, device=_device_of(encoder), dtype=embedding.dtype)
            embedding = embedding * encoder(cams).to(embedding.device)
        return embedding

    @torch.inference_mode()
    def decode_masks(self, sparse_prompt_embeddings: torch.Tensor, image_embeddings: torch.Tensor, output_size: int,
                     as_tensor: bool = False):
        """Mask logits per view.

        Each view is decoded with all V view-conditioned embeddings as its sparse prompt (what
        InteractVLM's batch-1 token set broadcast over the V image embeddings amounts to) and
        the no-mask dense embedding; the single low-resolution mask (``multimask_output=False``)
        is upsampled bilinearly to SAM's input size and then to ``output_size``.

        Args:
            sparse_prompt_embeddings: (V, 256) from :meth:`sparse_prompt_embeddings`;
            image_embeddings: (V, C, h, w) from :meth:`image_embeddings`.

        Returns:
            (V, output_size, output_size) float32 logits: numpy, or a torch tensor on SAM's
            device when ``as_tensor`` (lifting can then stay on that device).
        """
        sam = self.model.sam
        device = _device_of(sam)
        num_views = sparse_prompt_embeddings.shape[0]
        if image_embeddings.shape[0] != num_views:
            raise ValueError(f"{num_views} prompts for {image_embeddings.shape[0]} views")
        _, channels, height, width = image_embeddings.shape
        sparse = sparse_prompt_embeddings[None, None].expand(num_views, 1, num_views, channels)
        dense = sam.prompt_encoder.no_mask_embed.weight.reshape(1, channels, 1, 1).expand(num_views, channels,
                                                                                        height, width)
        positional = sam.get_image_wide_positional_embeddings().expand(num_views, -1, -1, -1)
        low_res, _ = sam.mask_decoder(
            image_embeddings=image_embeddings.to(device, self.dtype),
            image_positional_embeddings=positional.to(device, self.dtype),
            sparse_prompt_embeddings=sparse.to(device, self.dtype),
            dense_prompt_embeddings=dense.to(device, self.dtype),
            multimask_output=False,
        )[:2]
        masks = low_res[:, 0, :1].float()  # (V, 1, h', w')
        masks = F.interpolate(masks, size=(self.sam_image_size, self.sam_image_size), mode="bilinear",
                              align_corners=False)
        if output_size != self.sam_image_size:
            masks = F.interpolate(masks, size=(output_size, output_size), mode="bilinear", align_corners=False)
        return masks[:, 0] if as_tensor else masks[:, 0].cpu().numpy()

    def predict(self, image_features: torch.Tensor, question: str,
                image_embeddings: torch.Tensor | Callable[[], torch.Tensor], cameras: list[list[float]],
                output_size: int, max_new_tokens: int = MAX_NEW_TOKENS, timings: dict[str, float] | None = None):
        """The whole MV-Loc sequence for one question: :meth:`generate`, then, when the answer
        holds [SEG], :meth:`sparse_prompt_embeddings` and :meth:`decode_masks`.

        Args:
            image_features: (1, N, H) from :meth:`encode_image`; question: the user turn.
            image_embeddings: (V, C, h, w) SAM embeddings of the V views, or a function giving
                them (called only when the answer has [SEG]).
            cameras: V normalised cameras of those views (:meth:`cameras`).
            output_size: S of the returned logits.
            timings: if given, milliseconds are added to its "generate", "sam_encode" and
                "decode" entries.

        Returns:
            (answer, logits): logits (V, S, S) float32 on SAM's device, or None when the answer
            has no [SEG] (see ``answer.stop_reason``).
        """
        timings = {} if timings is None else timings

        def timed(stage, function):
            start = time.perf_counter()
            result = function()
            timings[stage] = timings.get(stage, 0.0) + (time.perf_counter() - start) * 1e3
            return result

        answer = timed("generate", lambda: self.generate(image_features, question, max_new_tokens))
        if answer.seg_embedding is None:
            return answer, None
        if callable(image_embeddings):
            image_embeddings = timed("sam_encode", image_embeddings)
        logits = timed("decode", lambda: self.decode_masks(
            self.sparse_prompt_embeddings(answer.seg_embedding, cameras), image_embeddings, output_size,
            as_tensor=True))
        return answer, logits

    def cameras(self, views: list[ViewSpec], dist: float | None = None) -> list[list[float]]:
        """Normalised camera-conditioning inputs of the views (see ``normalized_camera``)."""
        return [normalized_camera(v, dist) for v in views]


def _device_of(module: torch.nn.Module) -> torch.device:
    """Device of a module's first parameter (or buffer)."""
    for tensor in module.parameters():
        return tensor.device
    for tensor in module.buffers():
        return tensor.device
    return torch.device("cpu")
