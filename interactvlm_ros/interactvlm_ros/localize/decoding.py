"""Static-shape greedy decoding for :meth:`.predictor.MVLoc.generate_batch`
(``MVLoc.decode_cache = "static"``), built to be wrapped in ``torch.compile(mode="reduce-overhead")``
(CUDA graphs on CUDA) with ``MVLoc.compile_decode = True``.

The prefill is the dynamic path's (shared prefix per image, padded suffixes, a ``DynamicCache``);
its keys and values are then copied into a preallocated :class:`StaticKVCache` and every decode
step runs with shapes that do not change from step to step:

* rows: the batch is padded to a power of two (:func:`row_bucket`: 1, 2, 4, 8, ...); a finished
  answer keeps its row (it is fed token 0 and its outputs are ignored), padding rows attend to
  cache slot 0 only (a finite, ignored output);
* cache length: a multiple of the bucket (:data:`CACHE_BUCKET`, 128 tokens): it starts at the
  smallest multiple holding the prompt and one more token and grows by one bucket when a step
  would write past its end (keys, values and mask copied into the larger cache);
* per step the inputs are ``input_ids`` (R, 1) int64 and ``position_ids`` (R, 1) int64; the
  cache owns, at fixed addresses (``torch._dynamo.mark_static_address``), its keys and values
  (R, heads, L, head_dim) per layer, the attention mask (R, 1, 1, L) bool (True: attend; passed
  to the model as a ready 4D mask, so transformers' mask creation is skipped) and the write
  index (1,) int64 (the slot the step's key and value go to, the same for all rows: the prefill
  pads every row to the same length). The host updates mask and write index in place before
  each step (two tiny kernels, no synchronisation).

So one compiled step per (rows bucket, cache-length bucket): a 400-token prompt with answers of
a few tens of tokens uses one length bucket (512), batch sizes 1-16 five row buckets. Caches are
kept for reuse (:class:`StaticDecoder` pools them, ``pool_size`` per decoder) so their addresses
stay the same across calls; on CUDA every cache address a graph was recorded with is reused
(otherwise the graph is re-recorded, not recompiled: the addresses are not guarded).

What stays on the host per step: the logits processor (called per unfinished row exactly as the
dynamic path calls it, then one argmax and device-to-host copy per row, as there), the stop rules
(mask token, EOS, ``max_new_tokens``) and the next input ids (one host-to-device copy of R int64).
Without a processor the argmax is one batched call and one device-to-host copy per step.

Equivalence: in float32 the answers are those of the dynamic path (same tokens, stop reasons,
mask tokens; tested); the scores and hidden states agree within float rounding (the attention
runs over the whole bucket with masked slots, which add exact zeros, in a different summation
order). In bfloat16 / float16 that rounding is larger and can flip a near-tie of the argmax: a
review measured 1 answer of 42 differing (tiny random model, 24 tokens each).

The boolean 4D mask is read as such by SDPA attention only (eager attention adds masks to the
scores): the static path refuses models loaded with another attention implementation.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable, Sequence

import torch
from transformers.cache_utils import Cache, CacheLayerMixin

from .predictor import Prefill, next_token

#: Cache-length bucket, tokens: static caches are a multiple of it long (128: at most 127 masked
#: slots read per row and step, ~0.1 GB for LLaMA-13B in bfloat16 per row at the worst).
CACHE_BUCKET = 128

#: Static caches a :class:`StaticDecoder` keeps for reuse (least recently used dropped first).
#: Each holds R x L slots of keys and values: 0.82 MB per slot for LLaMA-13B in bfloat16 (8 rows
#: of 512 slots: 3.4 GB; they stay allocated between frames, outside the load-time memory
#: check); :meth:`StaticDecoder.clear` frees them. 2: a steady batch size and its neighbour.
POOL_SIZE = 2

#: Dynamo's recompile limit while a new (rows, length) shape is compiled: each shape is one
#: specialisation of the same step function (dynamo's default limit is 8).
RECOMPILE_LIMIT = 64

#: ``torch.compile`` arguments of the step: CUDA graphs ("reduce-overhead"), one graph per
#: shape (no symbolic shapes), and no graph breaks (an error instead of a silent split).
COMPILE_OPTIONS = dict(mode="reduce-overhead", dynamic=False, fullgraph=True)


def round_up(value: int, multiple: int) -> int:
    """The smallest multiple of ``multiple`` >= ``value``."""
    return -(-value // multiple) * multiple


def row_bucket(count: int) -> int:
    """Rows of the static batch for ``count`` requests: the next power of two (1, 2, 4, ...)."""
    return 1 << max(0, count - 1).bit_length()


class _StaticLayer(CacheLayerMixin):
    """One decoder layer's keys and values in a :class:`StaticKVCache` (transformers' cache-layer
    interface as LLaMA's attention uses it: ``update`` writes the step's key and value at the
    cache's write index and returns the whole preallocated tensors)."""

    is_compileable = True
    is_sliding = False
    supports_early_init = False

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, write_index: torch.Tensor):
        super().__init__()
        self.keys, self.values, self.write_index = keys, values, write_index
        self.max_cache_len = keys.shape[2]
        self.is_initialized = True

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        raise RuntimeError("a StaticKVCache layer is allocated when the cache is made")

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        self.keys.index_copy_(2, self.write_index, key_states)
        self.values.index_copy_(2, self.write_index, value_states)
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self.max_cache_len

    def get_max_length(self) -> int:
        return self.max_cache_len

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.max_cache_len, 0


