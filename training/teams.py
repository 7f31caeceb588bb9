"""Team formation for an event within size limits, teammate ranking, and the learned team-success model."""

from __future__ import annotations

import pickle
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, Self

import lightgbm as lgb
import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from scipy.special import ndtr, ndtri

from features.competence.estimator import CompetenceRatings
from features.mentor_features import event_competences, team_percentiles
from features.team_features import (
    TEAM_FEATURES,
    former_teammate_pairs,
    padded_members,
    padded_team_features,
    school_codes,
    team_feature_frame,
    tie_keys,
)
from recommender.columns import Columns
from recommender.graph import AchievementsGraph, academic_years, online_flags


class TeamConfig(BaseModel):
    """Hyperparameters of the team-success model and team formation (flattened to MLflow params)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Small, smooth trees: the swap search seeks out whatever a model over-rates.
    n_estimators: int = Field(100, ge=1)
    learning_rate: float = Field(0.05, gt=0)
    num_leaves: int = Field(4, ge=2)
    min_child_samples: int = Field(50, ge=1)
    seed: int = 0
    monotone: bool = Field(True, description="predicted success never falls when a skill feature or the mentor rises")
    default_team_min: int = Field(2, ge=1, description="size limits of an event that states none")
    default_team_max: int = Field(5, ge=1)
    optimism: float = Field(0.25, ge=0, description="skill = mean + optimism x sd when forming teams")
    # Off by default: on the synthetic benchmark worlds no search beat the draft on true success (the draft has
    # already used what the skill estimates tell; the model's preferences beyond it are mostly noise, which a
    # single model's search exploits), see bench_mentors_teams and CONFIDENT_SEARCH.
    search_rounds: int = Field(0, ge=0, description="rounds of the swap search (each pairs every team once)")
    search_seconds: float = Field(2.0, ge=0, description="time the swap search may take")
    search_candidates: int = Field(4, ge=1, description="swaps tried per pair of teams and round")
    ensemble: int = Field(1, ge=1, description="models fitted on events resampled with replacement (the first on all "
                          "events): the search takes a swap only when every one of them predicts it to pay")
    consensus: Literal["all", "mean"] = Field("all", description="an ensemble's verdict on a swap: every model "
                                              "predicts a gain (all), or their mean gain is positive (mean)")
    keep_coverage: bool = Field(False, description="the search takes only swaps that do not lower the two teams' "
                                "estimated competence coverage of the event's needs")


# What `teams form --search` runs: the swap search taking only swaps that five models, fitted on past events
# resampled with replacement, all predict to pay. Paired with the draft on the same 5,000 registrants over 30
# events of three 40k worlds (bench_mentors_teams, seeds 7, 9, 10), every search lost true success to the draft
# alone (+0.0173 over random): this one by 0.0007 (s.e. 0.0002), one model's by 0.0014 (0.0005), the ensemble
# mean's by 0.0013 (0.0005), each kept from lowering estimated coverage (keep_coverage) no better, and the same
# swap search on the estimated coverage alone by 0.0003 (0.0002): past the draft, a search mostly follows the
# noise of the skill estimates. So it stays opt-in and DEFAULT_FORMATION is the draft.
CONFIDENT_SEARCH = TeamConfig(search_rounds=200, ensemble=5)
# What `teams form` and the team-formation job run by default: the draft, the team-success model (when there is
# one) predicting each team's success. A search config here turns the search on for both.
DEFAULT_FORMATION = TeamConfig()

# Features whose rise should never lower the predicted success (LightGBM monotone constraints).
INCREASING_FEATURES = frozenset({"mean_fit", "max_fit", "min_fit", "coverage", "complementarity", "teamwork", "mentor"})
# Fewer ranked individual results than this leave the grade prior out.
GRADE_PRIOR_MIN_RESULTS = 200


def without_team_results(graph: AchievementsGraph) -> AchievementsGraph:
    """The graph without the achievements of team members (node positions kept)."""
    a = graph.achievements
    keep = (a["team_idx"] < 0).to_numpy()
    live = np.zeros(len(a), dtype=bool)
    if graph.live_rows:
        live[len(a) - graph.live_rows:] = True
    return replace(graph, achievements=a[keep].reset_index(drop=True), live_rows=int((keep & live).sum()), _cache={})


def grade_slope(graph: AchievementsGraph, before: pd.DataFrame, prior_var: float) -> float:
    """Skill per school grade that the rating's newcomer prior misses, learned from individual results.

    `before`: the rating's pre-event estimates of ranked individual results (`CompetenceRatings.replay`).
    Each result's normal score within its event is regressed on the pre-event skill and on the grade's
    distance from the event's mean grade, scaled by the share of prior variance the participant still has
    (what the rating has not learned yet); the ratio of the two coefficients is the grade effect in skill
    units. 0 when there is too little to learn from.
    """
    before = before.dropna(subset=["skill", "skill_sd"])
    if len(before) < GRADE_PRIOR_MIN_RESULTS or Columns.Rank not in graph.achievements.columns:
        return 0.0
    a = graph.achievements
    rows = before["row"].to_numpy(np.int64)
    p = a["participant_idx"].to_numpy(np.int64)[rows]
    years = academic_years(pd.to_datetime(a[Columns.Date].iloc[rows])).to_numpy(np.int64)
    first = int(years.min())
    grade0 = graph.grades_at(pd.Timestamp(first, 10, 1))
    moves = graph.grades_at(pd.Timestamp(first + 1, 10, 1)) - grade0
    frame = pd.DataFrame({
        "event": a["event_idx"].to_numpy(np.int64)[rows],
        "rank": pd.to_numeric(a[Columns.Rank].iloc[rows], errors="coerce").to_numpy(np.float64),
        "skill": before["skill"].to_numpy(np.float64),
        "share": before["skill_sd"].to_numpy(np.float64) ** 2 / prior_var,
        "grade": grade0[p] + (years - first) * moves[p],
    }).dropna()
    by_event = frame.groupby("event")
    n = by_event["rank"].transform("size").to_numpy(np.float64)
    frame = frame[n >= 3]
    if len(frame) < GRADE_PRIOR_MIN_RESULTS:
        return 0.0
    by_event = frame.groupby("event")
    n = by_event["rank"].transform("size").to_numpy(np.float64)
    order = by_event["rank"].rank(method="average").to_numpy(np.float64)
    score = ndtri((n - order + 0.5) / n)
    grade_term = frame["share"].to_numpy() * (frame["grade"] - by_event["grade"].transform("mean")).to_numpy()
    design = pd.DataFrame({"score": score, "skill": frame["skill"].to_numpy(), "grade": grade_term,
                           "event": frame["event"].to_numpy()})
    columns = ["score", "skill", "grade"]
    centred = design[columns] - design.groupby("event")[columns].transform("mean")
    coef, *_ = np.linalg.lstsq(centred[["skill", "grade"]].to_numpy(), centred["score"].to_numpy(), rcond=None)
    if coef[0] <= 0:
        return 0.0
    return float(np.clip(coef[1] / coef[0], 0.0, 1.0))


def participant_skills(graph: AchievementsGraph, optimism: float = 0.25, *, team_results: bool = True
                       ) -> np.ndarray:
    """Skill [participants, competences] from the competence rating: mean + optimism x sd, the mean moved by
    school grade as far as the rating is still uncertain (older pupils are stronger before any result shows it).

    A team's coverage counts its best member per competence, and the expected maximum of uncertain
    skills favours the uncertain ones, hence the optimism for formation (0 gives the plain estimate).
    `team_results=False` rates from individual results only: a team's own result must not inform the
    skills that are to explain it (team-success history, mentor track records).
    """
    source = graph if team_results else without_team_results(graph)
    a = source.achievements
    ranked = (a["team_idx"] < 0).to_numpy() & (a[Columns.Rank].notna().to_numpy() if Columns.Rank in a.columns
                                                 else np.zeros(len(a), dtype=bool))
    ratings = CompetenceRatings()
    before = ratings.replay(source, np.flatnonzero(ranked))
    mu, sd = ratings.skill(np.arange(graph.n_participants))
    prior_var = ratings.config.prior_sd**2
    slope = grade_slope(source, before, prior_var)
    when = graph.cutoff if graph.cutoff is not None else graph.latest_date
    if slope > 0 and when is not None:
        grade = graph.grades_at(when)
        known = np.isfinite(grade)
        shift = np.where(known, grade - (np.nanmean(grade) if known.any() else 0.0), 0.0)
        mu = mu + (sd**2 / prior_var) * slope * shift[:, None]
    return np.asarray(mu + optimism * sd, dtype=np.float64)


def teamwork_column(graph: AchievementsGraph) -> int | None:
    comps = list(graph.competence_index)
    return comps.index("teamwork") if "teamwork" in comps else None


@dataclass(frozen=True)
class TeamHistory:
    """Past teams whose event ranked two or more teams: features, result and context, one row per team."""

    features: pd.DataFrame  # TEAM_FEATURES
    score: np.ndarray  # normal score of the team's result among its event's teams
    event: np.ndarray  # event position
    team: np.ndarray  # team position (row of graph.teams)
    mentor: np.ndarray  # mentor id or None


def _former_teammate_shares(team_rows: pd.DataFrame, team_codes: np.ndarray) -> np.ndarray:
    """Per team of `team_codes`: share of its member pairs that had been on a team together before its event."""
    members = team_rows[["participant_idx", "team_idx"]].drop_duplicates()
    size = members.groupby("team_idx").size().reindex(team_codes, fill_value=0).to_numpy(np.float64)
    pairs = members.merge(members, on="team_idx")
    pairs = pairs[pairs["participant_idx_x"] < pairs["participant_idx_y"]]
    if not len(pairs):
        return np.zeros(len(team_codes))
    date = pairs["team_idx"].map(pd.to_datetime(team_rows.groupby("team_idx")[Columns.Date].min()))
    first = date.groupby([pairs["participant_idx_x"], pairs["participant_idx_y"]]).transform("min")
    former = (first < date).groupby(pairs["team_idx"]).sum().reindex(team_codes, fill_value=0).to_numpy(np.float64)
    return former / np.maximum(size * (size - 1) / 2, 1)


def team_history(graph: AchievementsGraph, skills: np.ndarray) -> TeamHistory:
    """Every past team of an event that ranked two or more teams, with its features from `skills`, the
    normal score of its result, and former teammates counted only from teams before its own."""
    pct = team_percentiles(graph)
    n_ranked = pct.groupby("event_idx")["team_idx"].transform("size")
    pct = pct[n_ranked >= 2]
    team_rows = graph.achievements[graph.achievements["team_idx"] >= 0]
    members = team_rows[team_rows["team_idx"].isin(pct["team_idx"])][["participant_idx", "team_idx"]].drop_duplicates()
    if not len(members):
        empty = np.empty(0, dtype=np.int64)
        return TeamHistory(pd.DataFrame(columns=list(TEAM_FEATURES), dtype=np.float64), np.empty(0), empty, empty,
                           np.empty(0, dtype=object))
    team_codes, team_of_row = np.unique(members["team_idx"].to_numpy(), return_inverse=True)
    pct = pct.set_index("team_idx").loc[team_codes]
    events = pct["event_idx"].to_numpy(np.int64)
    mentor = (graph.teams[Columns.Mentor].astype("string").to_numpy(dtype=object, na_value=None)[team_codes]
              if Columns.Mentor in graph.teams.columns else np.full(len(team_codes), None, dtype=object))
    p = members["participant_idx"].to_numpy(np.int64)
    feats = team_feature_frame(
        skills[p], team_of_row.ravel(), event_competences(graph)[events], teamwork_col=teamwork_column(graph),
        school=school_codes(graph)[p], mentor=np.array([m is not None for m in mentor], dtype=np.float64),
    )
    feats["former_teammates"] = _former_teammate_shares(team_rows, team_codes)
    return TeamHistory(feats, pct["normal_score"].to_numpy(np.float64), events, team_codes.astype(np.int64), mentor)


def historical_teams(graph: AchievementsGraph, skills: np.ndarray) -> tuple[pd.DataFrame, np.ndarray]:
    """TEAM_FEATURES of every past team with a known result, plus its `event_idx` (the team-success model
    compares teams within their event), and the normal score of its result among its event's teams."""
    history = team_history(graph, skills)
    return history.features.assign(event_idx=history.event), history.score


