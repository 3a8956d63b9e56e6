"""Point-BERT's encoder (Yu et al., CVPR 2022) as an lm4vis host, and its released checkpoints.

A cloud becomes tokens in three steps: farthest point sampling picks ``num_groups`` centres and
each takes its ``group_size`` nearest points, relative to the centre (`PointGrouper`); a
mini-PointNet shared by all groups turns each neighbourhood into one feature
(`PointNetTokenizer`); a linear layer brings features to ``embed_dim``. A CLS token leads them,
an MLP of each centre's xyz is the position embedding (added before every block, as Point-BERT
does), and timm ViT blocks follow. The LM slot sits after the last block, where Pang et al. put
the frozen LM layer; then the final norm, and the head over [CLS, max over group tokens].

``load_pointbert_checkpoint`` reads Point-BERT's released files (``Point-BERT.pth`` from
pre-training, and the ModelNet40 / ScanObjectNN fine-tuned ones) by an explicit name table,
checking every shape and reporting every key it did not use.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from timm.layers import trunc_normal_
from timm.models.vision_transformer import Block
from torch import Tensor, nn

from ..ops import Groups, farthest_point_sample, group_points
from .pointbert_config import PointBERTConfig
from .slot import LMSlot

if TYPE_CHECKING:
    from ..analysis.layout import PointGroupLayout

log = logging.getLogger(__name__)


class PointGrouper(nn.Module):
    """FPS centres and their kNN neighbourhoods, relative to the centre.

    A forward hook on this module sees every batch's `Groups` (centres and member indices):
    the way for an analysis to map tokens back onto points.

    Args:
        num_groups: centres per cloud.
        group_size: neighbours per centre.
    """

    def __init__(self, num_groups: int, group_size: int) -> None:
        super().__init__()
        self.num_groups, self.group_size = num_groups, group_size

    def forward(self, points: Tensor) -> Groups:
        num_points = points.shape[1]
        if num_points < max(self.num_groups, self.group_size):
            raise ValueError(
                f"a cloud of {num_points} points cannot make {self.num_groups} groups of {self.group_size}; "
                f"give at least {max(self.num_groups, self.group_size)} points or shrink num_groups/group_size"
            )
        return group_points(points, self.centres(points), self.group_size)

    def centres(self, points: Tensor) -> Tensor:
        """Indices ``(B, num_groups)`` of the centre points: FPS, started at point 0 as
        Point-BERT's CUDA kernel starts it."""
        return farthest_point_sample(points, self.num_groups)

    def extra_repr(self) -> str:
        return f"num_groups={self.num_groups}, group_size={self.group_size}"


class PointNetTokenizer(nn.Module):
    """One feature per neighbourhood, shared across groups: a per-point MLP, max-pool, the
    pooled feature joined to every point, a second MLP, max-pool (Point-BERT's ``Encoder``).

    Args:
        in_chans: channels per point.
        dims: (point hidden, point out, context hidden) widths.
        out_dim: feature width.
    """

    def __init__(self, in_chans: int, dims: tuple[int, int, int], out_dim: int) -> None:
        super().__init__()
        hidden, point_dim, context_dim = dims
        # 1x1 convolutions over (groups, channels, points): the layout of the released weights.
        self.point_mlp = nn.Sequential(nn.Conv1d(in_chans, hidden, 1), nn.BatchNorm1d(hidden), nn.ReLU(inplace=True),
                                       nn.Conv1d(hidden, point_dim, 1))
        self.context_mlp = nn.Sequential(nn.Conv1d(2 * point_dim, context_dim, 1), nn.BatchNorm1d(context_dim),
                                         nn.ReLU(inplace=True), nn.Conv1d(context_dim, out_dim, 1))
        self.out_dim = out_dim

    def forward(self, neighbourhoods: Tensor) -> Tensor:
        """``(B, G, k, C)`` -> ``(B, G, out_dim)``."""
        batch, groups, k, chans = neighbourhoods.shape
        x = _pointwise(self.point_mlp, neighbourhoods.reshape(-1, chans)).view(batch * groups, k, -1)
        pooled = x.amax(dim=1, keepdim=True)
        x = _pointwise(self.context_mlp, torch.cat([pooled.expand(-1, k, -1), x], dim=-1).flatten(0, 1))
        return x.view(batch * groups, k, -1).amax(dim=1).view(batch, groups, self.out_dim)