class StaticKVCache(Cache):
    """A preallocated KV cache of fixed shape, updated in place (see the module docstring).

    Attributes:
        rows: R, batch rows; length: L, slots per row; layout: per decoder layer (device, dtype,
            key heads, key dim, value heads, value dim).
        layers: per decoder layer, ``keys`` / ``values`` (R, heads, L, head_dim) in the layer's
            dtype on the layer's device, zeros when made.
        mask: (R, 1, 1, L) bool on the first layer's device, True where a row attends.
        write_indices: device -> (1,) int64 on that device, the slot the next step writes
            (one per device of the layers, all holding the same value).

    Every tensor is marked as a static address for ``torch.compile``. The model must be given
    ``position_ids`` and ``attention_mask=cache.mask`` (the cache has no sequence length of its
    own: ``get_seq_length`` is its capacity L).
    """

    def __init__(self, layout: Sequence[tuple], rows: int, length: int):
        self.layout, self.rows, self.length = tuple(layout), rows, length
        self.write_indices: dict[torch.device, torch.Tensor] = {}
        layers = []
        for device, dtype, k_heads, k_dim, v_heads, v_dim in self.layout:
            if device not in self.write_indices:
                self.write_indices[device] = torch.zeros(1, dtype=torch.long, device=device)
            keys = torch.zeros(rows, k_heads, length, k_dim, dtype=dtype, device=device)
            values = torch.zeros(rows, v_heads, length, v_dim, dtype=dtype, device=device)
            layers.append(_StaticLayer(keys, values, self.write_indices[device]))
        super().__init__(layers=layers)
        self.mask = torch.zeros(rows, 1, 1, length, dtype=torch.bool, device=self.layout[0][0])
        for tensor in [self.mask, *self.write_indices.values(), *(t for l in layers for t in (l.keys, l.values))]:
            torch._dynamo.mark_static_address(tensor)

    def __repr__(self):
        return f"StaticKVCache(rows={self.rows}, length={self.length}, layers={len(self.layers)})"

    @property
    def nbytes(self) -> int:
        """Bytes of the keys and values."""
        return sum(t.numel() * t.element_size() for l in self.layers for t in (l.keys, l.values))

    def load(self, cache, valid: torch.Tensor) -> None:
        """Copy a prefilled ``DynamicCache`` (B <= R rows of T slots) into slots [0, T) and set
        the mask from ``valid`` (B, T) (nonzero: a real token, zero: padding); padding rows
        (B..R-1) attend to slot 0 only. The other slots are zeroed (a pooled cache holds an
        earlier call's keys and values: masked, they add exact zeros, unless not finite).

        Raises:
            ValueError: more rows or slots than the cache has, or another number of layers.
        """
        count, filled = valid.shape
        if count > self.rows or filled > self.length or len(cache.layers) != len(self.layers):
            raise ValueError(f"a prefill of {count} rows x {filled} slots x {len(cache.layers)} layers does not fit "
                             f"{self!r}")
        for layer, source in zip(self.layers, cache.layers):
            for target, values in ((layer.keys, source.keys), (layer.values, source.values)):
                target[:count, :, :filled].copy_(values)
                target[:count, :, filled:].zero_()
                target[count:].zero_()
        self.mask.zero_()
        self.mask[:count, 0, 0, :filled] = valid.to(self.mask.device).bool()
        self.mask[count:, 0, 0, 0] = True

    def copy_from(self, other: "StaticKVCache") -> None:
        """Keys, values and mask of a shorter cache with the same rows into slots [0, other.length);
        the rest zeroed."""
        filled = other.length
        for layer, source in zip(self.layers, other.layers):
            for target, values in ((layer.keys, source.keys), (layer.values, source.values)):
                target[:, :, :filled].copy_(values)
                target[:, :, filled:].zero_()
        self.mask.zero_()
        self.mask[..., :filled].copy_(other.mask)

    def prepare_write(self, slot: int) -> None:
        """Before a step: its keys and values go to ``slot``, which every row then attends to."""
        for index in self.write_indices.values():
            index.fill_(slot)
        self.mask[..., slot] = True

    def update(self, key_states, value_states, layer_idx: int, *args, **kwargs):
        return self.layers[layer_idx].update(key_states, value_states)


