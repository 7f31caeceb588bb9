"""How far the re-ranker is from the alternative world's oracle, and why: what no AIF reader can know.

    nice -n 10 .venv/bin/python experiments/worlds/ceiling_alt.py --data /tmp/alt100k/aif \
        --truth /tmp/alt100k/truth --as-of 2024-11-01 [--leaks none,fit,fit+prestige,all]

On the paired runner's participants (10,000, sample seed 0) of one temporal split, prints JSON with NDCG@10 of
- the oracle (the world's true choice probabilities on the cut date);
- the oracle without the registrations made before the cut for events not yet started: AIF carries results,
  so no reader sees them, and the oracle uses them to strike events already chosen;
- for those with no history before the cut (a third of them), the oracle knowing only what they show: averaged
  over latents drawn from everyone who declared the same interests (`--newcomer-draws`);
- the re-ranker with its defaults and with latent truths of the world added as features (read from its truth,
  so never a product): `fit` the true interest . event competence weights, `prestige` the series' latent
  prestige, `taste` the four taste mixture weights; `all` is the three.
Each by history length. What a leak adds is what a perfect estimate of that latent would be worth. The oracle
ranks by the choice probabilities of the cut date, the metric counts a horizon's registrations: a model that
learns the horizon may beat it, so the oracle is a reference, not a bound.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import alt_oracle
from alt_oracle import AltTruth, BatchState, choice_probabilities, load_alt_truth
from evaluate_alt import oracle_recommendations, top_k
from paired_reranker import split_with_truth

import training.reranker as reranker
from recommender.eligibility import open_events
from recommender.metrics import per_participant
from training.evaluation import TemporalSplit, region_types, sample_participants

HISTORY_BUCKETS = (("0", 0, 0), ("1-2", 1, 2), ("3-5", 3, 5), ("6+", 6, 10**9))
LEAKS = {
    "none": (),
    "fit": ("fit",),
    "fit+prestige": ("fit", "prestige"),
    "all": ("fit", "prestige", "taste"),
}


def scored(split: TemporalSplit, people: pd.Series, recs: pd.DataFrame) -> dict[str, float]:
    """NDCG@10 in all, by region type and by the number of events in one's history before the cut."""
    relevant = split.relevant[split.relevant["participant_id"].isin(people)]
    ndcg = per_participant(recs, relevant, 10)["ndcg"].reindex(people.to_numpy()).fillna(0.0)
    kinds = region_types(split.train).reindex(ndcg.index)
    history = history_lengths(split, pd.Series(ndcg.index))
    out = {"ndcg@10": round(float(ndcg.mean()), 4), "urban": round(float(ndcg[kinds == "urban"].mean()), 4),
           "rural": round(float(ndcg[kinds == "rural"].mean()), 4)}
    for name, lo, hi in HISTORY_BUCKETS:
        inside = (history >= lo) & (history <= hi)
        out[f"history {name} ({int(inside.sum())})"] = round(float(ndcg[inside].mean()), 4)
    return out


def without_unseen_registrations(state_of: Callable[..., BatchState]) -> Callable[..., BatchState]:
    """batch_state keeping only registrations for events started before the day (those AIF may show)."""

    def state(t: AltTruth, as_of: date, participants: np.ndarray) -> BatchState:
        s = state_of(t, as_of, participants)
        seen = t.chooser.catalog.start[s.taken_events] < s.day
        return replace(s, taken_rows=s.taken_rows[seen], taken_events=s.taken_events[seen])

    return state


def oracle_scores(split: TemporalSplit, people: pd.Series, truth: AltTruth) -> dict[str, dict[str, float]]:
    catalog = set(split.train.event_index[open_events(split.train, split.cut, split.filters)])
    ids = people.tolist()
    out = {"oracle": scored(split, people, oracle_recommendations(truth, split.cut.date(), ids, 10, catalog))}
    state_of = alt_oracle.batch_state
    alt_oracle.batch_state = without_unseen_registrations(state_of)
    try:
        recs = oracle_recommendations(truth, split.cut.date(), ids, 10, catalog)
    finally:
        alt_oracle.batch_state = state_of
    out["oracle without unseen registrations"] = scored(split, people, recs)
    return out


def history_lengths(split: TemporalSplit, people: pd.Series) -> np.ndarray:
    g = split.train
    taken = np.bincount(g.achievements["participant_idx"].to_numpy(), minlength=g.n_participants)
    return pd.Series(taken, index=g.participant_index.astype(str)).reindex(people.astype(str)).to_numpy()


