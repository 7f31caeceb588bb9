"""Prequential rating metrics of Elo-MMR (Ebtekar & Liu, WWW 2021, sec. 6.2): pair inversion, rank deviation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from features.competence.estimator import main_competence, performance_rows
from recommender.columns import Columns
from recommender.graph import AchievementsGraph


def pair_inversion(
    frame: pd.DataFrame,
    start: str | pd.Timestamp | None = None,
    end: str | pd.Timestamp | None = None,
    *,
    min_contests: int = 5,
    rating: str = "rating",
) -> dict[str, float]:
    """Pair inversion (higher is better) and rank deviation (lower is better) of pre-event ratings.

    `frame` has one row per contestant and contest: participant_id, event_id, date, rank (ties share
    the best rank) and the pre-contest `rating`. For each contestant of each contest dated in
    [start, end) who has at least `min_contests` contests in the frame: the share of opponents
    whose result the ratings order correctly (the higher rated wins or ties; equal ratings count
    half), and |rank predicted by ratings - actual rank| / field size (both as mid-ranks); then
    averaged over those (contestant, contest) pairs.
    """
    counts = frame.groupby(Columns.Participant, sort=False)[Columns.Event].transform("nunique")
    eligible = (counts >= min_contests).to_numpy()
    dates = pd.to_datetime(frame[Columns.Date])
    in_window = np.ones(len(frame), dtype=bool)
    if start is not None:
        in_window &= (dates >= pd.Timestamp(start)).to_numpy()
    if end is not None:
        in_window &= (dates < pd.Timestamp(end)).to_numpy()
    events = frame.loc[in_window, Columns.Event].unique()
    sub = frame[frame[Columns.Event].isin(events)]
    correct_sum = deviation_sum = 0.0
    n = 0
    for _, contest in sub.groupby(Columns.Event, sort=False):
        r = contest[rating].to_numpy(np.float64)
        k = contest[Columns.Rank].to_numpy(np.float64)
        size = len(r)
        if size < 2:
            continue
        who = np.flatnonzero(eligible[frame.index.get_indexer(contest.index)])
        if len(who) == 0:
            continue
        ri, ki = r[who, None], k[who, None]
        higher = ri > r[None, :]
        lower = ri < r[None, :]
        equal = ~(higher | lower)
        good = (higher & (ki <= k[None, :])) | (lower & (k[None, :] <= ki))
        share = (good.sum(axis=1) + 0.5 * (equal.sum(axis=1) - 1)) / (size - 1)
        predicted = 1 + lower.sum(axis=1) + 0.5 * (equal.sum(axis=1) - 1)
        k_equal = (ki == k[None, :]).sum(axis=1)
        actual = 1 + (k[None, :] < ki).sum(axis=1) + 0.5 * (k_equal - 1)
        correct_sum += float(share.sum())
        deviation_sum += float((np.abs(predicted - actual) / size).sum())
        n += len(who)
    return {
        "pair_inversion": correct_sum / n if n else float("nan"),
        "rank_deviation": deviation_sum / n if n else float("nan"),
        "n": float(n),
    }


def results_per_competence(graph: AchievementsGraph) -> np.ndarray:
    """[participants, competences]: performance results at events whose main competence is that one."""
    perf = performance_rows(graph)
    main = main_competence(graph)[perf.event]
    ok = main >= 0
    counts = np.zeros((graph.n_participants, len(graph.competence_index)), dtype=np.int64)
    np.add.at(counts, (perf.participant[ok], main[ok]), 1)
    return counts


def points_sum(graph: AchievementsGraph) -> np.ndarray:
    """The "total points" baseline [participants, competences]: result step x (1 + event level), by weight."""
    perf = performance_rows(graph)
    a = graph.achievements
    result = a["result_rank"].to_numpy(np.float64)[perf.row]
    level = graph.events["level_rank"].to_numpy(np.float64)[perf.event]
    ec = graph.event_competence().astype(np.float64).tocsr()
    rows = sp.csr_matrix(
        ((result * (1.0 + level)), (perf.participant, perf.event)), shape=(graph.n_participants, graph.n_events)
    )
    return np.asarray((rows @ ec).todense())


def skill_recovery(
    estimate: np.ndarray, estimate_sd: np.ndarray, truth: np.ndarray, results: np.ndarray, baseline: np.ndarray,
    *, min_results: int = 3, level: float = 0.90,
) -> dict[str, float]:
    """How well estimated skills recover known true skills (synthetic worlds), all [participants, competences].

    Spearman correlation with the truth over (participant, competence) cells with at least
    `min_results` results in the competence, within each competence, averaged weighted by cells;
    the same for the points baseline; and the coverage of the central `level` intervals. Rank data
    fix skills only up to a shift per competence, so coverage is measured after moving each
    competence's estimates by the median gap to the truth.
    """
    from scipy.stats import norm, spearmanr

    z = float(norm.ppf(0.5 + level / 2))
    rho_sum = base_sum = inside = 0.0
    n_total = 0
    for c in range(truth.shape[1]):
        cells = np.flatnonzero(results[:, c] >= min_results)
        if len(cells) < 10:
            continue
        t, e, s, b = truth[cells, c], estimate[cells, c], estimate_sd[cells, c], baseline[cells, c]
        rho_sum += len(cells) * float(spearmanr(e, t).statistic)
        base_sum += len(cells) * float(spearmanr(b, t).statistic)
        shift = float(np.median(t - e))
        inside += float((np.abs(t - (e + shift)) <= z * s).sum())
        n_total += len(cells)
    if n_total == 0:
        return {"spearman": float("nan"), "spearman_points": float("nan"), "coverage": float("nan"), "cells": 0.0}
    return {
        "spearman": rho_sum / n_total,
        "spearman_points": base_sum / n_total,
        "coverage": inside / n_total,
        "cells": float(n_total),
    }
