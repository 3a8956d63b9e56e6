"""The one command-line entry point: ``lm4vis <command>``.

Each command lives in its own module with ``register(subparsers)`` and ``run(args)``; heavy
imports stay inside ``run`` so that ``lm4vis --help`` answers at once.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import re
import shlex
import sys

from ..train.interrupt import RunInterrupted

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


_OVERRIDE = re.compile(r"[A-Za-z_][\w.]*=.*", re.DOTALL)


def _join_layer_spans(argv: list[str]) -> list[str]:
    """``--layers -2:`` -> ``--layers=-2:``: argparse takes "-2:" for an option, not a value."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if (arg.startswith("--") and "=" not in arg and i + 1 < len(argv)
                and re.fullmatch(r"-\d+:-?\d*", argv[i + 1])):
            out.append(f"{arg}={argv[i + 1]}")
            i += 2
            continue
        out.append(arg)
        i += 1
    return out


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    given = sys.argv[1:] if argv is None else list(argv)
    args, extra = parser.parse_known_args(_join_layer_spans(given))
    # argparse takes one run of positionals: `... a=1 --compile b=2` leaves b=2 over. Overrides
    # may sit anywhere among the options; anything else left over is an error as usual.
    stray = [a for a in extra if not _OVERRIDE.fullmatch(a)]
    if stray or (extra and not hasattr(args, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(stray or extra)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except RunInterrupted as e:
        # A grid (compare, sweep, demo) resumes cell by cell when its own command is run again.
        again = None if args.command == "train" else "lm4vis " + shlex.join(given)
        print(f"lm4vis {args.command}: {e.line(again)}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"lm4vis {args.command}: interrupted before training started; nothing to resume",
              file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        if args.verbose:
            raise
        print(f"lm4vis {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
