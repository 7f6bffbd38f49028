"""The package's import graph has no cycle, counting the imports inside functions (a lazy import still binds
the two modules: whichever loads first must not need the other half-initialized)."""

import ast
import os
import stat

import pytest

from conftest import ROOT
from crnn_lit.atomic import atomic_write

PACKAGE = ROOT / "src" / "crnn_lit"


def import_graph(src=PACKAGE.parent) -> dict[str, set[str]]:
    """module → the package modules it imports anywhere in its file (``from a.b import c`` is an edge to a.b.c
    when that is a module, else to a.b)."""
    files = {}
    for path in src.rglob("*.py"):
        parts = list(path.relative_to(src).with_suffix("").parts)
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the package, up level − 1
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + [base] if base else up)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in files:  # crnn_lit.x.y where only crnn_lit.x is a module
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges.add(target)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as ``[a, b, …, a]``, or None (depth-first search, colouring nodes)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set(), "d": {"a", "c"}}) is None


def test_the_package_import_graph_has_no_cycle():
    graph = import_graph()
    # the graph is read as meant: lazy imports inside functions count, submodule imports resolve to modules
    assert "crnn_lit.model.build" in graph["crnn_lit.checkpoint"]  # imported inside load_model
    assert "crnn_lit.transcription.ctc" in graph["crnn_lit.transcription.lexicon"]
    assert "crnn_lit.reading.recognizer" in graph["crnn_lit"]  # the package's lazy __getattr__
    assert len(graph) > 40
    assert find_cycle(graph) is None, " → ".join(find_cycle(graph))


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_reading_needs_nothing_from_training():
    """The layout's promise (docs/architecture.md): reading/ is used without training/ — a deployment reads
    images without Lightning's callbacks, loggers or the LightningModule."""
    graph = import_graph()
    assert "crnn_lit.reading.inference" in reachable(graph, "crnn_lit.reading.recognizer")  # the walk works
    for module in ("crnn_lit.reading.recognizer", "crnn_lit.reading.inference"):
        assert not {m for m in reachable(graph, module) if m.startswith("crnn_lit.training")}, module


def test_data_needs_nothing_from_training():
    """Floors point one way: the data pipeline (loaders included) is below training, which imports it."""
    graph = import_graph()
    assert "crnn_lit.data.loader" in reachable(graph, "crnn_lit.data.datamodule")  # the walk works
    for module in (m for m in graph if m.startswith("crnn_lit.data")):
        assert not {m for m in reachable(graph, module) if m.startswith("crnn_lit.training")}, module


# the modules above the Hydra wiring: the commands, their task wrapper, and the hold-out reader of
# bench/choose_reader.py (it composes data=real_finetune's validation split)
ABOVE_CONFIG = {"crnn_lit.train", "crnn_lit.evaluate", "crnn_lit.predict", "crnn_lit.export", "crnn_lit.task",
                "crnn_lit.holdout", "crnn_lit.data.cli", "crnn_lit.data.__main__"}


def test_library_code_never_imports_the_hydra_wiring():
    """Floors point one way: crnn_lit.config (Hydra composition) sits above the library; only the commands reach
    it. ConfigError lives in crnn_lit.paths, at the bottom."""
    graph = import_graph()
    importers = {m for m, edges in graph.items() if "crnn_lit.config" in edges}
    assert importers and importers <= ABOVE_CONFIG, sorted(importers - ABOVE_CONFIG)
    below = {m for m in graph if m not in ABOVE_CONFIG | {"crnn_lit.config"}}
    for module in below:
        assert "crnn_lit.config" not in reachable(graph, module), module


def test_learning_curve_state_key_is_the_one_checkpoint_reads(tmp_path):
    """checkpoint.py names LearningCurve's checkpoint key instead of importing callbacks (which would close the
    cycle checkpoint → callbacks → tracking → task → checkpoint)."""
    from crnn_lit.checkpoint import LEARNING_CURVE_STATE_KEY
    from crnn_lit.training.callbacks import LearningCurve

    assert LearningCurve(str(tmp_path / "curve.csv")).state_key == LEARNING_CURVE_STATE_KEY


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / "sub" / "model.pt"
    with atomic_write(target) as f:
        f.write(b"first")
    assert target.read_bytes() == b"first"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0600
    with pytest.raises(RuntimeError), atomic_write(target) as f:
        f.write(b"half of the sec")
        raise RuntimeError("killed mid-write")
    assert target.read_bytes() == b"first"
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.pt"]  # no temporary file left
    with atomic_write(target, "w") as f:
        f.write("second\n")
    assert target.read_text() == "second\n"
