"""Peak RSS and time of extracting one decoder layer versus loading the whole checkpoint.

The paper's code loads a whole LLaMA checkpoint to keep one layer. lm4vis reads only that
layer's tensors. This script measures both, for the three formats lm4vis reads:

- ``hf``: a Hugging Face directory (``config.json`` + ``model.safetensors``);
  whole-file load: ``safetensors.torch.load_file``;
- ``gguf``: a GGUF file with F16 matrices (F32 norms, as llama.cpp writes them);
  whole-file load: every tensor read into memory;
- ``meta``: a Meta directory (``params.json`` + ``consolidated.00.pth``);
  whole-file load: ``torch.load`` (the paper's approach). Layer extraction is measured twice:
  the reader mapping the shard once per tensor (the default) and once per layer.

The checkpoint is random, LLaMA-shaped and at least 2 GB (default: dim 2048, 24 layers, MLP
5632, vocabulary 32000, fp16, about 2.2 GB per format), generated into ``--workdir`` once and
reused. Every measurement runs in a fresh subprocess: imports first, then the peak-RSS counter
is reset (``/proc/self/clear_refs``) and the operation's added peak is ``VmHWM - VmRSS``.

Page cache: the files were just written or read, so they are normally fully cached ("warm");
caches cannot be dropped reliably without root on a shared machine, so the numbers are warm-
cache numbers, and the ``cached`` column says how much of the file was in the page cache.

Example::

    python benchmarks/extract_layer.py --workdir .bench --out benchmarks/results/extract_layer.json
"""

from __future__ import annotations

import os

# On a shared 2-core machine OpenMP's busy-wait makes timings erratic; see block_speed.py.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

FORMATS = ("hf", "gguf", "meta")
MiB = 1 << 20


@dataclass(frozen=True)
class ModelShape:
    """Shape of the random LLaMA checkpoint.

    Args:
        dim: residual width.
        layers: decoder layers.
        heads: attention heads.
        kv_heads: key/value heads.
        ffn: MLP hidden width; must equal Meta's formula from ``dim`` and ``multiple_of``.
        vocab: vocabulary size.
        multiple_of: Meta's rounding of the MLP width.
        seed: seed of the random weights.
    """

    dim: int = 2048
    layers: int = 24
    heads: int = 16
    kv_heads: int = 16
    ffn: int = 5632
    vocab: int = 32000
    multiple_of: int = 256
    seed: int = 0

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads

    def tensors(self) -> dict[str, tuple[int, ...]]:
        """Hugging Face names and shapes of every tensor."""
        d, kv, f = self.dim, self.kv_heads * self.head_dim, self.ffn
        shapes: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (self.vocab, d)}
        for i in range(self.layers):
            p = f"model.layers.{i}."
            shapes.update({
                p + "input_layernorm.weight": (d,),
                p + "self_attn.q_proj.weight": (d, d),
                p + "self_attn.k_proj.weight": (kv, d),
                p + "self_attn.v_proj.weight": (kv, d),
                p + "self_attn.o_proj.weight": (d, d),
                p + "post_attention_layernorm.weight": (d,),
                p + "mlp.gate_proj.weight": (f, d),
                p + "mlp.up_proj.weight": (f, d),
                p + "mlp.down_proj.weight": (d, f),
            })
        shapes["model.norm.weight"] = (d,)
        shapes["lm_head.weight"] = (self.vocab, d)
        return shapes


# ----------------------------------------------------------------------------- generation


def _random_state(shape: ModelShape):
    """The random fp16 weights under Hugging Face names (norms near 1, matrices ~N(0, 0.02))."""
    import torch

    g = torch.Generator().manual_seed(shape.seed)
    state = {}
    for name, dims in shape.tensors().items():
        if len(dims) == 1:
            t = 1.0 + 0.1 * torch.randn(dims, generator=g)
        else:
            t = 0.02 * torch.randn(dims, generator=g)
        state[name] = t.half()
    return state


