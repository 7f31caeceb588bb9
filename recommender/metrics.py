"""Ranking metrics of the evaluation contract: NDCG@k, Recall@k, MRR, HitRate@k, catalog coverage."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recommender.columns import Columns


def _hits(recommendations: pd.DataFrame, relevant: pd.DataFrame, k: int) -> pd.DataFrame:
    recs = recommendations[recommendations[Columns.Rank] <= k][[Columns.Participant, Columns.Event, Columns.Rank]]
    rel = relevant[[Columns.Participant, Columns.Event]].drop_duplicates().assign(_hit=True)
    return recs.merge(rel, on=[Columns.Participant, Columns.Event], how="left")


def per_participant(recommendations: pd.DataFrame, relevant: pd.DataFrame, k: int = 10) -> pd.DataFrame:
    """One row per participant with relevant events: ndcg, recall, mrr and hit at k.

    Participants without recommendations score 0: an empty answer is a miss, not a skip.
    """
    n_rel = relevant[[Columns.Participant, Columns.Event]].drop_duplicates().groupby(Columns.Participant).size()
    hits = _hits(recommendations, relevant, k)
    hits = hits[hits["_hit"].fillna(False).astype(bool)]
    gain = 1.0 / np.log2(hits[Columns.Rank].to_numpy(dtype=np.float64) + 1.0)
    dcg = pd.Series(gain, index=hits[Columns.Participant].to_numpy()).groupby(level=0).sum()
    first = hits.groupby(Columns.Participant)[Columns.Rank].min()
    count = hits.groupby(Columns.Participant).size()
    ideal_len = np.minimum(n_rel.to_numpy(), k)
    discounts = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))])
    idcg = pd.Series(discounts[ideal_len], index=n_rel.index)
    out = pd.DataFrame(index=n_rel.index)
    out["ndcg"] = (dcg.reindex(out.index).fillna(0.0) / idcg).to_numpy()
    out["recall"] = (count.reindex(out.index).fillna(0) / n_rel).to_numpy()
    out["mrr"] = (1.0 / first.reindex(out.index)).fillna(0.0).to_numpy()
    out["hit_rate"] = (count.reindex(out.index).fillna(0) > 0).astype(float).to_numpy()
    out.index.name = Columns.Participant
    return out


def summary(recommendations: pd.DataFrame, relevant: pd.DataFrame, k: int = 10,
            catalog_size: int | None = None) -> dict[str, float]:
    """Means over participants with relevant events, plus catalog coverage of the top k."""
    per = per_participant(recommendations, relevant, k)
    result = {f"ndcg@{k}": float(per["ndcg"].mean()) if len(per) else 0.0,
              f"recall@{k}": float(per["recall"].mean()) if len(per) else 0.0,
              "mrr": float(per["mrr"].mean()) if len(per) else 0.0,
              f"hit_rate@{k}": float(per["hit_rate"].mean()) if len(per) else 0.0,
              "participants": float(len(per))}
    if catalog_size:
        shown = recommendations.loc[recommendations[Columns.Rank] <= k, Columns.Event].nunique()
        result["coverage"] = float(shown) / float(catalog_size)
    return result


def ratio_of_means(numerator: np.ndarray, denominator: np.ndarray, *, resamples: int = 1000, seed: int = 0,
                   level: float = 0.95) -> tuple[float, float, float]:
    """mean(numerator) / mean(denominator) for two independent groups of per-participant values (rural and urban
    NDCG), with a percentile bootstrap interval: each group resampled with replacement, `resamples` times, with a
    fixed seed so that the same values give the same interval. NaN when a group is empty or its mean is 0."""
    a = np.asarray(numerator, dtype=np.float64)
    b = np.asarray(denominator, dtype=np.float64)
    if not len(a) or not len(b) or b.mean() == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)

    def resampled_means(values: np.ndarray) -> np.ndarray:
        step = max(1, 2_000_000 // len(values))  # index blocks of at most 2M draws (16 MB)
        return np.concatenate([values[rng.integers(0, len(values), size=(min(step, resamples - i), len(values)))]
                               .mean(axis=1) for i in range(0, resamples, step)])

    means_a, means_b = resampled_means(a), resampled_means(b)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = means_a / means_b
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.nanpercentile(ratios, [tail, 100.0 - tail])
    return float(a.mean() / b.mean()), float(low), float(high)
