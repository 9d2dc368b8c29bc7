"""Saved notebooks run end to end in a real kernel (nbclient), and the text of their outputs."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from jupyter_client.manager import AsyncKernelManager, KernelManager
from nbclient import NotebookClient
from traitlets import CaselessStrEnum, default


class IpcKernelManager(AsyncKernelManager):
    """A kernel reached over Unix sockets beside its connection file instead of TCP ports: test
    workers starting kernels at once cannot race for the same free port (a kernel dying with
    "Address already in use")."""

    transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

    @default("ip")
    def _ipc_path(self) -> str:
        # Absolute: jupyter_client's default can be the relative "kernel-ipc", which the kernel
        # (started in the notebook's folder) and this manager would resolve differently.
        return _ipc_prefix()


def _ipc_prefix() -> str:
    return os.path.join(tempfile.gettempdir(), f"d365nb-kernel-{uuid.uuid4().hex[:12]}-ipc")


def kernel_client(nb: Any, cwd: Path, timeout: int = 120) -> NotebookClient:
    """An nbclient runner for ``nb`` in a fresh python3 kernel whose working directory is
    ``cwd`` (``.execute()`` raises `CellExecutionError` when a cell fails)."""
    return NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(cwd)}},
        kernel_manager_class=IpcKernelManager,
        # A cell's reply (shell channel) can arrive well before its outputs (IOPub) when the
        # machine is busy; nbclient's default waits 4 s for them, then drops whatever comes
        # later with only a log warning - a printed line silently missing from a cell. Wait
        # as long as a cell may run, and fail loudly if the outputs still do not come.
        iopub_timeout=timeout,
        raise_on_iopub_timeout=True,
    )


def blocking_kernel(cwd: Path) -> tuple[KernelManager, Any]:
    """A started python3 kernel (over IPC, see `IpcKernelManager`) and its ready client."""
    km = KernelManager(kernel_name="python3", transport="ipc", ip=_ipc_prefix())
    km.start_kernel(cwd=str(cwd))
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    return km, kc


@dataclass(frozen=True)
class NotebookRun:
    """One "restart kernel and run all" of a saved notebook with test-only cells appended."""

    nb: Any  # the executed notebook: its own cells, then the test-only ones
    folder: Path  # the kernel's working directory (where the notebook is)
    own: int  # how many of the cells are the notebook's own
    tokens: list[str]  # the token of every sandbox the kernel had open after the last cell

    @property
    def own_code(self) -> list[Any]:
        return [c for c in self.nb.cells[: self.own] if c.cell_type == "code"]

    @property
    def test_cells(self) -> list[Any]:
        """The appended cells, in order (the token probe last)."""
        return self.nb.cells[self.own :]


def run_all(
    notebook: Path,
    test_cells: Iterable[Any],
    scratch: Path,
    timeout: int = 180,
    env: dict[str, str] | None = None,
) -> NotebookRun:
    """Restart kernel and run all: ``notebook`` (in its own folder) in a fresh kernel, with
    ``test_cells`` appended, then a probe writing the kernel's sandbox tokens to a file in
    ``scratch`` (outside the notebook's folder), so no cell output carries them. The saved
    notebook must carry no outputs (notebooks are committed clean). ``env``: the kernel's
    environment (default: this process's)."""
    nb = nbformat.read(notebook, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")
    own = len(nb.cells)
    probe = scratch / "sandbox-tokens.txt"
    probe.unlink(missing_ok=True)  # a run that stops early must not read the last run's
    nb.cells += [*test_cells, nbformat.v4.new_code_cell(_token_probe(probe))]
    kernel_client(nb, notebook.parent, timeout).execute(**({"env": env} if env else {}))
    return NotebookRun(nb, notebook.parent, own, probe.read_text().split())


def _token_probe(path: Path) -> str:
    return (
        "import pathlib as _pathlib, d365nb as _d365nb\n"
        f"_pathlib.Path({str(path)!r}).write_text('\\n'.join(\n"
        "    c.sandbox.token for _, c in _d365nb.connections.items()\n"
        "    if getattr(c, 'sandbox', None) is not None\n"
        "))"
    )


def assert_shows_no_token(run: NotebookRun) -> None:
    """The executed notebook (outputs, widget state, metadata) carries no sandbox token."""
    assert run.tokens, "the kernel had no sandbox open"
    assert all(len(token) >= 16 for token in run.tokens)
    saved = nbformat.writes(run.nb)
    assert not any(token in saved for token in run.tokens), "a sandbox token is shown"


def text_of(cell: Any, html: bool = False) -> str:
    """What a cell showed: streams, plain-text results (``html``: also HTML) and errors."""
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        data = output.get("data", {})
        parts.append(data.get("text/plain", ""))
        if html:
            parts.append(data.get("text/html", ""))
        if output.get("output_type") == "error":
            parts.append(f"{output['ename']}: {output['evalue']}")
    return "\n".join(parts)
