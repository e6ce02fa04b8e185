import csv
import io
import re
import shutil
import subprocess
import sys

import joblib
import numpy as np
import pytest
from PIL import Image

import sklearn_cnn
from sklearn_cnn.cli import demo, main


def test_demo_quick(capsys):
    scores = demo(n_jobs=1, quick=True)
    out = capsys.readouterr().out
    assert "| rank |" in out and "SVC baseline" in out
    # No --out: the model went to a temporary file, and the demo does not pretend otherwise.
    assert "saved to a temporary file (pass --out PATH to keep it)" in out
    assert "/tmp/" not in out.split("saved to")[1].split("\n")[0]
    assert scores["reloaded_identical"]
    assert scores["cnn"] > 0.8 and scores["svc"] > 0.9


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli") / "data"
    rng = np.random.RandomState(0)
    for label, channel in [("red", 0), ("blue", 2)]:
        (root / label).mkdir(parents=True)
        for i in range(10):
            pixels = rng.randint(0, 60, size=(10 + i % 3, 12, 3)).astype(np.uint8)
            pixels[..., channel] = 250
            Image.fromarray(pixels).save(root / label / f"{i}.{'png' if i % 2 else 'jpg'}")
    return root


def test_train_saves_one_pipeline_that_python_and_predict_use(image_folder, tmp_path, capsys):
    model = tmp_path / "model.safetensors"
    assert main(["train", str(image_folder), "--out", str(model), "--size", "8",
                 "--epochs", "15", "--lr", "0.01", "--batch-size", "8",
                 "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "held-out accuracy: 1.0000 on 4 images" in out
    files = [str(image_folder / "red" / "0.jpg"), str(image_folder / "blue" / "1.png")]
    # The Python API loads the same file and predicts on paths.
    pipeline = sklearn_cnn.load(model)
    assert list(pipeline.predict(files)) == ["red", "blue"]
    assert pipeline.get_params()["model__lr"] == 0.01
    assert main(["predict", str(model), *files]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines == ["file,label", f"{files[0]},red", f"{files[1]},blue"]
    assert main(["predict", str(model), "--proba", *files]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "file,label,p_blue,p_red"
    assert lines[1].startswith(f"{files[0]},red,") and len(lines[1].split(",")) == 4
    # A folder: the images in it and below it, in order.
    assert main(["predict", str(model), str(image_folder)]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 21 and rows[0] == ["file", "label"]
    assert {label for _, label in rows[1:]} == {"red", "blue"}
    # Without --force an existing model file is kept.
    assert main(["train", str(image_folder), "--out", str(model), "--device", "cpu"]) == 2
    assert "exists already" in capsys.readouterr().err and sklearn_cnn.load(model)


def test_train_can_write_joblib_and_predict_reads_it(image_folder, tmp_path, capsys):
    model = tmp_path / "model.joblib"
    assert main(["train", str(image_folder), "--out", str(model), "--size", "8", "--epochs",
                 "2", "--format", "joblib", "--device", "cpu"]) == 0
    assert hasattr(joblib.load(model), "steps")
    assert main(["predict", str(model), str(image_folder / "red" / "0.jpg")]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith(
        str(image_folder / "red" / "0.jpg"))


def _error_line(capsys):
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_user_errors_are_one_line_and_status_2(image_folder, tmp_path, capsys):
    bad = tmp_path / "bad"
    for label in ["a", "b"]:
        (bad / label).mkdir(parents=True)
        Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(bad / label / "0.png")
    (bad / "a" / "broken.png").write_bytes(b"not an image")
    assert main(["train", str(bad), "--out", str(tmp_path / "m.safetensors")]) == 2
    assert "broken.png" in _error_line(capsys)

    assert main(["predict", str(image_folder / "red" / "0.jpg"), "x.png"]) == 2
    assert "not a readable sklearn-cnn model file" in _error_line(capsys)

    # --out is checked before any training.
    assert main(["train", str(image_folder), "--out", str(tmp_path / "no" / "m.safetensors"),
                 "--epochs", "50"]) == 2
    err = _error_line(capsys)
    assert "does not exist" in err and "epoch" not in capsys.readouterr().out

    assert main(["train", str(tmp_path / "missing")]) == 2
    assert "is not a folder" in _error_line(capsys)

    with pytest.raises(SystemExit) as exit_info:
        main(["train", str(image_folder), "--size", "0"])
    assert exit_info.value.code == 2
    assert "--size: must be positive" in capsys.readouterr().err


def test_module_entry_point():
    result = subprocess.run([sys.executable, "-m", "sklearn_cnn", "--help"],
                            capture_output=True, text=True, check=True)
    assert "demo" in result.stdout and "predict" in result.stdout
    failed = subprocess.run([sys.executable, "-m", "sklearn_cnn", "predict", "nothing.model",
                             "x.png"], capture_output=True, text=True)
    assert failed.returncode == 2 and "Traceback" not in failed.stderr
    assert failed.stderr.startswith("sklearn-cnn predict: error: No model file at nothing.model")


def test_predict_writes_quoted_csv_for_any_file_name(image_folder, tmp_path, capsys):
    model = tmp_path / "model.safetensors"
    assert main(["train", str(image_folder), "--out", str(model), "--size", "8",
                 "--epochs", "2", "--device", "cpu"]) == 0
    odd = tmp_path / 'a, "quoted" name.png'
    shutil.copy(image_folder / "red" / "1.png", odd)
    capsys.readouterr()
    assert main(["predict", str(model), "--proba", str(odd)]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["file", "label", "p_blue", "p_red"] and rows[1][0] == str(odd)


@pytest.fixture(scope="module")
def csv_folder(tmp_path_factory):
    """Images of one bright column at a random place; a CSV with its position (a number),
    two 0/1 label columns (left half? right third?) and a class label."""
    root = tmp_path_factory.mktemp("csv")
    (root / "images").mkdir()
    rng = np.random.RandomState(0)
    rows = []
    for i in range(60):
        column = int(rng.randint(0, 12))
        pixels = rng.randint(0, 40, size=(12, 12, 3)).astype(np.uint8)
        pixels[:, column] = 250
        Image.fromarray(pixels).save(root / "images" / f"{i}.png")
        rows.append([f"images/{i}.png", column + 0.5, int(column < 6), int(column >= 8),
                     "left" if column < 6 else "right"])
    with open(root / "data.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["path", "position", "left", "right", "side"])
        writer.writerows(rows)
    return root


@pytest.mark.parametrize("targets, expected_task, header", [
    (["--target", "position"], "regression", ["file", "position"]),
    (["--target", "left", "--target", "right"], "multilabel", ["file", "left", "right"]),
    (["--target", "side"], "classification", ["file", "label"]),
])
def test_train_on_a_csv_of_paths_and_targets(csv_folder, tmp_path, capsys, targets,
                                             expected_task, header):
    model = tmp_path / "model.safetensors"
    assert main(["train", str(csv_folder / "data.csv"), *targets, "--out", str(model),
                 "--size", "12", "--epochs", "15", "--lr", "0.01", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert f"task: {expected_task} (inferred" in out
    assert main(["predict", str(model), str(csv_folder / "images" / "0.png")]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == header and len(rows) == 2
    score = float(re.search(r"held-out [^0-9]*([0-9.]+)", out).group(1))
    assert score > 0.6, out


def test_the_task_can_be_named_and_bad_csvs_are_explained(csv_folder, tmp_path, capsys):
    data = str(csv_folder / "data.csv")
    model = str(tmp_path / "m.safetensors")
    assert main(["train", data, "--target", "side", "--task", "regression", "--out", model]) == 2
    assert "needs numbers in the target columns ['side'], but one holds 'left'" in \
        _error_line(capsys)
    assert main(["train", data, "--target", "nothing", "--out", model]) == 2
    assert "no target column ['nothing']" in _error_line(capsys)
    broken = csv_folder / "broken.csv"
    broken.write_text("path,y\nimages/0.png,1.5\nimages/missing.png,2.5\n")
    assert main(["train", str(broken), "--out", model]) == 2
    assert "1 of the 2 image files named in" in _error_line(capsys)


def test_help_shows_every_default_and_plain_text(capsys):
    for command in ["train", "predict", "demo"]:
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = capsys.readouterr().out
        assert "``" not in text and ":class:" not in text
        assert "exit status: 0 on success; 2 for a user error" in " ".join(text.split())
        if command == "train":
            for default in ["(default: 32)", "(default: 20 for images", "(default: 0.2)",
                            "(default: model.safetensors)", "(default: raise)"]:
                assert default in " ".join(text.split()), default
        assert "(default: None)" not in text


def test_cli_errors_give_cli_advice(image_folder, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SKLEARN_CNN_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert main(["train", str(image_folder), "--transfer", "resnet18", "--out",
                 str(tmp_path / "m.safetensors"), "--device", "cpu"]) == 2
    err = _error_line(capsys)
    assert "--weights path/to/file.pth" in err and "--weights none" in err
    assert "weights=None" not in err
    assert str(tmp_path / "hub" / "checkpoints") in err
    # An unwritable place is refused before training.
    assert main(["train", str(image_folder), "--out", "/proc/m.safetensors"]) == 2
    assert "cannot write in /proc" in _error_line(capsys)


def test_unreadable_files_can_be_skipped(image_folder, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(image_folder, data)
    (data / "red" / "broken.png").write_bytes(b"not an image")
    model = str(tmp_path / "m.safetensors")
    assert main(["train", str(data), "--out", model, "--size", "8", "--epochs", "1",
                 "--device", "cpu"]) == 2
    assert "--on-error skip" in _error_line(capsys)
    with pytest.warns(UserWarning, match=r"Skipped 1 of the 21 files.*broken.png"):
        assert main(["train", str(data), "--out", model, "--size", "8", "--epochs", "1",
                     "--device", "cpu", "--on-error", "skip"]) == 0


def test_the_docs_page_names_every_command_and_option():
    from pathlib import Path

    from sklearn_cnn.cli import parser

    page = (Path(__file__).parents[1] / "docs" / "cli.rst").read_text()
    commands = parser()._subparsers._group_actions[0].choices
    for name, command in commands.items():
        assert f"sklearn-cnn {name}" in page, name
        for action in command._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert f"``{option}" in page, (name, option)


@pytest.fixture(scope="module")
def ts_files(tmp_path_factory):
    """A train and a test .ts file: a bump up or down somewhere in each series."""
    folder = tmp_path_factory.mktemp("series")
    rng = np.random.RandomState(0)
    header = ("@problemName bumps\n@timeStamps false\n@univariate true\n@equalLength true\n"
              "@classLabel true down up\n@data\n")
    paths = []
    for part, n in [("TRAIN", 40), ("TEST", 20)]:
        lines = []
        for i in range(n):
            label = ["down", "up"][i % 2]
            series = 0.3 * rng.randn(30)
            where = rng.randint(0, 24)
            series[where:where + 6] += 2.0 if label == "up" else -2.0
            lines.append(",".join(f"{v:.4f}" for v in series) + f":{label}")
        path = folder / f"bumps_{part}.ts"
        path.write_text(header + "\n".join(lines) + "\n")
        paths.append(path)
    return paths


def test_train_and_predict_on_ts_files(ts_files, tmp_path, capsys):
    train_file, test_file = ts_files
    model = tmp_path / "series.safetensors"
    assert main(["train", str(train_file), "--test-data", str(test_file), "--out",
                 str(model), "--epochs", "15", "--lr", "0.01", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "40 series of 1 channel(s), 30 time points with 2 classes (down, up)" in out
    accuracy = float(re.search(r"accuracy (\S+) on 20 series", out).group(1))
    assert accuracy >= 0.9, out
    assert sklearn_cnn.load(model).architecture == "fcn"
    assert main(["predict", str(model), str(test_file), "--proba"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["file", "case", "label", "p_down", "p_up"] and len(rows) == 21
    assert rows[1][:3] == [str(test_file), "0", "down"]
    # image options with a .ts file, and a .ts file for an image model, are explained
    assert main(["train", str(train_file), "--size", "64", "--out", str(tmp_path / "x")]) == 2
    assert "--size: for images" in capsys.readouterr().err
