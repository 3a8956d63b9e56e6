"""Reading decoder layers out of GGUF files (llama.cpp's format), one tensor at a time.

What is read from disk: the header (metadata and the tensor table) and then, per requested
layer, exactly the byte ranges of that layer's tensors, with plain positioned file reads into
freshly allocated buffers. The file is never memory-mapped: pages of a mapping that were touched
count in the process RSS, so mapping a 2 GB file to keep one layer would make the process look
(and, under memory pressure, behave) as if it held far more than one layer.

The header is parsed here, with ``gguf``'s constants, instead of with ``gguf.GGUFReader``:
that reader turns every tokenizer string into numpy views (on SmolLM2-135M: 1.8 s and 160 MB of
RSS before the first weight is read) and fails on truncated files with a bare reshape error.
Dequantization is ``gguf.quants.dequantize``.

Weight layout: llama.cpp's converter permutes the rows of q and k per head for the ``llama``
architecture (Meta's interleaved rotary layout); the reader undoes that so the canonical
weights equal Hugging Face's. Gemma's converter stores norm weights as ``1 + w``; the reader
subtracts 1 again so the layer matches Hugging Face Gemma (``norm_unit_offset``).
"""

from __future__ import annotations

import io
import os
import struct
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import torch
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType, LlamaFileType
from gguf.quants import dequantize
from torch import Tensor

from ..lm.config import LMConfig
from .base import CheckpointError, CheckpointReader
from .meta import rotary_interleaved_to_half

#: GGUF ``general.architecture`` values lm4vis reads.
SUPPORTED_ARCHITECTURES: tuple[str, ...] = ("llama", "qwen2", "qwen3", "gemma", "gemma2", "gemma3")

_MAGIC = b"GGUF"
_DEFAULT_ALIGNMENT = 32
# Stored floating types that are copied bit for bit; everything else is dequantized to fp32.
_PLAIN_FLOATS: dict[GGMLQuantizationType, torch.dtype] = {
    GGMLQuantizationType.F32: torch.float32,
    GGMLQuantizationType.F16: torch.float16,
    GGMLQuantizationType.BF16: torch.bfloat16,
}
# Quantized tensors are dequantized in chunks of this many values so that the temporaries
# of the numpy dequantizer stay small next to the layer itself.
_DEQUANT_CHUNK = 1 << 22

_SCALARS: dict[int, str] = {
    GGUFValueType.UINT8: "<B", GGUFValueType.INT8: "<b", GGUFValueType.UINT16: "<H",
    GGUFValueType.INT16: "<h", GGUFValueType.UINT32: "<I", GGUFValueType.INT32: "<i",
    GGUFValueType.FLOAT32: "<f", GGUFValueType.BOOL: "<?", GGUFValueType.UINT64: "<Q",
    GGUFValueType.INT64: "<q", GGUFValueType.FLOAT64: "<d",
}


@dataclass(frozen=True)
class TensorInfo:
    """Where one tensor lives in the file.

    Args:
        name: GGUF tensor name (``blk.3.attn_q.weight``).
        qtype: storage type (F16, Q4_1, ...).
        shape: torch order, slowest dimension first (GGUF lists ``ne0``, the fastest, first).
        offset: absolute byte offset of the tensor's data in the file.
        nbytes: bytes the data occupies.
    """

    name: str
    qtype: GGMLQuantizationType
    shape: tuple[int, ...]
    offset: int
    nbytes: int


@dataclass(frozen=True)
class GGUFHeader:
    version: int
    metadata: dict[str, Any]
    tensors: dict[str, TensorInfo]
    data_offset: int


# ----------------------------------------------------------------------------- header parsing


class _HeaderTruncated(Exception):
    pass


def _read_exact(f: BinaryIO, n: int) -> bytes:
    b = f.read(n)
    if len(b) != n:
        raise _HeaderTruncated
    return b


def _unpack(f: BinaryIO, fmt: str) -> Any:
    return struct.unpack(fmt, _read_exact(f, struct.calcsize(fmt)))[0]


# Sanity bounds: a corrupt length field must not make the parser allocate or loop for ever.
_MAX_STRING = 1 << 24
_MAX_ARRAY = 1 << 24


