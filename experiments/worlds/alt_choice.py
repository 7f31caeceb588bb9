"""The alternative world's one choice model: a mixture over latent tastes of nested logits over format nests.

P(next = e | p, day) = sum_k taste[p, k] * P_k(nest(e)) * P_k(e | nest(e)), where for taste k
U_k(p, e) = fit_k * (interest_p . w_e) + format_k[f_e] + prestige_k * prestige_e + online_k * [online]
          + offline_k[settlement_p] * [offline] + urgency_k * [registration closes within 10 days]
          - level_k * (level_e - aim_k(p))^2 + loyalty_k * [p took an earlier edition of e's series]
          + qualified_k * [p qualified at e's previous stage],
nest scales lambda = (compete 0.55, build 0.65, learn 0.8), P_k(e | g) = softmax(U_k / lambda_g) within g and
P_k(g) = softmax_g(lambda_g * logsumexp(U_k / lambda_g)). aim_k(p) = clip(max(reached_p + 1, grade base) +
aim_shift_k, 0, 4). No friends, no mentors, no popularity: nothing shared with the product's generator.
The generator samples from these very probabilities and the oracle recomputes them from the truth.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, field

import numpy as np
from alt_calendar import NEST_OF_FORMAT, grade_on
from alt_catalog import Catalog

URGENT_DAYS = 10


def _a(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float32)


@dataclass(frozen=True)
class TasteCoefficients:
    """One value per taste (competitor, builder, learner, explorer) unless noted."""

    fit: np.ndarray = field(default_factory=lambda: _a(6.0, 5.0, 4.0, 2.5))
    level: np.ndarray = field(default_factory=lambda: _a(0.6, 0.3, 0.25, 0.4))
    aim_shift: np.ndarray = field(default_factory=lambda: _a(0.5, 0.0, -0.5, 1.0))
    online: np.ndarray = field(default_factory=lambda: _a(-1.6, -1.6, -0.4, -1.2))
    offline_town: np.ndarray = field(default_factory=lambda: _a(-0.3, -0.4, -0.2, -0.1))
    offline_rural: np.ndarray = field(default_factory=lambda: _a(-1.0, -1.4, -0.6, -0.5))
    urgency: np.ndarray = field(default_factory=lambda: _a(0.6, 0.9, 0.3, 0.5))
    prestige: np.ndarray = field(default_factory=lambda: _a(0.8, 0.5, 0.3, 1.4))
    loyalty: np.ndarray = field(default_factory=lambda: _a(1.5, 0.8, 0.6, -0.3))
    qualified: np.ndarray = field(default_factory=lambda: _a(4.0, 3.0, 2.5, 3.0))
    # [taste, format] in FORMATS order: olympiad, hackathon, project_school, contest, course, camp, conference,
    # accelerator.
    format: np.ndarray = field(default_factory=lambda: np.array([
        [1.5, 0.0, -0.5, 1.0, -0.5, 0.0, -1.0, -1.0],
        [-0.8, 1.8, 1.2, 0.3, -0.3, 0.3, 0.2, 1.0],
        [-0.3, -0.5, 0.5, -0.5, 1.8, 1.0, 0.2, -0.5],
        [0.0, 0.5, 0.3, 0.2, 0.0, 1.0, 1.0, 0.3],
    ], dtype=np.float32))
    nest_scale: np.ndarray = field(default_factory=lambda: _a(0.55, 0.65, 0.8))

    def to_dict(self) -> dict[str, list]:
        return {k: np.asarray(v).round(4).tolist() for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict[str, list]) -> TasteCoefficients:
        return cls(**{k: np.asarray(v, dtype=np.float32) for k, v in values.items()})


@dataclass
class Chooser:
    """Static inputs: participants' region, settlement, birth year, tastes and interests; the catalog."""

    region: np.ndarray
    settlement: np.ndarray
    birth_year: np.ndarray
    taste: np.ndarray  # [N, T]
    interest: np.ndarray  # [N, K]
    catalog: Catalog
    coef: TasteCoefficients


@dataclass
class BatchState:
    """What a batch of participants knows strictly before `day` (rows are positions in `participants`)."""

    day: int
    open_events: np.ndarray  # int32 events open for registration with capacity left
    participants: np.ndarray  # int32
    reached: np.ndarray  # int8 per batch row: highest level with a qualifying result, -1 none
    taken_rows: np.ndarray
    taken_events: np.ndarray
    qual_rows: np.ndarray
    qual_events: np.ndarray  # the open next stage the row qualified for


def open_events(cat: Catalog, day: int, used: np.ndarray) -> np.ndarray:
    """Registration open, not started, capacity left (registrations made before `day`)."""
    ok = (cat.reg_open <= day) & (cat.reg_deadline >= day) & (cat.start > day)
    ok &= (cat.capacity == 0) | (used < cat.capacity)
    return np.flatnonzero(ok).astype(np.int32)


def grade_base(grade: np.ndarray) -> np.ndarray:
    """Where a newcomer aims: school level up to grade 8, municipal in 9-10, a little higher after."""
    return np.where(grade <= 8, 0.0, np.where(grade <= 10, 1.0, 1.5)).astype(np.float32)


@dataclass
class ProbabilityBlock:
    participants: np.ndarray  # int32 [n]
    events: np.ndarray  # int32 [m]
    probability: np.ndarray  # float64 [n, m], rows sum to 1 (or 0 where nothing is open to the row)


