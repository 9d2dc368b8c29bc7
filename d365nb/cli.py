"""The `d365nb` command line. Each feature registers its own subcommand."""

from __future__ import annotations

import argparse
import importlib
import sys

# (module, function) pairs; each function receives the subparsers object and registers one
# subcommand whose handler is stored as `func` and returns an exit code.
_COMMANDS = [
    ("d365nb.sandbox.cli", "register"),
    ("d365nb.flows.cli", "register"),
    ("d365nb.demo_cli", "register"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="d365nb", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for module_name, func in _COMMANDS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        getattr(module, func)(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
