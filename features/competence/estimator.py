"""Competence rating: a skill per participant and competence, estimated with event difficulty from all results."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Literal, Self

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field
from scipy.special import ndtr

from recommender.columns import RESULT_RANK, Columns
from recommender.graph import AchievementsGraph

# Roles whose result is a performance (a mentor's or volunteer's row says nothing about their skill).
PERFORMING_ROLES = ("participant", "captain", "author")
# 1.702 x logistic ~ standard normal cdf.
_LOGISTIC = 1.702
_NO_RANK = np.iinfo(np.int64).max // 4
_SQRT_2PI = float(np.sqrt(2.0 * np.pi))
# Covariates per state column: an intercept and two participation features (see `Participation.features`).
N_FEATURES = 3
# Pseudo-count of the smoothed participation share (log-odds feature).
_SHARE_PRIOR = 0.3


class RatingConfig(BaseModel):
    """Hyperparameters of the competence rating (defined once; flattened to MLflow params)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prior_sd: float = Field(1.0, gt=0, description="sd of a newcomer's skill around the newcomer mean")
    perf_sd: float = Field(0.6, gt=0, description="sd of one performance around the skill")
    drift_sd_per_year: float = Field(0.1, ge=0, description="sd a skill drifts per year without evidence (recency)")
    newcomer_memory: float = Field(2000.0, gt=0, description="newcomer results the newcomer means remember")
    grid: int = Field(96, ge=16, description="grid points per event for the rank -> performance inversion")
    general_share: float = Field(0.3, gt=0, lt=1, description="share of skill variance that is general ability")
    covariates: bool = Field(True, description="newcomer means regress on participation share, volume and grade")
    covariate_share: float = Field(0.5, ge=0, lt=1, description="share of the prior variance the covariates explain")
    covariate_ridge: float = Field(5.0, gt=0, description="pseudo-results holding covariate slopes at zero")
    growth_per_result: float = Field(0.0, ge=0, description="skill gain per result before growth is estimated")
    growth_passes: int = Field(1, ge=0, le=5, description="fit passes that estimate the growth per event format")
    growth_ridge: float = Field(100.0, gt=0, description="exposure at which a format's growth is half its own estimate")


@dataclass
class SkillState:
    """The rating state: mean, variance, last evidence day and evidence per (participant, state column).

    Columns are the competences, then the general ability. `coef` holds the newcomer-mean regression
    of every column on its covariates, `stats_a` / `stats_b` its forgetting sufficient statistics.
    """

    mu: np.ndarray  # float64 [participants, columns]
    var: np.ndarray
    last_day: np.ndarray  # int32, -1 = never seen
    evidence: np.ndarray  # float32: sum of loadings observed
    coef: np.ndarray  # float64 [columns, N_FEATURES]
    stats_a: np.ndarray  # float64 [columns, N_FEATURES, N_FEATURES]
    stats_b: np.ndarray  # float64 [columns, N_FEATURES]

    @classmethod
    def empty(cls, n_participants: int, prior_var: np.ndarray) -> SkillState:
        k = len(prior_var)
        return cls(
            mu=np.zeros((n_participants, k)),
            var=np.broadcast_to(prior_var, (n_participants, k)).copy(),
            last_day=np.full((n_participants, k), -1, dtype=np.int32),
            evidence=np.zeros((n_participants, k), dtype=np.float32),
            coef=np.zeros((k, N_FEATURES)),
            stats_a=np.zeros((k, N_FEATURES, N_FEATURES)),
            stats_b=np.zeros((k, N_FEATURES)),
        )


@dataclass(frozen=True)
class PerformanceRows:
    """Achievement rows that are performances, with everything an update needs, sorted by day."""

    row: np.ndarray  # position in graph.achievements
    participant: np.ndarray
    event: np.ndarray
    unit: np.ndarray  # global unit id (an individual or a team at an event)
    day: np.ndarray  # the event's day (its earliest achievement date)
    order_key: np.ndarray  # lower = better within the event


def _days(dates: pd.Series) -> np.ndarray:
    return np.asarray(dates.to_numpy(dtype="datetime64[D]").astype(np.int64), dtype=np.int64)


def _academic_years(days: np.ndarray | int) -> np.ndarray:
    """The year each day's academic year (September to August) starts in."""
    d = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    year = d.astype("datetime64[Y]").astype(np.int64) + 1970
    month = d.astype("datetime64[M]").astype(np.int64) % 12 + 1
    return np.asarray(year - (month < 9), dtype=np.int64)


def _performing(a: pd.DataFrame) -> np.ndarray:
    keep = np.ones(len(a), dtype=bool)
    if Columns.Role in a.columns:
        keep &= a[Columns.Role].astype("string").fillna("participant").isin(PERFORMING_ROLES).to_numpy()
    return keep


