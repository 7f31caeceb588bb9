"""The monthly simulation: participants choose open events, events finish, results and skills follow."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recommender.synth.catalog import (
    Events,
    Mentors,
    Programs,
    ResourceCenters,
    Series,
    dense_weights,
    make_events,
    make_mentors,
    make_programs,
    make_resource_centers,
    make_series,
)
from recommender.synth.choice import ChoiceCoefficients, Chooser, choice_state, utility_blocks
from recommender.synth.config import SynthConfig
from recommender.synth.dates import month_of_season, month_starts, to_day
from recommender.synth.history import History, HistoryBuilder
from recommender.synth.population import Organizations, Population, competence_ids, make_population, region_table
from recommender.synth.results import Resolved, ResultCoefficients, resolve

# Relative activity per calendar month, September..August (holidays and exams are quiet).
MONTH_ACTIVITY = np.array([1.3, 1.3, 1.1, 0.9, 1.0, 1.1, 1.0, 0.8, 0.6, 0.4, 0.3, 0.5], dtype=np.float64)
MONTH_ACTIVITY = MONTH_ACTIVITY / MONTH_ACTIVITY.mean()
QUALIFIED_ACTIVITY = 1.5  # extra expected choices in a month when a qualified next stage is open

# Substream tags: every random draw comes from a stream keyed by (seed, tag, ...), so the world does not
# depend on the order in which regions or chunks are processed.
_POPULATION, _CENTERS, _SERIES, _EVENTS, _PROGRAMS, _MENTORS, _ACTIVITY, _CHOICE, _CAPACITY, _RESULTS = range(10)


def stream(seed: int, *keys: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=tuple(keys))))


@dataclass
class World:
    """A generated world: its static parts, its history and the truth behind them."""

    config: SynthConfig
    population: Population
    organizations: Organizations
    resource_centers: ResourceCenters
    series: Series
    events: Events
    programs: Programs
    mentors: Mentors
    choice_coefficients: ChoiceCoefficients
    result_coefficients: ResultCoefficients
    history: History
    results: Resolved  # all resolved registrations, aligned with history.res_* (teams: all teams)

    @property
    def mentor_weights(self) -> np.ndarray:
        return dense_weights(self.mentors.comp_idx, self.mentors.comp_w, len(competence_ids()))


def chooser(
    population: Population, events: Events, series: Series, mentor_weights: np.ndarray, coef: ChoiceCoefficients
) -> Chooser:
    return Chooser(
        region=population.region, settlement=population.settlement, school=population.school,
        birth_year=population.birth_year, interest=population.interest, events=events,
        log_popularity=series.log_popularity[events.series], mentor_weights=mentor_weights, coef=coef,
        n_regions=len(region_table()),
    )


def age_growth(coef: ResultCoefficients, interest: np.ndarray) -> np.ndarray:
    """Skill gained every September from growing older, more in what one is interested in."""
    rel = interest / interest.max(axis=1, keepdims=True)
    return (coef.age_growth * (0.3 + 0.7 * rel)).astype(np.float32)


def _pick(rng: np.random.Generator, utility: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) of each row's top-`wanted` by utility + Gumbel noise: softmax draws without replacement."""
    n, m = utility.shape
    u = rng.random((n, m), dtype=np.float32)
    noisy = utility - np.log(-np.log(np.maximum(u, np.float32(1e-12))))
    available = np.isfinite(utility).sum(axis=1)
    k = np.minimum(wanted, available)
    kmax = int(k.max()) if n else 0
    if kmax == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if kmax < m:
        top = np.argpartition(-noisy, kmax - 1, axis=1)[:, :kmax]
    else:
        top = np.broadcast_to(np.arange(m), (n, m)).copy()
    order = np.argsort(-np.take_along_axis(noisy, top, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    keep = np.arange(top.shape[1])[None, :] < k[:, None]
    rows = np.broadcast_to(np.arange(n)[:, None], top.shape)
    return rows[keep], top[keep]


def simulate(cfg: SynthConfig) -> World:
    """Generate the whole world for a config: same config, same world."""
    seed = cfg.seed
    population, orgs = make_population(cfg, stream(seed, _POPULATION))
    region_counts = np.bincount(population.region, minlength=len(region_table()))
    centers = make_resource_centers(cfg, stream(seed, _CENTERS), region_counts)
    series = make_series(cfg, stream(seed, _SERIES), orgs, centers)
    events = make_events(cfg, stream(seed, _EVENTS), series)
    programs = make_programs(cfg, stream(seed, _PROGRAMS))
    mentors = make_mentors(cfg, stream(seed, _MENTORS))
    k = len(competence_ids())
    mentor_w = dense_weights(mentors.comp_idx, mentors.comp_w, k)
    choice_coef = ChoiceCoefficients()
    result_coef = ResultCoefficients()
    ch = chooser(population, events, series, mentor_w, choice_coef)
    teamwork = competence_ids().index("teamwork")

    skill = population.skill0.copy()
    yearly = age_growth(result_coef, population.interest)
    mentor_load = np.zeros(mentors.n, dtype=np.int32)
    builder = HistoryBuilder()
    resolved_parts: list[Resolved] = []
    by_end = np.argsort(events.end, kind="stable")
    resolved_upto = 0
    order = np.argsort(population.region, kind="stable")
    bounds = np.searchsorted(population.region[order], np.arange(len(region_table()) + 1))
    end_day = to_day(cfg.end_date)

    def finish_events_before(day: int, step: int) -> None:
        nonlocal resolved_upto
        stop = int(np.searchsorted(events.end[by_end], day, side="left"))
        if stop <= resolved_upto:
            return
        batch = np.zeros(events.n, dtype=bool)
        batch[by_end[resolved_upto:stop]] = True
        resolved_upto = stop
        h = builder.view()
        sel = batch[h.reg_event]
        if not sel.any():
            return
        out = resolve(
            stream(seed, _RESULTS, step), result_coef, events, h.reg_participant[sel], h.reg_event[sel], skill,
            population.learning, population.school, population.region, mentors, mentor_w, mentor_load,
            builder.n_teams, teamwork,
        )
        builder.add_results(out.participant, out.event, events.end[out.event], out.result, out.team)
        builder.add_teams(out.team_mentor)
        resolved_parts.append(out)

    months = month_starts(cfg.start_date, cfg.end_date)
    for step, day in enumerate(months):
        month_index = month_of_season(day)
        if month_index == 0 and step > 0:
            skill += yearly  # a new academic year
            mentor_load[:] = 0
        finish_events_before(day, step)
        state = choice_state(ch, builder.view(), day)
        lam = population.activity * (MONTH_ACTIVITY[month_index] / 12.0)
        # Someone who qualified for a next stage is much more likely to act this month at all; which
        # event they pick is still the choice model's call (the stage has a large utility bonus).
        np.add.at(lam, state.qual_p, QUALIFIED_ACTIVITY)
        wanted = stream(seed, _ACTIVITY, step).poisson(lam).astype(np.int64)
        picks_p: list[np.ndarray] = []
        picks_e: list[np.ndarray] = []
        for r in range(len(region_table())):
            members = order[bounds[r] : bounds[r + 1]]
            active = members[wanted[members] > 0]
            if len(active) == 0:
                continue
            rng = stream(seed, _CHOICE, step, r)
            for block in utility_blocks(ch, state, r, active, cfg.chunk_cells):
                rows, cols = _pick(rng, block.utility, wanted[block.participants])
                picks_p.append(block.participants[rows])
                picks_e.append(block.events[cols])
        if not picks_p:
            continue
        p = np.concatenate(picks_p)
        e = np.concatenate(picks_e)
        # Capacity: when an event is oversubscribed this month, a random subset gets in.
        rng = stream(seed, _CAPACITY, step)
        h = builder.view()
        used = np.bincount(h.reg_event, minlength=events.n)
        srt = np.lexsort((rng.random(len(e)), e))
        se = e[srt]
        first = np.r_[True, se[1:] != se[:-1]] if len(se) else np.zeros(0, bool)
        run_start = np.maximum.accumulate(np.where(first, np.arange(len(se)), 0))
        cum = np.arange(len(se)) - run_start
        cap = events.capacity[se]
        ok = (cap == 0) | (used[se] + cum < cap)
        keep = np.sort(srt[ok])
        builder.add_registrations(p[keep], e[keep], day)
    finish_events_before(end_day, len(months))

    history = builder.view()
    results = _concat_resolved(resolved_parts)
    return World(
        config=cfg, population=population, organizations=orgs, resource_centers=centers, series=series,
        events=events, programs=programs, mentors=mentors, choice_coefficients=choice_coef,
        result_coefficients=result_coef, history=history, results=results,
    )


def _concat_resolved(parts: list[Resolved]) -> Resolved:
    names = list(Resolved.__dataclass_fields__)
    if not parts:
        empty = {n: np.zeros(0, np.float32) for n in names}
        return Resolved(**empty)
    return Resolved(**{n: np.concatenate([getattr(part, n) for part in parts]) for n in names})
