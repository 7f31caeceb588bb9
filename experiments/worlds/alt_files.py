"""Writes the alternative world: DIR/aif (AIF v1 CSV written by hand from the spec) and DIR/truth (its own format).

The AIF files are produced here from DESIGN.md's AIF v1 table, not by the product's writer, so that the
dataset is "made elsewhere". Participants carry no names, birth dates or e-mails: grade on the export
date is enough for the product to place them in time.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from alt_calendar import FORMATS, LEVELS, NEST_NAMES, RESULTS, SETTLEMENTS, SIM_END, competences, day, grade_on, iso
from alt_calendar import regions as region_table
from alt_catalog import Catalog
from alt_choice import TasteCoefficients
from alt_population import TASTES, Population, declared_interests
from alt_results import ROLE_NAMES
from alt_simulate import SEASON, History

TRUTH_FORMAT = "alt-world-truth/1"
FORMAT_RU = {"olympiad": "Олимпиада", "hackathon": "Хакатон", "project_school": "Проектная школа",
             "contest": "Конкурс проектов", "course": "Курс", "camp": "Профильная смена", "conference": "Конференция",
             "accelerator": "Акселератор"}


def participant_ids(n: int) -> np.ndarray:
    return np.char.add("alt-p", np.char.zfill(np.arange(1, n + 1).astype(str), 7)).astype(object)


def event_ids(n: int) -> np.ndarray:
    return np.char.add("alt-e", np.char.zfill(np.arange(1, n + 1).astype(str), 6)).astype(object)


def _weighted_text(weights: np.ndarray, names: np.ndarray) -> list[str]:
    rows, cols = np.nonzero(weights > 0)
    text = [f"{names[c]}:{weights[r, c]:.2f}" for r, c in zip(rows.tolist(), cols.tolist(), strict=True)]
    out: list[list[str]] = [[] for _ in range(len(weights))]
    for r, t in zip(rows.tolist(), text, strict=True):
        out[r].append(t)
    return [";".join(parts) for parts in out]


def _int_or_empty(values: np.ndarray, missing: np.ndarray) -> pd.Series:
    return pd.Series(pd.array(np.asarray(values, dtype=np.int64), dtype="Int64")).mask(missing)


def write_aif(out: Path, seed: int, pop: Population, cat: Catalog, hist: History, rng: np.random.Generator) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    comps = competences()
    comp_ids = comps["competence_id"].to_numpy(dtype=object)
    codes = region_table()["region_code"].to_numpy(dtype=object)
    (out / "manifest.json").write_text(json.dumps({
        "format": "aif", "version": "1.0", "source": f"alt-world-seed{seed}",
        "exported_at": f"{SIM_END.isoformat()}T23:00:00",
    }, indent=2) + "\n", encoding="utf-8")

    pids = participant_ids(pop.n)
    pd.DataFrame({
        "participant_id": pids,
        "region_code": codes[pop.region],
        "gender": np.array(["male", "female"], dtype=object)[pop.gender],
        "settlement_type": np.array(SETTLEMENTS, dtype=object)[pop.settlement],
        "grade": grade_on(pop.birth_year, day(SIM_END)),
        "consent_research": np.where(rng.random(pop.n) < 0.9, "true", "false"),
        "consent_admissions": np.where(rng.random(pop.n) < 0.4, "true", "false"),
        "interests": declared_interests(rng, pop.interest),
    }).to_csv(out / "participants.csv", index=False)

    eids = event_ids(cat.n)
    names_ru = comps.set_index("competence_id")["name_ru"]
    main = comp_ids[np.argmax(cat.weights, axis=1)]
    fmt = np.array(FORMATS, dtype=object)[cat.format]
    level = np.array(LEVELS, dtype=object)[cat.level]
    staged = (cat.parent >= 0) | (cat.child >= 0)
    title = [
        f"{FORMAT_RU[f]} «{names_ru[c]}» {s}/{s + 1}" + (f", {lv} stage" if st else "")
        for f, c, s, lv, st in zip(fmt, main, cat.season.tolist(), level, staged, strict=True)
    ]
    individual = cat.team_min == 0
    pd.DataFrame({
        "event_id": eids,
        "title": title,
        "format": fmt,
        "level": level,
        "competences": _weighted_text(cat.weights, comp_ids),
        "start_date": iso(cat.start),
        "end_date": iso(cat.end),
        "series_id": np.char.add("alt-s", cat.series.astype(str)).astype(object),
        "registration_opens": iso(cat.reg_open),
        "registration_deadline": iso(cat.reg_deadline),
        "region_code": np.where(cat.online, "", codes[np.maximum(cat.region, 0)]),
        "online": np.where(cat.online, "true", "false"),
        "min_grade": cat.min_grade,
        "max_grade": cat.max_grade,
        "capacity": _int_or_empty(cat.capacity, cat.capacity == 0),
        "team_min": _int_or_empty(cat.team_min, individual),
        "team_max": _int_or_empty(cat.team_max, individual),
        "parent_event_id": np.where(cat.parent >= 0, eids[np.maximum(cat.parent, 0)], ""),
    }).to_csv(out / "events.csv", index=False)

    achievements = achievement_rows(pids, eids, cat, hist, rng)
    achievements.to_csv(out / "achievements.csv", index=False)
    return {"participants": pop.n, "events": cat.n, "achievements": len(achievements)}


def achievement_rows(pids: np.ndarray, eids: np.ndarray, cat: Catalog, hist: History,
                     rng: np.random.Generator) -> pd.DataFrame:
    """One row per registration: its published result (dated at the event's end), or `registered` (dated at the
    start) when the world ends before the results are out."""
    n_ev = cat.n
    key_res = hist.res_participant.astype(np.int64) * n_ev + hist.res_event
    key_reg = hist.reg_participant.astype(np.int64) * n_ev + hist.reg_event
    pos = pd.Index(key_res).get_indexer(key_reg)
    has = pos >= 0
    p, e = hist.reg_participant, hist.reg_event
    result = np.where(has, hist.res_result[np.maximum(pos, 0)], 0)
    rank = np.where(has, hist.res_rank[np.maximum(pos, 0)], 0)
    score = np.where(has, hist.res_score[np.maximum(pos, 0)], np.nan)
    role = np.where(has, hist.res_role[np.maximum(pos, 0)], 0)
    date = np.where(has, cat.end[e], cat.start[e])
    order = np.lexsort((e, date))
    frame = pd.DataFrame({
        "achievement_id": np.char.add("alt-a", np.arange(1, len(p) + 1).astype(str)).astype(object),
        "participant_id": pids[p[order]],
        "event_id": eids[e[order]],
        "role": np.array(ROLE_NAMES, dtype=object)[role[order]],
        "result": np.array(RESULTS, dtype=object)[result[order]],
        "date": iso(date[order]),
        "score": pd.Series(score[order]).round(1),
        "rank": _int_or_empty(rank[order], rank[order] == 0),
        "verified": np.where(rng.random(len(p)) < 0.8, "true", "false"),
    })
    return frame


def write_truth(out: Path, seed: int, n: int, pop: Population, cat: Catalog, hist: History,
                coef: TasteCoefficients) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    comp_ids = competences()["competence_id"].tolist()
    codes = region_table()["region_code"].to_numpy(dtype=object)
    (out / "world.json").write_text(json.dumps({
        "truth_format": TRUTH_FORMAT, "seed": seed, "participants": n, "end_date": SIM_END.isoformat(),
        "competences": comp_ids, "tastes": list(TASTES), "nests": list(NEST_NAMES), "formats": list(FORMATS),
        "choice": coef.to_dict(), "season_activity_sep_to_aug": SEASON.tolist(),
    }, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    parts = pd.DataFrame({
        "participant_id": participant_ids(pop.n), "region_code": codes[pop.region], "region_idx": pop.region,
        "settlement": pop.settlement, "birth_year": pop.birth_year, "join_day": pop.join, "leave_day": pop.leave,
        "activity": pop.activity, "ability0": pop.ability0,
    })
    parts = pd.concat([parts, pd.DataFrame(pop.taste, columns=[f"taste_{t}" for t in TASTES]),
                       pd.DataFrame(pop.interest, columns=[f"interest_{c}" for c in comp_ids])], axis=1)
    parts.to_parquet(out / "participants.parquet", index=False)
    events = pd.DataFrame({"event_id": event_ids(cat.n)})
    for name in ("series", "season", "stage", "format", "level", "region", "reg_open", "reg_deadline", "start",
                 "end", "min_grade", "max_grade", "capacity", "team_min", "team_max", "parent", "child", "prestige"):
        events[name] = getattr(cat, name)
    events = pd.concat([events, pd.DataFrame(cat.weights, columns=[f"w_{c}" for c in comp_ids])], axis=1)
    events.to_parquet(out / "events.parquet", index=False)
    pd.DataFrame({"participant_idx": hist.reg_participant, "event_idx": hist.reg_event, "day": hist.reg_day}
                 ).to_parquet(out / "registrations.parquet", index=False)
    pd.DataFrame({
        "participant_idx": hist.res_participant, "event_idx": hist.res_event, "day": hist.res_day,
        "result": hist.res_result, "rank": hist.res_rank, "score": hist.res_score,
        "performance": hist.res_performance, "growth": hist.res_growth, "role": hist.res_role,
    }).to_parquet(out / "results.parquet", index=False)
    (out / "README.md").write_text(TRUTH_README, encoding="utf-8")
    return {"registrations": len(hist.reg_participant), "results": len(hist.res_participant)}


TRUTH_README = """# Ground truth of an alternative world (experiments/worlds; no model may read this)

Made by experiments/worlds/alt_world.py, independently of recommender/synth. Days are day numbers since
1970-01-01; *_idx columns are row numbers of participants.parquet and events.parquet (ids match the AIF).

- world.json: seed, competence order, taste and nest names, choice coefficients, monthly activity.
- participants.parquet: region, settlement (0 city, 1 town, 2 rural), birth_year, join/leave days,
  activity (registrations wanted per year), ability0, taste_<t> (mixture weights), interest_<c>.
- events.parquet: catalog arrays (region -1 = online, parent/child stage links, latent prestige), w_<c>.
- registrations.parquet: every registration with the day it was made.
- results.parquet: every published result (day it became known, result code in AIF order, rank, score,
  latent performance, ability growth, role code).

Oracle: experiments/worlds/alt_oracle.py choice_probabilities(truth_dir, as_of, participant_ids).
"""
