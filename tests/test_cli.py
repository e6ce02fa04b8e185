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
    assert lines == [f"{files[0]},red", f"{files[1]},blue"]
    assert main(["predict", str(model), "--proba", *files]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "file,label,p_blue,p_red"
    assert lines[1].startswith(f"{files[0]},red,") and len(lines[1].split(",")) == 4


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
