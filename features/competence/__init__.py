"""Competence (skill) estimation: a Bayesian rating per participant and competence, profiles and replay."""

from features.competence.estimator import CompetenceRatings, RatingConfig, SkillState
from features.competence.profile import competence_profile, skill_table
from features.competence.replay import replay_frame

__all__ = ["CompetenceRatings", "RatingConfig", "SkillState", "competence_profile", "replay_frame", "skill_table"]
