"""Training and prediction throughput: CNNClassifier against a hand-written PyTorch loop,
skorch's NeuralNetClassifier with its defaults, and (when installed) Keras 3 on torch.

Same module (the lesson's ConvNet), same data, batch size, optimizer and epochs, side by
side in one process run. Run: ``python benchmarks/bench_throughput.py [--quick]``.
"""

from __future__ import annotations

import argparse
import math
import os

import numpy as np
import torch
from _common import hand_fit, hand_predict, machine, setup, table, timed

from sklearn_cnn import CNNClassifier
from sklearn_cnn._data import prediction_batch_size
from sklearn_cnn.devices import native_bfloat16, resolve_device
from sklearn_cnn.networks import network_input_size


def skorch_default_fit(module, X, y, *, epochs, batch_size, lr, device):
    from skorch import NeuralNetClassifier

    net = NeuralNetClassifier(module, criterion=torch.nn.CrossEntropyLoss,
                              optimizer=torch.optim.Adam, lr=lr, max_epochs=epochs,
                              batch_size=batch_size, train_split=None, verbose=0,
                              iterator_train__shuffle=True, device=str(device))
    net.fit(X, y)
    return net


def keras_model(input_shape, n_classes):
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape)
    x = inputs
    for filters in (32, 64, 128):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.25)(x)
    model = keras.Model(inputs, layers.Dense(n_classes)(x))
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def run(size, channels, n, epochs, batch_size, device, with_keras, precision="float32",
        rounds=3):
    # What the hand loop (and skorch) get is prepared once, outside timing.
    X8, y, X_float, X_dev, y_dev, fresh = setup(size, channels, n, device)
    autocast_dtype = torch.bfloat16 if precision == "bfloat16" else None
    lr = 1e-3
    rows = []

    # Warm up every path once (allocator, oneDNN/cuDNN kernel choice).
    hand_fit(fresh(), X_dev[:2048], y_dev[:2048], epochs=1, batch_size=batch_size, lr=lr,
             autocast_dtype=autocast_dtype)
    clf_kwargs = dict(max_epochs=epochs, batch_size=batch_size, lr=lr, lr_schedule=None,
                      dropout=0.25, device=device, precision=precision, random_state=0)
    CNNClassifier(**{**clf_kwargs, "max_epochs": 1}).fit(X8[:2048], y[:2048])

    # Interleaved rounds, best of each: this shared machine's speed drifts from run to run.
    clf = CNNClassifier(**clf_kwargs)
    contenders = {
        "hand": lambda: hand_fit(fresh(), X_dev, y_dev, epochs=epochs, batch_size=batch_size,
                                 lr=lr, autocast_dtype=autocast_dtype),
        "ours": lambda: clf.fit(X8, y),
        "skorch": lambda: skorch_default_fit(fresh(), X_float, y, epochs=epochs,
                                             batch_size=batch_size, lr=lr, device=device),
    }
    if precision != "float32":  # skorch's defaults and Keras run in float32 only
        del contenders["skorch"]
    if with_keras and precision == "float32":
        X_keras = X8.astype(np.float32) / 255
        keras_model((size, size, channels), 10).fit(X_keras[:256], y[:256],
                                                    batch_size=batch_size, epochs=1, verbose=0)
        contenders["keras"] = lambda: keras_model((size, size, channels), 10).fit(
            X_keras, y, batch_size=batch_size, epochs=epochs, verbose=0)
    best = {name: float("inf") for name in contenders}
    epochs_only = float("inf")
    for _ in range(rounds):
        for name, fit in contenders.items():
            best[name] = min(best[name], timed(fit))
            if name == "ours":
                epochs_only = min(epochs_only, sum(clf.history_[:, "dur"]))
    hand, seen = best["hand"], n * epochs
    rows.append(["hand-written loop (float tensors on device)", f"{seen / hand:,.0f}", "1.00"])
    rows.append(["**CNNClassifier.fit** (uint8 input), whole call", f"{seen / best['ours']:,.0f}",
                 f"**{hand / best['ours']:.2f}**"])
    # The call also learns the input statistics, recomputes batch-norm statistics (1024
    # images) and checks eval-mode predictions (512): work the hand loop leaves undone.
    rows.append(["CNNClassifier.fit, its epochs only (history_ 'dur')",
                 f"{seen / epochs_only:,.0f}", f"{hand / epochs_only:.2f}"])
    if "skorch" in best:
        rows.append(["skorch NeuralNetClassifier, defaults", f"{seen / best['skorch']:,.0f}",
                     f"{hand / best['skorch']:.2f}"])
    if "keras" in best:
        rows.append(["Keras 3 (torch backend) model.fit", f"{seen / best['keras']:,.0f}",
                     f"{hand / best['keras']:.2f}"])

    # Prediction: predict_proba against a hand-written inference_mode loop, at 4 training
    # batches per prediction batch and at the batch size predict_proba itself picks.
    predict_batch = 4 * batch_size
    own_batch = prediction_batch_size(
        torch.device(device),
        pixels=math.prod(network_input_size(clf.module_, clf.input_shape_[:2])),
        batch_size=clf.batch_size, bfloat16=clf.net_.autocast_dtype is not None)
    best_pred = {"hand": float("inf"), "hand own": float("inf"), "ours": float("inf")}
    for _ in range(rounds + 2):
        best_pred["hand"] = min(best_pred["hand"], timed(lambda: hand_predict(
            clf.module_, X_dev, batch_size=predict_batch, autocast_dtype=autocast_dtype)))
        if own_batch != predict_batch:
            best_pred["hand own"] = min(best_pred["hand own"], timed(lambda: hand_predict(
                clf.module_, X_dev, batch_size=own_batch, autocast_dtype=autocast_dtype)))
        best_pred["ours"] = min(best_pred["ours"], timed(lambda: clf.predict_proba(X8)))
    hand_pred, ours_pred = best_pred["hand"], best_pred["ours"]
    rows.append([f"hand-written inference_mode predict, batch {predict_batch}",
                 f"{n / hand_pred:,.0f}", "1.00"])
    if own_batch != predict_batch:
        rows.append([f"hand-written inference_mode predict, batch {own_batch}",
                     f"{n / best_pred['hand own']:,.0f}",
                     f"{hand_pred / best_pred['hand own']:.2f}"])
    rows.append([f"**CNNClassifier.predict_proba** (batch {own_batch})", f"{n / ours_pred:,.0f}",
                 f"**{hand_pred / ours_pred:.2f}**"])
    return rows