def _read_string(f: BinaryIO) -> str:
    n = _unpack(f, "<Q")
    if n > _MAX_STRING:
        raise ValueError(f"implausible string length {n}")
    return _read_exact(f, n).decode("utf-8", errors="replace")


def _skip_value(f: BinaryIO, vtype: int) -> None:
    if vtype == GGUFValueType.STRING:
        f.seek(_unpack(f, "<Q"), io.SEEK_CUR)
    elif vtype == GGUFValueType.ARRAY:
        etype, count = _unpack(f, "<I"), _unpack(f, "<Q")
        if etype in _SCALARS:
            f.seek(count * struct.calcsize(_SCALARS[etype]), io.SEEK_CUR)
        elif count > _MAX_ARRAY:
            raise ValueError(f"implausible array length {count}")
        else:
            for _ in range(count):
                _skip_value(f, etype)
    elif vtype in _SCALARS:
        f.seek(struct.calcsize(_SCALARS[vtype]), io.SEEK_CUR)
    else:
        raise ValueError(f"unknown metadata value type {vtype}")


def _read_value(f: BinaryIO, vtype: int) -> Any:
    if vtype == GGUFValueType.STRING:
        return _read_string(f)
    if vtype == GGUFValueType.ARRAY:
        etype, count = _unpack(f, "<I"), _unpack(f, "<Q")
        if count > _MAX_ARRAY:
            raise ValueError(f"implausible array length {count}")
        return [_read_value(f, etype) for _ in range(count)]
    if vtype in _SCALARS:
        return _unpack(f, _SCALARS[vtype])
    raise ValueError(f"unknown metadata value type {vtype}")


