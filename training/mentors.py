"""Mentor matching and batch mentor assignment under capacities and reach (a min-cost b-matching LP)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field
from scipy.optimize import linprog

from features.mentor_features import (
    event_competences,
    mentor_competences,
    mentor_load,
    mentor_table,
    mentor_track_record,
    reach_matrix,
    team_table,
)
from recommender.columns import Columns
from recommender.graph import AchievementsGraph, to_timestamp


class MentorConfig(BaseModel):
    """Hyperparameters of the mentor model and the assignment (defined once; flattened to MLflow params)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prior_effect: float = Field(0.5, gt=0, description="effect of a mentor with no track record")
    record_weight: float = Field(2.0, ge=0, description="effect per unit of result-percentile uplift")
    tech_leader_bonus: float = Field(0.1, ge=0, description="added effect of a technology leader from industry")
    fit_base: float = Field(0.5, ge=0, description="effect multiplier of a mentor whose competences miss the event")
    shrinkage: float = Field(3.0, ge=0, description="pseudo-teams pulling a track record to zero")
    min_effect: float = Field(0.02, gt=0, description="floor of a mentor's estimated effect")
    candidates_per_team: int = Field(20, ge=1, description="best reachable mentors kept per urban team in the LP")
    mentor_candidates: int = Field(4, ge=1, description="best teams kept per mentor in the LP, x its capacity")


@dataclass
class MentorModel:
    """Estimated mentor effects: ``effect_j * (fit_base + fit(mentor j, event))`` for a team at an event."""

    config: MentorConfig = field(default_factory=MentorConfig)

    def fit(self, graph: AchievementsGraph) -> Self:
        """Learn each mentor's effect from history (track record) and read competences, reach, capacity."""
        cfg = self.config
        self.mentors_ = mentor_table(graph)
        self.record_ = mentor_track_record(graph, shrinkage=cfg.shrinkage)
        self.mentor_comp_ = mentor_competences(graph)
        self.event_comp_ = event_competences(graph)
        effect = cfg.prior_effect + cfg.record_weight * self.record_["uplift"].to_numpy(np.float64)
        effect = effect + cfg.tech_leader_bonus * self.mentors_["tech_leader"].to_numpy(np.float64)
        self.effect_ = np.maximum(effect, cfg.min_effect)
        return self

    def fit_matrix(self, event_positions: np.ndarray) -> np.ndarray:
        """[len(events), mentors]: overlap of the mentor's competences with the event's."""
        return self.event_comp_[np.asarray(event_positions, dtype=np.int64)] @ self.mentor_comp_.T

    def expected_benefit(self, event_positions: np.ndarray) -> np.ndarray:
        """[len(events), mentors]: expected effect of each mentor on a team at each event."""
        return (self.config.fit_base + self.fit_matrix(event_positions)) * self.effect_[None, :]


@dataclass(frozen=True)
class Assignment:
    """The result of a batch assignment."""

    pairs: pd.DataFrame  # team_id, mentor_id, expected_benefit
    unassigned: list[str]
    remaining_capacity: np.ndarray


def solve_assignment(
    benefit: np.ndarray,
    reach: np.ndarray,
    capacity: np.ndarray,
    priority: np.ndarray,
    *,
    candidates_per_team: int = 20,
    mentor_candidates: int = 4,
) -> np.ndarray:
    """Mentor position of every team (-1: none) maximizing total benefit under capacities and reach.

    A bipartite b-matching solved as a linear program (its constraint matrix is totally unimodular, so
    the simplex vertex is integral). Priority teams (rural) earn a bonus larger than any total benefit,
    which makes the objective lexicographic: first as many priority teams served as capacity allows,
    then the most benefit. Urban teams keep their best `candidates_per_team` mentors; priority teams
    keep every reachable one, so none is left out while a reachable mentor has room.
    """
    n_t, n_m = benefit.shape
    capacity = np.maximum(np.asarray(capacity, dtype=np.int64), 0)
    ok = reach & (capacity > 0)[None, :]
    if n_t == 0 or not ok.any():
        return np.full(n_t, -1, dtype=np.int64)
    score = np.where(ok, np.maximum(benefit, 1e-6), -np.inf)
    k = min(candidates_per_team, n_m)
    if k < n_m:
        keep = np.zeros_like(ok)
        np.put_along_axis(keep, np.argpartition(-score, k - 1, axis=1)[:, :k], True, axis=1)
        # Each mentor also keeps its best teams (a few times its capacity), so that no capacity is
        # stranded because every team's shortlist holds the same popular mentors.
        per_mentor = np.minimum(np.maximum(mentor_candidates * capacity, mentor_candidates), n_t)
        by_team = np.argsort(-score, axis=0, kind="stable")
        keep[by_team, np.arange(n_m)[None, :]] |= np.arange(n_t)[:, None] < per_mentor[None, :]
        keep |= priority[:, None]
        keep &= ok
    else:
        keep = ok
    rows, cols = np.nonzero(keep)
    value = np.maximum(benefit[rows, cols], 1e-6)
    bonus = 1.0 + float(value.max()) * n_t
    gain = value + np.where(priority[rows], bonus, 0.0)
    n_e = len(rows)
    edge = np.arange(n_e)
    a_team = sp.csr_matrix((np.ones(n_e), (rows, edge)), shape=(n_t, n_e))
    a_mentor = sp.csr_matrix((np.ones(n_e), (cols, edge)), shape=(n_m, n_e))
    res = linprog(
        -gain,
        A_ub=sp.vstack([a_team, a_mentor]).tocsr(),
        b_ub=np.concatenate([np.ones(n_t), capacity.astype(float)]),
        bounds=(0.0, 1.0),
        method="highs-ds",
    )
    if res.status != 0:
        raise RuntimeError(f"mentor assignment LP failed: {res.message}")
    chosen = res.x > 0.5
    out = np.full(n_t, -1, dtype=np.int64)
    out[rows[chosen]] = cols[chosen]
    return out


