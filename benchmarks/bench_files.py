"""Images from files: decode throughput, fit from files against fit from memory, peak memory
of streamed epochs, and whether the same model comes out.

    python benchmarks/bench_files.py            # everything (about 4 minutes on 2 cores)
    python benchmarks/bench_files.py --quick    # smaller file counts

Prints markdown tables (docs/benchmarks.md, "Images in files").
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from _common import machine, table
from PIL import Image
from sklearn.datasets import load_sample_images

from sklearn_cnn import CNNClassifier
from sklearn_cnn.files import LazyImages, decode_image

warnings.simplefilter("ignore")


def write_jpegs(folder: Path, n: int, side: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """n JPEG patches of the two sample photos (label: which photo), side × side pixels."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.RandomState(seed)
    photos = load_sample_images().images
    paths, labels = [], rng.randint(0, 2, n)
    for i, label in enumerate(labels):
        photo = photos[label]
        r, c = rng.randint(0, photo.shape[0] - side), rng.randint(0, photo.shape[1] - side)
        path = folder / f"{i}.jpg"
        if not path.exists():
            Image.fromarray(photo[r:r + side, c:c + side]).save(path, quality=90)
        paths.append(str(path))
    return paths, labels


def _torchvision_decode(path: str, size) -> np.ndarray:
    from torchvision.io import ImageReadMode, read_file
    from torchvision.io import decode_image as tv_decode
    from torchvision.transforms.v2 import functional as TF

    pixels = tv_decode(read_file(path), mode=ImageReadMode.RGB)
    return TF.resize(pixels, list(size), antialias=True).permute(1, 2, 0).numpy()


def _decode_all(args) -> int:
    decoder, paths, size = args
    torch.set_num_threads(1)
    for path in paths:
        decoder(path, size)
    return len(paths)


def decode_table(paths: list[str]) -> str:
    import torchvision.io  # noqa: F401  (imported once, before the worker processes fork)
    import torchvision.transforms.v2.functional  # noqa: F401

    size = (64, 64)
    cores = os.cpu_count() or 1
    rows = []
    for name, decoder in [("Pillow (sklearn-cnn's decoder)", decode_image),
                          ("torchvision.io (deprecated in 0.29)", _torchvision_decode)]:
        for workers in sorted({1, cores}):
            chunks = [paths[i::workers] for i in range(workers)]
            best = float("inf")
            with ProcessPoolExecutor(workers) as pool:  # started and warmed up untimed
                list(pool.map(_decode_all, [(decoder, c[:4], size) for c in chunks]))
                for _ in range(3):
                    start = time.perf_counter()
                    list(pool.map(_decode_all, [(decoder, c, size) for c in chunks]))
                    best = min(best, time.perf_counter() - start)
            rows.append([name, workers, f"{len(paths) / best:,.0f}"])
    return table(["decoder (+ antialiased resize 256→64)", "processes", "images/s"], rows)


def fit_table(paths: list[str], labels: np.ndarray, rounds: int = 2) -> str:
    kwargs = dict(filters=(16, 32), max_epochs=3, batch_size=64, device="cpu",
                  random_state=0, precision="float32")
    files = LazyImages(paths, size=64)
    streamed_files = LazyImages(paths, size=64, cache_bytes=0)
    start = time.perf_counter()
    array = files.to_array()
    decode_s = time.perf_counter() - start
    first, later, fitted = {}, {}, {}
    for _ in range(rounds):  # interleaved, best of each: this machine's speed drifts
        for name, X in [("memory", array), ("cached", files), ("streamed", streamed_files)]:
            start = time.perf_counter()
            clf = CNNClassifier(**kwargs).fit(X, labels)
            total = time.perf_counter() - start
            epochs = clf.history_[:, "dur"]
            # The first epoch of a call that decodes once carries the decoding.
            first[name] = min(first.get(name, np.inf), total - sum(epochs[1:]))
            later[name] = min(later.get(name, np.inf), float(np.mean(epochs[1:])))
            fitted[name] = clf
    n = len(paths)
    rows = [["array in memory", f"{n / first['memory']:,.0f}", f"{n / later['memory']:,.0f}",
             "1.00"]]
    for name, label in [("cached", "files, decoded once (cache)"),
                        ("streamed", "files, streamed every epoch")]:
        rows.append([label, f"{n / first[name]:,.0f}", f"{n / later[name]:,.0f}",
                     f"{later['memory'] / later[name]:.2f}"])
    expected = fitted["memory"].predict_proba(array)
    same = (np.array_equal(fitted["cached"].predict_proba(files), expected)
            and np.array_equal(fitted["streamed"].predict_proba(streamed_files), expected))
    header = (f"{n} JPEG files 256×256 → 64×64, CNNClassifier(filters=(16, 32)), float32, "
              f"batch 64, 3 epochs; decoding all files once took {decode_s:.1f} s. "
              f"Same predictions from files (cached and streamed) as from the array: "
              f"{same}.\n\n")
    return header + table(["input", "first epoch img/s (whole call)", "later epochs img/s",
                           "later vs in-memory"], rows)


_CHILD = """
import sys, threading, time, warnings, numpy as np, psutil
warnings.simplefilter("ignore")
from sklearn_cnn import CNNClassifier
from sklearn_cnn.files import LazyImages

def memory():  # proportional set size of this process and its decoding workers
    me = psutil.Process()
    return sum(p.memory_full_info().pss for p in [me, *me.children(recursive=True)])

paths = open(sys.argv[1]).read().split()
labels = np.arange(len(paths)) % 2
files = LazyImages(paths, size=32, cache_bytes=0)
clf = CNNClassifier(filters=(8,), max_epochs=1, batch_size=64, device="cpu")
clf.fit(files[:256], labels[:256])  # warm up: allocator, oneDNN kernels
before, peak, done = memory(), [0], threading.Event()

def watch():
    while not done.is_set():
        peak[0] = max(peak[0], memory())
        time.sleep(0.05)

watcher = threading.Thread(target=watch)
watcher.start()
clf.fit(files, labels)
done.set()
watcher.join()
print(before, peak[0])
"""


def memory_table(paths: list[str], counts: list[int]) -> str:
    rows = []
    for n in counts:
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as listing:
            listing.write("\n".join(paths[:n]))
        out = subprocess.run([sys.executable, "-c", _CHILD, listing.name], check=True,
                             capture_output=True, text=True).stdout.split()
        os.unlink(listing.name)
        before, after = (int(v) / 2**20 for v in out[-2:])
        decoded = n * 32 * 32 * 3 / 2**20
        rows.append([f"{n:,}", f"{decoded:.0f}", f"{before:.0f}", f"{after:.0f}",
                     f"{after - before:.0f}"])
    return ("One streamed epoch (cache_bytes=0) over JPEG files decoded to 32×32, memory of "
            "the process and its decoding workers (proportional set size, sampled every "
            "50 ms; MB):\n\n"
            + table(["files", "decoded size MB", "before fit", "peak during fit",
                     "fit adds"], rows))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(f"# Images in files ({machine()}, {os.cpu_count()} cores)\n")
    root = Path(tempfile.gettempdir()) / "sklearn_cnn_bench_files"
    paths, labels = write_jpegs(root / "256", 400 if args.quick else 1000, 256)
    print(decode_table(paths[:400]), "\n")
    print(fit_table(paths, labels), "\n")
    small, _ = write_jpegs(root / "48", 5000 if args.quick else 20000, 48, seed=1)
    counts = [1000, 5000] if args.quick else [5000, 20000]
    print(memory_table(small, counts))


if __name__ == "__main__":
    main()
