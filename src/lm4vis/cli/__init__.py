"""The one command-line entry point: ``lm4vis <command>``.

Each command lives in its own module with ``register(subparsers)`` and ``run(args)``; heavy
imports stay inside ``run`` so that ``lm4vis --help`` answers at once.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

# command name -> module under lm4vis.cli
COMMANDS: dict[str, str] = {
    "inspect": "inspect_cmd",
    "train": "train_cmd",
    "compare": "compare_cmd",
    "demo": "demo_cmd",
    "analyze": "analyze_cmd",
    "sweep": "sweep_cmd",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lm4vis",
        description="Frozen language-model layers as visual encoder layers (Pang et al., ICLR 2024).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():
        try:
            mod = importlib.import_module(f"{__name__}.{module}")
        except ModuleNotFoundError as e:
            if e.name == f"{__name__}.{module}":
                continue  # command not built yet in this checkout
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        if args.verbose:
            raise
        print(f"lm4vis {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
