"""Every example in examples/ runs alone (the docs gallery executes them too) and reaches
what its text says it shows: the figure it prints is above a floor well under what it prints
on the development machine, far above chance."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("plot_*.py"))

# example: (the printed figure, its floor); printed on the development machine in brackets
FLOORS = {
    "plot_augmentation": (r"augment= None: test accuracy ([\d.]+)", 0.75),  # 0.859
    "plot_digits_pipeline": (r"CNN test accuracy: ([\d.]+)", 0.97),  # 0.9956
    "plot_dropout_curves": (r"dropout=0.0: .*final validation accuracy ([\d.]+)", 0.9),  # 0.989
    "plot_filters": (r"from scratch: test accuracy ([\d.]+)", 0.9),  # 1.000
    "plot_image_folder": (r"held-out accuracy on \d+ files: ([\d.]+)", 0.9),  # 1.000
    "plot_inspection": (r"held-out accuracy: ([\d.]+)", 0.9),  # 0.994
    "plot_lesson": (r"20 images per class: pretrained, frozen ([\d.]+)", 0.7),  # 0.824
    "plot_optimizers": (r"adam, lr=0.002: validation accuracy ([\d.]+)", 0.95),  # 0.994
    "plot_regression": (r"held-out R²: CNNRegressor ([\d.]+)", 0.9),  # 0.980
    "plot_time_series": (r"FCN test accuracy: ([\d.]+)", 0.95),  # 0.993
    "plot_transfer_learning": (r" 1 per photo: pretrained, frozen ([\d.]+)", 0.8),  # 0.926
}


def test_every_example_has_a_floor():
    assert sorted(FLOORS) == [e.stem for e in EXAMPLES]


@pytest.mark.slow
@pytest.mark.parametrize("example", EXAMPLES, ids=[e.stem for e in EXAMPLES])
def test_example_runs(example, tmp_path):
    env = {**os.environ, "MPLBACKEND": "Agg"}
    result = subprocess.run([sys.executable, str(example)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    pattern, floor = FLOORS[example.stem]
    found = re.search(pattern, result.stdout)
    assert found, f"{example.name} no longer prints {pattern!r}:\n{result.stdout[-2000:]}"
    assert float(found.group(1)) >= floor, result.stdout[-2000:]
