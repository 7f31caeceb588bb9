"""Where the re-ranker's distance to the oracle comes from, on a product-generator world (reads its truth).

Usage: python experiments/benchmarks/interest_diagnostics.py --world W --as-of 2025-03-01 [--ceiling] [--pipeline P.pkl]

Prints JSON with these parts, all on the split's open events:
- `interest_estimates`: for 3,000 sampled participants with a history, how much of the true interest (the world's
  interest . event competence weights) the ten events ranked first by an interest estimate carry, as a share of
  the best ten's; by history length and settlement. The shipped profile (features.ranking) beside plain counts,
  counts corrected for the competences' supply, and variants of the declared and result weights.
- `oracle_without`: the oracle's NDCG@10 on the paired runner's 10,000 participants with and without what no AIF
  reader can know: schoolmates' and teammates' registrations before the cut, and one's own.
- with `--ceiling`: the re-ranker's NDCG@10 on those participants with the true interest . event weights as one
  more feature (a fit of several minutes): how far a perfect interest estimate would take it.
- with `--pipeline P.pkl` (a paired_reranker.py run's per-participant NDCG@10, e.g. `--max-participants 100000`
  for all): that NDCG beside the oracle's, on the same participants, by settlement and events taken before the cut.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

import features.ranking as ranking
import recommender.synth.oracle as synth_oracle
from recommender.eligibility import eligibility_mask, open_events
from recommender.metrics import per_participant
from recommender.synth.truth import load_truth
from training.evaluation import HISTORY_BUCKETS, TemporalSplit, history_lengths, region_types, sample_participants
from training.oracle import oracle_recommendations

sys.path.insert(0, str(Path(__file__).resolve().parent))
from paired_reranker import recommend_with_extra_features, split_with_truth

SETTLEMENT_RURAL = 2


def true_interest(world: Path, split: TemporalSplit) -> tuple[np.ndarray, np.ndarray]:
    """[participants, competences] true interests and [events, competences] weights, in the graph's order."""
    g, t = split.train, load_truth(world)
    position = pd.Index(list(g.competence_index)).get_indexer(list(t.competences))
    people = pd.Index(t.participant_ids.astype(str)).get_indexer(g.participant_index.astype(str))
    events = pd.Index(t.event_ids.astype(str)).get_indexer(g.event_index.astype(str))
    interest = np.zeros((g.n_participants, len(g.competence_index)), np.float32)
    interest[:, position] = t.interest[people]
    weights = np.zeros((g.n_events, len(g.competence_index)), np.float32)
    weights[:, position] = t.events.weights[events]
    return interest, weights


def estimate_shares(split: TemporalSplit, interest: np.ndarray, weights: np.ndarray) -> dict[str, dict[str, float]]:
    g, cut = split.train, split.cut
    a = g.achievements
    history = history_lengths(g)
    people = np.sort(np.random.default_rng(0).choice(np.flatnonzero(history > 0), 3000, replace=False))
    catalog = open_events(g, cut, split.filters)
    allowed = eligibility_mask(g, cut, people, catalog)
    keep = allowed.sum(axis=1) >= 12
    people, allowed = people[keep], allowed[keep]
    truth = interest[people] @ weights[catalog].T
    ctx = ranking.build_context(g, cut)
    settlement = ctx.settlement[people]
    ec = g.event_competence().toarray().astype(np.float32)
    declared = ranking._rows_normalized(g.participant_interests()[people]).toarray()
    age = (cut - a["date"]).dt.days.to_numpy(np.float64)
    recency = np.power(0.5, age / ranking.INTEREST_HALF_LIFE_DAYS)
    result = a["result_rank"].to_numpy(np.float64)

    def summed(weight: np.ndarray) -> np.ndarray:
        pe = sp.csr_matrix((weight.astype(np.float32), (a["participant_idx"].to_numpy(), a["event_idx"].to_numpy())),
                           shape=(g.n_participants, g.n_events))
        return np.asarray(pe[people] @ ec)

    def share(estimate: np.ndarray) -> dict[str, float]:
        score = estimate @ ec[catalog].T
        got = np.zeros(len(people))
        for i in range(len(people)):
            cols = np.flatnonzero(allowed[i])
            best = np.sort(truth[i, cols])[::-1][:10].mean()
            got[i] = truth[i, cols[np.argsort(-score[i, cols], kind="stable")[:10]]].mean() / best
        h = history[people]
        parts = {"all": np.ones(len(h), bool), "history 1-2": h <= 2, "history 3-5": (h > 2) & (h <= 5),
                 "history 6+": h > 5, "rural": settlement == SETTLEMENT_RURAL, "urban": settlement != SETTLEMENT_RURAL}
        return {name: round(float(got[mask].mean()), 3) for name, mask in parts.items()}

    def l1(m: np.ndarray) -> np.ndarray:
        return m / np.maximum(m.sum(axis=1, keepdims=True), 1e-12)

    def mixed(weight: np.ndarray, declared_weight: float) -> np.ndarray:
        return l1(summed(weight) + declared_weight * declared)

    counts = summed(np.ones(len(a)))
    supply = ec.sum(axis=0) / ec.sum() + 1e-3
    before = l1(l1(summed(recency)) + 0.3 * declared)
    result_weighted = recency * np.exp(ranking.RESULT_WEIGHT * (result - 2.0))
    return {
        "shipped profile (recency and result, declared as 3 achievements)": share(ctx.profile[people].toarray()),
        "counts": share(counts),
        "counts / competence supply": share(counts / supply[None, :]),
        "recency, declared at 0.3 of the history (before)": share(before),
        "recency, declared as 3 achievements": share(mixed(recency, 3.0)),
        "recency and result, declared as 10 achievements": share(mixed(result_weighted, 10.0)),
    }