def _interleave(w, heads: int):
    """HF rotate-half q/k rows -> the interleaved layout that GGUF and Meta files store."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape).clone()


def _layer_parts(name: str) -> tuple[int, str]:
    _, _, i, rest = name.split(".", 3)
    return int(i), rest.rsplit(".", 1)[0]


def write_hf(folder: Path, shape: ModelShape, state) -> None:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": shape.dim,
        "num_hidden_layers": shape.layers, "num_attention_heads": shape.heads,
        "num_key_value_heads": shape.kv_heads, "intermediate_size": shape.ffn,
        "vocab_size": shape.vocab, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "hidden_act": "silu", "max_position_embeddings": 2048, "tie_word_embeddings": False,
        "torch_dtype": "float16",
    }
    (folder / "config.json").write_text(json.dumps(config, indent=1))
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})


_GGUF_NAMES = {
    "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
    "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}


def write_gguf(file: Path, shape: ModelShape, state) -> None:
    """As llama.cpp's converter writes an F16 LLaMA: q/k interleaved, norms in F32."""
    import gguf

    file.parent.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(file), "llama")
    w.add_block_count(shape.layers)
    w.add_context_length(2048)
    w.add_embedding_length(shape.dim)
    w.add_feed_forward_length(shape.ffn)
    w.add_head_count(shape.heads)
    w.add_head_count_kv(shape.kv_heads)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    for name, t in state.items():
        if name == "model.embed_tokens.weight":
            gname = "token_embd.weight"
        elif name == "model.norm.weight":
            gname = "output_norm.weight"
        elif name == "lm_head.weight":
            gname = "output.weight"
        else:
            i, module = _layer_parts(name)
            gname = f"blk.{i}.{_GGUF_NAMES[module]}.weight"
            if module == "self_attn.q_proj":
                t = _interleave(t, shape.heads)
            elif module == "self_attn.k_proj":
                t = _interleave(t, shape.kv_heads)
        w.add_tensor(gname, t.float().numpy() if t.dim() == 1 else t.numpy())
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


_META_NAMES = {
    "input_layernorm": "attention_norm", "self_attn.q_proj": "attention.wq",
    "self_attn.k_proj": "attention.wk", "self_attn.v_proj": "attention.wv",
    "self_attn.o_proj": "attention.wo", "post_attention_layernorm": "ffn_norm",
    "mlp.gate_proj": "feed_forward.w1", "mlp.down_proj": "feed_forward.w2",
    "mlp.up_proj": "feed_forward.w3",
}


def write_meta(folder: Path, shape: ModelShape, state) -> None:
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, t in state.items():
        if name == "model.embed_tokens.weight":
            out["tok_embeddings.weight"] = t
        elif name == "model.norm.weight":
            out["norm.weight"] = t
        elif name == "lm_head.weight":
            out["output.weight"] = t
        else:
            i, module = _layer_parts(name)
            if module == "self_attn.q_proj":
                t = _interleave(t, shape.heads)
            elif module == "self_attn.k_proj":
                t = _interleave(t, shape.kv_heads)
            out[f"layers.{i}.{_META_NAMES[module]}.weight"] = t
    torch.save(out, folder / "consolidated.00.pth")
    params = {"dim": shape.dim, "n_layers": shape.layers, "n_heads": shape.heads,
              "n_kv_heads": shape.kv_heads, "multiple_of": shape.multiple_of, "norm_eps": 1e-5,
              "rope_theta": 10000.0, "vocab_size": shape.vocab}
    (folder / "params.json").write_text(json.dumps(params))


def checkpoint_path(workdir: Path, fmt: str) -> Path:
    """What `load_lm_layers` is given for each format."""
    return {"hf": workdir / "hf", "gguf": workdir / "gguf" / "model-f16.gguf", "meta": workdir / "meta"}[fmt]


def data_file(workdir: Path, fmt: str) -> Path:
    """The file holding the weights (for its size and page-cache residency)."""
    return {"hf": workdir / "hf" / "model.safetensors", "gguf": workdir / "gguf" / "model-f16.gguf",
            "meta": workdir / "meta" / "consolidated.00.pth"}[fmt]


