"""The sandbox's `key=value,...` option texts (``--faults``, ``--limits``), refused as a user reads
them: a ValueError naming what is wrong, in one line, as the CLI prints it to the terminal.

Both parsers answer a bad text the same way, so their test is written once: a module binds
``test_<name> = one_line_refusals(parse, {text: fragment, ...})`` and pytest collects one case
a text.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest


def one_line_refusals(parse: Callable[[str], object], cases: dict[str, str]) -> Callable:
    """A test, one case a bad text of ``cases``, that ``parse`` refuses the text with a one-line
    ValueError matching the text's fragment (a regular expression)."""

    @pytest.mark.parametrize(("text", "fragment"), list(cases.items()))
    def refuses_in_one_line(text: str, fragment: str) -> None:
        with pytest.raises(ValueError, match=fragment) as info:
            parse(text)
        assert "\n" not in str(info.value)

    return refuses_in_one_line
