"""Competence profiles from the fitted rating, precomputed by participant: a request slices arrays, never scans."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.competence.estimator import CompetenceRatings
from features.competence.profile import skill_table
from recommender.columns import Columns
from recommender.graph import AchievementsGraph
from serving.schemas_people import CompetenceOut, ContributingAchievementOut, ProfileOut, SkillPointOut
from serving.services.people import competence_names, participant_position, require_side, unavailable
from serving.state import ServingState

TOP_ACHIEVEMENTS = 3


def _offsets(sorted_keys: np.ndarray, n: int) -> np.ndarray:
    """starts[i]:starts[i + 1] is key i's slice of a key-sorted array."""
    return np.searchsorted(sorted_keys, np.arange(n + 1), side="left")


@dataclass(frozen=True)
class ProfileIndex:
    """`competence_profile` for every participant, precomputed: the skill table and the rating history sorted
    by participant (history also by competence, updates in order), with offsets into both."""

    as_of: pd.Timestamp
    # skill table rows, by participant then strongest first
    table_start: np.ndarray
    competence: np.ndarray
    skill: np.ndarray
    skill_sd: np.ndarray
    skill_low: np.ndarray
    skill_high: np.ndarray
    percentile: np.ndarray
    level: np.ndarray  # object: level name or None
    evidence: np.ndarray
    grade: np.ndarray  # per participant, NaN unknown
    # rating history, by participant, competence, then update order
    history_start: np.ndarray
    h_row: np.ndarray
    h_competence: np.ndarray
    h_day: np.ndarray
    h_contribution: np.ndarray
    h_skill: np.ndarray
    h_skill_sd: np.ndarray
    # vocabularies: competence ids and names, event ids and titles, by position
    competence_ids: np.ndarray
    competence_names: np.ndarray
    event_ids: np.ndarray
    event_titles: np.ndarray
    # achievements, by row
    verified: np.ndarray
    a_event: np.ndarray  # event position
    a_day: np.ndarray  # datetime64[D]
    a_result: np.ndarray  # object

    @classmethod
    def build(cls, model: CompetenceRatings, graph: AchievementsGraph, as_of: pd.Timestamp) -> ProfileIndex:
        n = graph.n_participants
        table = skill_table(model, graph, as_of)
        pos = graph.participant_index.get_indexer(table[Columns.Participant].astype(str))
        comp = graph.competence_index.get_indexer(table[Columns.Competence].astype(str))
        skill = table["skill"].to_numpy(np.float64)
        order = np.lexsort((-skill, pos))
        level = table["level"].astype(object).to_numpy()
        hist = model.history_
        hp = hist["participant"].to_numpy(np.int64)
        hc = hist["competence"].to_numpy(np.int64)
        h_order = np.lexsort((np.arange(len(hist)), hc, hp))  # stable: updates stay in the order they happened
        a = graph.achievements
        verified = (a["verified"].astype("boolean").fillna(True).to_numpy(dtype=bool) if "verified" in a.columns
                    else np.ones(len(a), dtype=bool))
        return cls(
            as_of=as_of,
            table_start=_offsets(pos[order], n),
            competence=comp[order],
            skill=skill[order],
            skill_sd=table["skill_sd"].to_numpy(np.float64)[order],
            skill_low=table["skill_low"].to_numpy(np.float64)[order],
            skill_high=table["skill_high"].to_numpy(np.float64)[order],
            percentile=table["percentile"].to_numpy(np.float64)[order],
            level=np.array([None if pd.isna(v) else str(v) for v in level[order]], dtype=object),
            evidence=table["evidence"].to_numpy(np.float64)[order],
            grade=graph.grades_at(as_of),
            history_start=_offsets(hp[h_order], n),
            h_row=hist["row"].to_numpy(np.int64)[h_order],
            h_competence=hc[h_order],
            h_day=hist["day"].to_numpy(np.int64)[h_order],
            h_contribution=hist["contribution"].to_numpy()[h_order],
            h_skill=hist["skill"].to_numpy()[h_order],
            h_skill_sd=hist["skill_sd"].to_numpy()[h_order],
            competence_ids=graph.competence_index.to_numpy(dtype=object),
            competence_names=np.asarray(competence_names(graph), dtype=object),
            event_ids=graph.event_index.to_numpy(dtype=object),
            event_titles=(graph.events["title"].astype(str).to_numpy(dtype=object) if "title" in graph.events.columns
                          else graph.event_index.to_numpy(dtype=object)),
            verified=verified,
            a_event=a["event_idx"].to_numpy(np.int64),
            a_day=a[Columns.Date].to_numpy(dtype="datetime64[D]"),
            a_result=a[Columns.Result].astype(str).to_numpy(dtype=object),
        )

    def competences(self, position: int, top_k: int = TOP_ACHIEVEMENTS) -> list[CompetenceOut]:
        """One participant's rated competences, strongest first (the same figures as `competence_profile`)."""
        t0, t1 = int(self.table_start[position]), int(self.table_start[position + 1])
        h0, h1 = int(self.history_start[position]), int(self.history_start[position + 1])
        h_comp = self.h_competence[h0:h1]
        out = []
        for i in range(t0, t1):
            c = int(self.competence[i])
            lo = h0 + int(np.searchsorted(h_comp, c, side="left"))
            hi = h0 + int(np.searchsorted(h_comp, c, side="right"))
            rows = self.h_row[lo:hi]
            contribution = self.h_contribution[lo:hi]
            good = np.flatnonzero(self.verified[rows] & (contribution > 0))
            best = good[np.argsort(-contribution[good], kind="stable")[:top_k]]
            top = [
                ContributingAchievementOut(
                    event_id=str(self.event_ids[self.a_event[rows[j]]]),
                    title=str(self.event_titles[self.a_event[rows[j]]]),
                    date=pd.Timestamp(self.a_day[rows[j]]).date(),
                    result=str(self.a_result[rows[j]]),
                    contribution=round(float(contribution[j]), 4),
                )
                for j in best
            ]
            history = [
                SkillPointOut(date=pd.Timestamp(np.datetime64(int(d), "D")).date(), skill=round(float(s), 4),
                              skill_sd=round(float(v), 4))
                for d, s, v in zip(self.h_day[lo:hi], self.h_skill[lo:hi], self.h_skill_sd[lo:hi], strict=True)
            ]
            out.append(CompetenceOut(
                competence_id=str(self.competence_ids[c]),
                name=str(self.competence_names[c]),
                skill=round(float(self.skill[i]), 4),
                skill_sd=round(float(self.skill_sd[i]), 4),
                interval_90=(round(float(self.skill_low[i]), 4), round(float(self.skill_high[i]), 4)),
                percentile=round(float(self.percentile[i]), 1),
                level=self.level[i],
                evidence=round(float(self.evidence[i]), 3),
                top_achievements=top,
                history=history,
            ))
        return out


def competence_profile_out(state: ServingState, participant_id: str) -> ProfileOut:
    """The participant's competence profile: skill, uncertainty, grade-peer percentile, level, the verified
    achievements behind each skill and its history."""
    side = require_side(state)
    index, loaded = side.profiles, side.competence
    if index is None or loaded is None:
        raise unavailable("competence profiles", side.why("competence"))
    position = participant_position(side, participant_id)
    grade = index.grade[position]
    return ProfileOut(
        participant_id=participant_id,
        as_of=index.as_of.date(),
        grade=None if not np.isfinite(grade) else round(float(grade)),
        model=loaded.tagged_label,
        competences=index.competences(position),
    )
