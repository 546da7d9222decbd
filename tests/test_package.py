"""The package's map (issue 28): every import points down the layers, no module imports
itself back through another, the data side runs without TensorFlow, and no two modules
share a name."""

import ast
import collections
import subprocess
import sys

from conftest import REPO

PACKAGE = REPO / "bert_tf"
# Lower layers never import higher ones; folders of one layer do not import each other.
LAYERS = {
    "errors": 0,
    "options": 1, "file_io": 1, "progress": 1, "config": 1,
    "data": 2,
    "tasks": 3, "models": 3,
    "text": 4, "training": 4,
    "interop": 5,
    "serving": 6,
    "jobs": 7,
    "demo": 8,
}
# Imported without TensorFlow or Keras (the data script and the task readers).
TF_FREE = ["data", "tasks", "options", "file_io", "progress", "errors", "jobs.script",
           "jobs.create_pretraining_data"]


def modules() -> dict[str, ast.Module]:
    """Dotted name -> syntax tree of every module of the package."""
    return {".".join(path.relative_to(REPO).with_suffix("").parts): ast.parse(path.read_text())
            for path in sorted(PACKAGE.rglob("*.py"))}


def package_imports(tree: ast.Module) -> set[str]:
    """The bert_tf modules a module imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bert_tf"):
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("bert_tf")}
    return found


def part(module: str) -> str:
    """bert_tf.data.records -> data; bert_tf.config -> config."""
    return module.split(".")[1] if module.count(".") else "__init__"


def test_every_import_points_down_the_layers():
    upward = []
    for name, tree in modules().items():
        if name.endswith("__init__") and name.count(".") == 1:
            continue  # bert_tf/__init__.py exports names from everywhere, lazily
        for target in package_imports(tree):
            if target == "bert_tf" or part(target) not in LAYERS or part(target) == part(name):
                continue
            if LAYERS[part(target)] >= LAYERS[part(name)]:
                upward.append(f"{name} -> {target}")
    assert not upward, upward


def test_no_import_cycle():
    trees = modules()
    graph = {name: {target for target in package_imports(tree) if target in trees}
             for name, tree in trees.items()}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> list[str] | None:
        state[name] = 1
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                return path + [name, target]
            if target not in state and (cycle := visit(target, path + [name])):
                return cycle
        state[name] = 2
        return None

    for name in graph:
        if name not in state:
            assert (cycle := visit(name, [])) is None, " -> ".join(cycle)


def test_no_two_modules_share_a_name():
    names = collections.Counter(name.rsplit(".", 1)[-1] for name in modules()
                                if not name.endswith("__init__"))
    assert not [name for name, count in names.items() if count > 1]


def test_the_data_side_imports_no_tensorflow():
    tf_free = [name for name in modules() if any(
        name == f"bert_tf.{prefix}" or name.startswith(f"bert_tf.{prefix}.") for prefix in TF_FREE)]
    # beam_shards needs the optional [beam] extra (Apache Beam), itself TF-free.
    tf_free = [name.removesuffix(".__init__") for name in tf_free if "beam_shards" not in name]
    assert "bert_tf.data.records" in tf_free and "bert_tf.tasks.custom" in tf_free
    code = ("import sys\n" + "".join(f"import {name}\n" for name in tf_free)
            + "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=REPO)
    assert result.stdout.strip() == "[]"
