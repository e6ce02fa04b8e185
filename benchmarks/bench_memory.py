"""Peak memory of fit on 50,000 uint8 32×32×3 images: no float32 copy of the dataset.

On the CPU, each measurement runs in a fresh process: after torch is imported, the data made and a
warm-up fit, the kernel's peak-RSS counter is reset (Linux ``/proc/self/clear_refs``), and
the peak during the measured fit is read back from ``VmHWM``.
On CUDA (``--device cuda``), the peak is the caching allocator's
``torch.cuda.max_memory_allocated`` during the measured fit, counted from what was allocated
before it: the resident dataset, the model, its optimizer state and one batch's activations.
Run: ``python benchmarks/bench_memory.py [--device cuda]``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from _common import table

CHILD = r"""
import json, sys
sys.path.insert(0, "benchmarks")
import numpy as np, torch
from _common import images
from sklearn_cnn import CNNClassifier
mode, device = sys.argv[1:3]
X, y = images(50_000, 32, 3)
if mode == "float32":
    X = X.astype(np.float32) / 255
clf = CNNClassifier(filters=(16, 32), max_epochs=1, batch_size=256, device=device,
                    random_state=0)
clf.fit(X[:512], y[:512])          # warm-up: allocator, kernels (and the CUDA context)

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024

if device == "cuda":
    torch.cuda.synchronize()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    clf.fit(X, y)
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated()
else:
    base = status("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak (VmHWM) to the current RSS
    clf.fit(X, y)
    peak = status("VmHWM")
print(json.dumps({"data_mb": X.nbytes / 2**20, "base_mb": base / 2**20,
                  "peak_mb": peak / 2**20}))
"""


def measure(mode: str, device: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, mode, device], capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    device = parser.parse_args().device
    rows = []
    for mode in ["uint8", "float32"]:
        m = measure(mode, device)
        rows.append([f"{mode} input", f"{m['data_mb']:.0f}", f"{m['base_mb']:.0f}",
                     f"{m['peak_mb']:.0f}", f"{m['peak_mb'] - m['base_mb']:.0f}"])
    if device == "cuda":
        import torch

        print(f"### Peak GPU memory of CNNClassifier.fit, 50,000 images of 32×32×3 (1 epoch, "
              f"{torch.cuda.get_device_name()})\n")
        print(table(["", "dataset MB", "allocated before fit MB", "peak during fit MB",
                     "fit adds MB"], rows))
        print("\nThe dataset is copied to the GPU once, as it was given: uint8 stays uint8 "
              "there and each batch becomes float on the device.")
        return
    print("### Peak memory of CNNClassifier.fit, 50,000 images of 32×32×3 (1 epoch, CPU)\n")
    print(table(["", "dataset MB", "process before fit MB", "peak during fit MB",
                 "fit adds MB"], rows))
    print("\nA float32 copy of the uint8 dataset would add 586 MB; uint8 input is kept as "
          "uint8 and converted per batch.")


if __name__ == "__main__":
    main()
