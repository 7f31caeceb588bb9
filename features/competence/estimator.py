"""A Bayesian rating per participant and competence, updated date by date from ranks and ordinal results.

The model. Participant p's skill in competence c is ``general_p + specific_pc``, each part Gaussian
(mean, variance) with `general_share` of the prior variance in the general ability, so evidence in
one competence also informs the others. At an event, a unit (a participant alone, or a team
sharing one result) performs with mean ``sum_members sum_c load * skill`` where
``load = w_c / sum(w) / team_size``, plus N(0, perf_sd^2) noise. The event's outcome is an order of
its units (rank where given, else the result ladder participant < completed < finalist <
prize_winner < winner; ties share a place). As in Elo-MMR, each unit's *performance* is the value
at which its expected number of beaten units (a logistic comparison with every unit of the field,
itself as a tie) equals what it actually beat; the event's difficulty is thereby the strength of
its field, so ranks, result ladders and events of any difficulty are read alike. A tie group
leaves the performance uncertain within the group, which enters as extra observation variance.
The performance is then a Gaussian observation of the unit's skill mix: a Kalman update spreads
it over members, competences and the general part in proportion to their loading and their
uncertainty (shrinkage: little evidence, little movement). Between a participant's events the
variance grows with time (skills drift; recent results weigh more), capped at the newcomer
variance; newcomers start at a newcomer mean learned from earlier newcomers' first results.

Everything happens in date batches: every achievement dated d is predicted from the state before
d (strictly earlier events), then all events of d update the state at once. Work per batch is a
few vectorized passes over its rows, so the cost is linear in achievements.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import BaseModel, ConfigDict, Field

from recommender.columns import RESULT_RANK, Columns
from recommender.graph import AchievementsGraph

# Roles whose result is a performance (a mentor's or volunteer's row says nothing about their skill).
PERFORMING_ROLES = ("participant", "captain", "author")
# 1.702 x logistic ~ standard normal cdf.
_LOGISTIC = 1.702
_NO_RANK = np.iinfo(np.int64).max // 4


class RatingConfig(BaseModel):
    """Hyperparameters of the competence rating (defined once; flattened to MLflow params)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prior_sd: float = Field(1.0, gt=0, description="sd of a newcomer's skill around the newcomer mean")
    perf_sd: float = Field(0.6, gt=0, description="sd of one performance around the skill")
    drift_sd_per_year: float = Field(0.25, ge=0, description="sd a skill drifts per year without evidence")
    tie_var_scale: float = Field(1.0, ge=0, description="x variance of a performance within a tie group")
    newcomer_memory: float = Field(2000.0, gt=0, description="newcomer results the newcomer mean remembers")
    grid: int = Field(96, ge=16, description="grid points per event for the performance inversion")
    growth_per_result: float = Field(0.0, ge=0, description="skill gain per result, by competence weight")
    general_share: float = Field(0.5, gt=0, lt=1, description="share of skill variance that is general ability")