def _pointwise(layers: nn.Sequential, rows: Tensor) -> Tensor:
    """1x1 convolutions, batch norms and ReLUs applied to points as rows ``(M, C)``: the same
    function as on ``(groups, C, k)`` (a batch norm's statistics are per channel over every
    point either way), but as plain matmuls, whose backward ran 2.2x faster on this CPU than
    oneDNN's 1x1-convolution backward (measured on the 3D VQA demo's groups)."""
    for layer in layers:
        rows = F.linear(rows, layer.weight.squeeze(-1), layer.bias) if isinstance(layer, nn.Conv1d) else layer(rows)
    return rows


class PointBERT(nn.Module):
    """Point-BERT's classification encoder with an `LMSlot` after its last block.

    Args:
        cfg: the sizes.
    """

    def __init__(self, cfg: PointBERTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed_dim = cfg.embed_dim  # read by lm4vis.attach to size the LM block's adapters
        self.num_classes = cfg.num_classes
        self.num_prefix_tokens = 1
        self.grouper = PointGrouper(cfg.num_groups, cfg.group_size)
        self.tokenizer = PointNetTokenizer(cfg.in_chans, cfg.tokenizer_dims, cfg.encoder_dim)
        self.token_proj = nn.Linear(cfg.encoder_dim, cfg.embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, cfg.embed_dim))
        self.cls_pos = nn.Parameter(torch.zeros(1, 1, cfg.embed_dim))
        self.pos_embed = nn.Sequential(nn.Linear(3, cfg.pos_hidden_dim), nn.GELU(),
                                       nn.Linear(cfg.pos_hidden_dim, cfg.embed_dim))
        # Linear from 0 to drop_path_rate over the blocks (torch.linspace's values, in Python so
        # that a model built on the meta device needs no data).
        drop_path = [cfg.drop_path_rate * i / max(cfg.depth - 1, 1) for i in range(cfg.depth)]
        self.blocks = nn.ModuleList(
            # torch's LayerNorm (eps 1e-5) as Point-BERT's blocks have, not timm's default (1e-6).
            Block(cfg.embed_dim, cfg.num_heads, mlp_ratio=cfg.mlp_ratio, qkv_bias=cfg.qkv_bias,
                  drop_path=rate, norm_layer=nn.LayerNorm)
            for rate in drop_path
        )
        self.lm_slot = LMSlot(cfg.embed_dim)
        self.norm = nn.LayerNorm(cfg.embed_dim)
        self.head = nn.Sequential(nn.Linear(2 * cfg.embed_dim, cfg.head_hidden_dim), nn.ReLU(inplace=True),
                                  nn.Dropout(cfg.head_dropout), nn.Linear(cfg.head_hidden_dim, cfg.num_classes))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """The initialisation of Point-BERT's pre-training transformer (and of Point-MAE's
        classifier): truncated normal (std 0.02) for linear and 1x1-convolution weights and the
        learned tokens, zero biases, unit norms."""
        trunc_normal_(self.cls_token, std=0.02)
        trunc_normal_(self.cls_pos, std=0.02)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv1d)):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def no_weight_decay(self) -> set[str]:
        return {"cls_token", "cls_pos"}

    def forward_tokens(self, points: Tensor) -> tuple[Tensor, Tensor]:
        """Normalised tokens and the group centres they came from.

        Args:
            points: ``(B, N, in_chans)``, xyz first; any ``N >= max(num_groups, group_size)``.

        Returns:
            ``tokens (B, 1 + num_groups, embed_dim)`` (CLS first) and ``centres (B, num_groups, 3)``.
        """
        if points.dim() != 3 or points.shape[-1] != self.cfg.in_chans:
            raise ValueError(f"PointBERT needs points (B, N, {self.cfg.in_chans}), got {tuple(points.shape)}")
        groups = self.grouper(points)
        x = self.token_proj(self.tokenizer(groups.neighbourhoods))
        batch = x.shape[0]
        x = torch.cat([self.cls_token.expand(batch, -1, -1), x], dim=1)
        pos = torch.cat([self.cls_pos.expand(batch, -1, -1), self.pos_embed(groups.centres)], dim=1)
        for block in self.blocks:
            x = block(x + pos)
        x = self.lm_slot(x)
        return self.norm(x), groups.centres

    def forward_features(self, points: Tensor) -> Tensor:
        """``(B, N, in_chans)`` -> normalised tokens ``(B, 1 + num_groups, embed_dim)``."""
        return self.forward_tokens(points)[0]

    def forward_head(self, tokens: Tensor, pre_logits: bool = False) -> Tensor:
        """Logits ``(B, num_classes)`` from [CLS, max over group tokens] (or that
        ``(B, 2 * embed_dim)`` feature when ``pre_logits``)."""
        feature = torch.cat([tokens[:, 0], tokens[:, 1:].amax(dim=1)], dim=-1)
        return feature if pre_logits else self.head(feature)

    def forward(self, points: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(points))


