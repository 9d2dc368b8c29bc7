"""A refused cell: the magic raises and what the notebook shows is one line naming the mistake
(a traceback or a multi-line dump would bury it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.support.shells import CellFailed


def one_line_refusal(run: Callable[[], Any]) -> str:
    """The message of the ``CellFailed`` that ``run()`` must raise, checked to be one line."""
    with pytest.raises(CellFailed) as failed:
        run()
    message = str(failed.value)
    assert "\n" not in message, message
    return message
