"""`team_table` on the tiny world with teams: member counts, rural majority, a member of unknown settlement type."""

from __future__ import annotations

import pandas as pd

from features.mentor_features import team_table
from recommender.columns import Columns
from recommender.graph import AchievementsGraph
from tests.tiny import tiny_tables


def _graph_with_teams(settlement: list[object]) -> AchievementsGraph:
    """Tiny world where p1+p2 form team t_a and p3+p4 form team t_b at e_region77 (an in-person event)."""
    tables = tiny_tables()
    tables["participants"]["settlement_type"] = pd.Series(settlement, dtype="string")
    tables["teams"] = pd.DataFrame({Columns.Team: pd.Series(["t_a", "t_b"], dtype="string"),
                                    Columns.Event: pd.Series(["e_region77", "e_region77"], dtype="string")})
    extra = pd.DataFrame({
        Columns.Participant: pd.Series(["p1", "p2", "p3", "p4"], dtype="string"),
        Columns.Event: pd.Series(["e_region77"] * 4, dtype="string"),
        "role": pd.Series(["participant"] * 4, dtype="string"),
        Columns.Result: pd.Series(["registered"] * 4, dtype="string"),
        Columns.Date: pd.to_datetime(["2025-01-05"] * 4),
        Columns.Team: pd.Series(["t_a", "t_a", "t_b", "t_b"], dtype="string"),
    })
    tables["achievements"] = pd.concat([tables["achievements"], extra], ignore_index=True)
    return AchievementsGraph.from_tables(tables)


def test_unknown_settlement_type_counts_as_not_rural() -> None:
    # p2 (team t_a) and p4 (team t_b) have no settlement type: the snapshot allows it.
    table = team_table(_graph_with_teams(["rural", pd.NA, "rural", pd.NA])).set_index(Columns.Team)
    assert table.loc["t_a", "size"] == 2 and table.loc["t_b", "size"] == 2
    # One rural member of two known-or-not is no rural majority: unknown is not counted as rural.
    assert not table.loc["t_a", "rural"] and not table.loc["t_b", "rural"]
    assert table.loc["t_a", "region_code"] == "77"  # the in-person event's region


def test_rural_majority_with_known_settlement_types() -> None:
    table = team_table(_graph_with_teams(["rural", "rural", "urban", pd.NA])).set_index(Columns.Team)
    assert table.loc["t_a", "rural"] and not table.loc["t_b", "rural"]
