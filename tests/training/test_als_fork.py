"""Implicit ALS in a forked serving worker: `trajectory serve --workers N` forks after the parent has used the model."""

from __future__ import annotations

import os
import signal
import time

import pytest

from recommender.graph import AchievementsGraph
from recommender.synth.config import SynthConfig
from recommender.synth.generate import generate_world
from training.als import AlsConfig, AlsRecommender

CUT = "2024-09-01"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="serving workers are forked")
def test_a_forked_worker_scores_with_als_after_the_parent_did(tmp_path_factory: pytest.TempPathFactory) -> None:
    out = tmp_path_factory.mktemp("als_fork")
    generate_world(SynthConfig(participants=600, seed=5), out)
    graph = AchievementsGraph.from_aif(out / "aif")
    model = AlsRecommender(AlsConfig(factors=8, iterations=3)).fit(graph)
    people = graph.achievements["participant_id"].astype(str).unique()[:200].tolist()
    # The parent scores many participants at once (as its smoke test and batch jobs do), then forks.
    expected = model.recommend(people, 5, as_of=CUT)
    assert len(expected)
    child = os.fork()
    if child == 0:  # the worker: one participant, as a request
        try:
            got = model.recommend(people[:1], 5, as_of=CUT)
            os._exit(0 if got["event_id"].tolist() == expected[expected["participant_id"] == people[0]]
                     ["event_id"].tolist() else 3)
        except BaseException:
            os._exit(4)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done, status = os.waitpid(child, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
    pytest.fail("the forked worker hung scoring with ALS")
