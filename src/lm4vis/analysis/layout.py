"""Where tokens sit in the input: the one thing a new modality supplies to the analysis.

Maps are per-token scores. To compare them with a ground-truth mask the analysis needs three
things from the host's token layout, gathered in the `Layout` protocol:

- which tokens are not spatial (CLS, registers: ``num_prefix_tokens``, dropped first);
- how to paint a per-token score onto the input's space (``render``), where masks live;
- how much of each token a mask covers (``coverage``), to call a token foreground.

Images and videos use `GridLayout` (a patch grid, 2D or frames x 2D); point clouds use
`PointGroupLayout` (each point belongs to the group, i.e. token, of its nearest centre); motion
scenes use `PolylineLayout` (each token is one polyline: a track or a lane piece).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


PATCH_INTENSITY = "patch-intensity"  # reference map of grid layouts
CENTRE_PROXIMITY = "centre-proximity"  # reference map of point-group layouts
FOCAL_PROXIMITY = "focal-proximity"  # reference map of polyline layouts


@runtime_checkable
class Layout(Protocol):
    """How a host's tokens map to its input.

    ``render`` and ``coverage`` are inverse views of the same assignment: a token's score is
    painted onto the input elements it covers, and a mask is averaged over those elements.
    """

    num_prefix_tokens: int

    @property
    def num_patches(self) -> int:
        """Number of spatial tokens (after the prefix)."""
        ...

    def render(self, scores: Tensor, size: tuple[int, ...]) -> Tensor:
        """Per-token scores ``(B, P)`` -> input-space values ``(B, *size)``."""
        ...

    def coverage(self, mask: Tensor) -> Tensor:
        """Input-space mask ``(B, *size)`` -> fraction of each token covered ``(B, P)``."""
        ...


def patch_tokens(tokens: Tensor, layout: Layout | None) -> Tensor:
    """Drop the prefix tokens: ``(B, N, ...) -> (B, P, ...)``.

    Args:
        tokens: features or scores with the token axis at dim 1.
        layout: the host's layout; None keeps every token (no spatial meaning assumed).
    """
    if layout is None:
        return tokens
    n_prefix, n_patch = layout.num_prefix_tokens, layout.num_patches
    if tokens.shape[1] != n_prefix + n_patch:
        raise ValueError(
            f"got {tokens.shape[1]} tokens but the layout has {n_prefix} prefix + {n_patch} "
            "patch tokens; build the layout from the same model and input size"
        )
    return tokens[:, n_prefix:]


def _frames_side_by_side(x: Tensor) -> Tensor:
    """``(T, H, W[, 3])`` -> ``(H, T * W + T - 1[, 3])``, frames left to right with a one-pixel
    gap of the frames' maximum between them; 2-D images (``(H, W[, 3])``) as they are."""
    if x.dim() == 2 or (x.dim() == 3 and x.shape[-1] == 3):
        return x
    gap = torch.full((x.shape[1], 1, *x.shape[3:]), float(x.max()), dtype=x.dtype)
    parts = []
    for t, frame in enumerate(x):
        parts += [gap, frame] if t else [frame]
    return torch.cat(parts, dim=1)


