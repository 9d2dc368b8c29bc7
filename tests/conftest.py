"""The suite's shared fixtures, each defined once in ``tests/support/`` (see its docstring):
``sandbox``, ``api``, ``empty_sandbox``, ``empty_api`` (``sandboxes``); ``d365``,
``empty_d365``, ``entra`` (``connections``); ``bare_shell``, ``shell``, ``magic`` (``shells``).
Helpers import as ``from tests.support.<module> import ...``, never from a ``conftest``."""

import gc
import os
import sys
from collections.abc import Iterator

import pytest

# jsonschema (imported by nbformat) loads rfc3987_syntax when it is installed (jupyter-events
# pulls it in), and that compiles an Earley grammar at import: ~1 s of CPU in every test worker,
# which collects every test module. It only adds the "iri" formats of a format checker; nothing
# the suite validates uses one (notebooks and Logic Apps definitions are checked without a
# format checker), so the test processes go without it.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]

pytest_plugins = [
    "tests.support.sandboxes",
    "tests.support.connections",
    "tests.support.shells",
]


def pytest_configure(config) -> None:
    # Kernels, `d365nb flow run` and the CLI each import the package in a new process. With
    # PYTHONDONTWRITEBYTECODE set (as on CI machines) every one of them compiled all ~165 modules
    # from source (~0.2 s each time); letting the first write its bytecode (git-ignored) spares
    # the others. Set before xdist starts its workers, so they and their children inherit it.
    if os.environ.pop("PYTHONDONTWRITEBYTECODE", None) is not None:
        sys.dont_write_bytecode = False
    # Long tests first (see `pytest_collection_modifyitems`), handed to workers one at a time
    # as they free up, so none is left to start last and run on alone. With xdist's default of
    # a quarter of each worker's share sent at once, the long tests would all go to one worker.
    if getattr(config.option, "maxschedchunk", "absent") is None:
        config.option.maxschedchunk = 1


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist: unknown when it is not loaded
def pytest_xdist_auto_num_workers(config) -> int | None:
    """``-n auto``: two workers per core. Many tests mostly wait (kernels starting, flows
    polling, subprocesses, a browser), so twice the cores keeps the CPUs busy; measured on 2
    cores, 4 workers finish the suite ~15% sooner than 2. PYTEST_XDIST_AUTO_NUM_WORKERS still
    decides when set (xdist reads it when this returns None)."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    return 2 * len(os.sched_getaffinity(0))


def pytest_collection_finish(session) -> None:
    """Cheaper garbage collection in a worker. A worker holds ~250,000 long-lived objects once
    it has collected the tests (pandas, IPython, hypothesis, the items themselves); every full
    collection walked them all, ~4 s of CPU per worker over the suite. Freezing them takes
    them out of every later collection, and full collections wait for 100 middle-generation
    ones instead of 10 (the young generations are collected as usual)."""
    gc.collect()  # what is garbage now is freed, not frozen
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, 100)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items) -> None:
    """Tests marked ``slow`` or ``browser`` run first (a stable sort: pytest-randomly's shuffle
    still orders each group), so in a parallel run the short ones fill in around them."""
    items.sort(
        key=lambda item: (
            not any(item.iter_markers("slow")) and not any(item.iter_markers("browser"))
        )
    )


@pytest.fixture(autouse=True)
def _clean_process_state() -> Iterator[None]:
    """After each test, stop and forget the flows it defined and close its widgets.

    Flows run on one engine per process, so a flow a test leaves running would poll on into
    the tests after it on that worker. ipywidgets keeps every open widget (with its comm and
    callbacks) in a process-wide registry, as a kernel must for its frontend; in a test worker
    they would pile up by the thousand and slow every garbage collection."""
    yield
    if "d365nb.flows" in sys.modules:
        from tests.support.flows import stop_flows

        stop_flows()
    widgets = sys.modules.get("ipywidgets")
    if widgets is not None:
        widgets.Widget.close_all()
