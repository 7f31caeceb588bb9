import numpy as np
import pandas as pd
import pytest

from recommender.graph import AchievementsGraph
from tests.tiny import tiny_tables


@pytest.fixture
def graph() -> AchievementsGraph:
    return AchievementsGraph.from_tables(tiny_tables())


def test_id_maps_and_positions(graph: AchievementsGraph) -> None:
    assert graph.n_participants == 4 and graph.n_events == 9
    assert list(graph.participant_positions(["p3", "ghost", "p1"])) == [2, -1, 0]
    a = graph.achievements
    assert (graph.participant_index[a["participant_idx"]] == a["participant_id"].astype(str)).all()
    assert (graph.event_index[a["event_idx"]] == a["event_id"].astype(str)).all()


def test_sparse_matrices(graph: AchievementsGraph) -> None:
    pe = graph.participant_event()
    assert pe.shape == (4, 9) and pe.sum() == 7
    ec = graph.event_competence()
    robotics = graph.competence_index.get_loc("robotics")
    informatics = graph.competence_index.get_loc("informatics")
    online = graph.event_index.get_loc("e_online")
    assert ec[online, robotics] == pytest.approx(1.0) and ec[online, informatics] == pytest.approx(0.5)
    pc = graph.participant_competence()
    math = graph.competence_index.get_loc("math")
    assert pc[0, math] == pytest.approx(3.0)  # p1: three math olympiad stages
    q = graph.qualified()
    assert q[0].sum() == 3 and q[1].sum() == 0


def test_grades_move_with_academic_years(graph: AchievementsGraph) -> None:
    # Grades were given on 2025-01-01 (academic year 2024/25).
    assert list(graph.grades_at("2025-05-01")) == [9, 10, 9, 5]
    assert list(graph.grades_at("2025-09-01")) == [10, 11, 10, 6]
    assert list(graph.grades_at("2024-06-01")) == [8, 9, 8, 4]


def test_grade_from_birth_year_when_unknown() -> None:
    tables = tiny_tables()
    tables["participants"]["grade"] = pd.array([None, 10, 9, 5], dtype="Int64")
    tables["participants"]["birth_year"] = pd.array([2010, None, None, None], dtype="Int64")
    g = AchievementsGraph.from_tables(tables)
    grades = g.grades_at("2025-01-10")
    assert grades[0] == 2024 - 2010 - 6


def test_identity_fields_never_enter_the_graph() -> None:
    tables = tiny_tables()
    tables["participants"]["last_name"] = "Иванов"
    tables["participants"]["email"] = "x@example.ru"
    tables["participants"]["birth_date"] = pd.to_datetime("2010-03-04")
    g = AchievementsGraph.from_tables(tables)
    assert not {"last_name", "email", "birth_date"} & set(g.participants.columns)
    assert g.participants["birth_year"].tolist() == [2010] * 4


def test_unresolved_references_fail_loudly() -> None:
    tables = tiny_tables()
    tables["achievements"].loc[0, "event_id"] = "nope"
    with pytest.raises(ValueError, match="missing from the graph"):
        AchievementsGraph.from_tables(tables)


def test_as_of_hides_unannounced_events(graph: AchievementsGraph) -> None:
    past = graph.as_of("2023-09-15", announce_days=30)
    announced = set(graph.event_index[np.flatnonzero(past.announced())])
    assert announced == {"e_school_23"}
