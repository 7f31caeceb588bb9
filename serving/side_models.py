"""The models beside next steps (competence rating, mentors, team success), loaded at start-up with their arrays."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from features.competence.estimator import CompetenceRatings
from features.mentor_features import mentor_load, team_table
from recommender.columns import Columns
from recommender.graph import AchievementsGraph
from serving.loaded_model import LoadedModel
from serving.services.profile import ProfileIndex
from serving.settings import Settings
from serving.state import ServingState
from training.admissions import ScoringBasis
from training.mentors import MentorConfig, MentorModel, mentor_model_from_effects
from training.side_training import MIN_TEAM_HISTORY
from training.teams import TEAM_MODEL, TeamConfig, TeammateContext, TeamSuccessModel, historical_teams

log = logging.getLogger("trajectory.serving")

COMPETENCE_MODEL = "competence-profiles"  # also the name of the MLflow run `trajectory profiles fit` logs
MENTOR_MODEL = "mentors"
CHAMPION = "champion"


@dataclass(frozen=True)
class MentorCards:
    """What an answer shows about each mentor (by position in the mentor model), as plain arrays."""

    region: np.ndarray  # object: region code or None
    online: np.ndarray
    tech_leader: np.ndarray
    organization_type: np.ndarray  # object
    competences: list[list[str]]  # the mentor's competences, main first

    @classmethod
    def build(cls, model: MentorModel, graph: AchievementsGraph) -> MentorCards:
        table = model.mentors_
        ids = graph.competence_index
        weights = model.mentor_comp_
        order = np.argsort(-weights, axis=1, kind="stable")
        return cls(
            region=np.array([None if pd.isna(r) else str(r) for r in table["region_code"]], dtype=object),
            online=table["online"].to_numpy(dtype=bool),
            tech_leader=table["tech_leader"].to_numpy(dtype=bool),
            organization_type=table["organization_type"].astype(str).to_numpy(dtype=object),
            competences=[[str(ids[c]) for c in row if weights[j, c] > 0] for j, row in enumerate(order)],
        )


@dataclass(frozen=True)
class SideModels:
    """Everything the profile, mentor, teammate and admissions requests read, built once over one graph.

    Positions in the arrays are positions in `graph`: requests look participants up there, not in a
    graph swapped in later.
    """

    graph: AchievementsGraph
    as_of: pd.Timestamp
    competence: LoadedModel | None  # CompetenceRatings, fitted with history
    mentors: LoadedModel | None  # MentorModel
    team_success: LoadedModel | None  # TeamSuccessModel
    profiles: ProfileIndex | None
    scoring: ScoringBasis | None
    skills: np.ndarray | None  # [participants, competences]: mean + optimism x sd, as teams are formed
    teammates: TeammateContext
    registrants: Mapping[str, list[str]]  # event id -> participants registered at it
    team_events: np.ndarray  # per event: teams of two or more take part
    teams: pd.DataFrame  # `team_table` of the graph
    mentor_positions: pd.Index  # mentor id -> position in the mentor model
    mentor_cards: MentorCards | None
    free_places: np.ndarray | None  # per mentor: capacity left on `as_of`
    problems: Mapping[str, str] = field(default_factory=dict)  # capability -> why it is degraded or off

    def loaded(self) -> list[LoadedModel]:
        return [m for m in (self.competence, self.mentors, self.team_success) if m is not None]

    def reasons(self) -> list[str]:
        return [f"{capability}: {why}" for capability, why in self.problems.items()]

    def why(self, capability: str) -> str:
        return self.problems.get(capability, "its model is not loaded")


def attach_side_models(state: ServingState, settings: Settings) -> ServingState:
    """Load the side models into the state; a failure only degrades (and says why), it never stops the service."""
    try:
        side = load_side_models(state.graph, state.today(), fit_max_achievements=settings.side_fit_max_achievements)
    except Exception as exc:  # whatever broke, next steps still serve
        reason = f"profiles, mentors, teammates and admissions unavailable ({type(exc).__name__})"
        log.warning(reason)
        state.degraded_reasons.append(reason)
        return state
    state.side = side
    state.other_models.extend(side.loaded())
    for reason in side.reasons():
        log.warning(reason)
        state.degraded_reasons.append(reason)
    return state


def load_side_models(graph: AchievementsGraph, as_of: pd.Timestamp, *, fit_max_achievements: int,
                     registry: bool = True) -> SideModels:
    """Registry first; a missing, broken or stale model is fitted on the served graph when it holds at most
    `fit_max_achievements` achievements (seconds on two cores); above that the capability stays off."""
    problems: dict[str, str] = {}
    client = _registry_client(problems) if registry else None
    small = len(graph.achievements) <= fit_max_achievements
    competence = _competence(client, graph, problems, small)
    mentors = _mentors(client, graph, problems)
    skills = formation_skills(competence.model) if competence is not None else None
    team = _team_success(client, graph, skills, problems, small)
    return build_side_models(graph, as_of, competence, mentors, team, problems)


def build_side_models(
    graph: AchievementsGraph,
    as_of: pd.Timestamp,
    competence: LoadedModel | None,
    mentors: LoadedModel | None,
    team_success: LoadedModel | None,
    problems: Mapping[str, str] | None = None,
) -> SideModels:
    """Precompute what requests read from loaded models (tests build one from models they fitted)."""
    as_of = pd.Timestamp(as_of).normalize()
    profiles = scoring = skills = None
    if competence is not None:
        profiles = ProfileIndex.build(competence.model, graph, as_of)
        scoring = ScoringBasis.build(competence.model, graph, as_of)
        scoring.history(competence.model)  # shared by every program; each program's cohort waits for its request
        skills = formation_skills(competence.model)
    teams = _team_table(graph)
    free_places = cards = None
    mentor_positions = pd.Index([], dtype=object)
    if mentors is not None:
        table = mentors.model.mentors_
        free_places = np.maximum(table["capacity"].to_numpy(np.int64) - mentor_load(teams, table, as_of), 0)
        mentor_positions = pd.Index(table[Columns.Mentor].astype(str))
        cards = MentorCards.build(mentors.model, graph)
    # Requests read these cached matrices: build them now, not under the first request.
    graph.participant_event()
    graph.event_competence()
    return SideModels(
        graph=graph, as_of=as_of, competence=competence, mentors=mentors, team_success=team_success,
        profiles=profiles, scoring=scoring, skills=skills, teammates=TeammateContext.from_graph(graph),
        registrants=event_registrants(graph), team_events=team_events(graph, teams), teams=teams,
        mentor_positions=mentor_positions, mentor_cards=cards, free_places=free_places,
        problems=dict(problems or {}),
    )


def _team_table(graph: AchievementsGraph) -> pd.DataFrame:
    """`team_table`, or an empty one for a graph without teams."""
    if Columns.Event in graph.teams.columns:
        return team_table(graph)
    return pd.DataFrame({Columns.Team: pd.Series(dtype=object), Columns.Event: pd.Series(dtype=object),
                         "event_idx": pd.Series(dtype=np.int64), Columns.Mentor: pd.Series(dtype=object),
                         "size": pd.Series(dtype=np.int64), "rural": pd.Series(dtype=bool),
                         "region_code": pd.Series(dtype=object), "start_date": pd.Series(dtype="datetime64[ns]"),
                         "end_date": pd.Series(dtype="datetime64[ns]")})


def formation_skills(model: CompetenceRatings, optimism: float | None = None) -> np.ndarray:
    """Skills as teams are formed and the team-success model learned them (`training.teams.participant_skills`)."""
    mu, sd = model.skill(np.arange(len(model.participants_)))
    return np.asarray(mu + (TeamConfig().optimism if optimism is None else optimism) * sd, dtype=np.float64)


def event_registrants(graph: AchievementsGraph) -> dict[str, list[str]]:
    """Per event, the participants with a `registered` row (the pool teammates are chosen from)."""
    a = graph.achievements
    rows = a[a[Columns.Result] == "registered"]
    return {
        str(event): list(dict.fromkeys(ids.astype(str)))
        for event, ids in rows.groupby(rows[Columns.Event].astype(str), sort=False)[Columns.Participant]
    }


def team_events(graph: AchievementsGraph, teams: pd.DataFrame) -> np.ndarray:
    """Per event: a team event (its size limit allows two or more, or, with no limit stated, teams took part)."""
    ev = graph.events
    limit = (pd.to_numeric(ev["team_max"], errors="coerce").to_numpy(np.float64) if "team_max" in ev.columns
             else np.full(graph.n_events, np.nan))
    has_teams = np.zeros(graph.n_events, dtype=bool)
    positions = teams["event_idx"].to_numpy(np.int64)
    has_teams[positions[positions >= 0]] = True
    return np.where(np.isnan(limit), has_teams, limit >= 2)


def competence_fits_graph(model: CompetenceRatings, graph: AchievementsGraph) -> bool:
    """A logged rating serves only the graph it was fitted on: same participants, competences and result rows."""
    if not (model.participants_.equals(graph.participant_index) and model.competences_.equals(graph.competence_index)):
        return False
    hist = model.history_
    if not len(hist):
        return True
    rows = hist["row"].to_numpy(np.int64)
    if rows.max() >= len(graph.achievements):
        return False
    owner = graph.achievements["participant_idx"].to_numpy(np.int64)[rows]
    return bool(np.array_equal(owner, hist["participant"].to_numpy(np.int64)))


# ---- registry ---------------------------------------------------------------------------------------------
def _registry_client(problems: dict[str, str]) -> Any:
    try:
        import mlflow

        from training.tracking import configure

        configure()
        return mlflow.MlflowClient()
    except Exception as exc:  # no registry: every model falls back
        problems["registry"] = f"MLflow registry unavailable ({type(exc).__name__})"
        return None


def _latest_run(client: Any, filter_string: str) -> Any:
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, filter_string=f"{filter_string} AND attributes.status = 'FINISHED'",
                              order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0] if runs else None


def _download(run_id: str, artifact: str, into: str) -> Path:
    import mlflow

    return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact, dst_path=into))


def _competence(client: Any, graph: AchievementsGraph, problems: dict[str, str], small: bool) -> LoadedModel | None:
    from training.profiles import MODEL_ARTIFACT, load_model

    problem = "no competence model in the registry"
    if client is not None:
        try:
            run = _latest_run(client, f"attributes.run_name = '{COMPETENCE_MODEL}'")
            if run is not None:
                run_id = run.info.run_id
                with tempfile.TemporaryDirectory() as tmp:
                    model = load_model(_download(run_id, f"{MODEL_ARTIFACT}/model.pkl", tmp))
                if competence_fits_graph(model, graph):
                    return LoadedModel(COMPETENCE_MODEL, "competence_ratings", f"{COMPETENCE_MODEL}:competence_ratings",
                                       model, f"run-{run_id[:8]}", None, run_id)
                problem = f"the logged competence model (run {run_id[:8]}) was fitted on other data"
        except Exception as exc:  # a broken artefact degrades like a missing one
            problem = f"the logged competence model is unreadable ({type(exc).__name__})"
    if not small:
        problems["competence"] = f"{problem}; too much data to fit at start-up (run `trajectory profiles fit`)"
        return None
    return _fallback(problems, "competence", problem, lambda: LoadedModel(
        COMPETENCE_MODEL, "competence_ratings", f"fallback:{COMPETENCE_MODEL}", CompetenceRatings().fit(graph)))


def _mentors(client: Any, graph: AchievementsGraph, problems: dict[str, str]) -> LoadedModel | None:
    if not len(graph.mentors):
        return None  # the data holds no mentors: nothing to rank, nothing missing
    problem = "no mentor model in the registry"
    if client is not None:
        try:
            run = _latest_run(client, "params.`mentor.fit_base` LIKE '%'")
            if run is not None:
                run_id = run.info.run_id
                with tempfile.TemporaryDirectory() as tmp:
                    effects = pd.read_csv(_download(run_id, "mentor_model/mentor_effects.csv", tmp),
                                          dtype={Columns.Mentor: str})
                params = {k.removeprefix("mentor."): v for k, v in run.data.params.items() if k.startswith("mentor.")}
                config = MentorConfig(**{k: v for k, v in params.items() if k in MentorConfig.model_fields})
                known = graph.mentors[Columns.Mentor].astype(str).isin(effects[Columns.Mentor]).any()
                if known or not len(graph.mentors):
                    model = mentor_model_from_effects(graph, effects, config)
                    return LoadedModel(MENTOR_MODEL, "mentor_effects", f"{MENTOR_MODEL}:mentor_effects", model,
                                       f"run-{run_id[:8]}", None, run_id)
                problem = f"the logged mentor model (run {run_id[:8]}) knows none of the served mentors"
        except Exception as exc:
            problem = f"the logged mentor model is unreadable ({type(exc).__name__})"
    # Learning effects from track records is one pass over teams: quick at any size.
    return _fallback(problems, "mentors", problem, lambda: LoadedModel(
        MENTOR_MODEL, "mentor_effects", f"fallback:{MENTOR_MODEL}", MentorModel().fit(graph)))


def _team_success(client: Any, graph: AchievementsGraph, skills: np.ndarray | None, problems: dict[str, str],
                  small: bool) -> LoadedModel | None:
    problem = "no team-success model in the registry"
    if client is not None:
        try:
            version, alias = _team_version(client)
            if version is not None:
                import mlflow.pyfunc

                wrapper = mlflow.pyfunc.load_model(f"models:/{TEAM_MODEL}/{version}").unwrap_python_model()
                model = getattr(wrapper, "model", None)
                if isinstance(model, TeamSuccessModel):
                    return LoadedModel(TEAM_MODEL, "lightgbm", f"{TEAM_MODEL}:lightgbm", model, version, alias)
                problem = f"{TEAM_MODEL} version {version} holds no team-success model"
        except Exception as exc:
            problem = f"the registered team-success model is unreadable ({type(exc).__name__})"
    if skills is None or not small:
        problems["team-success"] = f"{problem}; predicted team success is left out"
        return None
    try:
        features, target = historical_teams(graph, skills)
    except Exception as exc:  # a graph without the tables this model reads
        problems["team-success"] = f"{problem}; none could be fitted on the served graph ({type(exc).__name__})"
        return None
    if len(target) < MIN_TEAM_HISTORY:
        if problem != "no team-success model in the registry":
            problems["team-success"] = f"{problem}; too little team history to fit one on the served graph"
        # Otherwise training, too, had too few teams to learn from: nothing is missing.
        return None
    return _fallback(problems, "team-success", problem, lambda: LoadedModel(
        TEAM_MODEL, "lightgbm", f"fallback:{TEAM_MODEL}", TeamSuccessModel().fit(features, target)))


def _fallback(problems: dict[str, str], capability: str, problem: str,
              fit: Callable[[], LoadedModel]) -> LoadedModel | None:
    """Fit a stand-in on the served graph; the capability is degraded either way, and off when that fails."""
    try:
        loaded = fit()
    except Exception as exc:  # e.g. a graph without the tables this model reads
        problems[capability] = f"{problem}; none could be fitted on the served graph ({type(exc).__name__})"
        return None
    problems[capability] = f"{problem}; fitted on the served graph at start-up"
    return loaded


def _team_version(client: Any) -> tuple[str | None, str | None]:
    """The champion version of the team-success model, else its latest version; (None, None) when not registered."""
    try:
        return str(client.get_model_version_by_alias(TEAM_MODEL, CHAMPION).version), CHAMPION
    except Exception:  # no alias (or no such model): the latest version, if any
        versions = client.search_model_versions(f"name='{TEAM_MODEL}'")
        if not versions:
            return None, None
        return str(max(int(v.version) for v in versions)), None
