"""Short reasons a 15-year-old can read, from what drove an event's score and the participant's record."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from recommender.aif.parsing import parse_weighted
from recommender.columns import LEVELS, Columns
from recommender.graph import QUALIFYING_RESULTS, AchievementsGraph

RESULT_WORDS = {"finalist": "reached the final", "prize_winner": "won a prize", "winner": "won"}
FORMAT_WORDS = {
    "olympiad": "olympiads", "hackathon": "hackathons", "project_school": "project schools",
    "contest": "contests", "course": "courses", "camp": "camps", "conference": "conferences",
    "accelerator": "accelerators",
}
# Which reason a ranking feature stands for; features without one (grade, ...) never speak.
FEATURE_REASON = {
    "qualified_stage": "stage",
    "interest_dot": "interest", "interest_cos": "interest", "interest_top": "interest", "declared_dot": "declared",
    "level_gap": "level", "level_gap_abs": "level", "reached_level": "level", "event_level": "level",
    "level_taken_gap": "level", "series_taken": "series", "format_share": "format",
    "online": "reach", "online_share": "reach", "offline_rural": "reach", "offline_town": "reach",
    "series_popularity": "popular", "series_popularity_region": "popular", "series_popularity_grade": "popular",
    "format_popularity": "popular", "edition_popularity": "popular", "series_region_share": "popular",
    "edition_relative": "popular", "series_level_share": "popular",
    "capacity": "places", "series_fill": "places",
    "schoolmates_series": "schoolmates", "teammates_series": "teammates",
    "mentor_fit": "mentor", "weeks_to_start": "soon",
    "registration_open_days": "registration", "registration_left_days": "registration",
    "registration_left_share": "registration",
    "score_content_match": "interest", "score_item_knn": "similar",
}
DEFAULT_ORDER = ("stage", "interest", "level", "series", "reach")
EPOCH = date(1970, 1, 1)  # event_arrays hold dates as days since it


@dataclass(frozen=True)
class EventFacts:
    """The events' columns an answer and its reasons show, as plain arrays: built once per events table."""

    ids: np.ndarray  # str: event_id by position
    title: np.ndarray  # str (pandas' text for a missing value, as str() gives it)
    format: np.ndarray  # str
    level: np.ndarray  # str
    level_rank: np.ndarray
    start_date: list[date | None]
    region: list[str | None]
    parent: np.ndarray  # position of the previous stage (-1: none, or not in the graph)
    series: np.ndarray  # series code: equal codes, same series
    competences: list[list[str]]  # by weight, strongest first
    topics: dict[str, str]  # competence id -> its lower-case English name
    competence_ids: np.ndarray  # str: competence id by position in the graph's competence index

    @classmethod
    def of(cls, graph: AchievementsGraph) -> EventFacts:
        ev = graph.events
        n = len(ev)
        region = ev[Columns.Region] if Columns.Region in ev.columns else pd.Series([None] * n)
        if Columns.ParentEvent in ev.columns:
            named = ev[Columns.ParentEvent].astype("string").fillna("")
            parent = np.where(named.to_numpy(dtype=object) != "", graph.event_index.get_indexer(named), -1)
        else:
            parent = np.full(n, -1)
        texts = ev["competences"] if "competences" in ev.columns else pd.Series([None] * n)
        names = graph.competences.get("name_en", graph.competences[Columns.Competence]).astype(str)
        return cls(
            ids=np.asarray([str(v) for v in graph.event_index], dtype=object),
            title=np.asarray([str(v) for v in ev["title"]], dtype=object),
            format=np.asarray([str(v) for v in ev["format"]], dtype=object),
            level=np.asarray([str(v) for v in ev["level"]], dtype=object),
            level_rank=ev["level_rank"].to_numpy(np.int64),
            start_date=[None if pd.isna(v) else pd.Timestamp(v).date() for v in ev[Columns.StartDate]],
            region=[None if pd.isna(v) else str(v) for v in region],
            parent=np.asarray(parent, dtype=np.int64),
            series=pd.factorize(graph.series_keys())[0],
            competences=[
                [c for c, _ in sorted(parse_weighted(t) if isinstance(t, str) else [], key=lambda cw: -cw[1])]
                for t in texts
            ],
            topics={c: name.lower() for c, name in
                    zip(graph.competences[Columns.Competence].astype(str), names, strict=True)},
            competence_ids=np.asarray([str(v) for v in graph.competence_index], dtype=object),
        )


# Facts of the last events tables seen (a serving graph and the graphs folded in from it share one table).
_EVENT_FACTS: dict[int, tuple[weakref.ref[pd.DataFrame], weakref.ref[pd.DataFrame], EventFacts]] = {}
_EVENT_FACTS_KEPT = 4


def event_facts(graph: AchievementsGraph) -> EventFacts:
    """`EventFacts` of the graph's events, built on first use and kept while its events table lives."""
    key = id(graph.events)
    hit = _EVENT_FACTS.get(key)
    if hit is not None and hit[0]() is graph.events and hit[1]() is graph.competences:
        return hit[2]
    facts = EventFacts.of(graph)
    while len(_EVENT_FACTS) >= _EVENT_FACTS_KEPT:
        _EVENT_FACTS.pop(next(iter(_EVENT_FACTS)), None)
    _EVENT_FACTS[key] = (weakref.ref(graph.events), weakref.ref(graph.competences), facts)
    return facts