# -- released checkpoints ---------------------------------------------------------------------------
#: Point-BERT's ``PointTransformer`` names (after ``module.``/``base_model.``/``transformer_q.``
#: are stripped) -> this module's. Blocks keep their inner names: timm's Block has Point-BERT's.
KEY_MAP: tuple[tuple[str, str], ...] = (
    ("cls_token", "cls_token"),
    ("cls_pos", "cls_pos"),
    ("encoder.first_conv.", "tokenizer.point_mlp."),
    ("encoder.second_conv.", "tokenizer.context_mlp."),
    ("reduce_dim.", "token_proj."),
    ("pos_embed.", "pos_embed."),
    ("blocks.blocks.", "blocks."),
    ("norm.", "norm."),
    ("cls_head_finetune.", "head."),
)
#: Parts of ``Point-BERT.pth`` that only pre-training uses: the momentum encoder, the dVAE
#: tokenizer, the MoCo queue, the mask token, and the token-prediction and contrastive heads.
PRETRAINING_ONLY: tuple[str, ...] = ("transformer_k.", "dvae.", "queue", "queue_ptr", "mask_token",
                                     "lm_head.", "cls_head.")


class CheckpointMismatchError(ValueError):
    """A checkpoint that does not fit the model under ``strict=True``; the message lists why."""


@dataclass
class LoadReport:
    """What `load_pointbert_checkpoint` did.

    Args:
        loaded: model keys set from the checkpoint.
        missing: model keys the checkpoint has no tensor for (left at their initialisation).
        unused: checkpoint keys that map to nothing in the model.
        mismatched: (model key, checkpoint shape, model shape) of tensors not loaded.
        pretraining_only: checkpoint keys of pre-training-only parts, set aside.
    """

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    pretraining_only: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.missing or self.unused or self.mismatched)

    def __str__(self) -> str:
        lines = [f"loaded {len(self.loaded)} tensors; {len(self.pretraining_only)} pre-training-only set aside"]
        for title, keys in (("missing (left at init)", self.missing), ("unused", self.unused)):
            if keys:
                lines.append(f"{title}: {', '.join(keys)}")
        for key, got, want in self.mismatched:
            lines.append(f"shape mismatch: {key}: checkpoint {list(got)}, model {list(want)}")
        return "\n".join(lines)


def _strip(key: str) -> str:
    while key.startswith("module."):  # DataParallel / DDP wrappers, possibly nested
        key = key[len("module."):]
    for prefix in ("base_model.", "transformer_q."):
        if key.startswith(prefix):
            key = key[len(prefix):]
    return key


