"""The program's roadmap indicators for a calendar year, by its methodology, from the achievements graph.

Definitions (a year is 1 January to 31 December; "took part" means a result other than
`registered` and `dropped`):

- participants_in_data_environment: participants with at least one achievement record dated in the year;
- permanent_participants: participants whose digital trace was updated at least twice in the year,
  i.e. with achievement records on at least two distinct dates in it;
- teams_participated: teams with a member who took part in the team's event, dated in the year;
  teams_delivered_project: those of them with a project whose result is `completed` or better;
  teams_participated_or_delivered: the union (the roadmap's figure);
- events_100_plus / events_1000_plus: events starting in the year with at least 100 / 1,000
  distinct participants who took part;
- prize_winners_with_benefits: distinct participants who were `winner` or `prize_winner`, dated in the
  year, at an event that gives admission benefits (benefit_level set);
- mentors_active_2plus_events: mentors of teams at two or more distinct events starting in the year;
  tech_leader_share: the share of technology leaders among them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

NOT_TAKING_PART = ("registered", "dropped")
PROJECT_DONE = ("completed", "finalist", "prize_winner", "winner")
PRIZES = ("winner", "prize_winner")
INDICATOR_NAMES = (
    "participants_in_data_environment",
    "permanent_participants",
    "teams_participated",
    "teams_delivered_project",
    "teams_participated_or_delivered",
    "events_100_plus",
    "events_1000_plus",
    "prize_winners_with_benefits",
    "mentors_active_2plus_events",
    "tech_leaders_among_active_mentors",
    "tech_leader_share",
)


def _in_year(dates: pd.Series, year: int) -> np.ndarray:
    d = pd.to_datetime(dates)
    return (d.dt.year == year).fillna(False).to_numpy(dtype=bool)


def roadmap_indicators(tables: dict[str, pd.DataFrame], year: int) -> dict[str, Any]:
    """Every indicator of the year (see the module docstring), plus the breakdowns the report plots."""
    ach = tables["achievements"]
    events = tables["events"]
    teams = tables.get("teams", pd.DataFrame(columns=["team_id", "event_id", "mentor_id", "project_title"]))
    mentors = tables.get("mentors", pd.DataFrame(columns=["mentor_id", "tech_leader"]))

    trace = ach[_in_year(ach["date"], year)]
    took_part = trace[~trace["result"].isin(NOT_TAKING_PART)]
    per_person_dates = trace.groupby("participant_id", observed=True)["date"].nunique()

    team_rows = took_part[took_part["team_id"].notna()]
    participated = set(team_rows["team_id"].astype(str))
    projects = teams[teams["project_title"].notna()] if "project_title" in teams.columns else teams.iloc[0:0]
    done = team_rows[team_rows["result"].isin(PROJECT_DONE)]
    delivered = set(done["team_id"].astype(str)) & set(projects["team_id"].astype(str))

    starts = events[_in_year(events["start_date"], year)]
    all_took_part = ach[~ach["result"].isin(NOT_TAKING_PART)]
    sizes = all_took_part[all_took_part["event_id"].isin(starts["event_id"])].groupby(
        "event_id", observed=True)["participant_id"].nunique()

    benefit_events = events.loc[events["benefit_level"].notna(), "event_id"] if "benefit_level" in events.columns \
        else pd.Series([], dtype="string")
    prizes = took_part[took_part["result"].isin(PRIZES) & took_part["event_id"].isin(benefit_events)]

    mentored = teams[teams["mentor_id"].notna() & teams["event_id"].isin(starts["event_id"])]
    per_mentor = mentored.groupby("mentor_id", observed=True)["event_id"].nunique()
    active = per_mentor[per_mentor >= 2].index.astype(str)
    leaders = mentors[mentors["mentor_id"].astype(str).isin(active)]
    n_leaders = int(leaders["tech_leader"].astype("boolean").fillna(False).sum()) if len(leaders) else 0

    monthly = pd.to_datetime(trace["date"]).dt.month.to_numpy()
    monthly_active = [
        int(trace.loc[monthly == m, "participant_id"].nunique()) for m in range(1, 13)
    ]
    values: dict[str, Any] = {
        "participants_in_data_environment": int(trace["participant_id"].nunique()),
        "permanent_participants": int((per_person_dates >= 2).sum()),
        "teams_participated": len(participated),
        "teams_delivered_project": len(delivered),
        "teams_participated_or_delivered": len(participated | delivered),
        "events_100_plus": int((sizes >= 100).sum()),
        "events_1000_plus": int((sizes >= 1000).sum()),
        "prize_winners_with_benefits": int(prizes["participant_id"].nunique()),
        "mentors_active_2plus_events": len(active),
        "tech_leaders_among_active_mentors": n_leaders,
        "tech_leader_share": round(n_leaders / len(active), 4) if len(active) else None,
    }
    return {
        "year": year,
        "indicators": values,
        "breakdown": {
            "monthly_active_participants": monthly_active,
            "event_size_quantiles": {
                q: int(sizes.quantile(q)) if len(sizes) else 0 for q in (0.5, 0.9, 0.99)
            },
            "events_starting_in_year": len(starts),
            "achievement_records_in_year": len(trace),
        },
        "definitions": __doc__.split("\n\n", 1)[1].strip() if __doc__ else "",
    }
