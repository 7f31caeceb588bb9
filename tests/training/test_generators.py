"""Candidate generators on a small synthetic world: each beats random on a temporal split and scores new events."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from recommender.columns import Columns
from recommender.eligibility import EventFilters, open_events
from recommender.graph import AchievementsGraph
from recommender.metrics import summary
from recommender.models import EventRecommender
from recommender.synth.config import SynthConfig
from recommender.synth.generate import generate_world
from training.baselines import RandomRecommender
from training.bpr import BprConfig, BprRecommender
from training.content import ContentRecommender
from training.evaluation import TemporalSplit, evaluate, temporal_split
from training.item_knn import ItemKnnConfig, ItemKnnRecommender
from training.sequential import SequentialConfig, SequentialRecommender

CUT = "2024-09-01"
GENERATORS: dict[str, Callable[[], EventRecommender]] = {
    "bpr": lambda: BprRecommender(BprConfig(factors=16, iterations=40, seed=3)),
    "item_knn": lambda: ItemKnnRecommender(),
    "item_knn_bm25": lambda: ItemKnnRecommender(ItemKnnConfig(weighting="bm25")),
    "content": lambda: ContentRecommender(),
    "sequential": lambda: SequentialRecommender(SequentialConfig(d_model=16, epochs=2, negatives=16, seed=3)),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> AchievementsGraph:
    out = tmp_path_factory.mktemp("world")
    generate_world(SynthConfig(participants=2000, seed=7), out)
    return AchievementsGraph.from_aif(out / "aif")


@pytest.fixture(scope="module")
def split(world: AchievementsGraph) -> TemporalSplit:
    return temporal_split(world, CUT, horizon_days=120)


@pytest.fixture(scope="module")
def fitted(split: TemporalSplit) -> dict[str, EventRecommender]:
    return {name: make().fit(split.train) for name, make in GENERATORS.items()}


@pytest.fixture(scope="module")
def random_ndcg(split: TemporalSplit) -> float:
    return evaluate(RandomRecommender(), split)["ndcg@10"]


@pytest.mark.parametrize("name", list(GENERATORS))
def test_beats_random_on_a_temporal_split(name: str, split: TemporalSplit, fitted: dict[str, EventRecommender],
                                          random_ndcg: float) -> None:
    model = fitted[name]
    participants = split.relevant[Columns.Participant].drop_duplicates().sort_values().tolist()
    recs = model.recommend(participants, 10, as_of=split.cut, filters=split.filters, graph=split.train)
    ndcg = summary(recs, split.relevant, 10)["ndcg@10"]
    assert ndcg > random_ndcg + 0.05, f"{name}: ndcg@10 {ndcg:.3f} vs random {random_ndcg:.3f}"


def _with_brand_new_series(graph: AchievementsGraph, template: int, competences: str) -> tuple[AchievementsGraph, str]:
    """The graph plus one upcoming event of a series nobody has ever taken, copied from an open event."""
    events = graph.events
    new = events.iloc[[template]].copy()
    new[Columns.Event] = "E_NEW"
    new[Columns.Series] = "S_NEW"
    new["competences"] = competences
    new[Columns.ParentEvent] = pd.NA
    new[Columns.Region] = pd.NA
    new["online"] = True
    new["min_grade"] = pd.NA
    new["max_grade"] = pd.NA
    new["capacity"] = pd.NA
    return replace(graph, events=pd.concat([events, new], ignore_index=True), _cache={}), "E_NEW"


@pytest.mark.parametrize("name", list(GENERATORS))
def test_scores_a_brand_new_event_by_what_it_shares(name: str, split: TemporalSplit,
                                                    fitted: dict[str, EventRecommender]) -> None:
    """An event of a never-seen series is ranked higher for participants whose history matches its competences."""
    train = split.train
    template = int(open_events(train, split.cut, EventFilters(horizon_days=120))[0])
    pe = train.participant_event() @ train.event_competence()
    dominant = np.asarray(pe.argmax(axis=1)).ravel()
    active = np.asarray(pe.sum(axis=1)).ravel() > 0
    counts = np.bincount(dominant[active], minlength=len(train.competence_index))
    competence = str(train.competence_index[int(np.argmax(counts))])
    graph, new_id = _with_brand_new_series(train, template, f"{competence}:1")
    model = fitted[name]
    fans = np.flatnonzero(active & (dominant == int(np.argmax(counts))))[:150]
    others = np.flatnonzero(active & (dominant != int(np.argmax(counts))))[:150]
    events = open_events(graph, split.cut)
    new_pos = int(graph.event_index.get_loc(new_id))
    column = int(np.flatnonzero(events == new_pos)[0])

    def new_event_rank(people: np.ndarray) -> float:
        allowed = np.ones((len(people), len(events)), dtype=bool)
        scores = model._score(graph, people, events, split.cut, allowed)
        assert np.isfinite(scores[:, column]).all()
        return float(np.mean((scores > scores[:, [column]]).sum(axis=1) / len(events)))

    # Lower is better: the share of open events ranked above the new one.
    assert new_event_rank(fans) < new_event_rank(others), name
