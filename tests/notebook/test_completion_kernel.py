"""Completion in a real kernel, as Jupyter asks for it (a ``complete_request``): the kernel's
Jedi/Python matches are suppressed on a ``%d365`` line, so the reply lists exactly the d365
candidates, and plain Python code still completes as before."""

from __future__ import annotations

import pytest

from tests.support.notebooks import blocking_kernel


def _complete(kc, code: str) -> list[str]:
    msg_id = kc.complete(code, len(code))
    reply = kc.get_shell_msg(timeout=60)
    assert reply["parent_header"]["msg_id"] == msg_id
    return reply["content"]["matches"]


@pytest.mark.slow
def test_kernel_completion_offers_only_d365_candidates(tmp_path):
    km, kc = blocking_kernel(tmp_path)
    try:
        kc.execute_interactive(
            "%load_ext d365nb\n%d365 connect sandbox\n_ = %d365 list leads --top 1\n"
            "_ = %d365 describe tasks",
            timeout=120,
        )
        assert _complete(kc, "%d365 li") == ["list"]
        assert _complete(kc, "%d365 list leads --select fulln") == ["fullname", "yomifullname"]
        assert _complete(kc, "%d365 create tasks prioritycode=") == ["Low", "Normal", "High"]
        assert _complete(kc, '%d365 list leads --filter "statuscode eq 1 ') == ["and", "or", "not"]
        tables = _complete(kc, "%d365 list ")
        assert "leads" in tables and "print" not in tables and len(tables) <= 50
        assert "print" in _complete(kc, "pri")  # Python completion is untouched
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
