"""Admissions scoring: a program's weighted competence requirements against consenting participants' profiles."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.competence.estimator import CompetenceRatings
from features.competence.profile import Z90, day_number, reached_levels
from recommender.aif.parsing import parse_weighted
from recommender.columns import LEVEL_RANK, LEVELS, Columns

SCORED = "scored"
NOT_CONSENTED = "not_consented"
UNKNOWN = "unknown_participant"
SCORE_COLUMNS = (
    Columns.Participant, "status", "score", "score_low", "score_high", "percentile", "requirements_met",
    "requirements_missing", "all_requirements_met", "achievements",
)


@dataclass(frozen=True)
class Program:
    """A study program: competence weights and the minimum event level a requirement needs."""

    program_id: str
    requirements: tuple[tuple[str, float], ...]
    min_level: str | None

    @classmethod
    def from_graph(cls, graph: object, program_id: str) -> Program:
        programs: pd.DataFrame = graph.programs  # type: ignore[attr-defined]
        row = programs[programs[Columns.Program].astype(str) == program_id]
        if row.empty:
            raise KeyError(f"unknown program {program_id!r}")
        r = row.iloc[0]
        level = r.get("min_level")
        return cls(
            program_id=program_id,
            requirements=tuple(parse_weighted(str(r["requirements"]))),
            min_level=None if level is None or pd.isna(level) else str(level),
        )


def consented(graph: object) -> np.ndarray:
    """Per participant: consented to admissions sharing (unknown consent is no consent)."""
    parts: pd.DataFrame = graph.participants  # type: ignore[attr-defined]
    if "consent_admissions" not in parts.columns:
        return np.zeros(len(parts), dtype=bool)
    return np.asarray(parts["consent_admissions"].astype("boolean").fillna(False).to_numpy(dtype=bool))


@dataclass(frozen=True)
class ScoringBasis:
    """What scoring reads about every participant on one day, computed once: a service scores many requests
    (of any program) from it."""

    day: int | None  # the day the skills are read on (None: the model's last day)
    mu: np.ndarray  # skill [participants, competences]
    sd: np.ndarray
    evidence: np.ndarray
    levels: np.ndarray  # highest level reached per competence, -1 none
    consented: np.ndarray  # consent to admissions sharing

    @classmethod
    def build(cls, model: CompetenceRatings, graph: object, as_of: object | None = None) -> ScoringBasis:
        from recommender.graph import AchievementsGraph

        assert isinstance(graph, AchievementsGraph)
        day = None if as_of is None else day_number(as_of)
        everyone = np.arange(graph.n_participants)
        mu, sd = model.skill(everyone, on_day=day)
        return cls(day, mu, sd, model.evidence(everyone), reached_levels(graph).astype(np.int8), consented(graph))


def score_program(
    model: CompetenceRatings, graph: object, program: Program, participant_ids: list[str], *,
    as_of: object | None = None, top_k: int = 3, basis: ScoringBasis | None = None,
) -> pd.DataFrame:
    """Score the listed participants against a program (one row each, in the given order).

    score = sum_c w_c z_c / sum_c w_c, z_c the skill standardized over everyone rated in c (an
    unrated competence counts at its newcomer prior, with its full uncertainty); the 90% interval
    carries the skills' uncertainty; the percentile is among all consenting participants with
    evidence in the program's competences. A requirement is met when the participant has a
    result in the competence at an event of at least the program's minimum level (any level
    when the program has none). Participants without consent are listed, never scored. `basis` (built
    from the same model, graph and `as_of`) spares the per-call passes over everyone.
    """
    from recommender.graph import AchievementsGraph

    assert isinstance(graph, AchievementsGraph)
    comp = graph.competence_index
    req = [(comp.get_loc(c), w) for c, w in program.requirements if c in comp]
    if not req:
        raise ValueError(f"program {program.program_id!r} requires no known competence")
    cols = np.array([c for c, _ in req], dtype=np.int64)
    weights = np.array([w for _, w in req], dtype=np.float64)
    weights = weights / weights.sum()
    day = None if as_of is None else day_number(as_of)
    if basis is None:
        basis = ScoringBasis.build(model, graph, as_of)
    elif basis.day != day:
        raise ValueError("the scoring basis was built for another day")
    mu, sd = basis.mu[:, cols], basis.sd[:, cols]
    evidence = basis.evidence[:, cols]
    rated = evidence > 0
    center = np.array([mu[rated[:, j], j].mean() if rated[:, j].any() else 0.0 for j in range(len(cols))])
    spread = np.array([mu[rated[:, j], j].std() if rated[:, j].sum() > 1 else 1.0 for j in range(len(cols))])
    spread = np.where(spread > 1e-9, spread, 1.0)
    z = (mu - center) / spread
    z_sd = sd / spread
    score = z @ weights
    score_sd = np.sqrt((z_sd**2) @ (weights**2))
    ok = basis.consented
    cohort = ok & rated.any(axis=1)
    cohort_scores = np.sort(score[cohort])

    positions = graph.participant_positions(participant_ids)
    known = positions >= 0
    pos = np.where(known, positions, 0)
    levels = basis.levels[:, cols]
    need = LEVEL_RANK.get(program.min_level or "", 0)
    met = levels[pos] >= need
    names = comp.to_numpy()[cols]
    scored = known & ok[pos]
    pct = 100.0 * (np.searchsorted(cohort_scores, score[pos], side="left")
                   + np.searchsorted(cohort_scores, score[pos], side="right")) / (2.0 * max(len(cohort_scores), 1))
    behind = _top_achievements(model, graph, pos[scored], cols, weights, top_k)
    behind_all = np.full(len(pos), "", dtype=object)
    behind_all[np.flatnonzero(scored)] = behind
    status = np.where(~known, UNKNOWN, np.where(scored, SCORED, NOT_CONSENTED))

    missing = np.full(len(pos), None, dtype=object)

    def texts(columns: list[np.ndarray]) -> pd.array:
        return pd.array(np.where(scored, np.array(_join_columns(columns, len(pos)), dtype=object), missing),
                        dtype="string")

    def masked(values: np.ndarray) -> pd.array:
        return pd.array(np.where(scored, np.round(values, 4), np.nan), dtype="Float64")

    return pd.DataFrame({
        Columns.Participant: pd.array(participant_ids, dtype="string"),
        "status": pd.array(status, dtype="string"),
        "score": masked(score[pos]),
        "score_low": masked(score[pos] - Z90 * score_sd[pos]),
        "score_high": masked(score[pos] + Z90 * score_sd[pos]),
        "percentile": masked(pct),
        "requirements_met": texts([np.where(met[:, j], names[j], "") for j in range(len(names))]),
        "requirements_missing": texts([np.where(~met[:, j], names[j], "") for j in range(len(names))]),
        "all_requirements_met": pd.array(np.where(scored, met.all(axis=1), pd.NA), dtype="boolean"),
        "achievements": pd.array(np.where(scored, behind_all, missing), dtype="string"),
    })


def _top_achievements(model: CompetenceRatings, graph: object, positions: np.ndarray, cols: np.ndarray,
                      weights: np.ndarray, top_k: int) -> list[str]:
    """Per scored participant: the events of the achievements that moved the program score most (either way)."""
    hist = model.history_
    if len(positions) == 0 or hist.empty:
        return ["" for _ in positions]
    wmap = np.zeros(int(max(cols.max(), hist["competence"].max())) + 1)
    wmap[cols] = weights
    h = hist[np.isin(hist["participant"].to_numpy(), positions)]
    h = h.assign(gain=h["contribution"].to_numpy() * wmap[h["competence"].to_numpy(np.int64)])
    h = h[h["gain"] != 0]
    per_row = h.groupby(["participant", "row"], sort=False)["gain"].sum().abs().reset_index()
    per_row = per_row.sort_values(["participant", "gain"], ascending=[True, False])
    per_row = per_row.groupby("participant", sort=False).head(top_k)
    events = graph.achievements[Columns.Event].astype(str).to_numpy()  # type: ignore[attr-defined]
    per_row["event"] = events[per_row["row"].to_numpy(np.int64)]
    per_row["place"] = per_row.groupby("participant", sort=False).cumcount()
    wide = per_row.pivot(index="participant", columns="place", values="event").reindex(positions)
    return _join_columns([wide[col] for col in wide.columns], len(positions))


def _join_columns(columns: list[pd.Series] | list[np.ndarray], n: int) -> list[str]:
    """Row-wise ';'-join of string columns, skipping missing and empty values (vectorized)."""
    out = pd.Series([""] * n, dtype=object)
    for col in columns:
        values = pd.Series(np.asarray(col, dtype=object)).fillna("").astype(str)
        glue = np.where((out.to_numpy() != "") & (values.to_numpy() != ""), ";", "")
        out = out + glue + values
    return [str(x) for x in out]


def radar_chart(
    model: CompetenceRatings, graph: object, program: Program, participant_id: str, out_stem: Path,
) -> list[Path]:
    """Radar chart of a participant's profile (skill percentile in each required competence) against the
    program's requirements (their relative weights); writes OUT_STEM.png and OUT_STEM.svg."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from recommender.graph import AchievementsGraph

    assert isinstance(graph, AchievementsGraph)
    comp = graph.competence_index
    req = [(c, w) for c, w in program.requirements if c in comp]
    cols = np.array([comp.get_loc(c) for c, _ in req], dtype=np.int64)
    weights = np.array([w for _, w in req], dtype=np.float64)
    pos = int(graph.participant_positions([participant_id])[0])
    if pos < 0:
        raise KeyError(f"unknown participant {participant_id!r}")
    mu, sd = model.skill(np.arange(graph.n_participants))
    rated = model.evidence(np.arange(graph.n_participants)) > 0
    pct: list[float] = []
    low: list[float] = []
    high: list[float] = []
    for c in cols:
        ref = np.sort(mu[rated[:, c], c]) if rated[:, c].any() else np.sort(mu[:, c])
        for value, target in ((mu[pos, c], pct), (mu[pos, c] - Z90 * sd[pos, c], low),
                              (mu[pos, c] + Z90 * sd[pos, c], high)):
            target.append(100.0 * float(np.searchsorted(ref, value)) / max(len(ref), 1))
    need = 100.0 * weights / weights.max()
    angles = np.linspace(0, 2 * np.pi, len(cols), endpoint=False)
    closed = np.append(angles, angles[:1])

    def close(values: list[float] | np.ndarray) -> np.ndarray:
        v = np.asarray(values, dtype=np.float64)
        return np.append(v, v[:1])

    fig = plt.figure(figsize=(6, 6))
    ax = fig.add_subplot(111, projection="polar")
    ax.fill_between(closed, close(low), close(high), color="tab:blue", alpha=0.15, label="90% interval")
    ax.plot(closed, close(pct), color="tab:blue", linewidth=2, label="skill percentile")
    ax.plot(closed, close(need), color="tab:orange", linestyle="--", linewidth=2, label="requirement weight")
    ax.set_xticks(angles)
    ax.set_xticklabels([c for c, _ in req])
    ax.set_ylim(0, 100)
    level = f", min level {program.min_level}" if program.min_level else ""
    ax.set_title(f"{participant_id} vs program {program.program_id}{level}")
    ax.legend(loc="lower right", bbox_to_anchor=(1.25, -0.1), fontsize=8)
    out_stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [out_stem.with_suffix(".png"), out_stem.with_suffix(".svg")]
    for path in paths:
        fig.savefig(path, bbox_inches="tight", metadata={"Date": None} if path.suffix == ".svg" else None)
    plt.close(fig)
    return paths


__all__ = ["LEVELS", "NOT_CONSENTED", "SCORED", "Program", "ScoringBasis", "radar_chart", "score_program"]
