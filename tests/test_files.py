"""Images in files: ImageLoader, LazyImages, load_image_folder, and the estimators on paths."""

import pickle
import tracemalloc
import warnings

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_sample_images
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.utils import _safe_indexing

from sklearn_cnn import CNNClassifier, TransferClassifier
from sklearn_cnn.datasets import load_image_folder
from sklearn_cnn.files import LazyImages, decode_image
from sklearn_cnn.preprocessing import ImageLoader, ImageResizer

FAST = dict(filters=(8, 16), max_epochs=3, device="cpu", random_state=0)


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    """Patches of the two sample photos, 40 per class, of mixed sizes, JPEG and PNG."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.RandomState(0)
    for name, photo in zip(["china", "flower"], load_sample_images().images):
        (root / name).mkdir()
        for i in range(40):
            side = rng.randint(24, 48)
            r = rng.randint(0, photo.shape[0] - side)
            c = rng.randint(0, photo.shape[1] - side)
            patch = Image.fromarray(photo[r:r + side, c:c + side])
            patch.save(root / name / f"{i}.{'jpg' if i % 2 else 'png'}")
    return root


@pytest.fixture(scope="module")
def same_size_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("same")
    rng = np.random.RandomState(1)
    pixels = rng.randint(0, 256, size=(6, 10, 12, 3), dtype=np.uint8)
    paths = []
    for i, image in enumerate(pixels):
        paths.append(root / f"{i}.png")
        Image.fromarray(image).save(paths[-1])
    return paths, pixels


# ------------------------------------------------------------------ decoding and loading
def test_lossless_round_trip_for_files_of_the_target_size(same_size_folder):
    paths, pixels = same_size_folder
    np.testing.assert_array_equal(ImageLoader().fit_transform(paths), pixels)
    np.testing.assert_array_equal(ImageLoader(size=(10, 12)).fit_transform(paths), pixels)
    gray = ImageLoader(color_mode="grayscale").fit_transform(paths)
    with Image.open(paths[0]) as image:
        np.testing.assert_array_equal(gray[0, ..., 0], np.asarray(image.convert("L")))


def test_resizing_is_the_image_resizers(same_size_folder):
    paths, pixels = same_size_folder
    loaded = ImageLoader(size=(5, 7)).fit_transform(paths)
    np.testing.assert_array_equal(loaded, ImageResizer(size=(5, 7)).fit_transform(pixels))


def test_different_sizes_need_a_size(photo_folder):
    with pytest.raises(ValueError, match=r"is \d+x\d+ pixels, but .* Pass size=\(height, width\)"):
        load_image_folder(photo_folder)
    X, y = load_image_folder(photo_folder, size=(16, 20))
    assert X.shape == (80, 16, 20, 3) and X.dtype == np.uint8
    assert sorted(set(y)) == ["china", "flower"] and (y[:40] == "china").all()


def test_flat_folders_load_unlabelled_images(photo_folder):
    X, y = load_image_folder(photo_folder / "china", size=16, color_mode="grayscale")
    assert y is None and X.shape == (40, 16, 16, 1)


def test_bad_files_name_the_file_or_are_skipped_with_a_count(tmp_path, photo_folder):
    for name in ["china", "flower"]:
        (tmp_path / name).mkdir()
        for i in range(3):
            (tmp_path / name / f"{i}.png").write_bytes((photo_folder / name / "0.png")
                                                        .read_bytes())
    good = (photo_folder / "china" / "1.jpg").read_bytes()
    (tmp_path / "china" / "truncated.jpg").write_bytes(good[:len(good) // 2])
    (tmp_path / "flower" / "notes.png").write_text("not an image")
    with pytest.raises(ValueError, match=r"Cannot read image file '.*(truncated|notes)"):
        load_image_folder(tmp_path, size=8)
    with pytest.warns(UserWarning, match=r"Skipped 2 of the 8 files .* could not be read"):
        X, y = load_image_folder(tmp_path, size=8, on_error="skip")
    assert X.shape == (6, 8, 8, 3) and list(y) == ["china"] * 3 + ["flower"] * 3
    with pytest.warns(UserWarning, match="Skipped 2"):
        lazy, _ = load_image_folder(tmp_path, size=8, lazy=True, on_error="skip", n_jobs=2)
    assert len(lazy) == 6


def test_a_corrupt_file_in_worker_processes_is_an_error_not_a_hang(tmp_path, photo_folder):
    paths = [photo_folder / "china" / f"{i}.png" for i in range(0, 40, 2)] * 3
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    images = LazyImages([*paths, bad], size=8, n_jobs=2)
    assert images.workers() == 2
    with pytest.raises(ValueError, match="bad.png"):
        np.asarray(images)


@pytest.mark.parametrize("X, error, match", [
    ("one.png", TypeError, r"single path 'one.png'; pass \[path\]"),
    (np.zeros((2, 4, 4)), TypeError, "Images already in memory need no ImageLoader"),
    ([1, 2], TypeError, "other value"),
    (["missing.png"], ValueError, "1 of the 1 image files do not exist, e.g. 'missing.png'"),
])
def test_image_loader_bad_input(X, error, match):
    with pytest.raises(error, match=match):
        ImageLoader().fit_transform(X)


# ---------------------------------------------------------------------- the lazy collection
def test_lazy_images_behave_like_the_array(photo_folder):
    X, y = load_image_folder(photo_folder, size=12, lazy=True, n_jobs=2)
    array = np.asarray(X)
    assert X.shape == array.shape == (80, 12, 12, 3) and X.dtype == np.uint8 and len(X) == 80
    np.testing.assert_array_equal(X[5], array[5])
    np.testing.assert_array_equal(np.asarray(X[3:9]), array[3:9])
    np.testing.assert_array_equal(np.asarray(X[[7, 1]]), array[[7, 1]])
    mask = y == "flower"
    assert isinstance(X[mask], LazyImages) and X[mask].shape == (40, 12, 12, 3)
    np.testing.assert_array_equal(np.asarray(_safe_indexing(X, np.arange(4))), array[:4])
    X_train, X_test, y_train, _ = train_test_split(X, y, test_size=0.25, random_state=0)
    assert isinstance(X_train, LazyImages) and len(X_test) == 20
    blob = pickle.dumps(X)
    assert len(blob) < 200 * len(X)  # paths and settings, not 80 × 432 bytes of pixels
    np.testing.assert_array_equal(np.asarray(pickle.loads(blob)), array)


def test_estimators_fit_and_predict_on_lazy_collections(photo_folder):
    X, y = load_image_folder(photo_folder, size=16, lazy=True, n_jobs=2)
    array = np.asarray(X)
    from_array = CNNClassifier(**FAST).fit(array, y)
    cached = CNNClassifier(**FAST).fit(X, y)
    X.cache_bytes = 0  # force streaming through the workers
    streamed = CNNClassifier(**FAST).fit(X, y)
    expected = from_array.predict_proba(array)
    np.testing.assert_array_equal(cached.predict_proba(X), expected)
    np.testing.assert_array_equal(streamed.predict_proba(X), expected)
    assert cross_val_score(CNNClassifier(**FAST), X, y, cv=2).shape == (2,)
    with pytest.raises(ValueError, match=r"fitted on images of shape \(16, 16, 3\).*ImageLoader"):
        streamed.predict(LazyImages(X.paths, size=12))


def test_transfer_classifier_streams_files_too(photo_folder):
    X, y = load_image_folder(photo_folder, size=16, lazy=True, cache_bytes=0)
    clf = TransferClassifier(backbone="resnet18", weights=None, freeze="none", input_size=16,
                             max_epochs=1, device="cpu", random_state=0).fit(X[::4], y[::4])
    assert clf.predict(X[:3]).shape == (3,)


def test_pipeline_on_paths_and_grid_search_in_processes(photo_folder):
    X, y = load_image_folder(photo_folder, lazy=True)
    paths = X.paths
    pipe = make_pipeline(ImageLoader(size=16), CNNClassifier(**FAST))
    search = GridSearchCV(pipe, {"cnnclassifier__lr": [0.002, 0.01]}, cv=2, n_jobs=2)
    search.fit(paths, y)
    assert search.best_score_ > 0.6
    assert set(search.predict(paths[:4])) <= {"china", "flower"}


def test_pipeline_memory_caches_the_loading_step(photo_folder, tmp_path, monkeypatch):
    import sklearn_cnn.files as files

    calls = []
    original = files.decode_image
    monkeypatch.setattr(files, "decode_image", lambda *a, **k: calls.append(1) or original(
        *a, **k))
    X, y = load_image_folder(photo_folder, lazy=True, n_jobs=1)
    calls.clear()
    pipe = make_pipeline(ImageLoader(size=16, n_jobs=1), CNNClassifier(**FAST),
                         memory=str(tmp_path))
    pipe.fit(X.paths, y)
    assert len(calls) == 80
    pipe.set_params(cnnclassifier__lr=0.01).fit(X.paths, y)
    assert len(calls) == 80  # the loaded images came from the cache


def test_streaming_memory_does_not_grow_with_the_number_of_files(photo_folder, monkeypatch):
    # The same 80 files listed 1x and 4x: what a streamed fit allocates stays flat. Fit
    # decodes a fixed-size sample for statistics and checks (4096 and 1024 images; 16 here,
    # so that this small test is past them; benchmarks/bench_files.py shows 5k vs 20k files).
    import sklearn_cnn._base as base
    import sklearn_cnn.files as files

    monkeypatch.setattr(files, "_STATISTICS_SAMPLE", 16)
    monkeypatch.setattr(base, "_CHECK_SAMPLES", 16)
    X, y = load_image_folder(photo_folder, size=16, lazy=True, cache_bytes=0, n_jobs=1)

    def peak(times):
        images = LazyImages(np.tile(X.paths, times), size=16, cache_bytes=0, n_jobs=1)
        clf = CNNClassifier(filters=(4,), max_epochs=1, device="cpu", random_state=0)
        tracemalloc.start()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clf.fit(images, np.tile(y, times))
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    small, large = peak(1), peak(4)
    assert large < 1.5 * small + 200_000, (small, large)


def test_decode_image_errors_name_the_file(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        decode_image(tmp_path / "nothing.png")
    (tmp_path / "text.jpg").write_text("hello")
    with pytest.raises(ValueError, match=r"Cannot read image file '.*text.jpg'"):
        decode_image(tmp_path / "text.jpg")


# ------------------------------------------------------------- what the decoder reads
def _write(tmp_path, name, image):
    path = tmp_path / name
    image.save(path)
    return path


def test_every_pillow_mode_decodes_to_the_right_pixels_or_is_refused(tmp_path):
    ramp = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4  # 0..252
    rgb = np.stack([ramp, 255 - ramp, np.full_like(ramp, 7)], axis=-1)
    cases = {
        "L": (Image.fromarray(ramp), ramp),
        "1": (Image.fromarray(ramp > 127), np.where(ramp > 127, 255, 0)),
        "LA": (Image.fromarray(np.stack([ramp, ramp], -1), mode="LA"), ramp),
        "RGB": (Image.fromarray(rgb), rgb),
        "RGBA": (Image.fromarray(np.dstack([rgb, np.full_like(ramp, 128)])), rgb),
        "P": (Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=256),
              None),
        "I;16": (Image.fromarray(ramp.astype(np.uint16) * 257), ramp),
        "I": (Image.fromarray(ramp.astype(np.int32)), ramp),
        "F": (Image.fromarray(ramp.astype(np.float32) / 255), ramp),
        "CMYK": (Image.fromarray(rgb).convert("CMYK"), rgb),
    }
    for mode, (image, expected) in cases.items():
        suffix = "tif" if mode in ("I", "F", "CMYK") else "png"
        path = _write(tmp_path, f"{mode.replace(';', '_')}.{suffix}", image)
        pixels = decode_image(path, color_mode="rgb")
        assert pixels.shape == (8, 8, 3) and pixels.dtype == np.uint8, mode
        if expected is None:  # a palette: as Pillow's own conversion gives
            expected = np.asarray(Image.open(path).convert("RGB"))
        if expected.ndim == 2:
            expected = np.repeat(expected[..., None], 3, axis=-1)
        np.testing.assert_allclose(pixels, expected, atol=1, err_msg=mode)
    # 16-bit pixels are scaled, not clipped: the brightest is 255, half-way is 128.
    sixteen = _write(tmp_path, "wide.png", Image.fromarray(np.array([[0, 32896, 65535]],
                                                                    dtype=np.uint16)))
    assert decode_image(sixteen, color_mode="grayscale").ravel().tolist() == [0, 128, 255]
    # A float image of unknown scale is refused, naming the mode.
    odd = _write(tmp_path, "odd.tif", Image.fromarray(np.array([[-3.0, 900.0]], np.float32)))
    with pytest.raises(ValueError, match=r"mode 'F' with values from -3 to 900"):
        decode_image(odd)


def test_exif_orientation_turns_photos_upright(tmp_path):
    pixels = np.zeros((4, 6, 3), np.uint8)
    pixels[0, :] = 255  # a bright top row, on a landscape image
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 clockwise to view"
    path = tmp_path / "phone.jpg"
    image.save(path, exif=exif, quality=100)
    upright = decode_image(path)
    assert upright.shape == (6, 4, 3)  # portrait, as viewers show it
    assert upright[:, -1].mean() > 200 and upright[:, 0].mean() < 50  # the top row is right


def test_nested_folders_belong_to_their_class_and_what_is_left_out_is_said(tmp_path):
    for label in ["cat", "dog"]:
        (tmp_path / label / "2020").mkdir(parents=True)
        for i, where in enumerate([tmp_path / label, tmp_path / label / "2020"]):
            Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(where / f"{i}.png")
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    (tmp_path / "dog" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    with pytest.warns(UserWarning) as caught:
        X, y = load_image_folder(tmp_path)
    assert sorted(y.tolist()) == ["cat", "cat", "dog", "dog"]  # 2020/ sub-folders included
    messages = " ".join(str(w.message) for w in caught)
    assert "1 entries under" in messages and "gone.png" in messages
    assert "1 files under" in messages and "notes.txt" in messages


def test_lazy_images_index_like_an_array(photo_folder):
    X, _ = load_image_folder(photo_folder, size=8, lazy=True)
    three = X[:3]
    np.testing.assert_array_equal(three[-3], three[0])
    with pytest.raises(IndexError, match="out of bounds"):
        three[-4]
    with pytest.raises(IndexError, match="out of bounds"):
        three[3]


def test_skip_keeps_readable_images_of_other_sizes_and_a_corrupt_first_file(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "0_broken.png").write_bytes(b"not an image")
    for i, side in enumerate([6, 7, 8, 9]):
        Image.fromarray(np.zeros((side, side, 3), np.uint8)).save(folder / f"{i + 1}.png")
    with pytest.warns(UserWarning, match="Skipped 1 of the 5 files"):
        X, _ = load_image_folder(folder, size=6, on_error="skip")
    assert X.shape == (4, 6, 6, 3)  # every readable image, resized


def test_an_error_in_a_worker_names_the_file_without_the_workers_traceback(tmp_path,
                                                                           photo_folder):
    X, y = load_image_folder(photo_folder, size=8, lazy=True)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    images = LazyImages([*X.paths[:40], bad], size=8, n_jobs=2)
    with pytest.raises(ValueError) as info:
        images.to_array()
    message = str(info.value)
    assert "bad.png" in message and "Traceback" not in message
    assert "DataLoader worker" not in message
