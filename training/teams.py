"""Team formation for an event within size limits, teammate ranking, and the learned team-success model."""

from __future__ import annotations

import pickle
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import lightgbm as lgb
import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from features.competence.estimator import CompetenceRatings
from features.mentor_features import event_competences, team_percentiles
from features.team_features import TEAM_FEATURES, former_teammate_pairs, school_codes, team_feature_frame
from recommender.columns import Columns
from recommender.graph import AchievementsGraph, online_flags


class TeamConfig(BaseModel):
    """Hyperparameters of the team-success model and team formation (flattened to MLflow params)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_estimators: int = Field(200, ge=1)
    learning_rate: float = Field(0.05, gt=0)
    num_leaves: int = Field(15, ge=2)
    min_child_samples: int = Field(20, ge=1)
    seed: int = 0
    default_team_min: int = Field(2, ge=1, description="size limits of an event that states none")
    default_team_max: int = Field(5, ge=1)
    optimism: float = Field(0.5, ge=0, description="skill = mean + optimism x sd when forming teams")


def participant_skills(graph: AchievementsGraph, optimism: float = 0.5) -> np.ndarray:
    """Skill [participants, competences] from the competence rating: mean + optimism x sd.

    A team's coverage counts its best member per competence, and the expected maximum of uncertain
    skills favours the uncertain ones, hence the optimism for formation (0 gives the plain estimate).
    """
    ratings = CompetenceRatings().fit(graph, record_history=False)
    mu, sd = ratings.skill(np.arange(graph.n_participants))
    return np.asarray(mu + optimism * sd, dtype=np.float64)


def teamwork_column(graph: AchievementsGraph) -> int | None:
    comps = list(graph.competence_index)
    return comps.index("teamwork") if "teamwork" in comps else None


def historical_teams(graph: AchievementsGraph, skills: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """Features of every past team with a known result and its result percentile among its event's teams."""
    pct = team_percentiles(graph)
    a = graph.achievements[graph.achievements["team_idx"] >= 0][["participant_idx", "team_idx"]].drop_duplicates()
    a = a[a["team_idx"].isin(pct["team_idx"])]
    if not len(a):
        return pd.DataFrame(columns=list(TEAM_FEATURES)), np.empty(0)
    team_codes, team_of_row = np.unique(a["team_idx"].to_numpy(), return_inverse=True)
    pct = pct.set_index("team_idx").loc[team_codes]
    ew = event_competences(graph)[pct["event_idx"].to_numpy(np.int64)]
    mentor = (graph.teams[Columns.Mentor].notna().to_numpy()[team_codes] if Columns.Mentor in graph.teams.columns
              else np.zeros(len(team_codes), dtype=bool))
    p = a["participant_idx"].to_numpy(np.int64)
    feats = team_feature_frame(
        skills[p], team_of_row.ravel(), ew, teamwork_col=teamwork_column(graph), school=school_codes(graph)[p],
        mentor=mentor,
    )
    return feats, pct["percentile"].to_numpy(np.float64)


@dataclass
class TeamSuccessModel:
    """LightGBM regressor of a team's result percentile from team features (learned on history)."""

    config: TeamConfig = field(default_factory=TeamConfig)

    def fit(self, features: pd.DataFrame, target: np.ndarray) -> Self:
        cfg = self.config
        self.model_ = lgb.LGBMRegressor(
            n_estimators=cfg.n_estimators, learning_rate=cfg.learning_rate, num_leaves=cfg.num_leaves,
            min_child_samples=cfg.min_child_samples, random_state=cfg.seed, deterministic=True, verbose=-1,
            n_jobs=1,
        )
        self.model_.fit(features[list(TEAM_FEATURES)], target)
        return self

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        # The booster on a plain array, one thread: the same numbers as the sklearn wrapper, without its
        # milliseconds of input checks (a service predicts a few teams per request).
        x = features[list(TEAM_FEATURES)].to_numpy(dtype=np.float64)
        return np.asarray(self.model_.booster_.predict(x, num_threads=1), dtype=np.float64)


