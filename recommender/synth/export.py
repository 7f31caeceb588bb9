"""The observable part of a world as canonical AIF v1 tables (what any model is allowed to see)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from recommender import reference
from recommender.columns import (
    EVENT_FORMATS,
    LEVELS,
    MENTOR_ORGANIZATION_TYPES,
    ORGANIZATION_KINDS,
    RESOURCE_CENTER_KINDS,
    RESULTS_ALL,
    ROLES,
    SETTLEMENT_TYPES,
)
from recommender.synth import ids
from recommender.synth.catalog import STAGE_RU
from recommender.synth.dates import days_to_datetime, grade_at, to_day
from recommender.synth.names import identities
from recommender.synth.population import (
    ORG_COMPANY,
    ORG_SCHOOL,
    ORG_UNIVERSITY,
    competence_ids,
    declared_interests,
    region_table,
)
from recommender.synth.simulate import World, stream

_IDENTITY_STREAM = 1000
# Its own stream, so adding declared interests left every other part of a seeded world as it was.
_INTERESTS_STREAM = 1001
PROJECT_WORDS = (
    "Умная теплица", "Дрон-доставщик", "Голосовой помощник", "Карта города", "Робот-сортировщик",
    "Солнечная станция", "Чат-бот", "Нейроинтерфейс", "Спутник-куб", "VR-экскурсия", "Умный дом",
    "Биосенсор", "Игра-тренажёр", "Система безопасности", "Финансовый помощник",
)


def _s(values: Any) -> pd.arrays.StringArray:
    return pd.array(np.asarray(values, dtype=object), dtype="string")


def _int(values: np.ndarray, missing: np.ndarray | None = None) -> pd.arrays.IntegerArray:
    arr = pd.array(np.asarray(values, dtype=np.int64), dtype="Int64")
    if missing is not None:
        arr[missing] = pd.NA
    return arr


def _bool(values: np.ndarray) -> pd.arrays.BooleanArray:
    return pd.array(np.asarray(values, dtype=bool), dtype="boolean")


def _dates(days: np.ndarray) -> np.ndarray:
    return days_to_datetime(days)


def weighted_text(comp_idx: np.ndarray, comp_w: np.ndarray) -> np.ndarray:
    """`id:w;id:w` per row of padded (index, weight) lists, formatted once per distinct row."""
    comps = competence_ids()
    keys = np.concatenate([comp_idx.astype(np.float64), np.round(comp_w.astype(np.float64), 2)], axis=1)
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    half = comp_idx.shape[1]
    text = np.array(
        [
            ";".join(f"{comps[int(c)]}:{w:g}" for c, w in zip(row[:half], row[half:], strict=True) if c >= 0 and w > 0)
            for row in uniq
        ],
        dtype=object,
    )
    return text[inverse.ravel()]


def declared_text(comp_idx: np.ndarray, comp_w: np.ndarray) -> np.ndarray:
    """`id:w;id:w` of each row's declared interests (None where none), formatted once per distinct row.

    Weights are 0.5 or 1, so a row packs into one integer and a million rows take a 1-d unique.
    """
    base = len(competence_ids()) + 1
    key = np.zeros(len(comp_idx), dtype=np.int64)
    for j in range(comp_idx.shape[1]):
        key = (key * base + comp_idx[:, j] + 1) * 3 + np.rint(comp_w[:, j] * 2).astype(np.int64)
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    text = weighted_text(comp_idx[first], comp_w[first])
    text[comp_idx[first, 0] < 0] = None
    return text[inverse.ravel()]


def aif_tables(world: World) -> dict[str, pd.DataFrame]:
    """Canonical-typed frames of every AIF table."""
    cfg, pop, orgs, ev = world.config, world.population, world.organizations, world.events
    h, res = world.history, world.results
    codes = region_table()["region_code"].to_numpy(dtype=object)
    names_ru = region_table()["name_ru"].to_numpy(dtype=object)
    end_day = to_day(cfg.end_date)
    pids = ids.make_ids(ids.PARTICIPANT, pop.n, 7)
    eids = ids.make_ids(ids.EVENT, ev.n)
    oids = ids.make_ids(ids.ORGANIZATION, orgs.n, 5)
    rcids = ids.make_ids(ids.RESOURCE_CENTER, len(world.resource_centers.kind), 4)
    mids = ids.make_ids(ids.MENTOR, world.mentors.n)
    tids = ids.make_ids(ids.TEAM, len(res.team_event), 7)
    sids = ids.make_ids(ids.SERIES, world.series.n, 5)

    competences = reference.competences()

    # Organizations: numbered schools, a university per region, companies.
    school_no = np.zeros(orgs.n, dtype=np.int64)
    for kind in (ORG_SCHOOL, ORG_COMPANY):
        rows = np.flatnonzero(orgs.kind == kind)
        school_no[rows] = np.arange(1, len(rows) + 1)
    org_name = np.where(
        orgs.kind == ORG_SCHOOL, np.char.add("Школа №", school_no.astype(str)).astype(object),
        np.where(
            orgs.kind == ORG_UNIVERSITY, "Университет (" + names_ru[orgs.region] + ")",
            np.char.add("ООО «Технологии-", school_no.astype(str)).astype(object) + "»",
        ),
    )
    organizations = pd.DataFrame({
        "organization_id": _s(oids),
        "kind": _s(np.array(ORGANIZATION_KINDS, dtype=object)[orgs.kind]),
        "region_code": _s(codes[orgs.region]),
        "name": _s(org_name),
        "settlement_type": _s(np.array(SETTLEMENT_TYPES, dtype=object)[orgs.settlement]),
    })

    rc = world.resource_centers
    rc_kind = np.array(RESOURCE_CENTER_KINDS, dtype=object)[rc.kind]
    rc_label = {"kvantorium": "Кванториум", "cmit": "ЦМИТ", "fablab": "Фаблаб", "school_circle": "Школьный кружок",
                "it_cube": "IT-куб", "other": "Центр"}
    resource_centers = pd.DataFrame({
        "resource_center_id": _s(rcids),
        "kind": _s(rc_kind),
        "region_code": _s(codes[rc.region]),
        "name": _s([f"{rc_label[str(k)]} ({names_ru[r]})" for k, r in zip(rc_kind, rc.region, strict=True)]),
        "competences": _s(weighted_text(rc.comp_idx, rc.comp_w)),
    })

    people = identities(stream(cfg.seed, _IDENTITY_STREAM), pop.female)
    declared_idx, declared_w = declared_interests(pop.interest, stream(cfg.seed, _INTERESTS_STREAM))
    participants = pd.DataFrame({
        "participant_id": _s(pids),
        "birth_date": _dates(pop.birth_day),
        "region_code": _s(codes[pop.region]),
        "last_name": _s(people["last_name"]),
        "first_name": _s(people["first_name"]),
        "middle_name": _s(people["middle_name"]),
        "gender": _s(np.where(pop.female, "female", "male").astype(object)),
        "settlement_type": _s(np.array(SETTLEMENT_TYPES, dtype=object)[pop.settlement]),
        "organization_id": _s(oids[pop.school]),
        "grade": _int(grade_at(pop.birth_year, end_day)),
        "email": _s(people["email"]),
        "consent_research": _bool(pop.consent_research),
        "consent_admissions": _bool(pop.consent_admissions),
        # AIF extension: declared interests, unknown (empty) for those who did not fill the form in.
        "interests": _s(declared_text(declared_idx, declared_w)),
    })

    s = world.series
    season_text = np.array([f"{y}/{(y + 1) % 100:02d}" for y in range(cfg.start_year, cfg.start_year + cfg.seasons)])
    multi = s.n_stages[ev.series] > 1
    stage_text = np.where(multi, ", " + np.array([STAGE_RU[lv] for lv in LEVELS], dtype=object)[ev.level], "")
    title = s.title[ev.series] + " " + season_text[ev.season - cfg.start_year].astype(object) + stage_text
    online = ev.online
    events = pd.DataFrame({
        "event_id": _s(eids),
        "title": _s(title),
        "format": _s(np.array(EVENT_FORMATS, dtype=object)[ev.format]),
        "level": _s(np.array(LEVELS, dtype=object)[ev.level]),
        "competences": _s(weighted_text(s.comp_idx, s.comp_w)[ev.series]),
        "start_date": _dates(ev.start),
        "series_id": _s(sids[ev.series]),
        "end_date": _dates(ev.end),
        "registration_deadline": _dates(ev.reg_deadline),
        "region_code": _s(np.where(online, None, codes[np.maximum(ev.region, 0)])),
        "online": _bool(online),
        "min_grade": _int(ev.min_grade),
        "max_grade": _int(ev.max_grade),
        "capacity": _int(ev.capacity, ev.capacity == 0),
        "team_min": _int(ev.team_min, ev.team_min == 0),
        "team_max": _int(ev.team_max, ev.team_max == 0),
        "parent_event_id": _s(np.where(ev.parent >= 0, eids[np.maximum(ev.parent, 0)], None)),
        "organizer_id": _s(oids[s.organizer[ev.series]]),
        "resource_center_id": _s(
            np.where(s.resource_center[ev.series] >= 0, rcids[np.maximum(s.resource_center[ev.series], 0)], None)
        ),
        "benefit_level": _int(ev.benefit_level, ev.benefit_level < 0),
        # Not an AIF v1 field (kept as `extra` by readers): the day registration opens. The world's
        # participants choose among events with registration_opens <= date <= registration_deadline.
        "registration_opens": _dates(ev.reg_open),
    })

    m = world.mentors
    mentors = pd.DataFrame({
        "mentor_id": _s(mids),
        "competences": _s(weighted_text(m.comp_idx, m.comp_w)),
        "region_code": _s(codes[m.region]),
        "capacity": _int(m.capacity),
        "online": _bool(m.online),
        "organization_type": _s(np.array(MENTOR_ORGANIZATION_TYPES, dtype=object)[m.organization_type]),
        "tech_leader": _bool(m.tech_leader),
    })

    n_teams = len(res.team_event)
    project = np.array(PROJECT_WORDS, dtype=object)[np.arange(n_teams) % len(PROJECT_WORDS)]
    teams = pd.DataFrame({
        "team_id": _s(tids),
        "event_id": _s(eids[res.team_event]),
        "name": _s(np.char.add("Команда ", (np.arange(n_teams) + 1).astype(str)).astype(object)),
        "mentor_id": _s(np.where(res.team_mentor >= 0, mids[np.maximum(res.team_mentor, 0)], None)),
        "project_title": _s(project),
    })

    # Finished registrations carry results; the others (events not over by the export date) are
    # registrations only, dated the day they were made.
    pending = (ev.end[h.reg_event] >= end_day)
    reg_p, reg_e, reg_d = h.reg_participant[pending], h.reg_event[pending], h.reg_day[pending]
    n_res, n_reg = len(res.participant), len(reg_p)
    team = np.concatenate([res.team, np.full(n_reg, -1, np.int32)])
    rank = np.concatenate([res.rank, np.zeros(n_reg, np.int32)])
    score = np.concatenate([res.score, np.full(n_reg, np.nan, np.float32)]).astype(np.float64)
    result = np.concatenate([res.result, np.zeros(n_reg, np.int8)])
    achievements = pd.DataFrame({
        "participant_id": _s(pids[np.concatenate([res.participant, reg_p])]),
        "event_id": _s(eids[np.concatenate([res.event, reg_e])]),
        "role": _s(np.array(ROLES, dtype=object)[np.concatenate([res.role, np.zeros(n_reg, np.int8)])]),
        "result": _s(np.array(RESULTS_ALL, dtype=object)[result]),
        "date": _dates(np.concatenate([ev.end[res.event], reg_d])),
        "achievement_id": _s(ids.make_ids(ids.ACHIEVEMENT, n_res + n_reg, 8)),
        "score": score,
        "rank": _int(rank, rank == 0),
        "team_id": _s(np.where(team >= 0, tids[np.maximum(team, 0)], None)),
        "verified": _bool(np.concatenate([np.ones(n_res, bool), np.zeros(n_reg, bool)])),
    })

    pr = world.programs
    programs = pd.DataFrame({
        "program_id": _s(ids.make_ids(ids.PROGRAM, len(pr.name), 3)),
        "requirements": _s(weighted_text(pr.comp_idx, pr.comp_w)),
        "university": _s(pr.university),
        "name": _s(pr.name),
        "min_level": _s(np.array(LEVELS, dtype=object)[pr.min_level]),
    })
    return {
        "competences": competences,
        "organizations": organizations,
        "resource_centers": resource_centers,
        "participants": participants,
        "events": events,
        "mentors": mentors,
        "teams": teams,
        "achievements": achievements,
        "programs": programs,
    }


def manifest(world: World) -> dict[str, str]:
    """Deterministic manifest: exported at the world's end date, never the wall clock."""
    exported_at = f"{world.config.end_date.isoformat()}T00:00:00+00:00"
    return {"source": f"synth-seed-{world.config.seed}", "exported_at": exported_at}
