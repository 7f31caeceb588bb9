"""The ground-truth directory: latent traits, true skills over time, true effects and the choice model."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from recommender.columns import LEVELS, RESULTS_ALL, SETTLEMENT_TYPES
from recommender.synth import ids
from recommender.synth.catalog import Events
from recommender.synth.choice import ChoiceCoefficients, Chooser
from recommender.synth.config import SynthConfig
from recommender.synth.dates import days_to_datetime, to_day
from recommender.synth.history import History
from recommender.synth.population import competence_ids, region_table
from recommender.synth.results import ResultCoefficients, mentor_effect, team_strength
from recommender.synth.simulate import MONTH_ACTIVITY, QUALIFIED_ACTIVITY, World, age_growth

TRUTH_VERSION = 1
# Written without statistics or timestamps so that the same world gives byte-identical files.
_PARQUET = {"compression": "zstd", "write_statistics": False, "store_schema": True}

EVENT_ARRAYS = tuple(f.name for f in fields(Events) if f.name != "weights")


def _write(table: pd.DataFrame, path: Path) -> None:
    pq.write_table(pa.Table.from_pandas(table, preserve_index=False), path, **_PARQUET)


def _weights_frame(prefix: str, matrix: np.ndarray, comps: list[str]) -> pd.DataFrame:
    return pd.DataFrame({f"{prefix}{c}": matrix[:, i].astype(np.float32) for i, c in enumerate(comps)})


def save_truth(world: World, out: Path) -> dict[str, int]:
    """Write DIR/truth; returns row counts per file."""
    out.mkdir(parents=True, exist_ok=True)
    cfg, pop, ev, h, res = world.config, world.population, world.events, world.history, world.results
    comps = competence_ids()
    codes = region_table()["region_code"].to_numpy(dtype=object)
    (out / "config.json").write_text(
        json.dumps(
            {"truth_version": TRUTH_VERSION, "config": cfg.model_dump(), "start_date": cfg.start_date.isoformat(),
             "end_date": cfg.end_date.isoformat()},
            indent=2,
        ) + "\n",
        encoding="utf-8",
    )
    model = {
        "choice": world.choice_coefficients.to_dict(),
        "results": world.result_coefficients.to_dict(),
        "competences": comps,
        "month_activity_sep_to_aug": [round(float(x), 6) for x in MONTH_ACTIVITY],
        "activity": (
            "choices in a month ~ Poisson(activity_p * month_activity / 12 + qualified_activity * "
            "[open stages p qualified for]); picks = top-n of U + Gumbel noise among open events"
        ),
        "qualified_activity": QUALIFIED_ACTIVITY,
        "utility": (
            "U(p,e) = interest*(interest_p . w_e) + mentor*(mentor_w[m(p)] . w_e) "
            "- level_above*max(level_e - t_p, 0) - level_below*max(t_p - level_e, 0) "
            "+ popularity*log_pop_series(e) + weeks_ahead*(start_e - as_of)/7 + online*[online_e] "
            "+ offline_{town,rural}*[offline_e] + friends*log1p(schoolmates registered) "
            "+ qualified_stage*[e is a stage p qualified for]; t_p = min(reached_level_p + 1, 4); "
            "P(next = e) = softmax over events open to p"
        ),
        "performance": (
            "perf = skill_p . w_e - difficulty_e + N(0, noise); team: mean member fit + team_effect "
            "+ mentor_effect - difficulty_e + N(0, noise); team_effect = team_complement*(coverage - mean fit) "
            "+ team_teamwork*mean teamwork skill + chemistry; mentor_effect = quality*(mentor_base + fit)"
        ),
        "growth": (
            "skill += growth * w_e at the event's end; growth = growth_by_format*(1+growth_per_level*level)"
            "*learning_p*(1+team_growth*max(team_effect,0)+mentor_growth*mentor_effect); every September "
            "skill += age_growth*(0.3+0.7*interest/max interest)"
        ),
    }
    (out / "model.json").write_text(json.dumps(model, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    pids = ids.make_ids(ids.PARTICIPANT, pop.n, 7)
    parts = pd.DataFrame({
        "participant_id": pids,
        "region_code": codes[pop.region],
        "settlement_type": np.array(SETTLEMENT_TYPES, dtype=object)[pop.settlement],
        "school_idx": pop.school,
        "birth_year": pop.birth_year,
        "activity": pop.activity,
        "learning": pop.learning,
    })
    parts = pd.concat(
        [parts, _weights_frame("interest_", pop.interest, comps), _weights_frame("skill0_", pop.skill0, comps)],
        axis=1,
    )
    _write(parts, out / "participants.parquet")

    evf = pd.DataFrame({
        "event_id": ids.make_ids(ids.EVENT, ev.n), "series_id": ids.make_ids(ids.SERIES, world.series.n)[ev.series]
    })
    for name in EVENT_ARRAYS:
        evf[name] = getattr(ev, name)
    evf["log_popularity"] = world.series.log_popularity[ev.series]
    evf = pd.concat([evf, _weights_frame("w_", ev.weights, comps)], axis=1)
    _write(evf, out / "events.parquet")

    s = world.series
    _write(
        pd.DataFrame({
            "series_id": ids.make_ids(ids.SERIES, s.n), "format": s.format, "n_stages": s.n_stages,
            "log_popularity": s.log_popularity, "difficulty": s.difficulty,
        }),
        out / "series.parquet",
    )
    m = world.mentors
    mentors = pd.DataFrame({
        "mentor_id": ids.make_ids(ids.MENTOR, m.n), "quality": m.quality, "region": m.region, "online": m.online,
        "capacity": m.capacity,
    })
    _write(pd.concat([mentors, _weights_frame("w_", world.mentor_weights, comps)], axis=1), out / "mentors.parquet")

    _write(
        pd.DataFrame({"participant_idx": h.reg_participant, "event_idx": h.reg_event, "day": h.reg_day}),
        out / "registrations.parquet",
    )
    _write(
        pd.DataFrame({
            "participant_idx": h.res_participant, "event_idx": h.res_event, "day": h.res_day,
            "result": h.res_result, "team_idx": h.res_team, "role": res.role, "rank": res.rank,
            "score": res.score, "performance": res.performance, "growth": res.growth,
        }),
        out / "results.parquet",
    )
    _write(
        pd.DataFrame({
            "team_id": ids.make_ids(ids.TEAM, len(res.team_event), 7), "event_idx": res.team_event,
            "mentor_idx": res.team_mentor, "team_effect": res.team_effect, "chemistry": res.team_chemistry,
            "mentor_effect": res.mentor_effect, "performance": res.team_performance,
        }),
        out / "teams.parquet",
    )
    (out / "README.md").write_text(TRUTH_README, encoding="utf-8")
    return {
        "participants": pop.n, "events": ev.n, "registrations": len(h.reg_participant),
        "results": len(h.res_participant), "teams": len(res.team_event), "mentors": m.n,
    }


TRUTH_README = """# Ground truth of a synthetic world (no model may read this)