def ensure_checkpoints(workdir: Path, shape: ModelShape, formats: list[str]) -> None:
    """Write each missing format; a ``.complete`` stamp with the shape marks a finished one."""
    todo = []
    for fmt in formats:
        stamp = workdir / f".{fmt}.complete"
        if stamp.exists() and json.loads(stamp.read_text()) == asdict(shape):
            continue
        todo.append(fmt)
    if not todo:
        return
    print(f"generating {', '.join(todo)} checkpoint(s) in {workdir} ...", flush=True)
    state = _random_state(shape)
    writers = {"hf": write_hf, "gguf": write_gguf, "meta": write_meta}
    for fmt in todo:
        target = checkpoint_path(workdir, fmt)
        folder = target if target.suffix != ".gguf" else target.parent
        shutil.rmtree(folder, ignore_errors=True)
        t0 = time.perf_counter()
        writers[fmt](target, shape, state)
        (workdir / f".{fmt}.complete").write_text(json.dumps(asdict(shape)))
        size = data_file(workdir, fmt).stat().st_size
        print(f"  {fmt}: {size / MiB:.0f} MiB in {time.perf_counter() - t0:.0f} s", flush=True)


# ----------------------------------------------------------------------------- measurement


def _status() -> dict[str, int]:
    text = Path("/proc/self/status").read_text()
    return {k: int(re.search(rf"^{k}:\s+(\d+) kB", text, re.M).group(1)) * 1024
            for k in ("VmRSS", "VmHWM", "RssAnon", "RssFile")}


