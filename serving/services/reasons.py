"""Short reasons a 15-year-old can read, taken from the participant's own record and the event."""

from __future__ import annotations

import numpy as np

from recommender.aif.parsing import parse_weighted
from recommender.columns import LEVELS, Columns
from recommender.eligibility import is_online
from recommender.graph import QUALIFYING_RESULTS, AchievementsGraph

RESULT_WORDS = {"finalist": "reached the final", "prize_winner": "won a prize", "winner": "won"}


def event_reasons(graph: AchievementsGraph, participant: int, event: int, limit: int = 2) -> list[str]:
    """Up to `limit` reasons, most specific first: stage, interests, level, reach."""
    ev = graph.events.iloc[event]
    mine = graph.achievements[graph.achievements["participant_idx"] == participant]
    reasons: list[str] = []

    parent = ev.get(Columns.ParentEvent)
    if isinstance(parent, str) and parent:
        pos = graph.event_index.get_indexer([parent])[0]
        won = mine[(mine["event_idx"] == pos) & mine[Columns.Result].isin(QUALIFYING_RESULTS)]
        if len(won):
            what = RESULT_WORDS.get(str(won.iloc[0][Columns.Result]), "qualified")
            reasons.append(f"You {what} at {graph.events.iloc[pos]['title']}; this is the next stage")

    names = dict(zip(graph.competences[Columns.Competence].astype(str),
                     graph.competences.get("name_en", graph.competences[Columns.Competence]).astype(str),
                     strict=True))
    text = ev.get("competences")
    weights = parse_weighted(text) if isinstance(text, str) else []
    event_comps = [c for c, _ in sorted(weights, key=lambda cw: -cw[1])]
    if len(mine):
        profile = np.asarray(graph.participant_competence()[participant].todense()).ravel()
        counts = {c: profile[i] for c, i in zip(graph.competence_index, range(len(profile)), strict=True)}
        shared = [c for c in event_comps if counts.get(c, 0) > 0]
        if shared:
            topic = names.get(shared[0], shared[0]).lower()
            reasons.append(f"You have taken part in {topic} events; this one is about {topic} too")
        best = int(graph.events["level_rank"].to_numpy()[mine["event_idx"].to_numpy()].max())
        level = int(ev["level_rank"])
        if level == best + 1:
            reasons.append(f"You have reached the {LEVELS[best]} level; this {LEVELS[level]} event is the next one")
    elif event_comps:
        topic = names.get(event_comps[0], event_comps[0]).lower()
        reasons.append(f"A good start in {topic}: popular with students of your grade")

    if is_online(graph.events.iloc[[event]])[0]:
        reasons.append("Online: you can take part from anywhere")
    else:
        reasons.append("Held in your region")
    return reasons[:limit]