@dataclass(frozen=True)
class GridLayout:
    """Prefix tokens then a regular grid of patches, row-major (timm ViTs; videos as T x H x W).

    Args:
        num_prefix_tokens: CLS and register tokens before the grid.
        grid: patches per axis, e.g. ``(8, 8)`` for a 32 px image in 4 px patches, or
            ``(T, H, W)`` for tubelets of a video.
    """

    num_prefix_tokens: int
    grid: tuple[int, ...]

    def __post_init__(self) -> None:
        if not 1 <= len(self.grid) <= 3 or any(g <= 0 for g in self.grid):
            raise ValueError(f"grid={self.grid} must have 1 to 3 positive sizes")
        if self.num_prefix_tokens < 0:
            raise ValueError(f"num_prefix_tokens={self.num_prefix_tokens} must be >= 0")

    @property
    def num_patches(self) -> int:
        return math.prod(self.grid)

    def _check(self, size: tuple[int, ...]) -> None:
        if len(size) != len(self.grid):
            raise ValueError(
                f"input size {tuple(size)} has {len(size)} axes but the token grid {self.grid} "
                f"has {len(self.grid)}; give a mask of the input's spatial shape"
            )

    def render(self, scores: Tensor, size: tuple[int, ...]) -> Tensor:
        self._check(tuple(size))
        grid = scores.reshape(scores.shape[0], 1, *self.grid).float()
        # Nearest: each input element takes the score of the patch it lies in, so a
        # thresholded render is exactly the render of the thresholded scores.
        return F.interpolate(grid, size=tuple(size), mode="nearest")[:, 0]

    def coverage(self, mask: Tensor) -> Tensor:
        self._check(tuple(mask.shape[1:]))
        pooled = F.adaptive_avg_pool2d if len(self.grid) == 2 else (
            F.adaptive_avg_pool1d if len(self.grid) == 1 else F.adaptive_avg_pool3d)
        return pooled(mask[:, None].float(), self.grid).flatten(1)

    # -- optional parts of a layout (see `concat_layouts`, `reference_map`, `draw_example`) --
    @staticmethod
    def concat(layouts: list[GridLayout]) -> GridLayout:
        """One grid serves every batch: the layouts of several batches are the first one."""
        if any(lay != layouts[0] for lay in layouts[1:]):
            raise ValueError(f"batches have different token grids: {sorted({lay.grid for lay in layouts})}")
        return layouts[0]

    def take(self, k: int) -> GridLayout:
        return self

    def reference(self, inputs: Tensor) -> tuple[str, Tensor]:
        """``patch-intensity``: each patch's mean input value (brightness alone)."""
        return PATCH_INTENSITY, self.coverage(inputs.detach().float().mean(dim=1).cpu())

    @property
    def input_title(self) -> str:
        """Title of the input column: a video's frames are drawn side by side."""
        return (f"each clip: its frames left to right ({self.grid[0]} tubelet steps of tokens)"
                if len(self.grid) == 3 else "image")

    def draw(self, ax: Any, example: Tensor, values: Tensor | None = None, cmap: str = "inferno") -> None:
        """The model input ``(C, *S)`` (``values`` None), or input-space values ``(*S,)`` in [0, 1].
        A video (``S = (T, H, W)``) is drawn as its T frames side by side, as the paper's Fig. 5
        draws a clip's token maps frame by frame."""
        if values is None:
            x = example.float()
            x = (x - x.min()) / (x.max() - x.min()).clamp_min(1e-12)
            img = x[0] if x.shape[0] != 3 else x.movedim(0, -1)
            ax.imshow(_frames_side_by_side(img).numpy(), cmap=None if x.shape[0] == 3 else "gray")
        else:
            ax.imshow(_frames_side_by_side(values.float()).numpy(), cmap=cmap, vmin=0, vmax=1,
                      interpolation="nearest")


@dataclass(frozen=True)
class PointGroupLayout:
    """Point-cloud tokens: each token is a group of points (Point-BERT style patches).

    Args:
        num_prefix_tokens: CLS tokens before the groups.
        assignment: ``(B, M)`` long tensor, the group (token) index of every point, e.g. its
            nearest group centre. Masks are per point: ``(B, M)``.
        num_groups: number of group tokens.
    """

    num_prefix_tokens: int
    assignment: Tensor
    num_groups: int

    #: Column title of the input in the example grid.
    input_title = "cloud (x-y, colour: z)"

    @property
    def num_patches(self) -> int:
        return self.num_groups

    def render(self, scores: Tensor, size: tuple[int, ...]) -> Tensor:
        if tuple(size) != tuple(self.assignment.shape[1:]):
            raise ValueError(f"size {tuple(size)} must be the number of points {self.assignment.shape[1]}")
        return scores.float().gather(1, self.assignment)

    def coverage(self, mask: Tensor) -> Tensor:
        b = mask.shape[0]
        total = torch.zeros(b, self.num_groups).scatter_add_(1, self.assignment, mask.float())
        count = torch.zeros(b, self.num_groups).scatter_add_(
            1, self.assignment, torch.ones_like(mask, dtype=torch.float))
        return total / count.clamp_min(1.0)

    @staticmethod
    def concat(layouts: list[PointGroupLayout]) -> PointGroupLayout:
        """The groups of several batches, one after the other (clouds of one size)."""
        first = layouts[0]
        if any(lay.num_groups != first.num_groups or lay.num_prefix_tokens != first.num_prefix_tokens
               for lay in layouts):
            raise ValueError("batches have different numbers of groups or prefix tokens")
        return PointGroupLayout(first.num_prefix_tokens, torch.cat([lay.assignment for lay in layouts]),
                                first.num_groups)

    def take(self, k: int) -> PointGroupLayout:
        """The layout of the first ``k`` clouds."""
        return PointGroupLayout(self.num_prefix_tokens, self.assignment[:k], self.num_groups)

    def reference(self, inputs: Tensor) -> tuple[str, Tensor]:
        """``centre-proximity``: minus each point's distance to its cloud's mean, averaged over
        a group's points (where the object sits when clutter and outliers lie around it)."""
        xyz = inputs.detach().float().cpu()[..., :3]
        dist = (xyz - xyz.mean(dim=1, keepdim=True)).norm(dim=-1)
        return CENTRE_PROXIMITY, self.coverage(-dist)

    def draw(self, ax: Any, example: Tensor, values: Tensor | None = None, cmap: str = "inferno") -> None:
        """A cloud ``(N, C)`` projected on x-y: coloured by depth (z) when ``values`` is None,
        else by the per-point values in [0, 1]."""
        xyz = example.float()[:, :3]
        order = xyz[:, 2].argsort()  # far points first, so near ones are drawn on top
        xyz = xyz[order]
        if values is None:
            ax.scatter(xyz[:, 0].numpy(), xyz[:, 1].numpy(), c=xyz[:, 2].numpy(), cmap="viridis", s=2)
        else:
            ax.scatter(xyz[:, 0].numpy(), xyz[:, 1].numpy(), c=values.float()[order].numpy(), cmap=cmap,
                       vmin=0, vmax=1, s=2)
        ax.set_facecolor("0.6")  # white (mask) and black points both show
        ax.set_aspect("equal")


