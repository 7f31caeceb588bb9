"""Participants and organizations of the world: regions, settlements, schools, grades and latent traits."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from recommender import reference
from recommender.synth.config import SynthConfig
from recommender.synth.dates import academic_year, to_day

CITY, TOWN, RURAL = 0, 1, 2
# Organization kinds use the positions of columns.ORGANIZATION_KINDS.
ORG_SCHOOL, ORG_UNIVERSITY, ORG_COMPANY = 0, 1, 2
# Grade on the export date, 5..13: most participants are 14-17 years old (grades 8-11).
GRADE_WEIGHTS = {5: 4, 6: 6, 7: 9, 8: 13, 9: 17, 10: 18, 11: 16, 12: 8, 13: 5}
# Relative popularity of a competence as a main interest.
INTEREST_POPULARITY = {
    "math": 3.0, "physics": 2.0, "informatics": 3.5, "chemistry": 1.4, "biology": 1.6, "ai": 2.5,
    "big_data": 1.6, "robotics": 2.5, "uav": 1.3, "gamedev": 1.8, "infosec": 1.3, "vr_ar": 1.0,
    "teamwork": 0.4, "leadership": 0.4, "entrepreneurship": 0.6, "project_management": 0.4,
}
PARTICIPANTS_PER_SCHOOL = 120
# Declared interests (a sign-up form): the share who fill it in, how many competences they tick, and how
# noisy the ticking is (a temperature on the true interests: about 80% of ticks are a main interest).
DECLARED_SHARE = 0.4
DECLARED_COUNTS = {1: 0.45, 2: 0.35, 3: 0.2}
DECLARED_TEMPERATURE = 0.7
MAX_EVENTS_PER_SEASON = 12.0


@lru_cache(maxsize=1)
def competence_table() -> pd.DataFrame:
    """The leaf competences (the skill dimensions of the world) with their group, in taxonomy order."""
    comp = reference.competences()
    leaves = comp[comp["parent_id"].notna()].reset_index(drop=True)
    return leaves


def competence_ids() -> list[str]:
    return competence_table()["competence_id"].tolist()


def competence_groups() -> np.ndarray:
    """Group of each leaf competence: 'subjects', 'technology' or 'soft'."""
    return competence_table()["parent_id"].to_numpy(dtype=object)


@lru_cache(maxsize=1)
def region_table() -> pd.DataFrame:
    return reference.regions().reset_index(drop=True)


@dataclass
class Organizations:
    kind: np.ndarray  # int8, position in ORGANIZATION_KINDS
    region: np.ndarray  # int16, row of region_table()
    settlement: np.ndarray  # int8 CITY/TOWN/RURAL

    @property
    def n(self) -> int:
        return len(self.kind)


@dataclass
class Population:
    """Participants as parallel arrays indexed by the internal participant number."""

    region: np.ndarray  # int16
    settlement: np.ndarray  # int8
    school: np.ndarray  # int32, organization index
    female: np.ndarray  # bool
    birth_day: np.ndarray  # int32 day number
    birth_year: np.ndarray  # int16
    interest: np.ndarray  # float32 [n, K], rows sum to 1
    skill0: np.ndarray  # float32 [n, K], true skill on the world's start date
    activity: np.ndarray  # float32, expected registrations per season
    learning: np.ndarray  # float32, multiplier of skill growth
    consent_research: np.ndarray  # bool
    consent_admissions: np.ndarray  # bool

    @property
    def n(self) -> int:
        return len(self.region)


def _gumbel_top(rng: np.random.Generator, log_weights: np.ndarray, n_rows: int, k: np.ndarray) -> np.ndarray:
    """Per row, a mask of k[row] items drawn without replacement with the given weights (Gumbel top-k)."""
    keys = log_weights[None, :] + rng.gumbel(size=(n_rows, len(log_weights))).astype(np.float32)
    order = np.argsort(-keys, axis=1)
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(keys.shape[1])[None, :], axis=1)
    return ranks < k[:, None]


def declared_interests(interest: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """What participants declare at sign-up: a sparse, noisy reading of their true interests.

    About `DECLARED_SHARE` of them tick 1-3 competences, drawn without replacement from the true interest
    vector sharpened by `DECLARED_TEMPERATURE`; the first ticked weighs 1, the others 1 or 0.5 by how
    strong the true interest is. Returns padded [n, 3] competence positions (-1 none) and weights (0 none).
    """
    n = len(interest)
    width = max(DECLARED_COUNTS)
    comp_idx = np.full((n, width), -1, dtype=np.int64)
    comp_w = np.zeros((n, width), dtype=np.float32)
    declares = np.flatnonzero(rng.random(n) < DECLARED_SHARE)
    if not len(declares):
        return comp_idx, comp_w
    counts = rng.choice(np.array(list(DECLARED_COUNTS)), len(declares), p=list(DECLARED_COUNTS.values()))
    rows = interest[declares].astype(np.float64)
    keys = np.log(rows) / DECLARED_TEMPERATURE + rng.gumbel(size=rows.shape)
    # The `width` largest keys, in decreasing order (a partition, then a sort of those few only).
    top = np.argpartition(-keys, width - 1, axis=1)[:, :width]
    order = np.take_along_axis(top, np.argsort(-np.take_along_axis(keys, top, axis=1), axis=1), axis=1)
    picked = np.arange(width)[None, :] < counts[:, None]
    strength = np.take_along_axis(rows, order, axis=1) / rows.max(axis=1, keepdims=True)
    weight = np.where(strength >= 0.5, 1.0, 0.5)
    weight[:, 0] = 1.0
    comp_idx[declares] = np.where(picked, order, -1)
    comp_w[declares] = np.where(picked, weight, 0.0)
    return comp_idx, comp_w


def make_organizations(cfg: SynthConfig, rng: np.random.Generator, region_counts: np.ndarray) -> Organizations:
    """Schools in every region (their number follows the participants), one university per region, companies."""
    regions = region_table()
    urban = regions["urban_share"].to_numpy(dtype=np.float64)
    n_schools = np.maximum(2, np.ceil(region_counts / PARTICIPANTS_PER_SCHOOL)).astype(np.int64)
    school_region = np.repeat(np.arange(len(regions)), n_schools)
    u = urban[school_region]
    # Rural children are under-represented in the community, towns sit in between.
    p = np.stack([u * 0.7, u * 0.3 + (1 - u) * 0.25, (1 - u) * 0.75], axis=1)
    settlement = (rng.random(len(school_region))[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    n_companies = max(5, len(regions) // 3)
    company_region = rng.choice(len(regions), n_companies, p=_population_weights())
    kind = np.concatenate([
        np.full(len(school_region), ORG_SCHOOL), np.full(len(regions), ORG_UNIVERSITY),
        np.full(n_companies, ORG_COMPANY),
    ]).astype(np.int8)
    region = np.concatenate([school_region, np.arange(len(regions)), company_region]).astype(np.int16)
    settle = np.concatenate([settlement, np.full(len(regions) + n_companies, CITY)]).astype(np.int8)
    return Organizations(kind=kind, region=region, settlement=settle)


def _population_weights() -> np.ndarray:
    pop = region_table()["population_k"].to_numpy(dtype=np.float64)
    return pop / pop.sum()


def make_population(cfg: SynthConfig, rng: np.random.Generator) -> tuple[Population, Organizations]:
    n = cfg.participants
    comps = competence_ids()
    k = len(comps)
    region = rng.choice(len(region_table()), n, p=_population_weights()).astype(np.int16)
    region_counts = np.bincount(region, minlength=len(region_table()))
    orgs = make_organizations(cfg, rng, region_counts)

    export_year = int(academic_year(to_day(cfg.end_date)))
    grades = np.array(list(GRADE_WEIGHTS), dtype=np.int64)
    gw = np.array(list(GRADE_WEIGHTS.values()), dtype=np.float64)
    grade_export = rng.choice(grades, n, p=gw / gw.sum())
    birth_year = (export_year - grade_export - 6).astype(np.int16)
    jan_first = (birth_year.astype(np.int64) - 1970).astype("datetime64[Y]").astype("datetime64[D]")
    birth_day = (jan_first.astype(np.int64) + rng.integers(0, 365, n)).astype(np.int32)

    # School: schools of the participant's region weighted by size; university students at the university.
    school = np.empty(n, dtype=np.int32)
    is_school = orgs.kind == ORG_SCHOOL
    size = rng.lognormal(0.0, 0.5, orgs.n) * np.array([1.4, 1.0, 0.8])[orgs.settlement]
    order = np.argsort(region, kind="stable")
    bounds = np.searchsorted(region[order], np.arange(len(region_table()) + 1))
    university_of_region = np.flatnonzero(orgs.kind == ORG_UNIVERSITY)
    for r in range(len(region_table())):
        members = order[bounds[r] : bounds[r + 1]]
        if len(members) == 0:
            continue
        candidates = np.flatnonzero(is_school & (orgs.region == r))
        w = size[candidates] / size[candidates].sum()
        school[members] = candidates[rng.choice(len(candidates), len(members), p=w)]
    school = np.where(grade_export >= 12, university_of_region[region], school).astype(np.int32)
    settlement = orgs.settlement[school]
    settlement = np.where(grade_export >= 12, CITY, settlement).astype(np.int8)

    # Interests: 2-4 main competences drawn by popularity, Dirichlet weights, a thin floor elsewhere.
    pop_w = np.array([INTEREST_POPULARITY.get(c, 1.0) for c in comps], dtype=np.float32)
    n_main = rng.choice(np.array([2, 3, 4]), n, p=[0.45, 0.4, 0.15])
    main = _gumbel_top(rng, np.log(pop_w), n, n_main)
    raw = np.where(main, rng.gamma(1.0, 1.0, (n, k)), 0.0) + 0.02
    interest = (raw / raw.sum(axis=1, keepdims=True)).astype(np.float32)

    grade0 = grade_export - (export_year - cfg.start_year)
    ability = rng.normal(0.0, 0.6, n)
    rel = interest / interest.max(axis=1, keepdims=True)
    skill0 = (
        -0.8 + ability[:, None] + 1.2 * rel + 0.12 * (grade0[:, None] - 8) + rng.normal(0.0, 0.35, (n, k))
    ).astype(np.float32)

    # Heavy-tailed activity (lognormal): many do one or two events, a few do dozens.
    sigma = cfg.activity_sigma
    mu = np.log(cfg.mean_events_per_season) - sigma**2 / 2
    access = np.array([1.0, 0.9, 0.75])[settlement]
    # Capped: nobody has time for more than about a dozen events a year.
    activity = np.minimum(rng.lognormal(mu, sigma, n) * access, MAX_EVENTS_PER_SEASON).astype(np.float32)
    learning = rng.lognormal(0.0, 0.3, n).astype(np.float32)
    female = rng.random(n) < 0.47
    consent_research = rng.random(n) < 0.85
    consent_admissions = rng.random(n) < np.where(grade_export >= 9, 0.7, 0.45)
    pop = Population(
        region=region, settlement=settlement, school=school, female=female, birth_day=birth_day,
        birth_year=birth_year, interest=interest, skill0=skill0, activity=activity, learning=learning,
        consent_research=consent_research, consent_admissions=consent_admissions,
    )
    return pop, orgs
