"""The one stochastic choice model: utilities of open events, used by the generator and by the oracle alike."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np

from recommender.synth.catalog import Events
from recommender.synth.dates import grade_at
from recommender.synth.history import DROPPED, QUALIFYING, History
from recommender.synth.population import CITY, RURAL, TOWN


@dataclass(frozen=True)
class ChoiceCoefficients:
    """Weights of the utility; a participant picks open events by softmax of it (Gumbel top-n)."""

    interest: float = 7.0  # x (interest vector . event competence weights)
    mentor: float = 2.5  # x (current mentor's competences . event competence weights)
    level_above: float = 0.9  # penalty per level above "one above the level reached"
    level_below: float = 0.7  # penalty per level below it
    popularity: float = 0.7  # x latent log popularity of the series
    online: float = -0.3  # online events are a little less attractive ...
    offline_town: float = -0.3  # ... but offline ones are harder to reach outside cities
    offline_rural: float = -1.1
    friends: float = 0.6  # x log(1 + schoolmates already registered)
    teammates: float = 0.8  # x log(1 + former teammates already registered)
    weeks_ahead: float = -0.05  # per week until the start: near events win
    qualified_stage: float = 3.0  # the next stage one qualified for

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class Chooser:
    """Static inputs of the choice model (participants, events, mentors) plus its coefficients."""

    region: np.ndarray  # int16 per participant
    settlement: np.ndarray  # int8 per participant
    school: np.ndarray  # int32 per participant
    birth_year: np.ndarray  # int16 per participant
    interest: np.ndarray  # float32 [N, K]
    events: Events
    log_popularity: np.ndarray  # float32 per event (its series' latent popularity)
    mentor_weights: np.ndarray  # float32 [M, K]
    coef: ChoiceCoefficients
    n_regions: int

    @property
    def n_participants(self) -> int:
        return len(self.region)


@dataclass
class ChoiceState:
    """What the world looks like to participants on a decision date (history strictly before it)."""

    as_of: int
    open_events: np.ndarray  # int32 event numbers: registration open, not started, capacity left
    grade: np.ndarray  # int16 per participant
    reached_level: np.ndarray  # int8 per participant: highest level with a qualifying result, -1 none
    mentor_of: np.ndarray  # int32 per participant: mentor of the latest mentored team, -1 none
    # Pairs grouped by the participant's region: slice [bounds[r], bounds[r+1]).
    taken_p: np.ndarray
    taken_e: np.ndarray
    taken_bounds: np.ndarray
    qual_p: np.ndarray  # participant qualified for the open stage qual_e
    qual_e: np.ndarray
    qual_bounds: np.ndarray
    friend_school: np.ndarray  # registrations of open events by school
    friend_e: np.ndarray
    friend_bounds: np.ndarray
    mate_p: np.ndarray  # participant mate_p has mate_n former teammates registered for open event mate_e
    mate_e: np.ndarray
    mate_n: np.ndarray
    mate_bounds: np.ndarray


def _group_by_region(region_of_pair: np.ndarray, n_regions: int, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    order = np.argsort(region_of_pair, kind="stable")
    bounds = np.searchsorted(region_of_pair[order], np.arange(n_regions + 1))
    return (*(a[order] for a in arrays), bounds)


def choice_state(ch: Chooser, history: History, as_of: int) -> ChoiceState:
    """The state on `as_of` from registrations before it and results of events that ended before it."""
    ev = ch.events
    before = history.reg_day < as_of
    reg_p = history.reg_participant[before]
    reg_e = history.reg_event[before]
    used = np.bincount(reg_e, minlength=ev.n)
    is_open = (ev.reg_open <= as_of) & (ev.reg_deadline >= as_of) & (ev.start > as_of)
    is_open &= (ev.capacity == 0) | (used < ev.capacity)
    open_events = np.flatnonzero(is_open).astype(np.int32)

    known = history.res_day < as_of
    res_p = history.res_participant[known]
    res_e = history.res_event[known]
    res_r = history.res_result[known]
    good = (res_r >= QUALIFYING) & (res_r != DROPPED)
    reached = np.full(ch.n_participants, -1, dtype=np.int8)
    np.maximum.at(reached, res_p[good], ev.level[res_e[good]])

    mentor_of = np.full(ch.n_participants, -1, dtype=np.int32)
    res_team = history.res_team[known]
    mentored = res_team >= 0
    if mentored.any():
        tm = history.team_mentor[res_team[mentored]]
        has = tm >= 0
        mp = res_p[mentored][has]
        md = history.res_day[known][mentored][has]
        # The latest mentored team wins (ties: the later record).
        order = np.lexsort((np.arange(len(mp)), md))[::-1]
        first, at = np.unique(mp[order], return_index=True)
        mentor_of[first] = tm[has][order][at]

    # Pairs that matter only for open events: taken ones, schoolmates' registrations, qualifications.
    open_reg = is_open[reg_e]
    tp, te = reg_p[open_reg], reg_e[open_reg]
    taken_p, taken_e, taken_bounds = _group_by_region(ch.region[tp], ch.n_regions, tp, te)
    fs, fe, friend_bounds = _group_by_region(ch.region[tp], ch.n_regions, ch.school[tp], te)
    child = ev.child[res_e]
    q = good & (child >= 0)
    q &= is_open[np.maximum(child, 0)]
    qp, qe = res_p[q], child[q]
    qual_p, qual_e, qual_bounds = _group_by_region(ch.region[qp], ch.n_regions, qp, qe)
    mp, me, mn = _teammates_registered(res_p[res_team >= 0], res_team[res_team >= 0], tp, te)
    mate_p, mate_e, mate_n, mate_bounds = _group_by_region(ch.region[mp], ch.n_regions, mp, me, mn)
    return ChoiceState(
        as_of=as_of, open_events=open_events, grade=grade_at(ch.birth_year, as_of), reached_level=reached,
        mentor_of=mentor_of, taken_p=taken_p, taken_e=taken_e, taken_bounds=taken_bounds, qual_p=qual_p,
        qual_e=qual_e, qual_bounds=qual_bounds, friend_school=fs, friend_e=fe, friend_bounds=friend_bounds,
        mate_p=mate_p, mate_e=mate_e, mate_n=mate_n, mate_bounds=mate_bounds,
    )


def _teammates_registered(
    member: np.ndarray, team: np.ndarray, reg_p: np.ndarray, reg_e: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(participant, event, count) of former teammates registered for an event (pairs of distinct people)."""
    empty = np.zeros(0, np.int32)
    if len(member) == 0 or len(reg_p) == 0:
        return empty, empty, empty
    order = np.lexsort((member, team))
    m, t = member[order], team[order]
    pairs_a, pairs_b = [], []
    for d in range(1, int(np.bincount(t).max())):
        same = (t[d:] == t[:-d]) & (m[d:] != m[:-d])
        pairs_a += [m[d:][same], m[:-d][same]]
        pairs_b += [m[:-d][same], m[d:][same]]
    if not pairs_a:
        return empty, empty, empty
    a, b = np.concatenate(pairs_a).astype(np.int64), np.concatenate(pairs_b).astype(np.int64)
    # Repeat teams of the same two people count once.
    ab = np.unique(a * (1 << 32) + b)
    a, b = ab >> 32, ab & ((1 << 32) - 1)
    by_p = np.argsort(reg_p, kind="stable")
    rp, re = reg_p[by_p], reg_e[by_p]
    lo, hi = np.searchsorted(rp, b, side="left"), np.searchsorted(rp, b, side="right")
    count = hi - lo
    if count.sum() == 0:
        return empty, empty, empty
    who = np.repeat(a, count)
    offset = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    what = re[np.repeat(lo, count) + offset].astype(np.int64)
    key, n = np.unique(who * (1 << 32) + what, return_counts=True)
    return (key >> 32).astype(np.int32), (key & ((1 << 32) - 1)).astype(np.int32), n.astype(np.int32)


