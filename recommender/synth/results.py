"""Results of finished events (item-response style), team formation, mentor effects and skill growth."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from recommender.columns import EVENT_FORMATS, ROLES
from recommender.synth.catalog import Events, Mentors
from recommender.synth.history import DROPPED, RESULT_CODE

SCORED_FORMATS = ("olympiad", "contest")
COMPLETION_ONLY_FORMATS = ("course", "camp")  # no winners, only completed / participant
ROLE_CODE = {name: i for i, name in enumerate(ROLES)}


@dataclass(frozen=True)
class ResultCoefficients:
    """The known laws of performance, team success, mentor effect and growth."""

    noise: float = 0.6  # sd of a unit's (person's or team's) performance noise at one event
    drop_rate: float = 0.04  # individual events only; teams finish together
    team_complement: float = 0.5  # x (best member per competence, weighted) - (mean member fit)
    team_teamwork: float = 0.25  # x mean teamwork skill of the members
    team_chemistry_sd: float = 0.3  # sd of a team's unexplained chemistry
    mentor_base: float = 0.5  # mentor effect = quality x (mentor_base + fit of mentor to event)
    mentor_seek: float = 0.45  # share of teams that look for a mentor
    mentor_candidates: int = 6  # mentors a team looks at before picking the best fitting one
    growth_by_format: dict[str, float] = field(
        default_factory=lambda: {
            "olympiad": 0.05, "hackathon": 0.08, "project_school": 0.12, "contest": 0.04, "course": 0.15,
            "camp": 0.12, "conference": 0.05, "accelerator": 0.15,
        }
    )
    growth_per_level: float = 0.1  # higher levels teach more
    team_growth: float = 0.5  # x positive team effect
    mentor_growth: float = 1.0  # x mentor effect
    age_growth: float = 0.08  # every September: x (0.3 + 0.7 x relative interest)
    # Percentile cut-offs of the ranking within an event (from the top).
    winner: float = 0.04
    prize_winner: float = 0.14
    finalist: float = 0.30
    completed: float = 0.70

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class Resolved:
    """One batch of finished events: a row per registration, and the teams formed."""

    participant: np.ndarray  # int32
    event: np.ndarray  # int32
    result: np.ndarray  # int8
    role: np.ndarray  # int8
    team: np.ndarray  # int32 global team number, -1 individual
    rank: np.ndarray  # int32, 0 = none
    score: np.ndarray  # float32, NaN = none
    performance: np.ndarray  # float32, the latent performance (truth)
    growth: np.ndarray  # float32: skill gain, spread over the event's competences by their weights
    team_event: np.ndarray  # int32 per new team
    team_mentor: np.ndarray  # int32 per new team, -1 none
    team_effect: np.ndarray  # float32 per new team: the true team effect (strength + chemistry)
    team_chemistry: np.ndarray  # float32 per new team
    mentor_effect: np.ndarray  # float32 per new team, 0 without a mentor
    team_performance: np.ndarray  # float32 per new team


def mentor_effect(coef: ResultCoefficients, quality: np.ndarray, fit: np.ndarray) -> np.ndarray:
    """True effect of a mentor on a team's performance: quality, more when the mentor fits the event."""
    return (quality * (coef.mentor_base + fit)).astype(np.float32)


def team_strength(
    coef: ResultCoefficients, member_skill: np.ndarray, starts: np.ndarray, event_w: np.ndarray, teamwork: int
) -> tuple[np.ndarray, np.ndarray]:
    """(mean member fit, structural team effect) of teams whose members are contiguous rows from `starts`.

    member_skill: [n, K] skills of members sorted by team; event_w: [T, K] weights of each team's event.
    The structural effect rewards complementary members (coverage of the event's competences by the best
    member in each) and teamwork; a team's true effect adds its chemistry to this.
    """
    counts = np.diff(np.append(starts, len(member_skill)))
    team_of_row = np.repeat(np.arange(len(starts)), counts)
    fit = (member_skill * event_w[team_of_row]).sum(axis=1)
    base = np.add.reduceat(fit, starts) / counts
    coverage = (np.maximum.reduceat(member_skill, starts, axis=0) * event_w).sum(axis=1)
    tw = np.add.reduceat(member_skill[:, teamwork], starts) / counts
    effect = coef.team_complement * (coverage - base) + coef.team_teamwork * tw
    return base.astype(np.float32), effect.astype(np.float32)


