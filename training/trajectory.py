"""Trajectories: a dated multi-step plan toward a goal, respecting stage order, with the chance of reaching it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from recommender.aif.parsing import parse_weighted
from recommender.columns import LEVEL_RANK, LEVELS, Columns
from recommender.eligibility import eligibility_mask
from recommender.graph import QUALIFYING_RESULTS, AchievementsGraph, to_timestamp
from recommender.models import EventRecommender

GOAL_KINDS = ("competence", "level", "program")
# Beta prior strength of the qualification rate: how many past results a participant's own rate is worth.
PRIOR_RESULTS = 4.0


class GoalError(ValueError):
    pass


@dataclass(frozen=True)
class Goal:
    """`competence:<id>[:<level>]`, `level:<level>` or `program:<id>`."""

    kind: str
    target: str
    level: int  # the level at which the goal counts as reached

    @classmethod
    def parse(cls, text: str, graph: AchievementsGraph) -> Goal:
        kind, _, rest = text.partition(":")
        if kind not in GOAL_KINDS or not rest:
            raise GoalError(f"goal must be one of {', '.join(k + ':...' for k in GOAL_KINDS)}; got {text!r}")
        if kind == "level":
            if rest not in LEVEL_RANK:
                raise GoalError(f"unknown level {rest!r}; levels: {', '.join(LEVELS)}")
            return cls(kind, rest, LEVEL_RANK[rest])
        if kind == "competence":
            cid, _, level = rest.partition(":")
            if cid not in set(graph.competence_index):
                raise GoalError(f"unknown competence {cid!r}")
            if level and level not in LEVEL_RANK:
                raise GoalError(f"unknown level {level!r}; levels: {', '.join(LEVELS)}")
            return cls(kind, cid, LEVEL_RANK[level] if level else LEVEL_RANK["regional"])
        programs = graph.programs
        if Columns.Program not in programs.columns or rest not in set(programs[Columns.Program].astype(str)):
            raise GoalError(f"unknown program {rest!r}")
        row = programs[programs[Columns.Program].astype(str) == rest].iloc[0]
        min_level = row.get("min_level")
        return cls(kind, rest, LEVEL_RANK.get(str(min_level), LEVEL_RANK["regional"]))


@dataclass
class Step:
    event_id: str
    title: str
    start_date: pd.Timestamp
    level: str
    format: str
    p_qualify: float  # chance of a qualifying result (finalist or better) there
    counts_for_goal: bool
    reason: str


@dataclass
class Trajectory:
    participant_id: str
    goal: Goal
    steps: list[Step] = field(default_factory=list)
    probability: float = 0.0  # of reaching the goal by following the plan


def _goal_fit(graph: AchievementsGraph, goal: Goal, events: np.ndarray) -> np.ndarray:
    """How much each event serves the goal (0..1), ignoring its level."""
    ev = graph.events.iloc[events]
    if goal.kind == "level":
        return np.ones(len(events))
    if goal.kind == "competence":
        weights = [dict(parse_weighted(t)).get(goal.target, 0.0) if isinstance(t, str) else 0.0
                   for t in ev["competences"]]
        return np.minimum(np.asarray(weights, dtype=np.float64), 1.0)
    row = graph.programs[graph.programs[Columns.Program].astype(str) == goal.target].iloc[0]
    need = dict(parse_weighted(str(row["requirements"])))
    total = sum(need.values()) or 1.0
    fit = []
    for text in ev["competences"]:
        have = dict(parse_weighted(text)) if isinstance(text, str) else {}
        fit.append(sum(min(w, have.get(c, 0.0)) for c, w in need.items()) / total)
    return np.asarray(fit, dtype=np.float64)


def qualification_rates(graph: AchievementsGraph, participant: int) -> np.ndarray:
    """Chance of a qualifying result at each level: everyone's rate, shrunk toward the participant's own."""
    a = graph.achievements
    done = a[~a[Columns.Result].isin(["registered", "dropped"])]
    levels = graph.events["level_rank"].to_numpy()[done["event_idx"].to_numpy()]
    qual = done[Columns.Result].isin(QUALIFYING_RESULTS).to_numpy()
    rates = np.zeros(len(LEVELS))
    mine = done["participant_idx"].to_numpy() == participant
    for lv in range(len(LEVELS)):
        at = levels == lv
        base = (qual[at].sum() + 1.0) / (at.sum() + 4.0)
        own_n = float((at & mine).sum())
        own_q = float((at & mine & qual).sum())
        rates[lv] = (own_q + PRIOR_RESULTS * base) / (own_n + PRIOR_RESULTS)
    return rates


def plan_trajectory(
    graph: AchievementsGraph,
    model: EventRecommender,
    participant_id: str,
    goal_text: str,
    *,
    as_of: pd.Timestamp | str,
    horizon_days: int = 270,
    max_steps: int = 6,
) -> Trajectory:
    """A plan of events starting within the horizon, at most one at a time, stages after their parents."""
    now = to_timestamp(as_of)
    goal = Goal.parse(goal_text, graph)
    position = int(graph.participant_positions([participant_id])[0])
    if position < 0:
        raise LookupError(participant_id)
    g = graph if graph.known_before(now) else graph.as_of(now)
    ev = g.events
    start = pd.to_datetime(ev[Columns.StartDate])
    in_window = ((start > now) & (start <= now + pd.Timedelta(days=horizon_days))).to_numpy() & g.announced()
    if Columns.RegistrationDeadline in ev.columns:
        deadline = pd.to_datetime(ev[Columns.RegistrationDeadline])
        in_window &= (deadline.isna() | (deadline >= now)).to_numpy()  # registration may open later
    candidates = np.flatnonzero(in_window)
    trajectory = Trajectory(participant_id, goal)
    if len(candidates) == 0:
        return trajectory
    # The rules today (grade, reach, capacity, not taken, stage); a stage not yet qualified for is
    # plannable when its previous stage lies ahead too (the plan then puts that first).
    parents = np.full(len(candidates), -1)
    if Columns.ParentEvent in ev.columns:
        parents = g.event_index.get_indexer(ev[Columns.ParentEvent].astype("string").fillna("").iloc[candidates])
    allowed = eligibility_mask(g, now, np.asarray([position]), candidates)[0]
    ahead = np.isin(parents, candidates)
    if (~allowed & ahead).any():
        parent_ok = eligibility_mask(g, now, np.asarray([position]), np.maximum(parents, 0))[0]
        rules_but_stage = eligibility_mask(g, now, np.asarray([position]), candidates, check_stage=False)[0]
        allowed |= ahead & parent_ok & rules_but_stage
    candidates, parents = candidates[allowed], parents[allowed]
    if len(candidates) == 0:
        return trajectory

    relevance = model.score_events(g, position, candidates, now)
    relevance = (relevance - relevance.min()) / (np.ptp(relevance) or 1.0)
    fit = _goal_fit(g, goal, candidates)
    level = ev["level_rank"].to_numpy()[candidates]
    reaches = (level >= goal.level) & (fit > 0)
    rates = qualification_rates(g, position)
    value = relevance + 2.0 * fit * (1.0 + (level >= goal.level)) - 0.1 * np.maximum(level - goal.level, 0)
    value[fit <= 0] = 0.0  # an event that does not serve the goal only enters as a previous stage
    via: dict[int, int] = {}  # previous stage -> the stage it was planned for

    chosen: list[int] = []
    end = pd.to_datetime(ev[Columns.EndDate]).fillna(start) if Columns.EndDate in ev.columns else start

    def overlaps(i: int) -> bool:
        e = candidates[i]
        return any(start.iloc[e] <= end.iloc[candidates[j]] and start.iloc[candidates[j]] <= end.iloc[e]
                   for j in chosen)

    qualified_now = {int(e) for e in np.flatnonzero(g.qualified()[position].toarray().ravel() > 0)}
    for i in np.argsort(-value, kind="stable"):
        if len(chosen) >= max_steps or value[i] <= 0.2:
            break
        if i in chosen or overlaps(i):
            continue
        p = parents[i]
        if p >= 0 and p not in qualified_now:
            parent_pos = np.flatnonzero(candidates == p)
            if not len(parent_pos):
                continue
            j = int(parent_pos[0])
            if j not in chosen:
                if overlaps(j) or len(chosen) + 2 > max_steps:
                    continue
                chosen.append(j)
                via[j] = int(i)
        chosen.append(int(i))
    chosen.sort(key=lambda i: start.iloc[candidates[i]])

    miss = 1.0
    chain: dict[int, float] = {}
    for i in chosen:
        e = int(candidates[i])
        parent = int(parents[i])
        p_parent = chain.get(parent, 1.0) if parent >= 0 and parent not in qualified_now else 1.0
        p_here = p_parent * float(rates[level[i]])
        chain[e] = p_here
        counts = bool(reaches[i])
        if counts:
            miss *= 1.0 - p_here
        trajectory.steps.append(Step(
            event_id=str(g.event_index[e]), title=str(ev.iloc[e]["title"]), start_date=start.iloc[e],
            level=LEVELS[int(level[i])], format=str(ev.iloc[e]["format"]), p_qualify=p_here,
            counts_for_goal=counts,
            reason=_step_reason(goal, counts, LEVELS[int(level[i])],
                                None if i not in via else str(ev.iloc[candidates[via[i]]]["title"])),
        ))
    trajectory.probability = 1.0 - miss
    return trajectory


def _step_reason(goal: Goal, counts: bool, level: str, qualifies_for: str | None) -> str:
    if qualifies_for is not None:
        return f"Qualify here for the next stage, {qualifies_for}"
    if counts:
        article = "An" if level[0] in "aeiou" else "A"
        return f"{article} {level} event that counts toward your goal ({goal.kind} {goal.target})"
    return f"Builds your {goal.target if goal.kind == 'competence' else 'profile'} at the {level} level first"