def map_pointbert_keys(state: dict[str, Tensor]) -> tuple[dict[str, Tensor], list[str], list[str]]:
    """Rename a Point-BERT state dict to `PointBERT`'s names.

    Args:
        state: the checkpoint's tensors under Point-BERT's names.

    Returns:
        (tensors under this module's names, pre-training-only keys, keys matching nothing).
    """
    mapped, pretraining, unknown = {}, [], []
    for key, tensor in state.items():
        name = _strip(key)
        if name.startswith(PRETRAINING_ONLY):
            pretraining.append(key)
            continue
        for theirs, ours in KEY_MAP:
            if name == theirs or (theirs.endswith(".") and name.startswith(theirs)):
                mapped[ours + name[len(theirs):]] = tensor
                break
        else:
            unknown.append(key)
    return mapped, pretraining, unknown


def read_pointbert_state(path: str | Path) -> dict[str, Tensor]:
    """The tensors of a Point-BERT checkpoint file, read without running any pickled code.

    The released files are dicts with the weights under ``base_model`` (Point-BERT's trainer;
    also ``model`` in other forks), beside the optimizer state, epoch and metrics.

    Args:
        path: the ``.pth`` file.
    """
    ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    if isinstance(ckpt, dict):
        for key in ("base_model", "model", "state_dict"):
            if isinstance(ckpt.get(key), dict):
                return ckpt[key]
        if ckpt and all(isinstance(v, Tensor) for v in ckpt.values()):
            return ckpt
    found = sorted(ckpt) if isinstance(ckpt, dict) else type(ckpt).__name__
    raise CheckpointMismatchError(
        f"{path}: no state dict under 'base_model', 'model' or 'state_dict' (found {found}); "
        "is this a Point-BERT checkpoint?"
    )


def load_pointbert_checkpoint(model: PointBERT, path: str | Path, strict: bool = True) -> LoadReport:
    """Load a released Point-BERT checkpoint into ``model``.

    Tensors of a wrong shape are never loaded. Under ``strict`` any missing, unused or
    mismatched key refuses the whole file (the model is left untouched); ``Point-BERT.pth``
    (pre-training) has no classification head, so fine-tuning from it needs ``strict=False``,
    and the report lists the head as missing.

    Args:
        model: the encoder to fill.
        path: ``Point-BERT.pth`` or a fine-tuned ``.pth``.
        strict: refuse any mismatch.
    """
    mapped, pretraining, unknown = map_pointbert_keys(read_pointbert_state(path))
    own = model.state_dict()
    report = LoadReport(pretraining_only=pretraining, unused=list(unknown))
    usable = {}
    for key, tensor in mapped.items():
        if key not in own:
            report.unused.append(key)
        elif tensor.shape != own[key].shape:
            report.mismatched.append((key, tuple(tensor.shape), tuple(own[key].shape)))
        else:
            usable[key] = tensor
    # The LM slot's block (if filled) is not Point-BERT's to provide.
    report.missing = [k for k in own if k not in mapped and not k.startswith("lm_slot.")]
    if strict and not report.clean:
        hint = ""
        if any(k.startswith("head.3.") for k, _, _ in report.mismatched):
            classes = next(got[0] for k, got, _ in report.mismatched if k.startswith("head.3."))
            hint = (f"\nthe checkpoint's head has {classes} classes: set host.num_classes={classes} "
                    f"(PointBERTConfig(num_classes={classes}))")
        raise CheckpointMismatchError(f"{path} does not fit this PointBERT (strict=True):\n{report}{hint}")
    model.load_state_dict(usable, strict=False)
    report.loaded = sorted(usable)
    log.info("%s: %s", path, report)
    return report


