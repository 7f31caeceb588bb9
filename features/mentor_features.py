"""Mentor and team-context features from the achievements graph: competences, reach, load, track record."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import ndtri

from recommender.aif.parsing import parse_weighted
from recommender.columns import Columns
from recommender.graph import AchievementsGraph, online_flags, to_timestamp


def _bool_column(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    values = frame[name].astype("string").str.lower().isin(["true", "1"])
    return values.fillna(False).to_numpy(dtype=bool)


def mentor_competences(graph: AchievementsGraph) -> np.ndarray:
    """Mentors x competences: the mentor's declared competence weights, rows normalized to sum 1."""
    comp_pos = {c: i for i, c in enumerate(graph.competence_index)}
    out = np.zeros((len(graph.mentors), len(comp_pos)), dtype=np.float64)
    if "competences" not in graph.mentors.columns:
        return out
    for i, text in enumerate(graph.mentors["competences"].astype("string").fillna("")):
        for cid, w in parse_weighted(str(text)):
            j = comp_pos.get(cid)
            if j is not None:
                out[i, j] += w
    total = out.sum(axis=1, keepdims=True)
    return np.divide(out, total, out=np.zeros_like(out), where=total > 0)


def event_competences(graph: AchievementsGraph) -> np.ndarray:
    """Events x competences, rows normalized to sum 1 (dense)."""
    ec = np.asarray(graph.event_competence().toarray(), dtype=np.float64)
    total = ec.sum(axis=1, keepdims=True)
    return np.divide(ec, total, out=np.zeros_like(ec), where=total > 0)


def mentor_table(graph: AchievementsGraph) -> pd.DataFrame:
    """One row per mentor: region, online, capacity (unknown: 1), tech leader, organization type."""
    m = graph.mentors
    cap = pd.to_numeric(m["capacity"], errors="coerce") if "capacity" in m.columns else pd.Series(np.nan, index=m.index)
    region = m[Columns.Region].astype("string") if Columns.Region in m.columns else pd.Series(pd.NA, index=m.index)
    org = (m["organization_type"].astype("string").fillna("other") if "organization_type" in m.columns
           else pd.Series("other", index=m.index, dtype="string"))
    return pd.DataFrame({
        Columns.Mentor: m[Columns.Mentor].astype(str).to_numpy(),
        "region_code": region.to_numpy(),
        "online": _bool_column(m, "online"),
        "capacity": cap.fillna(1).clip(lower=0).astype(np.int64).to_numpy(),
        "tech_leader": _bool_column(m, "tech_leader"),
        "organization_type": org.to_numpy(),
    })


def team_table(graph: AchievementsGraph) -> pd.DataFrame:
    """One row per team: event position, mentor, member count, region (the event's, else members' most
    common), whether most members live in rural areas, and event dates."""
    teams = graph.teams
    ev_pos = graph.event_index.get_indexer(teams[Columns.Event].astype(str))
    a = graph.achievements[graph.achievements["team_idx"] >= 0][["participant_idx", "team_idx"]].drop_duplicates()
    parts = graph.participants
    settlement = (parts["settlement_type"].astype("string") if "settlement_type" in parts.columns
                  else pd.Series(pd.NA, index=parts.index, dtype="string"))
    p_region = (parts[Columns.Region].astype("string") if Columns.Region in parts.columns
                else pd.Series(pd.NA, index=parts.index, dtype="string"))
    members = pd.DataFrame({
        "team_idx": a["team_idx"].to_numpy(),
        # Unknown settlement type (NA) is not rural; comparing NA element-wise would raise.
        "rural": (settlement == "rural").fillna(False).to_numpy(dtype=bool)[a["participant_idx"].to_numpy()],
        "region": p_region.to_numpy()[a["participant_idx"].to_numpy()],
    })
    members["rural"] = members["rural"].fillna(False).astype(bool)
    size = np.bincount(members["team_idx"], minlength=len(teams))
    rural_share = np.bincount(members["team_idx"], weights=members["rural"].astype(float), minlength=len(teams))
    rural_share = np.divide(rural_share, size, out=np.zeros(len(teams)), where=size > 0)
    # Members' most common region per team (ties: the region seen first), without a Python call per team.
    known = members.dropna(subset=["region"]).reset_index(drop=True)
    votes = (known.assign(seen=np.arange(len(known))).groupby(["team_idx", "region"], sort=False)
             .agg(n=("seen", "size"), first=("seen", "min")).reset_index()
             .sort_values(["team_idx", "n", "first"], ascending=[True, False, True], kind="stable")
             .drop_duplicates("team_idx"))
    common = pd.Series(votes["region"].to_numpy(), index=votes["team_idx"].to_numpy())
    member_region = pd.Series(pd.NA, index=range(len(teams)), dtype="string")
    member_region.loc[common.index] = common.to_numpy()
    ev = graph.events
    online = online_flags(ev)
    valid = ev_pos >= 0
    ev_region = pd.Series(pd.NA, index=range(len(teams)), dtype="string")
    safe = np.maximum(ev_pos, 0)
    if Columns.Region in ev.columns:
        ev_region[:] = np.where(valid & ~online[safe], ev[Columns.Region].astype("string").to_numpy()[safe], pd.NA)
    region = ev_region.fillna(member_region)
    mentor = (teams[Columns.Mentor].astype("string") if Columns.Mentor in teams.columns
              else pd.Series(pd.NA, index=teams.index, dtype="string"))
    start = pd.to_datetime(ev[Columns.StartDate]).to_numpy()[safe]
    end = (pd.to_datetime(ev[Columns.EndDate]).fillna(pd.to_datetime(ev[Columns.StartDate])).to_numpy()[safe]
           if Columns.EndDate in ev.columns else start)
    return pd.DataFrame({
        Columns.Team: teams[Columns.Team].astype(str).to_numpy(),
        Columns.Event: teams[Columns.Event].astype(str).to_numpy(),
        "event_idx": ev_pos,
        Columns.Mentor: mentor.to_numpy(),
        "size": size,
        "rural": rural_share > 0.5,
        "region_code": region.to_numpy(),
        "start_date": start,
        "end_date": end,
    })