class _WithinEventSquaredError:
    """LightGBM objective: squared error of predictions measured from their event's mean.

    Places within an event say how teams compare, not how strong the event was: the model learns a team
    strength whose differences within an event match the differences of result normal scores, so the
    strengths of teams that never met (the teams of one formation) can be added up.
    """

    def __init__(self, events: np.ndarray) -> None:
        self.group = np.asarray(pd.factorize(np.asarray(events))[0], dtype=np.int64)
        self.count = np.bincount(self.group).astype(np.float64)

    def __call__(self, preds: np.ndarray, data: lgb.Dataset) -> tuple[np.ndarray, np.ndarray]:
        residual = np.asarray(data.get_label(), dtype=np.float64) - preds
        mean = np.bincount(self.group, weights=residual, minlength=len(self.count)) / self.count
        n = self.count[self.group]
        return -(residual - mean[self.group]), np.maximum(1.0 - 1.0 / n, 0.05)


@dataclass
class TeamSuccessModel:
    """LightGBM model of a team's strength from team features, learned on past teams' results.

    `strength` is on the normal-score scale of results within an event (only differences mean anything);
    `predict` turns it into the expected result percentile against the teams of a typical past event.
    """

    config: TeamConfig = field(default_factory=TeamConfig)

    def fit(self, features: pd.DataFrame, target: np.ndarray, events: np.ndarray | None = None) -> Self:
        """Fit on past teams; `events` (or an `event_idx` column) makes the loss compare teams within events."""
        cfg = self.config
        if events is None and "event_idx" in features.columns:
            events = features["event_idx"].to_numpy()
        x = features[list(TEAM_FEATURES)].to_numpy(dtype=np.float64)
        y = np.asarray(target, dtype=np.float64)
        params: dict[str, object] = {
            "objective": "regression" if events is None else _WithinEventSquaredError(np.asarray(events)),
            "learning_rate": cfg.learning_rate, "num_leaves": cfg.num_leaves,
            # A small history (a young dataset, a cross-fitting fold) must not leave LightGBM no feature to split.
            "min_data_in_leaf": max(1, min(cfg.min_child_samples, len(y) // 4)), "seed": cfg.seed,
            "deterministic": True, "verbose": -1, "num_threads": 1, "feature_pre_filter": False,
        }
        if cfg.monotone:
            params["monotone_constraints"] = [int(f in INCREASING_FEATURES) for f in TEAM_FEATURES]
        booster = lgb.train(params, lgb.Dataset(x, y, feature_name=list(TEAM_FEATURES)),
                            num_boost_round=cfg.n_estimators)
        # The objective (holding the events) is not part of the model.
        booster.params.pop("objective", None)
        self.booster_ = booster
        fitted = booster.predict(x, num_threads=1)
        self.center_ = float(np.mean(fitted)) if len(fitted) else 0.0
        self.resampled_: list[tuple[lgb.Booster, float]] = []
        if cfg.ensemble > 1 and events is not None and len(y):
            # Whole events resampled: teams of one event share its conditions.
            codes = np.asarray(pd.factorize(np.asarray(events))[0], dtype=np.int64)
            by_event = np.split(np.argsort(codes, kind="stable"), np.cumsum(np.bincount(codes))[:-1])
            rng = np.random.default_rng(cfg.seed)
            for k in range(cfg.ensemble - 1):
                picked = rng.integers(0, len(by_event), len(by_event))
                rows = np.concatenate([by_event[i] for i in picked])
                # A resampled event keeps its own group (the same event drawn twice is two groups).
                group = np.repeat(np.arange(len(picked)), [len(by_event[i]) for i in picked])
                extra = lgb.train(params | {"objective": _WithinEventSquaredError(group), "seed": cfg.seed + k + 1},
                                  lgb.Dataset(x[rows], y[rows], feature_name=list(TEAM_FEATURES)),
                                  num_boost_round=cfg.n_estimators)
                extra.params.pop("objective", None)
                self.resampled_.append((extra, float(np.mean(extra.predict(x, num_threads=1)))))
        return self

    def strength_draws(self, features: np.ndarray) -> np.ndarray:
        """[models, teams] strengths from the model and its resampled companions (`TeamConfig.ensemble`)."""
        x = np.asarray(features, dtype=np.float64)
        out = [self.strength(x)]
        for booster, center in getattr(self, "resampled_", []):
            out.append(np.asarray(booster.predict(x, num_threads=1), dtype=np.float64) - center)
        return np.vstack(out)

    def strength(self, features: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Team strength (normal-score units; compare within one event). Arrays are in TEAM_FEATURES order."""
        x = (features[list(TEAM_FEATURES)].to_numpy(dtype=np.float64) if isinstance(features, pd.DataFrame)
             else np.asarray(features, dtype=np.float64))
        # The booster on a plain array, one thread: a service predicts a few teams per request.
        return np.asarray(self.booster_.predict(x, num_threads=1), dtype=np.float64) - self.center_

    def predict(self, features: pd.DataFrame) -> np.ndarray:
        """Expected result percentile (0-1) of each team against the teams of a typical past event."""
        if not hasattr(self, "booster_") and hasattr(self, "model_"):
            # A model pickled before strengths: an sklearn regressor of the percentile on its own features.
            booster = self.model_.booster_
            x = features[booster.feature_name()].to_numpy(dtype=np.float64)
            return np.clip(np.asarray(booster.predict(x, num_threads=1), dtype=np.float64), 0.0, 1.0)
        return np.asarray(ndtr(self.strength(features)), dtype=np.float64)


# Fewer past teams with a result than this: no team-success model is fitted.
MIN_TEAM_HISTORY = 20


def fit_team_success(graph: AchievementsGraph, config: TeamConfig | None = None) -> TeamSuccessModel | None:
    """The team-success model learned from the graph's past teams, members rated from individual results only
    (a team's result must not leak into the skills that explain it); None with too little history."""
    features, target = historical_teams(graph, participant_skills(graph, (config or TeamConfig()).optimism,
                                                                   team_results=False))
    if len(target) < MIN_TEAM_HISTORY:
        return None
    return TeamSuccessModel(config or TeamConfig()).fit(features, target)


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


def _units(n: int, groups: np.ndarray | None) -> np.ndarray:
    """Unit number of each person: people who asked to be together share one (a blank group: alone)."""
    if groups is None:
        return np.arange(n, dtype=np.int64)
    keys = [f"i:{i}" if g is None or pd.isna(g) or str(g) == "" else f"g:{g}" for i, g in enumerate(groups)]
    return np.asarray(pd.factorize(pd.Index(keys))[0], dtype=np.int64)


def seed_teams(
    skills: np.ndarray,
    need: np.ndarray,
    team_min: int,
    team_max: int,
    *,
    groups: np.ndarray | None = None,
    teamwork_col: int | None = None,
) -> np.ndarray:
    """Team number of each registrant: a balanced, complementary draft.

    Groups who asked to be together are placed first, whole; then people go strongest first in rounds:
    each round gives every team one more member (a snake draft, so that the strong are spread and every
    team gets one), and within a round a person joins the team whose competence coverage of the event's
    needs they raise most (ties: the team with the weakest members so far).
    """
    n = len(skills)
    sizes = team_sizes(n, team_min, team_max)
    if n == 0:
        return np.empty(0, dtype=np.int64)
    unit = _units(n, groups)
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
    unit_fit = np.bincount(unit, weights=s @ weight, minlength=n_units)
    strength = (unit_skill * weight).sum(axis=1)
    order = np.lexsort((-strength, -unit_size))
    floor = float(s.min()) if s.size else 0.0
    best = np.full((len(sizes), len(relevant)), floor)
    room = sizes.astype(np.int64).copy()
    hard_room = np.full(len(sizes), team_max, dtype=np.int64)
    total = np.zeros(len(sizes))
    team_of_unit = np.empty(n_units, dtype=np.int64)
    for u in order:
        fits = room >= unit_size[u]
        if not fits.any():  # a group bigger than the balanced room left: use the size limit instead
            fits = (hard_room - (sizes - room)) >= unit_size[u]
        if not fits.any():
            fits = np.ones(len(sizes), dtype=bool)
        # This round's teams: those with the fewest members among those with room.
        filled = sizes - room
        fits &= filled == filled[fits].min()
        gain = (np.maximum(unit_skill[u][None, :] - best, 0.0) * weight).sum(axis=1)
        gain = np.where(fits, gain - 1e-9 * total, -np.inf)
        t = int(np.argmax(gain))
        team_of_unit[u] = t
        best[t] = np.maximum(best[t], unit_skill[u])
        room[t] -= unit_size[u]
        total[t] += unit_fit[u]
    return team_of_unit[unit]


def improve_teams(
    labels: np.ndarray,
    skills: np.ndarray,
    need: np.ndarray,
    model: TeamSuccessModel,
    *,
    groups: np.ndarray | None = None,
    teamwork_col: int | None = None,
    school: np.ndarray | None = None,
    ids: np.ndarray | None = None,
    ties: np.ndarray | None = None,
    config: TeamConfig | None = None,
) -> np.ndarray:
    """Improve a formation by swaps the team-success model predicts to pay: a local search.

    Each round pairs every team with another at random and tries `search_candidates` swaps per pair
    between members of the same strength rank in their teams (the strongest of one with the strongest of
    the other, ...), so teams stay balanced; the pair keeps its best swap when the model predicts the two
    teams together gain (with `TeamConfig.ensemble` > 1: when every resampled model predicts a gain). Members
    of a requested group never move, so sizes and groups hold. A team is scored at the pool's mean member fit
    (complementarity measured from it too): swaps cannot change the total strength of the pool, only how it
    is combined (coverage, strongest and weakest member, diversity, teamwork, schoolmates, ties). Every swap
    taken raises the predicted total, so the result is never predicted worse than the draft. Stops after
    `search_rounds` rounds or `search_seconds`. `ids` (participant positions of the rows) and `ties`
    (`tie_keys`) count former teammates.
    """
    cfg = config or model.config
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    if n == 0 or cfg.search_rounds == 0:
        return labels
    members = padded_members(labels)
    n_t, width = members.shape
    if n_t < 2:
        return labels
    fit = skills @ need
    level = float(fit.mean())
    unit = _units(n, groups)
    locked = np.bincount(unit, minlength=int(unit.max()) + 1)[unit] > 1
    mean_col, cov_col, comp_col = (TEAM_FEATURES.index(f) for f in ("mean_fit", "coverage", "complementarity"))

    def score(teams: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = padded_team_features(skills, teams, need, teamwork_col=teamwork_col, school=school, ids=ids,
                                 tie_keys=ties)
        cover = x[:, cov_col].copy()
        # Every team at the pool's mean fit, and its complementarity (coverage over mean fit) to match: a
        # team the model never saw (its complementarity from the real mean fit beside the pool's) invites
        # swaps that pay in the model only.
        x[:, mean_col] = level
        x[:, comp_col] = x[:, cov_col] - level
        return model.strength_draws(x), cover

    # [models, teams] and [teams]; a team's score does not depend on the order of its members
    current, coverage = score(members)
    # A config pickled with a model from before these options reads as their defaults.
    consensus, keep_coverage = getattr(cfg, "consensus", "all"), getattr(cfg, "keep_coverage", False)
    rng = np.random.default_rng(cfg.seed)
    deadline = time.perf_counter() + cfg.search_seconds
    n_c = cfg.search_candidates
    half = n_t // 2
    for _ in range(cfg.search_rounds):
        if time.perf_counter() > deadline:
            break
        # Strongest first within each team (equals in random order): equal slots hold people of similar strength.
        key = np.where(members >= 0, -fit[np.maximum(members, 0)] + 1e-9 * rng.random(members.shape), np.inf)
        members = np.take_along_axis(members, np.argsort(key, axis=1), axis=1)
        perm = rng.permutation(n_t)
        a, b = perm[:half], perm[half:2 * half]
        slot = rng.integers(0, width, (half, n_c))
        pa = np.take_along_axis(members[a], slot, axis=1)
        pb = np.take_along_axis(members[b], slot, axis=1)
        ok = (pa >= 0) & (pb >= 0)
        ok &= ~locked[np.maximum(pa, 0)] & ~locked[np.maximum(pb, 0)]
        new_a = np.repeat(members[a][:, None, :], n_c, axis=1)
        new_b = np.repeat(members[b][:, None, :], n_c, axis=1)
        pair, cand = np.arange(half)[:, None], np.arange(n_c)[None, :]
        new_a[pair, cand, slot] = pb
        new_b[pair, cand, slot] = pa
        scored, covered = score(np.concatenate([new_a.reshape(-1, width), new_b.reshape(-1, width)]))
        scored = scored.reshape(len(scored), 2, half, n_c)
        covered = covered.reshape(2, half, n_c)
        if keep_coverage:
            ok &= covered[0] + covered[1] >= coverage[a][:, None] + coverage[b][:, None] - 1e-9
        # A swap's gain is the least any model of the ensemble predicts, or their mean (one model: its prediction).
        gains = scored[:, 0] + scored[:, 1] - current[:, a][:, :, None] - current[:, b][:, :, None]
        gain = np.where(ok, gains.mean(axis=0) if consensus == "mean" else gains.min(axis=0), -np.inf)
        pick = np.argmax(gain, axis=1)
        take = np.flatnonzero(gain[np.arange(half), pick] > 1e-12)
        c = pick[take]
        members[a[take], slot[take, c]] = pb[take, c]
        members[b[take], slot[take, c]] = pa[take, c]
        current[:, a[take]] = scored[:, 0, take, c]
        current[:, b[take]] = scored[:, 1, take, c]
        coverage[a[take]] = covered[0, take, c]
        coverage[b[take]] = covered[1, take, c]
    out = np.empty(n, dtype=np.int64)
    filled = members >= 0
    out[members[filled]] = np.nonzero(filled)[0]
    return out


def form_teams(
    skills: np.ndarray,
    need: np.ndarray,
    team_min: int,
    team_max: int,
    *,
    groups: np.ndarray | None = None,
    teamwork_col: int | None = None,
    model: TeamSuccessModel | None = None,
    school: np.ndarray | None = None,
    ids: np.ndarray | None = None,
    ties: np.ndarray | None = None,
    config: TeamConfig | None = None,
) -> np.ndarray:
    """Team number of each registrant: the balanced complementary draft (`seed_teams`), then, with a
    team-success model and `search_rounds` > 0, the swap search for higher predicted success (`improve_teams`).

    Sizes stay within the limits (balanced: `team_sizes`) and requested groups stay whole.
    """
    labels = seed_teams(skills, need, team_min, team_max, groups=groups, teamwork_col=teamwork_col)
    if model is None or (config or model.config).search_rounds == 0:
        return labels
    return improve_teams(labels, skills, need, model, groups=groups, teamwork_col=teamwork_col, school=school,
                         ids=ids, ties=ties, config=config)


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


def formation_method(model: TeamSuccessModel | None, config: TeamConfig | None = None) -> str:
    """What `form_teams` runs with this model and config: "draft" (no model, or no search rounds),
    "confident_search" (swaps every model of an ensemble backs), "mean_search" (swaps an ensemble's mean
    backs) or "model_search" (swaps one model backs)."""
    if model is None or (config or model.config).search_rounds == 0:
        return "draft"
    if len(getattr(model, "resampled_", [])) == 0:
        return "model_search"
    return "mean_search" if getattr(config or model.config, "consensus", "all") == "mean" else "confident_search"


@dataclass(frozen=True)
class Formation:
    teams: pd.DataFrame  # participant_id, team_id
    predicted_success: pd.Series  # per team_id, from the team-success model (if fitted)
    method: str = "draft"  # `formation_method`


def form_event_teams(
    graph: AchievementsGraph,
    event_id: str,
    registrants: list[str] | None = None,
    *,
    groups: list[str | None] | None = None,
    skills: np.ndarray | None = None,
    model: TeamSuccessModel | None = None,
    config: TeamConfig | None = None,
    ties: set[tuple[int, int]] | None = None,
) -> Formation:
    """Split an event's registrants into teams within the event's size limits, keeping requested groups whole.

    With a team-success `model` the formation is searched for the highest predicted success and each
    team's predicted result percentile is returned; `ties` (former teammates) default to the graph's.
    """
    cfg = config or (model.config if model is not None else TeamConfig())
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
    school = school_codes(graph)[pos]
    keys = tie_keys(former_teammate_pairs(graph) if ties is None else ties) if model is not None else None
    labels = form_teams(skill[pos], need, team_min, team_max,
                        groups=None if groups is None else np.asarray(groups, dtype=object), teamwork_col=tw,
                        model=model, school=school, ids=pos, ties=keys, config=cfg)
    team_ids = np.array([f"{event_id}-T{t + 1:04d}" for t in range(int(labels.max()) + 1 if len(labels) else 0)])
    out = pd.DataFrame({Columns.Participant: list(ids), Columns.Team: team_ids[labels] if len(labels) else []})
    predicted = pd.Series(dtype=np.float64)
    if model is not None and len(labels):
        feats = padded_team_features(skill[pos], padded_members(labels), need, teamwork_col=tw, school=school,
                                     ids=pos, tie_keys=keys)
        predicted = pd.Series(model.predict(pd.DataFrame(feats, columns=list(TEAM_FEATURES))), index=team_ids)
    return Formation(out, predicted, formation_method(model, cfg))


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


class TeammateConfig(BaseModel):
    """Weights of the teammate ranking's signals, tuned on a synthetic world apart from the benchmark's
    (`experiments/benchmarks/tune_teammates.py`, seed 8). Its generator teams pupils up by school, so
    former ties and attendance earned no weight there; re-tune them on real joined teams."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    complement: float = Field(0.5, ge=0, description="x fit the pair adds over the participant alone")
    same_school: float = Field(1.5, ge=0)
    former_teammates: float = Field(0.0, ge=0)
    reach: float = Field(0.3, ge=0, description="same region, or an online event")
    attendance: float = Field(0.0, ge=0, description="x share of joined events finished")
    level_gap: float = Field(0.5, ge=0, description="x distance in fit to the event (capped at 2)")


TEAMMATE_SIGNALS = ("complement", "same_school", "former_teammates", "reach", "attendance", "level_gap")


def teammate_signals(p: int, e: int, cand: np.ndarray, skills: np.ndarray, context: TeammateContext) -> np.ndarray:
    """[candidates, TEAMMATE_SIGNALS] for participant position `p` at event position `e` (level_gap as a
    penalty: minus the capped gap); the ranking score is this times the config's weights."""
    need = context.need[e]
    me = skills[p]
    complement = (np.maximum(skills[cand], me[None, :]) - me[None, :]) @ need
    level_gap = np.abs(skills[cand] @ need - me @ need)
    same_school = (context.school[cand] == context.school[p]) & (context.school[p] >= 0)
    former = np.array([(min(p, int(c)), max(p, int(c))) in context.ties for c in cand], dtype=bool)
    same_region = (context.region[cand] == context.region[p]) & (context.region[p] >= 0)
    reach = same_region | bool(context.online[e])
    return np.column_stack([complement, same_school, former, reach, context.attendance[cand],
                            -np.minimum(level_gap, 2.0)]).astype(np.float64).reshape(len(cand), len(TEAMMATE_SIGNALS))


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
    config: TeammateConfig | None = None,
) -> pd.DataFrame:
    """Ranked teammates for a participant at a team event, with reasons.

    Score: complementary competences for the event's needs (coverage the pair adds over the participant
    alone), similar level, the same school, former teammates, reach (same region unless the event is
    online) and likely attendance (a history of finishing events), weighted by `config`. `context`
    (from the same graph) spares the per-call passes over the whole graph.
    """
    p = int(graph.participant_positions([str(participant_id)])[0])
    if p < 0:
        raise KeyError(f"unknown participant {participant_id!r}")
    e = graph.event_index.get_loc(str(event_id))
    ctx = context if context is not None else TeammateContext.from_graph(graph, ties)
    cfg = config or TeammateConfig()
    pool = candidates if candidates is not None else event_registrants(graph, event_id)
    cand = graph.participant_positions([c for c in pool if c != str(participant_id)])
    cand = cand[cand >= 0]
    signals = teammate_signals(p, e, cand, skills, ctx)
    score = signals @ np.array([getattr(cfg, name) for name in TEAMMATE_SIGNALS])
    order = np.argsort(-score, kind="stable")[:k]
    need = ctx.need[e]
    me = skills[p]
    column = {name: i for i, name in enumerate(TEAMMATE_SIGNALS)}
    same_region = (ctx.region[cand] == ctx.region[p]) & (ctx.region[p] >= 0)
    comps = list(graph.competence_index)
    ids = graph.participant_index
    rows = []
    for rank, i in enumerate(order, start=1):
        reasons = []
        gain = (np.maximum(skills[cand[i]], me) - me) * need
        if gain.max() > 0:
            reasons.append(f"stronger in {comps[int(np.argmax(gain))]}, which this event needs")
        if -signals[i, column["level_gap"]] < 0.3:
            reasons.append("a similar level to yours")
        if signals[i, column["same_school"]]:
            reasons.append("from your school")
        if signals[i, column["former_teammates"]]:
            reasons.append("you were teammates before")
        if same_region[i]:
            reasons.append("lives in your region")
        if signals[i, column["attendance"]] >= 0.7:
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
