"""The UCR/UEA archive's .ts files: read without aeon, as aeon reads them."""

import numpy as np
import pytest

from sklearn_cnn.datasets import load_ts_dataset, load_ts_file

HEADER = "#comment\n@problemName t\n@timeStamps false\n@univariate {uni}\n@equalLength {eq}\n"


def _write(tmp_path, text, name="data.ts"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_multivariate_series_of_one_length(tmp_path):
    path = _write(tmp_path, HEADER.format(uni="false", eq="true") + "@dimensions 2\n"
                  "@classLabel true a b\n@data\n1,2,3:4,5,6:a\n\n7,8,9:1,1,1:b\n")
    X, y = load_ts_file(path)
    assert X.shape == (2, 2, 3) and X.dtype == np.float64 and y.tolist() == ["a", "b"]
    np.testing.assert_array_equal(X[1, 0], [7, 8, 9])


def test_unequal_lengths_come_as_a_list_and_regression_targets_as_floats(tmp_path):
    path = _write(tmp_path, HEADER.format(uni="true", eq="false") + "@targetLabel true\n"
                  "@data\n1,2,3:0.5\n4,5:-1.25\n")
    X, y = load_ts_file(path)
    assert [x.shape for x in X] == [(1, 3), (1, 2)] and y.tolist() == [0.5, -1.25]


def test_missing_values_are_nan_and_reported(tmp_path):
    path = _write(tmp_path, HEADER.format(uni="true", eq="true") + "@missing true\n"
                  "@classLabel true 1 2\n@data\n1,?,3:1\n4,5,6:2\n")
    with pytest.warns(UserWarning, match="1 missing values \\('\\?'\\) in 1 of its 2 series"):
        X, _ = load_ts_file(path)
    assert np.isnan(X[0, 0, 1]) and not np.isnan(X[1]).any()


@pytest.mark.parametrize("body, match", [
    ("@classLabel true a b\n@data\n1,2,x:a\n", "'x' is not a number"),
    ("@classLabel true a b\n@data\n1,2:c\n", "labels \\['c'\\] are not among"),
    ("@classLabel true a b\n@data\n1,2:3:a\n", "channels of this case have different"),
    ("@classLabel true a b\n@data\n1,2:a\n1,2:3,4:b\n", "different numbers of channels"),
    ("@classLabel true a b\n", "no @data line"),
    ("@timeStamps true\n@data\n(1,2):a\n", "time stamp, value"),
])
def test_malformed_files_are_explained(tmp_path, body, match):
    with pytest.raises(ValueError, match=match):
        load_ts_file(_write(tmp_path, "@problemName t\n" + body))


def test_the_archive_sets_aeon_ships_read_as_aeon_reads_them():
    aeon_datasets = pytest.importorskip("aeon.datasets")
    for name, split in [("GunPoint", "train"), ("JapaneseVowels", "test"),
                        ("BasicMotions", "train")]:
        X, y = load_ts_dataset(name, split)
        expected, labels = aeon_datasets.load_classification(name, split=split)
        assert len(X) == len(expected)
        for ours, theirs in zip(X, expected):
            np.testing.assert_array_equal(ours, theirs)
        # aeon lower-cases BasicMotions' labels ("Standing" in the file)
        assert [str(v).lower() for v in y] == [str(v).lower() for v in labels]


def test_a_data_set_that_is_not_here_says_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="No Nope_TRAIN.ts in .*timeseriesclassif"):
        load_ts_dataset("Nope", folder=tmp_path)
    with pytest.raises(ValueError, match="split must be"):
        load_ts_dataset("GunPoint", split="valid")
    (tmp_path / "Tiny").mkdir()
    for part in ("TRAIN", "TEST"):
        _write(tmp_path / "Tiny", "@classLabel true a\n@data\n1,2:a\n", f"Tiny_{part}.ts")
    X_train, X_test, y_train, y_test = load_ts_dataset("Tiny", folder=tmp_path)
    assert X_train.shape == X_test.shape == (1, 1, 2) and y_test.tolist() == ["a"]
