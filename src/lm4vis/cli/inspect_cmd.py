"""`lm4vis inspect SOURCE`: what a checkpoint holds and what a layer choice costs."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect",
        help="show a checkpoint's family, widths and the cost of a layer choice",
        description="Read a checkpoint's metadata (no weights) and print its family, layer count, "
        "widths, heads, dtype, bytes per layer, and the parameters and FLOPs per token of the "
        "chosen layers.",
        epilog="examples:\n  lm4vis inspect smollm2-135m\n  lm4vis inspect /models/llama-7b --layers -2:\n"
        "  lm4vis inspect model.gguf --layers 10:12 --tokens 197",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("source", help="HF model directory, .gguf file, Meta LLaMA directory or a "
                   "registered name (smollm2-135m)")
    p.add_argument("--layers", default="-1",
                   help="layer index or contiguous span: -1 (last), '-2:' (last two), '10:12' (default: -1)")
    p.add_argument("--tokens", type=int, default=197,
                   help="sequence length for the attention FLOPs (default: 197, ViT at 224 px, patch 16)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def inspect_source(source: str, layers: str = "-1", tokens: int = 197) -> dict:
    """Metadata and cost of ``layers`` of ``source``, without reading any weights."""
    from ..checkpoint import open_checkpoint, resolve_layers

    reader = open_checkpoint(source)
    c = reader.config
    idx = resolve_layers(layers, c.num_layers)
    per_layer = c.layer_params()
    return {
        "source": source,
        "format": reader.format,
        "family": c.family,
        "num_layers": c.num_layers,
        "lm_dim": c.lm_dim,
        "ffn_dim": c.ffn_dim,
        "num_heads": c.num_heads,
        "num_kv_heads": c.num_kv_heads,
        "head_dim": c.head_dim,
        "stored_dtype": reader.stored_dtype(),
        "bytes_per_layer": reader.layer_bytes(idx[0]),
        "layers": idx,
        "params": per_layer * len(idx),
        "flops_per_token": c.layer_flops_per_token(tokens) * len(idx),
        "tokens": tokens,
    }


def _human(n: float, unit: str = "") -> str:
    for suffix in ("", "K", "M", "G", "T"):
        if abs(n) < 1000:
            return f"{n:.3g}{suffix}{unit}"
        n /= 1000
    return f"{n:.3g}P{unit}"


def run(args: argparse.Namespace) -> int:
    info = inspect_source(args.source, args.layers, args.tokens)
    if args.json:
        import json

        print(json.dumps(info, indent=2))
        return 0
    rows = [
        ("source", info["source"]),
        ("format", info["format"]),
        ("family", info["family"]),
        ("layers in checkpoint", info["num_layers"]),
        ("lm_dim / ffn_dim", f"{info['lm_dim']} / {info['ffn_dim']}"),
        ("heads / kv heads / head_dim", f"{info['num_heads']} / {info['num_kv_heads']} / {info['head_dim']}"),
        ("stored dtype", info["stored_dtype"]),
        ("bytes per layer (stored)", _human(info["bytes_per_layer"], "B")),
        ("chosen layers", ", ".join(map(str, info["layers"]))),
        ("parameters of the choice", f"{info['params']:,}"),
        (f"FLOPs per token (N={info['tokens']})", _human(info["flops_per_token"])),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0
