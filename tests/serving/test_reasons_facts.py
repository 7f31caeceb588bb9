"""Reason facts read from the graph's arrays and sparse rows: the same record the achievement rows hold."""

import numpy as np
import pandas as pd

from recommender.graph import AchievementsGraph
from serving.services.reasons import event_facts, event_reasons, participant_facts
from tests.tiny import tiny_tables


def _graph() -> AchievementsGraph:
    return AchievementsGraph.from_tables(tiny_tables())


def test_participant_facts_match_the_achievement_rows() -> None:
    graph = _graph()
    pos = {e: i for i, e in enumerate(graph.event_index)}
    p1 = participant_facts(graph, int(graph.participant_positions(["p1"])[0]))
    assert p1.has_history and p1.best_level == 2  # the 2023 regional stage
    assert p1.interests == {"math"}
    assert p1.qualifying_result(pos["e_school_24"]) == "finalist"
    assert p1.qualifying_result(pos["e_reg_23"]) == "prize_winner"
    assert p1.qualifying_result(pos["e_online"]) is None
    p2 = participant_facts(graph, int(graph.participant_positions(["p2"])[0]))
    assert p2.qualifying_result(pos["e_school_24"]) is None  # completed, not qualified
    p4 = participant_facts(graph, int(graph.participant_positions(["p4"])[0]))
    assert not p4.has_history and p4.best_level == -1 and not p4.interests


def test_reason_texts_from_the_record() -> None:
    graph = _graph()
    pos = {e: i for i, e in enumerate(graph.event_index)}
    p1 = int(graph.participant_positions(["p1"])[0])
    final = event_reasons(graph, p1, pos["e_reg_final"], ["qualified_stage", "series_taken"])
    assert final == ["You reached the final at School stage 2024; this is the next stage",
                     "You took part in an earlier edition of this event"]
    # p1 took three olympiad rows: formats are counted by rows, as the record holds them.
    assert event_reasons(graph, p1, pos["e_reg_final"], ["format_share"], limit=1) == [
        "You often take part in olympiads"]
    assert event_reasons(graph, p1, pos["e_online"], ["weeks_to_start"], limit=1) == ["Starts soon, on 2025-02-01"]
    # Capacity speaks only for an event that has one; an unlimited one falls back to the facts.
    assert event_reasons(graph, p1, pos["e_region77"], ["capacity"], limit=1) == [
        "Places are limited (50): register early"]
    assert event_reasons(graph, p1, pos["e_online"], ["series_fill"], limit=1) == [
        "You have reached the regional level; this national event is the next one"]
    # Where the registration window stands drove the score: its closing date (the deadline, else the start).
    assert event_reasons(graph, p1, pos["e_online"], ["registration_left_share"], limit=1) == [
        "Registration is open until 2025-01-30"]
    assert event_reasons(graph, p1, pos["e_region77"], ["registration_left_days"], limit=1) == [
        f"Registration is open until {graph.events.set_index('event_id').loc['e_region77', 'start_date']:%Y-%m-%d}"]
    p3 = int(graph.participant_positions(["p3"])[0])
    assert event_reasons(graph, p3, pos["e_reg_final"], ["qualified_stage"], limit=1) != [
        "You reached the final at School stage 2024; this is the next stage"]


def test_event_facts_are_kept_per_events_table() -> None:
    graph = _graph()
    facts = event_facts(graph)
    pos = {e: i for i, e in enumerate(graph.event_index)}
    assert facts.parent[pos["e_reg_final"]] == pos["e_school_24"] and facts.parent[pos["e_online"]] == -1
    assert facts.region[pos["e_region77"]] == "77" and facts.region[pos["e_online"]] is None
    assert facts.competences[pos["e_online"]] == ["robotics", "informatics"]
    assert str(facts.start_date[pos["e_online"]]) == "2025-02-01"
    folded = graph.with_achievements(pd.DataFrame({
        "participant_id": pd.array(["p3"], dtype="string"), "event_id": pd.array(["e_online"], dtype="string"),
        "role": pd.array(["participant"], dtype="string"), "result": pd.array(["registered"], dtype="string"),
        "date": pd.to_datetime(["2025-01-08"]),
    }))
    assert event_facts(folded) is facts  # a fold-in shares the events table, so its facts
    p3 = participant_facts(folded, int(folded.participant_positions(["p3"])[0]))
    assert pos["e_online"] in set(np.asarray(p3.taken).tolist())
    other = _graph()
    assert event_facts(other) is not facts and event_facts(other).title.tolist() == facts.title.tolist()
