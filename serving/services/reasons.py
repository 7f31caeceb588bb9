"""Short reasons a 15-year-old can read, from what drove an event's score and the participant's record."""

from __future__ import annotations

from collections.abc import Sequence

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
    "interest_dot": "interest", "interest_cos": "interest", "interest_top": "interest",
    "level_gap": "level", "level_gap_abs": "level", "reached_level": "level", "event_level": "level",
    "series_taken": "series", "format_share": "format",
    "online": "reach", "offline_rural": "reach", "offline_town": "reach",
    "series_popularity": "popular", "series_popularity_region": "popular", "series_popularity_grade": "popular",
    "format_popularity": "popular",
    "schoolmates_series": "schoolmates", "teammates_series": "teammates",
    "mentor_fit": "mentor", "weeks_to_start": "soon",
    "score_content_match": "interest", "score_item_knn": "similar",
}
DEFAULT_ORDER = ("stage", "interest", "level", "series", "reach")


class _Facts:
    """The participant's record as the reason texts need it."""

    def __init__(self, graph: AchievementsGraph, participant: int) -> None:
        self.graph = graph
        self.mine = graph.achievements[graph.achievements["participant_idx"] == participant]
        self.names = dict(
            zip(graph.competences[Columns.Competence].astype(str),
                graph.competences.get("name_en", graph.competences[Columns.Competence]).astype(str), strict=True)
        )
        if len(self.mine):
            # Only this participant's row: the request path never multiplies the whole graph.
            row = graph.participant_event()[participant] @ graph.event_competence()
            profile = np.asarray(row.todense()).ravel()
            self.interests = {c for c, v in zip(graph.competence_index, profile, strict=True) if v > 0}
            levels = graph.events["level_rank"].to_numpy()[self.mine["event_idx"].to_numpy()]
            self.best_level = int(levels.max())
        else:
            self.interests = set()
            self.best_level = -1

    def topic(self, cid: str) -> str:
        return self.names.get(cid, cid).lower()


def _text(kind: str, facts: _Facts, event: int) -> str | None:
    g = facts.graph
    ev = g.events.iloc[event]
    text = ev.get("competences")
    comps = [c for c, _ in sorted(parse_weighted(text) if isinstance(text, str) else [], key=lambda cw: -cw[1])]
    if kind == "stage":
        parent = ev.get(Columns.ParentEvent)
        if isinstance(parent, str) and parent:
            pos = int(g.event_index.get_indexer([parent])[0])
            won = facts.mine[(facts.mine["event_idx"] == pos) & facts.mine[Columns.Result].isin(QUALIFYING_RESULTS)]
            if len(won):
                what = RESULT_WORDS.get(str(won.iloc[0][Columns.Result]), "qualified")
                return f"You {what} at {g.events.iloc[pos]['title']}; this is the next stage"
        return None
    if kind == "interest":
        shared = [c for c in comps if c in facts.interests]
        if shared:
            topic = facts.topic(shared[0])
            return f"You have taken part in {topic} events; this one is about {topic} too"
        if not len(facts.mine) and comps:
            return f"A good start in {facts.topic(comps[0])}"
        return None
    if kind == "level":
        level = int(ev["level_rank"])
        if facts.best_level >= 0 and level == facts.best_level + 1:
            return f"You have reached the {LEVELS[facts.best_level]} level; this {LEVELS[level]} event is the next one"
        if facts.best_level >= 0 and level == facts.best_level:
            return f"It is at the {LEVELS[level]} level you already know"
        return None
    if kind == "series":
        series = g.series_keys().to_numpy()
        taken = set(series[facts.mine["event_idx"].to_numpy()])
        return "You took part in an earlier edition of this event" if series[event] in taken else None
    if kind == "format":
        fmt = str(ev["format"])
        done = g.events["format"].to_numpy()[facts.mine["event_idx"].to_numpy()]
        return f"You often take part in {FORMAT_WORDS.get(fmt, fmt)}" if (done == fmt).sum() >= 2 else None
    if kind == "reach":
        online = bool(g.event_arrays.online[event])
        return "Online: you can take part from anywhere" if online else "Held in your region"
    if kind == "popular":
        return "Popular with students like you"
    if kind == "similar":
        return "Students who took the same events as you often take this one" if len(facts.mine) else None
    if kind == "schoolmates":
        return "Students from your school have taken part in it"
    if kind == "teammates":
        return "Your former teammates have taken part in it"
    if kind == "mentor":
        return f"Fits your mentor's field: {facts.topic(comps[0])}" if comps else None
    if kind == "soon":
        start = pd.Timestamp(ev[Columns.StartDate])
        return f"Starts soon, on {start.date().isoformat()}"
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
