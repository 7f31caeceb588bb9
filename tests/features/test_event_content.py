"""Event content builders: restricting to some participants gives exactly their rows of the full build."""

import numpy as np
import pytest

from features.event_content import competence_profile, event_attributes, reached_levels, weighted_history
from features.series import series_map
from recommender.graph import AchievementsGraph
from tests.tiny import tiny_tables

AS_OF = "2025-01-10"
SOME = np.array([1, 0, 1, 3])  # out of order, repeated, and one without history


@pytest.fixture
def graph() -> AchievementsGraph:
    return AchievementsGraph.from_tables(tiny_tables()).as_of(AS_OF)


def test_profile_rows_follow_the_participants_asked_for(graph: AchievementsGraph) -> None:
    full = competence_profile(graph, AS_OF, 365.0).toarray()
    some = competence_profile(graph, AS_OF, 365.0, SOME).toarray()
    np.testing.assert_allclose(some, full[SOME])
    # p1 took only math events: a unit profile on math; p4 took nothing: an empty row.
    math = graph.competence_index.get_loc("math")
    assert full[0, math] == pytest.approx(1.0)
    assert not full[3].any()


def test_reached_levels_and_weighted_history_restrict_exactly(graph: AchievementsGraph) -> None:
    np.testing.assert_array_equal(reached_levels(graph, SOME), reached_levels(graph)[SOME])
    assert reached_levels(graph).tolist() == [2, -1, -1, -1]  # p1 won the regional stage; nobody else qualified
    series = series_map(graph)
    full = weighted_history(graph, series, AS_OF, 365.0).toarray()
    np.testing.assert_allclose(weighted_history(graph, series, AS_OF, 365.0, SOME).toarray(), full[SOME])
    # An edition taken a year earlier weighs half as much as one taken now.
    school = series.index.get_loc("vsosh_school")
    assert full[0, school] == pytest.approx(0.5 ** (467 / 365) + 0.5 ** (101 / 365), rel=1e-5)


def test_event_attributes_mark_online_and_staged_events(graph: AchievementsGraph) -> None:
    attrs = event_attributes(graph)
    pos = {e: i for i, e in enumerate(graph.event_index)}
    assert attrs.online[pos["e_online"]] and not attrs.online[pos["e_region77"]]
    assert attrs.region[pos["e_region77"]] == "77" and attrs.region[pos["e_online"]] == ""
    assert attrs.staged[pos["e_reg_final"]] and not attrs.staged[pos["e_school_24"]]
