"""Reading decoder layers out of Meta's original LLaMA checkpoints.

A Meta checkpoint is a directory with ``params.json`` and ``consolidated.00.pth`` ...
``consolidated.NN.pth``, one file per tensor-parallel rank of the bigger models. Column-parallel
weights (``wq``, ``wk``, ``wv``, ``w1``, ``w3``, ``output``) are split along dim 0, row-parallel
ones (``wo``, ``w2``) along dim 1, norms are replicated; the token embedding is split along
dim 1 in LLaMA 1/2 and along dim 0 (vocabulary) in LLaMA 3, so its split is read off the shapes.

What is read from disk: each shard is opened with ``torch.load(mmap=True, weights_only=True)``,
which maps the file and unpickles only the small index; the needed tensors are copied out and
the mapping is released before the next tensor, so the mapped pages of a multi-GB file never
pile up in the process RSS (peak stays near one layer plus one tensor). ``weights_only`` also
means a pickle that asks to run code is refused, never executed.

Meta's q/k rows are in the interleaved rotary layout; Hugging Face's conversion permutes them
to the rotate-half layout, and so does this reader, so canonical weights equal HF's.
"""

from __future__ import annotations

import json
import os
import pickle
import re
from typing import Any

import torch
from torch import Tensor

from ..lm.config import LMConfig
from .base import CheckpointError, CheckpointReader

_SHARD_RE = re.compile(r"^consolidated\.(\d+)\.pth$")
_LAYER_KEY_RE = re.compile(r"^layers\.\d+\.attention\.wq\.weight$")
# Tensor-parallel split dimension by the last name component; None: replicated.
_SPLIT_DIM: dict[str, int | None] = {
    "wq": 0, "wk": 0, "wv": 0, "w1": 0, "w3": 0, "output": 0,
    "wo": 1, "w2": 1,
    "attention_norm": None, "ffn_norm": None, "norm": None,
}


