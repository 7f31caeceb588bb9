"""The catalog: recurring event series and their yearly editions and stages, resource centers, programs, mentors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np

from recommender.columns import EVENT_FORMATS, LEVELS
from recommender.synth.config import SynthConfig
from recommender.synth.dates import to_day
from recommender.synth.population import (
    ORG_COMPANY,
    ORG_UNIVERSITY,
    Organizations,
    competence_groups,
    competence_ids,
    competence_table,
    region_table,
)

FORMAT = {name: i for i, name in enumerate(EVENT_FORMATS)}
LEVEL = {name: i for i, name in enumerate(LEVELS)}
TEAM_SIZES = {"hackathon": (2, 5), "project_school": (2, 4), "accelerator": (2, 6)}
FORMAT_SHARE = {
    "olympiad": 0.20, "hackathon": 0.13, "project_school": 0.10, "contest": 0.15, "course": 0.20,
    "camp": 0.07, "conference": 0.08, "accelerator": 0.07,
}
STAGED_SHARE = {"olympiad": 0.35, "contest": 0.10}
# Duration in days (min, max) per format.
DURATION = {
    "olympiad": (1, 2), "hackathon": (2, 3), "project_school": (5, 14), "contest": (1, 20),
    "course": (30, 120), "camp": (7, 21), "conference": (1, 3), "accelerator": (45, 120),
}
# Start-month weights, September..August: camps in summer, the rest over the school year.
_SCHOOL_YEAR = (0.6, 1.2, 1.2, 0.8, 0.6, 1.1, 1.2, 1.1, 0.6, 0.0, 0.0, 0.0)
START_MONTHS = {f: _SCHOOL_YEAR for f in EVENT_FORMATS} | {
    "camp": (0.0, 0.2, 0.5, 0.1, 0.3, 0.2, 0.4, 0.2, 0.4, 1.6, 1.6, 0.8),
    "course": (1.5, 1.2, 0.8, 0.3, 1.0, 0.8, 0.5, 0.2, 0.0, 0.0, 0.0, 0.0),
}
# Mean latent difficulty per level: a national olympiad is much harder than a school one.
LEVEL_DIFFICULTY = np.array([-0.6, -0.1, 0.5, 1.2, 1.8], dtype=np.float32)
FORMAT_RU = {
    "olympiad": "Олимпиада", "hackathon": "Хакатон", "project_school": "Проектная школа", "contest": "Конкурс",
    "course": "Курс", "camp": "Смена", "conference": "Конференция", "accelerator": "Акселератор",
}
STAGE_RU = {"school": "школьный этап", "municipal": "муниципальный этап", "regional": "региональный этап",
            "national": "заключительный этап", "international": "международный этап"}
SOFT_FOR_TEAMS = ("teamwork", "entrepreneurship", "project_management", "leadership")


@dataclass
class Series:
    """A recurring event: one edition (or one chain of stages) every season."""

    format: np.ndarray  # int8
    level: np.ndarray  # int8: level of a one-stage series, level of the first stage otherwise
    n_stages: np.ndarray  # int8
    region: np.ndarray  # int16, -1 = online
    log_popularity: np.ndarray  # float32 (latent)
    difficulty: np.ndarray  # float32 (latent)
    comp_idx: np.ndarray  # int16 [S, 3], -1 padding
    comp_w: np.ndarray  # float32 [S, 3], rows sum to 1
    min_grade: np.ndarray  # int8
    max_grade: np.ndarray  # int8
    capacity: np.ndarray  # int32, 0 = unlimited
    organizer: np.ndarray  # int32 organization index
    resource_center: np.ndarray  # int32, -1 none
    title: np.ndarray  # object

    @property
    def n(self) -> int:
        return len(self.format)


@dataclass
class Events:
    """Editions: a new event every season (and one per stage), with the latent difficulty."""

    series: np.ndarray  # int32
    season: np.ndarray  # int16 (academic year start)
    stage: np.ndarray  # int8, 0-based
    format: np.ndarray  # int8
    level: np.ndarray  # int8
    region: np.ndarray  # int16, -1 = online
    reg_open: np.ndarray  # int32 day: registration opens (latent: not an AIF field)
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
    difficulty: np.ndarray  # float32
    benefit_level: np.ndarray  # int8, -1 none
    weights: np.ndarray  # float32 [E, K] dense competence weights (rows sum to 1)

    @property
    def n(self) -> int:
        return len(self.series)

    @property
    def online(self) -> np.ndarray:
        return self.region < 0

    @property
    def is_team(self) -> np.ndarray:
        return self.team_min > 0


@dataclass
class ResourceCenters:
    kind: np.ndarray  # int8, position in RESOURCE_CENTER_KINDS
    region: np.ndarray  # int16
    comp_idx: np.ndarray  # int16 [R, 3]
    comp_w: np.ndarray  # float32 [R, 3]


@dataclass
class Programs:
    university: np.ndarray  # object
    name: np.ndarray  # object
    comp_idx: np.ndarray  # int16 [P, 4]
    comp_w: np.ndarray  # float32 [P, 4]
    min_level: np.ndarray  # int8


@dataclass
class Mentors:
    region: np.ndarray  # int16
    online: np.ndarray  # bool
    capacity: np.ndarray  # int16: teams per season
    organization_type: np.ndarray  # int8, position in MENTOR_ORGANIZATION_TYPES
    tech_leader: np.ndarray  # bool
    comp_idx: np.ndarray  # int16 [M, 3]
    comp_w: np.ndarray  # float32 [M, 3]
    quality: np.ndarray  # float32: the latent true mentor effect

    @property
    def n(self) -> int:
        return len(self.region)


def dense_weights(comp_idx: np.ndarray, comp_w: np.ndarray, k: int) -> np.ndarray:
    """[n, K] matrix of the padded (index, weight) lists."""
    out = np.zeros((len(comp_idx), k), dtype=np.float32)
    rows = np.repeat(np.arange(len(comp_idx)), comp_idx.shape[1])
    cols = comp_idx.ravel()
    ok = cols >= 0
    np.add.at(out, (rows[ok], cols[ok]), comp_w.ravel()[ok])
    return out


def _pick_competences(
    rng: np.random.Generator, n: int, base_weights: np.ndarray, max_k: int, p_k: list[float]
) -> tuple[np.ndarray, np.ndarray]:
    """1..max_k distinct competences per row, drawn by weight, with rounded weights summing to 1."""
    k_count = rng.choice(np.arange(1, max_k + 1), n, p=p_k)
    keys = np.log(np.maximum(base_weights, 1e-9)) + rng.gumbel(size=base_weights.shape)
    top = np.argsort(-keys, axis=1)[:, :max_k].astype(np.int16)
    w = rng.gamma(2.0, 1.0, (n, max_k))
    w[np.arange(max_k)[None, :] >= k_count[:, None]] = 0.0
    w = w / w.sum(axis=1, keepdims=True)
    # Weights are written with two decimals: round here so the AIF text is exactly the truth.
    w = np.round(w, 2)
    w[:, 0] += 1.0 - w.sum(axis=1)
    w = np.round(w, 2)
    top[w <= 0] = -1
    w[w <= 0] = 0.0
    return top, w.astype(np.float32)


def make_series(
    cfg: SynthConfig, rng: np.random.Generator, orgs: Organizations, rc: ResourceCenters
) -> Series:
    comps = competence_ids()
    groups = competence_groups()
    target = cfg.n_events_per_season
    regions = region_table()
    n_draw = 2 * target + 50
    formats = np.array(list(FORMAT_SHARE))
    fshare = np.array(list(FORMAT_SHARE.values()))
    fmt = rng.choice(len(formats), n_draw, p=fshare / fshare.sum())
    online = rng.random(n_draw) < 0.2
    staged_p = np.array([STAGED_SHARE.get(str(f), 0.0) for f in formats])[fmt]
    staged = rng.random(n_draw) < staged_p
    # Regional chains: school -> municipal -> regional; online chains: regional -> national (-> international).
    n_stages = np.where(staged, np.where(online, rng.choice([2, 3], n_draw, p=[0.7, 0.3]), 3), 1)
    cut = int(np.searchsorted(np.cumsum(n_stages), target)) + 1
    fmt, online, staged, n_stages = fmt[:cut], online[:cut], staged[:cut], n_stages[:cut]
    s = cut
    # Offline series spread over regions by population, damped so small regions still host some.
    w = regions["population_k"].to_numpy(dtype=np.float64) ** 0.75
    region = np.where(online, -1, rng.choice(len(regions), s, p=w / w.sum())).astype(np.int16)
    level_regional = rng.choice(5, s, p=[0.3, 0.3, 0.3, 0.1, 0.0])
    level_online = rng.choice(5, s, p=[0.1, 0.1, 0.3, 0.4, 0.1])
    level = np.where(online, level_online, level_regional)
    level = np.where(staged, np.where(online, LEVEL["regional"], LEVEL["school"]), level).astype(np.int8)

    fmt_names = formats[fmt]
    olympiad_like = np.isin(fmt_names, ["olympiad", "contest"])
    base = np.where(groups == "subjects", 1.0, np.where(groups == "technology", 1.2, 0.15))[None, :].repeat(s, 0)
    base[olympiad_like] *= np.where(groups == "subjects", 4.0, 1.0)[None, :]
    comp_idx, comp_w = _pick_competences(rng, s, base, 3, [0.35, 0.4, 0.25])
    team_like = np.isin(fmt_names, ["hackathon", "accelerator"])
    # Team formats also train a soft competence: replace the last slot by one of them.
    soft = np.array([comps.index(c) for c in SOFT_FOR_TEAMS], dtype=np.int16)[rng.integers(0, 4, s)]
    has_room = comp_idx[:, 2] < 0
    slot = np.where(has_room, np.argmax(comp_idx < 0, axis=1), 2)
    rows = np.flatnonzero(team_like & ~np.any(comp_idx == soft[:, None], axis=1))
    comp_idx[rows, slot[rows]] = soft[rows]
    comp_w[rows, slot[rows]] = 0.0
    comp_w[rows] *= 0.75 / np.maximum(comp_w[rows].sum(axis=1, keepdims=True), 1e-9)
    comp_w[rows, slot[rows]] = 0.25
    comp_w = np.round(comp_w, 2)
    comp_w[:, 0] += 1.0 - comp_w.sum(axis=1)
    comp_w = np.round(comp_w, 2).astype(np.float32)

    log_pop = (rng.normal(0.0, 0.8, s) + 0.4 * online + 0.3 * (fmt_names == "olympiad")).astype(np.float32)
    difficulty = (LEVEL_DIFFICULTY[level] + rng.normal(0.0, 0.35, s)).astype(np.float32)
    min_grade = rng.choice(np.array([5, 7, 8, 9]), s, p=[0.35, 0.25, 0.2, 0.2])
    min_grade = np.where(fmt_names == "camp", np.minimum(min_grade, 6), min_grade)
    university_friendly = np.isin(fmt_names, ["hackathon", "accelerator", "conference"]) & (rng.random(s) < 0.3)
    max_grade = np.where(university_friendly, 13, 11).astype(np.int8)
    min_grade = np.where(university_friendly, 9, min_grade).astype(np.int8)

    # Capacity near the expected demand of an edition, scaled by popularity; online is unlimited.
    demand = cfg.participants * cfg.mean_events_per_season / target
    capacity = np.maximum(8, np.round(demand * np.exp(log_pop) * rng.uniform(0.8, 2.5, s))).astype(np.int32)
    capacity = np.where(online, 0, capacity).astype(np.int32)

    organizers = np.flatnonzero(np.isin(orgs.kind, [ORG_UNIVERSITY, ORG_COMPANY]))
    organizer = organizers[rng.integers(0, len(organizers), s)].astype(np.int32)
    regional_uni = np.flatnonzero(orgs.kind == ORG_UNIVERSITY)
    use_uni = ~online & (rng.random(s) < 0.5)
    organizer = np.where(use_uni, regional_uni[np.maximum(region, 0)], organizer).astype(np.int32)
    resource_center = np.full(s, -1, dtype=np.int32)
    rc_order = np.argsort(rc.region, kind="stable")
    rc_bounds = np.searchsorted(rc.region[rc_order], np.arange(len(regions) + 1))
    want_rc = ~online & (rng.random(s) < 0.3)
    counts = rc_bounds[np.maximum(region, 0) + 1] - rc_bounds[np.maximum(region, 0)]
    pick = rc_bounds[np.maximum(region, 0)] + (rng.random(s) * np.maximum(counts, 1)).astype(np.int64)
    resource_center = np.where(want_rc & (counts > 0), rc_order[np.minimum(pick, len(rc_order) - 1)], -1)

    names_ru = regions["name_ru"].to_numpy(dtype=object)
    comp_names = reference_names(comps)
    title = np.array(
        [
            f"{FORMAT_RU[str(fmt_names[i])]} «{comp_names[comp_idx[i, 0]]}»"
            + ("" if region[i] < 0 else f" ({names_ru[region[i]]})")
            + f" №{i + 1}"
            for i in range(s)
        ],
        dtype=object,
    )
    return Series(
        format=fmt.astype(np.int8), level=level, n_stages=n_stages.astype(np.int8), region=region,
        log_popularity=log_pop, difficulty=difficulty, comp_idx=comp_idx, comp_w=comp_w,
        min_grade=min_grade, max_grade=max_grade, capacity=capacity, organizer=organizer,
        resource_center=resource_center.astype(np.int32), title=title,
    )


def reference_names(comps: list[str]) -> list[str]:
    table = competence_table().set_index("competence_id")
    return [str(table.loc[c, "name_ru"]) for c in comps]


def make_events(cfg: SynthConfig, rng: np.random.Generator, series: Series) -> Events:
    """Every series gets a new edition per season; staged series get a chain with parent links."""
    k = len(competence_ids())
    seasons = np.arange(cfg.start_year, cfg.start_year + cfg.seasons)
    # One row per (season, series, stage), built in that order so ids are stable and readable.
    s_idx = np.tile(np.repeat(np.arange(series.n), series.n_stages), len(seasons))
    stage = np.tile(np.concatenate([np.arange(n) for n in series.n_stages]), len(seasons)).astype(np.int8)
    season = np.repeat(seasons, int(series.n_stages.sum())).astype(np.int16)
    e = len(s_idx)
    fmt = series.format[s_idx]
    fmt_names = np.array(EVENT_FORMATS)[fmt]
    level = np.minimum(series.level[s_idx] + stage, LEVEL["international"]).astype(np.int8)

    sept1 = np.array([to_day(date(int(y), 9, 1)) for y in seasons])[season - cfg.start_year]
    # Single-stage editions: a start month by format, then a day in it.
    month_w = np.array([START_MONTHS[str(f)] for f in EVENT_FORMATS])
    month_p = month_w / month_w.sum(axis=1, keepdims=True)
    u = rng.random(e)
    month = (u[:, None] > np.cumsum(month_p[fmt], axis=1)).sum(axis=1)
    month = np.minimum(month, 11)
    month_start = (np.asarray(sept1, dtype="datetime64[D]").astype("datetime64[M]") + month).astype("datetime64[D]")
    first_day = np.where(month == 0, 19, 0)
    start = month_start.astype(np.int64) + first_day + rng.integers(0, 27, e)
    dmin = np.array([DURATION[str(f)][0] for f in EVENT_FORMATS])[fmt]
    dmax = np.array([DURATION[str(f)][1] for f in EVENT_FORMATS])[fmt]
    duration = dmin + (rng.random(e) * (dmax - dmin + 1)).astype(np.int64)
    deadline = start - rng.integers(3, 15, e)
    reg_open = deadline - rng.integers(32, 76, e)

    # Staged chains: stage 0 in October; each next stage opens registration after the previous ends,
    # so only results already known can qualify someone.
    parent = np.full(e, -1, dtype=np.int64)
    chained = series.n_stages[s_idx] > 1
    first = chained & (stage == 0)
    start = np.where(first, sept1 + 30 + rng.integers(0, 25, e), start)
    duration = np.where(chained, rng.integers(1, 3, e), duration)
    deadline = np.where(first, start - rng.integers(3, 10, e), deadline)
    reg_open = np.where(first, deadline - rng.integers(32, 50, e), reg_open)
    end = start + duration - 1
    max_stage = int(series.n_stages.max())
    for st in range(1, max_stage):
        rows = np.flatnonzero(chained & (stage == st))
        prev = rows - 1  # the previous stage of the same edition is the previous row
        parent[rows] = prev
        reg_open[rows] = end[prev] + rng.integers(2, 7, len(rows))
        deadline[rows] = reg_open[rows] + rng.integers(32, 46, len(rows))
        start[rows] = deadline[rows] + rng.integers(3, 11, len(rows))
        end[rows] = start[rows] + duration[rows] - 1
    child = np.full(e, -1, dtype=np.int64)
    child[parent[parent >= 0]] = np.flatnonzero(parent >= 0)

    team_min = np.zeros(e, dtype=np.int8)
    team_max = np.zeros(e, dtype=np.int8)
    for name, (lo, hi) in TEAM_SIZES.items():
        team_min[fmt_names == name] = lo
        team_max[fmt_names == name] = hi
    # Later stages take every qualified participant; first stages keep the series' capacity.
    capacity = np.where(stage > 0, 0, series.capacity[s_idx]).astype(np.int32)
    capacity = np.where(
        capacity > 0, np.maximum(8, np.round(capacity * rng.uniform(0.85, 1.15, e))), 0
    ).astype(np.int32)
    difficulty = (series.difficulty[s_idx] + 0.6 * stage + rng.normal(0.0, 0.15, e)).astype(np.float32)
    is_final = chained & (stage == series.n_stages[s_idx] - 1)
    benefit = np.full(e, -1, dtype=np.int8)
    top_olympiad = (fmt_names == "olympiad") & (level >= LEVEL["national"])
    benefit[top_olympiad & is_final] = 1
    benefit[top_olympiad & ~chained] = 2
    return Events(
        series=s_idx.astype(np.int32), season=season, stage=stage, format=fmt.astype(np.int8), level=level,
        region=series.region[s_idx], reg_open=reg_open.astype(np.int32), reg_deadline=deadline.astype(np.int32),
        start=start.astype(np.int32), end=end.astype(np.int32), min_grade=series.min_grade[s_idx],
        max_grade=series.max_grade[s_idx], capacity=capacity, team_min=team_min, team_max=team_max,
        parent=parent.astype(np.int32), child=child.astype(np.int32), difficulty=difficulty,
        benefit_level=benefit, weights=dense_weights(series.comp_idx[s_idx], series.comp_w[s_idx], k),
    )




RC_KIND_P = (0.3, 0.15, 0.1, 0.2, 0.2, 0.05)  # kvantorium, cmit, fablab, school_circle, it_cube, other


def make_resource_centers(cfg: SynthConfig, rng: np.random.Generator, region_counts: np.ndarray) -> ResourceCenters:
    """One to six centers per region (Кванториум, IT-куб, ЦМИТ, ...), more where more participants live."""
    per_region = np.clip(1 + region_counts // 20_000, 1, 6)
    region = np.repeat(np.arange(len(per_region)), per_region).astype(np.int16)
    n = len(region)
    groups = competence_groups()
    base = np.where(groups == "technology", 1.0, 0.2)[None, :].repeat(n, 0)
    comp_idx, comp_w = _pick_competences(rng, n, base, 3, [0.3, 0.4, 0.3])
    kind = rng.choice(len(RC_KIND_P), n, p=RC_KIND_P).astype(np.int8)
    return ResourceCenters(kind=kind, region=region, comp_idx=comp_idx, comp_w=comp_w)


UNIVERSITIES = (
    "Национальный исследовательский университет «Синтез»", "Технический университет «Вектор»",
    "Физико-технический институт «Импульс»", "Университет информационных технологий «Код»",
    "Государственный университет «Горизонт»", "Политехнический университет «Орбита»",
    "Институт биотехнологий «Геном»", "Аэрокосмический университет «Полёт»",
)


def make_programs(cfg: SynthConfig, rng: np.random.Generator) -> Programs:
    """Admissions programs with weighted competence requirements and a minimal achievement level."""
    n = cfg.programs
    groups = competence_groups()
    base = np.where(groups == "soft", 0.2, 1.0)[None, :].repeat(n, 0)
    comp_idx, comp_w = _pick_competences(rng, n, base, 4, [0.0, 0.4, 0.4, 0.2])
    names = reference_names(competence_ids())
    university = np.array(UNIVERSITIES, dtype=object)[rng.integers(0, len(UNIVERSITIES), n)]
    name = np.array([f"{names[comp_idx[i, 0]]} и {names[comp_idx[i, 1]].lower()}" for i in range(n)], dtype=object)
    min_level = rng.choice(np.array([LEVEL["regional"], LEVEL["national"]]), n, p=[0.7, 0.3]).astype(np.int8)
    return Programs(university=university, name=name, comp_idx=comp_idx, comp_w=comp_w, min_level=min_level)


def make_mentors(cfg: SynthConfig, rng: np.random.Generator) -> Mentors:
    """Mentors with competences, reach and capacity, and a latent quality: the true mentor effect."""
    n = cfg.n_mentors
    pop = region_table()["population_k"].to_numpy(dtype=np.float64)
    region = rng.choice(len(pop), n, p=pop / pop.sum()).astype(np.int16)
    groups = competence_groups()
    base = np.where(groups == "technology", 1.5, np.where(groups == "subjects", 1.0, 0.3))[None, :].repeat(n, 0)
    comp_idx, comp_w = _pick_competences(rng, n, base, 3, [0.3, 0.45, 0.25])
    org_type = rng.choice(4, n, p=[0.35, 0.35, 0.25, 0.05]).astype(np.int8)
    tech_leader = rng.random(n) < np.where(org_type == 0, 0.3, 0.08)
    # Quality is mostly positive (mentoring helps) with a real spread: some mentors help a lot.
    quality = np.clip(rng.normal(0.45, 0.25, n) + 0.1 * tech_leader, -0.1, None).astype(np.float32)
    return Mentors(
        region=region, online=rng.random(n) < 0.3, capacity=rng.integers(1, 5, n).astype(np.int16),
        organization_type=org_type, tech_leader=tech_leader, comp_idx=comp_idx, comp_w=comp_w, quality=quality,
    )
