import subprocess
import sys

import numpy as np
from PIL import Image

from sklearn_cnn.cli import demo, main


def test_demo_quick(tmp_path, capsys):
    scores = demo(n_jobs=1, quick=True, out=str(tmp_path / "m.joblib"))
    out = capsys.readouterr().out
    assert "| rank |" in out and "SVC baseline" in out
    assert scores["reloaded_identical"]
    assert scores["cnn"] > 0.8 and scores["svc"] > 0.9
    assert (tmp_path / "m.joblib").exists()


def test_train_and_predict_on_an_image_folder(tmp_path, capsys):
    rng = np.random.RandomState(0)
    for label, channel in [("red", 0), ("blue", 2)]:
        (tmp_path / "data" / label).mkdir(parents=True)
        for i in range(6):
            pixels = rng.randint(0, 60, size=(10, 12, 3)).astype(np.uint8)
            pixels[..., channel] = 250
            Image.fromarray(pixels).save(tmp_path / "data" / label / f"{i}.png")
    model = tmp_path / "model.joblib"
    main(["train", str(tmp_path / "data"), "--out", str(model), "--size", "8", "--epochs", "15"])
    main(["predict", str(model), str(tmp_path / "data/red/0.png"),
          str(tmp_path / "data/blue/1.png")])
    lines = capsys.readouterr().out.strip().splitlines()[-2:]
    assert lines[0].endswith(",red") and lines[1].endswith(",blue")


def test_module_entry_point():
    result = subprocess.run([sys.executable, "-m", "sklearn_cnn", "--help"],
                            capture_output=True, text=True, check=True)
    assert "demo" in result.stdout and "predict" in result.stdout