def rotary_interleaved_to_half(w: Tensor, num_heads: int) -> Tensor:
    """Permute q/k rows per head from the interleaved rotary layout to the rotate-half layout.

    Meta (and llama.cpp, which re-applies Meta's layout) rotate pairs ``(2i, 2i+1)`` of each
    head; Hugging Face's LLaMA rotates ``(i, i + head_dim/2)``. This is the permutation of HF's
    conversion script; without rotary the layer's output does not depend on it, but the
    weights then equal HF's tensor by tensor and the rotary verification switch is exact.

    Args:
        w: ``(num_heads * head_dim, ...)`` weight (or bias) rows of q or k.
        num_heads: heads in ``w`` (query heads for q, key/value heads for k).
    """
    rows = w.shape[0]
    if rows % (2 * num_heads):
        raise CheckpointError(f"cannot split {rows} q/k rows into {num_heads} heads of even size")
    return (w.reshape(num_heads, rows // num_heads // 2, 2, *w.shape[1:])
            .transpose(1, 2).reshape(w.shape).contiguous())


def meta_layer_names(index: int) -> dict[str, str]:
    """Canonical `LMLayer` parameter name -> Meta key, for layer ``index``.

    Args:
        index: 0-based layer index.
    """
    p = f"layers.{index}."
    return {
        "attn_norm.weight": p + "attention_norm.weight",
        "attn.q_proj.weight": p + "attention.wq.weight",
        "attn.k_proj.weight": p + "attention.wk.weight",
        "attn.v_proj.weight": p + "attention.wv.weight",
        "attn.o_proj.weight": p + "attention.wo.weight",
        "mlp_norm.weight": p + "ffn_norm.weight",
        "mlp.gate_proj.weight": p + "feed_forward.w1.weight",
        "mlp.up_proj.weight": p + "feed_forward.w3.weight",
        "mlp.down_proj.weight": p + "feed_forward.w2.weight",
    }


FINAL_NORM_NAMES: dict[str, str] = {"weight": "norm.weight"}


def meta_ffn_dim(dim: int, multiple_of: int, ffn_dim_multiplier: float | None) -> int:
    """Hidden width of the SwiGLU MLP as Meta's ``FeedForward`` computes it from params.json.

    Args:
        dim: model width.
        multiple_of: round the hidden width up to a multiple of this.
        ffn_dim_multiplier: optional factor (LLaMA 2 70B, LLaMA 3).
    """
    hidden = int(2 * 4 * dim / 3)
    if ffn_dim_multiplier is not None:
        hidden = int(ffn_dim_multiplier * hidden)
    return multiple_of * ((hidden + multiple_of - 1) // multiple_of)


def _load_shard(path: str) -> dict[str, Tensor]:
    """Map one shard; the returned tensors share its pages until they are dropped."""
    try:
        sd = torch.load(path, mmap=True, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"{path} was refused: its pickle asks for more than plain tensors ({first[:160]}); "
            "lm4vis loads checkpoints with weights_only=True and never runs their code: use the "
            "original checkpoint from a trusted source"
        ) from None
    except (RuntimeError, EOFError, ValueError) as e:
        raise CheckpointError(
            f"{path} is not a readable torch.save zip file ({str(e).splitlines()[0][:160]}); "
            "re-download it, or re-save a legacy file with torch.save(torch.load(...))"
        ) from None
    if not isinstance(sd, dict):
        raise CheckpointError(f"{path} holds a {type(sd).__name__}, not a state dict of tensors")
    return sd


class MetaReader(CheckpointReader):
    """Layers of a Meta LLaMA checkpoint directory, concatenated across tensor-parallel shards.

    Args:
        path: directory with ``params.json`` and ``consolidated.NN.pth``.
    """

    format = "meta"
    #: ``"tensor"``: map a shard once per tensor and release it right after the copy (peak RSS
    #: one layer + one tensor); ``"shard"``: map once per layer (peak one layer + the layer's
    #: mapped pages). The benchmark measures both; "tensor" is the lower.
    open_per: str = "tensor"

    def __init__(self, path: str | os.PathLike) -> None:
        path = os.fspath(path)
        params = self._read_params(path)
        self.shards = self._find_shards(path)
        # Shapes and dtypes of every shard's tensors; the mapping is released right away.
        self._shapes: list[dict[str, tuple[int, ...]]] = []
        dtypes: set[torch.dtype] = set()
        for shard in self.shards:
            sd = _load_shard(shard)
            self._check_llama_keys(shard, sd)
            self._shapes.append({k: tuple(v.shape) for k, v in sd.items() if isinstance(v, Tensor)})
            dtypes.update(v.dtype for k, v in sd.items() if k.startswith("layers.0."))
            del sd
        self._dtype = dtypes.pop() if len(dtypes) == 1 else None
        super().__init__(path, self._config(path, params))
        for i in range(self.config.num_layers):
            for name in meta_layer_names(i).values():
                self._split_shapes(name)  # every layer's shards must agree, checked up front

    # --- construction helpers

    @staticmethod
    def _read_params(path: str) -> dict[str, Any]:
        file = os.path.join(path, "params.json")
        if not os.path.isfile(file):
            raise CheckpointError(f"{path} has no params.json; point at a Meta LLaMA checkpoint directory")
        with open(file) as f:
            params = json.load(f)
        missing = [k for k in ("dim", "n_layers", "n_heads") if k not in params]
        if missing:
            raise CheckpointError(f"{file} lacks {missing}; it is not a LLaMA params.json")
        return params

    @staticmethod
    def _find_shards(path: str) -> list[str]:
        found = {int(m.group(1)): f for f in os.listdir(path) if (m := _SHARD_RE.match(f))}
        if not found:
            raise CheckpointError(f"{path} has params.json but no consolidated.00.pth; copy the weights next to it")
        expected = range(max(found) + 1)
        missing = [f"consolidated.{i:02d}.pth" for i in expected if i not in found]
        if missing:
            raise CheckpointError(
                f"{path} is missing shard file(s) {', '.join(missing)} of {len(expected)}; "
                "copy every consolidated.NN.pth of the checkpoint"
            )
        return [os.path.join(path, found[i]) for i in expected]

    @staticmethod
    def _check_llama_keys(shard: str, sd: dict[str, Any]) -> None:
        if not any(_LAYER_KEY_RE.match(k) for k in sd):
            keys = list(sd)[:5]
            raise CheckpointError(
                f"{shard} is not a Meta LLaMA checkpoint: expected keys like "
                f"layers.0.attention.wq.weight, found {keys}{' ...' if len(sd) > 5 else ''}; "
                "pass a Meta LLaMA directory or the model's Hugging Face directory"
            )

    def _config(self, path: str, params: dict[str, Any]) -> LMConfig:
        dim, n_heads = int(params["dim"]), int(params["n_heads"])
        n_kv = int(params.get("n_kv_heads") or n_heads)
        ffn = sum(s["layers.0.feed_forward.w1.weight"][0] for s in self._shapes)
        expected = meta_ffn_dim(dim, int(params.get("multiple_of", 256)), params.get("ffn_dim_multiplier"))
        if ffn != expected:
            raise CheckpointError(
                f"{path}: the weights' MLP width {ffn} (w1 rows x {len(self.shards)} shards) differs "
                f"from params.json's {expected} (dim, multiple_of, ffn_dim_multiplier); a shard is "
                "missing or params.json belongs to another model"
            )
        q_rows = sum(s["layers.0.attention.wq.weight"][0] for s in self._shapes)
        if q_rows != dim:
            raise CheckpointError(
                f"{path}: wq has {q_rows} rows over {len(self.shards)} shard(s) but params.json says "
                f"dim={dim}; a shard is missing or params.json belongs to another model"
            )
        return LMConfig(
            family="llama", lm_dim=dim, num_layers=int(params["n_layers"]), num_heads=n_heads,
            num_kv_heads=n_kv, ffn_dim=ffn, norm_eps=float(params.get("norm_eps", 1e-5)),
            rope_theta=float(params.get("rope_theta", 10000.0)),
        )

    # --- shard geometry

    def _split_dim(self, name: str) -> int | None:
        parts = name.split(".")
        role = parts[-2] if parts[-1] in ("weight", "bias") else parts[-1]
        if role == "tok_embeddings":
            # LLaMA 1/2 shard the embedding width, LLaMA 3 the vocabulary: read it off shapes.
            if len(self.shards) == 1:
                return None
            first = self._shapes[0][name]
            return 1 if first[1] * len(self.shards) == self.config.lm_dim else 0
        if role not in _SPLIT_DIM:
            raise CheckpointError(f"{self.source}: no known tensor-parallel layout for {name!r}")
        return _SPLIT_DIM[role] if len(self.shards) > 1 else None

    def _split_shapes(self, name: str) -> tuple[list[tuple[int, ...]], int | None]:
        shapes = []
        for shard, table in zip(self.shards, self._shapes):
            if name not in table:
                raise CheckpointError(f"{shard} lacks {name}; the checkpoint is incomplete: re-download it")
            shapes.append(table[name])
        dim = self._split_dim(name)
        if any(s != shapes[0] for s in shapes):
            raise CheckpointError(
                f"{self.source}: the shards disagree on the shape of {name} "
                f"({', '.join(str(s) for s in shapes)}); the shards come from different checkpoints"
            )
        return shapes, dim

    # --- CheckpointReader API

    def tensor_names(self) -> list[str]:
        return list(self._shapes[0])

    def tensor(self, name: str, dtype: torch.dtype | None = None) -> Tensor:
        """One tensor by its Meta name, concatenated across shards (no q/k permutation).

        Args:
            name: e.g. ``tok_embeddings.weight`` or ``layers.0.attention.wq.weight``.
            dtype: convert to this dtype; the stored dtype when None.
        """
        if name not in self._shapes[0]:
            raise CheckpointError(
                f"{self.source} has no tensor {name!r}; it has e.g. {', '.join(list(self._shapes[0])[:6])}"
            )
        return self._gather({name: name}, dtype)[name]

    def layer_state(self, index: int, dtype: torch.dtype | None = None) -> dict[str, Tensor]:
        if not 0 <= index < self.config.num_layers:
            raise CheckpointError(
                f"layer {index} is out of range; {self.source} has {self.config.num_layers} layers"
            )
        state = self._gather(meta_layer_names(index), dtype)
        c = self.config
        state["attn.q_proj.weight"] = rotary_interleaved_to_half(state["attn.q_proj.weight"], c.num_heads)
        state["attn.k_proj.weight"] = rotary_interleaved_to_half(state["attn.k_proj.weight"], c.num_kv_heads)
        return state

    def final_norm_state(self, dtype: torch.dtype | None = None) -> dict[str, Tensor] | None:
        if FINAL_NORM_NAMES["weight"] not in self._shapes[0]:
            return None
        return self._gather(FINAL_NORM_NAMES, dtype)

    def layer_bytes(self, index: int) -> int:
        size = torch.empty((), dtype=self._dtype or torch.float32).element_size()
        total = 0
        for name in meta_layer_names(index).values():
            shapes, _ = self._split_shapes(name)
            n = 1
            for d in shapes[0]:
                n *= d
            total += n * (len(shapes) if self._split_dim(name) is not None else 1)
        return total * size

    def stored_dtype(self) -> str:
        return str(self._dtype).removeprefix("torch.") if self._dtype else "mixed"

    # --- reading

    def _gather(self, names: dict[str, str], dtype: torch.dtype | None) -> dict[str, Tensor]:
        """Copy ``names`` (key -> Meta name) out of the shards into fresh tensors.

        Each output is allocated once at its full size and every shard's slice is copied
        straight from the mapping into it, so no tensor is ever held twice.
        """
        out: dict[str, Tensor] = {}
        plan = {}
        for key, name in names.items():
            shapes, dim = self._split_shapes(name)
            full = list(shapes[0])
            if dim is not None:
                full[dim] *= len(shapes)
            plan[key] = (name, dim, shapes[0], full)
        if self.open_per == "shard":
            for s, shard in enumerate(self.shards):
                sd = _load_shard(shard)
                for key, spec in plan.items():
                    self._copy_piece(out, key, spec, s, sd[spec[0]], dtype)
                del sd
        else:
            for key, spec in plan.items():
                for s, shard in enumerate(self.shards):
                    if spec[1] is None and s > 0:
                        break  # replicated: shard 0's copy is the tensor
                    sd = _load_shard(shard)
                    self._copy_piece(out, key, spec, s, sd[spec[0]], dtype)
                    del sd  # unmaps the shard before the next tensor is touched
        return out

    @staticmethod
    def _copy_piece(out: dict[str, Tensor], key: str, spec: tuple, s: int, piece: Tensor,
                    dtype: torch.dtype | None) -> None:
        name, dim, shard_shape, full = spec
        if key not in out:
            out[key] = torch.empty(full, dtype=dtype or piece.dtype)
        if dim is None:
            if s == 0:
                out[key].copy_(piece)
            return
        width = shard_shape[dim]
        out[key].narrow(dim, s * width, width).copy_(piece)