def compare_precisions(size, channels, n, epochs, batch_size, device, rounds=3):
    """CNNClassifier in bfloat16 against itself in float32: fits and predictions
    interleaved, best of each, and the accuracy each reaches."""
    X8, y, *_ = setup(size, channels, n, device)
    best = {}
    models = {}
    for _ in range(rounds):
        for precision in ["float32", "bfloat16"]:
            clf = CNNClassifier(max_epochs=epochs, batch_size=batch_size, device=device,
                                precision=precision, random_state=0)
            clf.fit(X8, y)
            epoch = min(clf.history_[:, "dur"])
            clf.predict_proba(X8[:512])  # warm up oneDNN's kernels for this batch size
            predict = timed(lambda model=clf: model.predict_proba(X8))
            old = best.get(precision, (float("inf"),) * 2)
            best[precision] = (min(old[0], epoch), min(old[1], predict))
            models[precision] = clf
    rows = []
    for precision, (epoch, predict) in best.items():
        ref_epoch, ref_predict = best["float32"]
        rows.append([precision, f"{n / epoch:,.0f}", f"{ref_epoch / epoch:.2f}",
                     f"{n / predict:,.0f}", f"{ref_predict / predict:.2f}",
                     f"{models[precision].score(X8, y):.4f}"])
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--precision", action="append", choices=["float32", "bfloat16"],
                        help="repeatable; default: float32, and bfloat16 too where the "
                             "device computes it natively")
    args = parser.parse_args()
    device = resolve_device(args.device)
    try:
        os.environ.setdefault("KERAS_BACKEND", "torch")
        import keras  # noqa: F401

        with_keras = True
    except ImportError:
        with_keras = False
    print(f"Machine: {machine()}; Keras: {'yes' if with_keras else 'not installed'}\n")
    if device.type == "cuda":
        settings = [(8, 1, 50_000, 2, 256), (8, 1, 16384, 1, 32), (32, 3, 50_000, 2, 256)]
        precisions = args.precision or ["float32", "bfloat16"]
    else:
        settings = [(8, 1, 4096, 3, 32), (32, 3, 4096, 2, 64)]
        precisions = args.precision or (["float32", "bfloat16"] if native_bfloat16(device)
                                        else ["float32"])
    if args.quick:
        settings = [(8, 1, 1024, 1, 32)]
    if native_bfloat16(device) and device.type == "cpu" and not args.quick:
        for size, channels, n, epochs, batch_size in [(8, 1, 4096, 3, 64),
                                                      (32, 3, 4096, 2, 64)]:
            print(f"### CNNClassifier, bfloat16 against float32: {n} images "
                  f"{size}×{size}×{channels}, batch {batch_size}, {epochs} epochs, on "
                  f"{device}\n")
            print(table(["precision", "fit images/s (epoch)", "vs float32",
                         "predict_proba images/s", "vs float32", "train accuracy"],
                        compare_precisions(size, channels, n, epochs, batch_size, device)),
                  "\n", flush=True)
    for size, channels, n, epochs, batch_size in settings:
        for precision in precisions:
            rows = run(size, channels, n, epochs, batch_size, device, with_keras,
                       precision=precision, rounds=1 if args.quick else 3)
            print(f"### {n} images {size}×{size}×{channels}, batch {batch_size}, {epochs} "
                  f"epochs, Adam, {precision}, on {device}\n")
            print(table(["", "images/s", "vs hand loop"], rows), "\n", flush=True)


if __name__ == "__main__":
    main()
