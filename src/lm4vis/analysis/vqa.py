"""Information filtering in a VQA model: which image tokens does the frozen block amplify for a
question, and are they the objects the question names?

`lm4vis analyze` sends a run whose host registers ``analyze`` (``fusion-vqa``) here. The model
runs over validation questions of shapes-vqa, whose generator knows each question's *named*
objects (``what shape is the red object?``: the red one) and its *evidence* (the objects whose
attributes decide the answer: for ``closest`` questions, the closest object). The visual tokens
are read with removable forward hooks at the points the host declares (`fusion_vqa_stages`):

- ``l2@visual``: the L2 norm of each image token after the ``visual`` slot (the block's output
  in a ``visual``/``both`` run; the image encoder's output in a baseline). These tokens are
  computed from the image alone, so this map cannot depend on the question;
- ``l2@fused``: the same after the ``fusion`` slot: the visual stream after co-attention with the
  question (the block's output in a ``fusion``/``both`` run);
- ``amp@<slot>``: ``|out| / |in|`` of each token through a slot that holds a block: what the
  block amplifies (absent where the slot is empty).

Each map is scored per question by an AUROC: the chance that the token under a named (or
evidence) object's centre outscores another patch token (``vs-rest``) or the token under another
object (``vs-objects``: is it the *named* object, not objects in general). 0.5 is chance. Means
come with a 95% t interval over questions, and a second run (``--against``, the baseline) is
scored on the same questions with paired differences per map.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

#: Which objects a question's map is scored against.
TARGETS: tuple[str, ...] = ("named", "evidence")
#: The host's declared points read here: (map stage, slot input point, slot output point).
SLOTS: tuple[tuple[str, str, str, str], ...] = (
    ("visual", "visual_in", "visual_out", "image_lm_slot"),
    ("fused", "fused_in", "fused_out", "fusion_lm_slot"),
)
_INPUTS = ("image", "input_ids", "text_padding_mask")


@contextmanager
def read_visual_tokens(model: nn.Module) -> Iterator[dict[str, Tensor]]:
    """Record the visual tokens at the host's declared slot points during forward passes.

    Yields a dict ``point -> tokens (B, N, C)`` (float32, CPU), overwritten by each forward; the
    hooks only read and are removed on exit.

    Args:
        model: a ``fusion-vqa`` host, with or without blocks.
    """
    from .hooks import host_points

    points = host_points(model)
    seen: dict[str, Tensor] = {}
    handles = []
    try:
        for _, p_in, p_out, _ in SLOTS:
            for name in (p_in, p_out):
                path, side = points[name]
                module = model.get_submodule(path)
                if side == "input":
                    handles.append(module.register_forward_pre_hook(
                        lambda m, args, name=name: seen.__setitem__(name, args[0].detach().float().cpu())))
                else:
                    handles.append(module.register_forward_hook(
                        lambda m, args, out, name=name: seen.__setitem__(name, out.detach().float().cpu())))
        yield seen
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def token_maps(model: nn.Module, batch: dict[str, Any]) -> dict[str, Tensor]:
    """Per-token maps ``(B, N)`` (CLS included) of one batch; see the module docstring."""
    model.eval()
    with read_visual_tokens(model) as seen:
        model(*(batch[k] for k in _INPUTS))
    maps = {}
    for stage, p_in, p_out, slot in SLOTS:
        out = seen[p_out].norm(dim=-1)
        maps[f"l2@{stage}"] = out
        if model.get_submodule(slot).filled:
            maps[f"amp@{stage}"] = out / seen[p_in].norm(dim=-1).clamp_min(1e-12)
    return maps


def object_tokens(boxes: Tensor, grid: tuple[int, int], image_size: int) -> Tensor:
    """The patch token under each object's centre: int64 ``(B, O)``, row-major over ``grid``.

    Args:
        boxes: ``(B, O, 4)`` pixel boxes (x0, y0, x1, y1).
        grid: patches per axis (rows, columns).
        image_size: side of the image the boxes are in.
    """
    cx, cy = (boxes[..., 0] + boxes[..., 2]) / 2, (boxes[..., 1] + boxes[..., 3]) / 2
    col = (cx * grid[1] / image_size).long().clamp(0, grid[1] - 1)
    row = (cy * grid[0] / image_size).long().clamp(0, grid[0] - 1)
    return row * grid[1] + col


def question_auroc(scores: Tensor, positive: Tensor, negative: Tensor) -> Tensor:
    """Per question, P(a positive token outscores a negative one), ties one half; NaN without both.

    Args:
        scores: ``(B, P)`` patch-token scores.
        positive, negative: ``(B, P)`` bool.
    """
    out = torch.full((scores.shape[0],), float("nan"), dtype=torch.float64)
    for b in range(scores.shape[0]):
        pos, neg = scores[b, positive[b]].double(), scores[b, negative[b]].double()
        if len(pos) and len(neg):
            diff = pos[:, None] - neg[None, :]
            out[b] = ((diff > 0).double() + 0.5 * (diff == 0).double()).mean()
    return out


def score_batch(maps: dict[str, Tensor], batch: dict[str, Any], grid: tuple[int, int],
                image_size: int) -> dict[tuple[str, str, str], Tensor]:
    """AUROCs ``(map, target, against) -> (B,)`` of one batch's maps (prefix token dropped)."""
    n_patches = grid[0] * grid[1]
    tokens = object_tokens(batch["boxes"], grid, image_size)
    b = tokens.shape[0]
    rows = torch.arange(b)[:, None].expand_as(tokens)
    any_object = torch.zeros(b, n_patches, dtype=torch.bool)
    any_object[rows, tokens] = True
    out = {}
    for target in TARGETS:
        chosen = batch[f"{target}_objects"]
        positive = torch.zeros(b, n_patches, dtype=torch.bool)
        positive[rows[chosen], tokens[chosen]] = True
        others = any_object & ~positive
        for name, m in maps.items():
            patches = m[:, -n_patches:]
            out[(name, target, "vs-rest")] = question_auroc(patches, positive, ~positive)
            out[(name, target, "vs-objects")] = question_auroc(patches, positive, others)
    return out