@dataclass
class UtilityBlock:
    participants: np.ndarray  # int32 [n]
    events: np.ndarray  # int32 [m]
    utility: np.ndarray  # float32 [n, m]; -inf where the event is not open to that participant


def region_candidates(ch: Chooser, state: ChoiceState, region: int) -> np.ndarray:
    """Open events a participant of `region` can reach: online ones and offline ones in the region."""
    ev_region = ch.events.region[state.open_events]
    return state.open_events[(ev_region < 0) | (ev_region == region)]


def _level_penalty(coef: ChoiceCoefficients, level: np.ndarray, target: np.ndarray | float) -> np.ndarray:
    """Penalty of an event's level against the target level "one above what was reached"."""
    diff = level - target
    return coef.level_above * np.maximum(diff, 0.0) + coef.level_below * np.maximum(-diff, 0.0)


def utility_blocks(
    ch: Chooser, state: ChoiceState, region: int, participants: np.ndarray, max_cells: int
) -> Iterator[UtilityBlock]:
    """Utilities of the region's candidate events for the given participants (all of `region`), in blocks.

    Everything but the interest/mentor fit and friends depends on the participant only through
    (target level, settlement, grade), so those terms are tabulated per combination and gathered:
    two passes over the [participants x events] block instead of a dozen.
    """
    cand = region_candidates(ch, state, region)
    if len(cand) == 0 or len(participants) == 0:
        return
    ev, coef = ch.events, ch.coef
    w = ev.weights[cand]  # [m, K]
    online = ev.online[cand]
    static = (
        coef.popularity * ch.log_popularity[cand]
        + coef.weeks_ahead * (ev.start[cand] - state.as_of) / 7.0
        + coef.online * online
    ).astype(np.float32)
    reach = np.zeros(3, dtype=np.float32)
    reach[CITY], reach[TOWN], reach[RURAL] = 0.0, coef.offline_town, coef.offline_rural
    col = np.full(ev.n, -1, dtype=np.int64)
    col[cand] = np.arange(len(cand))
    has_parent = ev.parent[cand] >= 0
    level = ev.level[cand].astype(np.float32)
    lo, hi = ev.min_grade[cand], ev.max_grade[cand]

    grades = state.grade[participants]
    g_lo, g_hi = int(grades.min()), int(grades.max())
    g_values = np.arange(g_lo, g_hi + 1)
    # table[target, settlement, grade - g_lo, event]; `eligible` keeps stage columns for the qualified.
    penalty = np.stack([_level_penalty(coef, level, float(t)) for t in range(5)])  # [5, m]
    table = (
        static[None, None, None, :]
        - penalty[:, None, None, :]
        + (reach[:, None] * ~online[None, :])[None, :, None, :]
    ).astype(np.float32)
    table = np.broadcast_to(table, (5, 3, len(g_values), len(cand))).copy()
    out_of_grade = (g_values[:, None] < lo[None, :]) | (g_values[:, None] > hi[None, :])
    table[:, :, out_of_grade] = -np.inf
    eligible = table.reshape(-1, len(cand))
    base = eligible
    if has_parent.any():
        base = eligible.copy()
        base[:, has_parent] = -np.inf

    # Region-level pair lists, restricted to these candidates.
    sl = slice(state.taken_bounds[region], state.taken_bounds[region + 1])
    taken_p, taken_c = _in_candidates(state.taken_p[sl], col[state.taken_e[sl]])
    sl = slice(state.qual_bounds[region], state.qual_bounds[region + 1])
    qual_p, qual_c = _in_candidates(state.qual_p[sl], col[state.qual_e[sl]])
    sl = slice(state.friend_bounds[region], state.friend_bounds[region + 1])
    f_school, f_c = _in_candidates(state.friend_school[sl], col[state.friend_e[sl]])
    schools, f_local = np.unique(f_school, return_inverse=True)
    # The last row stays zero: participants whose school has no registrations gather it.
    friends = np.zeros((len(schools) + 1, len(cand)), dtype=np.float32)
    np.add.at(friends, (f_local, f_c), 1.0)
    friends = (np.log1p(friends) * coef.friends).astype(np.float32)
    sl = slice(state.mate_bounds[region], state.mate_bounds[region + 1])
    # A teammate from elsewhere may have registered for an event this region cannot reach.
    reachable = col[state.mate_e[sl]] >= 0
    mate_p, mate_c = state.mate_p[sl][reachable], col[state.mate_e[sl]][reachable]
    mate_v = (np.log1p(state.mate_n[sl][reachable]) * coef.teammates).astype(np.float32)

    rows_per_block = max(1, max_cells // len(cand))
    for s in range(0, len(participants), rows_per_block):
        p = participants[s : s + rows_per_block]
        pref = (coef.interest * ch.interest[p]).astype(np.float32)
        m = state.mentor_of[p]
        has_m = m >= 0
        if has_m.any():
            pref[has_m] += coef.mentor * ch.mentor_weights[m[has_m]]
        u = pref @ w.T
        target = np.minimum(state.reached_level[p] + 1, 4).astype(np.int64)
        combo = (target * 3 + ch.settlement[p]) * len(g_values) + (state.grade[p] - g_lo)
        sorter = np.argsort(p, kind="stable")
        if len(schools):
            pos = np.minimum(np.searchsorted(schools, ch.school[p]), len(schools) - 1)
            u += friends[np.where(schools[pos] == ch.school[p], pos, len(schools))]
        mr, m_ok = _rows_of(p, sorter, mate_p)
        u[mr[m_ok], mate_c[m_ok]] += mate_v[m_ok]
        # A later stage is open only to those qualified at the previous one, and they want it badly.
        qr, q_ok = _rows_of(p, sorter, qual_p)
        qr, qc = qr[q_ok], qual_c[q_ok]
        qual_values = u[qr, qc] + eligible[combo[qr], qc] + coef.qualified_stage
        u += base[combo]
        u[qr, qc] = qual_values
        tr, t_ok = _rows_of(p, sorter, taken_p)
        u[tr[t_ok], taken_c[t_ok]] = -np.inf
        yield UtilityBlock(participants=p.astype(np.int32), events=cand.astype(np.int32), utility=u)


def _in_candidates(who: np.ndarray, column: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = column >= 0
    return who[keep], column[keep]


def _rows_of(p: np.ndarray, sorter: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row of each queried participant in the block `p` (and whether it is there at all)."""
    if len(query) == 0 or len(p) == 0:
        return np.zeros(0, np.int64), np.zeros(0, bool)
    pos = np.minimum(np.searchsorted(p, query, sorter=sorter), len(p) - 1)
    rows = sorter[pos]
    return rows, p[rows] == query


def softmax_rows(u: np.ndarray) -> np.ndarray:
    """Row-wise softmax over finite entries (-inf -> probability 0); all -inf rows give zeros."""
    top = np.max(u, axis=1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    e = np.exp(u - top)
    total = e.sum(axis=1, keepdims=True)
    return e / np.where(total > 0, total, 1.0)
