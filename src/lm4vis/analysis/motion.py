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
`analyze_motion` is what `lm4vis analyze` runs on a ``vectornet`` run (the host registers it as
its ``analysis``): every map's mean AUROC and top-1 hit rate over the validation scenes, for the
run and its baseline, paired by scene, next to an input-only reference (``focal-proximity``:
closeness to the focal agent) and chance; ``scenes.png`` draws a few scenes by the run's map
and the baseline's at the same depth.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..data.motion.vectorize import FEATURES
from .hooks import capture
from .layout import FOCAL_PROXIMITY, layout_of

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


def scene_top1(scores: Tensor, relevant: Tensor, real: Tensor) -> Tensor:
    """Per scene, 1 when the highest-scoring polyline (the focal one excluded) is relevant.

    Args:
        scores, relevant, real: as in `scene_auroc`.

    Returns:
        ``(B,)`` float64, NaN where `scene_auroc` is NaN (so both average over the same scenes).
    """
    candidates = real.clone()
    candidates[:, 0] = False
    top = scores.double().masked_fill(~candidates, float("-inf")).argmax(dim=1)
    hit = relevant.gather(1, top[:, None])[:, 0].double()
    pos, neg = (relevant & candidates).any(1), (~relevant & candidates).any(1)
    return hit.masked_fill(~(pos & neg), float("nan"))


def _chance_top1(relevant: Tensor, real: Tensor) -> Tensor:
    """Per scene, the top-1 hit rate of a random ranking: the share of relevant candidates."""
    candidates = real.clone()
    candidates[:, 0] = False
    pos = (relevant & candidates).sum(1).double()
    total = candidates.sum(1).double()
    out = pos / total.clamp_min(1.0)
    return out.masked_fill(~((pos > 0) & (pos < total)), float("nan"))


def _stats(values: Tensor) -> dict[str, Any]:
    from ..train.report import mean_ci

    v = values[~values.isnan()]
    return mean_ci(v.tolist())


def _fmt(stats: dict[str, Any], digits: int = 3) -> str:
    if stats.get("mean") is None:
        return "–"
    if stats.get("ci_low") is None:
        return f"{stats['mean']:.{digits}f}"
    return f"{stats['mean']:.{digits}f} [{stats['ci_low']:.{digits}f}, {stats['ci_high']:.{digits}f}]"


def _scene_batches(cfg: Any, split: str, num_scenes: int, batch_size: int) -> list[dict[str, Any]]:
    """The first ``num_scenes`` scenes of ``split``, collated as the run's task collates them."""
    from ..tasks.base import build_task
    from ..train.datamodule import build_source

    source = build_source(cfg)
    task = build_task(cfg, source.info)
    data = source.dataset(split, train=False)
    n = min(num_scenes, len(data))
    batches = [task.collate([data[i] for i in range(b, min(n, b + batch_size))]) for b in range(0, n, batch_size)]
    return [b for b in batches if "vectors" in b]  # a batch whose scenes were all skipped has none