def reach_matrix(team_regions: np.ndarray, mentors: pd.DataFrame) -> np.ndarray:
    """Teams x mentors: True where the mentor can work with the team (online, or the same region)."""
    m_region = mentors["region_code"].astype("string").fillna("").to_numpy(dtype=object)
    t_region = pd.Series(team_regions, dtype="string").fillna("\x00").to_numpy(dtype=object)
    same = t_region[:, None] == m_region[None, :]
    return same | mentors["online"].to_numpy(dtype=bool)[None, :]


def mentor_load(teams: pd.DataFrame, mentors: pd.DataFrame, as_of: object) -> np.ndarray:
    """Teams each mentor already mentors at events not yet ended on `as_of` (these use up capacity)."""
    cut = to_timestamp(as_of)
    active = teams[Columns.Mentor].notna() & (pd.to_datetime(teams["end_date"]) >= cut)
    pos = pd.Index(mentors[Columns.Mentor]).get_indexer(teams.loc[active, Columns.Mentor].astype(str))
    return np.bincount(pos[pos >= 0], minlength=len(mentors)).astype(np.int64)


def team_percentiles(graph: AchievementsGraph) -> pd.DataFrame:
    """team_idx, event_idx, the team's result percentile among the teams of its event (1 = first) and its
    normal score (the standard-normal quantile of its mid-rank: differences of performance, not of places)."""
    a = graph.achievements
    a = a[(a["team_idx"] >= 0) & a[Columns.Rank].notna()] if Columns.Rank in a.columns else a.iloc[0:0]
    if not len(a):
        return pd.DataFrame({"team_idx": pd.Series(dtype=np.int64), "event_idx": pd.Series(dtype=np.int64),
                             "percentile": pd.Series(dtype=np.float64), "normal_score": pd.Series(dtype=np.float64)})
    t = a.groupby("team_idx").agg(event_idx=("event_idx", "first"), rank=(Columns.Rank, "min")).reset_index()
    t["rank"] = pd.to_numeric(t["rank"]).astype(float)
    t["order"] = t.groupby("event_idx")["rank"].rank(method="average")
    n = t.groupby("event_idx")["rank"].transform("size").astype(float)
    t["percentile"] = np.where(n > 1, 1.0 - (t["order"] - 1.0) / np.maximum(n - 1.0, 1.0), 0.5)
    t["normal_score"] = ndtri((n - t["order"] + 0.5) / n)
    return t[["team_idx", "event_idx", "percentile", "normal_score"]]


def mentor_event_fit(graph: AchievementsGraph, mentor_positions: np.ndarray, event_positions: np.ndarray) -> np.ndarray:
    """Overlap of each mentor's competences with the event's (0 = none, 1 = the same single competence)."""
    mentors = mentor_competences(graph)[np.asarray(mentor_positions, dtype=np.int64)]
    events = event_competences(graph)[np.asarray(event_positions, dtype=np.int64)]
    return np.asarray((mentors * events).sum(axis=1), dtype=np.float64)


