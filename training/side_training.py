"""Fitting and logging the models beside next steps (competence rating, mentor effects, team success) to MLflow."""

from __future__ import annotations

from typing import Any

import mlflow
import numpy as np

from recommender.graph import AchievementsGraph
from training import tracking
from training.mentors import MentorModel, log_mentor_model
from training.profiles import fit_competence_model
from training.teams import TeamConfig, TeamSuccessModel, historical_teams, log_team_model

SIDE_RUN = "mentors-and-teams"
# The team-success model is not worth fitting on fewer historical teams than this.
MIN_TEAM_HISTORY = 20


def train_side_models(graph: AchievementsGraph, *, data_label: str, experiment: str = tracking.EXPERIMENT
                      ) -> dict[str, Any]:
    """Fit on the whole graph and log what the service loads: the competence rating (its own
    `competence-profiles` run), the mentor effects and the team-success model (registered)."""
    ratings, competence = fit_competence_model(graph, data_label=data_label, experiment=experiment)
    tracking.configure(experiment)
    with mlflow.start_run(run_name=SIDE_RUN) as run:
        mlflow.log_params({"data": data_label})
        if len(graph.mentors):  # a dataset without mentors has no mentor model
            mentors = MentorModel().fit(graph)
            log_mentor_model(mentors, {"mentors": float(len(graph.mentors)),
                                       "mentored_teams": float(mentors.record_["mentored_teams"].sum())})
        mu, sd = ratings.skill(np.arange(graph.n_participants))
        config = TeamConfig()
        features, target = historical_teams(graph, mu + config.optimism * sd)
        version = None
        if len(target) >= MIN_TEAM_HISTORY:
            version = log_team_model(TeamSuccessModel(config).fit(features, target), {"history_teams": len(target)})
    return {"competence_run_id": competence["run_id"], "run_id": run.info.run_id, "team_success_version": version,
            "history_teams": len(target)}
