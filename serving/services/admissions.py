"""Admissions scores for a partner: consenting participants scored, the others listed, every access audited."""

from __future__ import annotations

from typing import Any

import pandas as pd

from recommender.columns import Columns
from serving.audit import record_partner_access
from serving.auth import Principal
from serving.errors import ApiError
from serving.schemas_people import ParticipantScoreOut, ProgramScoresOut
from serving.services.people import require_side, unavailable
from serving.state import ServingState
from training.admissions import NOT_CONSENTED, SCORED, Program, score_listed


def program_scores(state: ServingState, principal: Principal, program_id: str,
                   participant_ids: list[str]) -> ProgramScoresOut:
    """Score the listed participants against a program; no answer leaves before the access is audited."""
    ids = list(dict.fromkeys(participant_ids))
    record_partner_access(state, principal, resource=f"/v1/programs/{program_id}/scores", participant_ids=ids)
    side = require_side(state)
    loaded = side.competence
    if loaded is None or side.scoring is None:
        raise unavailable("admissions scores", side.why("competence"))
    try:
        program = Program.from_graph(side.graph, program_id)
    except KeyError:
        raise ApiError(404, "program_not_found", f"program {program_id!r} is not known") from None
    try:
        # The program's cohort is built on its first request and kept on the basis: later requests cost
        # what their ids cost, whatever the number of participants.
        frame = score_listed(loaded.model, side.graph, program, ids, side.scoring)
    except ValueError:
        raise ApiError(422, "program_not_scorable", f"program {program_id!r} requires no known competence") from None
    status = frame["status"].astype(str)
    return ProgramScoresOut(
        program_id=program_id,
        as_of=side.as_of.date(),
        model=loaded.tagged_label,
        scored=[_score(row) for row in frame[status == SCORED].to_dict("records")],
        not_consented=[str(p) for p in frame.loc[status == NOT_CONSENTED, Columns.Participant]],
        unknown=[str(p) for p in frame.loc[~status.isin([SCORED, NOT_CONSENTED]), Columns.Participant]],
    )


def _listed(text: Any) -> list[str]:
    return [] if pd.isna(text) or not str(text) else str(text).split(";")


def _score(row: dict[str, Any]) -> ParticipantScoreOut:
    return ParticipantScoreOut(
        participant_id=str(row[Columns.Participant]),
        score=float(row["score"]),
        score_low=float(row["score_low"]),
        score_high=float(row["score_high"]),
        percentile=round(float(row["percentile"]), 2),
        requirements_met=_listed(row["requirements_met"]),
        requirements_missing=_listed(row["requirements_missing"]),
        all_requirements_met=bool(row["all_requirements_met"]),
        achievements=_listed(row["achievements"]),
    )
