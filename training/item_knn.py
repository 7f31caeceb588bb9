"""Item-kNN over series co-participation: events are scored by the series their takers also took."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from implicit.nearest_neighbours import bm25_weight
from pydantic import BaseModel, ConfigDict, Field

from features.event_content import borrowed_weights, weighted_history
from features.series import series_competence, series_map
from recommender.graph import AchievementsGraph
from recommender.models import EventRecommender
from training.popularity import PopularityConfig, PopularityRecommender


class ItemKnnConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    weighting: Literal["cosine", "bm25"] = "cosine"
    neighbours: int = Field(100, ge=1, description="neighbour series kept per series")
    shrinkage: float = Field(10.0, ge=0, description="damps similarities supported by few co-participants")
    self_weight: float = Field(1.0, ge=0, description="similarity of a series to itself (the next edition)")
    half_life_days: float = Field(365.0, gt=0, description="recent history counts more")
    bm25_k1: float = Field(1.2, gt=0)
    bm25_b: float = Field(0.75, ge=0, le=1)
    sharpen: float = Field(4.0, gt=0, description="power on competence similarity for never-seen series")
    popularity_tiebreak: float = Field(1e-3, ge=0, description="weight of local popularity (0..1) among equal scores")
    popularity: PopularityConfig = Field(default_factory=PopularityConfig)


def series_similarity(items: sp.csr_matrix, cfg: ItemKnnConfig) -> sp.csr_matrix:
    """Series x series similarity from co-participation, top `neighbours` per row, diagonal `self_weight`."""
    x = sp.csr_matrix(items, dtype=np.float32)
    x.data[:] = 1.0
    if cfg.weighting == "bm25":
        x = sp.csr_matrix(bm25_weight(x, K1=cfg.bm25_k1, B=cfg.bm25_b), dtype=np.float32)
    co = (x.T @ x).tocsr().astype(np.float64)
    norms = np.sqrt(co.diagonal())
    co.setdiag(0.0)
    co.eliminate_zeros()
    co = co.tocoo()
    sim = co.data / (norms[co.row] * norms[co.col] + cfg.shrinkage)
    full = sp.csr_matrix((sim, (co.row, co.col)), shape=co.shape)
    # Keep the strongest neighbours per row (ties broken by column for determinism).
    rows, cols, vals = [], [], []
    for i in range(full.shape[0]):
        lo, hi = full.indptr[i], full.indptr[i + 1]
        if hi == lo:
            continue
        c, v = full.indices[lo:hi], full.data[lo:hi]
        keep = np.lexsort((c, -v))[: cfg.neighbours]
        rows.append(np.full(len(keep), i))
        cols.append(c[keep])
        vals.append(v[keep])
    n = full.shape[0]
    seen = np.flatnonzero(norms > 0)
    rows.append(seen)
    cols.append(seen)
    vals.append(np.full(len(seen), cfg.self_weight))
    out = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    return sp.csr_matrix(out, dtype=np.float32)


class ItemKnnRecommender(EventRecommender):
    """Neighbourhood model: score(event) = sum over the participant's series of their similarity to its series.

    A new edition is scored through its series; an event of a series nobody took yet through the
    similarities of the series whose competences it shares. Participants with no history get
    popularity per region and grade.
    """

    name = "item_knn"

    def __init__(self, config: ItemKnnConfig | None = None) -> None:
        self.config = config or ItemKnnConfig()

    def _fit(self, graph: AchievementsGraph) -> None:
        cfg = self.config
        self.series_ = series_map(graph)
        cutoff = graph.cutoff or graph.achievements["date"].max()
        items = weighted_history(graph, self.series_, pd.Timestamp(cutoff), cfg.half_life_days)
        self.similarity_ = series_similarity(items, cfg)
        self.seen_ = np.asarray((items > 0).sum(axis=0)).ravel() > 0
        self.series_competence_ = series_competence(graph, self.series_)
        self.fallback_ = PopularityRecommender(cfg.popularity).fit(graph)

    def _target_columns(self, graph: AchievementsGraph, events: np.ndarray) -> sp.csr_matrix:
        """[series x events]: how each learned series' similarity reaches each candidate event."""
        s = self.series_.project(graph).of_event[events]
        known = s >= 0
        known[known] &= self.seen_[s[known]]
        n_s = self.series_.n_series
        cols = [sp.csr_matrix((np.ones(int(known.sum()), np.float32), (s[known], np.flatnonzero(known))),
                              shape=(n_s, len(events)))]
        if (~known).any():
            learned = np.flatnonzero(self.seen_)
            weights = borrowed_weights(
                graph.event_competence()[events[~known]], self.series_competence_[learned], self.config.sharpen
            )
            w = sp.coo_matrix(weights)
            cols.append(sp.csr_matrix(
                (w.data, (learned[w.col], np.flatnonzero(~known)[w.row])), shape=(n_s, len(events))
            ))
        return sp.csr_matrix(sum(cols[1:], cols[0]))

    def _score(
        self, graph: AchievementsGraph, participants: np.ndarray, events: np.ndarray, as_of: pd.Timestamp,
        allowed: np.ndarray,
    ) -> np.ndarray:
        cfg = self.config
        history = weighted_history(graph, self.series_.project(graph), as_of, cfg.half_life_days, participants)
        scores = np.asarray((history @ self.similarity_ @ self._target_columns(graph, events)).toarray())
        # Local popularity orders what co-participation cannot tell apart, and is all a newcomer gets.
        popular = self.fallback_._score(graph, participants, events, as_of, allowed)
        top = popular.max(axis=1, keepdims=True)
        popular = popular / np.where(top > 0, top, 1.0)
        cold = np.asarray(history.sum(axis=1)).ravel() == 0
        scores = np.where(cold[:, None], popular, scores + cfg.popularity_tiebreak * popular)
        return scores