Days are day numbers since 1970-01-01; *_idx columns are row numbers of participants.parquet,
events.parquet, mentors.parquet and teams.parquet (ids there match the AIF ids).

- config.json: the SynthConfig, start and end (export) dates.
- model.json: choice-model and result/growth coefficients, the competence order, the formulas.
- participants.parquet: region, settlement, school_idx, birth_year, activity (expected registrations
  per season), learning (growth multiplier), interest_<c> (sums to 1), skill0_<c> (skill at the start).
- events.parquet: every Events array (reg_open is latent: registration opens; difficulty is latent),
  log_popularity of the series, w_<c> competence weights (rows sum to 1).
- series.parquet: latent log_popularity and difficulty of each series.
- mentors.parquet: latent quality (true effect = quality * (mentor_base + fit)), w_<c> competences.
- registrations.parquet: every registration (participant_idx, event_idx, day it was made).
- results.parquet: every finished registration: result, role, team, rank, score, latent performance and
  the growth it caused (skill += growth * w_e from `day` on).
- teams.parquet: true team_effect (structure + chemistry), mentor_effect and team performance.

True skills on a date: recommender.synth.truth.true_skills(world_dir, as_of).
Oracle choice probabilities: recommender.synth.oracle.choice_probabilities(world_dir, as_of).
"""


def _truth_dir(path: Path) -> Path:
    path = Path(path)
    return path / "truth" if (path / "truth").is_dir() else path


@dataclass
class Truth:
    """A loaded ground truth: the arrays the choice model and the skill law need."""

    config: SynthConfig
    choice: ChoiceCoefficients
    results: ResultCoefficients
    competences: list[str]
    participant_ids: np.ndarray
    event_ids: np.ndarray
    region: np.ndarray
    settlement: np.ndarray
    school: np.ndarray
    birth_year: np.ndarray
    interest: np.ndarray
    skill0: np.ndarray
    activity: np.ndarray
    events: Events
    log_popularity: np.ndarray
    mentor_ids: np.ndarray
    mentor_quality: np.ndarray
    mentor_weights: np.ndarray
    history: History
    result_growth: np.ndarray  # aligned with history.res_*
    result_performance: np.ndarray
    teams: pd.DataFrame

    def chooser(self) -> Chooser:
        return Chooser(
            region=self.region, settlement=self.settlement, school=self.school, birth_year=self.birth_year,
            interest=self.interest, events=self.events, log_popularity=self.log_popularity,
            mentor_weights=self.mentor_weights, coef=self.choice, n_regions=len(region_table()),
        )

    def skills_at(self, as_of: date) -> np.ndarray:
        """True skill matrix [participants, competences] on a date (results of events ended before it)."""
        day = to_day(as_of)
        skill = self.skill0.copy()
        septembers = sum(
            1 for y in range(self.config.start_year + 1, self.config.start_year + 30) if to_day(date(y, 9, 1)) <= day
        )
        if septembers:
            skill += septembers * age_growth(self.results, self.interest)
        h = self.history
        done = h.res_day < day
        p, e, g = h.res_participant[done], h.res_event[done], self.result_growth[done]
        np.add.at(skill, p, g[:, None] * self.events.weights[e])
        return skill

    def mentor_benefit(self, mentor_ids: Sequence[str], event_ids: Sequence[str]) -> np.ndarray:
        """True effect on a team's performance of each (mentor, event) pair: quality x (base + fit)."""
        m = pd.Index(self.mentor_ids).get_indexer(pd.Index(list(mentor_ids), dtype=object))
        e = pd.Index(self.event_ids).get_indexer(pd.Index(list(event_ids), dtype=object))
        if (m < 0).any() or (e < 0).any():
            raise KeyError("unknown mentor or event id")
        fit = (self.mentor_weights[m] * self.events.weights[e]).sum(axis=1)
        return mentor_effect(self.results, self.mentor_quality[m], fit)

    def team_success(self, teams: Sequence[Sequence[str]], event_id: str, as_of: date) -> np.ndarray:
        """Expected performance of each proposed team at an event (true skills on `as_of`, no mentor).

        Mean member fit + structural team effect - difficulty: what a team-formation method should
        maximize; chemistry and noise are unpredictable by design.
        """
        e = int(pd.Index(self.event_ids).get_indexer([event_id])[0])
        if e < 0:
            raise KeyError(f"unknown event {event_id!r}")
        index = pd.Index(self.participant_ids)
        rows = [index.get_indexer(pd.Index(list(team), dtype=object)) for team in teams]
        if any((r < 0).any() or len(r) == 0 for r in rows):
            raise KeyError("unknown participant id or empty team")
        members = np.concatenate(rows)
        starts = np.cumsum([0] + [len(r) for r in rows[:-1]])
        skill = self.skills_at(as_of)[members]
        w = np.repeat(self.events.weights[e][None, :], len(rows), axis=0)
        base, structural = team_strength(self.results, skill, starts, w, self.competences.index("teamwork"))
        return (base + structural - self.events.difficulty[e]).astype(np.float64)


