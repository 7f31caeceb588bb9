"""Team formation (sizes, groups, balance, the model-driven search), the team-success model and teammate ranking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from features.mentor_features import event_competences
from features.team_features import (
    TEAM_FEATURES,
    padded_members,
    padded_team_features,
    school_codes,
    team_feature_frame,
    tie_keys,
)
from recommender.cli import cli
from recommender.columns import Columns
from recommender.graph import AchievementsGraph
from recommender.synth.config import SynthConfig
from recommender.synth.generate import generate_world
from recommender.synth.truth import load_truth
from training.teams import (
    CONFIDENT_SEARCH,
    TeamConfig,
    TeammateConfig,
    TeamSuccessModel,
    event_registrants,
    fit_team_success,
    form_event_teams,
    form_teams,
    formation_method,
    grade_slope,
    historical_teams,
    improve_teams,
    participant_skills,
    random_teams,
    rank_teammates,
    seed_teams,
    strongest_first_teams,
    team_history,
    team_sizes,
    teamwork_column,
    without_team_results,
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("teams_world")
    generate_world(SynthConfig(participants=1500, seed=12), out)
    return out


@pytest.fixture(scope="module")
def graph(world: Path) -> AchievementsGraph:
    return AchievementsGraph.from_aif(world / "aif")


@pytest.fixture(scope="module")
def skills(graph: AchievementsGraph) -> np.ndarray:
    return participant_skills(graph)


@pytest.fixture(scope="module")
def model(graph: AchievementsGraph) -> TeamSuccessModel:
    fitted = fit_team_success(graph)
    assert fitted is not None
    return fitted


@pytest.mark.parametrize("n", [1, 2, 3, 7, 10, 23, 101])
@pytest.mark.parametrize(("lo", "hi"), [(2, 4), (3, 5), (1, 1), (4, 6)])
def test_team_sizes_within_limits(n: int, lo: int, hi: int) -> None:
    sizes = team_sizes(n, lo, hi)
    assert sizes.sum() == n
    assert sizes.max() <= hi
    if any(t * lo <= n <= t * hi for t in range(1, n + 1)):
        assert sizes.min() >= lo


def test_specialists_are_spread_one_per_team() -> None:
    # Four competences, four specialists of each: every team should get one of each kind.
    kinds = np.repeat(np.arange(4), 4)
    skills = np.eye(4)[kinds] * 2.0 + 0.01 * np.arange(16)[:, None] / 16
    need = np.full(4, 0.25)
    labels = seed_teams(skills, need, 4, 4)
    for t in range(4):
        assert sorted(kinds[labels == t].tolist()) == [0, 1, 2, 3]
    # The strongest-first baseline stacks them instead.
    greedy = strongest_first_teams(skills, need, 4, 4)
    assert any(len(set(kinds[greedy == t])) < 4 for t in range(4))


def test_draft_spreads_the_strong_one_per_team() -> None:
    # One competence: the four strongest must land in four different teams, the weakest with the strongest.
    skills = np.arange(16, dtype=np.float64)[::-1, None]
    labels = seed_teams(skills, np.ones(1), 4, 4)
    assert len(set(labels[:4])) == 4
    totals = np.bincount(labels, weights=skills[:, 0])
    assert totals.max() - totals.min() <= 4  # a snake draft: sums within one round's spread


def test_groups_stay_together_and_sizes_hold() -> None:
    rng = np.random.default_rng(0)
    skills = rng.normal(size=(23, 5))
    groups = np.array([None] * 23, dtype=object)
    groups[[0, 5, 9]] = "a"
    groups[[3, 4]] = "b"
    labels = seed_teams(skills, np.full(5, 0.2), 2, 4, groups=groups)
    assert len(set(labels[[0, 5, 9]])) == 1
    assert len(set(labels[[3, 4]])) == 1
    sizes = np.bincount(labels)
    assert sizes.min() >= 2 and sizes.max() <= 4


def test_padded_features_match_the_team_frame() -> None:
    rng = np.random.default_rng(3)
    skills = rng.normal(size=(30, 6))
    labels = rng.permutation(np.repeat(np.arange(8), [4, 4, 4, 4, 4, 4, 3, 3]))
    need = np.array([0.5, 0.3, 0.2, 0.0, 0.0, 0.0])
    school = rng.integers(-1, 4, 30)
    ties = {(0, 1), (2, 7), (5, 29)}
    frame = team_feature_frame(skills, labels, np.repeat(need[None, :], 8, axis=0), teamwork_col=4, school=school,
                               tie_pairs=ties, member_ids=np.arange(30))
    padded = padded_team_features(skills, padded_members(labels), need, teamwork_col=4, school=school,
                                  ids=np.arange(30), tie_keys=tie_keys(ties))
    np.testing.assert_allclose(padded, frame[list(TEAM_FEATURES)].to_numpy(), rtol=1e-12, atol=1e-12)
    t = int(labels[0])
    members = np.flatnonzero(labels == t)
    assert frame.loc[t, "coverage"] == pytest.approx((skills[members].max(axis=0) * need).sum())
    assert frame.loc[t, "complementarity"] == pytest.approx(frame.loc[t, "coverage"] - frame.loc[t, "mean_fit"])
    with pytest.raises(ValueError, match="at least one member"):
        team_feature_frame(skills[:2], np.array([0, 0]), np.repeat(need[None, :], 2, axis=0), teamwork_col=None)


def test_search_follows_the_model_and_keeps_sizes_and_groups() -> None:
    # A model that learned only that schoolmates do well: the search must regroup a school-mixed draft.
    rng = np.random.default_rng(1)
    history = pd.DataFrame(rng.random((400, len(TEAM_FEATURES))), columns=list(TEAM_FEATURES))
    score = 2.0 * history["same_school"].to_numpy() + rng.normal(0.0, 0.05, 400)
    model = TeamSuccessModel(TeamConfig(min_child_samples=5, num_leaves=8, monotone=False)).fit(history, score)
    school = np.repeat(np.arange(4), 4)
    skills = np.zeros((16, 2))
    labels = np.tile(np.arange(4), 4)  # one pupil of each school per team
    groups = np.array([None] * 16, dtype=object)
    groups[[0, 4]] = "pair"  # asked to be together (both in team 0): must stay
    cfg = TeamConfig(search_rounds=300, search_seconds=10.0, search_candidates=4)
    after = improve_teams(labels, skills, np.ones(2), model, groups=groups, school=school, config=cfg)
    assert np.bincount(after).tolist() == np.bincount(labels).tolist()
    assert after[0] == after[4]

    def same_school_share(lab: np.ndarray) -> float:
        return float(np.mean([len(set(school[lab == t])) == 1 for t in range(4)]))

    before_pred = model.strength(padded_team_features(skills, padded_members(labels), np.ones(2),
                                                      teamwork_col=None, school=school)).sum()
    after_pred = model.strength(padded_team_features(skills, padded_members(after), np.ones(2),
                                                     teamwork_col=None, school=school)).sum()
    assert after_pred > before_pred + 1.0
    assert same_school_share(after) >= 0.5 > same_school_share(labels)


def test_ensemble_search_takes_only_swaps_every_resampled_model_backs() -> None:
    # History with a real schoolmate effect plus noise features: the confident search still regroups schools,
    # never lowers any model's predicted total below the draft, and keeps sizes and groups.
    rng = np.random.default_rng(3)
    n_hist = 1200
    history = pd.DataFrame(rng.random((n_hist, len(TEAM_FEATURES))), columns=list(TEAM_FEATURES))
    history["event_idx"] = np.repeat(np.arange(n_hist // 6), 6)
    signal = 2.0 * history["same_school"].to_numpy() + rng.normal(0.0, 0.3, n_hist)
    cfg = TeamConfig(min_child_samples=10, num_leaves=4, monotone=False, ensemble=5, search_rounds=300,
                     search_seconds=10.0)
    model = TeamSuccessModel(cfg).fit(history, signal)
    school = np.repeat(np.arange(6), 4)
    skills = rng.random((24, 2))
    labels = np.tile(np.arange(6), 4)
    groups = np.array([None] * 24, dtype=object)
    groups[[0, 6]] = "pair"
    after = improve_teams(labels, skills, np.ones(2), model, groups=groups, school=school, config=cfg)
    assert np.bincount(after).tolist() == np.bincount(labels).tolist() and after[0] == after[6]

    def totals(lab: np.ndarray) -> np.ndarray:
        x = padded_team_features(skills, padded_members(lab), np.ones(2), teamwork_col=None, school=school)
        x[:, TEAM_FEATURES.index("mean_fit")] = float(skills.sum(axis=1).mean())
        return model.strength_draws(x).sum(axis=1)

    assert len(totals(labels)) == 5
    assert (totals(after) >= totals(labels) - 1e-9).all() and totals(after).min() > totals(labels).max()

    # Pure-noise history: models fitted on resampled events disagree, so the confident search moves far fewer
    # people than the same search trusting the one model.
    noise = rng.normal(0.0, 1.0, n_hist)
    single = TeamSuccessModel(cfg.model_copy(update={"ensemble": 1})).fit(history, noise)
    many = TeamSuccessModel(cfg).fit(history, noise)
    moved_single = (improve_teams(labels, skills, np.ones(2), single, school=school, config=single.config)
                    != labels).sum()
    moved_many = (improve_teams(labels, skills, np.ones(2), many, school=school, config=cfg) != labels).sum()
    assert moved_many < moved_single
    # Their mean backs more swaps than their consensus does.
    moved_mean = (improve_teams(labels, skills, np.ones(2), many, school=school,
                                config=cfg.model_copy(update={"consensus": "mean"})) != labels).sum()
    assert moved_mean > moved_many


def test_confident_search_on_a_world_keeps_limits_groups_and_never_predicts_below_the_draft(
        graph: AchievementsGraph, skills: np.ndarray) -> None:
    model = fit_team_success(graph, CONFIDENT_SEARCH)
    assert model is not None and len(model.strength_draws(np.zeros((1, len(TEAM_FEATURES))))) == 5
    ev = graph.events[graph.events["team_max"].notna()].iloc[0]
    need = event_competences(graph)[graph.event_index.get_loc(ev[Columns.Event])]
    lo, hi = int(ev["team_min"]), int(ev["team_max"])
    pos = np.random.default_rng(4).choice(graph.n_participants, 300, replace=False)
    groups = np.array([None] * len(pos), dtype=object)
    groups[:lo] = "asked"
    tw, school = teamwork_column(graph), school_codes(graph)[pos]
    cfg = CONFIDENT_SEARCH.model_copy(update={"search_seconds": 10.0, "search_rounds": 50})
    draft = seed_teams(skills[pos], need, lo, hi, groups=groups, teamwork_col=tw)
    formed = form_teams(skills[pos], need, lo, hi, groups=groups, teamwork_col=tw, model=model, school=school,
                        ids=pos, config=cfg)
    sizes = np.bincount(formed)
    assert sizes.min() >= lo and sizes.max() <= hi and len(set(formed[:lo])) == 1

    def totals(lab: np.ndarray) -> np.ndarray:  # what the search scores: every team at the pool's mean fit
        x = padded_team_features(skills[pos], padded_members(lab), need, teamwork_col=tw, school=school, ids=pos)
        level = float((skills[pos] @ need).mean())
        x[:, TEAM_FEATURES.index("mean_fit")] = level
        x[:, TEAM_FEATURES.index("complementarity")] = x[:, TEAM_FEATURES.index("coverage")] - level
        return model.strength_draws(x).sum(axis=1)

    assert (totals(formed) >= totals(draft) - 1e-9).all()
    # Kept from lowering coverage: every taken swap keeps the pair's estimated coverage, so the total holds too.
    guarded = form_teams(skills[pos], need, lo, hi, groups=groups, teamwork_col=tw, model=model, school=school,
                         ids=pos, config=cfg.model_copy(update={"keep_coverage": True}))
    assert (np.bincount(guarded) == sizes).all() and len(set(guarded[:lo])) == 1

    def coverage(lab: np.ndarray) -> float:
        x = padded_team_features(skills[pos], padded_members(lab), need, teamwork_col=tw)
        return float(x[:, TEAM_FEATURES.index("coverage")].sum())

    assert coverage(guarded) >= coverage(draft) - 1e-9 and (totals(guarded) >= totals(draft) - 1e-9).all()
    assert (guarded != draft).any()


def test_event_formation_with_the_confident_model_keeps_limits_and_groups_and_says_which_method_ran(
        graph: AchievementsGraph, skills: np.ndarray) -> None:
    model = fit_team_success(graph, CONFIDENT_SEARCH)
    assert model is not None
    ev = graph.events[graph.events["team_max"].notna()].iloc[0]
    event, lo, hi = str(ev[Columns.Event]), int(ev["team_min"]), int(ev["team_max"])
    ids = graph.participants[Columns.Participant].astype(str).iloc[:200].tolist()
    groups: list[str | None] = [None] * len(ids)
    groups[10:10 + hi] = ["asked"] * hi  # a group as large as a team may be
    groups[50:52] = ["pair"] * 2
    cfg = CONFIDENT_SEARCH.model_copy(update={"search_seconds": 10.0, "search_rounds": 30})
    done = form_event_teams(graph, event, ids, groups=groups, skills=skills, model=model, config=cfg)
    assert done.method == "confident_search"
    team = done.teams.set_index(Columns.Participant)[Columns.Team]
    sizes = done.teams[Columns.Team].value_counts()
    assert sizes.min() >= lo and sizes.max() <= hi and sizes.sum() == len(ids)
    assert team.iloc[10:10 + hi].nunique() == 1 and team.iloc[50:52].nunique() == 1
    assert len(done.predicted_success) == len(sizes)
    # The draft alone, and what each model and config runs.
    assert form_event_teams(graph, event, ids, groups=groups, skills=skills).method == "draft"
    assert formation_method(model, cfg.model_copy(update={"search_rounds": 0})) == "draft"
    assert formation_method(model, cfg.model_copy(update={"consensus": "mean"})) == "mean_search"
    assert formation_method(fit_team_success(graph), cfg) == "model_search"
    assert formation_method(None, cfg) == "draft"


def test_formation_beats_baselines_by_true_success(world: Path, graph: AchievementsGraph) -> None:
    truth = load_truth(world)
    as_of = pd.Timestamp("2024-09-01")
    past = graph.as_of(as_of)
    skills = participant_skills(past)
    model = fit_team_success(past)
    assert model is not None
    rng = np.random.default_rng(0)
    ids_all = graph.participants[Columns.Participant].astype(str).to_numpy()
    over_random, over_greedy, search_change = [], [], []
    for _, ev in graph.events[graph.events["team_max"].notna()].head(4).iterrows():
        e = graph.event_index.get_loc(ev[Columns.Event])
        need = np.asarray(graph.event_competence()[e].toarray()).ravel()
        need = need / need.sum()
        pos = np.sort(rng.choice(graph.n_participants, graph.n_participants // 2, replace=False))
        ids = ids_all[pos]
        lo, hi = int(ev["team_min"]), int(ev["team_max"])

        def success(labels: np.ndarray, event: str = ev[Columns.Event], ids: np.ndarray = ids) -> float:
            teams = [list(ids[labels == t]) for t in range(int(labels.max()) + 1)]
            return float(truth.team_success(teams, event, as_of.date()).mean())

        draft = seed_teams(skills[pos], need, lo, hi, teamwork_col=teamwork_column(graph))
        formed = success(form_teams(skills[pos], need, lo, hi, teamwork_col=teamwork_column(graph), model=model,
                                    config=TeamConfig(search_rounds=20)))
        search_change.append(formed - success(draft))
        over_greedy.append(formed - success(strongest_first_teams(skills[pos], need, lo, hi)))
        over_random.append(formed - np.mean([success(random_teams(len(pos), lo, hi, seed)) for seed in range(3)]))
    assert min(over_greedy) > 0
    assert np.mean(over_random) > 0
    # The search may not undo the draft (a model with no real signal must not wreck a formation).
    assert np.mean(search_change) > -0.01


def test_grade_prior_is_learned_from_individual_results(graph: AchievementsGraph) -> None:
    from features.competence.estimator import CompetenceRatings, RatingConfig

    a = graph.achievements
    ranked = np.flatnonzero(((a["team_idx"] < 0) & a[Columns.Rank].notna()).to_numpy())
    ratings = CompetenceRatings(RatingConfig(covariates=False))
    before = ratings.replay(graph, ranked)
    slope = grade_slope(graph, before, ratings.config.prior_sd**2)
    # The generator adds 0.12 per grade and yearly growth: older pupils are stronger.
    assert 0.03 < slope < 0.5
    # A rating whose newcomer means regress on grade (the default) leaves less of it to learn.
    learned = CompetenceRatings()
    assert grade_slope(graph, learned.replay(graph, ranked), learned.config.prior_sd**2) < slope
    plain = participant_skills(graph, 0.0)
    grade = graph.grades_at(graph.latest_date)
    newcomers = np.bincount(a["participant_idx"], minlength=graph.n_participants) == 0
    if newcomers.sum() > 10:
        assert np.corrcoef(plain[newcomers].mean(axis=1), grade[newcomers])[0, 1] > 0.9
    alone = without_team_results(graph)
    assert (alone.achievements["team_idx"] < 0).all() and alone.n_participants == graph.n_participants


def test_team_history_and_model(graph: AchievementsGraph, skills: np.ndarray, model: TeamSuccessModel) -> None:
    history = team_history(graph, skills)
    assert len(history.score) == len(history.features) > 50
    # Normal scores of mid-ranks: centred within each event.
    centred = pd.Series(history.score).groupby(history.event).mean()
    assert np.abs(centred.to_numpy()).max() < 1e-9
    assert ((history.features["former_teammates"] >= 0) & (history.features["former_teammates"] <= 1)).all()
    first_day = graph.achievements[graph.achievements["team_idx"] >= 0][Columns.Date].min()
    first_teams = graph.achievements[graph.achievements[Columns.Date] == first_day]["team_idx"]
    earliest = np.isin(history.team, first_teams[first_teams >= 0].to_numpy())
    assert (history.features["former_teammates"].to_numpy()[earliest] == 0).all()
    feats, target = historical_teams(graph, skills)
    assert "event_idx" in feats.columns
    a = TeamSuccessModel().fit(feats, target).strength(feats)
    np.testing.assert_array_equal(a, TeamSuccessModel().fit(feats, target).strength(feats))  # deterministic
    # Teams the model rates stronger did better than the others at their event.
    within = pd.DataFrame({"s": a, "y": target, "e": feats["event_idx"]})
    within = within - within.groupby("e").transform("mean").assign(e=0)
    assert np.corrcoef(within["s"], within["y"])[0, 1] > 0.2
    p = TeamSuccessModel().fit(feats, target).predict(feats)
    assert ((p > 0) & (p < 1)).all()


def test_form_event_teams_and_cli(world: Path, graph: AchievementsGraph, skills: np.ndarray,
                                  model: TeamSuccessModel, tmp_path: Path) -> None:
    team_events = graph.events[graph.events["team_max"].notna()]
    event = next(e for e in team_events[Columns.Event] if len(event_registrants(graph, e)) >= 4)
    result = form_event_teams(graph, event, skills=skills)
    assert set(result.teams[Columns.Participant]) == set(event_registrants(graph, event))
    searched = form_event_teams(graph, event, skills=skills, model=model, config=TeamConfig(search_rounds=10))
    assert set(searched.teams[Columns.Participant]) == set(event_registrants(graph, event))
    assert len(searched.predicted_success) == searched.teams[Columns.Team].nunique()
    assert result.method == "draft" and searched.method == "model_search"
    assert ((searched.predicted_success > 0) & (searched.predicted_success < 1)).all()
    reg = tmp_path / "reg.csv"
    pids = graph.participants[Columns.Participant].astype(str).iloc[:12].tolist()
    pd.DataFrame({"participant_id": pids, "group": ["g1", "g1", "g1"] + [""] * 9}).to_csv(reg, index=False)
    out = tmp_path / "teams.csv"
    res = CliRunner().invoke(cli, ["teams", "form", "--data", str(world / "aif"), "--event", str(event),
                                   "--registrants", str(reg), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert '"team_success_model": false' in res.output and '"method": "draft"' in res.output
    drafted = pd.read_csv(out, dtype=str)
    # --search: the team-success model with its resampled refits, the confident search.
    res = CliRunner().invoke(cli, ["teams", "form", "--data", str(world / "aif"), "--event", str(event),
                                   "--registrants", str(reg), "--out", str(out), "--search", "--search-seconds", "1"])
    assert res.exit_code == 0, res.output
    assert '"team_success_model": true' in res.output and '"mean_predicted_percentile": 0.' in res.output
    assert '"method": "confident_search"' in res.output
    frame = pd.read_csv(out, dtype=str)
    assert sorted(frame["participant_id"]) == sorted(drafted["participant_id"])
    assert list(frame.columns) == ["participant_id", "team_id"]
    assert frame["participant_id"].tolist() == pids
    assert frame["team_id"].iloc[:3].nunique() == 1
    lo, hi = int(team_events.set_index(Columns.Event).loc[event, "team_min"]), int(
        team_events.set_index(Columns.Event).loc[event, "team_max"])
    sizes = frame["team_id"].value_counts()
    assert sizes.min() >= lo and sizes.max() <= hi


def test_rank_teammates_with_reasons_and_weights(graph: AchievementsGraph, skills: np.ndarray) -> None:
    a = graph.achievements
    row = a[a["team_idx"] >= 0].iloc[0]
    pool = list(dict.fromkeys(a.loc[a[Columns.Event] == row[Columns.Event], Columns.Participant].astype(str)))
    ranked = rank_teammates(graph, row[Columns.Participant], row[Columns.Event], skills, candidates=pool, k=5)
    assert 0 < len(ranked) <= 5
    assert row[Columns.Participant] not in set(ranked[Columns.Participant])
    assert ranked["score"].is_monotonic_decreasing
    assert all(isinstance(r, list) for r in ranked["reasons"])
    # With only the school weighted, schoolmates come first.
    school = graph.participants[Columns.Organization].astype(str).to_numpy()
    me = int(graph.participant_positions([row[Columns.Participant]])[0])
    mates = [c for c in pool if c != row[Columns.Participant]
             and school[int(graph.participant_positions([c])[0])] == school[me]]
    only_school = TeammateConfig(complement=0, same_school=1, former_teammates=0, reach=0, attendance=0, level_gap=0)
    top = rank_teammates(graph, row[Columns.Participant], row[Columns.Event], skills, candidates=pool,
                         k=max(len(mates), 1), config=only_school)
    if mates:
        assert set(top[Columns.Participant]) == set(mates)
        assert all("from your school" in r for r in top["reasons"])


def test_a_model_pickled_before_strengths_still_predicts() -> None:
    import lightgbm as lgb

    old_features = [f for f in TEAM_FEATURES if f != "complementarity"]
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(rng.random((200, len(TEAM_FEATURES))), columns=list(TEAM_FEATURES))
    target = frame["mean_fit"].to_numpy()
    old = TeamSuccessModel()
    old.model_ = lgb.LGBMRegressor(n_estimators=20, verbose=-1, n_jobs=1).fit(frame[old_features], target)  # type: ignore[attr-defined]
    predicted = old.predict(frame)
    assert ((predicted >= 0) & (predicted <= 1)).all()
    assert np.corrcoef(predicted, target)[0, 1] > 0.9


def test_team_model_is_logged_and_registered(graph: AchievementsGraph, skills: np.ndarray, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    from training.teams import log_team_model
    from training.tracking import configure

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    configure()
    feats, target = historical_teams(graph, skills)
    model = TeamSuccessModel().fit(feats, target)
    with mlflow.start_run():
        version = log_team_model(model, {"history_teams": len(target)})
    assert version == "1"
    loaded = mlflow.pyfunc.load_model("models:/team-success/1")
    np.testing.assert_allclose(np.asarray(loaded.predict(feats.head(5))), model.predict(feats.head(5)))