def _touch(t) -> None:
    """Read one element per 4 KiB page of ``t`` (no copy of the tensor)."""
    flat = t.reshape(-1)
    float(flat[:: max(1, 4096 // t.element_size())].float().sum())


def _load_whole(fmt: str, path: Path) -> dict:
    """The whole checkpoint in memory, the way one would without a layer reader."""
    import torch

    if fmt == "hf":
        from safetensors.torch import load_file
        return load_file(str(path / "model.safetensors"))
    if fmt == "meta":
        return torch.load(path / "consolidated.00.pth", map_location="cpu", weights_only=True)
    from lm4vis.checkpoint.gguf import GGUFReader
    reader = GGUFReader(path)
    return {name: reader.tensor(name) for name in reader.tensor_names()}


def child(fmt: str, mode: str, path: Path, layer: int) -> dict[str, Any]:
    """One measurement, in this (fresh) process. Prints nothing; returns the record."""
    import gc

    import gguf  # noqa: F401  (imported before the baseline, like everything below)
    import safetensors.torch  # noqa: F401
    import torch

    from lm4vis.checkpoint import load_lm_layers, open_checkpoint
    from lm4vis.checkpoint import gguf as _gguf  # noqa: F401
    from lm4vis.checkpoint import hf as _hf  # noqa: F401
    from lm4vis.checkpoint.meta import MetaReader

    if mode == "layer-per-shard":
        MetaReader.open_per = "shard"
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS, so the peak is this op's
    base = _status()
    t0 = time.perf_counter()
    if mode == "whole":
        obj = _load_whole(fmt, path)
        tensors = list(obj.values())
    else:
        obj = load_lm_layers(path, layers=layer)
        tensors = list(obj.layers.state_dict().values())
    loaded = time.perf_counter() - t0
    # safetensors (and torch.load with mmap) may hand back tensors that are views of a file
    # mapping whose pages are only read when used; touch every page, as a forward pass would,
    # so that both approaches are measured with their weights actually in memory.
    for t in tensors:
        _touch(t)
    seconds = time.perf_counter() - t0
    held = sum(t.numel() * t.element_size() for t in tensors)
    end = _status()
    record = {
        "format": fmt, "mode": mode, "seconds": seconds, "seconds_before_touch": loaded,
        "peak_added": end["VmHWM"] - base["VmRSS"], "rss_added": end["VmRSS"] - base["VmRSS"],
        "rss_file_end": end["RssFile"] - base["RssFile"], "held_bytes": held,
    }
    if mode != "whole":
        reader = open_checkpoint(path)
        record["layer_bytes_on_disk"] = reader.layer_bytes(obj.layer_indices[0])
        record["stored_dtype"] = reader.stored_dtype()
        record["layer_dtype"] = str(obj.dtype).removeprefix("torch.")
    del obj, tensors
    return record


def cached_fraction(file: Path) -> float | None:
    """Fraction of ``file`` in the page cache (util-linux ``fincore``), None if unknown."""
    if shutil.which("fincore") is None:
        return None
    try:
        out = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", str(file)],
                             capture_output=True, text=True, check=True).stdout.strip()
        return int(out) / file.stat().st_size
    except (subprocess.CalledProcessError, ValueError):
        return None


def run_child(fmt: str, mode: str, path: Path, layer: int) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", fmt, mode, str(path), str(layer)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{fmt}/{mode} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of each number over the runs; strings from the first run."""
    out = dict(records[0])
    for key, value in records[0].items():
        if all(isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool) for r in records):
            out[key] = statistics.median(r[key] for r in records)
    out["runs"] = len(records)
    return out


def markdown(results: dict[str, dict[str, Any]]) -> str:
    rows = [
        "| format | one layer | extract one layer: peak RSS added (x layer) | time | load whole file: peak RSS added | time | whole / extract | file in page cache |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for fmt, r in results.items():
        for mode in [m for m in ("layer", "layer-per-shard") if m in r]:
            lay, whole = r[mode], r["whole"]
            label = fmt if mode == "layer" else f"{fmt} (map per layer)"
            rows.append(
                f"| {label} | {lay['held_bytes'] / MiB:.1f} MiB | {lay['peak_added'] / MiB:.1f} MiB "
                f"({lay['ratio_to_layer']:.2f}x) | {lay['seconds']:.2f} s | {whole['peak_added'] / MiB:.0f} MiB "
                f"| {whole['seconds']:.2f} s | {r[mode + '_whole_ratio']:.1f}x | {r['cached']} |"
            )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Targets: extraction peak <= 1.5x one layer's bytes; "
                                            "whole-file peak >= 10x the extraction peak.")
    parser.add_argument("--workdir", type=Path, default=Path(".bench"),
                        help="where the random checkpoints are generated and reused (default .bench/)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/extract_layer.json"),
                        help="JSON results file")
    parser.add_argument("--formats", nargs="+", choices=FORMATS, default=list(FORMATS))
    parser.add_argument("--runs", type=int, default=3, help="fresh-process runs per measurement (median)")
    parser.add_argument("--layer", type=int, default=-1, help="layer to extract (default: the last)")
    for field, default in asdict(ModelShape()).items():
        parser.add_argument(f"--{field.replace('_', '-')}", type=int, default=default,
                            help=f"checkpoint shape (default {default})")
    parser.add_argument("--child", nargs=4, metavar=("FORMAT", "MODE", "PATH", "LAYER"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        fmt, mode, path, layer = args.child
        print(json.dumps(child(fmt, mode, Path(path), int(layer))))
        return 0

    shape = ModelShape(**{f: getattr(args, f) for f in asdict(ModelShape())})
    args.workdir.mkdir(parents=True, exist_ok=True)
    ensure_checkpoints(args.workdir, shape, args.formats)

    results: dict[str, dict[str, Any]] = {}
    for fmt in args.formats:
        path, file = checkpoint_path(args.workdir, fmt), data_file(args.workdir, fmt)
        modes = ["layer", "whole"] + (["layer-per-shard"] if fmt == "meta" else [])
        per_mode: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
        for run in range(args.runs):
            for mode in modes:  # interleaved, so drifting machine load hits every mode alike
                cached = cached_fraction(file)
                record = run_child(fmt, mode, path, args.layer)
                record["cached_before"] = cached
                per_mode[mode].append(record)
                print(f"  {fmt} {mode} run {run + 1}: peak +{record['peak_added'] / MiB:.1f} MiB, "
                      f"{record['seconds']:.2f} s, file cached before: "
                      f"{'?' if cached is None else f'{100 * cached:.0f}%'}", flush=True)
        r: dict[str, Any] = {m: summarize(per_mode[m]) for m in modes}
        known = [rec["cached_before"] for recs in per_mode.values() for rec in recs
                 if rec["cached_before"] is not None]
        r["cached"] = f"{100 * min(known):.0f}-{100 * max(known):.0f}%" if known else "unknown"
        r["file_bytes"] = file.stat().st_size
        for mode in [m for m in modes if m != "whole"]:
            r[mode]["ratio_to_layer"] = r[mode]["peak_added"] / r[mode]["held_bytes"]
            r[mode + "_whole_ratio"] = r["whole"]["peak_added"] / r[mode]["peak_added"]
        results[fmt] = r

    table = markdown(results)
    print()
    print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "command": " ".join([Path(sys.argv[0]).as_posix(), *(argv if argv is not None else sys.argv[1:])]),
        "shape": asdict(shape), "runs": args.runs, "layer": args.layer,
        "page_cache": "warm: files were just written or read; caches not dropped",
        "results": results, "markdown": table,
    }, indent=1))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
