"""The ``videomae`` host: transformers' own ``VideoMAEForVideoClassification``, used as it is.

`VideoMAEClassifier` holds the transformers model under ``hf`` and adds nothing to its
computation: it takes lm4vis clips ``(B, C, T, H, W)`` (``(B, V, C, T, H, W)`` for test views,
whose logits are averaged), hands transformers the ``(B, T, C, H, W)`` it expects, and returns the
logits. The block reaches the encoder through `lm4vis.attach`'s forward hook: ``blocks`` names
transformers' own list of encoder layers, so ``where: last`` puts the block after the last layer,
before the mean pooling and ``fc_norm`` (or the final ``layernorm`` without mean pooling), and
``where: 5`` or any module path works as for a timm ViT. Every transformers key stays as it is
under ``hf.``, so a ``save_pretrained`` directory loads with no key missing.

Layer-wise learning-rate decay (VideoMAE's, from BEiT) is declared through `param_lr_factors`,
which `lm4vis.train.optim` reads: the layer of every parameter comes from timm's
`group_parameters` over transformers' names.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from .videomae_config import CHECKPOINT_SIZES, VideoMAEHostConfig

if TYPE_CHECKING:
    from ..analysis.layout import GridLayout

log = logging.getLogger(__name__)

#: timm group matcher over transformers' names: embeddings first, then one group per layer;
#: everything else (fc_norm, classifier, a final layernorm) is the last group.
LAYER_GROUPS = {"stem": r"^videomae\.embeddings", "blocks": r"^videomae\.encoder\.layer\.(\d+)"}
#: Keys a checkpoint may lack: the classification head, when the checkpoint was pretrained
#: (VideoMAEForPreTraining) or trained for other classes; they keep their fresh initialisation.
HEAD_KEYS = ("classifier.", "fc_norm.")
#: Keys of a pretraining checkpoint that a classifier does not use (its decoder).
PRETRAINING_KEYS = ("decoder.", "encoder_to_decoder.", "mask_token", "videomae.encoder_to_decoder")


class VideoMAEClassifier(nn.Module):
    """transformers' VideoMAE classifier on lm4vis clips.

    Args:
        hf: a ``VideoMAEForVideoClassification``.
        pos_embed: ``sincos`` (transformers' fixed table) or ``learned`` (a trainable table
            added by a forward hook on the embeddings, transformers' fixed table zeroed).
        layer_decay: layer-wise learning-rate decay, or None.
    """

    def __init__(self, hf: nn.Module, pos_embed: str = "sincos", layer_decay: float | None = None) -> None:
        super().__init__()
        self.hf = hf
        config = hf.config
        self.embed_dim = int(config.hidden_size)
        side = config.image_size // config.patch_size
        self.grid = (config.num_frames // config.tubelet_size, side, side)
        self.layer_decay = layer_decay
        self.pos_embed: nn.Parameter | None = None
        if pos_embed == "learned":
            embeddings = hf.videomae.embeddings
            table = embeddings.position_embeddings
            self.pos_embed = nn.Parameter(torch.zeros_like(table))
            nn.init.trunc_normal_(self.pos_embed, std=0.02)
            # transformers adds its table (detached) in the embeddings' forward; a zero table
            # leaves the learned one, added after it, as the only position signal.
            embeddings.position_embeddings = torch.zeros_like(table)
            embeddings.register_forward_hook(self._add_learned_positions)

    @property
    def blocks(self) -> nn.ModuleList:
        """transformers' encoder layers (where `lm4vis.attach` resolves ``last``, indices, ...)."""
        return self.hf.videomae.encoder.layer

    def _add_learned_positions(self, module: nn.Module, args: tuple, output: Tensor) -> Tensor:
        return output + self.pos_embed.to(output.dtype)

    def forward(self, video: Tensor) -> Tensor:
        """Clips (B, C, T, H, W), or test views (B, V, C, T, H, W) -> logits (B, classes)."""
        if video.dim() == 6:
            b, v = video.shape[:2]
            return self.forward(video.flatten(0, 1)).unflatten(0, (b, v)).mean(1)
        if video.dim() != 5:
            raise ValueError(f"videomae takes clips (B, C, T, H, W), got a tensor of shape {tuple(video.shape)}")
        return self.hf(pixel_values=video.transpose(1, 2)).logits

    def no_weight_decay(self) -> set[str]:
        """The learned position table does not decay (VideoMAE's ``pos_embed``)."""
        return {"pos_embed"} if self.pos_embed is not None else set()

    def layer_of_parameters(self) -> dict[str, int]:
        """Layer id of every parameter: 0 the embeddings, ``i + 1`` encoder layer ``i``,
        ``depth + 1`` the head (timm's `group_parameters` over transformers' names)."""
        from timm.models import group_parameters

        layers = {f"hf.{name}": layer for name, layer in
                  group_parameters(self.hf, LAYER_GROUPS, reverse=True).items()}
        if self.pos_embed is not None:
            layers["pos_embed"] = 0
        return layers

    def param_lr_factors(self) -> dict[str, float]:
        """VideoMAE's layer-wise decay: ``layer_decay ** (depth + 1 - layer)`` (empty when off)."""
        if self.layer_decay is None or self.layer_decay == 1.0:
            return {}
        layers = self.layer_of_parameters()
        top = len(self.blocks) + 1
        return {name: self.layer_decay ** (top - layer) for name, layer in layers.items()}


def _hf_config(cfg: VideoMAEHostConfig) -> dict[str, Any]:
    """`VideoMAEConfig` arguments of a host config (the head sizes and what the data fixes)."""
    return dict(
        num_labels=cfg.num_classes, num_frames=cfg.num_frames, image_size=cfg.image_size,
        hidden_dropout_prob=cfg.dropout, attention_probs_dropout_prob=cfg.dropout, use_mean_pooling=True,
        **cfg.config,
    )


def build_videomae(cfg: VideoMAEHostConfig, info: Any = None) -> VideoMAEClassifier:
    """transformers' VideoMAE classifier, from scratch or from ``cfg.pretrained``.

    Args:
        cfg: the host config.
        info: the dataset's description (unused: `check_data` compares it with the config).
    """
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification

    report = None
    if cfg.pretrained is None:
        hf_config = VideoMAEConfig(
            num_channels=cfg.in_chans, patch_size=cfg.patch_size, tubelet_size=cfg.tubelet_size,
            hidden_size=cfg.embed_dim, num_hidden_layers=cfg.depth, num_attention_heads=cfg.num_heads,
            intermediate_size=round(cfg.embed_dim * cfg.mlp_ratio), **_hf_config(cfg),
        )
        hf = VideoMAEForVideoClassification(hf_config)
    else:
        hf, report = load_pretrained(cfg)
    model = VideoMAEClassifier(hf, cfg.pos_embed, cfg.layer_decay)
    model.loading_report = report  # what from_pretrained left out, for reports and tests
    return model


def load_pretrained(cfg: VideoMAEHostConfig) -> tuple[nn.Module, dict[str, list[str]]]:
    """``VideoMAEForVideoClassification.from_pretrained(cfg.pretrained)``, checked.

    The checkpoint's sizes must be the config's (`CHECKPOINT_SIZES`); frames, image size and
    classes may differ (the position table is computed, the head is re-initialised). Every
    encoder weight must be found; only the head may be missing, and only a pretraining
    checkpoint's decoder may go unused. Both are logged.

    Args:
        cfg: the host config; ``cfg.pretrained`` is a local folder written by ``save_pretrained``.

    Returns:
        The model, and the keys that were ``missing``, ``unexpected`` or ``mismatched``.
    """
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification

    folder = Path(cfg.pretrained)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(
            f"host.pretrained={cfg.pretrained}: no config.json there; give a folder written by "
            "save_pretrained (config.json + model.safetensors), e.g. a downloaded MCG-NJU/videomae-* repo"
        )
    saved = VideoMAEConfig.from_pretrained(folder)
    intermediate = round(cfg.embed_dim * cfg.mlp_ratio)
    differ = {f"host.{key}": (getattr(cfg, key), getattr(saved, attr)) for key, attr in CHECKPOINT_SIZES.items()
              if getattr(cfg, key) != getattr(saved, attr)}
    if saved.intermediate_size != intermediate:
        differ["host.mlp_ratio"] = (cfg.mlp_ratio, saved.intermediate_size / saved.hidden_size)
    if differ:
        fix = ", ".join(f"{k}={v[1]}" for k, v in differ.items())
        raise ValueError(
            f"host.pretrained={cfg.pretrained} holds a different VideoMAE: "
            + "; ".join(f"{k}={v[0]} but the checkpoint has {v[1]}" for k, v in differ.items())
            + f"; set {fix}"
        )
    for key, value in _hf_config(cfg).items():
        setattr(saved, key, value)
    hf, loading = VideoMAEForVideoClassification.from_pretrained(
        folder, config=saved, dtype=torch.float32, output_loading_info=True, ignore_mismatched_sizes=True,
    )
    missing = sorted(loading.get("missing_keys", ()))
    unexpected = sorted(loading.get("unexpected_keys", ()))
    mismatched = sorted(str(k[0] if isinstance(k, tuple) else k) for k in loading.get("mismatched_keys", ()))
    bad_missing = [k for k in missing + mismatched if not k.startswith(HEAD_KEYS)]
    bad_unused = [k for k in unexpected if not k.startswith(PRETRAINING_KEYS)]
    if bad_missing or bad_unused:
        raise ValueError(
            f"host.pretrained={cfg.pretrained} does not fit VideoMAEForVideoClassification: "
            f"missing or mis-shaped {bad_missing[:5] or 'none'}, unused {bad_unused[:5] or 'none'}; "
            "is it a VideoMAE checkpoint of the sizes in the config?"
        )
    if missing or mismatched:
        log.info("videomae: the head is freshly initialised (%s not in %s)", ", ".join(missing + mismatched), folder)
    if unexpected:
        log.info("videomae: %d pretraining weights of %s are not used (%s...)", len(unexpected), folder, unexpected[0])
    return hf, {"missing": missing, "unexpected": unexpected, "mismatched": mismatched}


def check_data(cfg: VideoMAEHostConfig, info: Any) -> None:
    """The host must fit the clips: classes, frames, frame size and channels."""
    from ..train.config import ConfigError

    for key, data_key in (("num_classes", "num_classes"), ("num_frames", "num_frames"),
                          ("image_size", "image_size"), ("in_chans", "in_chans")):
        have, want = getattr(cfg, key), getattr(info, data_key, None)
        if want is not None and have != want:
            raise ConfigError(
                f"host.{key}={have} but dataset {info.name!r} has {data_key}={want}; set host.{key}={want}"
            )


def describe(cfg: VideoMAEHostConfig) -> str:
    """One line for reports."""
    t, h, w = cfg.grid
    origin = f", from {cfg.pretrained}" if cfg.pretrained else ""
    return (f"VideoMAE (depth {cfg.depth}, width {cfg.embed_dim}, {cfg.tubelet_size}x{cfg.patch_size}x"
            f"{cfg.patch_size} tubelets, {t}x{h}x{w} tokens, {cfg.pos_embed} positions{origin})")


def videomae_layout(model: nn.Module, batch: Any = None) -> GridLayout:
    """No prefix token (VideoMAE mean-pools), then the tubelet grid, time-major: T x H x W."""
    from ..analysis.layout import GridLayout

    return GridLayout(0, tuple(model.grid))


def videomae_stages(model: nn.Module) -> dict[str, tuple[str, str]]:
    """The host's hook points: ``last_block`` (the last encoder layer's tokens) and, without
    mean pooling, ``post_norm`` (the final layernorm's). ``fc_norm`` acts on pooled features,
    not tokens, so it is no stage. Paths go through ``blocks``, as `lm4vis.attach` names them."""
    points = {"last_block": (f"blocks.{len(model.blocks) - 1}", "output")}
    if getattr(model.hf.videomae, "layernorm", None) is not None:
        points["post_norm"] = ("hf.videomae.layernorm", "output")
    return points


__all__ = ["VideoMAEClassifier", "build_videomae", "load_pretrained", "check_data", "describe",
           "videomae_layout", "videomae_stages"]
