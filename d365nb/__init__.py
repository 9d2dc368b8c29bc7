"""d365nb: Dynamics 365 / Dataverse in Jupyter.

Public names are imported lazily so that ``%load_ext d365nb`` stays fast (pandas, httpx and the
sandbox load only when first used).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "connect": ("d365nb.client.api", "connect"),
    "Dataverse": ("d365nb.client.api", "Dataverse"),
    "AsyncDataverse": ("d365nb.client.api", "AsyncDataverse"),
    "connections": ("d365nb.client.registry", "connections"),
    "odata": ("d365nb.client.query", None),
    "errors": ("d365nb.client.errors", None),
    "Flow": ("d365nb.flows", "Flow"),
    "forms": ("d365nb.notebook.forms", None),
    "sandbox": ("d365nb.sandbox", None),
}

__all__ = [*_LAZY, "load_ipython_extension", "unload_ipython_extension"]


def __getattr__(name: str) -> Any:
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'd365nb' has no attribute {name!r}") from None
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def _register_notebook_flow_views() -> None:
    """Let flows show themselves with the notebook layer's views (rich HTML, live widgets) for
    Python-API users too, without ``%load_ext``. Registered here, above both layers: flows
    import nothing of the notebook layer, and nothing loads until a flow view is first shown."""
    from d365nb.flows import views

    def load() -> None:
        from d365nb.notebook import flow_views

        flow_views.register()

    views.add_presenter_loader(load)


_register_notebook_flow_views()


def load_ipython_extension(ipython: Any) -> None:
    from d365nb.notebook.extension import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from d365nb.notebook.extension import unload

    unload(ipython)