def _form_teams(
    rng: np.random.Generator, e: np.ndarray, school: np.ndarray, team_min: np.ndarray, team_max: np.ndarray
) -> np.ndarray:
    """Team number (0..T-1, ordered by event) of each registrant of a team event.

    Registrants of an event are grouped with schoolmates first (sorted by school), cut into teams of a
    size drawn per event; a last fragment below the minimum joins the previous team.
    """
    order = np.lexsort((rng.random(len(e)), school, e))
    se = e[order]
    new_group = np.r_[True, se[1:] != se[:-1]]
    starts = np.flatnonzero(new_group)
    counts = np.diff(np.append(starts, len(se)))
    group = np.cumsum(new_group) - 1
    pos = np.arange(len(se)) - starts[group]
    tmin = team_min[se[starts]].astype(np.int64)
    tmax = team_max[se[starts]].astype(np.int64)
    size = tmin + (rng.random(len(starts)) * (tmax - 2 * tmin + 2)).astype(np.int64)
    n_full = counts // size
    frag = counts - n_full * size
    local = pos // size[group]
    merge = (frag > 0) & (frag < tmin) & (n_full >= 1)
    local = np.where(merge[group] & (local == n_full[group]), local - 1, local)
    key = group.astype(np.int64) * 1_000_000 + local
    _, team_sorted = np.unique(key, return_inverse=True)
    team = np.empty(len(e), dtype=np.int64)
    team[order] = team_sorted
    return team