def _weights(frame: pd.DataFrame, prefix: str, comps: list[str]) -> np.ndarray:
    return np.ascontiguousarray(frame[[f"{prefix}{c}" for c in comps]].to_numpy(dtype=np.float32))


def load_truth(world_dir: Path) -> Truth:
    """Load DIR/truth (or a truth directory itself)."""
    d = _truth_dir(world_dir)
    conf = json.loads((d / "config.json").read_text(encoding="utf-8"))
    model = json.loads((d / "model.json").read_text(encoding="utf-8"))
    comps = list(model["competences"])
    parts = pq.read_table(d / "participants.parquet").to_pandas()
    evf = pq.read_table(d / "events.parquet").to_pandas()
    mentors = pq.read_table(d / "mentors.parquet").to_pandas()
    regs = pq.read_table(d / "registrations.parquet").to_pandas()
    res = pq.read_table(d / "results.parquet").to_pandas()
    teams = pq.read_table(d / "teams.parquet").to_pandas()
    code_to_row = {c: i for i, c in enumerate(region_table()["region_code"])}
    settlement = {name: i for i, name in enumerate(SETTLEMENT_TYPES)}
    events = Events(
        **{name: evf[name].to_numpy() for name in EVENT_ARRAYS}, weights=_weights(evf, "w_", comps)
    )
    history = History(
        reg_participant=regs["participant_idx"].to_numpy(np.int32), reg_event=regs["event_idx"].to_numpy(np.int32),
        reg_day=regs["day"].to_numpy(np.int32), res_participant=res["participant_idx"].to_numpy(np.int32),
        res_event=res["event_idx"].to_numpy(np.int32), res_day=res["day"].to_numpy(np.int32),
        res_result=res["result"].to_numpy(np.int8), res_team=res["team_idx"].to_numpy(np.int32),
        team_mentor=teams["mentor_idx"].to_numpy(np.int32),
    )
    return Truth(
        config=SynthConfig(**conf["config"]),
        choice=ChoiceCoefficients(**model["choice"]),
        results=ResultCoefficients(**model["results"]),
        competences=comps,
        participant_ids=parts["participant_id"].to_numpy(dtype=object),
        event_ids=evf["event_id"].to_numpy(dtype=object),
        region=parts["region_code"].map(code_to_row).to_numpy(np.int16),
        settlement=parts["settlement_type"].map(settlement).to_numpy(np.int8),
        school=parts["school_idx"].to_numpy(np.int32),
        birth_year=parts["birth_year"].to_numpy(np.int16),
        interest=_weights(parts, "interest_", comps),
        skill0=_weights(parts, "skill0_", comps),
        activity=parts["activity"].to_numpy(np.float32),
        events=events,
        log_popularity=evf["log_popularity"].to_numpy(np.float32),
        mentor_ids=mentors["mentor_id"].to_numpy(dtype=object),
        mentor_quality=mentors["quality"].to_numpy(np.float32),
        mentor_weights=_weights(mentors, "w_", comps),
        history=history,
        result_growth=res["growth"].to_numpy(np.float32),
        result_performance=res["performance"].to_numpy(np.float32),
        teams=teams,
    )


def true_skills(world_dir: Path, as_of: date, truth: Truth | None = None) -> pd.DataFrame:
    """True skill of every participant per competence on `as_of`: participant_id + one column per competence."""
    t = truth or load_truth(world_dir)
    skill = t.skills_at(as_of)
    frame = pd.DataFrame(skill, columns=t.competences)
    frame.insert(0, "participant_id", pd.array(t.participant_ids, dtype="string"))
    return frame


def result_frame(world_dir: Path, truth: Truth | None = None) -> pd.DataFrame:
    """Finished registrations with ids, result names, dates, latent performance and growth."""
    t = truth or load_truth(world_dir)
    h = t.history
    return pd.DataFrame({
        "participant_id": pd.array(t.participant_ids[h.res_participant], dtype="string"),
        "event_id": pd.array(t.event_ids[h.res_event], dtype="string"),
        "date": days_to_datetime(h.res_day),
        "result": pd.Categorical.from_codes(h.res_result, categories=list(RESULTS_ALL)),
        "level": pd.Categorical.from_codes(t.events.level[h.res_event], categories=list(LEVELS)),
        "team_idx": h.res_team,
        "performance": t.result_performance,
        "growth": t.result_growth,
    })

