"""The house rules of docs/contributing.rst, checked: modules of one concept and a bounded
size, no private names imported across modules, no import cycles, light imports."""

import ast
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "sklearn_cnn"
# "A module that passes ~500 lines or mixes two concepts should split" (DESIGN.md); the
# estimator's core stays smaller.
MOST_LINES = {"_base.py": 450}
DEFAULT_MOST_LINES = 520


def _relative_imports():
    """(module, imported module, imported names) of every relative import, lazy ones too."""
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                names = [alias.name for alias in node.names]
                if node.module:
                    yield path.stem, node.module.split(".")[0], names
                else:  # from . import x: the modules themselves
                    for name in names:
                        yield path.stem, name, []


def test_modules_stay_small():
    sizes = {path.name: len(path.read_text().splitlines()) for path in PACKAGE.glob("*.py")}
    too_long = {name: n for name, n in sizes.items()
                if n > MOST_LINES.get(name, DEFAULT_MOST_LINES)}
    assert not too_long, f"split these by concept: {too_long}"


def test_no_module_imports_another_modules_private_names():
    private = [(module, target, name) for module, target, names in _relative_imports()
               for name in names if name.startswith("_")]
    assert not private


def test_no_import_cycles():
    graph = defaultdict(set)
    for module, target, _ in _relative_imports():
        if target != module:
            graph[module].add(target)

    def reaches(start, goal, seen):
        for nxt in graph[start]:
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    cycles = sorted(module for module in list(graph) if reaches(module, module, {module}))
    assert not cycles, f"modules on an import cycle: {cycles}"


def test_preprocessing_and_time_series_data_load_no_training_code():
    code = ("import sys\nimport sklearn_cnn.preprocessing, sklearn_cnn.datasets\n"
            "print(sorted(m for m in ('skorch', 'sklearn_cnn._training', 'torchvision') "
            "if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]", out
