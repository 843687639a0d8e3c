"""The tokenisation InteractVLM's released models were trained and evaluated with.

InteractVLM (like LISA and LLaVA v1) loads its tokenizer with transformers 4.31,
``AutoTokenizer.from_pretrained(..., use_fast=False)``: the *slow*, SentencePiece-backed
``LlamaTokenizer`` in its legacy mode, and builds prompts with LLaVA's
``tokenizer_image_token``. Later transformers releases tokenise the same text differently
(their fast backend keeps a ``▁`` before an added token and encodes the whitespace around it),
so this module reproduces the 4.31 rules on top of the ``sentencepiece`` library itself:

* **encode** (``PreTrainedTokenizer.tokenize`` + ``LlamaTokenizer``): the text is split at the
  tokenizer's "no split" tokens (the added tokens of ``added_tokens.json`` and the special
  tokens), leftmost first, longest at one position; the whitespace on both sides of such a
  token is stripped, except for tokens stored as an ``AddedToken`` (the LLaMA ``<s>``,
  ``</s>``, ``<unk>``), which strip only as their ``lstrip`` / ``rstrip`` flags say (never, in
  LLaMA's files); every remaining non-empty span is SentencePiece-encoded as is (so each span
  gets SentencePiece's dummy-prefix ``▁``); BOS is prepended (``add_bos_token``), EOS appended
  only with ``add_eos_token``. With ``legacy: false`` in ``tokenizer_config.json`` the 4.31
  non-legacy rule applies instead (the ``▁`` is kept only at the start of the text and after
  a space).
* **image prompts** (LLaVA's ``tokenizer_image_token``): the prompt is split at ``<image>``;
  every chunk is encoded with BOS, the BOS of every chunk but the first is dropped, and the
  chunks are joined by :data:`~.prompts.IMAGE_TOKEN_INDEX`.
* **decode** (``PreTrainedTokenizer._decode`` + ``LlamaTokenizer.convert_tokens_to_string``):
  added tokens are kept apart and joined to the SentencePiece-decoded text around them with
  one space; special tokens inside a span (``</s>``) are written out with a space before them
  unless they follow another special token; ``clean_up_tokenization_spaces`` (default false
  for LLaMA) applies transformers' English clean-up.

The equality with the real transformers 4.31 is tested against ids and texts written by it
(``tests/data/make_tokenizer_fixture.py``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .prompts import IMAGE_TOKEN, IMAGE_TOKEN_INDEX

#: SentencePiece's word-boundary marker.
SPIECE_UNDERLINE = "\u2581"

#: The names under which ``special_tokens_map.json`` / ``tokenizer_config.json`` store the
#: single special tokens of a LLaMA tokenizer.
_SPECIAL_KEYS = ("bos_token", "eos_token", "unk_token", "pad_token")


class TokenizerError(ValueError):
    """Tokenizer files that cannot be read as a LLaMA SentencePiece tokenizer."""


@dataclass(frozen=True)
class _Token:
    """A special token and how it strips its neighbours' whitespace (transformers'
    ``AddedToken``; ``strip_both`` for tokens stored as plain strings, which 4.31 strips on
    both sides)."""

    content: str
    lstrip: bool = False
    rstrip: bool = False
    strip_both: bool = False


def _token_from_json(value, default_added_token: bool) -> _Token | None:
    """A special-token entry of a tokenizer JSON file: a string or an ``AddedToken`` dict."""
    if value is None:
        return None
    if isinstance(value, dict):
        if "content" not in value:
            raise TokenizerError(f"special token entry without 'content': {value}")
        return _Token(str(value["content"]), bool(value.get("lstrip", False)), bool(value.get("rstrip", False)))
    if isinstance(value, str):
        # LlamaTokenizer.__init__ wraps its str arguments in AddedToken(lstrip=False, rstrip=False);
        # special_tokens_map.json's str values are set as plain strings (stripped on both sides).
        return _Token(value) if default_added_token else _Token(value, strip_both=True)
    raise TokenizerError(f"special token entry must be a string or an object, got {value!r}")


class LlamaSlowTokenizer:
    """transformers 4.31's slow ``LlamaTokenizer`` with InteractVLM's added tokens.

    Args:
        model_file: the SentencePiece ``tokenizer.model``.
        added_tokens: token -> id of ``added_tokens.json`` (ids must continue the
            SentencePiece vocabulary: ``[SEG]`` = 32000 ... for LLaMA).
        special_tokens: "bos_token" / "eos_token" / "unk_token" / "pad_token" -> token.
        additional_special_tokens: further special tokens (``special_tokens_map.json``).
        add_bos_token, add_eos_token: what ``encode`` adds (LLaMA: BOS only).
        legacy: 4.31's legacy SentencePiece handling (InteractVLM passes ``legacy=True``).
        clean_up_tokenization_spaces: transformers' English clean-up when decoding.

    Raises:
        FileNotFoundError: no model file; TokenizerError: an unreadable model, added-token ids
        that do not continue the vocabulary, or an unknown BOS/EOS.
    """

    def __init__(self, model_file: str | os.PathLike, added_tokens: dict[str, int] | None = None,
                 special_tokens: dict[str, _Token | None] | None = None,
                 additional_special_tokens: list[_Token] | tuple = (), add_bos_token: bool = True,
                 add_eos_token: bool = False, legacy: bool = True, clean_up_tokenization_spaces: bool = False):
        import sentencepiece

        model_file = Path(model_file)
        if not model_file.is_file():
            raise FileNotFoundError(f"SentencePiece model not found: {model_file}")
        self.sp_model = sentencepiece.SentencePieceProcessor()
        try:
            self.sp_model.Load(str(model_file))
        except (OSError, RuntimeError) as error:
            raise TokenizerError(f"{model_file} is not a SentencePiece model: {error}") from error
        self.add_bos_token = bool(add_bos_token)
        self.add_eos_token = bool(add_eos_token)
        self.legacy = bool(legacy)
        self.clean_up_tokenization_spaces = bool(clean_up_tokenization_spaces)
        specials = {"bos_token": _Token("<s>"), "eos_token": _Token("</s>"), "unk_token": _Token("<unk>"),
                    "pad_token": None}
        specials.update(special_tokens or {})
        self._special = {key: token for key, token in specials.items() if token is not None}
        self._additional = list(additional_special_tokens)
        # Added tokens continue the SentencePiece vocabulary in id order, as 4.31 requires.
        self.added_tokens_encoder: dict[str, int] = {}
        vocab_size = self.sp_model.get_piece_size()
        for token, index in sorted((added_tokens or {}).items(), key=lambda item: item[1]):
            expected = vocab_size + len(self.added_tokens_encoder)
            if self.sp_model.piece_to_id(token) != self.sp_model.unk_id() or token == self.unk_token:
                continue  # already a piece of the vocabulary: 4.31 does not add it again
            if int(index) != expected:
                raise TokenizerError(f"added token {token!r} has id {index}, expected {expected} (ids must "
                                     "continue the SentencePiece vocabulary)")
            self.added_tokens_encoder[token] = int(index)
        # sanitize_special_tokens(): a special token missing from the vocabulary is added too.
        for token in self.all_special_tokens:
            if token not in self.added_tokens_encoder and self.sp_model.piece_to_id(token) == self.sp_model.unk_id() \
                    and token != self.unk_token:
                self.added_tokens_encoder[token] = vocab_size + len(self.added_tokens_encoder)
        self.added_tokens_decoder = {index: token for token, index in self.added_tokens_encoder.items()}
        # Only tokens stored as AddedToken strip by their flags (a plain-string duplicate, e.g.
        # pad_token "<unk>", does not override unk_token's AddedToken); the others strip both sides.
        self._strip = {token.content: token for token in [*self._special.values(), *self._additional]
                       if not token.strip_both}
        no_split = sorted(set(self.added_tokens_encoder) | set(self.all_special_tokens), key=len, reverse=True)
        self._splitter = re.compile("(" + "|".join(re.escape(t) for t in no_split) + ")") if no_split else None
        for key in ("bos_token", "eos_token"):
            if key in self._special and self.convert_tokens_to_ids(self._special[key].content) == self.unk_token_id:
                raise TokenizerError(f"{key} {self._special[key].content!r} is not in the vocabulary")

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, legacy: bool | None = None) -> "LlamaSlowTokenizer":
        """Read a ``save_pretrained`` tokenizer directory as transformers 4.31 does with
        ``use_fast=False``: ``tokenizer.model``, ``added_tokens.json``, ``tokenizer_config.json``
        (``add_bos_token``, ``add_eos_token``, ``legacy``, ``clean_up_tokenization_spaces``,
        special tokens), then ``special_tokens_map.json`` (overrides the special tokens).

        Args:
            directory: the checkpoint directory.
            legacy: overrides ``tokenizer_config.json``'s ``legacy`` (InteractVLM's evaluation
                passes True; its demo leaves the file's value, default True).

        Raises:
            FileNotFoundError: no ``tokenizer.model``; TokenizerError: malformed JSON files.
        """
        directory = Path(directory)

        def read(name: str) -> dict:
            path = directory / name
            if not path.is_file():
                return {}
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
                raise TokenizerError(f"cannot read {path}: {error}") from error
            if not isinstance(data, dict):
                raise TokenizerError(f"{path} must hold a JSON object")
            return data

        config = read("tokenizer_config.json")
        special_map = read("special_tokens_map.json")
        added = read("added_tokens.json")
        special = {key: _token_from_json(config.get(key, default), True)
                   for key, default in zip(_SPECIAL_KEYS, ("<s>", "</s>", "<unk>", None))}
        additional = [_token_from_json(t, False) for t in config.get("additional_special_tokens") or []]
        for key, value in special_map.items():
            if key in _SPECIAL_KEYS:
                special[key] = _token_from_json(value, False)
            elif key == "additional_special_tokens":
                additional = [_token_from_json(t, False) for t in value or []]
        try:
            added_ids = {str(token): int(index) for token, index in added.items()}
        except (TypeError, ValueError) as error:
            raise TokenizerError(f"{directory / 'added_tokens.json'}: ids must be integers ({error})") from error
        return cls(directory / "tokenizer.model", added_ids, special, additional,
                   add_bos_token=config.get("add_bos_token", True), add_eos_token=config.get("add_eos_token", False),
                   legacy=config.get("legacy", True) if legacy is None else legacy,
                   clean_up_tokenization_spaces=config.get("clean_up_tokenization_spaces", False))

    # ------------------------------------------------------------------------------ vocabulary
    def __len__(self) -> int:
        """SentencePiece pieces + added tokens (4.31's ``len(tokenizer)``)."""
        return self.sp_model.get_piece_size() + len(self.added_tokens_encoder)

    @property
    def all_special_tokens(self) -> list[str]:
        """BOS, EOS, UNK, PAD (when set) and the additional special tokens, without repeats."""
        tokens = [t.content for t in self._special.values()] + [t.content for t in self._additional]
        return list(dict.fromkeys(tokens))

    @property
    def all_special_ids(self) -> list[int]:
        return [self.convert_tokens_to_ids(t) for t in self.all_special_tokens]

    @property
    def added_tokens(self) -> tuple[str, ...]:
        """The tokens beyond the SentencePiece vocabulary (``[SEG]``, ``<im_start>``, ...)."""
        return tuple(self.added_tokens_encoder)

    @property
    def unk_token(self) -> str:
        return self._special["unk_token"].content if "unk_token" in self._special else "<unk>"

    @property
    def unk_token_id(self) -> int:
        return self.sp_model.unk_id()

    @property
    def bos_token_id(self) -> int | None:
        return self.convert_tokens_to_ids(self._special["bos_token"].content) if "bos_token" in self._special else None

    @property
    def eos_token_id(self) -> int | None:
        return self.convert_tokens_to_ids(self._special["eos_token"].content) if "eos_token" in self._special else None

    def convert_tokens_to_ids(self, token: str) -> int:
        """Id of one token: an added token's id, else its SentencePiece id (UNK if unknown)."""
        if token in self.added_tokens_encoder:
            return self.added_tokens_encoder[token]
        return int(self.sp_model.piece_to_id(token))

    def convert_ids_to_tokens(self, ids, skip_special_tokens: bool = False) -> list[str]:
        """Tokens of ids; ids outside the vocabulary (only random test models produce them)
        are left out."""
        special = set(self.all_special_ids) if skip_special_tokens else set()
        tokens = []
        for index in ids:
            index = int(index)
            if index in special:
                continue
            if index in self.added_tokens_decoder:
                tokens.append(self.added_tokens_decoder[index])
            elif 0 <= index < self.sp_model.get_piece_size():
                tokens.append(self.sp_model.id_to_piece(index))
        return tokens

    # --------------------------------------------------------------------------------- encode
    def tokenize(self, text: str) -> list[str]:
        """4.31's ``tokenize``: SentencePiece pieces and added tokens of ``text``."""
        if not self.legacy:
            text = SPIECE_UNDERLINE + text.replace(SPIECE_UNDERLINE, " ")
        # re.split with one group: spans at even indices (possibly empty), tokens at odd ones.
        chunks = self._splitter.split(text) if self._splitter else [text]
        for i in range(1, len(chunks), 2):
            token = self._strip.get(chunks[i])
            if (token is None or token.rstrip) and chunks[i + 1]:
                chunks[i + 1] = chunks[i + 1].lstrip()
            if (token is None or token.lstrip) and chunks[i - 1]:
                chunks[i - 1] = chunks[i - 1].rstrip()
        tokens: list[str] = []
        for i, chunk in enumerate(chunks):
            if i % 2:
                tokens.append(chunk)
            elif chunk:
                tokens.extend(self._sentencepiece(chunk))
        return tokens

    def _sentencepiece(self, text: str) -> list[str]:
        """4.31's ``LlamaTokenizer._tokenize`` of one span without added tokens."""
        is_first = False
        if not self.legacy:
            is_first = text.startswith(SPIECE_UNDERLINE)
            if is_first:
                text = text[1:]
        pieces = self.sp_model.encode(text, out_type=str)
        if not self.legacy and not is_first and not text.startswith(" ") and pieces and \
                pieces[0].startswith(SPIECE_UNDERLINE):
            pieces = ([pieces[0][1:]] if len(pieces[0]) > 1 else []) + pieces[1:]
        return pieces

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """Ids of ``text``: :meth:`tokenize`, then BOS (and EOS) as the config says."""
        ids = [self.convert_tokens_to_ids(t) for t in self.tokenize(text)]
        if not add_special_tokens:
            return ids
        return ([self.bos_token_id] if self.add_bos_token else []) + ids + (
            [self.eos_token_id] if self.add_eos_token else [])

    def image_prompt_ids(self, prompt: str, image_token_index: int = IMAGE_TOKEN_INDEX) -> list[int]:
        """LLaVA's ``tokenizer_image_token``: the chunks around each ``<image>`` encoded with
        BOS, BOS kept once (at the start), ``image_token_index`` in place of each ``<image>``."""
        chunks = [self.encode(chunk) for chunk in prompt.split(IMAGE_TOKEN)]
        offset = 1 if chunks and chunks[0] and chunks[0][0] == self.bos_token_id else 0
        ids = chunks[0][:offset]
        for number, chunk in enumerate(chunks):
            if number:
                ids.extend([image_token_index])
            ids.extend(chunk[offset:])
        return ids

    # --------------------------------------------------------------------------------- decode
    def _pieces_to_string(self, tokens: list[str]) -> str:
        """4.31's ``LlamaTokenizer.convert_tokens_to_string``."""
        special = set(self.all_special_tokens)
        current: list[str] = []
        text = ""
        previous_special = False
        for i, token in enumerate(tokens):
            if token in special:
                if not previous_special and i != 0:
                    text += " "
                text += self.sp_model.decode_pieces(current) + token
                previous_special = True
                current = []
            else:
                current.append(token)
                previous_special = False
        return text + self.sp_model.decode_pieces(current)

    def decode(self, ids, skip_special_tokens: bool = False) -> str:
        """4.31's ``decode``: text of ``ids`` (added tokens joined with single spaces).

        Args:
            ids: token ids (ints); ids outside the vocabulary are left out.
            skip_special_tokens: drop BOS/EOS/UNK/PAD and the additional special tokens.
        """
        texts: list[str] = []
        current: list[str] = []
        for token in self.convert_ids_to_tokens(ids, skip_special_tokens):
            if token in self.added_tokens_encoder:
                if current:
                    texts.append(self._pieces_to_string(current))
                    current = []
                texts.append(token)
            else:
                current.append(token)
        if current:
            texts.append(self._pieces_to_string(current))
        text = " ".join(texts)
        if self.clean_up_tokenization_spaces:
            for before, after in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                                  (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
                text = text.replace(before, after)
        return text