class _Facts:
    """The participant's record as the reason texts need it, read from the graph's sparse rows (no scan)."""

    def __init__(self, graph: AchievementsGraph, participant: int) -> None:
        self.graph = graph
        self.participant = participant
        self.events = event_facts(graph)
        self._rows: np.ndarray | None = None  # the participant's achievement rows, found when first needed
        pe = graph.participant_event()
        start, end = pe.indptr[participant], pe.indptr[participant + 1]
        self.taken = pe.indices[start:end]  # events taken
        self.taken_rows = pe.data[start:end]  # achievements at each (a person may hold several roles)
        self.has_history = bool(end > start)
        if self.has_history:
            # The competences of the events taken (weights are positive): read from their rows, no sparse product.
            ec = graph.event_competence()
            entries = np.concatenate([np.arange(ec.indptr[e], ec.indptr[e + 1]) for e in self.taken])
            self.interests = set(self.events.competence_ids[ec.indices[entries[ec.data[entries] > 0]]])
            self.best_level = int(self.events.level_rank[self.taken].max())
        else:
            self.interests = set()
            self.best_level = -1
        declared = graph.participant_interests()
        self.declared = set(self.events.competence_ids[
            declared.indices[declared.indptr[participant]:declared.indptr[participant + 1]]])

    def topic(self, cid: str) -> str:
        return self.events.topics.get(cid, cid.lower())

    def qualifying_result(self, event: int) -> str | None:
        """The participant's first qualifying result at an event, in the order the graph holds the rows."""
        q = self.graph.qualified()
        if event not in q.indices[q.indptr[self.participant]:q.indptr[self.participant + 1]]:
            return None
        a = self.graph.achievements
        if self._rows is None:  # one scan of the rows per request, and only when a stage is recommended
            self._rows = np.flatnonzero(a["participant_idx"].to_numpy() == self.participant)
        rows = self._rows[a["event_idx"].to_numpy()[self._rows] == event]
        won = [r for r in a[Columns.Result].iloc[rows].astype(str) if r in QUALIFYING_RESULTS]
        return won[0] if won else None


def _text(kind: str, facts: _Facts, event: int) -> str | None:
    g = facts.graph
    ev = facts.events
    comps = ev.competences[event]
    if kind == "stage":
        pos = int(ev.parent[event])
        result = facts.qualifying_result(pos) if pos >= 0 else None
        if result is not None:
            return f"You {RESULT_WORDS.get(result, 'qualified')} at {ev.title[pos]}; this is the next stage"
        return None
    if kind == "interest":
        shared = [c for c in comps if c in facts.interests]
        if shared:
            topic = facts.topic(shared[0])
            return f"You have taken part in {topic} events; this one is about {topic} too"
        # The interest profile mixes in declared interests (alone when there is no history).
        return _text("declared", facts, event) or (
            f"A good start in {facts.topic(comps[0])}" if not facts.has_history and comps else None)
    if kind == "declared":
        said = [c for c in comps if c in facts.declared]
        return f"You said you are interested in {facts.topic(said[0])}; this event is about it" if said else None
    if kind == "level":
        level = int(ev.level_rank[event])
        if facts.best_level >= 0 and level == facts.best_level + 1:
            return f"You have reached the {LEVELS[facts.best_level]} level; this {LEVELS[level]} event is the next one"
        if facts.best_level >= 0 and level == facts.best_level:
            return f"It is at the {LEVELS[level]} level you already know"
        return None
    if kind == "series":
        taken = ev.series[facts.taken]
        return "You took part in an earlier edition of this event" if ev.series[event] in taken else None
    if kind == "format":
        fmt = ev.format[event]
        done = facts.taken_rows[ev.format[facts.taken] == fmt].sum()
        return f"You often take part in {FORMAT_WORDS.get(fmt, fmt)}" if done >= 2 else None
    if kind == "reach":
        online = bool(g.event_arrays.online[event])
        return "Online: you can take part from anywhere" if online else "Held in your region"
    if kind == "popular":
        return "Popular with students like you"
    if kind == "places":
        capacity = g.event_arrays.capacity[event]
        return f"Places are limited ({int(capacity)}): register early" if capacity > 0 else None
    if kind == "similar":
        return "Students who took the same events as you often take this one" if facts.has_history else None
    if kind == "schoolmates":
        return "Students from your school have taken part in it"
    if kind == "teammates":
        return "Your former teammates have taken part in it"
    if kind == "mentor":
        return f"Fits your mentor's field: {facts.topic(comps[0])}" if comps else None
    if kind == "registration":
        arrays = g.event_arrays
        closes = arrays.deadline[event] if not np.isnan(arrays.deadline[event]) else arrays.start[event]
        if np.isnan(closes):
            return None
        return f"Registration is open until {(EPOCH + timedelta(days=int(closes))).isoformat()}"
    if kind == "soon":
        start = ev.start_date[event]
        return f"Starts soon, on {start.isoformat()}" if start is not None else None
    return None


def event_reasons(
    graph: AchievementsGraph, participant: int, event: int, drivers: Sequence[str] = (), limit: int = 2,
    facts: _Facts | None = None,
) -> list[str]:
    """Up to `limit` reasons: the features that drove the score first (when the model says), then facts."""
    f = facts or _Facts(graph, participant)
    kinds: list[str] = []
    for feature in drivers:
        kind = FEATURE_REASON.get(feature)
        if kind and kind not in kinds:
            kinds.append(kind)
    kinds += [k for k in DEFAULT_ORDER if k not in kinds]
    reasons: list[str] = []
    for kind in kinds:
        text = _text(kind, f, event)
        if text and text not in reasons:
            reasons.append(text)
        if len(reasons) == limit:
            break
    return reasons


def participant_facts(graph: AchievementsGraph, participant: int) -> _Facts:
    return _Facts(graph, participant)
