"""Results of the alternative world: quota-based places by rank within each event (not skill-vs-difficulty).

perf = ability + 2 * (interest . w_e) + Logistic(0, 0.7); finishers are ranked by perf and the top shares
of each event get winner / prize_winner / finalist (finalist and above qualify for the next stage);
courses and camps only complete or drop. Ability grows a little with every finished event.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from alt_calendar import FORMATS, RESULTS
from alt_catalog import Catalog

R = {name: i for i, name in enumerate(RESULTS)}
ROLE_NAMES = ("participant", "captain", "author")
# (winner, prize_winner, finalist shares of finishers, result of the rest, ranked)
QUOTAS: dict[str, tuple[float, float, float, str, bool]] = {
    "olympiad": (0.05, 0.15, 0.20, "participant", True),
    "contest": (0.05, 0.15, 0.15, "participant", True),
    "hackathon": (0.08, 0.12, 0.20, "participant", True),
    "project_school": (0.0, 0.10, 0.0, "completed", True),
    "conference": (0.05, 0.15, 0.0, "participant", True),
    "course": (0.0, 0.0, 0.0, "completed", False),
    "camp": (0.0, 0.0, 0.0, "completed", False),
    "accelerator": (0.10, 0.10, 0.20, "completed", True),
}
STAGE_QUOTAS = {  # olympiad stages override: (online, stage) -> shares
    (False, 1): (0.03, 0.12, 0.10),  # regional stage of a subject track
    (True, 0): (0.0, 0.0, 0.25),  # online qualifier: the top quarter goes to the final
    (True, 1): (0.08, 0.25, 0.0),  # online national final
}
DROPOUT = {"course": 0.0, "accelerator": 0.25, "camp": 0.05}  # courses: ability decides (below)
DEFAULT_DROPOUT = 0.07
PUBLICATION_LAG = {True: 3, False: 1}  # days after the end when results are known (ranked or not)
QUALIFYING = R["finalist"]


@dataclass
class EventResults:
    result: np.ndarray  # int8 code in RESULTS
    rank: np.ndarray  # int32, 0 = none
    score: np.ndarray  # float32, nan = none
    performance: np.ndarray  # float32
    growth: np.ndarray  # float32
    role: np.ndarray  # int8 position in ROLE_NAMES


def result_day(cat: Catalog) -> np.ndarray:
    ranked = np.array([QUOTAS[f][4] for f in FORMATS])[cat.format]
    return (cat.end + np.where(ranked, PUBLICATION_LAG[True], PUBLICATION_LAG[False])).astype(np.int32)


def event_results(rng: np.random.Generator, cat: Catalog, e: int, regs: np.ndarray, ability: np.ndarray,
                  interest: np.ndarray) -> EventResults:
    fmt = FORMATS[int(cat.format[e])]
    win, prize, final, rest, ranked = QUOTAS[fmt]
    if fmt == "olympiad":
        win, prize, final = STAGE_QUOTAS.get((bool(cat.region[e] < 0), int(cat.stage[e])), (win, prize, final))
    n = len(regs)
    perf = (ability[regs] + 2.0 * (interest[regs] @ cat.weights[e]) + rng.logistic(0.0, 0.7, n)).astype(np.float32)
    dropped = rng.random(n) < DROPOUT.get(fmt, DEFAULT_DROPOUT)
    result = np.full(n, R[rest], dtype=np.int8)
    result[dropped] = R["dropped"]
    rank = np.zeros(n, dtype=np.int32)
    score = np.full(n, np.nan, dtype=np.float32)
    fin = np.flatnonzero(~dropped)
    if ranked and len(fin):
        order = fin[np.argsort(-perf[fin], kind="stable")]
        rank[order] = np.arange(1, len(order) + 1)
        bounds = np.floor(np.cumsum([win, prize, final]) * len(order) + 0.5).astype(int)
        result[order[: bounds[2]]] = R["finalist"]
        result[order[: bounds[1]]] = R["prize_winner"]
        result[order[: bounds[0]]] = R["winner"]
        z = (perf[fin] - perf[fin].mean()) / (perf[fin].std() + 1e-6)
        score[fin] = np.clip(np.round(50.0 + 15.0 * z, 1), 0.0, 100.0)
    if fmt == "course":
        # Completing a course depends on ability, not only on luck.
        keep = 1.0 / (1.0 + np.exp(-(ability[regs] + 0.8)))
        result[rng.random(n) > keep] = R["dropped"]
        result[result != R["dropped"]] = R["completed"]
    prized = (result >= R["prize_winner"]) & (result != R["dropped"])
    growth = np.where(result == R["dropped"], 0.0, 0.04 + 0.08 * prized).astype(np.float32)
    role = np.zeros(n, dtype=np.int8)
    if fmt == "hackathon":
        role[rng.random(n) < 0.25] = 1
    elif fmt in ("contest", "conference", "project_school"):
        role[:] = 2
    return EventResults(result, rank, score, perf, growth, role)
