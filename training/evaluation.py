"""Offline evaluation on a global temporal split: fit before the cut, score the next real steps after it."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recommender.columns import Columns
from recommender.eligibility import EventFilters, open_events
from recommender.graph import AchievementsGraph, to_timestamp
from recommender.metrics import per_participant, ratio_of_means, summary
from recommender.models import EventRecommender


@dataclass(frozen=True)
class TemporalSplit:
    cut: pd.Timestamp
    horizon_days: int
    train: AchievementsGraph
    relevant: pd.DataFrame  # participant_id, event_id: the next real steps among events open at the cut
    catalog_size: int

    @property
    def filters(self) -> EventFilters:
        return EventFilters(horizon_days=self.horizon_days)


def temporal_split(graph: AchievementsGraph, cut: str | pd.Timestamp, horizon_days: int) -> TemporalSplit:
    """Rows dated before `cut` train; truth is what participants later did among the events open at the cut.

    The catalog is every event open for registration at the cut that starts within the horizon; a
    participant's next real steps are the catalog events they took part in (an achievement dated
    at the event, so possibly after the horizon for a long course, which still counts).
    """
    when = to_timestamp(cut)
    train = graph.as_of(when)
    catalog = open_events(train, when, EventFilters(horizon_days=horizon_days))
    a = graph.achievements
    later = (a[Columns.Date] >= when).to_numpy()
    in_catalog = np.isin(a["event_idx"].to_numpy(), catalog)
    steps = a.loc[later & in_catalog, [Columns.Participant, Columns.Event]].drop_duplicates()
    return TemporalSplit(when, horizon_days, train, steps.reset_index(drop=True), len(catalog))


def default_cut(graph: AchievementsGraph, horizon_days: int) -> pd.Timestamp:
    """The latest cut that still leaves a full horizon of observed steps."""
    latest = graph.achievements[Columns.Date].max()
    return to_timestamp(latest - pd.Timedelta(days=horizon_days))


def sample_participants(split: TemporalSplit, max_participants: int | None, seed: int) -> pd.Series:
    participants = split.relevant[Columns.Participant].drop_duplicates().sort_values()
    if max_participants is not None and len(participants) > max_participants:
        participants = participants.sample(max_participants, random_state=seed).sort_values()
    return participants.reset_index(drop=True)


def evaluate(
    model: EventRecommender, split: TemporalSplit, k: int = 10, *, max_participants: int | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Fit on the train side of the split and measure ranking quality on its truth."""
    participants = sample_participants(split, max_participants, seed)
    relevant = split.relevant[split.relevant[Columns.Participant].isin(participants)]
    model.fit(split.train)
    recs = model.recommend(participants.tolist(), k, as_of=split.cut, filters=split.filters, graph=split.train)
    return summary(recs, relevant, k, catalog_size=split.catalog_size)


def region_types(graph: AchievementsGraph) -> pd.Series:
    """urban (city, town) or rural per participant id; unknown settlement is left out."""
    p = graph.participants
    if "settlement_type" not in p.columns:
        return pd.Series(dtype="string")
    kind = p["settlement_type"].astype("string").map({"city": "urban", "town": "urban", "rural": "rural"})
    return pd.Series(kind.to_numpy(), index=p[Columns.Participant].astype(str).to_numpy()).dropna()


# Slices of an evaluation by the events in one's history before the cut: (label, fewest, most).
HISTORY_BUCKETS = (("none", 0, 0), ("1-2", 1, 2), ("3-5", 3, 5), ("6+", 6, 10**9))


def history_lengths(graph: AchievementsGraph, participant_ids: pd.Series | None = None) -> np.ndarray:
    """Achievements in the graph (before its cut) per participant: in the graph's order, or of these ids (0 for
    an id the graph does not hold)."""
    taken = np.bincount(graph.achievements["participant_idx"].to_numpy(), minlength=graph.n_participants)
    if participant_ids is None:
        return taken
    by_id = pd.Series(taken, index=graph.participant_index.astype(str))
    return by_id.reindex(participant_ids.astype(str).to_numpy()).fillna(0).to_numpy(np.int64)


def cold_participants(graph: AchievementsGraph) -> pd.Index:
    """Ids of participants with no achievement in the graph (before its cut): the cold-start slice."""
    return graph.participant_index[history_lengths(graph) == 0]


def declared_participants(graph: AchievementsGraph) -> pd.Index:
    """Ids of participants who declared at least one interest."""
    return graph.participant_index[graph.participant_interests().getnnz(axis=1) > 0]


def side_by_side(
    split: TemporalSplit,
    rankers: Mapping[str, Callable[[list[str]], pd.DataFrame]],
    k: int,
    participants: pd.Series,
) -> pd.DataFrame:
    """One row per ranker: metrics on the same participants and split, plus NDCG by region type (with the rural to
    urban ratio and its 95% bootstrap interval, `_low` and `_high`) and for the cold-start slice (no history
    before the cut; `_cold_declared`: of those, the ones who declared interests)."""
    relevant = split.relevant[split.relevant[Columns.Participant].isin(participants)]
    kinds = region_types(split.train)
    cold = cold_participants(split.train)
    slices = {"cold": cold, "cold_declared": cold.intersection(declared_participants(split.train))}
    rows = []
    for name, rank in rankers.items():
        started = time.perf_counter()
        recs = rank(participants.tolist())
        seconds = time.perf_counter() - started
        row: dict[str, float | str] = {"model": name, **summary(recs, relevant, k, catalog_size=split.catalog_size)}
        per = per_participant(recs, relevant, k)
        by_kind = {kind: per.loc[per.index.intersection(kinds.index[kinds == kind]), "ndcg"].to_numpy()
                   for kind in ("urban", "rural")}
        for kind, values in by_kind.items():
            row[f"ndcg@{k}_{kind}"] = float(values.mean()) if len(values) else float("nan")
        # The fairness target is a ratio of two means over few rural participants: its 95% bootstrap interval
        # says whether a distance from a threshold is more than the sample's noise.
        fairness = ratio_of_means(by_kind["rural"], by_kind["urban"])
        for suffix, value in zip(("", "_low", "_high"), fairness, strict=True):
            row[f"ndcg@{k}_rural_vs_urban{suffix}"] = value
        for label, ids in slices.items():
            members = per.index.intersection(ids)
            row[f"ndcg@{k}_{label}"] = float(per.loc[members, "ndcg"].mean()) if len(members) else float("nan")
            row[f"participants_{label}"] = float(len(members))
        row["seconds"] = seconds
        rows.append(row)
    table = pd.DataFrame(rows).set_index("model")
    if "oracle" in table.index:
        table[f"ndcg@{k}_vs_oracle"] = table[f"ndcg@{k}"] / table.loc["oracle", f"ndcg@{k}"]
        table[f"ndcg@{k}_cold_vs_oracle"] = table[f"ndcg@{k}_cold"] / table.loc["oracle", f"ndcg@{k}_cold"]
    return table
