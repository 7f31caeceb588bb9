"""Benchmark: the competence rating's replay vs Elo-MMR, Codeforces, Glicko (elo-mmr-py) on contest data.

Pair inversion and rank deviation (Elo-MMR paper, sec. 6.2) of pre-contest ratings, over contestants
with at least 5 contests, on contests from --start on (and per period), plus wall-clock times of
every replay. Needs the `bench` extra (`pip install -e .[bench]`).

    .venv/bin/python experiments/benchmarks/bench_ratings.py ../shared/datasets/codeforces-2010-2013
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from features.competence.estimator import CompetenceRatings, RatingConfig
from features.competence.evaluation import pair_inversion
from recommender.columns import Columns
from recommender.graph import AchievementsGraph

PeerSystem = Literal["mmr-fast", "mmr", "cfsys", "glicko"]
PEERS: tuple[PeerSystem, ...] = ("mmr-fast", "mmr", "cfsys", "glicko")
PEER_NAMES = {"mmr-fast": "Elo-MMR (fast)", "mmr": "Elo-MMR", "cfsys": "Codeforces system", "glicko": "Glicko"}


def contest_frame(graph: AchievementsGraph) -> pd.DataFrame:
    """One row per contestant and contest, in achievement order, with the event's day."""
    a = graph.achievements
    return pd.DataFrame({
        Columns.Participant: a[Columns.Participant].astype(str).to_numpy(),
        Columns.Event: a[Columns.Event].astype(str).to_numpy(),
        Columns.Date: pd.to_datetime(a[Columns.Date]).to_numpy(),
        Columns.Rank: a[Columns.Rank].astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan),
    })


def peer_ratings(frame: pd.DataFrame, systems: tuple[PeerSystem, ...]
                 ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Pre-contest ratings of every row by each elo-mmr-py system (default settings), and their times."""
    from elo_mmr_py import Contest, rate

    t0 = time.perf_counter()
    first_day = frame.groupby(Columns.Event, sort=False)[Columns.Date].min().sort_values(kind="stable")
    contests = []
    for event_id in first_day.index:
        rows = frame[frame[Columns.Event] == event_id].sort_values(Columns.Rank, kind="stable")
        ranks = rows[Columns.Rank].to_numpy(np.int64)
        tie = rows.groupby(Columns.Rank)[Columns.Rank].transform("size").to_numpy(np.int64)
        contests.append(Contest(
            standings=[(p, int(r) - 1, int(r) + int(t) - 2) for p, r, t in zip(rows[Columns.Participant], ranks, tie,
                                                                               strict=True)],
            name=str(event_id), time_seconds=int(pd.Timestamp(first_day[event_id]).timestamp()),
        ))
    build = time.perf_counter() - t0
    position = {e: i for i, e in enumerate(first_day.index)}
    contest_pos = frame[Columns.Event].map(position).to_numpy(np.int64)
    key = pd.MultiIndex.from_arrays([frame[Columns.Participant], contest_pos])
    ratings: dict[str, np.ndarray] = {}
    times = {"build contests": build}
    for system in systems:
        t0 = time.perf_counter()
        players = rate(contests, system=system)
        times[system] = time.perf_counter() - t0
        names, idx, pre = [], [], []
        for name, player in players.items():
            previous = 1500.0
            for ev in player.events:
                names.append(name)
                idx.append(ev.contest_index)
                pre.append(previous)
                previous = float(ev.rating_mu)
        table = pd.Series(pre, index=pd.MultiIndex.from_arrays([names, idx]))
        ratings[system] = table.reindex(key).to_numpy(np.float64)
    return ratings, times


def mean_past_percentile(frame: pd.DataFrame) -> np.ndarray:
    """Each row's mean percentile (1 = first) over the contestant's earlier contests; 0.5 with none."""
    size = frame.groupby(Columns.Event)[Columns.Rank].transform("size").to_numpy(np.float64)
    midrank = frame.groupby(Columns.Event)[Columns.Rank].rank(method="average").to_numpy(np.float64)
    pct = 1.0 - (midrank - 1.0) / np.maximum(size - 1.0, 1.0)
    order = np.lexsort((frame[Columns.Event].to_numpy(), frame[Columns.Date].to_numpy()))
    f = pd.DataFrame({"p": frame[Columns.Participant].to_numpy()[order], "pct": pct[order]})
    cum = f.groupby("p")["pct"].cumsum() - f["pct"]
    cnt = f.groupby("p").cumcount()
    out = np.empty(len(frame))
    out[order] = np.where(cnt > 0, cum / np.maximum(cnt, 1), 0.5)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("aif_dir", type=Path)
    parser.add_argument("--start", default="2010-08-01", help="evaluate contests from this date on")
    parser.add_argument("--periods", default="2010-08-01,2013-01-01", help="period boundaries reported apart")
    parser.add_argument("--peers", default=",".join(PEERS), help="elo-mmr-py systems to compare ('' for none)")
    parser.add_argument("--config", default="{}", help="RatingConfig overrides as JSON")
    args = parser.parse_args()

    t0 = time.perf_counter()
    graph = AchievementsGraph.from_aif(args.aif_dir)
    read_s = time.perf_counter() - t0
    frame = contest_frame(graph)
    t0 = time.perf_counter()
    replay = CompetenceRatings(RatingConfig(**json.loads(args.config))).replay(graph)
    ours_s = time.perf_counter() - t0
    unknown = [s for s in args.peers.split(",") if s and s not in PEERS]
    if unknown:
        parser.error(f"unknown peers: {', '.join(unknown)} (choose from {', '.join(PEERS)})")
    systems = tuple(s for s in PEERS if s in args.peers.split(","))
    ratings, times = peer_ratings(frame, systems)
    ratings = {"product (competence rating)": replay["skill"].to_numpy(), **{PEER_NAMES[s]: r for s, r in
                                                                            ratings.items()}}
    ratings["mean past percentile"] = mean_past_percentile(frame)
    times_named = {"product (competence rating)": ours_s, **{PEER_NAMES[s]: t for s, t in times.items() if s in
                                                            PEER_NAMES}}

    bounds = [b for b in args.periods.split(",") if b]
    windows = [(args.start, None, f"from {args.start}")]
    for lo, hi in zip(bounds, [*bounds[1:], None], strict=True):
        windows.append((lo, hi, f"{lo} .. {hi or 'end'}"))
    rows = []
    for name, values in ratings.items():
        f = frame.assign(rating=values)
        row: dict[str, object] = {"system": name}
        for lo, hi, label in windows:
            m = pair_inversion(f, lo, hi)
            row[f"pair_inv {label}"] = round(100 * m["pair_inversion"], 2)
            row[f"rank_dev {label}"] = round(100 * m["rank_deviation"], 2)
        row["replay_s"] = round(times_named[name], 2) if name in times_named else None
        rows.append(row)
    table = pd.DataFrame(rows)
    print(f"data: {args.aif_dir}  achievements: {len(frame)}  contests: {frame[Columns.Event].nunique()}  "
          f"read AIF: {read_s:.2f}s  build elo-mmr-py contests: {times.get('build contests', 0.0):.2f}s")
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(table.to_string(index=False))
    if "mmr-fast" in times:
        print(f"product replay / mmr-fast time: {ours_s / times['mmr-fast']:.2f} (must be <= 2)")


if __name__ == "__main__":
    main()
