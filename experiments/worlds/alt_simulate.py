"""Day-by-day simulation of the alternative world: who wants something today, what they pick, how it ends.

Every day each participant who is around wants a new event with probability
activity * season(month) / 365 (plus a push while a stage they qualified for is open); the pick is drawn
from alt_choice's probabilities on the state strictly before that day, which is what the oracle rebuilds.
Results of an event are published a few days after it ends and are known from the next day on.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from alt_calendar import SIM_END, SIM_START, day, month_index
from alt_catalog import Catalog
from alt_choice import BatchState, Chooser, open_events, probability_blocks
from alt_population import Population
from alt_results import QUALIFYING, R, event_results, result_day

# Sep..Aug: a long autumn peak, a dip at New Year, a spring peak, a quiet summer.
SEASON = np.array([1.3, 1.6, 1.3, 0.7, 1.0, 1.3, 1.2, 1.0, 0.6, 0.3, 0.3, 0.5])
QUALIFIED_PUSH = 0.04  # extra daily probability of choosing while a stage one qualified for is open


@dataclass
class History:
    reg_participant: np.ndarray
    reg_event: np.ndarray
    reg_day: np.ndarray
    res_participant: np.ndarray
    res_event: np.ndarray
    res_day: np.ndarray
    res_result: np.ndarray
    res_rank: np.ndarray
    res_score: np.ndarray
    res_performance: np.ndarray
    res_growth: np.ndarray
    res_role: np.ndarray


def _cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)


def simulate(rng: np.random.Generator, pop: Population, cat: Catalog, chooser: Chooser) -> History:
    n = pop.n
    used = np.zeros(cat.n, dtype=np.int64)
    reached = np.full(n, -1, dtype=np.int8)
    ability = pop.ability0.astype(np.float32).copy()
    taken: dict[int, list[int]] = defaultdict(list)
    qualified: dict[int, list[int]] = defaultdict(list)
    registrants: dict[int, list[np.ndarray]] = defaultdict(list)
    rday = result_day(cat)
    due: dict[int, list[int]] = defaultdict(list)
    for finished in np.flatnonzero(rday <= day(SIM_END)).tolist():
        due[int(rday[finished])].append(finished)
    reg: dict[str, list[np.ndarray]] = defaultdict(list)
    res: dict[str, list[np.ndarray]] = defaultdict(list)
    qual_p = np.zeros(0, np.int64)  # (participant, next stage) pairs ever qualified for
    qual_e = np.zeros(0, np.int64)
    hazard0 = pop.activity / 365.0
    for d in range(day(SIM_START), day(SIM_END) + 1):
        around = (pop.join <= d) & (d <= pop.leave)
        hazard = hazard0 * SEASON[int(month_index(d))]
        is_open = open_events(cat, d, used)
        pending = np.flatnonzero(np.isin(qual_e, is_open))
        if len(pending):
            waiting = [p for p, e in zip(qual_p[pending].tolist(), qual_e[pending].tolist(), strict=True)
                       if e not in taken.get(p, ())]
            hazard = hazard.copy()
            hazard[waiting] += QUALIFIED_PUSH
        choosers = np.flatnonzero(around & (rng.random(n) < hazard)).astype(np.int32)
        if len(choosers) and len(is_open):
            picks_p, picks_e = _choose(rng, chooser, d, is_open, choosers, reached, taken, qualified)
            if len(picks_p):
                used += np.bincount(picks_e, minlength=cat.n)
                for p, e in zip(picks_p.tolist(), picks_e.tolist(), strict=True):
                    taken[p].append(e)
                order = np.argsort(picks_e, kind="stable")
                ev_sorted, starts = np.unique(picks_e[order], return_index=True)
                for e, group in zip(ev_sorted.tolist(), np.split(picks_p[order], starts[1:]), strict=True):
                    registrants[e].append(group)
                reg["p"].append(picks_p)
                reg["e"].append(picks_e)
                reg["d"].append(np.full(len(picks_p), d, np.int32))
        for e in due.pop(d, []):
            if not registrants.get(e):
                continue
            regs = np.concatenate(registrants.pop(e))
            out = event_results(rng, cat, e, regs, ability, pop.interest)
            ability[regs] += out.growth
            good = (out.result >= QUALIFYING) & (out.result != R["dropped"])
            np.maximum.at(reached, regs[good], cat.level[e])
            child = int(cat.child[e])
            if child >= 0:
                for p in regs[good].tolist():
                    qualified[p].append(child)
                qual_p = np.concatenate([qual_p, regs[good]])
                qual_e = np.concatenate([qual_e, np.full(int(good.sum()), child)])
            res["p"].append(regs)
            res["e"].append(np.full(len(regs), e, np.int32))
            res["d"].append(np.full(len(regs), d, np.int32))
            for name in ("result", "rank", "score", "performance", "growth", "role"):
                res[name].append(getattr(out, name))
    return History(
        reg_participant=_cat(reg["p"], np.int32), reg_event=_cat(reg["e"], np.int32), reg_day=_cat(reg["d"], np.int32),
        res_participant=_cat(res["p"], np.int32), res_event=_cat(res["e"], np.int32), res_day=_cat(res["d"], np.int32),
        res_result=_cat(res["result"], np.int8), res_rank=_cat(res["rank"], np.int32),
        res_score=_cat(res["score"], np.float32), res_performance=_cat(res["performance"], np.float32),
        res_growth=_cat(res["growth"], np.float32), res_role=_cat(res["role"], np.int8),
    )


def _pairs(rows_of: dict[int, list[int]], participants: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rows: list[int] = []
    events: list[int] = []
    for i, p in enumerate(participants.tolist()):
        got = rows_of.get(p)
        if got:
            rows += [i] * len(got)
            events += got
    return np.asarray(rows, dtype=np.int64), np.asarray(events, dtype=np.int32)


def _choose(rng: np.random.Generator, chooser: Chooser, d: int, is_open: np.ndarray, choosers: np.ndarray,
            reached: np.ndarray, taken: dict[int, list[int]], qualified: dict[int, list[int]]
            ) -> tuple[np.ndarray, np.ndarray]:
    """One draw per chooser from the true probabilities (choosers with nothing open to them pick nothing)."""
    t_rows, t_events = _pairs(taken, choosers)
    q_rows, q_events = _pairs(qualified, choosers)
    state = BatchState(day=d, open_events=is_open, participants=choosers, reached=reached[choosers],
                       taken_rows=t_rows, taken_events=t_events, qual_rows=q_rows, qual_events=q_events)
    out_p: list[np.ndarray] = []
    out_e: list[np.ndarray] = []
    for block in probability_blocks(chooser, state):
        prob = block.probability
        mass = prob.sum(axis=1)
        live = mass > 0
        cum = np.cumsum(prob[live], axis=1)
        u = rng.random(int(live.sum())) * cum[:, -1]
        col = np.minimum((cum < u[:, None]).sum(axis=1), prob.shape[1] - 1)
        out_p.append(block.participants[live])
        out_e.append(block.events[col])
    if not out_p:
        return np.zeros(0, np.int32), np.zeros(0, np.int32)
    return np.concatenate(out_p).astype(np.int32), np.concatenate(out_e).astype(np.int32)