def oracle_for_newcomers(split: TemporalSplit, people: pd.Series, truth: AltTruth, declared: pd.Series,
                         draws: int, seed: int = 0) -> dict[str, float]:
    """The best any AIF reader can do for those with no history before the cut: the oracle averaged over their
    latent tastes and interests drawn from everyone who declared the same interests (the world draws the latents
    independently of region, grade and gender, and the declaration from the interests, so that is their posterior
    given all they show), without the registrations no reader sees. Beside it, the oracle and the re-ranker are
    scored on the same participants under `history 0`."""
    cold = people[history_lengths(split, people) == 0]
    ids = truth.participant_ids.astype(str)
    rows = pd.Index(ids).get_indexer(cold.astype(str))
    said = declared.reindex(ids).fillna("").to_numpy(dtype=object)
    rng = np.random.default_rng(seed)
    ch = truth.chooser
    catalog = set(split.train.event_index[open_events(split.train, split.cut, split.filters)])
    state_of = alt_oracle.batch_state
    alt_oracle.batch_state = without_unseen_registrations(state_of)
    total: pd.Series | None = None
    try:
        for _ in range(draws):
            taste, interest = ch.taste.copy(), ch.interest.copy()
            for key in np.unique(said[rows]):
                mine = rows[said[rows] == key]
                donors = rng.choice(np.flatnonzero(said == key), len(mine))
                taste[mine], interest[mine] = ch.taste[donors], ch.interest[donors]
            drawn = replace(truth, chooser=replace(ch, taste=taste, interest=interest))
            probs = choice_probabilities(Path(), split.cut.date(), cold.tolist(), truth=drawn)
            p = probs.set_index(["participant_id", "event_id"])["probability"]
            total = p if total is None else total.add(p, fill_value=0.0)
    finally:
        alt_oracle.batch_state = state_of
    if total is None:
        return {}
    mean = (total / draws).rename("probability").reset_index()
    return {"participants": len(cold), "draws": draws,
            "ndcg@10": scored(split, cold, top_k(mean, catalog, 10))["ndcg@10"]}


def latent_tables(split: TemporalSplit, truth: AltTruth) -> dict[str, np.ndarray]:
    """Latent truths in the graph's participant and event order (zeros for ids the truth lacks)."""
    g, ch = split.train, truth.chooser
    people = pd.Index(truth.participant_ids.astype(str)).get_indexer(g.participant_index.astype(str))
    events = pd.Index(truth.event_ids.astype(str)).get_indexer(g.event_index.astype(str))
    if (people < 0).any() or (events < 0).any():
        raise ValueError("the graph holds participants or events the truth does not")
    return {"interest": ch.interest[people], "weights": ch.catalog.weights[events],
            "prestige": ch.catalog.prestige[events], "taste": ch.taste[people]}


def leaked_reranker(split: TemporalSplit, people: pd.Series, latent: dict[str, np.ndarray], leaks: tuple[str, ...]
                    ) -> dict[str, float]:
    features, pair_features = reranker.FEATURES, reranker.pair_features
    names = [*(["true_fit"] if "fit" in leaks else []), *(["true_prestige"] if "prestige" in leaks else []),
             *([f"true_taste_{k}" for k in range(latent["taste"].shape[1])] if "taste" in leaks else [])]

    def with_truth(graph, ctx, participants, events):  # type: ignore[no-untyped-def]
        f = pair_features(graph, ctx, participants, events)
        shape = (len(participants), len(events))
        extra = []
        if "fit" in leaks:
            extra.append(latent["interest"][participants] @ latent["weights"][events].T)
        if "prestige" in leaks:
            extra.append(np.broadcast_to(latent["prestige"][events][None, :], shape))
        if "taste" in leaks:
            extra += [np.broadcast_to(latent["taste"][participants, k][:, None], shape)
                      for k in range(latent["taste"].shape[1])]
        if not extra:
            return f
        return np.concatenate([f, np.stack(extra, axis=-1).astype(np.float32)], axis=-1)

    reranker.FEATURES, reranker.pair_features = (*features, *names), with_truth
    try:
        model = reranker.RerankerRecommender(reranker.RerankerConfig()).fit(split.train)
        recs = model.recommend(people.tolist(), 10, as_of=split.cut, filters=split.filters, graph=split.train)
    finally:
        reranker.FEATURES, reranker.pair_features = features, pair_features
    return scored(split, people, recs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--truth", type=Path, required=True)
    parser.add_argument("--as-of", required=True)
    parser.add_argument("--leaks", default=",".join(LEAKS), help=f"comma-separated of {', '.join(LEAKS)}")
    parser.add_argument("--no-oracle", action="store_true")
    parser.add_argument("--newcomer-draws", type=int, default=16,
                        help="latent draws of the oracle for those with no history (0: skip it)")
    args = parser.parse_args()
    split = split_with_truth(args.data, args.truth, args.as_of, 90, True)
    people = sample_participants(split, 10000, 0)
    truth = load_alt_truth(args.truth)
    report: dict[str, object] = {"as_of": args.as_of, "participants": len(people)}
    if not args.no_oracle:
        report.update(oracle_scores(split, people, truth))
        if args.newcomer_draws:
            declared = pd.read_csv(args.data / "participants.csv", dtype=str, keep_default_na=False)
            report["oracle for newcomers, from what they show"] = oracle_for_newcomers(
                split, people, truth, declared.set_index("participant_id")["interests"], args.newcomer_draws)
    latent = latent_tables(split, truth)
    for leak in filter(None, args.leaks.split(",")):
        report[f"reranker, leaked: {leak}"] = leaked_reranker(split, people, latent, LEAKS[leak])
        print(json.dumps(report), flush=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
