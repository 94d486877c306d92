"""Tables as data sets (core.data.tables): the bundled breast-cancer table, the CSV/Parquet reader's
refusals and notes, the split (anomalies never train) and the standardisation (fitted on the
training rows only)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from core.data import tables
from core.data.registry import load_dataset
from core.data.tables import Scaler, TableError, breast_cancer, read_frame, split_table, table_from_frame


def csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def numeric(n: int = 200, f: int = 4, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(n, f)), columns=[f"f{i}" for i in range(f)])


def read(frame: pd.DataFrame, label: str | None = None, name: str = "mine.csv"):
    return table_from_frame(read_frame(csv(frame), name), name, label)


# ---------------------------------------------------------------- the bundled table


def test_the_bundled_table_is_breast_cancer_with_malignant_as_the_anomaly():
    t = breast_cancer()
    assert t.x.shape == (569, 30) and len(t.features) == 30
    assert int(t.is_anomaly.sum()) == 212 and t.label_names == ("benign", "malignant")


def test_a_bundled_table_loads_as_a_dataset_of_normal_training_rows_and_labelled_test_rows():
    ds = load_dataset("table:breast-cancer")
    split = split_table(breast_cancer())
    assert ds.train_x.shape == (len(split.train_x), 1, 1, 30) and not ds.train_y.any()
    assert ds.test_x.shape == (len(split.test_x), 1, 1, 30) and ds.test_y.tolist() == split.test_anomaly.tolist()
    assert ds.class_names == ("benign", "malignant") and ds.features[0] == "mean radius"
    np.testing.assert_allclose(ds.train_x[:, 0, 0], split.train_x)


# ---------------------------------------------------------------- the reader's refusals (each says what to fix)


def test_a_file_over_the_size_limit_is_refused_unread(monkeypatch):
    monkeypatch.setattr(tables, "MAX_TABLE_BYTES", 1000)
    with pytest.raises(TableError, match=r"the most Latent Lab reads is 0 MB \(take a sample"):
        read_frame(b"a,b\n" + b"1,2\n" * 400, "big.csv")


def test_an_empty_file_is_refused():
    with pytest.raises(TableError, match="big.csv is empty"):
        read_frame(b"  \n", "big.csv")


def test_a_broken_parquet_file_is_refused():
    with pytest.raises(TableError, match="not a readable Parquet file"):
        read_frame(b"PAR1 this is not a parquet file PAR1", "x.parquet")


def test_a_file_with_too_many_rows_is_refused(monkeypatch):
    monkeypatch.setattr(tables, "MAX_ROWS", 50)
    with pytest.raises(TableError, match="more than 50 rows"):
        read_frame(csv(numeric(60)), "long.csv")


def test_a_table_without_numeric_columns_is_refused():
    frame = pd.DataFrame({"name": [f"customer {i}" for i in range(100)], "note": [f"n{i}" for i in range(100)]})
    with pytest.raises(TableError, match="no numeric columns"):
        read(frame)


def test_many_missing_values_are_refused_naming_the_column():
    frame = numeric(100)
    frame.loc[:19, "f2"] = np.nan
    with pytest.raises(TableError, match=r"20 of 100 rows \(20%\) have a missing value \(in 'f2'\)"):
        read(frame)


def test_a_few_missing_values_drop_their_rows_with_a_note():
    frame = numeric(100)
    frame.loc[[3, 7], "f1"] = np.nan
    t = read(frame)
    assert len(t.x) == 98 and 3 not in t.rows and 7 not in t.rows
    assert any("2 rows with a missing value were left out ('f1')" in n for n in t.notes)


def test_a_label_column_with_30_classes_is_refused():
    frame = numeric(300)
    frame["kind"] = np.arange(300) % 30
    with pytest.raises(TableError, match="'kind' of mine.csv has 30 distinct values; it needs two"):
        read(frame, "kind")


def test_a_missing_label_column_is_refused():
    with pytest.raises(TableError, match="has no column 'fraud'"):
        read(numeric(), "fraud")


def test_too_few_rows_are_refused():
    with pytest.raises(TableError, match="5 usable rows; at least 20"):
        read(numeric(5))


def test_infinite_values_are_refused():
    frame = numeric(50)
    frame.loc[4, "f3"] = np.inf
    with pytest.raises(TableError, match=r"infinite values \(in 'f3'\)"):
        read(frame)


def test_a_table_with_one_anomaly_cannot_be_split():
    frame = numeric(100)
    frame["label"] = [1] + [0] * 99
    with pytest.raises(TableError, match="at least 10 and 2 are needed"):
        split_table(read(frame, "label"))


# ---------------------------------------------------------------- encoding and labels


def test_text_columns_become_one_hot_or_are_left_out_with_notes():
    frame = numeric(100)
    frame["country"] = ["fr", "de", "uk", "es"] * 25
    frame["id"] = [f"tx-{i}" for i in range(100)]
    t = read(frame)
    assert {"country=de", "country=es", "country=fr", "country=uk"} <= set(t.features) and "id" not in t.features
    assert t.x[:, t.features.index("country=fr")].tolist() == [1.0, 0.0, 0.0, 0.0] * 25
    assert any("one column per value" in n for n in t.notes) and any("'id'" in n and "left out" in n for n in t.notes)


def test_the_label_says_which_value_is_the_anomaly():
    frame = numeric(100)
    frame["fraud"] = ["yes"] * 60 + ["no"] * 40  # "yes" is the anomaly even when it is the common value
    t = read(frame, "fraud")
    assert t.label_names == ("no", "yes") and int(t.is_anomaly.sum()) == 60 and not t.notes
    frame["fraud"] = ["b"] * 90 + ["a"] * 10  # no value says so: the rarer one, with a note
    t = read(frame, "fraud")
    assert t.label_names == ("b", "a") and int(t.is_anomaly.sum()) == 10
    assert any("rarer label value, 'a'" in n for n in t.notes)
    frame["fraud"] = [0] * 30 + [1] * 70  # 1 is the anomaly; numbers are named after their column
    t = read(frame, "fraud")
    assert t.label_names == ("fraud=0", "fraud=1") and int(t.is_anomaly.sum()) == 70


def test_parquet_and_semicolon_csv_read_alike():
    frame = numeric(50)
    buf = io.BytesIO()
    frame.to_parquet(buf)
    a = table_from_frame(read_frame(buf.getvalue(), "t.parquet"), "t", None)
    b = table_from_frame(read_frame(frame.to_csv(index=False, sep=";").encode(), "t.csv"), "t", None)
    np.testing.assert_allclose(a.x, b.x, rtol=1e-12)


# ---------------------------------------------------------------- split and standardisation


def labelled(n_normal: int = 400, n_anomalous: int = 60, shift: float = 0.0) -> tables.Table:
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(5.0, 2.0, (n_normal, 3)), rng.normal(5.0 + shift, 2.0, (n_anomalous, 3))])
    is_anomaly = np.r_[np.zeros(n_normal, bool), np.ones(n_anomalous, bool)]
    return tables.Table("t", ("a", "b", "c"), x, is_anomaly, ("ok", "bad"), np.arange(len(x)), "test")


def test_anomalies_never_train_and_every_row_lands_in_one_split():
    t = labelled()
    s = split_table(t)
    assert len(s.train_x) == 240 and len(s.val_x) == 60 + 24 and len(s.test_x) == 100 + 36
    assert s.val_anomaly.sum() == 24 and s.test_anomaly.sum() == 36
    train_rows = set(range(460)) - set(s.test_rows.tolist())
    assert len(train_rows) == 240 + 84  # test rows are distinct from the rest
    again = split_table(t)
    np.testing.assert_array_equal(again.test_rows, s.test_rows)  # deterministic


def test_the_scaler_is_fitted_on_the_training_rows_only():
    t = labelled()
    s = split_table(t)
    np.testing.assert_allclose(s.train_x.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(s.train_x.std(0), 1, atol=1e-4)
    far = labelled(shift=1000.0)  # the same rows, anomalies moved far away: train statistics unchanged
    s_far = split_table(far)
    np.testing.assert_allclose(s_far.scaler.mean, s.scaler.mean)
    np.testing.assert_allclose(s_far.scaler.std, s.scaler.std)
    assert s_far.test_x[s_far.test_anomaly].mean() > 100  # the anomalies are far out in standard units


def test_a_constant_feature_is_centred_never_divided_by_zero():
    sc = Scaler.fit(np.array([[1.0, 3.0], [2.0, 3.0], [3.0, 3.0]]))
    assert sc.std.tolist()[1] == 1.0
    np.testing.assert_allclose(sc.apply(np.array([[2.0, 4.0]])), [[0.0, 1.0]])
    np.testing.assert_allclose(sc.invert(sc.apply(np.array([[7.0, -2.0]]))), [[7.0, -2.0]], rtol=1e-6)


def test_without_labels_every_row_trains_and_is_scored():
    s = split_table(read(numeric(100)))
    assert len(s.train_x) == len(s.test_x) == 100 and not s.labelled and s.val_x is None
