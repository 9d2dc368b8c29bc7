"""Flow definitions as data (``d365nb/flows/definitions.py``): the notebook parsers, help,
completion, export and the README's flow table all read one declaration; and the layering of
the import graph (read with ``ast`` over ``d365nb/``)."""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

from d365nb.flows import definitions
from d365nb.flows.export import LEGACY_OPERATIONS, MESSAGES
from d365nb.flows.model import KINDS
from d365nb.notebook import flow_commands

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "d365nb"


def _flags(parser) -> set[str]:
    return {o for a in parser._actions for o in a.option_strings if o.startswith("--")}


def test_readme_flow_table_is_generated_from_the_definitions():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index("<!-- flow-definitions:start -->\n") + len(
        "<!-- flow-definitions:start -->\n"
    )
    end = text.index("\n<!-- flow-definitions:end -->")
    assert text[start:end] == definitions.markdown_table(), (
        "README's flow table is stale: paste `python -m d365nb.flows.definitions`"
    )


def test_parsers_declare_exactly_the_defined_options():
    assert _flags(flow_commands._trigger_parser()) == {o.flag for o in definitions.TRIGGER_OPTIONS}
    assert _flags(flow_commands._action_parser()) == {o.flag for o in definitions.ACTION_OPTIONS}
    assert _flags(flow_commands._scope_parser()) == {o.flag for o in definitions.SCOPE_OPTIONS}
    flow_parser = flow_commands._flow_parser()
    assert _flags(flow_parser) == {
        f for o in definitions.FLOW_OPTIONS for f in (o.flag, o.short) if f and f.startswith("--")
    }
    verbs = next(a.choices for a in flow_parser._actions if a.dest == "verb")
    assert tuple(verbs) == tuple(definitions.FLOW_VERBS)
    from d365nb.flows.export_command import _parser

    assert _flags(_parser()) == {
        f for o in definitions.EXPORT_OPTIONS for f in (o.flag, o.short) if f and f.startswith("--")
    }


def test_trigger_kinds_drive_the_model_and_the_export():
    assert tuple(definitions.TRIGGER_KINDS) == KINDS
    for kind in definitions.TRIGGER_KINDS.values():
        assert MESSAGES[kind.name] == kind.message
        assert LEGACY_OPERATIONS[kind.name] == kind.legacy
        from d365nb.flows.flow import Flow

        assert callable(getattr(Flow, kind.method))


def test_a_flow_option_on_the_wrong_verb_is_refused_in_one_line():
    import argparse

    args = argparse.Namespace(record=None, dry_run=True, from_=None, top=None, all_orgs=False)
    assert definitions.misplaced("start", args) == (
        "--dry-run only applies to %d365 flow test, not start"
    )
    assert definitions.misplaced("test", args) is None


# -- the import graph ---------------------------------------------------------------------------
def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Modules ``path`` imports at run time (``if TYPE_CHECKING:`` blocks excluded)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    package = (
        _module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else _module_name(path)
    )
    for node in _run_time_statements(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names)
    return found


def _run_time_statements(node: ast.AST) -> Iterator[ast.AST]:
    """The statements under ``node`` at any depth, without the bodies of ``if TYPE_CHECKING:``
    (an import is a statement: expressions, most of a tree, need no visit)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.expr):
            continue
        yield child
        if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
            for other in child.orelse:
                yield other
                yield from _run_time_statements(other)
            continue
        yield from _run_time_statements(child)


@functools.cache  # one parse of the package serves every layering test (~1 s a build)
def _graph() -> dict[str, set[str]]:
    return {
        _module_name(p): _imports(p) for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts
    }


def test_the_sandbox_imports_nothing_else_of_ours():
    for module, imported in _graph().items():
        if module.startswith("d365nb.sandbox"):
            ours = {
                m for m in imported if m.startswith("d365nb") and not m.startswith("d365nb.sandbox")
            }
            assert not ours, f"{module} imports {sorted(ours)}"


def test_no_circle_between_the_engine_and_the_flow():
    graph = _graph()
    assert "d365nb.flows.engine" in graph["d365nb.flows.flow"]  # the flow drives the engine
    assert not {m for m in graph["d365nb.flows.engine"] if m.startswith("d365nb.flows.flow")}


def test_flow_definitions_import_nothing_of_the_package():
    """Completion reads the definitions at a keystroke: they must not load the engine."""
    imported = _graph()["d365nb.flows.definitions"]
    assert not {m for m in imported if m.startswith("d365nb")}


def test_flows_import_nothing_from_the_notebook_layer():
    """Layering: notebook -> flows -> client. The headless runner builds flows from notebook
    cells with `d365nb.flows.cells`, as the magics do, without the notebook package."""
    for module, imported in _graph().items():
        if module.startswith("d365nb.flows"):
            upward = {m for m in imported if m.startswith("d365nb.notebook")}
            assert not upward, f"{module} imports {sorted(upward)}"


def test_flows_import_no_widgets():
    """Views live in the notebook layer: flows hand out data and a presenter hook
    (`d365nb.flows.views.register_presenters`), so a headless runner needs no ipywidgets."""
    for module, imported in _graph().items():
        if module.startswith("d365nb.flows"):
            widgets = {m for m in imported if m.split(".")[0] == "ipywidgets"}
            assert not widgets, f"{module} imports {sorted(widgets)}"