def _assign_mentors(
    rng: np.random.Generator,
    coef: ResultCoefficients,
    mentors: Mentors,
    mentor_w: np.ndarray,
    mentor_load: np.ndarray,
    team_region: np.ndarray,
    team_w: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """(mentor or -1, fit) per team: some teams seek one among regional and online mentors, capacity kept."""
    t = len(team_region)
    mentor = np.full(t, -1, dtype=np.int64)
    fit = np.zeros(t, dtype=np.float32)
    seeking = np.flatnonzero(rng.random(t) < coef.mentor_seek)
    if len(seeking) == 0 or mentors.n == 0:
        return mentor, fit
    n_regions = int(max(mentors.region.max(), team_region.max())) + 1
    local = np.flatnonzero(~mentors.online)
    local = local[np.argsort(mentors.region[local], kind="stable")]
    bounds = np.searchsorted(mentors.region[local], np.arange(n_regions + 1))
    online = np.flatnonzero(mentors.online)
    r = team_region[seeking]
    n_local = bounds[r + 1] - bounds[r]
    pool = n_local + len(online)
    draw = (rng.random((len(seeking), coef.mentor_candidates)) * pool[:, None]).astype(np.int64)
    is_local = draw < n_local[:, None]
    cand = np.where(
        is_local,
        local[np.minimum(bounds[r][:, None] + draw, max(len(local) - 1, 0))] if len(local) else 0,
        online[np.clip(draw - n_local[:, None], 0, max(len(online) - 1, 0))] if len(online) else 0,
    )
    valid = pool[:, None] > 0
    cand_fit = np.einsum("tck,tk->tc", mentor_w[cand], team_w[seeking])
    cand_fit = np.where(valid, cand_fit, -np.inf)
    best = np.argmax(cand_fit, axis=1)
    chosen = cand[np.arange(len(seeking)), best]
    chosen_fit = cand_fit[np.arange(len(seeking)), best]
    # First come, first served: the mentor's remaining capacity this season.
    order = np.lexsort((rng.random(len(seeking)), chosen))
    cs = chosen[order]
    first = np.r_[True, cs[1:] != cs[:-1]]
    run_start = np.maximum.accumulate(np.where(first, np.arange(len(cs)), 0))
    cum = np.arange(len(cs)) - run_start
    ok = (mentor_load[cs] + cum < mentors.capacity[cs]) & np.isfinite(chosen_fit[order])
    got = seeking[order][ok]
    mentor[got] = cs[ok]
    fit[got] = chosen_fit[order][ok]
    np.add.at(mentor_load, cs[ok], 1)
    return mentor, fit


def _competition_rank(e: np.ndarray, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(1-based rank with ties sharing the best rank, number ranked) within each event; NaN values unranked."""
    ranked = ~np.isnan(value)
    rank = np.zeros(len(e), dtype=np.int64)
    n_event = np.zeros(len(e), dtype=np.int64)
    idx = np.flatnonzero(ranked)
    if len(idx) == 0:
        return rank, n_event
    order = idx[np.lexsort((-value[idx], e[idx]))]
    se, sv = e[order], value[order]
    new_event = np.r_[True, se[1:] != se[:-1]]
    new_run = new_event | np.r_[True, sv[1:] != sv[:-1]]
    positions = np.arange(len(order))
    event_start = np.maximum.accumulate(np.where(new_event, positions, 0))
    run_start = np.maximum.accumulate(np.where(new_run, positions, 0))
    rank[order] = run_start - event_start + 1
    sizes = np.diff(np.append(np.flatnonzero(new_event), len(order)))
    n_event[order] = np.repeat(sizes, sizes)
    return rank, n_event


def resolve(
    rng: np.random.Generator,
    coef: ResultCoefficients,
    events: Events,
    reg_p: np.ndarray,
    reg_e: np.ndarray,
    skill: np.ndarray,
    learning: np.ndarray,
    school: np.ndarray,
    region: np.ndarray,
    mentors: Mentors,
    mentor_w: np.ndarray,
    mentor_load: np.ndarray,
    first_team: int,
    teamwork: int,
) -> Resolved:
    """Results of the registrations of finished events; updates `skill` and `mentor_load` in place."""
    n = len(reg_p)
    fmt_names = np.array(EVENT_FORMATS)
    p, e = reg_p.astype(np.int64), reg_e.astype(np.int64)
    w = events.weights[e]
    fit = (skill[p] * w).sum(axis=1)
    perf = fit - events.difficulty[e] + rng.normal(0.0, coef.noise, n).astype(np.float32)
    team = np.full(n, -1, dtype=np.int64)
    team_rows = np.flatnonzero(events.is_team[e])
    t_event = np.zeros(0, np.int64)
    t_mentor = np.zeros(0, np.int64)
    t_effect = t_chem = t_meff = t_perf = np.zeros(0, np.float32)
    effect_row = np.zeros(n, dtype=np.float32)
    mentor_row = np.zeros(n, dtype=np.float32)
    if len(team_rows):
        local = _form_teams(rng, e[team_rows], school[p[team_rows]], events.team_min, events.team_max)
        order = np.argsort(local, kind="stable")
        rows = team_rows[order]
        tl = local[order]
        starts = np.flatnonzero(np.r_[True, tl[1:] != tl[:-1]])
        t_event = e[rows[starts]]
        tw = events.weights[t_event]
        base, structural = team_strength(coef, skill[p[rows]], starts, tw, teamwork)
        t_chem = rng.normal(0.0, coef.team_chemistry_sd, len(starts)).astype(np.float32)
        t_effect = (structural + t_chem).astype(np.float32)
        t_region = np.where(events.region[t_event] >= 0, events.region[t_event], region[p[rows[starts]]])
        t_mentor, m_fit = _assign_mentors(rng, coef, mentors, mentor_w, mentor_load, t_region, tw)
        quality = np.where(t_mentor >= 0, mentors.quality[np.maximum(t_mentor, 0)], 0.0)
        t_meff = mentor_effect(coef, quality, m_fit)
        t_perf = (
            base + t_effect + t_meff - events.difficulty[t_event] + rng.normal(0.0, coef.noise, len(starts))
        ).astype(np.float32)
        counts = np.diff(np.append(starts, len(rows)))
        perf[rows] = np.repeat(t_perf, counts)
        effect_row[rows] = np.repeat(t_effect, counts)
        mentor_row[rows] = np.repeat(t_meff, counts)
        team[rows] = first_team + np.repeat(np.arange(len(starts)), counts)

    dropped = (rng.random(n) < coef.drop_rate) & (team < 0)
    scored = np.isin(fmt_names[events.format[e]], SCORED_FORMATS)
    score = np.where(scored, np.round(100.0 / (1.0 + np.exp(-1.2 * perf))), np.nan)
    value = np.where(scored, score, perf).astype(np.float64)
    value[dropped] = np.nan
    rank, n_ranked = _competition_rank(e, value)
    pct = (rank - 1) / np.maximum(n_ranked, 1)
    result = np.select(
        [pct < coef.winner, pct < coef.prize_winner, pct < coef.finalist, pct < coef.completed],
        [RESULT_CODE["winner"], RESULT_CODE["prize_winner"], RESULT_CODE["finalist"], RESULT_CODE["completed"]],
        RESULT_CODE["participant"],
    )
    completion_only = np.isin(fmt_names[events.format[e]], COMPLETION_ONLY_FORMATS)
    result = np.where(
        completion_only, np.where(pct < coef.completed, RESULT_CODE["completed"], RESULT_CODE["participant"]), result
    )
    result = np.where(dropped, DROPPED, result).astype(np.int8)
    rank = np.where(dropped | completion_only, 0, rank)
    score = np.where(dropped, np.nan, score)

    growth_fmt = np.array([coef.growth_by_format[f] for f in EVENT_FORMATS], dtype=np.float32)
    growth = (
        growth_fmt[events.format[e]] * (1.0 + coef.growth_per_level * events.level[e]) * learning[p]
        * (1.0 + coef.team_growth * np.maximum(effect_row, 0.0) + coef.mentor_growth * mentor_row)
    ).astype(np.float32)
    growth[dropped] = 0.0
    np.add.at(skill, p, growth[:, None] * w)

    role = np.full(n, ROLE_CODE["participant"], dtype=np.int8)
    role[fmt_names[events.format[e]] == "conference"] = ROLE_CODE["author"]
    if len(team_rows):
        captain = rows[starts]  # the first member of each team (a schoolmate group's first) leads it
        role[captain] = ROLE_CODE["captain"]
    return Resolved(
        participant=p.astype(np.int32), event=e.astype(np.int32), result=result, role=role,
        team=team.astype(np.int32), rank=rank.astype(np.int32), score=score.astype(np.float32),
        performance=perf.astype(np.float32), growth=growth, team_event=t_event.astype(np.int32),
        team_mentor=t_mentor.astype(np.int32), team_effect=t_effect, team_chemistry=t_chem,
        mentor_effect=t_meff, team_performance=t_perf,
    )
