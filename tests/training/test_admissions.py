"""Admissions scoring: consent is respected, scores carry intervals and percentiles, the radar chart is drawn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from features.competence.estimator import CompetenceRatings, RatingConfig
from recommender.graph import AchievementsGraph
from recommender.synth.config import SynthConfig
from recommender.synth.generate import generate_world
from training.admissions import (
    NOT_CONSENTED,
    SCORED,
    UNKNOWN,
    HistoryIndex,
    Program,
    ScoringBasis,
    consented,
    radar_chart,
    score_listed,
    score_program,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("world")
    generate_world(SynthConfig(participants=1500, seed=9, seasons=2), out)
    return out


@pytest.fixture(scope="module")
def graph(world: Path) -> AchievementsGraph:
    return AchievementsGraph.from_aif(world / "aif")


@pytest.fixture(scope="module")
def model(graph: AchievementsGraph) -> CompetenceRatings:
    return CompetenceRatings().fit(graph)


def _program(graph: AchievementsGraph) -> Program:
    programs = graph.programs
    regional = programs[programs["min_level"] == "regional"]
    return Program.from_graph(graph, str(regional["program_id"].iloc[0]))


def test_only_consenting_participants_are_scored(graph: AchievementsGraph, model: CompetenceRatings) -> None:
    ids = [*graph.participant_index[:200].tolist(), "nobody"]
    frame = score_program(model, graph, _program(graph), ids)
    assert frame["participant_id"].tolist() == ids  # nobody dropped, order kept
    ok = consented(graph)[:200]
    assert ok.any() and not ok.all()
    assert (frame["status"].iloc[:200] == np.where(ok, SCORED, NOT_CONSENTED)).all()
    assert frame["status"].iloc[-1] == UNKNOWN
    hidden = frame[frame["status"] != SCORED]
    assert hidden[["score", "percentile", "requirements_met", "achievements"]].isna().all().all()


def test_scores_have_intervals_percentiles_and_evidence(graph: AchievementsGraph, model: CompetenceRatings) -> None:
    program = _program(graph)
    frame = score_program(model, graph, program, graph.participant_index.tolist())
    scored = frame[frame["status"] == SCORED]
    assert (scored["score_low"] < scored["score"]).all() and (scored["score"] < scored["score_high"]).all()
    assert scored["percentile"].between(0, 100).all()
    # Those who met a requirement have the achievements to show for it.
    met = scored[scored["requirements_met"].fillna("").str.len() > 0]
    assert len(met) > 0
    assert (met["achievements"].str.len() > 0).all()
    required = {c for c, _ in program.requirements}
    for text in scored["requirements_met"].dropna():
        assert set(filter(None, text.split(";"))) <= required
    # A better score never has a lower percentile.
    s = scored.sort_values(["score", "percentile"])
    assert (np.diff(s["percentile"].to_numpy(dtype=float)) >= 0).all()


def test_evidence_raises_the_score(graph: AchievementsGraph, model: CompetenceRatings) -> None:
    """Winners of events mostly about the program's main competence outscore newcomers (known answer)."""
    program = _program(graph)
    frame = score_program(model, graph, program, graph.participant_index.tolist())
    scored = frame[frame["status"] == SCORED].set_index("participant_id")
    top = max(program.requirements, key=lambda r: r[1])[0]
    ec = graph.event_competence().toarray()
    share = ec[:, graph.competence_index.get_loc(top)] / np.maximum(ec.sum(axis=1), 1e-9)
    a = graph.achievements
    won = a[(a["result"] == "winner") & (share[a["event_idx"].to_numpy()] >= 0.5)]
    strong = sorted(set(won["participant_id"].astype(str)) & set(scored.index))
    newcomers = sorted(set(scored.index) - set(a["participant_id"].astype(str)))
    assert strong and newcomers
    assert scored.loc[strong, "score"].median() > scored.loc[newcomers, "score"].median()


def _asked(graph: AchievementsGraph, n: int, seed: int = 3) -> list[str]:
    rng = np.random.default_rng(seed)
    ids = rng.choice(graph.participant_index.to_numpy().astype(str), size=n, replace=False).tolist()
    return [*ids, "nobody", ids[0]]  # an unknown id and a repeated one


