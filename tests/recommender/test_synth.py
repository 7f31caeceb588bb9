"""The synthetic world: determinism, a clean AIF load, and the statistics the generator promises."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from recommender import reference
from recommender.columns import EVENT_FORMATS, LEVELS, RESULT_RANK, RESULTS_ALL, ROLES, SETTLEMENT_TYPES
from recommender.schema import TABLES_BY_NAME, Kind
from recommender.synth.config import SynthConfig
from recommender.synth.dates import to_date
from recommender.synth.generate import generate_world
from recommender.synth.oracle import choice_probabilities, true_next_choices
from recommender.synth.truth import Truth, load_truth, true_skills

CONFIG = SynthConfig(participants=3000, seed=7, events_per_season=300)
QUALIFYING = ("finalist", "prize_winner", "winner")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("world")
    generate_world(CONFIG, out)
    return out


@pytest.fixture(scope="module")
def truth(world: Path) -> Truth:
    return load_truth(world)


def _read(world: Path, table: str) -> pd.DataFrame:
    return pd.read_csv(world / "aif" / f"{table}.csv", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def achievements(world: Path) -> pd.DataFrame:
    return _read(world, "achievements")


@pytest.fixture(scope="module")
def events(world: Path) -> pd.DataFrame:
    return _read(world, "events")


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_world(world: Path, tmp_path: Path) -> None:
    generate_world(CONFIG, tmp_path / "again")
    first, second = _files(world), _files(tmp_path / "again")
    assert first.keys() == second.keys()
    assert [name for name in first if first[name] != second[name]] == []


def test_other_seed_gives_other_world(world: Path, tmp_path: Path) -> None:
    generate_world(CONFIG.model_copy(update={"seed": 8}), tmp_path / "other")
    assert (tmp_path / "other/aif/achievements.csv").read_bytes() != (world / "aif/achievements.csv").read_bytes()


def test_config_rejects_unknown_fields() -> None:
    with pytest.raises(ValueError):
        SynthConfig(participants=100, colour="red")  # type: ignore[call-arg]


def test_every_column_is_valid_per_schema(world: Path) -> None:
    manifest = json.loads((world / "aif/manifest.json").read_text(encoding="utf-8"))
    assert manifest["exported_at"].startswith(CONFIG.end_date.isoformat())
    regions = reference.region_codes()
    competences = reference.competence_ids()
    tables = {name: _read(world, name) for name in TABLES_BY_NAME}
    for name, frame in tables.items():
        spec = TABLES_BY_NAME[name]
        extra = {"registration_opens"} if name == "events" else set()
        assert set(frame.columns) <= set(spec.names) | extra, name
        assert set(spec.required) <= set(frame.columns), name
        for column in set(frame.columns) - extra:
            f = spec.field(column)
            values = frame[column][frame[column] != ""]
            if f.required:
                assert len(values) == len(frame), (name, column)
            if f.kind is Kind.ENUM:
                assert set(values) <= set(f.values), (name, column)
            elif f.kind is Kind.REGION:
                assert set(values) <= regions, (name, column)
            elif f.kind is Kind.WEIGHTED:
                ids = {item.split(":")[0] for text in values for item in text.split(";")}
                assert ids <= competences, (name, column)
            elif f.kind is Kind.DATE:
                pd.to_datetime(values, format="%Y-%m-%d")
            elif f.kind is Kind.INT:
                ints = values.astype(int)
                assert f.min_value is None or (ints >= f.min_value).all(), (name, column)
            if f.ref is not None and f.kind is Kind.ID:
                key = TABLES_BY_NAME[f.ref].key[0]
                assert set(values) <= set(tables[f.ref][key]), (name, column)
        key = list(spec.key) if name != "achievements" else ["achievement_id"]
        assert not frame.duplicated(key).any(), name


def test_reader_quarantines_nothing(world: Path) -> None:
    reader = pytest.importorskip("recommender.aif.reader")
    dataset = reader.read_dataset(world / "aif")
    assert len(dataset.quarantine) == 0
    assert len(dataset.tables["achievements"]) == len(pd.read_csv(world / "aif/achievements.csv"))


def test_participants_look_real_and_consistent(world: Path) -> None:
    people = _read(world, "participants")
    grade = people["grade"].astype(int)
    birth_year = pd.to_datetime(people["birth_date"]).dt.year
    export_year = CONFIG.end_date.year - 1  # the academic year running on the export date
    assert (grade == export_year - birth_year - 6).all()
    assert grade.between(5, 11).mean() > 0.75 and grade.max() <= 13
    assert people["email"].str.match(r"^[a-z.]+\d+@example\.(ru|com|org)$").all()
    female = people["gender"] == "female"
    assert people.loc[female, "middle_name"].str.endswith("вна").all()
    assert people.loc[~female, "middle_name"].str.endswith("вич").all()
    assert 0.8 < (people["consent_research"] == "true").mean() < 0.9


def test_urban_rural_split(world: Path, truth: Truth, achievements: pd.DataFrame, events: pd.DataFrame) -> None:
    people = _read(world, "participants")
    share = people["settlement_type"].value_counts(normalize=True)
    assert set(share.index) == set(SETTLEMENT_TYPES)
    assert 0.05 < share["rural"] < 0.4 and share["city"] > 0.4
    # Offline events are harder to reach from villages: rural participants go online more often.
    online = events.set_index("event_id")["online"] == "true"
    joined = achievements.merge(people[["participant_id", "settlement_type"]], on="participant_id")
    online_share = joined["event_id"].map(online).groupby(joined["settlement_type"]).mean()
    assert online_share["rural"] > online_share["city"]


def test_activity_has_a_long_tail(world: Path, achievements: pd.DataFrame) -> None:
    counts = achievements.groupby("participant_id").size().reindex(_read(world, "participants")["participant_id"])
    counts = counts.fillna(0).sort_values(ascending=False).to_numpy()
    top_decile = counts[: len(counts) // 10].sum() / counts.sum()
    assert top_decile > 0.35
    assert np.median(counts) <= 3
    assert counts.max() >= 20


def test_catalog_recurs_every_season_with_stages(events: pd.DataFrame) -> None:
    seasons = events.groupby("series_id")["start_date"].apply(
        lambda s: pd.to_datetime(s).map(lambda d: d.year if d.month >= 9 else d.year - 1).nunique()
    )
    assert (seasons == CONFIG.seasons).all()
    assert set(events["format"]) == set(EVENT_FORMATS)
    assert set(events["level"]) == set(LEVELS)
    staged = events[events["parent_event_id"] != ""]
    parents = events.set_index("event_id").loc[staged["parent_event_id"]]
    assert (parents["series_id"].to_numpy() == staged["series_id"].to_numpy()).all()
    # A next stage opens only after the previous one is over.
    assert (pd.to_datetime(staged["start_date"]).to_numpy() > pd.to_datetime(parents["end_date"]).to_numpy()).all()
    team = events["team_min"] != ""
    assert set(events.loc[team, "format"]) == {"hackathon", "project_school", "accelerator"}
    assert (events.loc[events["online"] == "true", "region_code"] == "").all()
    opens, deadline = pd.to_datetime(events["registration_opens"]), pd.to_datetime(events["registration_deadline"])
    assert (opens < deadline).all() and (deadline < pd.to_datetime(events["start_date"])).all()


def test_only_qualified_participants_take_next_stages(achievements: pd.DataFrame, events: pd.DataFrame) -> None:
    parent_of = events.set_index("event_id")["parent_event_id"]
    staged = achievements[achievements["event_id"].map(parent_of) != ""]
    assert len(staged) > 20
    result_at = achievements.set_index(["participant_id", "event_id"])["result"]
    keys = list(zip(staged["participant_id"], staged["event_id"].map(parent_of), strict=True))
    parent_results = result_at.reindex(pd.MultiIndex.from_tuples(keys))
    assert parent_results.isin(QUALIFYING).all()


def test_results_rank_and_ladder(achievements: pd.DataFrame) -> None:
    assert set(achievements["result"]) <= set(RESULTS_ALL)
    assert set(achievements["role"]) <= set(ROLES)
    ranked = achievements[achievements["rank"] != ""].copy()
    ranked["rank"] = ranked["rank"].astype(int)
    # Ranks start at 1 in every event; tied scores share the best rank.
    assert (ranked.groupby("event_id")["rank"].min() == 1).all()
    scored = ranked[ranked["score"] != ""].copy()
    scored["score"] = scored["score"].astype(float)
    best = scored.groupby(["event_id", "score"])["rank"].nunique()
    assert (best == 1).all()
    better = scored.sort_values(["event_id", "rank"]).groupby("event_id")["score"].is_monotonic_decreasing
    assert better.all()
    share = ranked["result"].value_counts(normalize=True)
    assert 0.02 < share["winner"] < 0.15
    assert (achievements["result"] == "dropped").any()
    # A world has upcoming events with registrations only.
    registered = achievements[achievements["result"] == "registered"]
    assert len(registered) > 0
    assert (pd.to_datetime(registered["date"]) < pd.Timestamp(CONFIG.end_date)).all()


def test_teams_share_results_and_have_one_captain(achievements: pd.DataFrame) -> None:
    members = achievements[achievements["team_id"] != ""]
    assert len(members) > 100
    assert (members.groupby("team_id")["result"].nunique() == 1).all()
    captains = members.groupby("team_id")["role"].apply(lambda r: (r == "captain").sum())
    assert (captains == 1).all()


def test_skill_grows_with_practice(world: Path, truth: Truth) -> None:
    start = true_skills(world, CONFIG.start_date, truth=truth)
    np.testing.assert_allclose(start[truth.competences].to_numpy(), truth.skill0)
    end = true_skills(world, CONFIG.end_date, truth=truth)
    growth = (end[truth.competences].to_numpy() - start[truth.competences].to_numpy()).sum(axis=1)
    practice = np.bincount(truth.history.res_participant, minlength=len(growth))
    means = [growth[(practice >= lo) & (practice <= hi)].mean() for lo, hi in [(0, 0), (1, 2), (3, 6), (7, 10_000)]]
    assert means == sorted(means) and means[-1] > means[0] + 0.5
    assert np.corrcoef(practice, growth)[0, 1] > 0.3


def test_mentors_and_good_teams_improve_results(truth: Truth) -> None:
    teams = truth.teams
    mentored = teams["mentor_idx"] >= 0
    assert 0.1 < mentored.mean() < 0.6
    assert (teams.loc[mentored, "mentor_effect"] > -0.2).all() and (teams.loc[~mentored, "mentor_effect"] == 0).all()
    # Against the other teams of the same event, mentored teams do better: the true effect drives results.
    relative = teams["performance"] - teams.groupby("event_idx")["performance"].transform("mean")
    assert relative[mentored].mean() > relative[~mentored].mean() + 0.1
    # Team effect shows in performance too.
    assert np.corrcoef(teams["team_effect"], teams["performance"])[0, 1] > 0.1


def test_oracle_is_a_distribution_favouring_the_real_choices(world: Path, truth: Truth) -> None:
    chosen_prob, uniform_prob = [], []
    for as_of in (date(2023, 10, 1), date(2024, 2, 1), date(2024, 11, 1)):
        probs = choice_probabilities(world, as_of, truth=truth)
        assert probs["probability"].between(0, 1).all()
        sums = probs.groupby("participant_id")["probability"].sum()
        np.testing.assert_allclose(sums.to_numpy(), 1.0, atol=1e-5)
        chosen = true_next_choices(world, as_of, horizon_days=1, truth=truth)
        joined = chosen.merge(probs, on=["participant_id", "event_id"], how="left")
        # Every real choice was open to its participant: the oracle's open set is the generator's.
        assert joined["probability"].notna().all()
        size = probs.groupby("participant_id").size()
        chosen_prob.extend(joined["probability"])
        uniform_prob.extend(1.0 / size.loc[chosen["participant_id"]])
    assert np.mean(chosen_prob) > 1.2 * np.mean(uniform_prob)


def test_oracle_restricted_to_some_participants(world: Path, truth: Truth) -> None:
    as_of = date(2024, 2, 1)
    full = choice_probabilities(world, as_of, truth=truth)
    some = sorted(full["participant_id"].unique()[:25])
    part = choice_probabilities(world, as_of, [*some, "nobody"], truth=truth)
    expected = full[full["participant_id"].isin(some)]
    key = ["participant_id", "event_id"]

    def plain(frame: pd.DataFrame) -> pd.DataFrame:
        frame = frame.astype({"participant_id": "string", "event_id": "string"})
        return frame.sort_values(key).reset_index(drop=True)

    pd.testing.assert_frame_equal(plain(part), plain(expected))


def test_higher_levels_follow_qualifying_results(achievements: pd.DataFrame, events: pd.DataFrame) -> None:
    level = achievements["event_id"].map(events.set_index("event_id")["level"]).map(LEVELS.index)
    rank = achievements["result"].map(RESULT_RANK)
    assert level.max() >= LEVELS.index("national") and rank.max() == RESULT_RANK["winner"]


def test_cli_prints_counts_without_personal_data(tmp_path: Path) -> None:
    from recommender.synth.cli import app

    result = CliRunner().invoke(app, ["--participants", "300", "--seed", "3", "--out", str(tmp_path / "w")])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["aif"]["participants"] == 300
    assert "@" not in result.stdout and "birth" not in result.stdout
    assert (tmp_path / "w/aif/manifest.json").is_file() and (tmp_path / "w/truth/model.json").is_file()


def test_teammates_registrations_are_counted_per_pair_of_people() -> None:
    from recommender.synth.choice import _teammates_registered

    # Team 0: people 1, 2, 3; team 1: people 1, 2 again (counted once); person 4 has no team.
    member = np.array([1, 2, 3, 1, 2])
    team = np.array([0, 0, 0, 1, 1])
    reg_p = np.array([2, 3, 4, 2])
    reg_e = np.array([10, 10, 10, 11])
    p, e, n = _teammates_registered(member, team, reg_p, reg_e)
    got = {(int(a), int(b)): int(c) for a, b, c in zip(p, e, n, strict=True)}
    assert got == {(1, 10): 2, (1, 11): 1, (2, 10): 1, (3, 10): 1, (3, 11): 1}


def test_truth_gives_mentor_benefit_and_team_success(world: Path, truth: Truth, achievements: pd.DataFrame) -> None:
    teams = truth.teams
    mentored = teams[teams["mentor_idx"] >= 0].head(50)
    benefit = truth.mentor_benefit(
        list(truth.mentor_ids[mentored["mentor_idx"]]), list(truth.event_ids[mentored["event_idx"]])
    )
    np.testing.assert_allclose(benefit, mentored["mentor_effect"].to_numpy(), rtol=1e-5)

    # The expected success of the real teams (true skills at the event's end) tracks their performance.
    members = achievements[achievements["team_id"] != ""].groupby("team_id")["participant_id"].apply(list)
    sample = teams[teams["team_id"].isin(members.index)].groupby("event_idx").head(3).head(150)
    success = [
        truth.team_success(
            [members[team_id]], str(truth.event_ids[event]), to_date(int(truth.events.end[event]))
        )[0]
        for team_id, event in zip(sample["team_id"], sample["event_idx"], strict=True)
    ]
    assert np.corrcoef(success, sample["performance"])[0, 1] > 0.3