def probability_blocks(ch: Chooser, state: BatchState, max_cells: int = 2_000_000) -> Iterator[ProbabilityBlock]:
    """True next-choice probabilities of the batch, region by region, in blocks of bounded size."""
    cat, coef = ch.catalog, ch.coef
    if len(state.open_events) == 0 or len(state.participants) == 0:
        return
    n_series = int(cat.series.max()) + 1
    ev_region = cat.region[state.open_events]
    regions = ch.region[state.participants]
    order = np.argsort(regions, kind="stable")
    for r in np.unique(regions):
        rows_all = order[regions[order] == r]
        cand = state.open_events[(ev_region < 0) | (ev_region == r)]
        if len(cand) == 0:
            continue
        step = max(1, max_cells // len(cand))
        for s in range(0, len(rows_all), step):
            rows = rows_all[s : s + step]
            yield ProbabilityBlock(state.participants[rows], cand, _block(ch, coef, state, rows, cand, n_series))


def _pair_mask(rows: np.ndarray, pair_rows: np.ndarray, pair_cols: np.ndarray, n_cols: int, keys: np.ndarray
               ) -> np.ndarray:
    """Boolean [len(rows), n_cols] of (batch row, column key) pairs: pair_cols are keys matched against `keys`."""
    local = np.full(int(rows.max()) + 1 if len(rows) else 0, -1, dtype=np.int64)
    local[rows] = np.arange(len(rows))
    inside = pair_rows <= (len(local) - 1)
    pr, pc = pair_rows[inside], pair_cols[inside]
    lr = local[pr]
    ok = lr >= 0
    out = np.zeros((len(rows), n_cols), dtype=bool)
    if not ok.any():
        return out
    lr, pc = lr[ok], pc[ok]
    # Column positions of each key (keys may repeat across columns, e.g. a series).
    sorter = np.argsort(keys, kind="stable")
    lo = np.searchsorted(keys, pc, side="left", sorter=sorter)
    hi = np.searchsorted(keys, pc, side="right", sorter=sorter)
    count = hi - lo
    rr = np.repeat(lr, count)
    offset = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    cc = sorter[np.repeat(lo, count) + offset]
    out[rr, cc] = True
    return out


def _block(ch: Chooser, coef: TasteCoefficients, state: BatchState, rows: np.ndarray, cand: np.ndarray,
           n_series: int) -> np.ndarray:
    cat = ch.catalog
    p = state.participants[rows]
    m = len(cand)
    grade = grade_on(ch.birth_year[p], state.day)
    eligible = (grade[:, None] >= cat.min_grade[cand][None, :]) & (grade[:, None] <= cat.max_grade[cand][None, :])
    taken = _pair_mask(rows, state.taken_rows, state.taken_events, m, cand)
    qualified = _pair_mask(rows, state.qual_rows, state.qual_events, m, cand)
    loyal = _pair_mask(rows, state.taken_rows, cat.series[state.taken_events], m, cat.series[cand])
    staged = cat.parent[cand] >= 0
    eligible &= ~taken & (~staged[None, :] | qualified)

    fit = ch.interest[p] @ cat.weights[cand].T  # [n, m]
    online = cat.online[cand]
    urgent = (cat.reg_deadline[cand] - state.day) <= URGENT_DAYS
    level = cat.level[cand].astype(np.float32)
    nest = NEST_OF_FORMAT[cat.format[cand]]
    settle = ch.settlement[p]
    aim0 = np.maximum(state.reached[rows].astype(np.float32) + 1.0, grade_base(grade))
    total = np.zeros((len(p), m), dtype=np.float64)
    for k in range(len(coef.fit)):
        static = (coef.format[k][cat.format[cand]] + coef.prestige[k] * cat.prestige[cand]
                  + coef.online[k] * online + coef.urgency[k] * urgent)
        offline_pen = np.array([0.0, coef.offline_town[k], coef.offline_rural[k]], dtype=np.float32)[settle]
        aim = np.clip(aim0 + coef.aim_shift[k], 0.0, 4.0)
        u = (coef.fit[k] * fit + static[None, :] + offline_pen[:, None] * ~online[None, :]
             - coef.level[k] * (level[None, :] - aim[:, None]) ** 2
             + coef.loyalty[k] * loyal + coef.qualified[k] * qualified).astype(np.float64)
        u[~eligible] = -np.inf
        total += ch.taste[p, k][:, None] * _nested_logit(u, nest, coef.nest_scale)
    return total


def _nested_logit(u: np.ndarray, nest: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Row-wise nested-logit probabilities of utilities u [n, m] (-inf = unavailable) in nests of scales."""
    n_nests = len(scale)
    inclusive = np.full((u.shape[0], n_nests), -np.inf)
    within = np.zeros_like(u)
    for g in range(n_nests):
        cols = np.flatnonzero(nest == g)
        if len(cols) == 0:
            continue
        v = u[:, cols] / scale[g]
        top = v.max(axis=1, keepdims=True)
        finite = np.isfinite(top[:, 0])
        top = np.where(np.isfinite(top), top, 0.0)
        e = np.exp(v - top)
        s = e.sum(axis=1, keepdims=True)
        within[:, cols] = e / np.where(s > 0, s, 1.0)
        inclusive[finite, g] = scale[g] * (np.log(s[finite, 0]) + top[finite, 0])
    top = inclusive.max(axis=1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    e = np.exp(inclusive - top)
    s = e.sum(axis=1, keepdims=True)
    p_nest = e / np.where(s > 0, s, 1.0)
    return within * p_nest[:, nest]