def test_listed_scores_equal_the_reference_for_every_program(graph: AchievementsGraph,
                                                             model: CompetenceRatings) -> None:
    """The service's path (cohort kept on the basis, only listed rows read) gives score_program's frame, exactly."""
    basis = ScoringBasis.build(model, graph)
    asked = _asked(graph, 300)
    programs = graph.programs["program_id"].astype(str).tolist()
    assert len(programs) >= 4
    for program_id in programs:
        program = Program.from_graph(graph, program_id)
        want = score_program(model, graph, program, asked)
        assert (want["status"] == SCORED).sum() > 50 and want["percentile"].nunique() > 20
        for _ in range(2):  # the first call builds the program's cohort, the second reads it
            pd.testing.assert_frame_equal(score_listed(model, graph, program, asked, basis), want, check_exact=True)
        # A request's answer does not depend on what else it asks for.
        alone = score_listed(model, graph, program, asked[5:6], basis)
        pd.testing.assert_frame_equal(alone, want.iloc[5:6].reset_index(drop=True), check_exact=True)
    assert len(basis._cohorts) == len({Program.from_graph(graph, p).requirements for p in programs})
    program = Program.from_graph(graph, programs[0])
    assert basis.cohort(graph, program) is basis.cohort(graph, program)


def test_a_new_basis_scores_from_its_own_model(graph: AchievementsGraph, model: CompetenceRatings) -> None:
    """Cohorts live on the basis: the basis of another model (or graph) never answers with a stale cohort."""
    program = Program.from_graph(graph, str(graph.programs["program_id"].iloc[0]))
    asked = _asked(graph, 200)
    first = score_listed(model, graph, program, asked, ScoringBasis.build(model, graph))
    other = CompetenceRatings(RatingConfig(perf_sd=2 * RatingConfig().perf_sd)).fit(graph)
    second = score_listed(other, graph, program, asked, ScoringBasis.build(other, graph))
    pd.testing.assert_frame_equal(second, score_program(other, graph, program, asked), check_exact=True)
    assert not first["score"].equals(second["score"])
    one = np.zeros((1, 1))
    foreign = ScoringBasis(None, one, one, one, one.astype(np.int8), np.zeros(1, dtype=bool))  # a one-person graph's
    with pytest.raises(ValueError, match="another graph"):
        score_listed(model, graph, program, asked, foreign)


def test_history_index_reads_only_the_asked_participants(model: CompetenceRatings) -> None:
    hist = model.history_
    index = HistoryIndex.build(hist, len(model.participants_))
    asked = np.array([7, 3, 7, 120, 0])
    got = index.rows(asked)
    owners = hist["participant"].to_numpy()
    want = pd.concat([hist[owners == p] for p in sorted(set(asked.tolist()))])
    assert len(want) > 0
    pd.testing.assert_frame_equal(got, want)
    assert index.rows(np.array([], dtype=np.int64)).empty


def test_radar_chart_png_and_svg(graph: AchievementsGraph, model: CompetenceRatings, tmp_path: Path) -> None:
    pid = str(graph.participant_index[np.flatnonzero(consented(graph))[0]])
    paths = radar_chart(model, graph, _program(graph), pid, tmp_path / "radar")
    assert [p.suffix for p in paths] == [".png", ".svg"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in paths[1].read_text(encoding="utf-8")


def test_score_command(world: Path, graph: AchievementsGraph, tmp_path: Path) -> None:
    from recommender.cli import cli

    ids = tmp_path / "ids.csv"
    pd.DataFrame({"participant_id": graph.participant_index[:50]}).to_csv(ids, index=False)
    out = tmp_path / "scores.csv"
    program = str(graph.programs["program_id"].iloc[0])
    result = CliRunner().invoke(cli, ["admissions", "score", "--program", program, "--participants", str(ids),
                                      "--out", str(out), "--data", str(world / "aif")])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out)
    assert len(frame) == 50
    assert set(frame["status"]) <= {SCORED, NOT_CONSENTED}
    bad = CliRunner().invoke(cli, ["admissions", "score", "--program", "nope", "--participants", str(ids),
                                   "--out", str(out), "--data", str(world / "aif")])
    assert bad.exit_code != 0


def test_fit_is_logged_to_mlflow(graph: AchievementsGraph, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    from training.profiles import MODEL_ARTIFACT, fit_competence_model, load_model

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    _, summary = fit_competence_model(graph, data_label="test-world", experiment="competence-test")
    run = mlflow.get_run(summary["run_id"])
    assert run.data.params["competence.perf_sd"] == str(RatingConfig().perf_sd)
    assert run.data.metrics["rated_participants"] > 0
    local = mlflow.artifacts.download_artifacts(run_id=summary["run_id"], artifact_path=MODEL_ARTIFACT,
                                                dst_path=str(tmp_path / "art"))
    restored = load_model(Path(local) / "model.pkl")
    assert restored.state_.mu.shape[0] == graph.n_participants
    logged = " ".join(f"{k}={v}" for k, v in run.data.params.items())
    assert "@" not in logged and "last_name" not in logged