def oracle_without(world: Path, split: TemporalSplit, people: pd.Series) -> dict[str, float]:
    state_of = synth_oracle.choice_state
    out = {}
    for name, social, own in (("oracle", False, False), ("without others' registrations", True, False),
                              ("without anyone's registrations before the cut", True, True)):
        def stripped(ch, history, as_of, social=social, own=own):
            s = state_of(ch, history, as_of)
            none = np.zeros(0, np.int64)
            if social:
                s = replace(s, friend_school=none, friend_e=none, friend_bounds=np.zeros_like(s.friend_bounds),
                            mate_p=none, mate_e=none, mate_n=none, mate_bounds=np.zeros_like(s.mate_bounds))
            if own:
                s = replace(s, taken_p=none, taken_e=none, taken_bounds=np.zeros_like(s.taken_bounds))
            return s

        synth_oracle.choice_state = stripped
        try:
            out[name] = round(float(oracle_ndcg(world, split, people).mean()), 4)
        finally:
            synth_oracle.choice_state = state_of
    return out


def oracle_ndcg(world: Path, split: TemporalSplit, people: pd.Series) -> np.ndarray:
    """The oracle's NDCG@10 per participant of `people` (ids, in their order) on the split (`world`: its truth)."""
    relevant = split.relevant[split.relevant["participant_id"].isin(people)]
    catalog = set(split.train.event_index[open_events(split.train, split.cut, split.filters)])
    recs = oracle_recommendations(world, split.cut, people.tolist(), 10, catalog)
    return np.asarray(per_participant(recs, relevant, 10)["ndcg"].reindex(people.to_numpy()).fillna(0.0).to_numpy())


def by_settlement_and_history(world: Path, split: TemporalSplit, pipeline: pd.Series) -> dict[str, dict[str, float]]:
    """The pipeline's and the oracle's NDCG@10 on the pipeline's participants, by region type and history length."""
    people = pd.Series(pipeline.index.astype(str))
    oracle = oracle_ndcg(world, split, people)
    history = history_lengths(split.train, people)
    kinds = region_types(split.train).reindex(people.to_numpy()).to_numpy()
    out = {}
    for kind in ("urban", "rural"):
        for label, low, high in HISTORY_BUCKETS:
            rows = (kinds == kind) & (history >= low) & (history <= high)
            if rows.any():
                mine, best = float(pipeline.to_numpy()[rows].mean()), float(oracle[rows].mean())
                out[f"{kind}, {label}"] = {"participants": int(rows.sum()), "pipeline": round(mine, 4),
                                           "oracle": round(best, 4), "of_the_oracle": round(mine / best, 3)}
    return out


def ceiling(split: TemporalSplit, people: pd.Series, interest: np.ndarray, weights: np.ndarray) -> dict[str, float]:
    """The re-ranker with the true interest . event weights as one more feature."""
    recs = recommend_with_extra_features(split, people, ("true_interest",),
                                         lambda p, e: (interest[p] @ weights[e].T)[..., None])
    relevant = split.relevant[split.relevant["participant_id"].isin(people)]
    ndcg = per_participant(recs, relevant, 10)["ndcg"].reindex(people.to_numpy()).fillna(0.0)
    kinds = region_types(split.train).reindex(ndcg.index)
    return {"ndcg@10": round(float(ndcg.mean()), 4), "urban": round(float(ndcg[kinds == "urban"].mean()), 4),
            "rural": round(float(ndcg[kinds == "rural"].mean()), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=Path, required=True, help="a `trajectory synth` output (aif/ and truth/)")
    parser.add_argument("--as-of", required=True)
    parser.add_argument("--ceiling", action="store_true", help="also fit the re-ranker with the true interest")
    parser.add_argument("--pipeline", type=Path, help="a paired_reranker.py run's NDCG@10 per participant (.pkl)")
    args = parser.parse_args()
    split = split_with_truth(args.world / "aif", args.world / "truth", args.as_of, 90, False)
    people = sample_participants(split, 10000, 0)
    interest, weights = true_interest(args.world, split)
    report: dict[str, object] = {
        "as_of": args.as_of,
        "interest_estimates": estimate_shares(split, interest, weights),
        "oracle_without": oracle_without(args.world / "truth", split, people),
    }
    if args.ceiling:
        report["reranker_with_true_interest"] = ceiling(split, people, interest, weights)
    if args.pipeline is not None:
        pipeline = pd.read_pickle(args.pipeline)
        report["by_settlement_and_history"] = by_settlement_and_history(args.world / "truth", split, pipeline)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
