"""The simulation's record: registrations, results and teams as growing integer arrays."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from recommender.columns import RESULTS_ALL

RESULT_CODE = {name: i for i, name in enumerate(RESULTS_ALL)}
QUALIFYING = RESULT_CODE["finalist"]  # finalist, prize_winner and winner qualify for the next stage
DROPPED = RESULT_CODE["dropped"]


@dataclass
class History:
    """Everything that happened, as parallel arrays (internal participant/event/team numbers)."""

    reg_participant: np.ndarray  # int32
    reg_event: np.ndarray  # int32
    reg_day: np.ndarray  # int32: the decision date the participant registered on
    res_participant: np.ndarray  # int32
    res_event: np.ndarray  # int32
    res_day: np.ndarray  # int32: the event's end date (results are known from then on)
    res_result: np.ndarray  # int8, position in RESULTS_ALL
    res_team: np.ndarray  # int32, -1 individual
    team_mentor: np.ndarray  # int32 per team, -1 none


@dataclass
class HistoryBuilder:
    """Appends per month, concatenates on demand (amortized: one concatenation per month)."""

    _regs: list[tuple[np.ndarray, ...]] = field(default_factory=list)
    _res: list[tuple[np.ndarray, ...]] = field(default_factory=list)
    _team_mentor: list[np.ndarray] = field(default_factory=list)
    _cache: History | None = None

    def add_registrations(self, p: np.ndarray, e: np.ndarray, day: int) -> None:
        self._regs.append((p.astype(np.int32), e.astype(np.int32), np.full(len(p), day, dtype=np.int32)))
        self._cache = None

    def add_results(
        self, p: np.ndarray, e: np.ndarray, day: np.ndarray, result: np.ndarray, team: np.ndarray
    ) -> None:
        self._res.append((
            p.astype(np.int32), e.astype(np.int32), day.astype(np.int32), result.astype(np.int8),
            team.astype(np.int32),
        ))
        self._cache = None

    def add_teams(self, mentor: np.ndarray) -> None:
        self._team_mentor.append(mentor.astype(np.int32))
        self._cache = None

    @property
    def n_teams(self) -> int:
        return int(sum(len(m) for m in self._team_mentor))

    def view(self) -> History:
        if self._cache is None:
            regs = _concat3(self._regs, 3)
            res = _concat3(self._res, 5)
            self._regs = [(regs[0], regs[1], regs[2])]
            self._res = [tuple(res)]
            tm = np.concatenate(self._team_mentor) if self._team_mentor else np.zeros(0, np.int32)
            self._team_mentor = [tm]
            self._cache = History(
                reg_participant=regs[0], reg_event=regs[1], reg_day=regs[2],
                res_participant=res[0], res_event=res[1], res_day=res[2], res_result=res[3], res_team=res[4],
                team_mentor=tm,
            )
        return self._cache


def _concat3(parts: list[tuple[np.ndarray, ...]], width: int) -> list[np.ndarray]:
    if not parts:
        dtypes = [np.int32, np.int32, np.int32, np.int8, np.int32][:width]
        return [np.zeros(0, dtype=d) for d in dtypes]
    return [np.concatenate([p[i] for p in parts]) for i in range(width)]