def _decode_step(lm, cache: StaticKVCache, input_ids: torch.Tensor, position_ids: torch.Tensor):
    """One decode step, all shapes static: (R, V) float32 next-token logits and the (R, H)
    last-layer hidden states (after the final norm, as ``hidden_states[-1]``)."""
    hidden = lm.model(input_ids=input_ids, attention_mask=cache.mask, position_ids=position_ids,
                      past_key_values=cache, use_cache=True).last_hidden_state[:, -1]
    return lm.lm_head(hidden).float(), hidden


class StaticDecoder:
    """The static decode loop of one model, with its cache pool and compiled step.

    Attributes:
        bucket: cache-length bucket, tokens (>= 1); pool_size: caches kept for reuse.
        compile_options: ``torch.compile`` keyword arguments of the compiled step
            (:data:`COMPILE_OPTIONS`; e.g. ``backend="eager"`` to check tracing alone).
        skip_guard_eval: compiled steps of a shape already compiled run under
            ``torch.compiler.set_stance(skip_guard_eval_unsafe=True)``: dynamo then checks only
            the guards that tell its compiled shapes apart, not the ~100 per decoder layer on
            module attributes and parameter metadata (host time per step that grows with the
            layers: 0.13 ms for the tiny 2-layer model on this project's CPU). "Unsafe" as torch
            says: correct while the model is not changed after compiling (modules, dtypes,
            devices, attention implementation); after such a change call :meth:`clear` and
            ``torch._dynamo.reset()``. Default False.
        shapes: (rows, length) of every step shape run so far (compiled: each one compile).
        grown: how many times a cache grew by a bucket during decoding.

    Concurrent calls: a cache in use is out of the pool (another call of the same shape makes its
    own), so the eager path is safe; the compiled one is not meant for it (CUDA graphs replay into
    shared memory: keep one decoding thread per model).
    """

    def __init__(self, bucket: int = CACHE_BUCKET, pool_size: int = POOL_SIZE, compile_options: dict | None = None,
                 skip_guard_eval: bool = False):
        if bucket < 1 or pool_size < 0:
            raise ValueError(f"bucket must be >= 1 and pool_size >= 0, got {bucket}, {pool_size}")
        self.bucket, self.pool_size, self.skip_guard_eval = bucket, pool_size, skip_guard_eval
        self._unguarded = None
        self.compile_options = dict(COMPILE_OPTIONS if compile_options is None else compile_options)
        self.shapes: set[tuple[int, int]] = set()
        self.grown = 0
        self._pool: OrderedDict[tuple, StaticKVCache] = OrderedDict()
        self._lock = threading.Lock()
        self._compiled = None
        self._compiled_shapes: set[tuple[int, int]] = set()

    def acquire(self, layout: tuple, rows: int, length: int) -> StaticKVCache:
        key = (layout, rows, length)
        with self._lock:
            cache = self._pool.pop(key, None)
        return cache if cache is not None else StaticKVCache(layout, rows, length)

    def release(self, cache: StaticKVCache) -> None:
        with self._lock:
            self._pool[(cache.layout, cache.rows, cache.length)] = cache
            while len(self._pool) > self.pool_size:
                self._pool.popitem(last=False)

    def clear(self) -> None:
        """Drop the pooled caches and the compiled step (memory back to the allocator)."""
        with self._lock:
            self._pool.clear()
        self._compiled = None
        self._compiled_shapes.clear()

    def step(self, lm, cache: StaticKVCache, input_ids: torch.Tensor, position_ids: torch.Tensor,
             compiled: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """:func:`_decode_step`, eager or through ``torch.compile(mode="reduce-overhead")``; the
        outputs are the caller's (cloned out of the CUDA graph's memory when compiled)."""
        shape = (cache.rows, cache.length)
        self.shapes.add(shape)
        if not compiled:
            return _decode_step(lm, cache, input_ids, position_ids)
        if self._compiled is None:
            self._compiled = torch.compile(_decode_step, **self.compile_options)
        if input_ids.device.type == "cuda":
            torch.compiler.cudagraph_mark_step_begin()
        if shape in self._compiled_shapes:
            if self.skip_guard_eval:
                if self._unguarded is None:  # made once: a context manager costing ~6 us per use
                    self._unguarded = torch.compiler.set_stance("default", skip_guard_eval_unsafe=True)
                    self._unguarded.__exit__(None, None, None)  # (constructing it set the stance)
                with self._unguarded:
                    logits, hidden = self._compiled(lm, cache, input_ids, position_ids)
            else:
                logits, hidden = self._compiled(lm, cache, input_ids, position_ids)
        else:  # a new shape compiles: one specialisation each, more than dynamo's default 8
            limit = max(torch._dynamo.config.recompile_limit, RECOMPILE_LIMIT)
            with torch._dynamo.config.patch(recompile_limit=limit):
                logits, hidden = self._compiled(lm, cache, input_ids, position_ids)
            self._compiled_shapes.add(shape)
        return logits.clone(), hidden.clone()

    def decode(self, lm, prefill: Prefill, prompts: list[list[int]], max_new_tokens: int, logits_processor,
               finished: Callable, compiled: bool = False) -> list:
        """Greedy answers from a prefill, with the rules of ``MVLoc.generate_batch``'s dynamic loop.

        Args:
            lm: the ``LlamaForCausalLM``.
            prefill: the prompts run through ``lm`` (:class:`~.predictor.Prefill`: B rows of T
                slots); its cache is taken (:meth:`~.predictor.Prefill.take_cache`) and freed
                once copied into the static cache.
            prompts: per row, the prompt ids as the logits processor sees them.
            max_new_tokens: >= 1; logits_processor: see ``MVLoc.generate``.
            finished: the stop rules (``MVLoc._stop_rules()``): ``finished(generated, hidden, row,
                last_step)`` -> the Answer, or None while the answer goes on.
            compiled: run the step through ``torch.compile`` (see :meth:`step`).

        Returns:
            One answer per row.

        Raises:
            ValueError: a model whose attention is not SDPA (see the module docstring).
        """
        implementation = getattr(lm.config, "_attn_implementation", None)
        if implementation != "sdpa":
            raise ValueError(f"the static decode cache needs sdpa attention (its boolean mask), the model uses "
                             f"{implementation!r}: use decode_cache dynamic")
        count = len(prompts)
        answers: list = [None] * count
        generated: list[list[int]] = [[] for _ in range(count)]
        active = list(range(count))  # unfinished rows (= request indices: rows never move)
        scores, hidden = prefill.scores, prefill.hidden  # (B or R, V), (B or R, H): row r is request r
        valid, lengths = prefill.mask, prefill.lengths
        source = prefill.take_cache()
        cache: StaticKVCache | None = None
        try:
            for step in range(max_new_tokens):
                picks = scores[:count].argmax(-1).tolist() if logits_processor is None else None
                keep = []
                for request in active:
                    next_id = picks[request] if picks is not None else next_token(
                        scores[request:request + 1], prompts[request], generated[request], logits_processor)
                    generated[request].append(next_id)
                    answers[request] = finished(generated[request], hidden, request, step + 1 == max_new_tokens)
                    if answers[request] is None:
                        keep.append(request)
                active = keep
                if not active:
                    break
                if cache is None:  # the first decode step: the prefill into a static cache
                    filled = source.get_seq_length()
                    layout = tuple((l.keys.device, l.keys.dtype, l.keys.shape[1], l.keys.shape[3], l.values.shape[1],
                                    l.values.shape[3]) for l in source.layers)
                    rows = row_bucket(count)
                    cache = self.acquire(layout, rows, round_up(filled + 1, self.bucket))
                    device = lm.get_input_embeddings().weight.device
                    cache.load(source, valid if valid is not None else
                               torch.ones(count, filled, dtype=torch.long, device=device))
                    source = None  # its keys and values are in the static cache now
                    first_positions = torch.zeros(rows, 1, dtype=torch.long, device=device)
                    first_positions[:count, 0] = torch.tensor([prefill.prefix_length + n for n in lengths],
                                                              device=device)
                    ids = [0] * rows  # finished and padding rows are fed token 0
                slot = filled + step  # the same slot for every row (the prefill pads rows alike)
                if slot >= cache.length:  # crossing a bucket boundary: continue in a longer cache
                    longer = self.acquire(cache.layout, cache.rows, cache.length + self.bucket)
                    longer.copy_from(cache)
                    self.release(cache)
                    cache = longer
                    self.grown += 1
                cache.prepare_write(slot)
                ids[:count] = [0] * count
                for request in active:
                    ids[request] = generated[request][-1]
                input_ids = torch.tensor(ids, device=device)[:, None]
                scores, hidden = self.step(lm, cache, input_ids, first_positions + step, compiled)
        finally:
            if cache is not None:
                self.release(cache)
        return answers