def team_sizes(n: int, team_min: int, team_max: int) -> np.ndarray:
    """Balanced team sizes for n people within [team_min, team_max] (short teams only when n allows no split
    into teams within both limits)."""
    if n <= 0:
        return np.empty(0, dtype=np.int64)
    team_max = max(team_max, team_min)
    n_teams = max(-(-n // team_max), 1)
    # The fewest teams that respect the maximum; when no count fits both limits the maximum wins.
    if n // n_teams < team_min and n_teams > 1 and n // (n_teams - 1) <= team_max:
        n_teams -= 1
    base, extra = divmod(n, n_teams)
    return np.array([base + 1] * extra + [base] * (n_teams - extra), dtype=np.int64)


def form_teams(
    skills: np.ndarray,
    need: np.ndarray,
    team_min: int,
    team_max: int,
    *,
    groups: np.ndarray | None = None,
    teamwork_col: int | None = None,
) -> np.ndarray:
    """Team number of each registrant: greedy complementary formation.

    People (or groups who asked to be together, kept whole) are taken strongest first and each goes to
    the open team whose competence coverage of the event's needs it raises most. This spreads
    specialists so that every team covers what the event needs, which is what the team-success model
    rewards beyond the (size-balanced, hence nearly fixed) mean member fit.
    """
    n = len(skills)
    sizes = team_sizes(n, team_min, team_max)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    if groups is None:
        unit = np.arange(n)
    else:
        keys = [f"i:{i}" if g is None or pd.isna(g) or str(g) == "" else f"g:{g}" for i, g in enumerate(groups)]
        unit = np.asarray(pd.factorize(pd.Index(keys))[0], dtype=np.int64)
    relevant = np.flatnonzero(need > 0)
    if teamwork_col is not None and teamwork_col not in relevant:
        relevant = np.append(relevant, teamwork_col)
    weight = need[relevant].astype(np.float64)
    if teamwork_col is not None:
        weight[relevant == teamwork_col] += 0.5  # teamwork counts for every team, whatever the event
    s = skills[:, relevant]
    n_units = int(unit.max()) + 1
    unit_skill = np.full((n_units, len(relevant)), -np.inf)
    np.maximum.at(unit_skill, unit, s)
    unit_size = np.bincount(unit, minlength=n_units)
    strength = (unit_skill * weight).sum(axis=1)
    order = np.lexsort((-strength, -unit_size))
    floor = float(s.min()) if s.size else 0.0
    best = np.full((len(sizes), len(relevant)), floor)
    room = sizes.astype(np.int64).copy()
    hard_room = np.full(len(sizes), team_max, dtype=np.int64)
    team_of_unit = np.empty(n_units, dtype=np.int64)
    for u in order:
        fits = room >= unit_size[u]
        if not fits.any():  # a group bigger than the balanced room left: use the size limit instead
            fits = (hard_room - (sizes - room)) >= unit_size[u]
        if not fits.any():
            fits = np.ones(len(sizes), dtype=bool)
        gain = (np.maximum(unit_skill[u][None, :] - best, 0.0) * weight).sum(axis=1)
        # Ties (e.g. empty teams) go to the emptiest team so sizes stay balanced.
        gain = np.where(fits, gain + 1e-9 * room, -np.inf)
        t = int(np.argmax(gain))
        team_of_unit[u] = t
        best[t] = np.maximum(best[t], unit_skill[u])
        room[t] -= unit_size[u]
    return team_of_unit[unit]


def random_teams(n: int, team_min: int, team_max: int, seed: int = 0) -> np.ndarray:
    """Baseline: a random split into balanced teams."""
    sizes = team_sizes(n, team_min, team_max)
    labels = np.repeat(np.arange(len(sizes)), sizes)
    return np.random.default_rng(seed).permutation(labels)


def strongest_first_teams(skills: np.ndarray, need: np.ndarray, team_min: int, team_max: int) -> np.ndarray:
    """Baseline: sort by fit to the event, fill the first team with the strongest, then the next."""
    sizes = team_sizes(len(skills), team_min, team_max)
    order = np.argsort(-(skills @ need), kind="stable")
    labels = np.empty(len(skills), dtype=np.int64)
    labels[order] = np.repeat(np.arange(len(sizes)), sizes)
    return labels


def event_size_limits(graph: AchievementsGraph, event_id: str, config: TeamConfig) -> tuple[int, int]:
    ev = graph.events.iloc[graph.event_index.get_loc(str(event_id))]
    lo = pd.to_numeric(pd.Series([ev.get("team_min")]), errors="coerce").iloc[0]
    hi = pd.to_numeric(pd.Series([ev.get("team_max")]), errors="coerce").iloc[0]
    team_min = int(lo) if pd.notna(lo) else config.default_team_min
    team_max = int(hi) if pd.notna(hi) else max(config.default_team_max, team_min)
    return team_min, team_max


def event_registrants(graph: AchievementsGraph, event_id: str) -> list[str]:
    """Participants with a `registered` row at the event (the default pool for team formation)."""
    a = graph.achievements
    rows = a[(a[Columns.Event].astype(str) == str(event_id)) & (a[Columns.Result] == "registered")]
    return list(dict.fromkeys(rows[Columns.Participant].astype(str)))


@dataclass(frozen=True)
class Formation:
    teams: pd.DataFrame  # participant_id, team_id
    predicted_success: pd.Series  # per team_id, from the team-success model (if fitted)


def form_event_teams(
    graph: AchievementsGraph,
    event_id: str,
    registrants: list[str] | None = None,
    *,
    groups: list[str | None] | None = None,
    skills: np.ndarray | None = None,
    model: TeamSuccessModel | None = None,
    config: TeamConfig | None = None,
) -> Formation:
    """Split an event's registrants into teams within the event's size limits."""
    cfg = config or TeamConfig()
    if str(event_id) not in set(graph.event_index):
        raise KeyError(f"unknown event {event_id!r}")
    ids = registrants if registrants is not None else event_registrants(graph, event_id)
    pos = graph.participant_positions(ids)
    if (pos < 0).any():
        raise KeyError(f"{int((pos < 0).sum())} registrants are not in the data")
    team_min, team_max = event_size_limits(graph, event_id, cfg)
    skill = participant_skills(graph, cfg.optimism) if skills is None else skills
    e = graph.event_index.get_loc(str(event_id))
    need = event_competences(graph)[e]
    tw = teamwork_column(graph)
    labels = form_teams(skill[pos], need, team_min, team_max,
                        groups=None if groups is None else np.asarray(groups, dtype=object), teamwork_col=tw)
    team_ids = np.array([f"{event_id}-T{t + 1:04d}" for t in range(int(labels.max()) + 1 if len(labels) else 0)])
    out = pd.DataFrame({Columns.Participant: list(ids), Columns.Team: team_ids[labels] if len(labels) else []})
    predicted = pd.Series(dtype=np.float64)
    if model is not None and len(labels):
        feats = team_feature_frame(skill[pos], labels, np.repeat(need[None, :], len(team_ids), axis=0),
                                   teamwork_col=tw, school=school_codes(graph)[pos])
        predicted = pd.Series(model.predict(feats), index=team_ids)
    return Formation(out, predicted)


@dataclass(frozen=True)
class TeammateContext:
    """What teammate ranking reads about the whole graph, computed once: a service ranks many requests from it."""

    need: np.ndarray  # events x competences, rows summing to 1
    online: np.ndarray  # per event
    school: np.ndarray  # organization code per participant, -1 unknown
    region: np.ndarray  # region code per participant, -1 unknown
    attendance: np.ndarray  # (events finished + 1) / (events joined + 2) per participant
    ties: set[tuple[int, int]]  # former teammates: (smaller, larger participant position)

    @classmethod
    def from_graph(cls, graph: AchievementsGraph, ties: set[tuple[int, int]] | None = None) -> TeammateContext:
        parts = graph.participants
        region = (pd.factorize(parts[Columns.Region].astype("string"), use_na_sentinel=True)[0]
                  if Columns.Region in parts.columns else np.full(graph.n_participants, -1))
        a = graph.achievements
        done = np.bincount(a["participant_idx"], weights=(a["result_rank"] >= 1).astype(float),
                           minlength=graph.n_participants)
        total = np.bincount(a["participant_idx"], minlength=graph.n_participants)
        return cls(
            need=event_competences(graph), online=online_flags(graph.events), school=school_codes(graph),
            region=np.asarray(region, dtype=np.int64), attendance=(done + 1.0) / (total + 2.0),
            ties=ties if ties is not None else former_teammate_pairs(graph),
        )


def rank_teammates(
    graph: AchievementsGraph,
    participant_id: str,
    event_id: str,
    skills: np.ndarray,
    *,
    candidates: list[str] | None = None,
    k: int = 10,
    ties: set[tuple[int, int]] | None = None,
    context: TeammateContext | None = None,
) -> pd.DataFrame:
    """Ranked teammates for a participant at a team event, with reasons.

    Score: complementary competences for the event's needs (coverage the pair adds over the participant
    alone), similar level, the same school, former teammates, reach (same region unless the event is
    online) and likely attendance (a history of finishing events). `context` (from the same graph)
    spares the per-call passes over the whole graph.
    """
    p = int(graph.participant_positions([str(participant_id)])[0])
    if p < 0:
        raise KeyError(f"unknown participant {participant_id!r}")
    e = graph.event_index.get_loc(str(event_id))
    ctx = context if context is not None else TeammateContext.from_graph(graph, ties)
    pool = candidates if candidates is not None else event_registrants(graph, event_id)
    cand = graph.participant_positions([c for c in pool if c != str(participant_id)])
    cand = cand[cand >= 0]
    need = ctx.need[e]
    me = skills[p]
    complement = (np.maximum(skills[cand], me[None, :]) - me[None, :]) @ need
    level_gap = np.abs(skills[cand] @ need - me @ need)
    same_school = (ctx.school[cand] == ctx.school[p]) & (ctx.school[p] >= 0)
    former = np.array([(min(p, int(c)), max(p, int(c))) in ctx.ties for c in cand], dtype=bool)
    same_region = (ctx.region[cand] == ctx.region[p]) & (ctx.region[p] >= 0)
    reach = same_region | bool(ctx.online[e])
    attend = ctx.attendance[cand]
    score = (complement + 1.5 * same_school + 1.0 * former + 0.3 * reach + 0.2 * attend
             - 0.2 * np.minimum(level_gap, 2.0))
    order = np.argsort(-score, kind="stable")[:k]
    comps = list(graph.competence_index)
    ids = graph.participant_index
    rows = []
    for rank, i in enumerate(order, start=1):
        reasons = []
        gain = (np.maximum(skills[cand[i]], me) - me) * need
        if gain.max() > 0:
            reasons.append(f"stronger in {comps[int(np.argmax(gain))]}, which this event needs")
        if level_gap[i] < 0.3:
            reasons.append("a similar level to yours")
        if same_school[i]:
            reasons.append("from your school")
        if former[i]:
            reasons.append("you were teammates before")
        if same_region[i]:
            reasons.append("lives in your region")
        if attend[i] >= 0.7:
            reasons.append("usually finishes the events they join")
        rows.append({Columns.Participant: str(ids[int(cand[i])]), "score": round(float(score[i]), 6),
                     Columns.Rank: rank, "reasons": reasons})
    return pd.DataFrame(rows, columns=[Columns.Participant, "score", Columns.Rank, "reasons"])


TEAM_MODEL = "team-success"


def log_team_model(model: TeamSuccessModel, metrics: dict[str, float], *, register_as: str | None = TEAM_MODEL
                   ) -> str | None:
    """Log the team-success model to the active MLflow run (params, metrics, model) and register it."""
    mlflow.log_params({f"team.{k}": v for k, v in model.config.model_dump().items()})
    mlflow.log_metrics({f"team.{k}": float(v) for k, v in metrics.items()})
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "team_model.pkl"
        path.write_bytes(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
        info = mlflow.pyfunc.log_model(
            name="team_success", python_model=_TeamModelWrapper(), artifacts={"model": str(path)},
            pip_requirements=["trajectory-recommender"], registered_model_name=register_as,
        )
    version = getattr(info, "registered_model_version", None)
    return None if version is None else str(version)


class _TeamModelWrapper(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined]
    """The registry's wrapper: predicts a team's result percentile from a frame of TEAM_FEATURES."""

    def load_context(self, context: object) -> None:
        self.model: TeamSuccessModel = pickle.loads(Path(context.artifacts["model"]).read_bytes())  # type: ignore[attr-defined]

    def predict(self, context: object, model_input: pd.DataFrame, params: dict[str, object] | None = None
                ) -> np.ndarray:
        return self.model.predict(model_input)
