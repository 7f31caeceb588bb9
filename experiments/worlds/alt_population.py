"""Participants of the alternative world: who they are, when they are around, and their latent tastes.

Unlike the product's generator, participants join at any time (a steady stream of newcomers), leave
after grade 11 (a few stay on as students) or earlier, and each carries a *mixture* over four latent
tastes (competitor, builder, learner, explorer) that the choice model mixes over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
from alt_calendar import SIM_START, academic_year, competences, day, regions

TASTES = ("competitor", "builder", "learner", "explorer")
# Dirichlet concentration = these shares (sum 1): most participants lean clearly to one or two tastes.
TASTE_SHARE = np.array([0.35, 0.25, 0.25, 0.15])
# Popularity of each leaf competence as a core interest (informatics, math, AI and robotics lead).
POPULAR = {"informatics": 4.0, "math": 3.0, "ai": 3.0, "robotics": 2.5, "physics": 2.0, "gamedev": 2.0,
           "big_data": 1.5, "infosec": 1.5, "biology": 1.2, "chemistry": 1.0, "uav": 1.2}
# Share of the population per settlement type is the region's urban share, skewed to cities.
RURAL_DAMPING = 0.7


@dataclass
class Population:
    region: np.ndarray  # int16 row of regions()
    settlement: np.ndarray  # int8: 0 city, 1 town, 2 rural
    birth_year: np.ndarray  # int16
    gender: np.ndarray  # int8: 0 male, 1 female
    join: np.ndarray  # int32 day: first day they may register
    leave: np.ndarray  # int32 day: last day they may register
    activity: np.ndarray  # float32: registrations wanted per year while around
    ability0: np.ndarray  # float32: latent ability at the start (results only)
    taste: np.ndarray  # float32 [N, 4]: mixture weights over TASTES, rows sum to 1
    interest: np.ndarray  # float32 [N, K]: rows sum to 1

    @property
    def n(self) -> int:
        return len(self.region)


def make_population(rng: np.random.Generator, n: int) -> Population:
    reg = regions()
    comps = competences()["competence_id"].tolist()
    k = len(comps)
    pop = reg["population_k"].to_numpy(dtype=np.float64) ** 1.1
    region = rng.choice(len(reg), n, p=pop / pop.sum()).astype(np.int16)
    urban = reg["urban_share"].to_numpy(dtype=np.float64)[region]
    p_set = np.stack([urban * 0.75, urban * 0.25, (1 - urban) * RURAL_DAMPING], axis=1)
    p_set /= p_set.sum(axis=1, keepdims=True)
    settlement = (rng.random(n)[:, None] > np.cumsum(p_set, axis=1)).sum(axis=1).astype(np.int8)

    start = day(SIM_START)
    veteran = rng.random(n) < 0.2
    join = np.where(veteran, start, rng.integers(day(date(2021, 6, 1)), day(date(2025, 4, 15)), n)).astype(np.int32)
    grade_at_join = rng.choice(np.arange(6, 12), n, p=[0.05, 0.12, 0.25, 0.25, 0.2, 0.13])
    birth_year = (academic_year(join) - 6 - grade_at_join).astype(np.int16)
    # The last day of grade 11 (or of the second university year for the 15% who stay on).
    last_grade = np.where(rng.random(n) < 0.15, 13, 11)
    graduation = np.array([day(date(int(y), 6, 30)) for y in birth_year + 7 + last_grade], dtype=np.int32)
    quit_after = rng.exponential(900.0, n).astype(np.int32)
    leave = np.minimum(graduation, join + quit_after).astype(np.int32)

    activity = rng.lognormal(np.log(2.2), 0.8, n).astype(np.float32)
    ability0 = (rng.normal(0.0, 1.0, n) + 0.15 * (grade_at_join - 8)).astype(np.float32)
    taste = rng.dirichlet(TASTE_SHARE, n).astype(np.float32)
    base = np.array([POPULAR.get(c, 0.6) for c in comps])
    n_core = rng.choice([1, 2, 3], n, p=[0.3, 0.45, 0.25])
    keys = np.log(base)[None, :] + rng.gumbel(size=(n, k))
    order = np.argsort(-keys, axis=1)
    core_w = rng.gamma(1.5, 1.0, (n, 3)) * (np.arange(3)[None, :] < n_core[:, None])
    interest = np.full((n, k), 0.15 / k)
    rows = np.repeat(np.arange(n), 3)
    np.add.at(interest, (rows, order[:, :3].ravel()), (0.85 * core_w / core_w.sum(axis=1, keepdims=True)).ravel())
    return Population(
        region=region, settlement=settlement, birth_year=birth_year, gender=(rng.random(n) < 0.38).astype(np.int8),
        join=join, leave=leave, activity=activity, ability0=ability0, taste=taste,
        interest=(interest / interest.sum(axis=1, keepdims=True)).astype(np.float32),
    )


def declared_interests(rng: np.random.Generator, interest: np.ndarray, share: float = 0.35) -> list[str]:
    """The AIF `interests` text: a third of participants declare two competences, drawn by their interests."""
    comps = competences()["competence_id"].to_numpy(dtype=object)
    n = len(interest)
    keys = np.log(interest) + rng.gumbel(size=interest.shape)
    top = np.argsort(-keys, axis=1)[:, :2]
    declares = rng.random(n) < share
    return [f"{comps[a]}:0.6;{comps[b]}:0.4" if d else "" for a, b, d in zip(top[:, 0], top[:, 1], declares,
                                                                          strict=True)]
