"""The hash split: the same test rows whatever the order and partitioning of the data, computed
partition by partition on a real Dask DataFrame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dsagent.tools.hash_split import test_mask as hash_test_mask


def frame(n: int = 4000) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"id": np.arange(n) * 7 + 3, "x": rng.normal(size=n), "city": rng.choice(["a", "b", "c"], n)})


def held_ids(df: pd.DataFrame, key, seed: int = 0) -> set[int]:
    return set(df.loc[hash_test_mask(df, key, 0.2, seed).to_numpy(), "id"])


@pytest.mark.parametrize("key", [["id"], None])
def test_a_row_is_held_out_by_its_key_alone(key):
    df = frame()
    held = held_ids(df, key)
    assert abs(len(held) / len(df) - 0.2) < 0.03
    # another order, another slice of the same rows: the same rows are test rows
    shuffled = df.sample(frac=1.0, random_state=1).reset_index(drop=True)
    assert held_ids(shuffled, key) == held
    assert held_ids(df.iloc[1000:2500], key) == held & set(df["id"].iloc[1000:2500])
    # the seed salts the hash: another seed, another split
    assert held_ids(df, key, seed=1) != held


def test_dask_partitions_split_alike_without_a_shuffle():
    dd = pytest.importorskip("dask.dataframe")
    df = frame()
    held = held_ids(df, ["id"])
    for parts in (1, 3, 7):
        ddf = dd.from_pandas(df, npartitions=parts)
        mask = ddf.map_partitions(hash_test_mask, ["id"], 0.2, 0, meta=("is_test", bool))
        assert set(ddf[mask]["id"].compute()) == held
        assert set(ddf[~mask]["id"].compute()) == set(df["id"]) - held
