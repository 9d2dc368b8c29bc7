"""Magic options from outside the notebook: ``[tool.d365nb]`` in pyproject.toml and ``D365NB_*``.

Precedence, lowest first: trait defaults, ``[tool.d365nb]`` of the nearest pyproject.toml
found from the working directory upwards, ``D365NB_<OPTION>`` environment variables, IPython
config files (``c.D365Magic.x``), and ``%config D365Magic.x = ...`` at run time. Keys that are
not magic options are ignored (other parts of d365nb read the same table); a bad value is
reported in one line and skipped.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["find_pyproject", "pyproject_options", "env_options", "apply_options"]

ENV_PREFIX = "D365NB_"


def find_pyproject(start: Path | None = None) -> Path | None:
    """The nearest ``pyproject.toml`` in ``start`` (default: cwd) or a parent directory."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def pyproject_options(start: Path | None = None) -> tuple[dict[str, Any], Path | None]:
    """``[tool.d365nb]`` of the nearest pyproject.toml (``{}`` if none) and where it was found."""
    path = find_pyproject(start)
    if path is None:
        return {}, None
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        print(f"d365nb: ignoring {path}: {exc}")
        return {}, path
    table = data.get("tool", {}).get("d365nb", {})
    if not isinstance(table, dict):
        return {}, path
    # Accept both [tool.d365nb] option = ... and a [tool.d365nb.magic] sub-table. Other
    # sub-tables belong to other parts and are dropped by apply_options (not a trait); a dict
    # value is kept because a Dict option is written as one (connect_options = {timeout = 30}).
    options = {k.replace("-", "_"): v for k, v in table.items() if k != "magic"}
    magic = table.get("magic")
    if isinstance(magic, dict):
        options.update({k.replace("-", "_"): v for k, v in magic.items()})
    return options, path


def env_options(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``D365NB_PAGE_SIZE=500`` -> ``{"page_size": "500"}`` (values still text)."""
    environ = os.environ if environ is None else environ
    return {
        key[len(ENV_PREFIX) :].lower(): value
        for key, value in environ.items()
        if key.startswith(ENV_PREFIX)
    }


def apply_options(magic: Any, explicit: set[str] | None = None, start: Path | None = None) -> None:
    """Set ``magic``'s configurable traits from pyproject.toml then the environment.

    Traits named in ``explicit`` (set by IPython config) are left alone.
    """
    explicit = explicit or set()
    traits = magic.class_traits(config=True)
    project, path = pyproject_options(start)
    sources: list[tuple[str, dict[str, Any]]] = [
        (str(path), project),
        ("environment", env_options()),
    ]
    for where, options in sources:
        for name, value in options.items():
            trait = traits.get(name)
            if trait is None or name in explicit:
                continue
            try:
                if isinstance(value, str) and not isinstance(trait.default_value, str):
                    value = trait.from_string(value)
                setattr(magic, name, value)
            except Exception as exc:  # noqa: BLE001 - one line per bad option, keep loading
                # A dict option may hold anything (even a secret, refused): name it, not its value.
                shown = name if isinstance(value, dict) else f"{name}={value!r}"
                print(f"d365nb: ignoring option {shown} from {where}: {exc}")