def mentor_track_record(
    graph: AchievementsGraph,
    *,
    shrinkage: float = 5.0,
    expected: pd.Series | None = None,
    fit_base: float = 0.5,
) -> pd.DataFrame:
    """Per mentor: teams mentored with a known result, how much better they did than comparable teams without
    a mentor, and the mentor's estimated effect.

    A mentored team's residual is its result's normal score minus what was expected of it without a mentor:
    `expected` (per team_idx, on its event's normal-score scale, e.g. from a team-success model over the
    members' skills) or else the mean of the event's unmentored teams. The effect of mentor j is the
    residual per unit of ``fit_base + fit(mentor, event)`` (a mentor helps more where their competences
    match), estimated by least squares and shrunk toward the average mentor of the same kind (technology
    leaders from industry or not) by `shrinkage` pseudo-teams. Columns: mentor_id, mentored_teams, uplift
    (mean residual of the mentor's teams), effect and kind_effect (the average mentor of the kind); both NaN
    when no mentored team has a known result.
    """
    pct = team_percentiles(graph)
    mentors = graph.mentors[Columns.Mentor].astype(str)
    out = pd.DataFrame({Columns.Mentor: mentors.to_numpy(), "mentored_teams": 0, "uplift": 0.0, "effect": np.nan,
                        "kind_effect": np.nan})
    if not len(pct) or Columns.Mentor not in graph.teams.columns:
        return out
    mentor_of_team = graph.teams[Columns.Mentor].astype("string").to_numpy()[pct["team_idx"].to_numpy(np.int64)]
    pct = pct.assign(mentor=mentor_of_team)
    has = pct["mentor"].notna().to_numpy()
    base = pct["team_idx"].map(expected).to_numpy(np.float64) if expected is not None else np.full(len(pct), np.nan)
    free_mean = pct[~has].groupby("event_idx")["normal_score"].mean()
    all_mean = pct.groupby("event_idx")["normal_score"].mean()
    fallback = pct["event_idx"].map(free_mean).fillna(pct["event_idx"].map(all_mean)).to_numpy(np.float64)
    residual = pct["normal_score"].to_numpy(np.float64) - np.where(np.isfinite(base), base, fallback)
    m_pos = pd.Index(mentors).get_indexer(pd.Index(pct["mentor"].to_numpy()[has], dtype=object).astype(str))
    known = m_pos >= 0
    m_pos, r = m_pos[known], residual[has][known]
    if not len(m_pos):
        return out
    n_m = len(mentors)
    x = fit_base + mentor_event_fit(graph, m_pos, pct["event_idx"].to_numpy(np.int64)[has][known])
    count = np.bincount(m_pos, minlength=n_m)
    tech = mentor_table(graph)["tech_leader"].to_numpy(bool)
    # The average mentor of each kind (least squares of residual on x over the kind's teams).
    sxx = np.bincount(m_pos, weights=x * x, minlength=n_m)
    sxr = np.bincount(m_pos, weights=x * r, minlength=n_m)
    overall = float(sxr.sum() / sxx.sum()) if sxx.sum() > 0 else float(r.mean())
    kind_sxx = np.array([sxx[tech == k].sum() for k in (False, True)])
    kind_sxr = np.array([sxr[tech == k].sum() for k in (False, True)])
    kind_mean = np.where(kind_sxx > 0, kind_sxr / np.maximum(kind_sxx, 1e-12), overall)
    prior = kind_mean[tech.astype(np.int64)]
    denominator = sxx + shrinkage
    effect = prior + np.divide(sxr - prior * sxx, denominator, out=np.zeros(n_m), where=denominator > 0)
    out["mentored_teams"] = count
    out["uplift"] = np.bincount(m_pos, weights=r, minlength=n_m) / np.maximum(count, 1)
    out["effect"] = effect
    out["kind_effect"] = prior
    return out
    mentor_of_team = graph.teams[Columns.Mentor].astype("string").to_numpy()[pct["team_idx"].to_numpy(np.int64)]
    pct = pct.assign(mentor=mentor_of_team)
    has = pct["mentor"].notna()
    base_free = pct[~has].groupby("event_idx")["percentile"].mean()
    base_all = pct.groupby("event_idx")["percentile"].mean()
    base = pct["event_idx"].map(base_free).fillna(pct["event_idx"].map(base_all))
    pct["residual"] = pct["percentile"] - base
    rec = pct[has].groupby("mentor")["residual"].agg(["sum", "size"])
    pos = pd.Index(mentors).get_indexer(rec.index.astype(str))
    ok = pos >= 0
    out.loc[pos[ok], "mentored_teams"] = rec["size"].to_numpy()[ok]
    out.loc[pos[ok], "uplift"] = (rec["sum"] / (rec["size"] + shrinkage)).to_numpy()[ok]
    return out