# -- the registered host (`lm4vis.hosts.pointbert_config` names these) ------------------------------
def build_point_bert(cfg: PointBERTConfig, info: Any = None) -> PointBERT:
    """The ``point-bert`` host: a `PointBERT` of the config's sizes, from ``cfg.pretrained`` if set.

    Args:
        cfg: the host config.
        info: the dataset's description (unused: `check_data` compares it with the config).
    """
    model = PointBERT(cfg)
    if cfg.pretrained is None:
        return model
    path = Path(cfg.pretrained).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"host.pretrained={cfg.pretrained}: no such file; give the path of Point-BERT.pth (pre-training) "
            "or of a fine-tuned Point-BERT .pth, or host.pretrained=null to start from a random init"
        )
    try:
        report = load_pointbert_checkpoint(model, path, strict=not cfg.pretrained_partial)
    except CheckpointMismatchError as e:
        raise CheckpointMismatchError(
            f"{e}\nset host.pretrained_partial=true to load the tensors that fit and leave the rest at "
            "their initialisation (fine-tuning from Point-BERT.pth, which has no head, needs it)"
        ) from None
    if not report.clean:
        log.warning("host.pretrained=%s loaded in part (host.pretrained_partial=true):\n%s", path, report)
    return model


def check_data(cfg: PointBERTConfig, info: Any) -> None:
    """The host must fit the data: classes, channels per point, enough points for the groups."""
    from ..train.config import ConfigError

    if info.num_classes != cfg.num_classes:
        raise ConfigError(
            f"host.num_classes={cfg.num_classes} but dataset {info.name!r} has {info.num_classes} "
            f"classes; set host.num_classes={info.num_classes}"
        )
    channels = getattr(info, "num_channels", None)
    if channels is not None and channels != cfg.in_chans:
        raise ConfigError(
            f"host.in_chans={cfg.in_chans} but dataset {info.name!r} gives {channels} channels per point "
            f"({', '.join(info.channels)}); set host.in_chans={channels}"
        )
    need = max(cfg.num_groups, cfg.group_size)
    points = getattr(info, "num_points", None)
    if points is not None and points < need:
        raise ConfigError(
            f"data.num_points={points} cannot make host.num_groups={cfg.num_groups} groups of "
            f"host.group_size={cfg.group_size}; give data.num_points >= {need} or shrink the groups"
        )


def describe(cfg: PointBERTConfig) -> str:
    """One line for reports."""
    pretrained = f", from {Path(cfg.pretrained).name}" if cfg.pretrained else ""
    return (f"Point-BERT (depth {cfg.depth}, width {cfg.embed_dim}, {cfg.num_groups} groups of "
            f"{cfg.group_size}{pretrained})")


def pointbert_layout(model: PointBERT, batch: Tensor) -> PointGroupLayout:
    """Which token each point of ``batch`` belongs to: the group of its nearest FPS centre.

    The groups are the model's own (its `PointGrouper` on these points), so a token map
    painted through this layout lands where that token's neighbourhood was taken.

    Args:
        model: a `PointBERT` (with or without an LM block).
        batch: the model's input points ``(B, N, in_chans)``.
    """
    from ..analysis.layout import PointGroupLayout
    from ..ops import squared_distance

    if not isinstance(batch, Tensor) or batch.dim() != 3:
        raise ValueError("the point-bert layout needs the batch's points (B, N, C); got "
                         f"{type(batch).__name__ if not isinstance(batch, Tensor) else tuple(batch.shape)}")
    with torch.no_grad():
        centres = model.grouper(batch).centres  # (B, G, 3)
        xyz = batch[..., :3].to(centres.dtype)
        assignment = squared_distance(xyz[:, :, None, :], centres[:, None, :, :]).argmin(dim=-1)
    return PointGroupLayout(model.num_prefix_tokens, assignment.cpu(), model.cfg.num_groups)


def pointbert_stages(model: PointBERT) -> dict[str, tuple[str, str]]:
    """The host's own hook points for the analysis (see `lm4vis.hosts.vit.vit_stages`)."""
    last = f"blocks.{len(model.blocks) - 1}"
    return {"last_block": (last, "output"), "host_attn": (f"{last}.attn", "input"),
            "post_norm": ("norm", "output")}


__all__ = ["PointBERTConfig", "PointBERT", "PointGrouper", "PointNetTokenizer", "load_pointbert_checkpoint",
           "read_pointbert_state", "map_pointbert_keys", "LoadReport", "CheckpointMismatchError", "KEY_MAP",
           "PRETRAINING_ONLY", "build_point_bert", "check_data", "describe", "pointbert_layout",
           "pointbert_stages"]
