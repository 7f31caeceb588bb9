"""Admissions scoring: a program's weighted competence requirements against consenting participants' profiles."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
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
    (of any program) from it, and keeps each program's cohort here (`cohort`) after its first request."""

    day: int | None  # the day the skills are read on (None: the model's last day)
    mu: np.ndarray  # skill [participants, competences]
    sd: np.ndarray
    evidence: np.ndarray
    levels: np.ndarray  # highest level reached per competence, -1 none
    consented: np.ndarray  # consent to admissions sharing
    # Per program requirements: its cohort; and the model's history by participant. The basis is
    # immutable, so these never go stale: a new graph or model comes with a new basis.
    _cohorts: dict[tuple[tuple[str, float], ...], ProgramCohort] = field(
        default_factory=dict, init=False, repr=False, compare=False)
    _history: dict[str, HistoryIndex] = field(default_factory=dict, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    @classmethod
    def build(cls, model: CompetenceRatings, graph: object, as_of: object | None = None) -> ScoringBasis:
        from recommender.graph import AchievementsGraph

        assert isinstance(graph, AchievementsGraph)
        day = None if as_of is None else day_number(as_of)
        everyone = np.arange(graph.n_participants)
        mu, sd = model.skill(everyone, on_day=day)
        return cls(day, mu, sd, model.evidence(everyone), reached_levels(graph).astype(np.int8), consented(graph))

    def cohort(self, graph: object, program: Program) -> ProgramCohort:
        """The program's cohort over this basis: built on the first call for its requirements, then reused."""
        cached = self._cohorts.get(program.requirements)
        if cached is not None:
            return cached
        with self._lock:  # one build per program, however many requests ask for it at once
            cached = self._cohorts.get(program.requirements)
            if cached is None:
                cached = self._cohorts[program.requirements] = ProgramCohort.build(self, graph, program)
            return cached

    def history(self, model: CompetenceRatings) -> HistoryIndex:
        """The model's rating history ordered by participant (built on first use)."""
        cached = self._history.get("history")
        if cached is not None and cached.frame is model.history_:
            return cached
        with self._lock:
            cached = self._history.get("history")
            if cached is None or cached.frame is not model.history_:
                cached = self._history["history"] = HistoryIndex.build(model.history_, len(self.mu))
            return cached


@dataclass(frozen=True)
class HistoryIndex:
    """A rating history's rows grouped by participant (in their original order), so that a few participants'
    updates are read without a pass over everyone's."""

    frame: pd.DataFrame  # the model's `history_`
    order: np.ndarray  # history rows, by participant, stable
    start: np.ndarray  # [participants + 1]: offsets into `order`

    @classmethod
    def build(cls, history: pd.DataFrame, n_participants: int) -> HistoryIndex:
        owner = history["participant"].to_numpy(np.int64)
        order = np.argsort(owner, kind="stable")
        start = np.searchsorted(owner[order], np.arange(n_participants + 1), side="left")
        return cls(history, order, start)

    def rows(self, positions: np.ndarray) -> pd.DataFrame:
        """History rows of these participants (each once), every participant's rows in their original order."""
        unique = np.unique(positions)
        lo, hi = self.start[unique], self.start[unique + 1]
        counts = hi - lo
        within = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        take = self.order[np.repeat(lo, counts) + within]
        return self.frame.iloc[take]


@dataclass(frozen=True)
class ProgramCohort:
    """A program over one scoring basis: how each required skill is standardized and the sorted scores of the
    cohort (consenting participants with evidence in the program's competences) that percentiles rank in."""

    cols: np.ndarray  # required competences (positions)
    weights: np.ndarray  # their weights, summing to 1
    center: np.ndarray
    spread: np.ndarray
    scores: np.ndarray  # the cohort's scores, ascending

    @classmethod
    def build(cls, basis: ScoringBasis, graph: object, program: Program) -> ProgramCohort:
        cols, weights = _program_columns(graph, program)
        center, spread = _standardization(basis, cols)
        score, _ = _weighted_scores(basis.mu[:, cols], basis.sd[:, cols], center, spread, weights)
        cohort = basis.consented & (basis.evidence[:, cols] > 0).any(axis=1)
        return cls(cols, weights, center, spread, np.sort(score[cohort]))

    def percentile(self, scores: np.ndarray) -> np.ndarray:
        """Mid-rank percentile of each score among the cohort's (ties count half)."""
        return _percentile(self.scores, scores)


def _program_columns(graph: object, program: Program) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the program's known required competences and their weights normalized to sum 1."""
    comp = graph.competence_index  # type: ignore[attr-defined]
    req = [(comp.get_loc(c), w) for c, w in program.requirements if c in comp]
    if not req:
        raise ValueError(f"program {program.program_id!r} requires no known competence")
    cols = np.array([c for c, _ in req], dtype=np.int64)
    weights = np.array([w for _, w in req], dtype=np.float64)
    return cols, weights / weights.sum()


def _standardization(basis: ScoringBasis, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each required skill over everyone rated in it (0 and 1 when too few)."""
    mu = basis.mu[:, cols]
    rated = basis.evidence[:, cols] > 0
    center = np.array([mu[rated[:, j], j].mean() if rated[:, j].any() else 0.0 for j in range(len(cols))])
    spread = np.array([mu[rated[:, j], j].std() if rated[:, j].sum() > 1 else 1.0 for j in range(len(cols))])
    return center, np.where(spread > 1e-9, spread, 1.0)


def _weighted_scores(mu: np.ndarray, sd: np.ndarray, center: np.ndarray, spread: np.ndarray,
                     weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the weighted standardized skill and its sd.

    Accumulated column by column, element-wise, so a row's score is bit-identical whether it is computed
    among everyone (the cohort) or alone (a request): a matrix product may sum in another order.
    """
    z = (mu - center) / spread
    z_sd = sd / spread
    score = np.zeros(len(mu))
    var = np.zeros(len(mu))
    for j, w in enumerate(weights):
        score = score + z[:, j] * w
        var = var + z_sd[:, j] ** 2 * w**2
    return score, np.sqrt(var)


def _percentile(sorted_scores: np.ndarray, scores: np.ndarray) -> np.ndarray:
    return 100.0 * (np.searchsorted(sorted_scores, scores, side="left")
                    + np.searchsorted(sorted_scores, scores, side="right")) / (2.0 * max(len(sorted_scores), 1))


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

    This scores everyone to rank the listed: right for one batch; a service answering many requests
    uses `score_listed`, which gives the same frame at a cost that grows with the list only.
    """
    from recommender.graph import AchievementsGraph

    assert isinstance(graph, AchievementsGraph)
    cols, weights = _program_columns(graph, program)
    day = None if as_of is None else day_number(as_of)
    if basis is None:
        basis = ScoringBasis.build(model, graph, as_of)
    elif basis.day != day:
        raise ValueError("the scoring basis was built for another day")
    center, spread = _standardization(basis, cols)
    score, score_sd = _weighted_scores(basis.mu[:, cols], basis.sd[:, cols], center, spread, weights)
    cohort = basis.consented & (basis.evidence[:, cols] > 0).any(axis=1)
    cohort_scores = np.sort(score[cohort])

    positions = graph.participant_positions(participant_ids)
    pos = np.where(positions >= 0, positions, 0)
    scored = (positions >= 0) & basis.consented[pos]
    hist = model.history_
    behind = _top_achievements(hist[np.isin(hist["participant"].to_numpy(), pos[scored])], graph, pos[scored],
                               cols, weights, top_k)
    return _scores_frame(participant_ids, positions, scored, score[pos], score_sd[pos],
                         _percentile(cohort_scores, score[pos]), basis.levels[:, cols][pos], program, graph, cols,
                         behind)


def score_listed(
    model: CompetenceRatings, graph: object, program: Program, participant_ids: list[str], basis: ScoringBasis, *,
    top_k: int = 3,
) -> pd.DataFrame:
    """`score_program` on the basis's day, for a service: the program's cohort is taken from the basis (built
    on its first request), and only the listed participants are read, so the cost of a request grows with
    the number of ids and not with the number of participants. The frame equals `score_program`'s."""
    from recommender.graph import AchievementsGraph

    assert isinstance(graph, AchievementsGraph)
    if basis.mu.shape != (graph.n_participants, len(graph.competence_index)):
        raise ValueError("the scoring basis was built over another graph")
    cohort = basis.cohort(graph, program)
    cols = cohort.cols
    positions = graph.participant_positions(participant_ids)
    pos = np.where(positions >= 0, positions, 0)
    scored = (positions >= 0) & basis.consented[pos]
    rows = np.ix_(pos, cols)
    score, score_sd = _weighted_scores(basis.mu[rows], basis.sd[rows], cohort.center, cohort.spread, cohort.weights)
    behind = _top_achievements(basis.history(model).rows(pos[scored]), graph, pos[scored], cols, cohort.weights,
                               top_k)
    return _scores_frame(participant_ids, positions, scored, score, score_sd, cohort.percentile(score),
                         basis.levels[rows], program, graph, cols, behind)


def _scores_frame(participant_ids: list[str], positions: np.ndarray, scored: np.ndarray, score: np.ndarray,
                  score_sd: np.ndarray, pct: np.ndarray, levels: np.ndarray, program: Program, graph: object,
                  cols: np.ndarray, behind: list[str]) -> pd.DataFrame:
    """The scores frame (`SCORE_COLUMNS`) from per-listed-row arrays; only consenting rows carry values."""
    known = positions >= 0
    met = levels >= LEVEL_RANK.get(program.min_level or "", 0)
    names = graph.competence_index.to_numpy()[cols]  # type: ignore[attr-defined]
    behind_all = np.full(len(positions), "", dtype=object)
    behind_all[np.flatnonzero(scored)] = behind
    status = np.where(~known, UNKNOWN, np.where(scored, SCORED, NOT_CONSENTED))
    missing = np.full(len(positions), None, dtype=object)

    def texts(columns: list[np.ndarray]) -> pd.array:
        return pd.array(np.where(scored, np.array(_join_columns(columns, len(positions)), dtype=object), missing),
                        dtype="string")

    def masked(values: np.ndarray) -> pd.array:
        return pd.array(np.where(scored, np.round(values, 4), np.nan), dtype="Float64")

    return pd.DataFrame({
        Columns.Participant: pd.array(participant_ids, dtype="string"),
        "status": pd.array(status, dtype="string"),
        "score": masked(score),
        "score_low": masked(score - Z90 * score_sd),
        "score_high": masked(score + Z90 * score_sd),
        "percentile": masked(pct),
        "requirements_met": texts([np.where(met[:, j], names[j], "") for j in range(len(names))]),
        "requirements_missing": texts([np.where(~met[:, j], names[j], "") for j in range(len(names))]),
        "all_requirements_met": pd.array(np.where(scored, met.all(axis=1), pd.NA), dtype="boolean"),
        "achievements": pd.array(np.where(scored, behind_all, missing), dtype="string"),
    })


def _top_achievements(hist: pd.DataFrame, graph: object, positions: np.ndarray, cols: np.ndarray,
                      weights: np.ndarray, top_k: int) -> list[str]:
    """Per scored participant: the events of the achievements that moved the program score most (either way).

    `hist` holds (at least) these participants' rating history rows, each participant's in update order.
    """
    if len(positions) == 0 or hist.empty:
        return ["" for _ in positions]
    wmap = np.zeros(len(graph.competence_index))  # type: ignore[attr-defined]
    wmap[cols] = weights
    h = hist.assign(gain=hist["contribution"].to_numpy() * wmap[hist["competence"].to_numpy(np.int64)])
    h = h[h["gain"] != 0]
    per_row = h.groupby(["participant", "row"], sort=False)["gain"].sum().abs().reset_index()
    per_row = per_row.sort_values(["participant", "gain"], ascending=[True, False], kind="stable")
    per_row = per_row.groupby("participant", sort=False).head(top_k)
    # Only the rows shown are converted: a pass over every achievement would cost more than the request.
    events = graph.achievements[Columns.Event].iloc[per_row["row"].to_numpy(np.int64)]  # type: ignore[attr-defined]
    per_row["event"] = events.astype(str).to_numpy(dtype=object)
    per_row["place"] = per_row.groupby("participant", sort=False).cumcount()
    wide = per_row.pivot(index="participant", columns="place", values="event").reindex(positions)
    return _join_columns([wide[col] for col in wide.columns], len(positions))


def _join_columns(columns: list[pd.Series] | list[np.ndarray], n: int) -> list[str]:
    """Row-wise ';'-join of string columns, skipping missing and empty values."""
    texts = []
    for col in columns:
        values = np.asarray(col, dtype=object)
        texts.append(np.where(pd.isna(values), "", values.astype(str)).tolist())
    if not texts:
        return ["" for _ in range(n)]
    # Plain joins: a few short strings per row cost less than a string array's conversions.
    return [";".join(v for v in row if v) for row in zip(*texts, strict=True)]


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


__all__ = [
    "LEVELS", "NOT_CONSENTED", "SCORED", "Program", "ProgramCohort", "ScoringBasis", "radar_chart", "score_listed",
    "score_program",
]
