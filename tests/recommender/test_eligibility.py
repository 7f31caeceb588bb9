import numpy as np
import pandas as pd

from recommender.eligibility import EventFilters, eligibility_mask, open_events
from recommender.graph import AchievementsGraph
from tests.tiny import tiny_tables

AS_OF = "2025-01-10"


def _graph() -> AchievementsGraph:
    return AchievementsGraph.from_tables(tiny_tables()).as_of(AS_OF)


def test_open_events_are_announced_not_started_and_registration_open() -> None:
    g = _graph()
    names = set(g.event_index[open_events(g, AS_OF)])
    assert names == {"e_reg_final", "e_online", "e_region77", "e_full"}


def test_filters_narrow_the_catalog() -> None:
    g = _graph()
    assert set(g.event_index[open_events(g, AS_OF, EventFilters(online_only=True))]) == {
        "e_reg_final", "e_online", "e_full"}
    assert set(g.event_index[open_events(g, AS_OF, EventFilters(formats=("course",)))]) == {"e_online"}
    assert set(g.event_index[open_events(g, AS_OF, EventFilters(horizon_days=20))]) == {"e_reg_final"}


def test_the_open_catalog_is_kept_per_day_and_filters_and_not_across_pasts() -> None:
    g = _graph()
    first = open_events(g, AS_OF)
    assert open_events(g, pd.Timestamp(AS_OF)) is first  # every request of the day shares one answer
    assert not first.flags.writeable
    online = open_events(g, AS_OF, EventFilters(online_only=True))
    assert set(g.event_index[online]) == {"e_reg_final", "e_online", "e_full"}  # not the unfiltered answer
    later = open_events(g, "2025-01-21")
    assert "e_reg_final" not in set(g.event_index[later]) and "e_reg_final" in set(g.event_index[first])
    # A past of the graph announces fewer events: its catalog is its own, not the one kept for the graph.
    early = AchievementsGraph.from_tables(tiny_tables()).as_of("2024-01-01", announce_days=30)
    assert set(early.event_index[open_events(early, AS_OF)]) <= set(g.event_index[first])
    assert len(open_events(early, AS_OF)) < len(first)


def test_rules_grade_reach_capacity_taken_and_stage() -> None:
    g = _graph()
    events = open_events(g, AS_OF)
    names = list(g.event_index[events])
    mask = eligibility_mask(g, AS_OF, g.participant_positions(["p1", "p2", "p3", "p4"]), events)
    people = ["p1", "p2", "p3", "p4"]
    allowed = {p: {n for n, ok in zip(names, row, strict=True) if ok} for p, row in zip(people, mask, strict=True)}
    # p1 qualified (finalist) at the 2024 school stage; p2 only completed it.
    assert "e_reg_final" in allowed["p1"] and "e_reg_final" not in allowed["p2"]
    # Regional hackathon in 77: p1, p2 live there; p3 (16) does not; p4's region is unknown.
    assert "e_region77" in allowed["p1"] and "e_region77" not in allowed["p3"] and "e_region77" not in allowed["p4"]
    # e_full has capacity 1 and p3 registered: full for everyone.
    assert not any("e_full" in a for a in allowed.values())
    # p2 already registered for the online course; p4 is in grade 5 (course is 7-11).
    assert "e_online" not in allowed["p2"] and "e_online" not in allowed["p4"]
    assert "e_online" in allowed["p1"] and "e_online" in allowed["p3"]


def test_unknown_grade_passes_grade_filters() -> None:
    tables = tiny_tables()
    tables["participants"]["grade"] = tables["participants"]["grade"].astype("Int64")
    tables["participants"].loc[3, "grade"] = None
    g = AchievementsGraph.from_tables(tables).as_of(AS_OF)
    events = open_events(g, AS_OF)
    mask = eligibility_mask(g, AS_OF, g.participant_positions(["p4"]), events)
    assert "e_online" in set(g.event_index[events][mask[0]])


def test_as_of_drops_later_rows_and_keeps_positions() -> None:
    full = AchievementsGraph.from_tables(tiny_tables())
    past = full.as_of("2024-06-01")
    assert (past.achievements["date"] < np.datetime64("2024-06-01")).all()
    assert len(past.achievements) == 3
    assert list(past.event_index) == list(full.event_index)
    assert past.participant_positions(["p3"])[0] == full.participant_positions(["p3"])[0]


def test_registration_not_yet_open_is_not_open() -> None:
    tables = tiny_tables()
    opens = [None] * len(tables["events"])
    opens[4] = "2025-01-20"  # e_online opens after the date asked about
    tables["events"]["registration_opens"] = pd.to_datetime(pd.Series(opens))
    g = AchievementsGraph.from_tables(tables).as_of(AS_OF)
    assert "e_online" not in set(g.event_index[open_events(g, AS_OF)])
    assert "e_online" in set(g.event_index[open_events(g, "2025-01-21")])
