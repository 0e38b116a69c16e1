"""The one prompt path: WebUI-style prompt text in, the embeddings a pipeline needs out.

Every prompt box in every notebook goes through :func:`encode_prompt`, which reads prompts the way the
AUTOMATIC1111 WebUI does (``modules/prompt_parser.py`` and ``modules/sd_hijack_clip.py``):

- ``(word)`` multiplies the attention to *word* by 1.1, ``[word]`` divides it by 1.1, ``(word:1.3)`` sets a
  factor, nesting multiplies, ``\\(`` ``\\)`` ``\\[`` ``\\]`` are literal brackets; an unclosed bracket still
  applies to the rest of the prompt (as in the WebUI) and a warning shows the weights it gave;
- ``BREAK`` ends a 75-token chunk early; longer prompts are packed into 75-token chunks (when a chunk is
  full and a comma lies within its last 20 tokens, the words after that comma move to the next chunk);
  each chunk is encoded as 77 tokens on its own and the chunks are joined, so nothing is cut off
  (SD 1.x/2.x and SDXL, whose chunks go through both text encoders); the negative prompt is padded with
  empty chunks to the same length. A text encoder that is not CLIP (Taiyi's Chinese BERT) gets chunks of its
  own tokenizer's length, 512 positions with ``[CLS]``/``[SEP]`` around 510 tokens, as ``pipe.encode_prompt``
  pads them;
- weights are applied as the WebUI's "original" emphasis: each token's embedding is multiplied by its
  weight, then the chunk is rescaled so that its mean is what it was unweighted. Without weights the
  result is exactly what ``pipe.encode_prompt`` gives;
- ``Clip skip`` N > 1 takes the text encoder's N-th layer from the end (SD 1.x/2.x: then its final layer
  norm, as the WebUI does; SDXL: N - 1 layers before the penultimate one it uses by default); it is a CLIP
  setting, refused for other text encoders;
- ``<lora:name:weight>`` tags are taken out of the text (:func:`extract_loras`); :mod:`sdnb.lora` applies
  them for that run only;
- prompt editing ``[from:to:when]`` and alternation ``[a|b]`` (which change the prompt between steps) are
  refused with a message, not read as text.

compel does not read this syntax (it reads ``(red:1.5)`` as text, has its own ``red++`` and other maths),
so this is sdnb's own small parser, checked against the WebUI's documented ``parse_prompt_attention``
examples.
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
import warnings
from dataclasses import dataclass, replace
from typing import Any

import torch

from .errors import SdnbError

__all__ = [
    "CHUNK",
    "Chunk",
    "chunk_size",
    "unreadable_scripts",
    "LoraTag",
    "PromptEmbeds",
    "encode_prompt",
    "extract_loras",
    "parse_prompt",
    "parse_prompt_attention",
    "prompt_chunks",
    "set_lora_weight",
    "token_count",
]

CHUNK = 75  # CLIP's 77 positions minus the start and end tokens
COMMA_BACKTRACK = 20  # the WebUI's default "comma padding backtrack"
BREAK = ("BREAK", -1.0)  # how parse_prompt_attention marks BREAK, as the WebUI does


@dataclass(frozen=True)
class PromptEmbeds:
    """Text embeddings for a batch: conditional and unconditional (negative), plus SDXL's pooled vectors."""

    cond: torch.Tensor
    uncond: torch.Tensor
    pooled: torch.Tensor | None = None
    uncond_pooled: torch.Tensor | None = None

    def as_kwargs(self) -> dict[str, torch.Tensor]:
        """Keyword arguments for a diffusers pipeline call."""
        kw = {"prompt_embeds": self.cond, "negative_prompt_embeds": self.uncond}
        if self.pooled is not None:
            kw |= {"pooled_prompt_embeds": self.pooled, "negative_pooled_prompt_embeds": self.uncond_pooled}
        return kw

    def lerp(self, other: PromptEmbeds, t: float) -> PromptEmbeds:
        """Linear mix ``(1-t)*self + t*other`` of every tensor (text embeddings are interpolated linearly)."""

        def mix(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
            if a is None or b is None:
                return None
            if a.shape != b.shape:
                a, b = _pad_to_same_length(a, b)
            return torch.lerp(a, b, float(t))

        return PromptEmbeds(*(mix(getattr(self, k), getattr(other, k)) for k in self.__dataclass_fields__))

    @staticmethod
    def cat(items: list[PromptEmbeds]) -> PromptEmbeds:
        """Stack several single-prompt embeddings into one batch."""
        longest = max(e.cond.shape[1] for e in items)
        items = [e.padded(longest) for e in items]
        fields = PromptEmbeds.__dataclass_fields__
        return PromptEmbeds(
            *(None if getattr(items[0], k) is None else torch.cat([getattr(e, k) for e in items]) for k in fields)
        )

    def repeat(self, n: int) -> PromptEmbeds:
        """The same embeddings ``n`` times along the batch axis."""
        return PromptEmbeds(*(None if v is None else v.repeat_interleave(n, 0) for v in self._values()))

    def padded(self, length: int) -> PromptEmbeds:
        """Extend cond/uncond to ``length`` tokens by repeating their last chunk's end (no-op when long enough)."""
        return replace(self, cond=_extend(self.cond, length), uncond=_extend(self.uncond, length))

    def _values(self) -> list[torch.Tensor | None]:
        return [getattr(self, k) for k in self.__dataclass_fields__]


def _extend(t: torch.Tensor, length: int) -> torch.Tensor:
    if t.shape[1] >= length:
        return t
    reps = -(-length // t.shape[1])
    return torch.cat([t] * reps, dim=1)[:, :length]


def _pad_to_same_length(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    n = max(a.shape[1], b.shape[1])
    return _extend(a, n), _extend(b, n)


# --- text: LoRA tags and attention weights ------------------------------------------------------------

@dataclass(frozen=True)
class LoraTag:
    """One ``<lora:name:weight>`` tag of a prompt."""

    name: str
    weight: float = 1.0


_EXTRA_NETWORK = re.compile(r"<(\w+):([^>]+)>")  # the WebUI's extra-network tag (modules/extra_networks.py)


def extract_loras(text: str) -> tuple[str, tuple[LoraTag, ...]]:
    """The prompt without its ``<lora:name>`` / ``<lora:name:weight>`` tags, and the tags (a name given twice:
    the last weight counts, as in the WebUI). Other ``<kind:...>`` tags (hypernetworks) are refused."""
    tags: dict[str, LoraTag] = {}

    def take(m: re.Match[str]) -> str:
        kind, args = m.group(1), m.group(2).split(":")
        if kind.lower() not in ("lora", "lyco"):
            raise SdnbError(f"The prompt has a <{kind}:...> tag; sdnb reads only <lora:name:weight> tags.",
                            hint=f"Remove '{m.group(0)}' from the prompt.")
        name = args[0].strip()
        if len(args) > 2:
            raise SdnbError(f"'{m.group(0)}' gives separate text-encoder and UNet weights; sdnb applies one "
                            "weight to the whole LoRA.", hint=f"Write it as <lora:{name}:{args[1].strip()}>.")
        try:
            weight = float(args[1]) if len(args) == 2 else 1.0
        except ValueError:
            raise SdnbError(f"The weight in '{m.group(0)}' is not a number.",
                            hint=f"Write it as <lora:{name}:0.8>, with the weight as a number.") from None
        if not name:
            raise SdnbError(f"'{m.group(0)}' names no LoRA.", hint="Write it as <lora:file_name:0.8>.")
        tags.pop(name, None)
        tags[name] = LoraTag(name, weight)
        return ""

    plain = _EXTRA_NETWORK.sub(take, text)
    return plain, tuple(tags.values())


def set_lora_weight(text: str, name: str, weight: float) -> str:
    """``text`` with LoRA ``name`` at ``weight``: its tag's weight replaced, or the tag added at the end."""
    tag = f"<lora:{name}:{weight:g}>"
    pattern = re.compile(rf"<lora:{re.escape(name)}(:[^>]*)?>")
    return pattern.sub(lambda m: tag, text) if pattern.search(text) else f"{text.rstrip()} {tag}".strip()


_ATTENTION = re.compile(r"""
\\\(|\\\)|\\\[|\\]|\\\\|\\|\(|\[|:\s*([+-]?[.\d]+)\s*\)|\)|]|[^\\()\[\]:]+|:
""", re.X)
_BREAK = re.compile(r"\s*\bBREAK\b\s*", re.S)


def parse_prompt_attention(text: str) -> list[tuple[str, float]]:
    """Split prompt text into (text, weight) runs exactly as the WebUI's ``parse_prompt_attention`` does;
    ``BREAK`` comes out as ``("BREAK", -1.0)``.

    >>> parse_prompt_attention('an (important) word')
    [('an ', 1.0), ('important', 1.1), (' word', 1.0)]
    >>> parse_prompt_attention('\\\\(literal\\\\]')
    [('(literal]', 1.0)]
    """
    res: list[list[Any]] = []
    round_brackets: list[int] = []
    square_brackets: list[int] = []

    def multiply_range(start: int, multiplier: float) -> None:
        for p in range(start, len(res)):
            res[p][1] *= multiplier

    for m in _ATTENTION.finditer(text):
        part, weight = m.group(0), m.group(1)
        if part.startswith("\\"):
            res.append([part[1:], 1.0])
        elif part == "(":
            round_brackets.append(len(res))
        elif part == "[":
            square_brackets.append(len(res))
        elif weight is not None and round_brackets:
            try:
                factor = float(weight)
            except ValueError:
                raise SdnbError(f"'{weight}' in '{part.strip()}' is not a weight.",
                                hint="Write a weight as a number, e.g. (word:1.2).") from None
            multiply_range(round_brackets.pop(), factor)
        elif part == ")" and round_brackets:
            multiply_range(round_brackets.pop(), 1.1)
        elif part == "]" and square_brackets:
            multiply_range(square_brackets.pop(), 1 / 1.1)
        else:
            for i, piece in enumerate(_BREAK.split(part)):
                if i > 0:
                    res.append(list(BREAK))
                res.append([piece, 1.0])
    unclosed = bool(round_brackets or square_brackets)
    for pos in round_brackets:
        multiply_range(pos, 1.1)
    for pos in square_brackets:
        multiply_range(pos, 1 / 1.1)
    if not res:
        res = [["", 1.0]]
    i = 0
    while i + 1 < len(res):  # merge runs of equal weight
        if res[i][1] == res[i + 1][1]:
            res[i][0] += res[i + 1][0]
            res.pop(i + 1)
        else:
            i += 1
    runs = [(str(t), float(w)) for t, w in res]
    if unclosed:
        shown = ", ".join(f"{t!r}: {w:.3g}" for t, w in runs if (t, w) != BREAK)
        warnings.warn(f"The prompt has an unclosed bracket; as in the WebUI it weights the rest of the prompt: "
                      f"{shown}. Close it (or write \\( for a literal bracket) if that is not what you meant.",
                      stacklevel=2)
    return runs


#: The WebUI's prompt editing ``[from:to:when]`` / ``[to:when]`` and alternation ``[a|b]`` (not escaped).
_SCHEDULED = re.compile(r"(?<!\\)\[[^\[\]]*[:|][^\[\]]*(?<!\\)\]")


def parse_prompt(text: str) -> str:
    """The prompt text without its LoRA tags, trimmed (weights and BREAK stay: see :func:`prompt_chunks`).

    Prompt editing and alternation change the prompt between steps; sdnb does not do that yet, so they are
    refused rather than read as text."""
    if not isinstance(text, str):
        raise SdnbError(f"A prompt must be text, got {type(text).__name__}.")
    plain = extract_loras(text)[0].strip()
    scheduled = _SCHEDULED.search(plain)
    if scheduled:
        raise SdnbError(f"'{scheduled.group(0)}' is WebUI prompt editing ([from:to:when]) or alternation ([a|b]), "
                        "which changes the prompt between steps; sdnb does not do that yet.",
                        hint="Write one of the words instead, or \\[ and \\] for literal brackets.")
    return plain


# --- scripts: which languages a text encoder reads ---------------------------------------------------

_LATIN_WORD = re.compile(r"[^\W\d_]{3,}")


def _script(ch: str) -> str:
    """"zh" for a Chinese character (CJK ideograph), "en" for a Latin letter, "other" for any other letter."""
    name = unicodedata.name(ch, "")
    if name.startswith(("CJK UNIFIED IDEOGRAPH", "CJK COMPATIBILITY IDEOGRAPH")):
        return "zh"
    return "en" if "LATIN" in name else "other"


def unreadable_scripts(text: str, languages: tuple[str, ...]) -> set[str]:
    """The scripts in a prompt that a text encoder trained on ``languages`` ("en", "zh") cannot read: "zh"
    (Chinese characters), "en" (Latin words of three letters or more: "4k" or "HD" in a Chinese prompt are
    fine), "other" (Cyrillic, kana, Hangul, ...). LoRA tags and ``BREAK`` are syntax, not words."""
    with contextlib.suppress(SdnbError):  # a tag sdnb refuses is still not a word
        text = extract_loras(text)[0]
    text = _BREAK.sub(" ", text)
    found = {_script(ch) for ch in text if ch.isalpha() and _script(ch) != "en"}
    if any(all(_script(ch) == "en" for ch in word) for word in _LATIN_WORD.findall(text)):
        found.add("en")
    return found - set(languages)


# --- tokens: 75-token chunks ------------------------------------------------------------------------

@dataclass(frozen=True)
class Chunk:
    """Up to 75 token ids of one chunk (no start/end tokens) with each token's weight."""

    ids: tuple[int, ...]
    weights: tuple[float, ...]


def chunk_size(tokenizer: Any) -> int:
    """How many prompt tokens one chunk holds: the tokenizer's length minus its start and end tokens (CLIP: 75;
    Taiyi's BERT: 510)."""
    length = tokenizer.model_max_length
    if not isinstance(length, int) or not 2 < length <= 100_000:
        raise SdnbError(f"The tokenizer {type(tokenizer).__name__} gives no usable maximum length ({length!r}), so "
                        "prompts cannot be split into the pieces its text encoder reads.",
                        hint="Set model_max_length in the model's tokenizer/tokenizer_config.json (77 for CLIP, "
                             "the text encoder's max_position_embeddings for BERT).")
    return length - 2


def _ends(tokenizer: Any) -> tuple[int, int]:
    """The start and end tokens the tokenizer puts around a text (CLIP: start/end of text; BERT: [CLS]/[SEP])."""
    ids = tokenizer("", add_special_tokens=True).input_ids
    if len(ids) != 2:
        raise SdnbError(f"The tokenizer {type(tokenizer).__name__} does not put one start and one end token "
                        f"around a text ({ids}), which sdnb's prompt chunks need.",
                        hint="Use a model with a CLIP or BERT tokenizer.")
    return ids[0], ids[1]


def prompt_chunks(tokenizer: Any, text: str) -> list[Chunk]:
    """Pack a prompt's tokens into chunks of :func:`chunk_size` (CLIP: 75) as the WebUI's ``tokenize_line`` does:
    ``BREAK`` closes a chunk; a full chunk with a comma in its last 20 tokens moves the words after that comma
    on. An empty prompt is one empty chunk."""
    runs = parse_prompt_attention(parse_prompt(text))
    texts = [t for t, w in runs if (t, w) != BREAK]
    ids_of = iter(tokenizer(texts, add_special_tokens=False, truncation=False).input_ids if texts else [])
    size = chunk_size(tokenizer)
    comma_ids = tokenizer(",", add_special_tokens=False).input_ids
    comma = comma_ids[0] if len(comma_ids) == 1 else None
    chunks: list[Chunk] = []
    ids: list[int] = []
    weights: list[float] = []
    last_comma = -1

    def close() -> None:
        nonlocal ids, weights, last_comma
        chunks.append(Chunk(tuple(ids), tuple(weights)))
        ids, weights, last_comma = [], [], -1

    for text_run, weight in runs:
        if (text_run, weight) == BREAK:
            close()
            continue
        for token in next(ids_of):
            if token == comma:
                last_comma = len(ids)
            elif len(ids) == size and last_comma != -1 and len(ids) - last_comma <= COMMA_BACKTRACK:
                cut = last_comma + 1
                moved_ids, moved_weights = ids[cut:], weights[cut:]
                ids, weights = ids[:cut], weights[:cut]
                close()
                ids, weights = moved_ids, moved_weights
            if len(ids) == size:
                close()
            ids.append(token)
            weights.append(weight)
    if ids or not chunks:
        close()
    return chunks


def token_count(pipe: Any, text: str) -> int:
    """How many tokens the pipeline's tokenizer makes of ``text`` (without start/end tokens, LoRA tags and bracket
    syntax)."""
    return sum(len(c.ids) for c in prompt_chunks(_tokenizer(pipe), text))


def _tokenizer(pipe: Any) -> Any:
    tokenizer = getattr(pipe, "tokenizer", None) or getattr(pipe, "tokenizer_2", None)
    if tokenizer is None:
        raise SdnbError(f"{type(pipe).__name__} has no tokenizer, so it takes no prompt.")
    return tokenizer


# --- embeddings ------------------------------------------------------------------------------------

def _rows(tokenizer: Any, chunks: list[Chunk]) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``[start, ids, end, pad...]`` as long as the tokenizer's maximum (CLIP: 77) and their weights (1 for
    start, end and padding)."""
    bos, eos = _ends(tokenizer)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    size = chunk_size(tokenizer)
    rows, weights = [], []
    for c in chunks:
        rest = size - len(c.ids)
        rows.append([bos, *c.ids, eos] + [pad] * rest)
        weights.append([1.0, *c.weights, 1.0] + [1.0] * rest)
    return torch.tensor(rows), torch.tensor(weights)


def _final_norm(encoder: Any) -> Any:
    inner = getattr(encoder, "text_model", encoder)  # transformers 5 dropped the .text_model level
    return getattr(inner, "final_layer_norm", None)


def _encode_rows(encoder: Any, ids: torch.Tensor, weights: torch.Tensor, clip_skip: int, xl: bool,
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(n, 77) token rows -> (n, 77, dim) hidden states with emphasis, and the pooled vectors (if any)."""
    out = encoder(ids.to(encoder.device), output_hidden_states=True)
    if xl:  # SDXL reads the penultimate layer of both encoders
        z = out.hidden_states[-(clip_skip + 1)]
    elif clip_skip > 1:
        z = _final_norm(encoder)(out.hidden_states[-clip_skip])
    else:
        z = out.last_hidden_state
    w = weights.to(z.device, z.dtype)
    if bool((w != 1).any()):  # the WebUI's "original" emphasis, per chunk
        before = z.mean(dim=(1, 2), keepdim=True)
        z = z * w[..., None]
        z = z * (before / z.mean(dim=(1, 2), keepdim=True))
    return z.to(encoder.dtype), getattr(out, "text_embeds", None)


def _encode_side(pipe: Any, chunks: list[Chunk], clip_skip: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One prompt's chunks -> (1, 77 x chunks, dim) embeddings and the first chunk's pooled vector (SDXL)."""
    xl = getattr(pipe, "text_encoder_2", None) is not None
    pairs = [(getattr(pipe, e, None), getattr(pipe, t, None))
             for e, t in (("text_encoder", "tokenizer"), ("text_encoder_2", "tokenizer_2"))]
    parts, pooled = [], None
    for encoder, tokenizer in pairs:
        if encoder is None:
            continue
        ids, weights = _rows(tokenizer or _tokenizer(pipe), chunks)
        z, pooled_here = _encode_rows(encoder, ids, weights, clip_skip, xl)
        parts.append(z.reshape(1, -1, z.shape[-1]))
        if pooled_here is not None:
            pooled = pooled_here[:1]
    return torch.cat(parts, dim=-1), pooled


def _check_clip_skip(pipe: Any, clip_skip: int) -> None:
    encoder = getattr(pipe, "text_encoder", None) or getattr(pipe, "text_encoder_2", None)
    if clip_skip != 1 and _final_norm(encoder) is None:
        raise SdnbError(f"Clip skip {clip_skip!r} is a setting for CLIP text encoders; this model's text encoder is "
                        f"{type(encoder).__name__}, which was trained to be read at its last layer.",
                        hint="Set Clip skip to 1 for this model.")
    layers = encoder.config.num_hidden_layers
    if isinstance(clip_skip, bool) or not isinstance(clip_skip, int) or not 1 <= clip_skip <= layers:
        raise SdnbError(f"Clip skip {clip_skip!r} does not fit this text encoder, which has {layers} layers.",
                        hint=f"Use a whole number from 1 (the last layer, the default) to {layers}; 2 is what "
                             "anime models made for the WebUI usually ask for.")


def encode_prompt(pipe: Any, prompt: str, negative_prompt: str = "", clip_skip: int = 1) -> PromptEmbeds:
    """Encode one WebUI-style prompt and its negative for ``pipe`` (one image; use ``.repeat`` for a batch).

    LoRA tags are removed here (see :mod:`sdnb.lora` for applying them). With no weights, no BREAK, at most
    75 tokens and Clip skip 1, the result equals ``pipe.encode_prompt``.
    """
    _check_clip_skip(pipe, clip_skip)
    tokenizer = _tokenizer(pipe)
    cond, uncond = prompt_chunks(tokenizer, prompt), prompt_chunks(tokenizer, negative_prompt)
    empty = prompt_chunks(tokenizer, "")
    n = max(len(cond), len(uncond))
    cond, uncond = cond + empty * (n - len(cond)), uncond + empty * (n - len(uncond))
    with torch.no_grad():
        c, pooled = _encode_side(pipe, cond, clip_skip)
        u, upooled = _encode_side(pipe, uncond, clip_skip)
    return PromptEmbeds(c, u, pooled, upooled)
