"""The test split by a hash of a row key: reproducible without collecting the data in one place.

A row goes to the test side when a 64-bit hash of its key columns (all columns when no key is
given) falls in the lowest `test_fraction` of the hash range. The decision looks at that row only:
the same rows are held out whatever the file's order, however it is cut into partitions and on
whichever worker each partition is read, so a Dask DataFrame is split partition by partition
(`map_partitions(test_mask)`) with no shuffle. The seed salts the hash (another seed, another split).

Pandas only (pandas' `hash_pandas_object`, stable across processes and machines: it uses no
Python `hash()` and so no PYTHONHASHSEED).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

BUCKETS = 1_000_000  # the fraction's resolution (one in a million)


def salted(hashed: np.ndarray, seed: int) -> np.ndarray:
    """Mix the seed into row hashes (splitmix64's finaliser): pandas' hash_key salts only text
    columns, so a numeric key would otherwise give the same split for every seed."""
    with np.errstate(over="ignore"):
        x = hashed + np.uint64(0x9E3779B97F4A7C15) * np.uint64(int(seed) % 2**63 + 1)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def test_mask(frame: pd.DataFrame, key_columns: list[str] | None, test_fraction: float, seed: int = 0) -> pd.Series:
    """True for the rows of `frame` that belong to the test split (index kept, for Dask)."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1, not {test_fraction}")
    cols = list(key_columns) if key_columns else list(frame.columns)
    hashed = salted(pd.util.hash_pandas_object(frame[cols], index=False).to_numpy(dtype=np.uint64), seed)
    inside = (hashed % np.uint64(BUCKETS)) < np.uint64(round(test_fraction * BUCKETS))
    return pd.Series(inside, index=frame.index, name="is_test")


def describe(key_columns: list[str] | None, test_fraction: float, seed: int) -> str:
    key = ", ".join(key_columns) if key_columns else "every column of the row"
    return (f"hash split: a row is a test row when the hash of {key} (salt {seed}) falls in the lowest "
            f"{test_fraction:.0%} of the hash range; reproducible, no shuffle")
