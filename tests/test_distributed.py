"""Data-parallel fits (``distributed.py``): an unchanged script under ``torchrun`` with two
CPU processes (gloo) trains one model; and the pieces, in one process."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from sklearn_cnn._data import BatchIterator, ImageDataset
from sklearn_cnn.distributed import Context, context, is_main_process

pytest.importorskip("torch.distributed")

SCRIPT = textwrap.dedent('''
    import hashlib, json, os, sys
    import numpy as np
    import sklearn_cnn.files as files
    from skorch.callbacks import Callback
    from sklearn.model_selection import train_test_split
    from sklearn_cnn import CNNClassifier
    from sklearn_cnn.datasets import load_digits_images, load_image_folder

    out, mode = sys.argv[1], sys.argv[2]
    rank = int(os.environ.get("RANK") or os.environ.get("OMPI_COMM_WORLD_RANK") or 0)
    decoded = []
    original = files.decode_image
    files.decode_image = lambda path, *a, **k: decoded.append(path) or original(path, *a, **k)

    class Decoding(Callback):  # the files decoded while the epochs run
        def on_train_begin(self, net, **kwargs):
            decoded.clear()

        def on_train_end(self, net, **kwargs):
            self.during_training = len(decoded)

    spy = Decoding()
    if mode == "series":  # a bump up or down somewhere, in series of unequal lengths
        from sklearn_cnn import TimeSeriesClassifier

        rng = np.random.RandomState(0)
        y = np.array(["down", "up"] * 48)
        X = [0.3 * rng.randn(1, 30 + i % 20) for i in range(len(y))]
        for series, label in zip(X, y):
            where = rng.randint(0, series.shape[1] - 6)
            series[0, where:where + 6] += 2.0 if label == "up" else -2.0
        clf = TimeSeriesClassifier(filters=(8, 16, 8), max_epochs=10, lr=0.01, batch_size=16,
                                   random_state=0, device="cpu", verbose=0).fit(X, y)
        score = clf.score(X, y)
    elif mode == "files":
        X, y = load_image_folder(sys.argv[3], size=8, lazy=True, n_jobs=1)
        clf = CNNClassifier(filters=(8, 16), max_epochs=2, batch_size=8, random_state=0,
                            device="cpu", callbacks=[spy], verbose=0).fit(X, y)
        score = clf.score(X, y)
    else:
        X, y = load_digits_images()
        X_train, X_test, y_train, y_test = train_test_split(
            X / 16, y, test_size=0.25, stratify=y, random_state=0)
        if mode == "bad" and rank == 1:
            X_train = X_train.copy()
            X_train[0, 0, 0] = np.nan
        clf = CNNClassifier(max_epochs=8, early_stopping=True, random_state=0, device="cpu",
                            verbose=0).fit(X_train, y_train)
        score = clf.score(X_test, y_test)
    digest = hashlib.sha256(b"".join(
        t.numpy().tobytes() for t in clf.module_.state_dict().values())).hexdigest()
    with open(f"{out}.{rank}.json", "w") as file:
        json.dump({"digest": digest, "score": score, "epochs": len(clf.history_),
                   "valid_loss": clf.history_[-1].get("valid_loss"),
                   "decoded": getattr(spy, "during_training", None)}, file)
''')


def _run(tmp_path, *args, processes=2, timeout=240):
    script = tmp_path / "fit.py"
    script.write_text(SCRIPT)
    command = [sys.executable, str(script), *args]
    if processes > 1:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc_per_node={processes}", str(script), *args]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


def _run_as_mpirun_would(tmp_path, *args, processes=2, timeout=240):
    """The script in ``processes`` processes with the variables Open MPI's mpirun sets (and
    MASTER_ADDR/MASTER_PORT, which accelerate launch --mpirun_hostfile adds): no torchrun."""
    import socket

    script = tmp_path / "fit.py"
    script.write_text(SCRIPT)
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    base = {k: v for k, v in os.environ.items()
            if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    runs = [subprocess.Popen(
        [sys.executable, str(script), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**base, "OMPI_COMM_WORLD_SIZE": str(processes),
                        "OMPI_COMM_WORLD_RANK": str(rank),
                        "OMPI_COMM_WORLD_LOCAL_RANK": str(rank),
                        "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
        for rank in range(processes)]
    outputs = [run.communicate(timeout=timeout) for run in runs]
    return [run.returncode for run in runs], [err for _, err in outputs]


def _two_colour_folder(folder, per_class=24):
    """``per_class`` red and as many blue 10×10 PNG files in class folders."""
    from PIL import Image

    rng = np.random.RandomState(0)
    for label, channel in [("red", 0), ("blue", 2)]:
        (folder / label).mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.randint(0, 60, size=(10, 10, 3)).astype(np.uint8)
            pixels[..., channel] = 250
            Image.fromarray(pixels).save(folder / label / f"{i}.png")
    return folder


def _results(prefix, ranks):
    return [json.loads(open(f"{prefix}.{rank}.json").read()) for rank in ranks]


@pytest.mark.slow
def test_an_unchanged_script_trains_one_model_across_processes(tmp_path):
    single = _run(tmp_path, str(tmp_path / "single"), "digits", processes=1)
    assert single.returncode == 0, single.stderr[-2000:]
    parallel = _run(tmp_path, str(tmp_path / "parallel"), "digits")
    assert parallel.returncode == 0, parallel.stderr[-3000:]
    (alone,), (first, second) = _results(tmp_path / "single", [0]), _results(
        tmp_path / "parallel", [0, 1])
    assert first["digest"] == second["digest"]  # the same weights in every process
    assert first["epochs"] == second["epochs"] and first["valid_loss"] == second["valid_loss"]
    assert abs(first["score"] - alone["score"]) <= 0.01, (first["score"], alone["score"])


@pytest.mark.slow
def test_an_unchanged_time_series_script_trains_one_model_across_processes(tmp_path):
    parallel = _run(tmp_path, str(tmp_path / "series"), "series")
    assert parallel.returncode == 0, parallel.stderr[-3000:]
    first, second = _results(tmp_path / "series", [0, 1])
    assert first["digest"] == second["digest"] and first["epochs"] == second["epochs"] == 10
    assert first["score"] == second["score"] and first["score"] > 0.9, first["score"]


@pytest.mark.slow
def test_bad_input_in_one_process_fails_them_all(tmp_path):
    result = _run(tmp_path, str(tmp_path / "bad"), "bad", timeout=120)
    assert result.returncode != 0
    assert result.stderr.count("ValueError: Input X contains NaN.") == 2, result.stderr[-3000:]
    assert "(in process 1 of the data-parallel fit)" in result.stderr


@pytest.mark.slow
def test_each_process_decodes_only_its_share_of_the_files(tmp_path):
    folder = _two_colour_folder(tmp_path / "data")
    result = _run(tmp_path, str(tmp_path / "files"), "files", str(folder))
    assert result.returncode == 0, result.stderr[-3000:]
    first, second = _results(tmp_path / "files", [0, 1])
    assert first["digest"] == second["digest"]
    # 2 epochs of 48 files: each process decodes its half of every batch.
    assert first["decoded"] == second["decoded"] == 48


@pytest.mark.slow
def test_an_mpi_launch_trains_one_model_too(tmp_path):
    # accelerate launch on CPUs goes through mpirun, which sets Open MPI's variables, not
    # torchrun's: without reading them, each process would fit the whole data on its own.
    folder = _two_colour_folder(tmp_path / "data")
    codes, errors = _run_as_mpirun_would(tmp_path, str(tmp_path / "mpi"), "files", str(folder))
    assert codes == [0, 0], errors[0][-3000:] + errors[1][-3000:]
    first, second = _results(tmp_path / "mpi", [0, 1])
    assert first["digest"] == second["digest"]
    assert first["decoded"] == second["decoded"] == 48  # each its half, as under torchrun


def test_an_mpi_launch_without_a_rendezvous_says_what_to_set(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setenv("PMI_RANK", "1")
    assert not is_main_process()
    with pytest.raises(RuntimeError, match=r"one of 2 \(PMI_SIZE=2\).*MASTER_ADDR and "
                                           r"MASTER_PORT are not set"):
        context(torch.device("cpu"))


def test_a_batch_is_shared_out_in_the_same_order_everywhere():
    dataset = ImageDataset(torch.arange(10.0).view(10, 1, 1, 1), torch.arange(10))
    shares = [list(BatchIterator(dataset, 4, shuffle=True, seed=0,
                                 shard=Context(rank, 2))) for rank in range(2)]
    alone = list(BatchIterator(dataset, 4, shuffle=True, seed=0))
    assert len(shares[0]) == len(shares[1]) == len(alone) == 3
    for (a, _), (b, _), (whole, _) in zip(*shares, alone):
        assert sorted([*a.flatten().tolist(), *b.flatten().tolist()]) == sorted(
            whole.flatten().tolist())
    # A last batch with fewer images than processes is left out, in every process.
    assert len(list(BatchIterator(dataset, 3, shard=Context(0, 2)))) == 3  # 3, 3, 3 (1)
    assert len(list(BatchIterator(ImageDataset(torch.zeros(7, 1, 1, 1)), 3,
                                  shard=Context(0, 2)))) == 2


def test_one_process_is_no_data_parallel_fit(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert context(torch.device("cpu")) is None and is_main_process()
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert not is_main_process()


@pytest.mark.slow
def test_the_command_line_trains_under_torchrun(tmp_path, image_folder_for_cli):
    out = tmp_path / "model.safetensors"
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         "-m", "sklearn_cnn", "train", str(image_folder_for_cli), "--out", str(out), "--size",
         "8", "--epochs", "3", "--device", "cpu"],
        capture_output=True, text=True, timeout=240, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("saved to") == 1  # the first process saves and reports
    import sklearn_cnn

    model = sklearn_cnn.load(out)
    assert model.predict([str(p) for p in sorted(image_folder_for_cli.rglob("*.png"))][:2]
                         ).shape == (2,)


@pytest.fixture
def image_folder_for_cli(tmp_path):
    return _two_colour_folder(tmp_path / "data", per_class=12)
