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
from training.teams import TeamConfig, TeamSuccessModel, participant_skills, team_history


class MentorConfig(BaseModel):
    """Hyperparameters of the mentor model and the assignment (defined once; flattened to MLflow params)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prior_effect: float = Field(0.5, gt=0, description="effect of a mentor when no mentored team has a result")
    record_weight: float = Field(1.0, ge=0, description="weight of a mentor's own record against the average mentor")
    tech_leader_bonus: float = Field(0.1, ge=0, description="added effect of a technology leader (no history)")
    fit_base: float = Field(0.5, ge=0, description="effect multiplier of a mentor whose competences miss the event")
    shrinkage: float = Field(5.0, ge=0, description="pseudo-teams pulling a track record to the average mentor")
    min_effect: float = Field(0.02, gt=0, description="floor of a mentor's estimated effect")
    candidates_per_team: int = Field(60, ge=1, description="best reachable mentors kept per urban team group in the LP")
    mentor_candidates: int = Field(8, ge=1, description="best team groups per mentor in the LP (demand x capacity)")
    record_folds: int = Field(3, ge=2, description="event folds for the expected results of mentored teams")


# Fewer past teams with a result than this: mentored teams are compared with their event's unmentored teams.
MIN_TEAM_HISTORY = 20


def expected_without_mentor(
    graph: AchievementsGraph,
    skills: np.ndarray | None = None,
    *,
    folds: int = 3,
    config: TeamConfig | None = None,
) -> pd.Series | None:
    """Per past team (team_idx): the normal score its result was expected to have without a mentor, on its
    event's scale; None when there is too little history.

    A team-success model over the members' skills is fitted on the teams of the other events
    (cross-fitting: no team's own result shapes its expectation) and predicts each team as it was and
    with its mentor taken away; the event's scale comes from its teams' actual scores and their
    predictions as they were. Skills default to ratings from individual results only, so that a team's
    result does not leak into the skills that are to explain it.
    """
    if skills is None:
        skills = participant_skills(graph, 0.0, team_results=False)
    history = team_history(graph, skills)
    if len(history.score) < MIN_TEAM_HISTORY:
        return None
    event_code = np.asarray(pd.factorize(history.event)[0], dtype=np.int64)
    # Events spread over folds in a fixed pseudo-random order (neighbouring events are alike).
    fold = np.random.default_rng(0).permutation(int(event_code.max()) + 1)[event_code] % folds
    as_was = np.full(len(history.score), np.nan)
    unmentored = np.full(len(history.score), np.nan)
    without = history.features.assign(mentor=0.0)
    for k in range(folds):
        train, test = fold != k, fold == k
        if not test.any() or train.sum() < MIN_TEAM_HISTORY:
            continue
        model = TeamSuccessModel(config or TeamConfig()).fit(history.features[train], history.score[train],
                                                             events=history.event[train])
        as_was[test] = model.strength(history.features[test])
        unmentored[test] = model.strength(without[test])
    known = np.isfinite(as_was)
    if not known.any():
        return None
    frame = pd.DataFrame({"event": event_code, "score": history.score, "as_was": as_was, "without": unmentored})[known]
    by_event = frame.groupby("event")
    expected = frame["without"] - by_event["as_was"].transform("mean") + by_event["score"].transform("mean")
    return pd.Series(expected.to_numpy(np.float64), index=history.team[known])


@dataclass
class MentorModel:
    """Estimated mentor effects: ``effect_j * (fit_base + fit(mentor j, event))`` for a team at an event."""

    config: MentorConfig = field(default_factory=MentorConfig)

    def fit(self, graph: AchievementsGraph, *, skills: np.ndarray | None = None) -> Self:
        """Learn each mentor's effect from history (track record) and read competences, reach, capacity.

        The track record measures how much better a mentor's teams did than the same members were expected
        to do without a mentor (`expected_without_mentor`; `skills` overrides the members' skills), per
        unit of the mentor's fit to the event, shrunk toward the average mentor of the same kind.
        """
        cfg = self.config
        self.mentors_ = mentor_table(graph)
        expected = expected_without_mentor(graph, skills, folds=cfg.record_folds)
        self.record_ = mentor_track_record(graph, shrinkage=cfg.shrinkage, expected=expected, fit_base=cfg.fit_base)
        self.mentor_comp_ = mentor_competences(graph)
        self.event_comp_ = event_competences(graph)
        learned = self.record_["effect"].to_numpy(np.float64)
        if np.isfinite(learned).all() and len(learned):
            average = self.record_["kind_effect"].to_numpy(np.float64)
            effect = average + cfg.record_weight * (learned - average)
        else:  # no mentored team with a result: every mentor is the prior
            effect = cfg.prior_effect + cfg.tech_leader_bonus * self.mentors_["tech_leader"].to_numpy(np.float64)
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
    groups: np.ndarray | None = None,
    candidates_per_team: int = 60,
    mentor_candidates: int = 8,
    refill: bool = True,
) -> np.ndarray:
    """Mentor position of every team (-1: none) maximizing total benefit under capacities and reach.

    A bipartite b-matching solved as a linear program (its constraint matrix is totally unimodular, so
    the simplex vertex is integral). Teams in the same `groups` entry have identical benefit, reach and
    priority rows and are solved as one demand node (a transportation problem), which keeps the LP small.
    Priority teams (rural) earn a bonus larger than any total benefit, which makes the objective
    lexicographic: first as many priority teams served as capacity allows, then the most benefit.
    Each group keeps its best `candidates_per_team` mentors and each mentor its best groups (up to
    `mentor_candidates` x its capacity in demand); priority groups keep every reachable mentor, so none
    is left out while a reachable mentor has room. The shortlists can strand places (a mentor whose
    shortlisted teams all went to others): with `refill`, a second LP over every reachable pair of the
    teams left without a mentor and the mentors left with room uses them.
    """
    n_t, n_m = benefit.shape
    capacity = np.maximum(np.asarray(capacity, dtype=np.int64), 0)
    group = np.arange(n_t) if groups is None else np.asarray(pd.factorize(np.asarray(groups))[0], dtype=np.int64)
    n_g = int(group.max()) + 1 if n_t else 0
    first = np.full(n_g, n_t, dtype=np.int64)
    np.minimum.at(first, group, np.arange(n_t))
    demand = np.bincount(group, minlength=n_g)
    g_benefit, g_priority = benefit[first], priority[first]
    ok = reach[first] & (capacity > 0)[None, :]
    if n_t == 0 or not ok.any():
        return np.full(n_t, -1, dtype=np.int64)
    score = np.where(ok, np.maximum(g_benefit, 1e-6), -np.inf)
    keep = np.zeros_like(ok)
    k = min(candidates_per_team, n_m)
    np.put_along_axis(keep, np.argpartition(-score, k - 1, axis=1)[:, :k], True, axis=1)
    # Each mentor also keeps its best groups, so that no capacity is stranded because every group's
    # shortlist holds the same popular mentors.
    by_group = np.argsort(-score, axis=0, kind="stable")
    demand_before = np.cumsum(demand[by_group], axis=0) - demand[by_group]
    keep[by_group, np.arange(n_m)[None, :]] |= demand_before < mentor_candidates * np.maximum(capacity, 1)[None, :]
    keep |= g_priority[:, None]
    keep &= ok
    rows, cols = np.nonzero(keep)
    value = np.maximum(g_benefit[rows, cols], 1e-6)
    bonus = 1.0 + float(value.max()) * n_t
    gain = value + np.where(g_priority[rows], bonus, 0.0)
    n_e = len(rows)
    edge = np.arange(n_e)
    a_group = sp.csr_matrix((np.ones(n_e), (rows, edge)), shape=(n_g, n_e))
    a_mentor = sp.csr_matrix((np.ones(n_e), (cols, edge)), shape=(n_m, n_e))
    upper = np.minimum(demand[rows], capacity[cols]).astype(float)
    a_ub = sp.vstack([a_group, a_mentor]).tocsr()
    b_ub = np.concatenate([demand.astype(float), capacity.astype(float)])
    bounds = np.column_stack([np.zeros(n_e), upper])
    count = np.zeros(n_e, dtype=np.int64)
    # HiGHS' default (with crossover) returns a vertex, integral here; the pure simplex is the fallback.
    for method in ("highs", "highs-ds"):
        res = linprog(-gain, A_ub=a_ub, b_ub=b_ub, bounds=bounds, method=method)
        if res.status != 0:
            raise RuntimeError(f"mentor assignment LP failed: {res.message}")
        count = np.rint(res.x).astype(np.int64)
        if np.abs(res.x - count).max() < 1e-6 and (a_ub @ count <= b_ub + 1e-9).all():
            break
    out = np.full(n_t, -1, dtype=np.int64)
    members = np.argsort(group, kind="stable")
    starts = np.concatenate([[0], np.cumsum(demand)])
    filled = np.zeros(n_g, dtype=np.int64)
    for e in np.flatnonzero(count > 0):
        g, c = rows[e], count[e]
        team_rows = members[starts[g] + filled[g]: starts[g] + filled[g] + c]
        out[team_rows] = cols[e]
        filled[g] += c
    if refill:
        left = capacity - np.bincount(out[out >= 0], minlength=n_m)
        free = np.flatnonzero(out < 0)
        if len(free) and reach[np.ix_(free, left > 0)].any():
            out[free] = solve_assignment(benefit[free], reach[free], left, priority[free], groups=group[free],
                                         candidates_per_team=n_m, mentor_candidates=n_t, refill=False)
    return out


def assignment_groups(teams: pd.DataFrame) -> np.ndarray:
    """Teams that are interchangeable for the assignment: same event (benefit), region (reach), rurality."""
    key = teams["event_idx"].astype(str) + "|" + teams["region_code"].astype(str) + "|" + teams["rural"].astype(str)
    return key.to_numpy(dtype=object)


def teams_to_assign(
    graph: AchievementsGraph, as_of: object, *, event_id: str | None = None, region: str | None = None
) -> pd.DataFrame:
    """Teams without a mentor at the event, or at the region's events not yet ended on `as_of`."""
    teams = team_table(graph)
    cut = to_timestamp(as_of)
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
    model = MentorModel(cfg).fit(graph.as_of(as_of))
    teams = teams_to_assign(graph, as_of, event_id=event_id, region=region)
    all_teams = team_table(graph)
    capacity = model.mentors_["capacity"].to_numpy() - mentor_load(all_teams, model.mentors_, as_of)
    benefit = model.expected_benefit(teams["event_idx"].to_numpy())
    reach = reach_matrix(teams["region_code"].to_numpy(), model.mentors_)
    choice = solve_assignment(
        benefit, reach, capacity, teams["rural"].to_numpy(bool), groups=assignment_groups(teams),
        candidates_per_team=cfg.candidates_per_team,
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
    teams: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Ranked mentors for a team (its event) or a participant (an event, or their interests) with reasons.

    `teams` is the graph's `team_table`, passed in by callers that rank many teams.
    """
    mentors = model.mentors_
    if team_id is not None:
        teams = team_table(graph) if teams is None else teams
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
            # Only this participant's row: a request never multiplies the whole graph.
            pc = np.asarray((graph.participant_event()[pos] @ graph.event_competence()).toarray()).ravel()
            need = pc / pc.sum() if pc.sum() > 0 else np.full(len(pc), 1.0 / max(len(pc), 1))
    fit = model.mentor_comp_ @ need
    benefit = (model.config.fit_base + fit) * model.effect_
    reach = reach_matrix(np.array([region], dtype=object), mentors)[0]
    cap = mentors["capacity"].to_numpy() if capacity_left is None else capacity_left
    ok = reach & (cap > 0)
    order = [int(j) for j in np.argsort(-np.where(ok, benefit, -np.inf), kind="stable") if ok[j]][:k]
    comp_names = list(graph.competence_index)
    # Plain arrays for the loop: pandas element access would cost more than the ranking itself.
    online = mentors["online"].to_numpy(dtype=bool)
    tech_leader = mentors["tech_leader"].to_numpy(dtype=bool)
    mentored = model.record_["mentored_teams"].to_numpy(dtype=np.int64)
    uplifts = model.record_["uplift"].to_numpy(dtype=np.float64)
    rows = []
    for rank, j in enumerate(order, start=1):
        reasons = []
        shared = [comp_names[c] for c in np.argsort(-model.mentor_comp_[j] * need)[:2]
                  if model.mentor_comp_[j, c] * need[c] > 0]
        if shared:
            reasons.append("knows " + " and ".join(shared) + ", which this needs")
        reasons.append("works online" if online[j] else "works in your region")
        reasons.append(f"{int(cap[j])} free place(s)")
        n_rec = int(mentored[j])
        if n_rec:
            uplift = float(uplifts[j])
            placed = "higher than" if uplift > 0 else "about as well as"
            reasons.append(f"mentored {n_rec} team(s); they placed {placed} similar teams without a mentor")
        if tech_leader[j]:
            reasons.append("technology leader from industry")
        rows.append({Columns.Mentor: mentors[Columns.Mentor].iloc[j], "score": round(float(benefit[j]), 6),
                     Columns.Rank: rank, "reasons": reasons})
    return pd.DataFrame(rows, columns=[Columns.Mentor, "score", Columns.Rank, "reasons"])


def log_mentor_model(model: MentorModel, metrics: dict[str, float]) -> None:
    """Log the mentor model to the active MLflow run: params, metrics and the estimated effect per mentor."""
    import tempfile
    from pathlib import Path

    import mlflow

    mlflow.log_params({f"mentor.{k}": v for k, v in model.config.model_dump().items()})
    mlflow.log_metrics({f"mentor.{k}": float(v) for k, v in metrics.items()})
    effects = pd.DataFrame({
        Columns.Mentor: model.mentors_[Columns.Mentor], "effect": np.round(model.effect_, 6),
        "mentored_teams": model.record_["mentored_teams"], "uplift": np.round(model.record_["uplift"], 6),
    })
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mentor_effects.csv"
        effects.to_csv(path, index=False)
        mlflow.log_artifact(str(path), artifact_path="mentor_model")


def mentor_model_from_effects(graph: AchievementsGraph, effects: pd.DataFrame,
                              config: MentorConfig | None = None) -> MentorModel:
    """A mentor model from its logged artefact (`mentor_effects.csv` of `log_mentor_model`) over a graph.

    Effects and track records are the logged ones; competences, reach and capacity are read from the
    graph. A mentor the artefact does not know (new since training) gets the no-track-record effect.
    """
    model = MentorModel(config or MentorConfig())
    cfg = model.config
    model.mentors_ = mentor_table(graph)
    model.mentor_comp_ = mentor_competences(graph)
    model.event_comp_ = event_competences(graph)
    ids = model.mentors_[Columns.Mentor].astype(str)
    logged = effects.assign(**{Columns.Mentor: effects[Columns.Mentor].astype(str)}).drop_duplicates(Columns.Mentor)
    known = logged.set_index(Columns.Mentor).reindex(ids)
    model.record_ = pd.DataFrame({
        Columns.Mentor: ids.to_numpy(),
        "mentored_teams": known["mentored_teams"].fillna(0).astype(np.int64).to_numpy(),
        "uplift": known["uplift"].astype(np.float64).fillna(0.0).to_numpy(),
    })
    prior = np.maximum(cfg.prior_effect + cfg.tech_leader_bonus * model.mentors_["tech_leader"].to_numpy(np.float64),
                       cfg.min_effect)
    effect = known["effect"].astype(np.float64).to_numpy()
    model.effect_ = np.where(np.isfinite(effect), effect, prior)
    return model
