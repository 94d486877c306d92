"""Tables as data sets: rows × features, for anomaly detection on transactions, sensors, logs.

Two sources: a table that ships inside an installed package (scikit-learn's Wisconsin
breast-cancer data, malignant tumours as the anomalies: the ODDS "breastw" setting), and the
user's own CSV or Parquet file, optionally with a label column to evaluate against.

Reading (:func:`read_frame`, :func:`table_from_frame`) only parses and checks: numeric and
boolean columns are kept, a text column with few values becomes one-hot columns (with a note),
one with many values (an id, free text) is dropped (with a note); rows with a missing value are
dropped when they are few, else the file is refused; every refusal is a :class:`TableError`
whose message says what to fix. Splitting (:func:`split_table`) puts the normal rows into
train / validation / test and the anomalies into validation / test only (a model learns what
normal looks like), then standardises every split with the mean and standard deviation of the
*training* rows (:class:`Scaler`): no statistic of a validation or test row leaks into the model.

Shapes: a table's ``x`` is (N, F) float64 in the file's units; a split's arrays are (n, F)
float32, standardised; ``core.data.registry.table_dataset`` gives them to the trainer as (n, 1, 1, F).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np

MAX_TABLE_BYTES = 100 * 2**20  # a file (or upload) larger than this is refused unread
MAX_ROWS = 1_000_000
MAX_FEATURES = 1_000  # after one-hot encoding
MIN_ROWS = 20  # after dropping rows with missing values
MAX_CATEGORIES = 20  # a text column with more distinct values is an id or free text: dropped
MAX_MISSING_SHARE = 0.05  # rows with a missing value are dropped up to this share, else refused
LABEL_HINTS = ("label", "class", "is_anomaly", "anomaly", "fraud", "target", "y", "outlier")
SEED = 0
SHARES = {"train": 0.6, "val": 0.15}  # of the normal rows; the rest is test. Anomalies: val 40 %, test 60 %
ANOMALY_VAL_SHARE = 0.4


class TableError(ValueError):
    """A table could not be used; the message names the file, the column and what to fix."""


@dataclass
class Table:
    """A table as read: x (N, F) float64 in the file's units, one column per feature.

    is_anomaly: (N,) bool from the label column, or None (scores only, nothing to evaluate).
    label_names: what a normal and an anomalous row are called (the label's two values).
    rows: (N,) the row number of each row in the file (0 = the first data row), after drops.
    """

    name: str
    features: tuple[str, ...]
    x: np.ndarray
    is_anomaly: np.ndarray | None
    label_names: tuple[str, str]
    rows: np.ndarray
    source_note: str
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        n, f = self.x.shape
        counts = "" if self.is_anomaly is None else f", {int(self.is_anomaly.sum()):,} {self.label_names[1]}"
        return f"{self.name}: {n:,} rows × {f} features{counts}"


# ---------------------------------------------------------------- the offline table


def breast_cancer() -> Table:
    """scikit-learn's bundled Wisconsin diagnostic breast-cancer table: 569 rows × 30 features
    of cell nuclei, 212 malignant (the anomalies) and 357 benign. Always offline."""
    from sklearn.datasets import load_breast_cancer

    d = load_breast_cancer()
    return Table(
        name="breast-cancer",
        features=tuple(str(f) for f in d.feature_names),
        x=np.asarray(d.data, np.float64),
        is_anomaly=d.target == 0,  # scikit-learn's class 0 is "malignant"
        label_names=("benign", "malignant"),
        rows=np.arange(len(d.data)),
        source_note="offline: scikit-learn's bundled Wisconsin breast-cancer table (UCI, 1995)",
    )


TABLES = {"breast-cancer": ("Breast cancer (scikit-learn, offline)", breast_cancer)}


def load_table(name: str) -> Table:
    """A bundled table by name (a key of :data:`TABLES`); TableError naming the choices."""
    if name not in TABLES:
        raise TableError(f"unknown table {name!r}; known: {', '.join(TABLES)}")
    return TABLES[name][1]()


# ---------------------------------------------------------------- users' files


def read_frame(data: bytes, file_name: str):
    """The bytes of a CSV or Parquet file -> a pandas DataFrame. TableError when the file is too
    large, empty, not a table, or has more than :data:`MAX_ROWS` rows."""
    import pandas as pd

    if len(data) > MAX_TABLE_BYTES:
        raise TableError(
            f"{file_name} is {len(data) / 2**20:,.0f} MB; the most Latent Lab reads is {MAX_TABLE_BYTES // 2**20} MB "
            "(take a sample of its rows first)"
        )
    if not data.strip():
        raise TableError(f"{file_name} is empty")
    parquet = data[:4] == b"PAR1" or file_name.lower().endswith((".parquet", ".pq"))
    try:
        if parquet:
            frame = pd.read_parquet(io.BytesIO(data))
        else:
            frame = pd.read_csv(io.BytesIO(data), sep=None, engine="python", nrows=MAX_ROWS + 1)
    except Exception as exc:  # pandas and pyarrow raise many types for a broken file
        what = "Parquet" if parquet else "CSV"
        raise TableError(f"{file_name} is not a readable {what} file ({type(exc).__name__}: {exc})") from exc
    if len(frame) > MAX_ROWS:
        raise TableError(f"{file_name} has more than {MAX_ROWS:,} rows; take a sample of them first")
    if frame.shape[1] == 0 or len(frame) == 0:
        raise TableError(f"{file_name} has no rows or no columns")
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def guess_label(columns: list[str]) -> str | None:
    """The column whose name says it is the label ("label", "class", "fraud", …), or None."""
    lowered = {c.lower(): c for c in columns}
    return next((lowered[h] for h in LABEL_HINTS if h in lowered), None)


def table_from_frame(frame, name: str, label: str | None = None) -> Table:
    """A DataFrame -> a :class:`Table`: features encoded, rows with missing values dropped, and
    ``label`` (a column name, or None) turned into ``is_anomaly``. TableError says what to fix."""
    notes: list[str] = []
    if label is not None and label not in frame.columns:
        raise TableError(f"{name} has no column {label!r}")
    is_anomaly, label_names, keep = _label(frame, label, name, notes)
    features = frame.drop(columns=[label]) if label is not None else frame
    encoded = _encode(features, name, notes)
    missing = encoded.isna().any(axis=1).to_numpy() | ~keep
    if missing.any():
        share = missing.mean()
        columns = [c for c in encoded.columns if encoded[c].isna().any()]
        if share > MAX_MISSING_SHARE:
            raise TableError(
                f"{name}: {int(missing.sum()):,} of {len(frame):,} rows ({share:.0%}) have a missing value "
                f"(in {_names(columns or [label])}); fill or drop them first"
            )
        notes.append(f"{int(missing.sum()):,} rows with a missing value were left out ({_names(columns or [label])})")
    rows = np.flatnonzero(~missing)
    if len(rows) < MIN_ROWS:
        raise TableError(f"{name} has {len(rows)} usable rows; at least {MIN_ROWS} are needed")
    x = encoded.to_numpy(np.float64)[rows]
    if not np.isfinite(x).all():
        bad = [c for c in encoded.columns if not np.isfinite(encoded[c]).all()]
        raise TableError(f"{name} has infinite values (in {_names(bad)})")
    return Table(
        name=name,
        features=tuple(str(c) for c in encoded.columns),
        x=x,
        is_anomaly=None if is_anomaly is None else is_anomaly[rows],
        label_names=label_names,
        rows=rows,
        source_note=f"your table {name}",
        notes=notes,
    )


def _names(columns: list[str], most: int = 3) -> str:
    shown = ", ".join(repr(c) for c in columns[:most])
    return shown + (f" and {len(columns) - most} more" if len(columns) > most else "")


def _label(
    frame, label: str | None, name: str, notes: list[str]
) -> tuple[np.ndarray | None, tuple[str, str], np.ndarray]:
    """The label column -> (is_anomaly (N,) or None, (normal name, anomalous name), rows with a label).

    Two values: 1 / True / "yes" / "anomaly" is the anomaly where the values say so, else the rarer value."""
    keep = np.ones(len(frame), bool)
    if label is None:
        return None, ("normal", "anomalous"), keep
    col = frame[label]
    keep = col.notna().to_numpy()
    values = sorted(col[keep].unique().tolist(), key=str)
    if len(values) != 2:
        raise TableError(
            f"the label column {label!r} of {name} has {len(values)} distinct value{'s' * (len(values) != 1)}; "
            "it needs two (normal and anomalous, e.g. 0 and 1). Pick another column, or none to see scores only"
        )
    flagged = [v for v in values if str(v).strip().lower() in ("1", "true", "yes", "anomaly", "anomalous", "fraud")]
    if len(flagged) == 1:
        anomalous = flagged[0]
    else:
        counts = col[keep].value_counts()
        anomalous = counts.idxmin()
        notes.append(f"the rarer label value, {anomalous!r}, is taken as the anomaly")
    normal = next(v for v in values if v != anomalous)
    return (col == anomalous).to_numpy(), (_value_name(label, normal), _value_name(label, anomalous)), keep


def _value_name(label: str, value) -> str:
    """A label value as a reader names it: "fraud=1" for a number or a bool, the word itself otherwise."""
    return f"{label}={value}" if isinstance(value, int | float | bool | np.number | np.bool_) else str(value)


def _encode(features, name: str, notes: list[str]):
    """Numeric and boolean columns as they are; text columns with few values one-hot; the rest dropped."""
    import pandas as pd

    kept, one_hot, dropped = [], [], []
    for c in features.columns:
        col = features[c]
        if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
            kept.append(col.astype(np.float64))
        elif col.nunique(dropna=True) <= MAX_CATEGORIES:
            dummies = pd.get_dummies(col, prefix=c, prefix_sep="=", dtype=np.float64)
            dummies[col.isna().to_numpy()] = np.nan
            kept.append(dummies)
            one_hot.append(c)
        else:
            dropped.append(c)
    if one_hot:
        notes.append(f"text column{'s' * (len(one_hot) > 1)} {_names(one_hot)} became one column per value (one-hot)")
    if dropped:
        notes.append(
            f"text column{'s' * (len(dropped) > 1)} {_names(dropped)} with more than {MAX_CATEGORIES} values "
            "(an id or free text) left out"
        )
    if not kept:
        raise TableError(f"{name} has no numeric columns (and no text column with few values) to learn from")
    encoded = pd.concat(kept, axis=1)
    if encoded.shape[1] > MAX_FEATURES:
        raise TableError(f"{name} has {encoded.shape[1]:,} features after encoding; at most {MAX_FEATURES:,} are used")
    return encoded


# ---------------------------------------------------------------- splits and standardisation


@dataclass(frozen=True)
class Scaler:
    """Standardisation fitted on training rows: (x - mean) / std per feature (F,); a feature that
    is constant on the training rows keeps std 1 (it is centred, never divided by zero)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> Scaler:
        std = x.std(axis=0)
        return cls(x.mean(axis=0), np.where(std > 1e-12, std, 1.0))

    def apply(self, x: np.ndarray) -> np.ndarray:
        """(n, F) in the file's units -> (n, F) float32 standardised."""
        return ((x - self.mean) / self.std).astype(np.float32)

    def invert(self, z: np.ndarray) -> np.ndarray:
        """(n, F) standardised -> (n, F) in the file's units."""
        return np.asarray(z, np.float64) * self.std + self.mean


@dataclass
class TableSplit:
    """A table split for anomaly detection, standardised with the training rows' :class:`Scaler`.

    train_x: (n, F) normal rows to learn from (all rows when the table has no labels).
    val_x / val_anomaly: rows to tune baselines on (None without labels).
    test_x / test_anomaly: rows to score (every row, anomaly None, without labels).
    test_rows: (n,) the file's row number of each test row.
    """

    name: str
    features: tuple[str, ...]
    scaler: Scaler
    train_x: np.ndarray
    test_x: np.ndarray
    test_rows: np.ndarray
    val_x: np.ndarray | None = None
    val_anomaly: np.ndarray | None = None
    test_anomaly: np.ndarray | None = None
    label_names: tuple[str, str] = ("normal", "anomalous")
    description: str = ""

    @property
    def labelled(self) -> bool:
        return self.test_anomaly is not None


def split_table(table: Table, seed: int = SEED) -> TableSplit:
    """Normal rows: 60 % train, 15 % validation, 25 % test; anomalies: 40 % validation, 60 % test
    (a fixed shuffle with ``seed``). Without labels every row trains and every row is scored.
    The scaler is fitted on the training rows only."""
    rng = np.random.default_rng(seed)
    if table.is_anomaly is None:
        scaler = Scaler.fit(table.x)
        return TableSplit(
            table.name, table.features, scaler, scaler.apply(table.x), scaler.apply(table.x), table.rows,
            description=f"{len(table.x):,} rows, no labels: trained on every row, every row scored",
        )  # fmt: skip
    normal, anomalous = (
        rng.permutation(np.flatnonzero(~table.is_anomaly)),
        rng.permutation(np.flatnonzero(table.is_anomaly)),
    )
    if len(normal) < MIN_ROWS // 2 or len(anomalous) < 2:
        raise TableError(
            f"{table.name} has {len(normal)} {table.label_names[0]} and {len(anomalous)} {table.label_names[1]} rows; "
            f"at least {MIN_ROWS // 2} and 2 are needed to train, tune and test"
        )
    n_train, n_val = int(len(normal) * SHARES["train"]), int(len(normal) * SHARES["val"])
    a_val = max(1, int(len(anomalous) * ANOMALY_VAL_SHARE))
    train = normal[:n_train]
    val = np.concatenate([normal[n_train : n_train + n_val], anomalous[:a_val]])
    test = np.concatenate([normal[n_train + n_val :], anomalous[a_val:]])
    scaler = Scaler.fit(table.x[train])
    n, a = table.label_names
    return TableSplit(
        name=table.name,
        features=table.features,
        scaler=scaler,
        train_x=scaler.apply(table.x[train]),
        test_x=scaler.apply(table.x[test]),
        test_rows=table.rows[test],
        val_x=scaler.apply(table.x[val]),
        val_anomaly=table.is_anomaly[val],
        test_anomaly=table.is_anomaly[test],
        label_names=table.label_names,
        description=(
            f"{len(train):,} {n} rows to train on; validation {n_val:,} {n} + {a_val:,} {a}; "
            f"test {len(test) - (len(anomalous) - a_val):,} {n} + {len(anomalous) - a_val:,} {a}"
        ),
    )