@dataclass
class SkillState:
    """The rating state: mean, variance, last evidence day and evidence weight per (participant, competence)."""

    mu: np.ndarray  # float64 [participants, competences]
    var: np.ndarray
    last_day: np.ndarray  # int32, -1 = never seen
    evidence: np.ndarray  # float32: sum of loadings observed
    newcomer_mu: np.ndarray  # float64 [competences]: the learned newcomer mean

    @classmethod
    def empty(cls, n_participants: int, n_competences: int, prior_sd: float) -> SkillState:
        return cls(
            mu=np.zeros((n_participants, n_competences)),
            var=np.full((n_participants, n_competences), prior_sd**2),
            last_day=np.full((n_participants, n_competences), -1, dtype=np.int32),
            evidence=np.zeros((n_participants, n_competences), dtype=np.float32),
            newcomer_mu=np.zeros(n_competences),
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
    keep = rr >= RESULT_RANK["participant"]
    if Columns.Role in a.columns:
        keep &= a[Columns.Role].astype("string").fillna("participant").isin(PERFORMING_ROLES).to_numpy()
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
    return sp.csr_matrix(sp.diags(scale) @ ec)


def main_competence(graph: AchievementsGraph) -> np.ndarray:
    """Each event's main competence (the highest weight; the first listed on a tie); -1 when none."""
    ec = graph.event_competence().tocsr()
    main = np.full(graph.n_events, -1, dtype=np.int64)
    for i in range(graph.n_events):
        lo, hi = ec.indptr[i], ec.indptr[i + 1]
        if hi > lo:
            main[i] = ec.indices[lo + int(np.argmax(ec.data[lo:hi]))]
    return main


def _performances(
    event: np.ndarray, key: np.ndarray, mu: np.ndarray, scale: np.ndarray, grid: int
) -> tuple[np.ndarray, np.ndarray]:
    """Performance of each unit and its within-tie variance, events solved together.

    `event`, `key`, `mu`, `scale` are per unit. A unit's performance y solves
    sum_j sigmoid(1.702 (y - mu_j) / scale_j) = (units it beat) + (ties)/2 + 1/2 (itself, a tie).
    """
    n = len(event)
    _, ev = np.unique(event, return_inverse=True)
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
    lo_t = np.empty(n)
    hi_t = np.empty(n)
    lo_t[order] = worse + 0.5
    hi_t[order] = worse + tied + 0.5
    mid_t = 0.5 * (lo_t + hi_t)

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
    seed = np.zeros((n_ev, grid))
    chunk = max(1, 4_000_000 // grid)
    for s in range(0, n, chunk):
        sl = slice(s, s + chunk)
        z = _LOGISTIC * (xs[ev[sl]] - mu[sl, None]) / scale[sl, None]
        contrib = 0.5 * (1.0 + np.tanh(0.5 * z))
        _add_rows(seed, ev[sl], contrib)
    # Invert the increasing expected-wins curve of each event by flattened searchsorted.
    offset = (np.arange(n_ev, dtype=np.float64) * (size.max() + 2.0))[:, None]
    flat = (seed + offset).ravel()
    flat = np.maximum.accumulate(flat)

    y_mid = _solve_flat(flat, mid_t + offset[ev, 0], ev, grid, lo, hi)
    has_tie = hi_t > lo_t
    tie_var = np.zeros(n)
    if has_tie.any():
        idx = np.flatnonzero(has_tie)
        sub_ev = ev[idx]
        t_lo = lo_t[idx] + offset[sub_ev, 0]
        t_hi = hi_t[idx] + offset[sub_ev, 0]
        y_lo = _solve_flat(flat, t_lo, sub_ev, grid, lo, hi)
        y_hi = _solve_flat(flat, t_hi, sub_ev, grid, lo, hi)
        tie_var[idx] = (y_hi - y_lo) ** 2 / 12.0
    return y_mid, tie_var


def _solve_flat(flat: np.ndarray, t: np.ndarray, ev: np.ndarray, grid: int, lo: np.ndarray, hi: np.ndarray
                ) -> np.ndarray:
    pos = np.searchsorted(flat, t)
    base = ev * grid
    pos = np.clip(pos, base + 1, base + grid - 1)
    y0, y1 = flat[pos - 1], flat[pos]
    frac = np.clip((t - y0) / np.maximum(y1 - y0, 1e-12), 0.0, 1.0)
    g = (pos - base - 1) + frac
    return np.asarray(lo[ev] + (hi - lo)[ev] * g / (grid - 1))


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
class CompetenceRatings:
    """The competence rating fitted over a graph (sklearn-style: parameters in, learned state ends in `_`).

    Skill in competence c is ``general + specific_c``: a general ability shared by all competences
    (column C of the state) plus a competence-specific part, so a result in one competence also
    says something about the others, in proportion to `general_share`.
    """

    config: RatingConfig = field(default_factory=RatingConfig)

    def fit(self, graph: AchievementsGraph, *, record_history: bool = True) -> Self:
        """Rate every participant in every competence from all results in the graph.

        With `record_history`, `history_` keeps every update (the skill history and each
        achievement's contribution, which profiles show).
        """
        self.replay(graph, np.empty(0, dtype=np.int64), record_history=record_history)
        return self

    # ---- parameters of the state's columns ----------------------------------------------------
    def _column_params(self, n_c: int) -> tuple[np.ndarray, np.ndarray]:
        """Prior variance and drift per day of every state column (competences, then general)."""
        cfg = self.config
        total, drift = cfg.prior_sd**2, cfg.drift_sd_per_year**2 / 365.25
        share = np.full(n_c + 1, 1.0 - cfg.general_share)
        share[n_c] = cfg.general_share
        return total * share, drift * share

    def replay(self, graph: AchievementsGraph, predict_rows: np.ndarray | None = None, *,
               record_history: bool = False) -> pd.DataFrame:
        """Process the graph date by date; returns each requested achievement row's pre-event estimate.

        `predict_rows` are positions in `graph.achievements` (None, the default: all of them);
        the frame has row, competence (position), skill and skill_sd, for the event's main competence.
        """
        self._records: list[tuple[np.ndarray, ...]] | None = [] if record_history else None
        n_p, n_c = graph.n_participants, len(graph.competence_index)
        prior_var, drift = self._column_params(n_c)
        state = SkillState.empty(n_p, n_c + 1, float(np.sqrt(prior_var.max())))
        state.var[:] = prior_var[None, :]
        perf = performance_rows(graph)
        load = _competence_loadings(graph)
        main = main_competence(graph)
        memory = np.zeros(n_c + 1)

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
            ps = slice(pred_bounds[i], pred_bounds[i + 1])
            if ps.stop > ps.start:
                pp, pc = pred_p[ps], pred_c[ps]
                ok = pc >= 0
                m, v = self._current(state, pp[ok], pc[ok], int(d), drift, prior_var)
                gm, gv = self._current(state, pp[ok], np.full(int(ok.sum()), n_c), int(d), drift, prior_var)
                out_mu[ps][ok] = m + gm
                out_sd[ps][ok] = np.sqrt(v + gv)
            rs = slice(perf_bounds[i], perf_bounds[i + 1])
            if rs.stop > rs.start:
                self._update(state, perf, rs, load, int(d), drift, prior_var, memory)
        self.state_ = state
        self.competences_ = graph.competence_index
        self.participants_ = graph.participant_index
        self.last_day_ = int(days[-1]) if len(days) else 0
        self.history_ = self._history_frame()
        out = pd.DataFrame({"row": pred_rows, "competence": pred_c, "skill": out_mu, "skill_sd": out_sd})
        return out.sort_values("row", kind="stable").reset_index(drop=True)

    def _history_frame(self) -> pd.DataFrame:
        names = ("row", "participant", "competence", "day", "contribution", "skill", "skill_sd")
        # Compact types: at 100 million achievements the history is the largest thing kept.
        dtypes = (np.int64, np.int32, np.int16, np.int32, np.float32, np.float32, np.float32)
        recs = self._records or []
        cols = [np.concatenate([r[i] for r in recs]).astype(t) if recs else np.empty(0, dtype=t)
                for i, t in enumerate(dtypes)]
        self._records = None
        return pd.DataFrame(dict(zip(names, cols, strict=True)))

    def skill(self, participant_positions: np.ndarray, on_day: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Fitted skill mean and sd [len(positions), competences] on `on_day` (default: the last day)."""
        st = self.state_
        n_c = st.mu.shape[1] - 1
        prior_var, drift = self._column_params(n_c)
        p = np.asarray(participant_positions, dtype=np.int64)
        day = self.last_day_ if on_day is None else on_day
        last = st.last_day[p]
        seen = last >= 0
        mu = np.where(seen, st.mu[p], st.newcomer_mu[None, :])
        var = np.where(seen, np.minimum(st.var[p] + drift[None, :] * np.maximum(day - last, 0), prior_var[None, :]),
                       prior_var[None, :])
        return mu[:, :n_c] + mu[:, n_c:], np.sqrt(var[:, :n_c] + var[:, n_c:])

    def evidence(self, participant_positions: np.ndarray) -> np.ndarray:
        """Evidence per competence [len(positions), competences]: the results' summed competence shares."""
        return np.asarray(self.state_.evidence[np.asarray(participant_positions, dtype=np.int64), :-1])

    @staticmethod
    def _current(state: SkillState, p: np.ndarray, c: np.ndarray, day: int, drift: np.ndarray,
                 prior_var: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of state column (p, c) on `day`: drifted since its last evidence; newcomers: prior."""
        last = state.last_day[p, c]
        seen = last >= 0
        mu = np.where(seen, state.mu[p, c], state.newcomer_mu[c])
        var = np.where(seen, np.minimum(state.var[p, c] + drift[c] * np.maximum(day - last, 0), prior_var[c]),
                       prior_var[c])
        return mu, var

    def _update(self, state: SkillState, perf: PerformanceRows, rs: slice, load: sp.csr_matrix, day: int,
                drift: np.ndarray, prior_var: np.ndarray, memory: np.ndarray) -> None:
        cfg = self.config
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
        pp = p[r_idx]
        _, u = np.unique(unit, return_inverse=True)
        u = u.ravel()
        n_u = int(u.max()) + 1
        members = np.bincount(u, minlength=n_u).astype(np.float64)
        ur = u[r_idx]
        lw = w / members[ur]
        mu, var = self._current(state, pp, c, day, drift, prior_var)
        new = state.last_day[pp, c] < 0
        unit_mu = np.bincount(ur, weights=lw * mu, minlength=n_u)
        unit_var = np.bincount(ur, weights=lw * lw * var, minlength=n_u)
        unit_event = np.zeros(n_u, dtype=np.int64)
        unit_event[u] = e
        unit_key = np.zeros(n_u, dtype=np.int64)
        unit_key[u] = key
        scale = np.sqrt(unit_var + cfg.perf_sd**2)
        y, tie_var = _performances(unit_event, unit_key, unit_mu, scale, cfg.grid)
        total_var = unit_var + cfg.perf_sd**2 + cfg.tie_var_scale * tie_var
        resid = (y - unit_mu)[ur]
        gain = lw * var / total_var[ur]
        # Practice: every result moves the specific skills it exercised up by the expected growth.
        new_mu = mu + gain * resid + cfg.growth_per_result * np.where(c < n_c, w, 0.0)
        new_var = np.maximum(var - gain * lw * var, 1e-9)
        if new.any():
            self._learn_newcomers(state, memory, new, c, lw * members[ur], y[ur], pp,
                                  n_c, day, drift, prior_var)
        # Several rows may hit the same (p, c) on one day (two events): combine in information form.
        flat = pp * state.mu.shape[1] + c
        uniq, inv = np.unique(flat, return_inverse=True)
        if len(uniq) == len(flat):
            state.mu[pp, c] = new_mu
            state.var[pp, c] = new_var
        else:
            prec0 = 1.0 / var
            info = np.bincount(inv, weights=1.0 / new_var - prec0)
            shift = np.bincount(inv, weights=new_mu / new_var - mu * prec0)
            first = np.zeros(len(uniq), dtype=np.int64)
            first[inv[::-1]] = np.arange(len(inv))[::-1]
            base_prec = prec0[first]
            post_prec = base_prec + info
            post_mu = (mu[first] * base_prec + shift) / post_prec
            up, uc = uniq // state.mu.shape[1], uniq % state.mu.shape[1]
            state.mu[up, uc] = post_mu
            state.var[up, uc] = 1.0 / post_prec
        state.last_day[pp, c] = day
        np.add.at(state.evidence, (pp, c), lw.astype(np.float32))
        if self._records is not None:
            spec = c < n_c
            ps, cs = pp[spec], c[spec]
            general_shift = (new_mu - mu)[~spec][spec_idx]
            self._records.append((
                rows[r_idx[spec]], ps.astype(np.int32), cs.astype(np.int16), np.full(len(ps), day, dtype=np.int32),
                (new_mu - mu)[spec] + general_shift,
                state.mu[ps, cs] + state.mu[ps, n_c], np.sqrt(state.var[ps, cs] + state.var[ps, n_c]),
            ))

    def _learn_newcomers(self, state: SkillState, memory: np.ndarray, new: np.ndarray, c: np.ndarray,
                         share: np.ndarray, y: np.ndarray, pp: np.ndarray, n_c: int, day: int,
                         drift: np.ndarray, prior_var: np.ndarray) -> None:
        """Newcomer means: forgetting averages of first performances (general) and of what general misses."""
        cfg = self.config
        general_mu, _ = self._current(state, pp, np.full(len(pp), n_c), day, drift, prior_var)
        target = np.where(c == n_c, y, y - general_mu)
        wn = share[new]
        k = len(memory)
        n_new = np.bincount(c[new], weights=wn, minlength=k)
        s_new = np.bincount(c[new], weights=wn * target[new], minlength=k)
        upd = n_new > 0
        total = memory[upd] + n_new[upd]
        state.newcomer_mu[upd] = (memory[upd] * state.newcomer_mu[upd] + s_new[upd]) / total
        memory[upd] = np.minimum(total, cfg.newcomer_memory)
