"""``%d365 help [command]``."""

from __future__ import annotations

from argparse import Namespace
from typing import Any

from d365nb.notebook.args import help_text


def cmd_help(magic: Any, options: Namespace, cell: str | None) -> None:
    """Print the overview or one command's help."""
    print(help_text(options.topic))
