"""Shared Layout and Style models for the many small widgets of a form.

Every ipywidget gets its own Layout (and usually a Style) model unless given one, and in a kernel
each model is a comm opened to the front-end: a 25-field form would cost ~300 extra models. Widgets
with the same look share one instead (ipywidgets allows a Layout/Style to serve many views), which
roughly halves the cost of building a form. Shared models must never be mutated; a widget whose
layout changes later (shown/hidden) gets its own.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets

_layouts: dict[tuple, widgets.Layout] = {}
_styles: dict[type, widgets.Widget] = {}


def _alive(model: widgets.Widget | None) -> bool:
    # Widget.close_all() (or closing a shared model) sets comm to None: make a new one then.
    return model is not None and getattr(model, "comm", None) is not None


def layout(**settings: Any) -> widgets.Layout:
    """The shared Layout with these settings (do not mutate it)."""
    key = tuple(sorted(settings.items()))
    model = _layouts.get(key)
    if not _alive(model):
        model = _layouts[key] = widgets.Layout(**settings)
    return model


def style_for(cls: type[widgets.Widget]) -> widgets.Widget | None:
    """The shared default Style for widgets of ``cls`` (None when it has no style)."""
    trait = cls.class_traits().get("style")
    if trait is None:
        return None
    style_cls = trait.klass
    model = _styles.get(style_cls)
    if not _alive(model):
        model = _styles[style_cls] = style_cls()
    return model


def make(
    cls: type[widgets.Widget], layout_settings: dict[str, Any] | None = None, **kwargs: Any
) -> Any:
    """``cls(**kwargs)`` with a shared layout (from ``layout_settings``) and a shared default style."""
    kwargs.setdefault("layout", layout(**(layout_settings or {})))
    if "style" not in kwargs:
        style = style_for(cls)
        if style is not None:
            kwargs["style"] = style
    return cls(**kwargs)