def motion_rows_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: one row per model and map, AUROC and top-1 hit rate with 95% t intervals."""
    lines = ["| model | map | AUROC relevant vs other [95% CI] | top-1 is relevant [95% CI] | scenes |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['map']} | {_fmt(r['auroc'])} | {_fmt(r['top1'])} | {r['auroc']['n']} |")
    return "\n".join(lines)


def motion_deltas_table(deltas: list[dict[str, Any]]) -> str:
    """Markdown: paired differences (run - baseline) per scene, at the same depth."""
    lines = ["| map | baseline map | ΔAUROC [95% CI] | Δtop-1 [95% CI] | scenes |", "|---|---|---|---|---|"]
    for d in deltas:
        a, t = d["auroc"], d["top1"]
        ci = (lambda s: "–" if s["mean"] is None else
              f"{s['mean']:+.3f}" + ("" if s["ci_low"] is None else f" [{s['ci_low']:+.3f}, {s['ci_high']:+.3f}]"))
        lines.append(f"| {d['map']} | {d['against']} | {ci(a)} | {ci(t)} | {a['n']} |")
    return "\n".join(lines)


def plot_scenes(path: str | Path, batch: dict[str, Any], layout: Any, panels: list[tuple[str, Tensor]],
                indices: Sequence[int]) -> Path:
    """A figure of scenes (rows) by maps (columns): each polyline coloured by its token's score
    (min-max over the scene's polylines but the focal track, which is black; yellow high), the
    relevant ones outlined red, the focal agent's future dashed; the first column shows the
    scene by polyline type (black focal, blue agents, grey lanes).

    Args:
        path: the image file.
        batch: a motion batch.
        layout: its token layout (`layout_of`: the host's, a `PolylineLayout`), which draws.
        panels: ``(title, scores (B, P))`` per column after the scene's own.
        indices: the scenes of the batch drawn.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, cols = len(indices), 1 + len(panels)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.4 * rows), squeeze=False)
    relevant = batch.get("relevant")
    for r, b in enumerate(indices):
        real = ~batch["polyline_mask"][b]
        for c in range(cols):
            ax = axes[r][c]
            if relevant is not None:  # outline what decides the focal future, under the colours
                for p in torch.nonzero(relevant[b] & real).flatten().tolist():
                    v = batch["vectors"][b, p, ~batch["vector_mask"][b, p]]
                    ax.plot(torch.stack([v[:, _X0], v[:, _X1]]).numpy(), torch.stack([v[:, _Y0], v[:, _Y1]]).numpy(),
                            color="red", linewidth=6, alpha=0.3, solid_capstyle="round")
            values = None
            if c:  # min-max over the polylines scored: the focal track (polyline 0) is not
                s = panels[c - 1][1][b].double()
                scored = real.clone()
                scored[0] = False
                lo, hi = s[scored].min(), s[scored].max()
                values = ((s - lo) / (hi - lo).clamp_min(1e-12)).clamp(0, 1)
                values[0] = float("nan")
            layout.draw(ax, batch["vectors"][b], values, index=b)
            future = batch["future"][b].numpy()
            ax.plot(future[:, 0], future[:, 1], "k--", linewidth=1)
            ax.set_xticks([]), ax.set_yticks([])
            if r == 0:
                ax.set_title(layout.input_title if not c else panels[c - 1][0], fontsize=8)
    fig.suptitle("polylines by token score (min-max per scene, yellow high; focal track black); red halo: "
                 "decides the focal future; dashed: focal future", fontsize=8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def analyze_motion(models: Sequence[tuple[str, nn.Module, Any]], labels: Sequence[str], opts: Any) -> dict[str, Any]:
    """`lm4vis analyze` on motion runs: which polylines each model's tokens single out, and
    whether those are the ones that decide the focal agent's future.

    Every model is run over the same scenes (the first run's validation split, or
    ``opts.split``): ``opts.num_images`` scenes in batches of ``opts.batch_size``. Rows: each
    map's mean per-scene AUROC and top-1 hit rate (`scene_auroc`, `scene_top1`) with 95% t
    intervals over scenes, then the references ``focal-proximity`` (input only) and ``random``
    (chance: AUROC 0.5, top-1 the share of relevant polylines). Deltas: the first model's map
    minus the second's at the same depth (`runner.counterpart`), paired by scene.

    Args:
        models: ``(run_dir, model, cfg)`` per run, the analysed run first.
        labels: a label per run (its variant).
        opts: `lm4vis.analysis.options.AnalyzeOptions`.

    Returns:
        ``{"out", "rows", "deltas", "report", "meta", "text"}``; ``analysis.md``,
        ``analysis.json`` and ``scenes.png`` are written to ``out``.
    """
    import json

    from .runner import counterpart

    run_dir, _, cfg0 = models[0]
    if opts.data is not None and opts.data != cfg0.data.name:
        raise ValueError(f"--data {opts.data}: a motion run is analysed on its own scenes ({cfg0.data.name}); "
                         "leave --data out")
    split = opts.split or cfg0.data.val_split
    batches = _scene_batches(cfg0, split, opts.num_images, opts.batch_size)
    if not batches:
        raise ValueError(f"the {split} split of {cfg0.data.name} gave no usable scene to analyse")
    has_truth = all("relevant" in b for b in batches)
    per_model: list[dict[str, Tensor]] = []
    first_maps: list[dict[str, Tensor]] = []
    for (path, model, cfg), label in zip(models, labels):
        if cfg.data.name != cfg0.data.name:
            raise ValueError(f"{path} was trained on {cfg.data.name} but {run_dir} on {cfg0.data.name}; "
                             "analyse runs of the same data")
        scores: dict[str, list[Tensor]] = {}
        for i, batch in enumerate(batches):
            maps = polyline_maps(model, batch)
            if i == 0:
                first_maps.append(maps)
            for name, s in maps.items():
                scores.setdefault(name, []).append(s)
        per_model.append(scores)

    rows: list[dict[str, Any]] = []
    per_scene: dict[tuple[str, str], tuple[Tensor, Tensor]] = {}
    ref_name = FOCAL_PROXIMITY
    if has_truth:
        for label, scores in zip(labels, per_model):
            for name, parts in scores.items():
                auc = torch.cat([scene_auroc(s, b["relevant"], ~b["polyline_mask"]) for s, b in zip(parts, batches)])
                top = torch.cat([scene_top1(s, b["relevant"], ~b["polyline_mask"]) for s, b in zip(parts, batches)])
                per_scene[(label, name)] = (auc, top)
                rows.append({"model": label, "map": name, "auroc": _stats(auc), "top1": _stats(top)})
        ref_auc, ref_top, chance = [], [], []
        for b in batches:
            real = ~b["polyline_mask"]
            ref_name, ref = layout_of(models[0][1], b).reference(b["vectors"])
            ref_auc.append(scene_auroc(ref, b["relevant"], real))
            ref_top.append(scene_top1(ref, b["relevant"], real))
            chance.append(_chance_top1(b["relevant"], real))
        rows.append({"model": "reference", "map": ref_name, "auroc": _stats(torch.cat(ref_auc)),
                     "top1": _stats(torch.cat(ref_top))})
        chance_top = torch.cat(chance)
        rows.append({"model": "reference", "map": "random",  # AUROC 0.5 on every scored scene
                     "auroc": _stats(torch.where(chance_top.isnan(), chance_top, 0.5)),
                     "top1": _stats(chance_top)})
    deltas: list[dict[str, Any]] = []
    if has_truth and len(models) > 1:
        for name in per_model[0]:
            other = counterpart(name)
            if (labels[1], other) not in per_scene:  # the baseline has no LM attention
                continue
            (a0, t0), (a1, t1) = per_scene[(labels[0], name)], per_scene[(labels[1], other)]
            deltas.append({"map": name, "against": other, "auroc": _stats(a0 - a1), "top1": _stats(t0 - t1)})

    out = Path(opts.out or Path(run_dir) / "analysis")
    out.mkdir(parents=True, exist_ok=True)
    show = opts.show or ("l2@post_lm" if "l2@post_lm" in first_maps[0] else "l2@last_block")
    if show not in first_maps[0]:
        raise ValueError(f"--show {show} is not a map of this run; maps: {', '.join(first_maps[0])}")
    panels = [(f"{labels[0]}: {show}", first_maps[0][show])]
    if len(models) > 1 and counterpart(show) in first_maps[1]:
        panels.append((f"{labels[1]}: {counterpart(show)}", first_maps[1][counterpart(show)]))
    batch0 = batches[0]
    if has_truth:  # scenes where relevance can be told from the rest
        ok = ~scene_auroc(first_maps[0][show], batch0["relevant"], ~batch0["polyline_mask"]).isnan()
        candidates = torch.nonzero(ok).flatten().tolist()
    else:
        candidates = list(range(len(batch0["vectors"])))
    figure = plot_scenes(out / "scenes.png", batch0, layout_of(models[0][1], batch0), panels,
                         candidates[: opts.num_examples])

    meta = {
        "run": str(run_dir), "against": str(models[1][0]) if len(models) > 1 else None,
        "checkpoint": opts.checkpoint, "data": cfg0.data.name, "split": split,
        "num_scenes": int(sum(len(b["vectors"]) for b in batches)), "ground_truth": has_truth,
        "grid_map": show, "files": [figure.name],
        "models": {lab: {"variant": cfg.block.variant, "run": str(p)} for lab, (p, _, cfg) in zip(labels, models)},
    }
    text = _motion_markdown(meta, rows, deltas, ref_name)
    md = out / "analysis.md"
    md.write_text(text)
    (out / "analysis.json").write_text(json.dumps({"meta": meta, "rows": rows, "deltas": deltas}, indent=2))
    printed = "\n\n".join(t for t in (motion_rows_table(rows) if rows else
                                       "no ground truth of what decides the focal future in these scenes "
                                       f"({cfg0.data.name}); only sim-traffic has it: maps drawn, not scored",
                                       motion_deltas_table(deltas) if deltas else "") if t)
    return {"out": out, "rows": rows, "deltas": deltas, "report": md, "meta": meta, "text": printed,
            "files": ["analysis.md", "analysis.json", figure.name]}


def _motion_markdown(meta: dict[str, Any], rows: list[dict[str, Any]], deltas: list[dict[str, Any]],
                     ref_name: str) -> str:
    out = [
        "# Information filtering on motion scenes: do the tokens single out what decides the future?",
        "",
        f"- run: `{meta['run']}`" + (f" (against baseline `{meta['against']}`)" if meta.get("against") else ""),
        f"- scenes: {meta['num_scenes']} of `{meta['data']}` split `{meta['split']}`, the same for every model",
        "- per scene, the focal agent's own polyline excluded: *AUROC* is how often a polyline that "
        "decides the focal future (the simulator's `relevant`: lanes it drives, the agent it follows, "
        "the one it yields to) outscores one that does not (0.5 = chance); *top-1* is whether the "
        "highest-scoring polyline is one of them; means over scenes with a 95% t interval",
        f"- reference rows: `{ref_name}` is minus the distance of each polyline to the focal agent "
        "(where it is, nothing learned); `random` is chance (top-1: the share of relevant polylines)",
        "",
    ]
    if rows:
        out.append(motion_rows_table(rows))
    else:
        out.append("These scenes carry no ground truth of what decides the focal future (only sim-traffic "
                   "has it): the maps are drawn, not scored.")
    if deltas:
        out += ["", "## Paired difference against the baseline (same scenes, same depth)", "",
                motion_deltas_table(deltas)]
    out += ["", "## Figures", ""] + [f"- `{f}`" for f in meta["files"]]
    return "\n".join(out) + "\n"


__all__ = ["polyline_maps", "scene_auroc", "scene_top1", "relevance", "draw_scene", "plot_scenes",
           "analyze_motion", "motion_rows_table", "motion_deltas_table", "INPUTS"]
