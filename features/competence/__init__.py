"""Competence (skill) estimation: a Bayesian rating per participant and competence, profiles and replay."""

from features.competence.estimator import CompetenceRatings, RatingConfig, SkillState

__all__ = ["CompetenceRatings", "RatingConfig", "SkillState"]
