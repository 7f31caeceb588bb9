"""Competence profiles: skill, uncertainty, grade-peer percentile, level, top achievements and history."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from features.competence.estimator import CompetenceRatings, performance_rows
from recommender.columns import LEVELS, RESULTS, Columns
from recommender.graph import AchievementsGraph

# A result counts toward a competence's level when the competence has at least this share of the event.
LEVEL_SHARE = 0.25
Z90 = 1.6448536269514722


def day_number(when: Any) -> int:
    return int(pd.Timestamp(when).to_datetime64().astype("datetime64[D]").astype(np.int64))


def reached_levels(graph: AchievementsGraph) -> np.ndarray:
    """[participants, competences]: highest event level (0..4) with a result in the competence; -1 = none."""
    perf = performance_rows(graph)
    ec = graph.event_competence().astype(np.float64).tocsr()
    total = np.asarray(ec.sum(axis=1)).ravel()
    level = graph.events["level_rank"].to_numpy(np.int64)
    out = np.full((graph.n_participants, len(graph.competence_index)), -1, dtype=np.int64)
    counts = np.diff(ec.indptr)[perf.event]
    r = np.repeat(np.arange(len(perf.event)), counts)
    within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    nz = np.repeat(ec.indptr[perf.event], counts) + within
    ok = ec.data[nz] / np.maximum(total[perf.event[r]], 1e-12) >= LEVEL_SHARE
    np.maximum.at(out, (perf.participant[r][ok], ec.indices[nz][ok]), level[perf.event[r]][ok])
    return out


def skill_table(model: CompetenceRatings, graph: AchievementsGraph, as_of: Any | None = None) -> pd.DataFrame:
    """One row per (participant, competence) with evidence: skill, sd, 90% interval, grade-peer percentile, level.

    The percentile is among participants of the same grade on `as_of` rated in that competence
    (all rated participants when the grade is unknown).
    """
    day = model.last_day_ if as_of is None else day_number(as_of)
    positions = np.arange(graph.n_participants)
    mu, sd = model.skill(positions, on_day=day)
    ev = model.evidence(positions)
    p, c = np.nonzero(ev > 0)
    when = pd.Timestamp(np.datetime64(day, "D"))
    grade = graph.grades_at(when)[p]
    levels = reached_levels(graph)[p, c]
    frame = pd.DataFrame({
        Columns.Participant: graph.participant_index.to_numpy()[p],
        Columns.Competence: graph.competence_index.to_numpy()[c],
        "skill": mu[p, c], "skill_sd": sd[p, c],
        "skill_low": mu[p, c] - Z90 * sd[p, c], "skill_high": mu[p, c] + Z90 * sd[p, c],
        "evidence": ev[p, c].astype(np.float64), Columns.Grade: grade,
        "level": pd.array(np.array([*LEVELS, None], dtype=object)[levels], dtype="string"),
    })
    peer = frame[Columns.Grade].round().fillna(-1)
    frame["percentile"] = 100.0 * frame.groupby([Columns.Competence, peer])["skill"].rank(pct=True, method="average")
    return frame


def competence_profile(
    model: CompetenceRatings, graph: AchievementsGraph, participant_id: str, *, as_of: Any | None = None,
    top_k: int = 3, table: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """A participant's profile as served by the API: per competence skill, interval, percentile, level,
    the verified achievements that raised it most, and its history (needs a model fitted with history)."""
    table = skill_table(model, graph, as_of) if table is None else table
    pos = int(graph.participant_positions([participant_id])[0])
    if pos < 0:
        raise KeyError(f"unknown participant {participant_id!r}")
    mine = table[table[Columns.Participant] == participant_id].sort_values("skill", ascending=False)
    hist = model.history_
    hist = hist[hist["participant"] == pos]
    a = graph.achievements
    verified = (
        a["verified"].astype("boolean").fillna(True).to_numpy(dtype=bool) if "verified" in a.columns
        else np.ones(len(a), dtype=bool)
    )
    comp_pos = {cid: i for i, cid in enumerate(graph.competence_index)}
    competences = []
    for rec in mine.itertuples(index=False):
        cid = str(getattr(rec, Columns.Competence))
        h = hist[hist["competence"] == comp_pos[cid]]
        rows = h["row"].to_numpy(np.int64)
        good = h[verified[rows] & (h["contribution"].to_numpy() > 0)].nlargest(top_k, "contribution")
        top = [
            {
                Columns.Event: str(a.at[int(r.row), Columns.Event]),
                Columns.Date: pd.Timestamp(a.at[int(r.row), Columns.Date]).date().isoformat(),
                Columns.Result: str(a.at[int(r.row), Columns.Result]),
                "contribution": round(float(r.contribution), 4),
            }
            for r in good.itertuples(index=False)
        ]
        history = [
            {Columns.Date: pd.Timestamp(np.datetime64(int(d), "D")).date().isoformat(), "skill": round(float(s), 4),
             "skill_sd": round(float(v), 4)}
            for d, s, v in zip(h["day"], h["skill"], h["skill_sd"], strict=True)
        ]
        competences.append({
            Columns.Competence: cid,
            "skill": round(float(rec.skill), 4), "skill_sd": round(float(rec.skill_sd), 4),
            "interval_90": [round(float(rec.skill_low), 4), round(float(rec.skill_high), 4)],
            "percentile": round(float(rec.percentile), 1),
            "level": None if pd.isna(rec.level) else str(rec.level),
            "evidence": round(float(rec.evidence), 3),
            "top_achievements": top,
            "history": history,
        })
    return {Columns.Participant: participant_id, "competences": competences}


__all__ = ["RESULTS", "competence_profile", "reached_levels", "skill_table"]