@dataclass(frozen=True)
class PolylineLayout:
    """Motion tokens: one per polyline (VectorNet), so "input space" is the polylines themselves.

    A mask is per polyline ``(B, P)`` (the simulator's ``relevant``); a score is painted on the
    polyline it belongs to. Padding polylines (``polyline_mask``) are neither scored nor drawn.

    Args:
        polyline_mask: ``(B, P)`` bool, True for padding polylines.
        vector_mask: ``(B, P, V)`` bool, True for padding vectors.
    """

    polyline_mask: Tensor
    vector_mask: Tensor
    num_prefix_tokens: int = 0

    #: Column title of the input in the example figures.
    input_title = "scene (focal frame, colour: polyline type)"

    @property
    def num_patches(self) -> int:
        return self.polyline_mask.shape[1]

    def render(self, scores: Tensor, size: tuple[int, ...]) -> Tensor:
        if tuple(size) != (self.num_patches,):
            raise ValueError(f"size {tuple(size)} must be the number of polylines ({self.num_patches},)")
        return scores.float().masked_fill(self.polyline_mask, 0.0)

    def coverage(self, mask: Tensor) -> Tensor:
        return (mask.bool() & ~self.polyline_mask).float()

    @staticmethod
    def concat(layouts: list[PolylineLayout]) -> PolylineLayout:
        """The scenes of several batches, padded to the most polylines and vectors of any."""
        p = max(lay.polyline_mask.shape[1] for lay in layouts)
        v = max(lay.vector_mask.shape[2] for lay in layouts)
        poly = [F.pad(lay.polyline_mask, (0, p - lay.polyline_mask.shape[1]), value=True) for lay in layouts]
        vec = [F.pad(lay.vector_mask, (0, v - lay.vector_mask.shape[2], 0, p - lay.vector_mask.shape[1]),
                     value=True) for lay in layouts]
        return PolylineLayout(torch.cat(poly), torch.cat(vec))

    def take(self, k: int) -> PolylineLayout:
        return PolylineLayout(self.polyline_mask[:k], self.vector_mask[:k])

    def reference(self, inputs: Tensor) -> tuple[str, Tensor]:
        """``focal-proximity``: minus the distance from the focal agent's last observed position
        (the frame's origin) to the polyline's nearest vector end (where it is, nothing else)."""
        from ..data.motion.vectorize import FEATURES

        x, y = FEATURES.index("x_end"), FEATURES.index("y_end")
        ends = inputs.detach().float().cpu()[..., [x, y]]
        dist = ends.norm(dim=-1).masked_fill(self.vector_mask.cpu(), float("inf")).amin(dim=-1)
        return FOCAL_PROXIMITY, (-dist).masked_fill(self.polyline_mask.cpu(), 0.0)

    def draw(self, ax: Any, example: Tensor, values: Tensor | None = None, cmap: str = "viridis",
             index: int = 0) -> None:
        """One scene's polylines ``(P, V, F)`` in the focal frame: coloured by polyline type when
        ``values`` is None, else by the per-polyline values ``(P,)`` in [0, 1] (NaN: drawn black,
        e.g. the focal track, which a relevance map does not score). ``index`` is the scene's row
        in this layout (its masks)."""
        import matplotlib.pyplot as plt

        from ..data.motion.vectorize import FEATURES

        x0, y0, x1, y1 = (FEATURES.index(n) for n in ("x_start", "y_start", "x_end", "y_end"))
        types = [FEATURES.index(f"type_{n}") for n in ("focal", "agent", "av", "lane")]
        palette = ("black", "tab:blue", "tab:purple", "0.6")  # focal, agent, av, lane
        colours = plt.get_cmap(cmap)
        real = ~self.polyline_mask[index]
        for p in torch.nonzero(real).flatten().tolist():
            v = example[p, ~self.vector_mask[index, p]].float()
            if not len(v):
                continue
            xs = torch.stack([v[:, x0], v[:, x1]]).numpy()
            ys = torch.stack([v[:, y0], v[:, y1]]).numpy()
            if values is None:
                colour = palette[int(v[0, types].argmax())]
            else:
                colour = "black" if values[p].isnan() else colours(float(values[p]))
            ax.plot(xs, ys, color=colour, linewidth=2.5 if p == 0 else 1.5, solid_capstyle="round")
        ax.set_aspect("equal", adjustable="datalim")