def event_days(graph: AchievementsGraph) -> np.ndarray:
    """Day number of each event: its earliest achievement date (else its start date)."""
    a = graph.achievements
    day = np.full(graph.n_events, np.iinfo(np.int64).max, dtype=np.int64)
    if len(a):
        np.minimum.at(day, a["event_idx"].to_numpy(), _days(a[Columns.Date]))
    missing = day == np.iinfo(np.int64).max
    if missing.any() and Columns.StartDate in graph.events.columns:
        start = graph.events[Columns.StartDate]
        known = start.notna().to_numpy()
        fill = np.zeros(graph.n_events, dtype=np.int64)
        fill[known] = _days(start[known])
        day[missing & known] = fill[missing & known]
    return day


def performance_rows(graph: AchievementsGraph) -> PerformanceRows:
    """The rows that measure skill: performing roles with a result on the ladder above `registered`."""
    a = graph.achievements
    rr = a["result_rank"].to_numpy(np.int64)
    keep = (rr >= RESULT_RANK["participant"]) & _performing(a)
    rows = np.flatnonzero(keep)
    p = a["participant_idx"].to_numpy(np.int64)[rows]
    e = a["event_idx"].to_numpy(np.int64)[rows]
    if Columns.Rank in a.columns:
        rank = a[Columns.Rank].astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)[rows]
    else:
        rank = np.full(len(rows), np.nan)
    rank = np.where(np.isfinite(rank), rank, _NO_RANK).astype(np.int64)
    # Ladder first (a winner beats a finalist), rank within a ladder step (unranked after ranked).
    ranked = rank < _NO_RANK
    top = int(rank[ranked].max()) + 1 if ranked.any() else 0
    key = (len(RESULT_RANK) - rr[rows]) * (top + 1) + np.where(ranked, rank, top)
    team = a["team_idx"].to_numpy(np.int64)[rows]
    # One row per participant and event (a captain listed twice counts once): keep the best.
    order = np.lexsort((key, e, p))
    first = np.ones(len(order), dtype=bool)
    first[1:] = (p[order][1:] != p[order][:-1]) | (e[order][1:] != e[order][:-1])
    sel = order[first]
    rows, p, e, key, team = rows[sel], p[sel], e[sel], key[sel], team[sel]
    # A team is one unit with the best key among its members (they share the result).
    who = np.where(team >= 0, team + graph.n_participants, p)  # a team, or the participant alone
    _, unit = np.unique(e * (graph.n_participants + len(graph.teams) + 1) + who, return_inverse=True)
    unit = unit.ravel()
    best = np.full(unit.max() + 1 if len(unit) else 0, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(best, unit, key)
    day = event_days(graph)[e]
    by_day = np.argsort(day, kind="stable")
    return PerformanceRows(
        row=rows[by_day], participant=p[by_day], event=e[by_day], unit=unit[by_day], day=day[by_day],
        order_key=best[unit][by_day],
    )


def _competence_loadings(graph: AchievementsGraph) -> sp.csr_matrix:
    """Events x competences: weights normalized to sum to 1 per event."""
    ec = graph.event_competence().astype(np.float64).tocsr()
    total = np.asarray(ec.sum(axis=1)).ravel()
    scale = np.divide(1.0, total, out=np.zeros_like(total), where=total > 0)
    out = sp.csr_matrix(sp.diags(scale) @ ec)
    out.sort_indices()
    return out


def _entry_keys(matrix: sp.csr_matrix) -> np.ndarray:
    """Sorted row * n_cols + col of every stored entry of a CSR matrix with sorted indices."""
    rows = np.repeat(np.arange(matrix.shape[0], dtype=np.int64), np.diff(matrix.indptr))
    return np.asarray(rows * matrix.shape[1] + matrix.indices, dtype=np.int64)


def _lookup(matrix: sp.csr_matrix, keys: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """matrix[rows[i], cols[i]] for many pairs at once (0 where absent); `keys` from `_entry_keys`."""
    want = rows.astype(np.int64) * matrix.shape[1] + cols
    pos = np.minimum(np.searchsorted(keys, want), max(len(keys) - 1, 0))
    out = np.zeros(len(rows))
    if len(keys):
        found = keys[pos] == want
        out[found] = matrix.data[pos[found]]
    return out


def main_competence(graph: AchievementsGraph) -> np.ndarray:
    """Each event's main competence (the highest weight; the first listed on a tie); -1 when none."""
    ec = graph.event_competence().tocsr()
    main = np.full(graph.n_events, -1, dtype=np.int64)
    for i in range(graph.n_events):
        lo, hi = ec.indptr[i], ec.indptr[i + 1]
        if hi > lo:
            main[i] = ec.indices[lo + int(np.argmax(ec.data[lo:hi]))]
    return main


def event_formats(graph: AchievementsGraph) -> tuple[np.ndarray, list[str]]:
    """(format code per event, format names): growth is estimated per format."""
    if "format" not in graph.events.columns:
        return np.zeros(graph.n_events, dtype=np.int64), ["unknown"]
    codes, names = pd.factorize(graph.events["format"].astype("string").fillna("unknown"), sort=True)
    return np.asarray(codes, dtype=np.int64), [str(n) for n in names]


class Participation:
    """What participants chose to do, the covariates of newcomer means: competence loadings of their rows, grade.

    Counted from every row of a performing role (registrations too): choosing events of a competence
    says something about the interest in it, which goes with skill. `incremental=True` counts the rows
    dated strictly before the day given to `advance` (the prequential replay; a dense matrix updated as
    days pass); otherwise all rows are counted once into a sparse matrix (a fit on all data).
    """

    def __init__(self, graph: AchievementsGraph, load: sp.csr_matrix, *, incremental: bool) -> None:
        a = graph.achievements
        rows = np.flatnonzero(_performing(a))
        day = _days(a[Columns.Date])[rows]
        order = np.argsort(day, kind="stable")
        self._p = a["participant_idx"].to_numpy(np.int64)[rows][order]
        self._e = a["event_idx"].to_numpy(np.int64)[rows][order]
        self._day = day[order]
        self._done = 0
        self._load = load
        n_p, n_c = graph.n_participants, load.shape[1]
        self.incremental = incremental
        self._dense = np.zeros((n_p, n_c), dtype=np.float32) if incremental else None
        self._sparse = sp.csr_matrix((n_p, n_c))
        self._keys = _entry_keys(self._sparse)
        self.total = np.zeros(n_p, dtype=np.float32)
        self._column_totals = np.zeros(n_c)
        self.supply = np.full(n_c, 1.0 / max(n_c, 1))
        # grade(academic year Y) = base + Y * moves (NaN base: grade unknown).
        g0 = graph.grades_at(pd.Timestamp("2000-09-01"))
        self._grade_moves = np.nan_to_num(graph.grades_at(pd.Timestamp("2001-09-01")) - g0)
        self._grade_base = g0 - 2000 * self._grade_moves
        if not incremental:
            self.advance(np.inf)
            self._release_rows()

    def _release_rows(self) -> None:
        # A complete count needs its rows no more (a fitted model keeps the count, not the rows).
        self._p = self._e = self._day = np.empty(0, dtype=np.int64)
        self._done = 0

    def advance(self, day: float) -> None:
        """Count the rows dated strictly before `day` (only once for a non-incremental count)."""
        stop = int(np.searchsorted(self._day, day, side="left"))
        if stop <= self._done:
            return
        p, e = self._p[self._done:stop], self._e[self._done:stop]
        self._done = stop
        picked = sp.csr_matrix((np.ones(len(p)), (p, e)), shape=(len(self.total), self._load.shape[0]))
        added = (picked @ self._load).tocsr()
        added.sort_indices()
        if self._dense is None:
            self._sparse = added
            self._keys = _entry_keys(added)
        else:
            coo = added.tocoo()
            np.add.at(self._dense, (coo.row, coo.col), coo.data.astype(np.float32))
        self.total += np.asarray(added.sum(axis=1), dtype=np.float32).ravel()
        self._column_totals += np.asarray(added.sum(axis=0), dtype=np.float64).ravel()
        smoothed = self._column_totals + 1.0
        self.supply = smoothed / smoothed.sum()

    def frozen(self) -> Participation:
        """This count as a complete sparse one (what a fitted model keeps for unseen cells)."""
        if self._dense is None:
            return self
        out = copy.copy(self)
        out._sparse = sp.csr_matrix(self._dense, dtype=np.float64)
        out._sparse.sort_indices()
        out._keys = _entry_keys(out._sparse)
        out._dense = None
        out.incremental = False
        out._release_rows()
        return out

    def count(self, p: np.ndarray, c: np.ndarray) -> np.ndarray:
        if self._dense is not None:
            return np.asarray(self._dense[p, c], dtype=np.float64)
        return _lookup(self._sparse, self._keys, p, c)

    def features(self, p: np.ndarray, column: np.ndarray, day: int) -> np.ndarray:
        """[n, N_FEATURES] covariates of state cells (p, column) on `day`.

        Competence columns: the log-odds of the participant's smoothed share of that competence against
        its share among everyone's choices, and the log of its volume. General column: grade - 8 (0 when
        unknown) and the log of the participant's whole volume.
        """
        n_c = len(self.supply)
        x = np.ones((len(p), N_FEATURES))
        spec = column < n_c
        ps, cs = p[spec], column[spec]
        count = self.count(ps, cs)
        total = self.total[ps].astype(np.float64)
        x[spec, 1] = np.log((count + _SHARE_PRIOR) / (total + _SHARE_PRIOR * n_c)) - np.log(self.supply[cs])
        x[spec, 2] = np.log1p(count)
        pg = p[~spec]
        grade = self._grade_base[pg] + _academic_years(day) * self._grade_moves[pg]
        x[~spec, 1] = np.where(np.isfinite(grade), grade - 8.0, 0.0)
        x[~spec, 2] = np.log1p(self.total[pg].astype(np.float64))
        return x


def newcomer_means(coef: np.ndarray, participation: Participation | None, p: np.ndarray, column: np.ndarray,
                   day: int) -> np.ndarray:
    """The newcomer mean of state cells (p, column) on `day`: the covariate regression `coef` [columns, F]."""
    if participation is None:
        return np.asarray(coef[column, 0], dtype=np.float64)
    return np.einsum("nf,nf->n", participation.features(p, column, day), coef[column])


def _performance_intervals(
    event: np.ndarray, key: np.ndarray, mu: np.ndarray, scale: np.ndarray, grid: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(performance, lower, upper bound) of each unit, events solved together.

    `event`, `key`, `mu`, `scale` are per unit. As in Elo-MMR, a unit's performance y solves
    sum_j sigmoid(1.702 (y - mu_j) / scale_j) = (units it beat) + (ties)/2 + 1/2 (itself, a tie).
    A tie group (a shared place, a step of the result ladder) only bounds the performance: between
    the performances that beat exactly the units below the group and all units up to its top
    (+-inf at the ends of the field); an untied unit's bounds equal its performance.
    """
    n = len(event)
    _, ev = np.unique(event, return_inverse=True)
    ev = ev.ravel()
    n_ev = int(ev.max()) + 1
    size = np.bincount(ev, minlength=n_ev).astype(np.float64)
    # Wins: units with a worse key, ties: equal key (itself excluded).
    order = np.lexsort((key, ev))
    ev_s, key_s = ev[order], key[order]
    start = np.zeros(n_ev + 1, dtype=np.int64)
    start[1:] = np.cumsum(size.astype(np.int64))
    new_group = np.ones(n, dtype=bool)
    new_group[1:] = (ev_s[1:] != ev_s[:-1]) | (key_s[1:] != key_s[:-1])
    group = np.cumsum(new_group) - 1
    group_start = np.flatnonzero(new_group)
    group_size = np.diff(np.append(group_start, n))
    better = group_start[group] - start[ev_s]  # units strictly ahead
    tied = group_size[group] - 1
    worse = size[ev_s] - better - tied - 1
    below = np.empty(n)
    above = np.empty(n)
    below[order] = worse
    above[order] = worse + tied + 1.0

    spread = np.zeros(n_ev)
    np.maximum.at(spread, ev, scale)
    lo = np.full(n_ev, np.inf)
    hi = np.full(n_ev, -np.inf)
    np.minimum.at(lo, ev, mu)
    np.maximum.at(hi, ev, mu)
    lo -= 7.0 * spread
    hi += 7.0 * spread
    steps = np.linspace(0.0, 1.0, grid)
    xs = lo[:, None] + (hi - lo)[:, None] * steps[None, :]  # [events, grid]
    # Expected wins at each grid point: sum over the field (chunked to bound memory).
    wins = np.zeros((n_ev, grid))
    chunk = max(1, 4_000_000 // grid)
    for s in range(0, n, chunk):
        sl = slice(s, s + chunk)
        z = _LOGISTIC * (xs[ev[sl]] - mu[sl, None]) / scale[sl, None]
        _add_rows(wins, ev[sl], 0.5 * (1.0 + np.tanh(0.5 * z)))
    # Invert the increasing expected-wins curve of each event by flattened searchsorted.
    offset = np.arange(n_ev, dtype=np.float64) * (size.max() + 2.0)
    flat = np.maximum.accumulate((wins + offset[:, None]).ravel())

    y = _solve_flat(flat, 0.5 * (below + above) + offset[ev], ev, grid, lo, hi)
    y_lo, y_hi = y.copy(), y.copy()
    has_tie = np.zeros(n, dtype=bool)
    has_tie[order] = tied > 0
    if has_tie.any():
        idx = np.flatnonzero(has_tie)
        sub = ev[idx]
        y_lo[idx] = np.where(below[idx] <= 0.0, -np.inf,
                             _solve_flat(flat, below[idx] + offset[sub], sub, grid, lo, hi))
        y_hi[idx] = np.where(above[idx] >= size[sub], np.inf,
                             _solve_flat(flat, above[idx] + offset[sub], sub, grid, lo, hi))
    return y, y_lo, y_hi


def _solve_flat(flat: np.ndarray, t: np.ndarray, ev: np.ndarray, grid: int, lo: np.ndarray, hi: np.ndarray
                ) -> np.ndarray:
    pos = np.searchsorted(flat, t)
    base = ev * grid
    pos = np.clip(pos, base + 1, base + grid - 1)
    y0, y1 = flat[pos - 1], flat[pos]
    frac = np.clip((t - y0) / np.maximum(y1 - y0, 1e-12), 0.0, 1.0)
    g = (pos - base - 1) + frac
    return np.asarray(lo[ev] + (hi - lo)[ev] * g / (grid - 1))


def _truncated_moments(mean: np.ndarray, sd: np.ndarray, lower: np.ndarray, upper: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(mean shift / sd, variance factor) of N(mean, sd^2) truncated to [lower, upper] (either may be infinite)."""
    za = (lower - mean) / sd
    zb = (upper - mean) / sd
    # An infinite bound contributes no density (and z * density -> 0).
    za_f = np.where(np.isfinite(za), za, 0.0)
    zb_f = np.where(np.isfinite(zb), zb, 0.0)
    pa = np.where(np.isfinite(za), np.exp(-0.5 * za_f * za_f) / _SQRT_2PI, 0.0)
    pb = np.where(np.isfinite(zb), np.exp(-0.5 * zb_f * zb_f) / _SQRT_2PI, 0.0)
    mass = np.maximum(ndtr(zb) - ndtr(za), 1e-12)
    shift = (pa - pb) / mass
    factor = 1.0 + (za_f * pa - zb_f * pb) / mass - shift * shift
    return shift, np.clip(factor, 1e-6, 1.0)


def _growth_shift(num: np.ndarray, den: np.ndarray, ridge: float) -> np.ndarray:
    """Per format, the growth still missing: its own regression estimate shrunk toward the pooled one.

    `num`, `den`: innovation x exposure and exposure^2 summed per format; `ridge` is the exposure at
    which a format's own evidence and the pooled estimate weigh the same (a rare format borrows the
    growth of all formats rather than following its noise).
    """
    pooled = float(num.sum() / den.sum()) if den.sum() > 0 else 0.0
    return np.asarray(pooled + (num - pooled * den) / (den + ridge))


def _add_rows(target: np.ndarray, rows: np.ndarray, values: np.ndarray) -> None:
    """target[rows[i]] += values[i] for 2-D values, grouped (faster than np.add.at)."""
    if len(rows) == 0:
        return
    order = np.argsort(rows, kind="stable")
    r = rows[order]
    starts = np.flatnonzero(np.r_[True, r[1:] != r[:-1]])
    sums = np.add.reduceat(values[order], starts, axis=0)
    target[r[starts]] += sums


@dataclass
class _Pass:
    """Everything one pass over the results reads and writes (not kept after the pass)."""

    state: SkillState
    perf: PerformanceRows
    load: sp.csr_matrix
    load_keys: np.ndarray  # `_entry_keys(load)`
    prior_var: np.ndarray  # per column: the newcomer variance (before covariates)
    drift: np.ndarray  # per column, per day
    participation: Participation | None
    event_format: np.ndarray
    growth: np.ndarray  # per format: gain per result, spread over the event's competences by weight
    prev_event: np.ndarray  # per participant: the event of the latest result, -1 none
    growth_num: np.ndarray  # per format: innovation x exposure (growth still missing)
    growth_den: np.ndarray
    records: list[tuple[np.ndarray, ...]] | None


@dataclass
class CompetenceRatings:
    """The competence rating fitted over a graph (sklearn-style: parameters in, learned state ends in `_`).

    The model. Participant p's skill in competence c is ``general_p + specific_pc``, each part Gaussian
    (mean, variance; `general_share` of the prior variance is general ability), so evidence in one
    competence also informs the others. At an event, a unit (a participant alone, or a team sharing
    one result) performs with mean ``sum_members sum_c load * skill``, ``load = w_c / sum(w) / size``,
    plus N(0, perf_sd^2) noise. The outcome is an order of its units (rank where given, else the
    result ladder participant < completed < finalist < prize_winner < winner; ties share a place).
    As in Elo-MMR, a unit's *performance* is where its expected number of beaten units (a logistic
    comparison with the field) equals what it beat, so the event's difficulty is the strength of its
    field; a tie group only bounds the performance, and its update is the moment-matched truncated
    Gaussian (assumed-density filtering), so a coarse ladder moves skills as much as it says.
    A Kalman update spreads the evidence over members, competences and the general part in
    proportion to loading and uncertainty (shrinkage: little evidence, little movement). Between
    a participant's results the variance grows with time (recency), and after every result the
    specific skills it exercised grow by the growth of its event format (practice).

    Newcomer means are a regression, learned from newcomers' first performances, on covariates of
    what a participant chose to do (share and volume of each competence, grade; see
    `Participation`), which explain `covariate_share` of the prior variance. Growth per format is
    estimated between fit passes: a pass measures by how much returning participants beat their
    prediction after a result of each format (innovation regressed on the previous result's
    loadings), the next pass adds it and starts from the newcomer regression the previous pass
    learned (so the earliest participants get covariate-informed priors too). The prequential
    replay is one pass with `growth_per_result` and covariates counted from earlier rows only.

    Everything happens in date batches: every achievement dated d is predicted from the state before
    d (strictly earlier events), then all events of d update the state at once. Work per batch is a
    few vectorized passes over its rows, so the cost is linear in achievements.
    """

    config: RatingConfig = field(default_factory=RatingConfig)

    def fit(self, graph: AchievementsGraph, *, record_history: bool = True) -> Self:
        """Rate every participant in every competence from all results in the graph.

        With `record_history`, `history_` keeps every update of the last pass (the skill history and
        each achievement's contribution, which profiles show).
        """
        _, names = event_formats(graph)
        growth = np.full(len(names), self.config.growth_per_result)
        newcomers: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        for _ in range(self.config.growth_passes):
            run, _ = self._run(graph, np.empty(0, dtype=np.int64), covariates="all", growth=growth, record=False,
                               newcomers=newcomers)
            growth = np.maximum(growth + _growth_shift(run.growth_num, run.growth_den, self.config.growth_ridge), 0.0)
            # Only the newcomer regression goes on to the next pass (the state is as large as the data).
            newcomers = (run.state.coef, run.state.stats_a, run.state.stats_b)
            del run
        self._run(graph, np.empty(0, dtype=np.int64), covariates="all", growth=growth, record=record_history,
                  newcomers=newcomers)
        return self

    def replay(self, graph: AchievementsGraph, predict_rows: np.ndarray | None = None, *,
               record_history: bool = False) -> pd.DataFrame:
        """Process the graph date by date; returns each requested achievement row's pre-event estimate.

        `predict_rows` are positions in `graph.achievements` (None, the default: all of them);
        the frame has row, competence (position), skill and skill_sd, for the event's main competence.
        Covariates count only rows dated before each day; growth stays at `growth_per_result`.
        """
        _, names = event_formats(graph)
        growth = np.full(len(names), self.config.growth_per_result)
        _, predictions = self._run(graph, predict_rows, covariates="past", growth=growth, record=record_history)
        return predictions

    # ---- parameters of the state's columns ----------------------------------------------------
    def _column_params(self, n_c: int) -> tuple[np.ndarray, np.ndarray]:
        """Prior variance and drift per day of every state column (competences, then general)."""
        cfg = self.config
        total, drift = cfg.prior_sd**2, cfg.drift_sd_per_year**2 / 365.25
        share = np.full(n_c + 1, 1.0 - cfg.general_share)
        share[n_c] = cfg.general_share
        return total * share, drift * share

    def _newcomer_var(self, prior_var: np.ndarray) -> np.ndarray:
        explained = self.config.covariate_share if self.config.covariates else 0.0
        return prior_var * (1.0 - explained)

    def _run(self, graph: AchievementsGraph, predict_rows: np.ndarray | None, *,
             covariates: Literal["all", "past"], growth: np.ndarray, record: bool,
             newcomers: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> tuple[_Pass, pd.DataFrame]:
        n_p, n_c = graph.n_participants, len(graph.competence_index)
        prior_var, drift = self._column_params(n_c)
        load = _competence_loadings(graph)
        participation = (Participation(graph, load, incremental=covariates == "past") if self.config.covariates
                         else None)
        codes, names = event_formats(graph)
        run = _Pass(
            state=SkillState.empty(n_p, prior_var), perf=performance_rows(graph), load=load,
            load_keys=_entry_keys(load), prior_var=prior_var,
            drift=drift, participation=participation, event_format=codes, growth=np.asarray(growth, np.float64),
            prev_event=np.full(n_p, -1, dtype=np.int64), growth_num=np.zeros(len(names)),
            growth_den=np.zeros(len(names)), records=[] if record else None,
        )
        if newcomers is not None:
            # A later pass starts from the newcomer regression the previous one learned, so that the first
            # participants too get covariate-informed priors.
            run.state.coef[:], run.state.stats_a[:], run.state.stats_b[:] = newcomers
        perf = run.perf
        main = main_competence(graph)
        a = graph.achievements
        pred_rows = np.arange(len(a)) if predict_rows is None else np.asarray(predict_rows, np.int64)
        pred_day = event_days(graph)[a["event_idx"].to_numpy(np.int64)[pred_rows]] if len(pred_rows) else pred_rows
        pred_order = np.argsort(pred_day, kind="stable")
        pred_rows, pred_day = pred_rows[pred_order], pred_day[pred_order]
        pred_p = a["participant_idx"].to_numpy(np.int64)[pred_rows]
        pred_c = main[a["event_idx"].to_numpy(np.int64)[pred_rows]]
        out_mu = np.full(len(pred_rows), np.nan)
        out_sd = np.full(len(pred_rows), np.nan)

        days = np.unique(np.concatenate([perf.day, pred_day]))
        perf_bounds = np.append(np.searchsorted(perf.day, days, side="left"), len(perf.day))
        pred_bounds = np.append(np.searchsorted(pred_day, days, side="left"), len(pred_day))
        for i, d in enumerate(days):
            if participation is not None and participation.incremental:
                participation.advance(d)
            ps = slice(pred_bounds[i], pred_bounds[i + 1])
            if ps.stop > ps.start:
                pp, pc = pred_p[ps], pred_c[ps]
                ok = pc >= 0
                m, v = self._current(run, pp[ok], pc[ok], int(d))
                gm, gv = self._current(run, pp[ok], np.full(int(ok.sum()), n_c), int(d))
                out_mu[ps][ok] = m + gm
                out_sd[ps][ok] = np.sqrt(v + gv)
            rs = slice(perf_bounds[i], perf_bounds[i + 1])
            if rs.stop > rs.start:
                self._update(run, rs, int(d))
        self.state_ = run.state
        self.competences_ = graph.competence_index
        self.participants_ = graph.participant_index
        self.last_day_ = int(days[-1]) if len(days) else 0
        self.growth_ = pd.Series(run.growth, index=pd.Index(names, name="format"), name="growth")
        self.participation_ = participation.frozen() if participation is not None else None
        self.history_ = self._history_frame(run.records)
        out = pd.DataFrame({"row": pred_rows, "competence": pred_c, "skill": out_mu, "skill_sd": out_sd})
        return run, out.sort_values("row", kind="stable").reset_index(drop=True)

    @staticmethod
    def _history_frame(records: list[tuple[np.ndarray, ...]] | None) -> pd.DataFrame:
        names = ("row", "participant", "competence", "day", "contribution", "skill", "skill_sd")
        # Compact types: at 100 million achievements the history is the largest thing kept.
        dtypes = (np.int64, np.int32, np.int16, np.int32, np.float32, np.float32, np.float32)
        recs = records or []
        cols = [np.concatenate([r[i] for r in recs]).astype(t) if recs else np.empty(0, dtype=t)
                for i, t in enumerate(dtypes)]
        return pd.DataFrame(dict(zip(names, cols, strict=True)))

    def skill(self, participant_positions: np.ndarray, on_day: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Fitted skill mean and sd [len(positions), competences] on `on_day` (default: the last day)."""
        st = self.state_
        n_c = st.mu.shape[1] - 1
        prior_var, drift = self._column_params(n_c)
        newcomer_var = self._newcomer_var(prior_var)
        p = np.asarray(participant_positions, dtype=np.int64)
        day = self.last_day_ if on_day is None else on_day
        last = st.last_day[p]
        seen = last >= 0
        k = n_c + 1
        cells = np.broadcast_to(np.arange(k), (len(p), k))
        prior_mu = newcomer_means(st.coef, self.participation_, np.repeat(p, k), cells.ravel(), day).reshape(len(p), k)
        mu = np.where(seen, st.mu[p], prior_mu)
        var = np.where(seen, np.minimum(st.var[p] + drift[None, :] * np.maximum(day - last, 0), prior_var[None, :]),
                       newcomer_var[None, :])
        return mu[:, :n_c] + mu[:, n_c:], np.sqrt(var[:, :n_c] + var[:, n_c:])

    def evidence(self, participant_positions: np.ndarray) -> np.ndarray:
        """Evidence per competence [len(positions), competences]: the results' summed competence shares."""
        return np.asarray(self.state_.evidence[np.asarray(participant_positions, dtype=np.int64), :-1])

    # ---- one pass --------------------------------------------------------------------------------
    def _current(self, run: _Pass, p: np.ndarray, c: np.ndarray, day: int) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of state column (p, c) on `day`: drifted since its last evidence; newcomers: prior."""
        state = run.state
        last = state.last_day[p, c]
        seen = last >= 0
        mu = state.mu[p, c]
        if not seen.all():
            mu = mu.copy()
            mu[~seen] = newcomer_means(state.coef, run.participation, p[~seen], c[~seen], day)
        newcomer_var = self._newcomer_var(run.prior_var)
        var = np.where(seen, np.minimum(state.var[p, c] + run.drift[c] * np.maximum(day - last, 0), run.prior_var[c]),
                       newcomer_var[c])
        return mu, var

    def _update(self, run: _Pass, rs: slice, day: int) -> None:
        cfg = self.config
        state, perf, load = run.state, run.perf, run.load
        n_c = state.mu.shape[1] - 1
        p, e, unit, key = perf.participant[rs], perf.event[rs], perf.unit[rs], perf.order_key[rs]
        # Expand rows x (the event's competences + the general column).
        counts = np.diff(load.indptr)[e]
        has = counts > 0
        if not has.any():
            return
        p, e, unit, key, rows = p[has], e[has], unit[has], key[has], perf.row[rs][has]
        counts = counts[has]
        spec_idx = np.repeat(np.arange(len(p)), counts)
        within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        nz = np.repeat(load.indptr[e], counts) + within
        r_idx = np.concatenate([spec_idx, np.arange(len(p))])
        c = np.concatenate([load.indices[nz].astype(np.int64), np.full(len(p), n_c, dtype=np.int64)])
        w = np.concatenate([load.data[nz], np.ones(len(p))])
        spec = c < n_c
        pp = p[r_idx]
        _, u = np.unique(unit, return_inverse=True)
        u = u.ravel()
        n_u = int(u.max()) + 1
        members = np.bincount(u, minlength=n_u).astype(np.float64)
        ur = u[r_idx]
        lw = w / members[ur]
        mu, var = self._current(run, pp, c, day)
        new = state.last_day[pp, c] < 0
        unit_mu = np.bincount(ur, weights=lw * mu, minlength=n_u)
        unit_var = np.bincount(ur, weights=lw * lw * var, minlength=n_u)
        unit_event = np.zeros(n_u, dtype=np.int64)
        unit_event[u] = e
        unit_key = np.zeros(n_u, dtype=np.int64)
        unit_key[u] = key
        scale = np.sqrt(unit_var + cfg.perf_sd**2)
        y, y_lo, y_hi = _performance_intervals(unit_event, unit_key, unit_mu, scale, cfg.grid)
        # A tie group bounds the performance: moment-match the truncated Gaussian (the mean moves by
        # scale * shift, the variance shrinks by `informed`); an untied unit observes y itself.
        informed = np.ones(n_u)
        tied = y_hi > y_lo
        if tied.any():
            shift, factor = _truncated_moments(unit_mu[tied], scale[tied], y_lo[tied], y_hi[tied])
            y[tied] = unit_mu[tied] + scale[tied] * shift
            informed[tied] = 1.0 - factor
        resid_u = y - unit_mu
        gain = lw * var / (scale * scale)[ur]
        self._measure_growth(run, pp, c, ur, lw, new, resid_u, n_u)
        grow = np.where(spec, run.growth[run.event_format[e]][r_idx] * w, 0.0)
        new_mu = mu + gain * resid_u[ur] + grow
        new_var = np.maximum(var - gain * informed[ur] * lw * var, 1e-9)
        if new.any():
            self._learn_newcomers(run, new, c, lw * members[ur], y[ur], pp, day)
        # Several rows may hit the same (p, c) on one day (two events): combine in information form.
        k = state.mu.shape[1]
        flat = pp * k + c
        uniq, inv = np.unique(flat, return_inverse=True)
        if len(uniq) == len(flat):
            state.mu[pp, c] = new_mu
            state.var[pp, c] = new_var
        else:
            prec0 = 1.0 / var
            info = np.bincount(inv, weights=1.0 / new_var - prec0)
            moved = np.bincount(inv, weights=new_mu / new_var - mu * prec0)
            first = np.zeros(len(uniq), dtype=np.int64)
            first[inv[::-1]] = np.arange(len(inv))[::-1]
            base_prec = prec0[first]
            post_prec = base_prec + info
            post_mu = (mu[first] * base_prec + moved) / post_prec
            up, uc = uniq // k, uniq % k
            state.mu[up, uc] = post_mu
            state.var[up, uc] = 1.0 / post_prec
        state.last_day[pp, c] = day
        np.add.at(state.evidence, (pp, c), lw.astype(np.float32))
        run.prev_event[p] = e
        if run.records is not None:
            ps, cs = pp[spec], c[spec]
            general_shift = (new_mu - mu)[~spec][spec_idx]
            run.records.append((
                rows[r_idx[spec]], ps.astype(np.int32), cs.astype(np.int16), np.full(len(ps), day, dtype=np.int32),
                (new_mu - mu)[spec] + general_shift,
                state.mu[ps, cs] + state.mu[ps, n_c], np.sqrt(state.var[ps, cs] + state.var[ps, n_c]),
            ))

    @staticmethod
    def _measure_growth(run: _Pass, pp: np.ndarray, c: np.ndarray, ur: np.ndarray, lw: np.ndarray, new: np.ndarray,
                        resid_u: np.ndarray, n_u: int) -> None:
        """Accumulate, per format, how much returning participants beat their prediction after a result of it.

        A growth error d of format f shifts the unit's predicted mean by d x (exposure): its load on each
        competence times the previous result's weight on it; regressing innovations on exposures (per
        format, over the pass) estimates d.
        """
        n_c = run.state.mu.shape[1] - 1
        prev = run.prev_event[pp]
        ok = (prev >= 0) & (c < n_c) & ~new
        if not ok.any():
            return
        exposure = lw[ok] * _lookup(run.load, run.load_keys, prev[ok], c[ok])
        n_f = len(run.growth)
        cell = ur[ok] * n_f + run.event_format[prev[ok]]
        x = np.bincount(cell, weights=exposure, minlength=n_u * n_f).reshape(n_u, n_f)
        run.growth_num += x.T @ resid_u
        run.growth_den += (x * x).sum(axis=0)

    def _learn_newcomers(self, run: _Pass, new: np.ndarray, c: np.ndarray, share: np.ndarray, y: np.ndarray,
                         pp: np.ndarray, day: int) -> None:
        """Newcomer means: forgetting least squares of first performances (general column) and of what the
        general part misses (competence columns) on the cells' covariates."""
        cfg = self.config
        state = run.state
        n_c = state.mu.shape[1] - 1
        cn, pn = c[new], pp[new]
        general_mu, _ = self._current(run, pn, np.full(len(pn), n_c), day)
        target = np.where(cn == n_c, y[new], y[new] - general_mu)
        if run.participation is None:
            x = np.zeros((len(cn), N_FEATURES))
            x[:, 0] = 1.0
        else:
            x = run.participation.features(pn, cn, day)
        k = state.coef.shape[0]
        xw = x * share[new][:, None]
        outer = (xw[:, :, None] * x[:, None, :]).reshape(len(cn), -1)
        a_new = np.stack([np.bincount(cn, weights=outer[:, j], minlength=k) for j in range(outer.shape[1])], axis=1)
        a_new = a_new.reshape(k, N_FEATURES, N_FEATURES)
        b_new = np.stack([np.bincount(cn, weights=xw[:, j] * target, minlength=k) for j in range(N_FEATURES)], axis=1)
        upd = np.flatnonzero(a_new[:, 0, 0] > 0)
        state.stats_a[upd] += a_new[upd]
        state.stats_b[upd] += b_new[upd]
        total = state.stats_a[upd, 0, 0]
        scale = np.minimum(1.0, cfg.newcomer_memory / total)
        state.stats_a[upd] *= scale[:, None, None]
        state.stats_b[upd] *= scale[:, None]
        slope = cfg.covariate_ridge if cfg.covariates else 1e12
        ridge = np.diag([1e-9] + [slope] * (N_FEATURES - 1))
        state.coef[upd] = np.linalg.solve(state.stats_a[upd] + ridge[None], state.stats_b[upd][..., None])[..., 0]
