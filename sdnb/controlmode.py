"""The WebUI ControlNet extension's three control modes, per unit, as forward hooks on each ControlNet.

The extension (``scripts/hook.py`` of sd-webui-controlnet) scales the 13 residuals a ControlNet adds to the
UNet (12 skip connections, then the middle block) and may drop them from the unconditional half of CFG:

- **Balanced**: every residual times the unit's weight, on both halves of the CFG batch;
- **My prompt is more important** ("soft injection"): residual ``i`` also times ``0.825 ** (12 - i)``, so the
  shallow, detailed blocks are weakened most (0.1 for the first, 1 for the middle block), on both halves;
- **ControlNet is more important** (soft injection and "CFG injection"): the same soft scales, and the
  residuals only on the conditional half, so CFG's push from the negative prompt towards the prompt also
  pushes towards the control.

SDXL ControlNets have 10 residuals and the extension keeps the first 10 of the 13 scales; the tiny models of
tiny mode have fewer still and get their first ones the same way. diffusers' ``guess_mode`` is close to the
third mode but applies to every unit at once; these hooks let each unit have its own mode. diffusers orders
the CFG batch negative first (``torch.cat([negative_prompt_embeds, prompt_embeds])``), so the unconditional
half is the first half.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

__all__ = ["CONTROL_MODES", "SOFT_DECAY", "mode_scales", "keeps_unconditional", "control_mode_hooks"]

#: The extension's control modes, in its order.
CONTROL_MODES: tuple[str, ...] = ("Balanced", "My prompt is more important", "ControlNet is more important")

#: How much weaker each shallower residual is in the soft modes (the extension's ``0.825 ** (12 - i)``).
SOFT_DECAY = 0.825


def mode_scales(mode: str, count: int) -> list[float]:
    """The factor on each of a ControlNet's ``count`` residuals (skip connections first, middle block last),
    on top of the unit's weight, in ``mode``."""
    if mode == "Balanced":
        return [1.0] * count
    return [SOFT_DECAY ** (12 - i) for i in range(count)]


def keeps_unconditional(mode: str) -> bool:
    """False when the residuals act on the conditional half of the CFG batch only."""
    return mode != "ControlNet is more important"


def _scaled(output: Any, mode: str, cfg: bool) -> Any:
    """A ControlNet's output (down residuals, mid residual) with ``mode``'s scales and CFG mask applied."""
    import torch

    tuple_out = isinstance(output, tuple)
    down, mid = output if tuple_out else (output.down_block_res_samples, output.mid_block_res_sample)
    residuals = [*down, mid]
    scales = mode_scales(mode, len(residuals))
    mask = None
    if cfg and not keeps_unconditional(mode):  # negative half first: zero it
        rows = residuals[0].shape[0]
        mask = torch.ones(rows, 1, 1, 1, dtype=residuals[0].dtype, device=residuals[0].device)
        mask[: rows // 2] = 0
    residuals = [r * s if mask is None else r * s * mask for r, s in zip(residuals, scales, strict=True)]
    if tuple_out:
        return (tuple(residuals[:-1]), residuals[-1])
    return type(output)(down_block_res_samples=tuple(residuals[:-1]), mid_block_res_sample=residuals[-1])


def _nets(controlnet: Any) -> list[Any]:
    """The ControlNetModels of a pipeline, one per unit in order (a MultiControlNetModel holds several)."""
    return list(getattr(controlnet, "nets", [controlnet]))


@contextmanager
def control_mode_hooks(pipe: Any, modes: Sequence[str]) -> Iterator[None]:
    """While the block runs, each unit ``n`` of ``pipe``'s ControlNet(s) acts in ``modes[n]``.

    A forward hook on each ControlNetModel rescales what it returns (after diffusers has multiplied it by the
    unit's weight and start/end schedule); diffusers calls the units in order at every step, so a model used
    by two units takes their modes in turn. ``guess_mode`` must stay off: the hooks need the whole batch.
    """
    nets = _nets(pipe.controlnet)
    if len(nets) != len(modes):
        raise ValueError(f"{len(modes)} control modes for {len(nets)} ControlNet(s)")
    per_net: dict[int, list[str]] = {}
    for net, mode in zip(nets, modes, strict=True):
        per_net.setdefault(id(net), []).append(mode)
    if all(mode == "Balanced" for mode in modes):  # diffusers' own behaviour: nothing to change
        yield
        return
    calls = dict.fromkeys(per_net, 0)
    handles = []

    def hook(module: Any, args: Any, output: Any) -> Any:
        turn = per_net[id(module)]
        mode = turn[calls[id(module)] % len(turn)]
        calls[id(module)] += 1
        return _scaled(output, mode, bool(pipe.do_classifier_free_guidance))

    seen = set()
    for net in nets:
        if id(net) not in seen:
            seen.add(id(net))
            handles.append(net.register_forward_hook(hook))
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