def teams_to_assign(
    graph: AchievementsGraph, as_of: object, *, event_id: str | None = None, region: str | None = None
) -> pd.DataFrame:
    """Teams without a mentor at the event, or at the region's events not yet ended on `as_of`."""
    teams = team_table(graph)
    cut = to_timestamp(as_of)  # type: ignore[arg-type]
    free = teams[Columns.Mentor].isna() & (teams["event_idx"] >= 0)
    if event_id is not None:
        free &= teams[Columns.Event] == str(event_id)
    else:
        free &= (pd.to_datetime(teams["end_date"]) >= cut) & (teams["region_code"] == str(region))
    return teams[free].reset_index(drop=True)


def assign_mentors(
    graph: AchievementsGraph,
    as_of: object,
    *,
    event_id: str | None = None,
    region: str | None = None,
    config: MentorConfig | None = None,
) -> Assignment:
    """Assign mentors to the teams without one, for an event or a region, learning from history before `as_of`."""
    if (event_id is None) == (region is None):
        raise ValueError("give exactly one of event_id or region")
    cfg = config or MentorConfig()
    if event_id is not None and event_id not in set(graph.event_index):
        raise KeyError(f"unknown event {event_id!r}")
    model = MentorModel(cfg).fit(graph.as_of(as_of))  # type: ignore[arg-type]
    teams = teams_to_assign(graph, as_of, event_id=event_id, region=region)
    all_teams = team_table(graph)
    capacity = model.mentors_["capacity"].to_numpy() - mentor_load(all_teams, model.mentors_, as_of)
    benefit = model.expected_benefit(teams["event_idx"].to_numpy())
    reach = reach_matrix(teams["region_code"].to_numpy(), model.mentors_)
    choice = solve_assignment(
        benefit, reach, capacity, teams["rural"].to_numpy(bool), candidates_per_team=cfg.candidates_per_team,
        mentor_candidates=cfg.mentor_candidates,
    )
    served = choice >= 0
    ids = model.mentors_[Columns.Mentor].to_numpy()
    pairs = pd.DataFrame({
        Columns.Team: teams.loc[served, Columns.Team].to_numpy(),
        Columns.Mentor: ids[choice[served]],
        "expected_benefit": np.round(benefit[np.nonzero(served)[0], choice[served]], 6),
    })
    remaining = capacity - np.bincount(choice[served], minlength=len(ids))
    return Assignment(pairs, teams.loc[~served, Columns.Team].tolist(), remaining)


def rank_mentors(
    model: MentorModel,
    graph: AchievementsGraph,
    *,
    team_id: str | None = None,
    participant_id: str | None = None,
    event_id: str | None = None,
    k: int = 10,
    capacity_left: np.ndarray | None = None,
) -> pd.DataFrame:
    """Ranked mentors for a team (its event) or a participant (an event, or their interests) with reasons."""
    mentors = model.mentors_
    teams = team_table(graph)
    if team_id is not None:
        row = teams[teams[Columns.Team] == str(team_id)]
        if not len(row):
            raise KeyError(f"unknown team {team_id!r}")
        ev = int(row["event_idx"].iloc[0])
        region = row["region_code"].iloc[0]
        need = model.event_comp_[ev]
    else:
        pos = int(graph.participant_positions([str(participant_id)])[0])
        if pos < 0:
            raise KeyError(f"unknown participant {participant_id!r}")
        parts = graph.participants
        region = parts[Columns.Region].iloc[pos] if Columns.Region in parts.columns else pd.NA
        if event_id is not None:
            need = model.event_comp_[graph.event_index.get_loc(str(event_id))]
        else:
            pc = np.asarray(graph.participant_competence()[pos].toarray()).ravel()
            need = pc / pc.sum() if pc.sum() > 0 else np.full(len(pc), 1.0 / max(len(pc), 1))
    fit = model.mentor_comp_ @ need
    benefit = (model.config.fit_base + fit) * model.effect_
    reach = reach_matrix(np.array([region], dtype=object), mentors)[0]
    cap = mentors["capacity"].to_numpy() if capacity_left is None else capacity_left
    ok = reach & (cap > 0)
    order = [int(j) for j in np.argsort(-np.where(ok, benefit, -np.inf), kind="stable") if ok[j]][:k]
    comp_names = list(graph.competence_index)
    rec = model.record_
    rows = []
    for rank, j in enumerate(order, start=1):
        reasons = []
        shared = [comp_names[c] for c in np.argsort(-model.mentor_comp_[j] * need)[:2]
                  if model.mentor_comp_[j, c] * need[c] > 0]
        if shared:
            reasons.append("knows " + " and ".join(shared) + ", which this needs")
        reasons.append("works online" if mentors["online"].iloc[j] else "works in your region")
        reasons.append(f"{int(cap[j])} free place(s)")
        n_rec = int(rec["mentored_teams"].iloc[j])
        if n_rec:
            uplift = float(rec["uplift"].iloc[j])
            reasons.append(f"mentored {n_rec} team(s); they placed {'higher' if uplift > 0 else 'about the same'}"
                           " than similar teams without a mentor")
        if mentors["tech_leader"].iloc[j]:
            reasons.append("technology leader from industry")
        rows.append({Columns.Mentor: mentors[Columns.Mentor].iloc[j], "score": round(float(benefit[j]), 6),
                     Columns.Rank: rank, "reasons": reasons})
    return pd.DataFrame(rows, columns=[Columns.Mentor, "score", Columns.Rank, "reasons"])