def _summary(values: Tensor) -> dict[str, Any]:
    from ..train.report import mean_ci

    v = values[~values.isnan()]
    return {**mean_ci(v.tolist()), "questions": int(v.numel())}


def _label(cfg: Any, path: Path) -> str:
    where = "" if cfg.block.variant == "baseline" else f" ({cfg.block.where})"
    return f"{cfg.block.variant}{where}"


def draw_examples(path: Path, batch: dict[str, Any], questions: list[str], panels: list[tuple[str, Tensor]],
                  grid: tuple[int, int], mean: list[float], std: list[float], num: int) -> Path:
    """Rows of questions: the image with the named objects outlined, then each map on the patch grid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    num = min(num, len(questions))
    fig, axes = plt.subplots(num, 1 + len(panels), figsize=(2.1 * (1 + len(panels)), 2.3 * num), squeeze=False)
    m, s = torch.tensor(mean).view(3, 1, 1), torch.tensor(std).view(3, 1, 1)
    n_patches = grid[0] * grid[1]
    for r in range(num):
        image = (batch["image"][r] * s + m).clamp(0, 1).permute(1, 2, 0).numpy()
        ax = axes[r, 0]
        ax.imshow(image)
        for k in batch["named_objects"][r].nonzero().flatten().tolist():
            x0, y0, x1, y1 = batch["boxes"][r, k].tolist()
            ax.add_patch(Rectangle((x0 - 1, y0 - 1), x1 - x0 + 1, y1 - y0 + 1, fill=False, color="white", lw=1.5))
        ax.set_title(questions[r], fontsize=6)
        for c, (title, scores) in enumerate(panels, start=1):
            ax = axes[r, c]
            ax.imshow(image, alpha=0.45)
            heat = scores[r, -n_patches:].reshape(grid).numpy()
            ax.imshow(heat, cmap="viridis", alpha=0.6, extent=(0, image.shape[1], image.shape[0], 0),
                      interpolation="nearest")
            if r == 0:
                ax.set_title(title, fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("visual token maps (yellow high); the question's named objects outlined", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def analyze_vqa_runs(models: Any, labels: Any = None, options: Any = None) -> dict[str, Any]:
    """The token-map analysis of one VQA run (and a second one, usually its baseline): the
    ``analysis`` the ``fusion-vqa`` host registers, which `lm4vis.analysis.analyze_runs` calls.

    Args:
        models: ``(run_dir, model, cfg)`` per run, the analysed run first: trained
            ``fusion-vqa`` runs on shapes-vqa, scored on the same questions.
        labels: unused (each run is labelled by its variant).
        options: `lm4vis.analysis.AnalyzeOptions` (``checkpoint``, ``split``, ``num_images``:
            questions, ``batch_size``, ``num_examples``, ``out``).

    Returns:
        ``{"out", "rows", "deltas", "report", "meta", "text", "files"}``.
    """
    from ..hosts.fusion import fusion_vqa_layout
    from ..tasks.base import build_task
    from ..train.datamodule import build_source
    from ..train.report import mean_ci
    from .options import AnalyzeOptions

    opts = options or AnalyzeOptions()
    runs = [(Path(path), model, cfg) for path, model, cfg in models]
    run_dir = runs[0][0]
    against = runs[1][0] if len(runs) > 1 else None
    cfg0 = runs[0][2]
    if cfg0.data.name != "shapes-vqa":
        raise ValueError(f"{run_dir} was trained on {cfg0.data.name!r}; the VQA token analysis needs the objects "
                         "each question names, which shapes-vqa knows: analyse a shapes-vqa run")
    split = opts.split if opts.split in ("val", "test") else cfg0.data.val_split
    source = build_source(cfg0, runs[0][0])
    task = build_task(cfg0, source.info)
    data = source.dataset(split, train=False)
    n = min(opts.num_images, len(data))
    batches = [task.collate([data[i] for i in range(b, min(n, b + opts.batch_size))])
               for b in range(0, n, opts.batch_size)]
    questions = [data.raw.question(i).text for i in range(min(n, opts.num_examples))]
    question_types = torch.cat([b["question_type"] for b in batches])

    per_run: list[tuple[str, dict[tuple[str, str, str], Tensor], dict[str, Tensor]]] = []
    for path, model, cfg in runs:
        if cfg.data != cfg0.data:
            raise ValueError(f"{path} and {runs[0][0]} were trained on different data; compare runs of one preset")
        layout = fusion_vqa_layout(model)
        scores: dict[tuple[str, str, str], list[Tensor]] = {}
        first_maps: dict[str, Tensor] = {}
        for k, batch in enumerate(batches):
            maps = token_maps(model, batch)
            if k == 0:
                first_maps = maps
            for key, v in score_batch(maps, batch, layout.grid, cfg.data.image_size).items():
                scores.setdefault(key, []).append(v)
        per_run.append((_label(cfg, path), {k: torch.cat(v) for k, v in scores.items()}, first_maps))

    rows = [{"model": label, "map": m, "target": t, "against": a, **_summary(v)}
            for label, scores, _ in per_run for (m, t, a), v in scores.items()]
    by_type = [{"model": label, "map": m, "target": t, "question_type": qt, **_summary(v[question_types == i])}
               for label, scores, _ in per_run for (m, t, a), v in scores.items() if a == "vs-objects"
               for i, qt in enumerate(source.info.question_types)]
    deltas = []
    if len(per_run) > 1:
        (label, scores, _), (b_label, b_scores, _) = per_run
        for key, v in scores.items():
            if key in b_scores:
                d = v - b_scores[key]
                d = d[~d.isnan()]
                deltas.append({"map": key[0], "target": key[1], "against": key[2], "minus": b_label,
                               **mean_ci(d.tolist()), "questions": int(d.numel())})

    out = Path(opts.out or Path(run_dir) / "analysis")
    out.mkdir(parents=True, exist_ok=True)
    panels = [(f"{label}: {name}", maps[name]) for label, _, maps in per_run for name in sorted(maps)]
    figure = draw_examples(out / "vqa_maps.png", batches[0], questions, panels, fusion_vqa_layout(runs[0][1]).grid,
                           cfg0.data.mean, cfg0.data.std, opts.num_examples)
    table = _table(rows, deltas)
    meta = {"run": str(run_dir), "against": None if against is None else str(against), "split": split,
            "questions": n, "checkpoint": opts.checkpoint, "files": [figure.name]}
    (out / "analysis.json").write_text(json.dumps({"meta": meta, "rows": rows, "by_question_type": by_type,
                                                   "deltas": deltas}, indent=1, default=_plain))
    report = out / "analysis.md"
    report.write_text(f"# VQA token maps\n\n{meta['questions']} {split} questions of shapes-vqa; AUROC of the "
                      "token under the named (or evidence) objects' centres against every other patch token "
                      "(vs-rest) and against the tokens of the scene's other objects (vs-objects); 0.5 is "
                      "chance, 95% t intervals over questions.\n\n" + table + f"\n\n![maps]({figure.name})\n")
    return {"out": out, "rows": rows, "deltas": deltas, "report": report, "meta": meta, "table": table,
            "text": table, "files": ["analysis.md", "analysis.json", figure.name], "by_question_type": by_type}


def _plain(x: Any) -> Any:
    return float(x) if isinstance(x, (float, int)) else str(x)


def _fmt(r: dict[str, Any]) -> str:
    if r["mean"] is None:
        return "n/a"
    ci = "" if r["ci_low"] is None else f" [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
    return f"{r['mean']:.3f}{ci}"


def _table(rows: list[dict[str, Any]], deltas: list[dict[str, Any]]) -> str:
    lines = ["| model | map | objects | AUROC vs rest | AUROC vs other objects | questions |",
             "|---|---|---|---|---|---|"]
    pairs: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in rows:
        pairs.setdefault((r["model"], r["map"], r["target"]), {})[r["against"]] = r
    for (model, m, t), v in pairs.items():
        lines.append(f"| {model} | {m} | {t} | {_fmt(v['vs-rest'])} | {_fmt(v['vs-objects'])} | "
                     f"{v['vs-rest']['questions']} |")
    if deltas:
        lines += ["", "| paired difference (run - baseline) | objects | vs | mean [95% CI] | questions |",
                  "|---|---|---|---|---|"]
        for d in deltas:
            lines.append(f"| {d['map']} | {d['target']} | {d['against']} | {_fmt(d)} | {d['questions']} |")
    return "\n".join(lines)


__all__ = ["TARGETS", "read_visual_tokens", "token_maps", "object_tokens", "question_auroc", "score_batch",
           "draw_examples", "analyze_vqa_runs"]
