"""Information filtering on motion scenes: do a model's tokens single out the polylines that
decide the focal agent's future?

The simulator knows what decides it (`lm4vis.data.motion.SimTraffic`'s ``relevant``: the lanes
the focal agent drives in the future, the agent it follows, the one it yields to). For every
validation scene, each map scores the scene's polylines (the focal agent's own excluded: it is
always polyline 0), and the AUROC says how often a relevant polyline outscores an irrelevant
one (0.5: chance; 1: every relevant polyline ranks first). Maps:

- ``l2@<stage>``: the L2 norm of each polyline token at a stage (`lm4vis.analysis.hooks`:
  ``post_lm`` for the LM block's output, ``last_block`` for the host's own last layer), the
  paper's feature-activation map;
- ``focal-attn@<source>``: the attention the focal token pays each polyline in an LM layer.

`draw_scene` paints one scene's polylines by a map, with the focal agent's future, on its map.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..data.motion.vectorize import FEATURES
from .hooks import capture

_X0, _Y0, _X1, _Y1 = (FEATURES.index(n) for n in ("x_start", "y_start", "x_end", "y_end"))
#: Model inputs of a motion batch, in the host's forward's order.
INPUTS = ("vectors", "vector_mask", "polyline_mask")


@torch.no_grad()
def polyline_maps(model: nn.Module, batch: dict[str, Any]) -> dict[str, Tensor]:
    """Per-polyline scores ``(B, P)`` of every feature stage and LM attention of ``model``.

    Args:
        model: a motion host (``vectornet``), with or without an LM block.
        batch: a motion batch (`lm4vis.data.motion.collate`).
    """
    model.eval()
    with capture(model, attention=True) as cap:
        model(*(batch[k] for k in INPUTS))
    maps = {f"l2@{stage}": tokens.norm(dim=-1) for stage, tokens in cap.features.items()}
    for source, probs in cap.attention.items():
        maps[f"focal-attn@{source}"] = probs[:, :, 0].mean(dim=1)  # the focal token's row, heads averaged
    return maps


def scene_auroc(scores: Tensor, relevant: Tensor, real: Tensor) -> Tensor:
    """Per scene, the probability that a relevant polyline outscores an irrelevant one.

    Args:
        scores: ``(B, P)`` per-polyline scores.
        relevant: ``(B, P)`` bool, the polylines that decide the focal future.
        real: ``(B, P)`` bool, polylines that are not padding.

    Returns:
        ``(B,)`` float64, NaN for scenes without both kinds of polyline (the focal one excluded).
    """
    out = torch.full((scores.shape[0],), float("nan"), dtype=torch.float64)
    candidates = real.clone()
    candidates[:, 0] = False  # the focal agent's own track
    for b in range(scores.shape[0]):
        s, pos = scores[b, candidates[b]].double(), relevant[b, candidates[b]]
        if pos.any() and (~pos).any():
            # ties count one half, as in the Mann-Whitney U statistic
            greater = (s[pos][:, None] > s[~pos][None]).double() + 0.5 * (s[pos][:, None] == s[~pos][None]).double()
            out[b] = greater.mean()
    return out


def relevance(model: nn.Module, batches: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Mean per-scene AUROC of every map, with a 95% t interval over scenes.

    Args:
        model: a motion host.
        batches: motion batches whose items carry ``relevant`` (the simulator's).
    """
    from ..train.report import mean_ci

    per_scene: dict[str, list[Tensor]] = {}
    for batch in batches:
        if "relevant" not in batch:
            raise ValueError("these scenes carry no ground truth of what decides the focal future; "
                             "the relevance analysis needs data.name=sim-traffic")
        real = ~batch["polyline_mask"]
        for name, scores in polyline_maps(model, batch).items():
            per_scene.setdefault(name, []).append(scene_auroc(scores, batch["relevant"], real))
    out = {}
    for name, values in per_scene.items():
        v = torch.cat(values)
        v = v[~v.isnan()]
        out[name] = {**mean_ci(v.tolist()), "scenes": int(v.numel())}
    return out


def draw_scene(batch: dict[str, Any], index: int, scores: Tensor, path: str | Path, title: str = "") -> None:
    """One scene's polylines coloured by a per-polyline map (min-max over the scene), relevant
    polylines outlined, the focal agent's future dashed; saved as an image.

    Args:
        batch: a motion batch.
        index: the scene in it.
        scores: ``(B, P)`` the map.
        path: the image file.
        title: the plot's title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    real = ~batch["polyline_mask"][index]
    s = scores[index, real].double()
    s = (s - s.min()) / (s.max() - s.min()).clamp_min(1e-12)
    vectors, pad = batch["vectors"][index, real], batch["vector_mask"][index, real]
    relevant = batch.get("relevant", torch.zeros_like(batch["polyline_mask"]))[index, real]
    fig, ax = plt.subplots(figsize=(6, 6))
    cmap = plt.get_cmap("viridis")
    for p in range(len(vectors)):
        v = vectors[p, ~pad[p]]
        xs = torch.stack([v[:, _X0], v[:, _X1]]).numpy()
        ys = torch.stack([v[:, _Y0], v[:, _Y1]]).numpy()
        if relevant[p]:
            ax.plot(xs, ys, color="red", linewidth=5, alpha=0.35, solid_capstyle="round")
        ax.plot(xs, ys, color=cmap(float(s[p])), linewidth=2.5 if p == 0 else 1.5)
    future = batch["future"][index].numpy()
    ax.plot(future[:, 0], future[:, 1], "k--", linewidth=1, label="focal future")
    ax.set_aspect("equal")
    ax.set_title(title or "polylines by map (yellow high); relevant outlined red", fontsize=9)
    ax.legend(fontsize=8, loc="lower right")
    fig.colorbar(plt.cm.ScalarMappable(cmap=cmap), ax=ax, fraction=0.04, label="score (min-max per scene)")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def analyze_motion_runs(run_dirs: Sequence[str | Path], scenes: int = 256, batch_size: int = 32,
                        out: str | Path | None = None) -> dict[str, Any]:
    """The relevance analysis of trained motion runs on their validation scenes.

    Args:
        run_dirs: run folders (``lm4vis train`` on sim-traffic), e.g. a frozen-lm run and the
            baseline of the same seed.
        scenes: validation scenes scored.
        batch_size: scenes per forward pass.
        out: folder for one drawn scene per run and map (None: no figures).

    Returns:
        ``{run_dir: {map: {mean, ci_low, ci_high, scenes, ...}}}``.
    """
    from ..tasks.base import build_task
    from ..train.datamodule import build_source
    from ..train.loading import load_run

    results: dict[str, Any] = {}
    for run_dir in run_dirs:
        model, cfg = load_run(run_dir)
        source = build_source(cfg, run_dir)
        task = build_task(cfg, source.info)
        val = source.dataset(cfg.data.val_split, train=False)
        n = min(scenes, len(val))
        batches = [task.collate([val[i] for i in range(b, min(n, b + batch_size))]) for b in range(0, n, batch_size)]
        results[str(run_dir)] = relevance(model, batches)
        if out is not None:
            for name, scores in polyline_maps(model, batches[0]).items():
                draw_scene(batches[0], 0, scores, Path(out) / f"{Path(run_dir).name}-{name}.png",
                           f"{Path(run_dir).name}: {name}")
    return results


__all__ = ["polyline_maps", "scene_auroc", "relevance", "draw_scene", "analyze_motion_runs", "INPUTS"]
