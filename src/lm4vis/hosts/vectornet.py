"""VectorNet (Gao et al., CVPR 2020) with the LM slot, and its multi-modal decoders.

    vectors (B, P, V, F) -> sub-graph per polyline -> polyline tokens (B, P, D)
      -> global interaction graph (transformer layers, key-padding mask)
      -> lm_slot (the paper's frozen LM block goes here: after the encoder's last block)
      -> norm -> decoder from the focal agent's token -> K trajectories (T, 2) + K logits

The sub-graph is VectorNet's PointNet-like encoder: each layer encodes every vector with an
MLP, max-pools over the polyline's vectors (padding excluded) and appends the pooled feature
to every vector; a last max-pool gives the polyline's token. Padding polylines never reach the
sub-graph and are masked as keys everywhere after it, so adding padding changes no prediction.
VectorNet L2-normalises polyline features before its one-layer global graph; the pre-norm
transformer layers used here normalise their inputs themselves.

The decoder reads the focal agent's token (polyline 0, as `lm4vis.data.motion` orders them):
``mlp`` regresses all K trajectories and their confidences from it at once; ``queries`` is
mmTransformer's: K learned mode queries, offset by the focal token, attend to every polyline
token through transformer decoder layers, and each query becomes one trajectory and one logit.
Trajectories are in the focal frame; `forecasting_loss` trains both.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.motion.vectorize import NUM_FEATURES
from .configs import VECTORNET_DECODERS, VECTORNET_TRAJECTORIES
from .slot import LMSlot

if TYPE_CHECKING:
    from ..data.motion import MotionInfo
    from .configs import VectorNetHostConfig

#: The decoders, and what a decoder's T outputs per mode are (the positions themselves, or
#: per-step displacements whose running sum is the trajectory): one list, in the light config.
DECODERS: tuple[str, ...] = VECTORNET_DECODERS
TRAJECTORIES: tuple[str, ...] = VECTORNET_TRAJECTORIES
REGRESSIONS: tuple[str, ...] = ("smooth_l1", "l2")


@dataclass
class VectorNetConfig:
    """VectorNet's sizes. `from_info` takes the data-dependent ones from a dataset.

    Args:
        in_features: numbers per vector (the dataset's ``info.num_features``).
        horizon: steps per forecast trajectory (the dataset's ``info.pred_len``).
        embed_dim: width of vector features and polyline tokens.
        subgraph_depth: sub-graph layers per polyline.
        depth: global interaction layers.
        num_heads: attention heads in the global graph and the query decoder.
        mlp_ratio: hidden width of the transformer MLPs, as a multiple of ``embed_dim``.
        dropout: dropout in the transformer layers.
        num_modes: trajectories forecast per scene (K).
        decoder: ``mlp`` or ``queries`` (see the module doc).
        decoder_depth: transformer decoder layers of the ``queries`` decoder.
        trajectory: ``positions`` (the decoder outputs each step's position) or ``steps`` (it
            outputs each step's displacement, summed over time). With ``steps`` an output of
            order one is a metre-per-step motion, so a freshly initialised decoder reaches
            trajectories tens of metres long in far fewer updates.
    """

    in_features: int = NUM_FEATURES
    horizon: int = 30
    embed_dim: int = 64
    subgraph_depth: int = 3
    depth: int = 1
    num_heads: int = 4
    mlp_ratio: float = 2.0
    dropout: float = 0.0
    num_modes: int = 6
    decoder: str = "mlp"
    decoder_depth: int = 1
    trajectory: str = "positions"

    def __post_init__(self) -> None:
        for name in ("in_features", "horizon", "embed_dim", "subgraph_depth", "depth", "num_heads",
                     "num_modes", "decoder_depth"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim={self.embed_dim} must be divisible by num_heads={self.num_heads}")
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder={self.decoder!r} is unknown; choose one of {', '.join(DECODERS)}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.trajectory not in TRAJECTORIES:
            raise ValueError(f"trajectory={self.trajectory!r} is unknown; choose one of {', '.join(TRAJECTORIES)}")

    @property
    def mlp_dim(self) -> int:
        return int(self.embed_dim * self.mlp_ratio)

    @classmethod
    def from_info(cls, info: MotionInfo, **overrides: Any) -> VectorNetConfig:
        """A config sized for a dataset: its features per vector and its forecast horizon.

        Args:
            info: the dataset's `MotionInfo`.
            **overrides: any other field.
        """
        return cls(in_features=info.num_features, horizon=info.pred_len, **overrides)


def _masked_max(x: Tensor, pad: Tensor) -> Tensor:
    """Max of ``x`` (N, V, C) over its vectors where ``pad`` (N, V) is False; 0 where all are."""
    pooled = x.masked_fill(pad[..., None], float("-inf")).amax(dim=-2)
    return pooled.masked_fill(pad.all(dim=-1, keepdim=True), 0.0)


class SubGraphLayer(nn.Module):
    """Encode each vector, max-pool the polyline, append the pool to each vector: C -> 2D.

    Args:
        in_dim: width of the incoming vector features.
        embed_dim: width of the encoding (the output is twice as wide).
    """

    def __init__(self, in_dim: int, embed_dim: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, embed_dim), nn.LayerNorm(embed_dim), nn.ReLU())

    def forward(self, x: Tensor, pad: Tensor) -> Tensor:
        h = self.mlp(x)
        return torch.cat([h, _masked_max(h, pad)[:, None].expand_as(h)], dim=-1)


class SubGraph(nn.Module):
    """VectorNet's polyline encoder: (N, V, F) vectors -> (N, D) polyline tokens.

    Args:
        in_features: numbers per vector.
        embed_dim: token width.
        depth: sub-graph layers.
    """

    def __init__(self, in_features: int, embed_dim: int, depth: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            SubGraphLayer(in_features if i == 0 else 2 * embed_dim, embed_dim) for i in range(depth)
        )
        self.proj_out = nn.Linear(2 * embed_dim, embed_dim)

    def forward(self, vectors: Tensor, pad: Tensor) -> Tensor:
        x = vectors
        for layer in self.layers:
            x = layer(x, pad)
        return self.proj_out(_masked_max(x, pad))


class MLPDecoder(nn.Module):
    """K trajectories and K confidence logits from the focal agent's token, by one MLP.

    Args:
        embed_dim: token width.
        num_modes: K.
        horizon: steps per trajectory.
        hidden: width of the MLP.
    """

    def __init__(self, embed_dim: int, num_modes: int, horizon: int, hidden: int) -> None:
        super().__init__()
        self.num_modes, self.horizon = num_modes, horizon
        self.trunk = nn.Sequential(
            nn.Linear(embed_dim, hidden), nn.LayerNorm(hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.LayerNorm(hidden), nn.ReLU(),
        )
        self.to_trajectories = nn.Linear(hidden, num_modes * horizon * 2)
        self.to_logits = nn.Linear(hidden, num_modes)

    def forward(self, tokens: Tensor, polyline_mask: Tensor) -> tuple[Tensor, Tensor]:
        h = self.trunk(tokens[:, 0])
        trajectories = self.to_trajectories(h).view(-1, self.num_modes, self.horizon, 2)
        return trajectories, self.to_logits(h)


class QueryDecoder(nn.Module):
    """mmTransformer's decoder: K learned mode queries, offset by the focal agent's token,
    attend to every polyline token; each query gives one trajectory and one logit.

    Args:
        embed_dim: token width.
        num_modes: K.
        horizon: steps per trajectory.
        num_heads: attention heads.
        mlp_dim: hidden width of the layers' MLPs and of the heads.
        dropout: dropout in the decoder layers.
        depth: transformer decoder layers.
    """

    def __init__(self, embed_dim: int, num_modes: int, horizon: int, num_heads: int, mlp_dim: int,
                 dropout: float, depth: int) -> None:
        super().__init__()
        self.horizon = horizon
        self.queries = nn.Parameter(torch.empty(num_modes, embed_dim))
        nn.init.trunc_normal_(self.queries, std=0.02)  # distinct at init, so the modes can diverge
        self.layers = nn.ModuleList(
            nn.TransformerDecoderLayer(embed_dim, num_heads, mlp_dim, dropout, activation="gelu",
                                       batch_first=True, norm_first=True)
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim)
        self.to_trajectories = nn.Sequential(nn.Linear(embed_dim, mlp_dim), nn.ReLU(), nn.Linear(mlp_dim, horizon * 2))
        self.to_logits = nn.Sequential(nn.Linear(embed_dim, mlp_dim), nn.ReLU(), nn.Linear(mlp_dim, 1))

    def forward(self, tokens: Tensor, polyline_mask: Tensor) -> tuple[Tensor, Tensor]:
        q = self.queries[None] + tokens[:, :1]
        for layer in self.layers:
            q = layer(q, tokens, memory_key_padding_mask=polyline_mask)
        q = self.norm(q)
        trajectories = self.to_trajectories(q).unflatten(-1, (self.horizon, 2))
        return trajectories, self.to_logits(q)[..., 0]


class VectorNet(nn.Module):
    """VectorNet over a batch of `lm4vis.data.motion` polylines, with the LM slot.

    ``forward(vectors, vector_mask, polyline_mask)`` returns ``trajectories`` (B, K, T, 2) in
    the focal frame and ``logits`` (B, K), whose softmax is the modes' confidence.

    Args:
        cfg: the model's sizes.
    """

    def __init__(self, cfg: VectorNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed_dim = cfg.embed_dim
        self.subgraph = SubGraph(cfg.in_features, cfg.embed_dim, cfg.subgraph_depth)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(cfg.embed_dim, cfg.num_heads, cfg.mlp_dim, cfg.dropout,
                                       activation="gelu", batch_first=True, norm_first=True)
            for _ in range(cfg.depth)
        )
        self.lm_slot = LMSlot(cfg.embed_dim)
        self.norm = nn.LayerNorm(cfg.embed_dim)
        if cfg.decoder == "mlp":
            self.decoder: nn.Module = MLPDecoder(cfg.embed_dim, cfg.num_modes, cfg.horizon, cfg.mlp_dim)
        else:
            self.decoder = QueryDecoder(cfg.embed_dim, cfg.num_modes, cfg.horizon, cfg.num_heads, cfg.mlp_dim,
                                        cfg.dropout, cfg.decoder_depth)

    def forward_features(self, vectors: Tensor, vector_mask: Tensor, polyline_mask: Tensor) -> Tensor:
        """Polyline tokens (B, P, D) after the global graph, the LM slot and the final norm.

        Args:
            vectors: (B, P, V, F) float.
            vector_mask: (B, P, V) bool, True at padding vectors.
            polyline_mask: (B, P) bool, True at padding polylines.
        """
        if vectors.dim() != 4 or vectors.shape[-1] != self.cfg.in_features:
            raise ValueError(f"vectors must be (B, P, V, {self.cfg.in_features}), got {tuple(vectors.shape)}; "
                             "build the config with VectorNetConfig.from_info(dataset.info)")
        real = ~polyline_mask
        tokens = vectors.new_zeros(*polyline_mask.shape, self.embed_dim)
        tokens[real] = self.subgraph(vectors[real], vector_mask[real]).to(tokens.dtype)
        for block in self.blocks:
            tokens = block(tokens, src_key_padding_mask=polyline_mask)
        tokens = self.lm_slot(tokens, polyline_mask)
        return self.norm(tokens)

    def forward_head(self, tokens: Tensor, polyline_mask: Tensor) -> dict[str, Tensor]:
        trajectories, logits = self.decoder(tokens, polyline_mask)
        if self.cfg.trajectory == "steps":
            trajectories = trajectories.cumsum(dim=-2)
        return {"trajectories": trajectories, "logits": logits}

    def forward(self, vectors: Tensor, vector_mask: Tensor, polyline_mask: Tensor) -> dict[str, Tensor]:
        return self.forward_head(self.forward_features(vectors, vector_mask, polyline_mask), polyline_mask)


def forecasting_loss(
    trajectories: Tensor,
    logits: Tensor,
    future: Tensor,
    has_future: Tensor | None = None,
    regression: str = "smooth_l1",
    classification_weight: float = 1.0,
) -> dict[str, Tensor]:
    """Winner-takes-all regression on the mode that ends nearest the truth, plus cross-entropy
    that teaches the confidences to pick that mode.

    The winner is chosen by final displacement, as the Argoverse metrics choose the mode they
    score; only its trajectory is regressed, so the other modes stay free to cover other futures.

    Args:
        trajectories: (B, K, T, 2) forecasts.
        logits: (B, K) mode confidences before the softmax.
        future: (B, T, 2) ground truth.
        has_future: (B,) bool; scenes without ground truth add nothing. All True when None.
        regression: ``smooth_l1`` or ``l2`` (squared error), summed over x and y, averaged
            over the steps.
        classification_weight: weight of the cross-entropy.

    Returns:
        ``loss`` (to minimise), and detached ``regression``, ``classification`` and
        ``best_mode`` (B,).
    """
    if regression not in REGRESSIONS:
        raise ValueError(f"regression={regression!r} is unknown; choose one of {', '.join(REGRESSIONS)}")
    final = torch.linalg.vector_norm(trajectories[:, :, -1] - future[:, None, -1], dim=-1)
    best = final.argmin(dim=1)
    chosen = trajectories[torch.arange(len(best), device=best.device), best]
    error = (F.smooth_l1_loss if regression == "smooth_l1" else F.mse_loss)(chosen, future, reduction="none")
    per_scene = error.sum(-1).mean(-1)
    cross_entropy = F.cross_entropy(logits, best, reduction="none")
    weight = torch.ones_like(per_scene) if has_future is None else has_future.to(per_scene.dtype)
    count = weight.sum().clamp_min(1.0)
    reg = (per_scene * weight).sum() / count
    cls = (cross_entropy * weight).sum() / count
    return {"loss": reg + classification_weight * cls, "regression": reg.detach(),
            "classification": cls.detach(), "best_mode": best}


# -- the registered host (``host.kind: vectornet``) ------------------------------------------------
def build_vectornet(cfg: VectorNetHostConfig, info: MotionInfo) -> VectorNet:
    """The registered host: a `VectorNet` sized by the run's host config and the dataset.

    Args:
        cfg: the ``host`` section (`lm4vis.hosts.configs.VectorNetHostConfig`).
        info: the dataset's `MotionInfo` (numbers per vector, forecast horizon).
    """
    check_data(cfg, info)
    # Every model field the host config sets; the dataset sizes the rest (features, horizon).
    sized_by_data = {"in_features", "horizon"}
    given = {f.name: getattr(cfg, f.name) for f in fields(VectorNetConfig)
             if f.name not in sized_by_data and hasattr(cfg, f.name)}
    return VectorNet(VectorNetConfig.from_info(info, **given))


def check_data(cfg: VectorNetHostConfig, info: Any) -> None:
    """The host reads polylines of vectors and forecasts a horizon: the data must say both."""
    from ..train.config import ConfigError

    missing = [name for name in ("feature_names", "pred_len") if not hasattr(info, name)]
    if missing:
        raise ConfigError(
            f"host.kind=vectornet reads motion scenes, but dataset {getattr(info, 'name', '?')!r} "
            f"describes no {', '.join(missing)}; use a motion dataset (data.name: sim-traffic, "
            "argoverse1 or eth-ucy)"
        )
    if info.pred_len < 1 or len(info.feature_names) < 1:
        raise ConfigError(f"dataset {info.name!r} has pred_len={info.pred_len} and "
                          f"{len(info.feature_names)} features per vector; both must be positive")


def describe(cfg: VectorNetHostConfig) -> str:
    """One line for reports."""
    decoder = cfg.decoder if cfg.decoder == "mlp" else f"{cfg.decoder} x{cfg.decoder_depth}"
    return (f"VectorNet (width {cfg.embed_dim}, {cfg.subgraph_depth} sub-graph + {cfg.depth} global "
            f"layer(s), {cfg.num_modes} modes, {decoder} decoder)")


def vectornet_stages(model: nn.Module) -> dict[str, tuple[str, str]]:
    """The host's hook points for the analysis: the last global-graph layer's output (the
    tokens the LM slot receives) and the final norm's output. Its attention is torch's
    `nn.MultiheadAttention`, not a timm ``qkv`` module, so no ``host_attn`` is declared."""
    return {"last_block": (f"blocks.{len(model.blocks) - 1}", "output"), "post_norm": ("norm", "output")}


def vectornet_layout(model: nn.Module, batch: Any) -> Any:
    """The token layout of a motion batch for the analysis: one token per polyline, padded as
    the batch is (`lm4vis.analysis.layout.PolylineLayout`).

    Args:
        model: the host (its tokens are the batch's polylines, in order; no prefix tokens).
        batch: a motion batch (`lm4vis.data.motion.collate`).
    """
    from ..analysis.layout import PolylineLayout

    if not isinstance(batch, dict) or "polyline_mask" not in batch:
        raise ValueError("the vectornet layout needs a motion batch (a dict with polyline_mask and "
                         f"vector_mask); got {type(batch).__name__}")
    return PolylineLayout(batch["polyline_mask"].cpu(), batch["vector_mask"].cpu())


__all__ = ["DECODERS", "REGRESSIONS", "TRAJECTORIES", "VectorNetConfig", "VectorNet", "SubGraph", "SubGraphLayer",
           "MLPDecoder", "QueryDecoder", "forecasting_loss", "build_vectornet", "check_data", "describe",
           "vectornet_stages", "vectornet_layout"]
