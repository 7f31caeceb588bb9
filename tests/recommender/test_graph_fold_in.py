"""Fold-in: a graph plus new achievements equals a rebuilt graph, shares its event side, and stays cheap to ask."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from recommender.eligibility import eligibility_mask, open_events
from recommender.graph import MAX_TEXT_CHUNKS, AchievementsGraph, _csr_with_entries
from tests.tiny import tiny_tables
from training.popularity import PopularityRecommender

TODAY = pd.Timestamp("2025-01-10")


def rows(*items: tuple[str, str, str, str]) -> pd.DataFrame:
    """(participant, event, result, date) rows in the participant role."""
    return pd.DataFrame({
        "participant_id": pd.array([i[0] for i in items], dtype="string"),
        "event_id": pd.array([i[1] for i in items], dtype="string"),
        "role": pd.array(["participant"] * len(items), dtype="string"),
        "result": pd.array([i[2] for i in items], dtype="string"),
        "date": pd.to_datetime([i[3] for i in items]),
    })


def warmed(graph: AchievementsGraph) -> AchievementsGraph:
    """Every cache the request path fills, filled (a fold-in must patch them, not drop them)."""
    graph.participant_event()
    graph.participant_event(weighted=True)
    graph.qualified()
    graph.event_competence()
    _ = graph.event_arrays, graph.registrations_per_event, graph.participant_region_codes, graph.latest_date
    return graph


def rebuilt(extra: pd.DataFrame, participants: pd.DataFrame | None = None) -> AchievementsGraph:
    tables = tiny_tables()
    tables["achievements"] = pd.concat([tables["achievements"], extra], ignore_index=True)
    if participants is not None:
        tables["participants"] = pd.concat([tables["participants"], participants], ignore_index=True)
    return AchievementsGraph.from_tables(tables)


def assert_same_graph(folded: AchievementsGraph, expected: AchievementsGraph) -> None:
    pd.testing.assert_frame_equal(folded.achievements.reset_index(drop=True), expected.achievements)
    for weighted in (False, True):
        diff = folded.participant_event(weighted=weighted) - expected.participant_event(weighted=weighted)
        assert abs(diff).sum() == 0
    assert abs(folded.qualified() - expected.qualified()).sum() == 0
    assert (folded.registrations_per_event == expected.registrations_per_event).all()
    assert folded.latest_date == expected.latest_date
    assert list(folded.participant_index) == list(expected.participant_index)
    everyone = np.arange(expected.n_participants)
    events = open_events(expected, TODAY)
    assert (eligibility_mask(folded, TODAY, everyone, events) == eligibility_mask(expected, TODAY, everyone,
                                                                                  events)).all()


@pytest.fixture
def graph() -> AchievementsGraph:
    return warmed(AchievementsGraph.from_tables(tiny_tables()))


def test_fold_in_equals_a_rebuild(graph: AchievementsGraph) -> None:
    new = rows(("p1", "e_online", "registered", "2025-01-10"), ("p3", "e_school_24", "winner", "2024-10-01"),
               ("p4", "e_full", "registered", "2025-01-09"))
    folded = graph.with_achievements(new)
    assert_same_graph(folded, rebuilt(new))
    assert folded.live_rows == 3
    # p3 won the 2024 school stage: the regional final is open to them now; p1's registration took e_online.
    p1, p3 = (folded.participant_positions([p]) for p in ("p1", "p3"))
    final, online = (np.asarray(folded.event_index.get_indexer([e])) for e in ("e_reg_final", "e_online"))
    assert not eligibility_mask(graph, TODAY, p3, final)[0, 0]
    assert eligibility_mask(folded, TODAY, p3, final)[0, 0]
    assert eligibility_mask(graph, TODAY, p1, online)[0, 0]
    assert not eligibility_mask(folded, TODAY, p1, online)[0, 0]


def test_fold_in_shares_the_event_side_and_leaves_the_old_graph_alone(graph: AchievementsGraph) -> None:
    before = graph.participant_event().copy()
    folded = graph.with_achievements(rows(("p1", "e_online", "registered", "2025-01-10")))
    assert folded.event_arrays is graph.event_arrays
    assert folded.event_competence() is graph.event_competence()
    assert folded.participant_index is graph.participant_index
    assert folded.events is graph.events and folded.participants is graph.participants
    # Requests under way keep reading the old graph: it must not change.
    assert len(graph.achievements) == 7 and abs(graph.participant_event() - before).sum() == 0


def test_fold_in_of_known_rows_changes_nothing(graph: AchievementsGraph) -> None:
    known = rows(("p1", "e_school_23", "winner", "2023-10-01"))
    assert graph.with_achievements(known) is graph
    new = rows(("p1", "e_online", "registered", "2025-01-10"), ("p1", "e_online", "registered", "2025-01-10"))
    once = graph.with_achievements(new)
    assert len(once.achievements) == 8
    assert once.with_achievements(new) is once


def test_a_row_dated_today_never_makes_requests_cut_the_graph(
    graph: AchievementsGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = PopularityRecommender().fit(graph.as_of(TODAY))
    folded = graph.with_achievements(rows(("p1", "e_online", "registered", "2025-01-10")))
    assert folded.known_before(TODAY) and folded.known_before("2025-02-01")
    assert not folded.known_before("2025-01-09")  # a replay of the past still cuts
    assert len(folded.as_of(TODAY).achievements) == 8  # the posted row is known on its own day
    assert len(folded.as_of("2025-01-09").achievements) == 7

    def copy_whole_graph(*args: object, **kwargs: object) -> AchievementsGraph:
        raise AssertionError("the request path copied the graph")

    monkeypatch.setattr(AchievementsGraph, "as_of", copy_whole_graph)
    recs = model.recommend(["p1"], 5, as_of=TODAY, graph=folded)
    assert "e_online" not in set(recs["event_id"])
    assert "e_online" in set(model.recommend(["p1"], 5, as_of=TODAY, graph=graph)["event_id"])


def test_new_participants_are_appended_with_their_rows(graph: AchievementsGraph) -> None:
    people = pd.DataFrame({"participant_id": pd.array(["p5"], dtype="string"),
                           "region_code": pd.array(["77"], dtype="string"),
                           "grade": pd.array([9], dtype="Int64"), "grade_date": pd.to_datetime(["2025-01-01"])})
    new = rows(("p5", "e_school_24", "prize_winner", "2024-10-01"))
    folded = graph.with_achievements(new, participants=people)
    assert_same_graph(folded, rebuilt(new, people))
    assert list(folded.participant_positions(["p1", "p5"])) == [0, 4]
    assert folded.participant_event().shape == (5, 9)
    recs = PopularityRecommender().fit(graph.as_of(TODAY)).recommend(["p5"], 5, as_of=TODAY, graph=folded)
    assert {"e_reg_final", "e_region77"} <= set(recs["event_id"])  # qualified, and in region 77


def test_rows_naming_unknown_nodes_are_refused(graph: AchievementsGraph) -> None:
    with pytest.raises(ValueError, match="missing from the graph"):
        graph.with_achievements(rows(("p1", "e_nowhere", "registered", "2025-01-10")))
    with pytest.raises(ValueError, match="missing from the graph"):
        graph.with_achievements(rows(("ghost", "e_online", "registered", "2025-01-10")))


def test_many_fold_ins_stay_correct_and_compact(graph: AchievementsGraph) -> None:
    people = pd.DataFrame({"participant_id": pd.array([f"n{i}" for i in range(MAX_TEXT_CHUNKS + 6)],
                                                      dtype="string")})
    folded, added = graph, []
    for i in range(len(people)):
        one = rows((f"n{i}", "e_online" if i % 2 else "e_school_24", "registered", "2025-01-10"))
        folded = folded.with_achievements(one, participants=people.iloc[[i]])
        added.append(one)
    chunks = folded.achievements["participant_id"].array._pa_array.num_chunks
    assert chunks <= MAX_TEXT_CHUNKS + 1
    assert_same_graph(folded, rebuilt(pd.concat(added, ignore_index=True), people))


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("entries", [60, 3000])  # a few (block copies) and a start-up catch-up (one masked copy)
def test_csr_insertion_matches_sparse_addition(seed: int, binary: bool, entries: int) -> None:
    rng = np.random.default_rng(seed)
    rows_, cols_ = 400, 300
    m = sp.random(rows_, cols_, density=0.05, format="csr", random_state=seed, dtype=np.float32)
    if binary:
        m.data[:] = 1.0  # a presence matrix, like `qualified`
    r, c = rng.integers(0, rows_ + 5, entries), rng.integers(0, cols_, entries)  # rows past 400: new participants
    v = rng.random(entries).astype(np.float32)
    got = _csr_with_entries(m, r, c, v, (rows_ + 5, cols_), binary=binary)
    grown = sp.vstack([m, sp.csr_matrix((5, cols_), dtype=np.float32)]).tocsr()
    expected = (grown + sp.csr_matrix((v, (r, c)), shape=(rows_ + 5, cols_))).toarray()
    if binary:
        expected = (expected != 0).astype(np.float32)
    assert np.allclose(got.toarray(), expected, atol=1e-5)
    assert got.shape == (rows_ + 5, cols_)
    assert all((np.diff(got.indices[got.indptr[i]:got.indptr[i + 1]]) > 0).all() for i in range(rows_ + 5))


def test_a_changed_result_replaces_the_row_and_equals_a_rebuild(graph: AchievementsGraph) -> None:
    # p2's completed school stage becomes a win (qualifies); p1's finalist is corrected down (stops qualifying).
    changed = rows(("p2", "e_school_24", "winner", "2024-10-02"), ("p1", "e_school_24", "participant", "2024-10-01"),
                   ("p1", "e_online", "registered", "2025-01-10"))
    folded, added, replaced = graph.fold_achievements(changed)
    assert (added, replaced) == (1, 2)
    assert len(folded.achievements) == 8 and folded.live_rows == 3
    tables = tiny_tables()
    stored = tables["achievements"]
    stored = stored[~(stored["participant_id"].isin(["p1", "p2"]) & (stored["event_id"] == "e_school_24"))]
    expected = AchievementsGraph.from_tables({**tables, "achievements": pd.concat([stored, changed])})
    order = ["participant_id", "event_id", "role"]
    pd.testing.assert_frame_equal(folded.achievements.sort_values(order).reset_index(drop=True),
                                  expected.achievements.sort_values(order).reset_index(drop=True))
    for weighted in (False, True):
        assert abs(folded.participant_event(weighted=weighted) - expected.participant_event(weighted=weighted)).sum() \
            == 0
    assert abs(folded.qualified() - expected.qualified()).sum() == 0
    assert (folded.registrations_per_event == expected.registrations_per_event).all()
    p2, final = folded.participant_positions(["p2"]), np.asarray(folded.event_index.get_indexer(["e_reg_final"]))
    assert not eligibility_mask(graph, TODAY, p2, final)[0, 0]
    assert eligibility_mask(folded, TODAY, p2, final)[0, 0]
    # The old graph is untouched; folding the same values again changes nothing; a replaced live row stays live.
    assert graph.achievements["result"].tolist() == tiny_tables()["achievements"]["result"].tolist()
    assert folded.with_achievements(changed) is folded
    again, added, replaced = folded.fold_achievements(rows(("p1", "e_online", "participant", "2025-01-10")))
    assert (added, replaced, len(again.achievements), again.live_rows) == (0, 1, 8, 3)
    assert len(again.as_of(TODAY).achievements) == 8
