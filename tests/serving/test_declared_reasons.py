"""Reasons for participants who declared interests: what they said is named when an event is about it."""

from __future__ import annotations

import pandas as pd

from recommender.graph import AchievementsGraph
from serving.services.reasons import event_reasons
from tests.tiny import tiny_tables


def _graph() -> AchievementsGraph:
    tables = tiny_tables()
    people = tables["participants"]
    newcomer = pd.DataFrame({"participant_id": pd.array(["p5"], dtype="string"),
                             "region_code": pd.array(["16"], dtype="string"),
                             "grade": pd.array([9], dtype="Int64"),
                             "grade_date": pd.to_datetime(["2025-01-01"])})
    people = pd.concat([people, newcomer], ignore_index=True)
    people["interests"] = pd.array([None, "math:1", None, None, "robotics:1;ai:0.5"], dtype="string")
    return AchievementsGraph.from_tables({**tables, "participants": people})


def test_a_cold_participant_hears_what_they_declared() -> None:
    graph = _graph()
    p5 = int(graph.participant_positions(["p5"])[0])
    online = int(graph.event_index.get_loc("e_online"))  # robotics:1;informatics:0.5
    reasons = event_reasons(graph, p5, online, drivers=["interest_cos"])
    assert reasons[0] == "You said you are interested in robotics; this event is about it"
    # An event about something else is not explained by the declaration.
    camp = int(graph.event_index.get_loc("e_full"))  # physics:1
    assert not any("You said" in r for r in event_reasons(graph, p5, camp, drivers=["interest_cos"]))
    # Without a declaration the cold participant gets the generic start.
    p4 = int(graph.participant_positions(["p4"])[0])
    assert event_reasons(graph, p4, online, drivers=["interest_cos"])[0] == "A good start in robotics"


def _math_olympian(graph: AchievementsGraph) -> tuple[int, int]:
    """p2, who took math olympiads and declared math, and a math event."""
    return int(graph.participant_positions(["p2"])[0]), int(graph.event_index.get_loc("e_reg_final"))


def test_history_speaks_before_the_declaration() -> None:
    graph = _graph()
    p2, school = _math_olympian(graph)
    reasons = event_reasons(graph, p2, school, drivers=["interest_cos"])
    assert reasons[0] == "You have taken part in mathematics events; this one is about mathematics too"
    assert not any("You said" in r for r in reasons)


def test_the_declared_fit_names_the_declaration_even_beside_a_history() -> None:
    graph = _graph()
    p2, school = _math_olympian(graph)
    # When the declaration's own fit drove the score, the reason is what was said, not what was done.
    reasons = event_reasons(graph, p2, school, drivers=["declared_dot"])
    assert reasons[0] == "You said you are interested in mathematics; this event is about it"
    online = int(graph.event_index.get_loc("e_online"))  # robotics: not declared, so the declaration is silent
    assert not any("You said" in r for r in event_reasons(graph, p2, online, drivers=["declared_dot"]))
