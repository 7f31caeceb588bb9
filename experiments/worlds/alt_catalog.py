"""The alternative world's catalog: per-region subject olympiad tracks, online profile olympiads and single events.

Deliberately unlike the product's generator: every region runs its own two-stage subject olympiad
(school stage in October -> regional stage in January), national profile olympiads are online
(qualifier -> final), hackathons cluster in big cities and peak in November and April, courses start
in September and February, camps run in winter, spring and summer.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date

import numpy as np
from alt_calendar import FORMATS, LEVELS, SEASONS, SIM_END, competences, day, regions

F = {name: i for i, name in enumerate(FORMATS)}
L = {name: i for i, name in enumerate(LEVELS)}
SUBJECTS = ("math", "physics", "informatics", "chemistry", "biology")
PROFILES = ("ai", "big_data", "robotics", "uav", "space_systems", "geodata", "aerospace", "nanotech",
            "bioengineering", "neurotech", "infosec", "fintech", "wireless", "iot", "vr_ar", "energy")
# Single-edition formats: (events per season, online share, start-month weights Sep..Aug, duration range,
# registration opens days before start, closes days before start, capacity range (0 = unlimited),
# level weights school..international, grade range). Offline hackathons crowd into big regions; every region
# runs offline courses, camps and schools of its own (technoparks, Kvantoriums): REGION_EXPONENT below.
SINGLE: dict[str, tuple] = {
    "hackathon": (200, 0.2, (0.3, 1.0, 1.6, 0.6, 0.2, 0.8, 1.0, 1.6, 0.6, 0, 0, 0), (2, 3), 50, 2, (40, 200),
                  (0, 0.4, 0.45, 0.12, 0.03), (8, 13)),
    "course": (420, 0.3, (1.6, 1.2, 0.4, 0.1, 0.3, 1.4, 0.6, 0.2, 0, 0, 0, 0), (28, 84), 45, 1, (15, 30),
               (0.5, 0.5, 0, 0, 0), (6, 11)),
    "camp": (80, 0.0, (0, 0, 0.2, 0.3, 0.8, 0, 1.0, 0, 0.2, 1.5, 1.5, 0.3), (10, 21), 60, 21, (30, 120),
             (0, 0, 0.6, 0.4, 0), (8, 11)),
    "contest": (100, 0.3, (0, 0, 0, 0.8, 0.8, 1.0, 1.2, 1.0, 0, 0, 0, 0), (1, 3), 75, 14, (0, 0),
                (0, 0.3, 0.4, 0.3, 0), (7, 11)),
    "conference": (60, 0.0, (0, 0, 0, 0, 0, 0, 1.0, 1.2, 0.8, 0, 0, 0), (2, 2), 60, 30, (100, 300),
                   (0, 0, 0.6, 0.4, 0), (8, 11)),
    "project_school": (80, 0.0, (0, 0, 1.0, 0, 0.5, 0, 1.0, 0, 0, 0, 0, 0), (5, 7), 40, 10, (30, 60),
                       (0, 0.5, 0.5, 0, 0), (7, 11)),
    "accelerator": (8, 1.0, (0, 0, 0, 0, 0, 1.0, 0, 0, 0, 0, 0, 0), (60, 90), 50, 7, (200, 200),
                    (0, 0, 0, 1.0, 0), (9, 13)),
}


REGION_EXPONENT = {"hackathon": 1.1, "accelerator": 1.1}
DEFAULT_REGION_EXPONENT = 0.4
# A school-stage olympiad is what every teacher announces: subject tracks carry a high latent prestige.
SUBJECT_PRESTIGE = (1.0, 0.3)


@dataclass
class Catalog:
    """One row per event (edition or stage); series-level latent prestige repeated on each event."""

    series: np.ndarray  # int32
    season: np.ndarray  # int16
    stage: np.ndarray  # int8, 0-based
    format: np.ndarray  # int8, position in FORMATS
    level: np.ndarray  # int8, position in LEVELS
    region: np.ndarray  # int16 row of regions(), -1 online
    reg_open: np.ndarray  # int32 day
    reg_deadline: np.ndarray  # int32 day
    start: np.ndarray  # int32 day
    end: np.ndarray  # int32 day
    min_grade: np.ndarray  # int8
    max_grade: np.ndarray  # int8
    capacity: np.ndarray  # int32, 0 = unlimited
    team_min: np.ndarray  # int8, 0 = individual
    team_max: np.ndarray  # int8
    parent: np.ndarray  # int32, -1 none
    child: np.ndarray  # int32, -1 none
    prestige: np.ndarray  # float32, latent
    weights: np.ndarray  # float32 [E, K], rows sum to 1 (two decimals, exactly what the AIF says)

    @property
    def n(self) -> int:
        return len(self.series)

    @property
    def online(self) -> np.ndarray:
        return self.region < 0

    def take(self, keep: np.ndarray) -> Catalog:
        """The events at `keep` (sorted positions), parent/child renumbered (-1 where dropped)."""
        new = np.full(self.n, -1, dtype=np.int32)
        new[keep] = np.arange(len(keep), dtype=np.int32)
        out = {f.name: getattr(self, f.name)[keep] for f in fields(self)}
        for link in ("parent", "child"):
            old = out[link]
            out[link] = np.where(old >= 0, new[np.maximum(old, 0)], -1).astype(np.int32)
        return Catalog(**out)


def _weights(rng: np.random.Generator, n: int, k: int, main: np.ndarray, extra_pool: np.ndarray) -> np.ndarray:
    """Main competence 0.5-0.9, the rest on one or two from the pool; rounded to two decimals, sum 1."""
    w = np.zeros((n, k), dtype=np.float64)
    share = np.round(rng.uniform(0.5, 0.9, n), 2)
    w[np.arange(n), main] = share
    second = extra_pool[rng.integers(0, len(extra_pool), n)]
    two = rng.random(n) < 0.4
    third = extra_pool[rng.integers(0, len(extra_pool), n)]
    rest = 1.0 - share
    half = np.round(rest / 2, 2)
    np.add.at(w, (np.arange(n), second), np.where(two, half, rest))
    np.add.at(w, (np.arange(n)[two], third[two]), rest[two] - half[two])
    return np.round(w, 2).astype(np.float32)


def _month_days(rng: np.random.Generator, season: int, month_w: tuple, n: int) -> np.ndarray:
    w = np.asarray(month_w, dtype=np.float64)
    m = rng.choice(12, n, p=w / w.sum())
    year = season + (m + 8) // 12
    month = (m + 8) % 12 + 1
    first = np.array([day(date(int(y), int(mm), 1)) for y, mm in zip(year, month, strict=True)])
    return first + rng.integers(0, 28, n)


def make_catalog(rng: np.random.Generator) -> Catalog:
    comps = competences()["competence_id"].tolist()
    cidx = {c: i for i, c in enumerate(comps)}
    k = len(comps)
    reg = regions()
    n_reg = len(reg)
    pop = reg["population_k"].to_numpy(dtype=np.float64)
    soft = np.array([cidx[c] for c in ("teamwork", "leadership", "entrepreneurship", "project_management")])
    base = np.array([cidx[c] for c in ("math", "physics", "informatics")])
    tech = np.array([cidx[c] for c in comps if c not in SUBJECTS and cidx[c] not in soft])
    cols: dict[str, list[np.ndarray]] = {f.name: [] for f in fields(Catalog)}
    n_series = 0
    n_events = 0

    def add(**kw: np.ndarray | int) -> None:
        nonlocal n_events
        size = len(np.asarray(kw["series"]))
        for name in cols:
            value = np.asarray(kw[name])
            cols[name].append(value if value.ndim else np.full(size, value))
        n_events += size

    # Series ids are fixed before the seasons, so one series keeps its prestige and competences every year.
    subj_series = np.arange(len(SUBJECTS) * n_reg).reshape(len(SUBJECTS), n_reg)
    n_series += subj_series.size
    subj_prestige = rng.normal(*SUBJECT_PRESTIGE, subj_series.size).astype(np.float32)
    prof_series = n_series + np.arange(len(PROFILES))
    n_series += len(PROFILES)
    prof_prestige = rng.normal(0.4, 0.5, len(PROFILES)).astype(np.float32)
    prof_w = _weights(rng, len(PROFILES), k, np.array([cidx[p] for p in PROFILES]), base)
    # Single-edition formats recur as series too: ~70% of a season's events continue a series of last year.
    single_pool: dict[str, dict[str, np.ndarray]] = {}
    for fmt, spec in SINGLE.items():
        count = spec[0]
        m = int(count * 1.6)
        online = rng.random(m) < spec[1]
        spread = pop ** REGION_EXPONENT.get(fmt, DEFAULT_REGION_EXPONENT)
        region = np.where(online, -1, rng.choice(n_reg, m, p=spread / spread.sum())).astype(np.int16)
        main = np.where(rng.random(m) < 0.2, rng.choice(base, m), rng.choice(tech, m))
        w = _weights(rng, m, k, main, soft if fmt in ("hackathon", "project_school", "accelerator") else tech)
        lw = np.asarray(spec[7], dtype=np.float64)
        single_pool[fmt] = {
            "series": n_series + np.arange(m), "region": region, "weights": w,
            "level": rng.choice(5, m, p=lw / lw.sum()).astype(np.int8),
            "prestige": rng.normal(0.0, 0.8, m).astype(np.float32),
            "capacity": np.where(online & (fmt != "accelerator"), 0,
                                 rng.integers(spec[6][0], spec[6][1] + 1, m)).astype(np.int32),
        }
        n_series += m

    for season in SEASONS:
        sep1 = day(date(season, 9, 1))
        # Regional subject tracks: school stage (Oct) -> regional stage (Jan), offline in every region.
        n = subj_series.size
        school_start = sep1 + rng.integers(30, 56, n)
        regional_start = sep1 + rng.integers(122, 142, n)
        first = n_events
        subj = np.repeat(np.arange(len(SUBJECTS)), n_reg)
        w = np.zeros((n, k), dtype=np.float32)
        w[np.arange(n), [cidx[SUBJECTS[s]] for s in subj]] = 1.0
        common = {"series": subj_series.ravel(), "season": np.full(n, season), "format": np.full(n, F["olympiad"]),
                  "region": np.tile(np.arange(n_reg), len(SUBJECTS)), "capacity": np.zeros(n, np.int32),
                  "team_min": np.zeros(n), "team_max": np.zeros(n), "prestige": subj_prestige, "weights": w}
        add(**common, stage=np.zeros(n), level=np.full(n, L["school"]), reg_open=sep1 + rng.integers(0, 10, n),
            reg_deadline=school_start - 3, start=school_start, end=school_start, min_grade=np.full(n, 7),
            max_grade=np.full(n, 11), parent=np.full(n, -1), child=first + n + np.arange(n))
        add(**common, stage=np.ones(n), level=np.full(n, L["regional"]), reg_open=school_start + 10,
            reg_deadline=regional_start - 5, start=regional_start, end=regional_start + 1, min_grade=np.full(n, 9),
            max_grade=np.full(n, 11), parent=first + np.arange(n), child=np.full(n, -1))
        # Online profile olympiads: qualifier (two weeks of online rounds) -> online national final.
        n = len(PROFILES)
        q_start = sep1 + rng.integers(60, 91, n)
        f_start = sep1 + rng.integers(160, 201, n)
        first = n_events
        common = {"series": prof_series, "season": np.full(n, season), "format": np.full(n, F["olympiad"]),
                  "region": np.full(n, -1), "capacity": np.zeros(n, np.int32), "team_min": np.zeros(n),
                  "team_max": np.zeros(n), "prestige": prof_prestige, "weights": prof_w,
                  "min_grade": np.full(n, 8), "max_grade": np.full(n, 11)}
        add(**common, stage=np.zeros(n), level=np.full(n, L["regional"]), reg_open=sep1 + 20,
            reg_deadline=q_start - 1, start=q_start, end=q_start + 14, parent=np.full(n, -1),
            child=first + n + np.arange(n))
        add(**common, stage=np.ones(n), level=np.full(n, L["national"]), reg_open=q_start + 21,
            reg_deadline=f_start - 3, start=f_start, end=f_start + 1, parent=first + np.arange(n),
            child=np.full(n, -1))
        # Single editions drawn from each format's pool of series.
        for fmt, spec in SINGLE.items():
            pool = single_pool[fmt]
            m = len(pool["series"])
            pick = np.sort(rng.choice(m, min(spec[0], m), replace=False))
            n = len(pick)
            start = _month_days(rng, season, spec[2], n)
            dur = rng.integers(spec[3][0], spec[3][1] + 1, n)
            lo, hi = spec[8]
            team = fmt in ("hackathon", "accelerator")
            add(series=pool["series"][pick], season=np.full(n, season), stage=np.zeros(n), format=np.full(n, F[fmt]),
                level=pool["level"][pick], region=pool["region"][pick], reg_open=start - spec[4],
                reg_deadline=start - spec[5], start=start, end=start + dur - 1, min_grade=np.full(n, lo),
                max_grade=np.full(n, hi), capacity=pool["capacity"][pick], team_min=np.full(n, 2 if team else 0),
                team_max=np.full(n, 5 if team else 0), parent=np.full(n, -1), child=np.full(n, -1),
                prestige=pool["prestige"][pick], weights=pool["weights"][pick])

    cast = {"series": np.int32, "season": np.int16, "stage": np.int8, "format": np.int8, "level": np.int8,
            "region": np.int16, "reg_open": np.int32, "reg_deadline": np.int32, "start": np.int32, "end": np.int32,
            "min_grade": np.int8, "max_grade": np.int8, "capacity": np.int32, "team_min": np.int8,
            "team_max": np.int8, "parent": np.int32, "child": np.int32, "prestige": np.float32,
            "weights": np.float32}
    catalog = Catalog(**{name: np.concatenate(parts).astype(cast[name]) for name, parts in cols.items()})
    # Nothing starting after the world ends; a stage whose previous stage is gone goes too (none, by dates).
    keep = np.flatnonzero(catalog.start <= day(SIM_END))
    return catalog.take(keep)
