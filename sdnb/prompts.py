"""The one prompt path: WebUI-style prompt text in, the embeddings a pipeline needs out.

Every prompt box in every notebook goes through :func:`encode_prompt`. Prompts longer than CLIP's
75-token window are split into 75-token chunks that are encoded separately and concatenated, the
way the AUTOMATIC1111 WebUI does, so nothing is silently cut off (SD 1.x/2.x; SDXL truncates with a
warning). Later notebooks extend :func:`parse_prompt` with ``<lora:name:w>`` and ``(word:1.2)``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Any

import torch

from .errors import SdnbError

__all__ = ["PromptEmbeds", "parse_prompt", "token_count", "encode_prompt", "CHUNK"]

CHUNK = 75  # CLIP's 77 positions minus the start and end tokens


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


def parse_prompt(text: str) -> str:
    """WebUI prompt syntax -> plain prompt text. Today: trims whitespace and checks the type."""
    if not isinstance(text, str):
        raise SdnbError(f"A prompt must be text, got {type(text).__name__}.")
    return text.strip()


def token_count(pipe: Any, text: str) -> int:
    """How many CLIP tokens ``text`` uses (without the start/end tokens)."""
    return len(pipe.tokenizer(parse_prompt(text), add_special_tokens=False, truncation=False).input_ids)


def _chunk_ids(tokenizer: Any, text: str, n_chunks: int) -> torch.Tensor:
    ids = tokenizer(text, add_special_tokens=False, truncation=False).input_ids
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    rows = []
    for i in range(n_chunks):
        part = ids[i * CHUNK : (i + 1) * CHUNK]
        rows.append([bos, *part, eos] + [pad] * (CHUNK - len(part)))
    return torch.tensor(rows)


def _encode_chunked(pipe: Any, prompt: str, negative: str, device: torch.device) -> PromptEmbeds:
    """SD 1.x/2.x: encode each 75-token chunk on its own and join them along the token axis."""
    n = max(1, -(-token_count(pipe, prompt) // CHUNK), -(-token_count(pipe, negative) // CHUNK))
    out = []
    for text in (prompt, negative):
        ids = _chunk_ids(pipe.tokenizer, text, n).to(device)
        with torch.no_grad():
            hidden = pipe.text_encoder(ids)[0]  # (n, 77, dim)
        out.append(hidden.reshape(1, -1, hidden.shape[-1]).to(pipe.text_encoder.dtype))
    return PromptEmbeds(out[0], out[1])


def encode_prompt(pipe: Any, prompt: str, negative_prompt: str = "") -> PromptEmbeds:
    """Encode one prompt and its negative for ``pipe`` (one image; use ``.repeat`` for a batch)."""
    prompt, negative = parse_prompt(prompt), parse_prompt(negative_prompt)
    device = pipe._execution_device
    is_xl = getattr(pipe, "text_encoder_2", None) is not None
    longest = max(token_count(pipe, prompt), token_count(pipe, negative))
    if longest > CHUNK and not is_xl:
        return _encode_chunked(pipe, prompt, negative, device)
    if longest > CHUNK:
        warnings.warn(
            f"The prompt has {longest} tokens; SDXL reads only the first {CHUNK}, the rest is ignored.",
            stacklevel=2,
        )
    with torch.no_grad():
        if is_xl:
            cond, uncond, pooled, upooled = pipe.encode_prompt(
                prompt, device=device, num_images_per_prompt=1, do_classifier_free_guidance=True,
                negative_prompt=negative,
            )
            return PromptEmbeds(cond, uncond, pooled, upooled)
        cond, uncond = pipe.encode_prompt(prompt, device, 1, True, negative)
    return PromptEmbeds(cond, uncond)