def concat_layouts(layouts: list[Layout]) -> Layout:
    """One layout for the examples of several batches, in order (``concat`` of the layout's
    class; a layout without it must be the same for every batch)."""
    if not layouts:
        raise ValueError("no layouts to join")
    concat = getattr(type(layouts[0]), "concat", None)
    if concat is not None:
        return concat(layouts)
    if any(lay is not layouts[0] and lay != layouts[0] for lay in layouts[1:]):
        raise ValueError(f"{type(layouts[0]).__name__} differs between batches and has no concat()")
    return layouts[0]


def take_layout(layout: Layout, k: int) -> Layout:
    """The layout of the first ``k`` examples (a per-example layout has ``take``)."""
    take = getattr(layout, "take", None)
    return layout if take is None else take(k)


def reference_map(layout: Layout, inputs: Tensor) -> tuple[str, Tensor] | None:
    """The layout's input-only reference map ``(name, (B, P))`` (what a feature map must beat:
    patch brightness for images, closeness to the cloud's centre for points), or None."""
    reference = getattr(layout, "reference", None)
    return None if reference is None else reference(inputs)


def draw_example(layout: Layout, ax: Any, example: Tensor, values: Tensor | None = None,
                 cmap: str = "inferno") -> None:
    """Draw one example on a matplotlib axis: its input (``values`` None) or input-space values
    in [0, 1] (a mask, a rendered map). Layouts without ``draw`` are drawn as grids."""
    draw = getattr(layout, "draw", None)
    if draw is None:
        GridLayout.draw(layout, ax, example, values, cmap)  # type: ignore[arg-type]
    else:
        draw(ax, example, values, cmap)


def layout_of(model: nn.Module, batch: Any = None, host_kind: str | None = None) -> Layout:
    """The token layout of a host for a batch (point groups change from batch to batch).

    Args:
        model: a host built by `lm4vis.hosts.build_model`.
        batch: the batch the layout is wanted for (hosts whose layout is per batch need it).
        host_kind: the registered host; None takes the kind `build_host` recorded on the
            model (a model built otherwise is taken for a timm ViT).
    """
    from ..hosts.build import HOST_KIND_ATTR
    from ..registry import HOSTS

    kind = host_kind or getattr(model, HOST_KIND_ATTR, "timm-vit")
    layout = HOSTS.get(kind).get("layout")
    if layout is None:
        raise ValueError(f"host {kind!r} declares no token layout; register it with layout=...")
    return layout(model, batch)


__all__ = ["Layout", "GridLayout", "PointGroupLayout", "PolylineLayout", "layout_of", "patch_tokens", "concat_layouts",
           "take_layout", "reference_map", "draw_example", "PATCH_INTENSITY", "CENTRE_PROXIMITY",
           "FOCAL_PROXIMITY"]