def read_header(path: str) -> GGUFHeader:
    """Parse a GGUF file's metadata and tensor table with plain reads (no mapping).

    Tokenizer arrays (``tokenizer.*``) are skipped, not decoded: lm4vis needs no vocabulary.

    Args:
        path: the ``.gguf`` file.

    Raises:
        CheckpointError: not a GGUF file, an unsupported GGUF version, a truncated header or
            tensor data that would lie beyond the end of the file.
    """
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        magic = f.read(4)
        if magic != _MAGIC:
            raise CheckpointError(
                f"{path} is not a GGUF file (it starts with {magic!r}, not b'GGUF'); pass a .gguf "
                "file written by llama.cpp's converter, or the checkpoint's own directory"
            )
        try:
            version = _unpack(f, "<I")
            if version not in (2, 3):
                swapped = struct.unpack(">I", struct.pack("<I", version))[0]
                kind = "a big-endian GGUF" if swapped in (2, 3) else f"GGUF version {version}"
                raise CheckpointError(
                    f"{path} is {kind}; lm4vis reads little-endian GGUF v2/v3: re-convert it with "
                    "a current llama.cpp (convert_hf_to_gguf.py)"
                )
            n_tensors, n_kv = _unpack(f, "<Q"), _unpack(f, "<Q")
            metadata: dict[str, Any] = {}
            for _ in range(n_kv):
                key, vtype = _read_string(f), _unpack(f, "<I")
                if key.startswith("tokenizer."):
                    _skip_value(f, vtype)
                else:
                    metadata[key] = _read_value(f, vtype)
            infos = []
            for _ in range(n_tensors):
                name = _read_string(f)
                n_dims = _unpack(f, "<I")
                if n_dims > 4:  # GGML_MAX_DIMS
                    raise ValueError(f"tensor {name} has {n_dims} dimensions")
                ne = [_unpack(f, "<Q") for _ in range(n_dims)]
                infos.append((name, ne, _unpack(f, "<I"), _unpack(f, "<Q")))
            end = f.tell()
        except _HeaderTruncated:
            raise CheckpointError(
                f"{path} is truncated: its header ends before the tensor table does ({size} bytes "
                "on disk); re-download or re-convert the file"
            ) from None
        except (ValueError, struct.error) as e:
            raise CheckpointError(f"{path}: corrupt GGUF header ({e}); re-download or re-convert it") from None
    if end > size:
        raise CheckpointError(f"{path} is truncated inside its header; re-download or re-convert it")

    align = int(metadata.get("general.alignment", _DEFAULT_ALIGNMENT))
    data_offset = -(-end // align) * align
    tensors: dict[str, TensorInfo] = {}
    for name, ne, qtype_id, rel in infos:
        try:
            qtype = GGMLQuantizationType(qtype_id)
        except ValueError:
            raise CheckpointError(
                f"{path}: tensor {name} has unknown GGML type id {qtype_id}; this file needs a newer "
                "reader: upgrade the gguf package (pip install -U gguf) or re-quantize it to "
                "Q8_0/Q4_K/F16"
            ) from None
        block, type_size = GGML_QUANT_SIZES[qtype]
        n = int(np.prod(ne)) if ne else 1
        tensors[name] = TensorInfo(name, qtype, tuple(reversed(ne)), data_offset + rel,
                                   n // block * type_size)
    # Every tensor's bytes must be on disk: a cut download otherwise shows up much later
    # as garbage weights or a short read.
    last = max(tensors.values(), key=lambda t: t.offset + t.nbytes, default=None)
    if last is not None and last.offset + last.nbytes > size:
        raise CheckpointError(
            f"{path} is truncated: tensor {last.name} ends at byte {last.offset + last.nbytes} but "
            f"the file has {size} bytes; re-download or re-convert the file"
        )
    return GGUFHeader(version, metadata, tensors, data_offset)


# ----------------------------------------------------------------------------- pure mappings


def config_from_metadata(arch: str, metadata: dict[str, Any], tensor_names: set[str]) -> LMConfig:
    """Build the layer config from GGUF metadata (``<arch>.*`` keys) and the tensor names.

    Bias, q/k-norm and sandwich-norm presence are read from which tensors exist, so a variant of
    an architecture that adds one of them is read correctly without a new branch.

    Args:
        arch: ``general.architecture``.
        metadata: the file's key/value metadata.
        tensor_names: names of all tensors in the file.
    """
    if arch not in SUPPORTED_ARCHITECTURES:
        raise CheckpointError(
            f"GGUF architecture {arch!r} is not supported; lm4vis reads "
            f"{', '.join(SUPPORTED_ARCHITECTURES)}. Use a GGUF of one of those, or the model's "
            "Hugging Face directory"
        )

    def key(name: str, default: Any = KeyError) -> Any:
        value = metadata.get(f"{arch}.{name}", default)
        if value is KeyError:
            raise CheckpointError(f"GGUF metadata lacks {arch}.{name}; the file is incomplete: re-convert it")
        if isinstance(value, list):
            # Per-layer values (e.g. OpenELM's head counts) do not fit one LMConfig.
            if len(set(value)) != 1:
                raise CheckpointError(
                    f"GGUF metadata {arch}.{name} varies per layer ({value[:4]}...); lm4vis needs "
                    "layers of one shape"
                )
            value = value[0]
        return value

    num_heads = int(key("attention.head_count"))
    lm_dim = int(key("embedding_length"))
    head_dim = key("attention.key_length", None)
    fields: dict[str, Any] = dict(
        lm_dim=lm_dim,
        num_layers=int(key("block_count")),
        num_heads=num_heads,
        num_kv_heads=int(key("attention.head_count_kv", num_heads)),
        head_dim=None if head_dim is None else int(head_dim),
        ffn_dim=int(key("feed_forward_length")),
        norm_eps=float(key("attention.layer_norm_rms_epsilon", 1e-6 if arch.startswith("gemma") else 1e-5)),
        rope_theta=float(key("rope.freq_base", 10000.0)),
        qkv_bias="blk.0.attn_q.bias" in tensor_names,
        o_bias="blk.0.attn_output.bias" in tensor_names,
        qk_norm="blk.0.attn_q_norm.weight" in tensor_names,
        sandwich_norm="blk.0.post_attention_norm.weight" in tensor_names,
    )
    rotary_dim = key("rope.dimension_count", None)
    if arch == "llama" and rotary_dim is not None:
        fields["rotary_dim"] = int(rotary_dim)
    if not arch.startswith("gemma"):
        return LMConfig(family="llama", **fields)

    fields.update(norm_unit_offset=True, act="gelu_tanh")
    if arch in ("gemma2", "gemma3"):
        hd = fields["head_dim"] or lm_dim // num_heads
        # GGUF does not store query_pre_attn_scalar. llama.cpp uses head_dim, except for the
        # 27B models (46 layers for Gemma 2, 62 for Gemma 3), trained with lm_dim / num_heads.
        big = fields["num_layers"] == {"gemma2": 46, "gemma3": 62}[arch]
        fields["attn_scale"] = (lm_dim / num_heads if big else hd) ** -0.5
    if arch == "gemma2":
        fields["attn_softcap"] = float(key("attn_logit_softcapping", 50.0))
    return LMConfig(family="gemma", **fields)


def gguf_layer_names(config: LMConfig, index: int) -> dict[str, str]:
    """Canonical `LMLayer` parameter name -> GGUF tensor name, for layer ``index``.

    Args:
        config: the layer config (decides which optional tensors exist).
        index: 0-based layer index.
    """
    b = f"blk.{index}."
    names = {
        "attn_norm.weight": b + "attn_norm.weight",
        "attn.q_proj.weight": b + "attn_q.weight",
        "attn.k_proj.weight": b + "attn_k.weight",
        "attn.v_proj.weight": b + "attn_v.weight",
        "attn.o_proj.weight": b + "attn_output.weight",
        "mlp_norm.weight": b + "ffn_norm.weight",
        "mlp.up_proj.weight": b + "ffn_up.weight",
        "mlp.down_proj.weight": b + "ffn_down.weight",
    }
    if config.mlp == "gated":
        names["mlp.gate_proj.weight"] = b + "ffn_gate.weight"
    if config.qkv_bias:
        for p in "qkv":
            names[f"attn.{p}_proj.bias"] = b + f"attn_{p}.bias"
    if config.o_bias:
        names["attn.o_proj.bias"] = b + "attn_output.bias"
    if config.qk_norm:
        names["attn.q_norm.weight"] = b + "attn_q_norm.weight"
        names["attn.k_norm.weight"] = b + "attn_k_norm.weight"
    if config.sandwich_norm:
        names["post_attn_norm.weight"] = b + "post_attention_norm.weight"
        names["post_mlp_norm.weight"] = b + "post_ffw_norm.weight"
    return names


FINAL_NORM_NAMES: dict[str, str] = {"weight": "output_norm.weight"}


# ----------------------------------------------------------------------------- the reader


class GGUFReader(CheckpointReader):
    """Layers of a GGUF file, read tensor by tensor with positioned reads.

    Args:
        path: the ``.gguf`` file.
    """

    format = "gguf"

    def __init__(self, path: str | os.PathLike) -> None:
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise CheckpointError(f"no GGUF file at {path}; check the path")
        self.header = read_header(path)
        arch = self.header.metadata.get("general.architecture")
        if not isinstance(arch, str):
            raise CheckpointError(f"{path} has no general.architecture; re-convert it with llama.cpp")
        self.arch = arch
        config = config_from_metadata(arch, self.header.metadata, set(self.header.tensors))
        super().__init__(path, config)
        # Only llama.cpp's LlamaModel converter permutes q/k; Qwen and Gemma keep HF's layout.
        self._permute_qk = arch == "llama"
        # Gemma's converter adds 1 to every norm weight (llama.cpp applies plain RMSNorm).
        self._norm_offset = arch.startswith("gemma")

    # --- CheckpointReader API

    def tensor_names(self) -> list[str]:
        return list(self.header.tensors)

    def layer_names(self, index: int) -> dict[str, str]:
        if not 0 <= index < self.config.num_layers:
            raise CheckpointError(
                f"layer {index} is out of range; {self.source} has {self.config.num_layers} layers"
            )
        return gguf_layer_names(self.config, index)

    def layer_state(self, index: int, dtype: torch.dtype | None = None) -> dict[str, Tensor]:
        c = self.config
        dtype = dtype or self.default_dtype()
        state = {}
        for canonical, name in self.layer_names(index).items():
            t = self._canonical(canonical, self.tensor(name))
            if canonical == "attn.q_proj.weight" and self._permute_qk:
                t = rotary_interleaved_to_half(t, c.num_heads)
            elif canonical == "attn.k_proj.weight" and self._permute_qk:
                t = rotary_interleaved_to_half(t, c.num_kv_heads)
            state[canonical] = t.to(dtype)
        return state

    def final_norm_state(self, dtype: torch.dtype | None = None) -> dict[str, Tensor] | None:
        if FINAL_NORM_NAMES["weight"] not in self.header.tensors:
            return None
        dtype = dtype or self.default_dtype()
        return {k: self._canonical("final_norm." + k, self.tensor(v)).to(dtype)
                for k, v in FINAL_NORM_NAMES.items()}

    def default_dtype(self) -> torch.dtype:
        """dtype of the layers when none is asked for: the matrices' stored float type (F16,
        BF16 or F32), float32 for quantized files. llama.cpp keeps norms in F32 next to F16
        matrices; one dtype per stack keeps the matmuls valid."""
        types = set(self._matrix_types())
        if len(types) == 1 and (only := types.pop()) in _PLAIN_FLOATS:
            return _PLAIN_FLOATS[only]
        return torch.float32

    def _matrix_types(self) -> list[GGMLQuantizationType]:
        infos = [self.header.tensors[n] for n in self.layer_names(0).values()]
        return [i.qtype for i in infos if len(i.shape) > 1] or [i.qtype for i in infos]

    def tensor(self, name: str, dtype: torch.dtype | None = None) -> Tensor:
        """One tensor by its GGUF name, exactly as stored (no q/k or norm fix-ups).

        F32/F16/BF16 keep their stored dtype; quantized types are dequantized to float32.

        Args:
            name: e.g. ``token_embd.weight`` or ``blk.0.attn_q.weight``.
            dtype: convert to this dtype.
        """
        info = self.header.tensors.get(name)
        if info is None:
            raise CheckpointError(
                f"{self.source} has no tensor {name!r}; it has e.g. {', '.join(list(self.header.tensors)[:6])}"
            )
        t = self._read(info)
        return t if dtype is None else t.to(dtype)

    def layer_bytes(self, index: int) -> int:
        return sum(self.header.tensors[n].nbytes for n in self.layer_names(index).values())

    def stored_dtype(self) -> str:
        """llama.cpp's file type when the file records one ("Q4_1", "Q4_K_M", "F16"), else the
        most common storage type of the layers' matrices."""
        try:
            name = LlamaFileType(self.header.metadata["general.file_type"]).name
        except (KeyError, ValueError):
            name = "GUESSED"
        if name != "GUESSED":
            return name.removeprefix("MOSTLY_").removeprefix("ALL_")
        types = self._matrix_types()
        return max(set(types), key=types.count).name

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "architecture": self.arch, "stored_dtype": self.stored_dtype()}

    # --- internals

    def _canonical(self, canonical: str, t: Tensor) -> Tensor:
        if self._norm_offset and canonical.endswith("norm.weight"):
            return t.float() - 1.0  # in fp32: the stored 1 + w is F32 in every llama.cpp file
        return t

    def _read(self, info: TensorInfo) -> Tensor:
        raw = torch.empty(info.nbytes, dtype=torch.uint8)
        with open(self.source, "rb", buffering=0) as f:
            f.seek(info.offset)
            view = memoryview(raw.numpy())
            done = 0
            while done < info.nbytes:
                n = f.readinto(view[done:])
                if not n:
                    raise CheckpointError(
                        f"{self.source} is truncated: tensor {info.name} ends past the end of the "
                        "file; re-download or re-convert it"
                    )
                done += n
        plain = _PLAIN_FLOATS.get(info.qtype)
        if plain is not None:
            return raw.view(plain).reshape(info.shape)
        return _dequantize(raw.numpy(), info, self.source)


def _dequantize(raw: np.ndarray, info: TensorInfo, source: str) -> Tensor:
    """Dequantize row chunks into one preallocated float32 tensor (small temporaries)."""
    row_len = info.shape[-1]
    rows = int(np.prod(info.shape[:-1])) if len(info.shape) > 1 else 1
    block, type_size = GGML_QUANT_SIZES[info.qtype]
    row_bytes = row_len // block * type_size
    out = torch.empty((rows, row_len), dtype=torch.float32)
    packed = raw.reshape(rows, row_bytes)
    step = max(1, _DEQUANT_CHUNK // max(row_len, 1))
    for start in range(0, rows, step):
        try:
            values = dequantize(packed[start:start + step], info.qtype)
        except NotImplementedError:
            raise CheckpointError(
                f"{source}: tensor {info.name} is stored as {info.qtype.name}, which the gguf "
                "package cannot dequantize; re-quantize the file (llama-quantize) to e.g. Q8_0, "
                "Q4_K or F16, or upgrade gguf"
            ) from None
        out[start:start + step] = torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))
    return out.reshape(info.shape)
