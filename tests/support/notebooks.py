"""Saved notebooks run end to end in a real kernel (nbclient), and the text of their outputs."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
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
    )


def blocking_kernel(cwd: Path) -> tuple[KernelManager, Any]:
    """A started python3 kernel (over IPC, see `IpcKernelManager`) and its ready client."""
    km = KernelManager(kernel_name="python3", transport="ipc", ip=_ipc_prefix())
    km.start_kernel(cwd=str(cwd))
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    return km, kc


def run_copy(notebook: Path, folder: Path, last_cell: str, timeout: int = 120) -> Any:
    """Run a copy of ``notebook`` in ``folder`` (its working directory) with ``last_cell``
    appended (a test-only cell, e.g. one printing the kernel's token); the executed notebook.
    The saved notebook must carry no outputs (notebooks are committed clean)."""
    stored = nbformat.read(notebook, as_version=4)
    assert all(not c.get("outputs") for c in stored.cells if c.cell_type == "code")
    work = folder / notebook.name
    shutil.copy(notebook, work)
    nb = nbformat.read(work, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(last_cell))
    kernel_client(nb, folder, timeout).execute()
    return nb


def code_cells(nb: Any) -> list[Any]:
    return [c for c in nb.cells if c.cell_type == "code"]


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
