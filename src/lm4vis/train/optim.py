"""AdamW parameter groups chosen by structure, and the warm-up + cosine schedule."""

from __future__ import annotations

import math
from fnmatch import fnmatch

import torch
from torch import nn

from .config import OptimConfig


def lr_factors(model: nn.Module) -> dict[str, float]:
    """Per-parameter factors on the learning rate that modules of the model declare.

    A module declares them with ``param_lr_factors() -> {local parameter name: factor}``
    (`FrozenLMBlock` does, for the matrices of its core: the MLP control's width-aware rates);
    every other parameter has factor 1.

    Args:
        model: the host with its block(s) attached.
    """
    out: dict[str, float] = {}
    for path, module in model.named_modules():
        declare = getattr(module, "param_lr_factors", None)
        if callable(declare):
            for name, factor in declare().items():
                out[f"{path}.{name}" if path else name] = float(factor)
    return out


def param_groups(model: nn.Module, weight_decay: float, peak_lr: float | None = None) -> list[dict]:
    """AdamW groups: trainable matrices decay, everything else trainable does not; parameters
    whose module declares a rate factor (`lr_factors`) get their own group at that factor.

    Frozen parameters (``requires_grad=False``) are left out entirely. No decay for tensors of
    rank <= 1 (norm weights, biases) and for the names the host lists in ``no_weight_decay()``
    (timm: ``pos_embed``, ``cls_token``), which may be patterns.

    Args:
        model: the host with its block attached.
        weight_decay: decay of the decaying groups.
        peak_lr: the run's peak rate; groups with a factor other than 1 get ``lr = peak_lr *
            factor`` (the schedule then scales every group alike). None: no ``lr`` keys.
    """
    skip: set[str] = set()
    if callable(getattr(model, "no_weight_decay", None)):
        skip = set(model.no_weight_decay())
    factors = lr_factors(model)
    buckets: dict[tuple[bool, float], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        decays = not (p.ndim <= 1 or name in skip or any(fnmatch(name, pat) for pat in skip))
        buckets.setdefault((decays, factors.get(name, 1.0)), []).append(p)
    groups = []
    for (decays, factor), params in sorted(buckets.items(), key=lambda kv: (not kv[0][0], -kv[0][1])):
        group = {"params": params, "weight_decay": weight_decay if decays else 0.0}
        if factor != 1.0 and peak_lr is not None:
            group["lr"] = peak_lr * factor
        groups.append(group)
    return groups


def group_names(model: nn.Module) -> dict[str, list[str]]:
    """Names in each group of `param_groups` (for reports and tests)."""
    ids = {id(p): n for n, p in model.named_parameters()}
    out: dict[str, list[str]] = {"decay": [], "no_decay": []}
    for g in param_groups(model, 1.0):
        key = "decay" if g["weight_decay"] > 0 else "no_decay"
        out[key] += [ids[id(p)] for p in g["params"]]
    return out


class WarmupCosine:
    """Multiplier of the peak rate at optimizer step ``step`` (a `LambdaLR` lambda).

    Linear warm-up from ``1/warmup`` to 1 over ``warmup`` steps, then a half cosine down to
    ``min_ratio`` at ``total`` (or constant at 1).

    Args:
        warmup: warm-up steps.
        total: total optimizer steps of the run.
        min_ratio: floor, as a fraction of the peak.
        schedule: ``cosine`` or ``constant``.
    """

    def __init__(self, warmup: int, total: int, min_ratio: float, schedule: str = "cosine") -> None:
        self.warmup, self.total, self.min_ratio, self.schedule = warmup, total, min_ratio, schedule

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        if self.schedule == "constant":
            return 1.0
        progress = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        return self.min_ratio + (1.0 - self.min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_optimizer(
    model: nn.Module, cfg: OptimConfig, peak_lr: float, total_steps: int, steps_per_epoch: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over `param_groups` and its per-step schedule.

    Args:
        model: the model to optimise.
        cfg: the optimiser config.
        peak_lr: the rate after warm-up (already scaled by batch size if asked).
        total_steps: optimizer steps of the whole run.
        steps_per_epoch: optimizer steps of one epoch (to turn warm-up epochs into steps).
    """
    groups = param_groups(model, cfg.weight_decay, peak_lr)
    if not groups:
        raise ValueError("the model has no trainable parameter; nothing to train")
    opt = torch.optim.AdamW(groups, lr=peak_lr, betas=tuple(cfg.betas), eps=cfg.eps)
    warmup = cfg.warmup_steps if cfg.warmup_steps is not None else round(cfg.warmup_epochs * steps_per_epoch)
    warmup = min(warmup, max(total_steps - 1, 0))
    schedule = WarmupCosine(warmup, total_steps, min(1.0, cfg.min_lr / peak_lr), cfg.schedule)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, schedule)
