"""How far the re-ranker is from the alternative world's oracle, and why: what no AIF reader can know.

    nice -n 10 .venv/bin/python experiments/worlds/ceiling_alt.py --data /tmp/alt100k/aif \
        --truth /tmp/alt100k/truth --as-of 2024-11-01 [--leaks none,fit,fit+prestige,all]

On the paired runner's participants (10,000, sample seed 0) of one temporal split, prints JSON with NDCG@10 of
- the oracle (the world's true choice probabilities on the cut date);
- the oracle without the registrations made before the cut for events not yet started: AIF carries results,
  so no reader sees them, and the oracle uses them to strike events already chosen;
- for those with no history before the cut (a third of them), the oracle knowing only what they show: averaged
  over latents drawn from everyone who declared the same interests (`--newcomer-draws`); with `--short-draws`,
  for those with a few events (`--short-lengths`, 1-2), the same draws weighted by how likely the world's own
  choice model made the events they chose (the Bayes posterior given their history);
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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import alt_oracle
from alt_calendar import EPOCH
from alt_choice import probability_blocks
from alt_oracle import AltTruth, BatchState, choice_probabilities, load_alt_truth
from evaluate_alt import oracle_recommendations, top_k
from paired_reranker import recommend_with_extra_features, split_with_truth

from recommender.eligibility import open_events
from recommender.metrics import per_participant
from training.evaluation import HISTORY_BUCKETS, TemporalSplit, history_lengths, region_types, sample_participants

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
    history = history_lengths(split.train, pd.Series(ndcg.index))
    out = {"ndcg@10": round(float(ndcg.mean()), 4), "urban": round(float(ndcg[kinds == "urban"].mean()), 4),
           "rural": round(float(ndcg[kinds == "rural"].mean()), 4)}
    for name, lo, hi in HISTORY_BUCKETS:
        inside = (history >= lo) & (history <= hi)
        out[f"history {name} ({int(inside.sum())})"] = round(float(ndcg[inside].mean()), 4)
    return out


@contextmanager
def unseen_registrations_hidden() -> Iterator[None]:
    """Within it, the oracle's batch_state keeps only registrations for events started before the day (those AIF
    may show): registrations for open events are struck."""
    state_of = alt_oracle.batch_state

    def state(t: AltTruth, as_of: date, participants: np.ndarray) -> BatchState:
        s = state_of(t, as_of, participants)
        seen = t.chooser.catalog.start[s.taken_events] < s.day
        return replace(s, taken_rows=s.taken_rows[seen], taken_events=s.taken_events[seen])

    alt_oracle.batch_state = state
    try:
        yield
    finally:
        alt_oracle.batch_state = state_of


def oracle_scores(split: TemporalSplit, people: pd.Series, truth: AltTruth) -> dict[str, dict[str, float]]:
    catalog = set(split.train.event_index[open_events(split.train, split.cut, split.filters)])
    ids = people.tolist()
    out = {"oracle": scored(split, people, oracle_recommendations(truth, split.cut.date(), ids, 10, catalog))}
    with unseen_registrations_hidden():
        recs = oracle_recommendations(truth, split.cut.date(), ids, 10, catalog)
    out["oracle without unseen registrations"] = scored(split, people, recs)
    return out


def oracle_for_newcomers(split: TemporalSplit, people: pd.Series, truth: AltTruth, declared: pd.Series,
                         draws: int, seed: int = 0) -> dict[str, float]:
    """The best any AIF reader can do for those with no history before the cut: the oracle averaged over their
    latent tastes and interests drawn from everyone who declared the same interests (the world draws the latents
    independently of region, grade and gender, and the declaration from the interests, so that is their posterior
    given all they show), without the registrations no reader sees. Beside it, the oracle and the re-ranker are
    scored on the same participants under `history 0`."""
    cold = people[history_lengths(split.train, people) == 0]
    ids = truth.participant_ids.astype(str)
    rows = pd.Index(ids).get_indexer(cold.astype(str))
    said = declared.reindex(ids).fillna("").to_numpy(dtype=object)
    rng = np.random.default_rng(seed)
    donors = np.stack([_donors(said, rows, rng) for _ in range(draws)])  # [draws, cold]
    weight = np.full(donors.shape, 1.0 / draws)
    return {"participants": len(cold), "draws": draws,
            "ndcg@10": _posterior_oracle(split, cold, truth, rows, donors, weight)}


def _donors(said: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each of `rows`, a random participant who declared the same interests."""
    out = np.empty(len(rows), dtype=np.int64)
    for key in np.unique(said[rows]):
        mine = np.flatnonzero(said[rows] == key)
        out[mine] = rng.choice(np.flatnonzero(said == key), len(mine))
    return out


def _with_latents_of(truth: AltTruth, rows: np.ndarray, donors: np.ndarray) -> AltTruth:
    ch = truth.chooser
    taste, interest = ch.taste.copy(), ch.interest.copy()
    taste[rows], interest[rows] = ch.taste[donors], ch.interest[donors]
    return replace(truth, chooser=replace(ch, taste=taste, interest=interest))


def oracle_for_short_histories(split: TemporalSplit, people: pd.Series, truth: AltTruth, declared: pd.Series,
                               draws: int, lengths: tuple[int, int], seed: int = 0) -> dict[str, float]:
    """The same for those with `lengths` (first, last) events before the cut, now also knowing the world's own
    choice model: latents drawn as for newcomers, each draw weighted by the probability the model gave the events
    they chose (on the days they registered, for the events AIF shows), the posterior given all they show (by
    importance sampling)."""
    history = history_lengths(split.train, people)
    short = people[(history >= lengths[0]) & (history <= lengths[1])]
    ids = truth.participant_ids.astype(str)
    rows = pd.Index(ids).get_indexer(short.astype(str))
    said = declared.reindex(ids).fillna("").to_numpy(dtype=object)
    cat = truth.chooser.catalog
    cut = alt_oracle._day(split.cut.date())
    regs = truth.registrations
    mine = regs[np.isin(regs["participant_idx"].to_numpy(), rows) & (regs["day"].to_numpy() < cut)]
    mine = mine[cat.end[mine["event_idx"].to_numpy()] < cut]  # AIF dates a result at the event's end
    local = pd.Index(rows).get_indexer(mine["participant_idx"].to_numpy())
    days = mine["day"].to_numpy()
    states = {int(d): alt_oracle.batch_state(truth, EPOCH + timedelta(days=int(d)), np.unique(rows[local[days == d]]))
              for d in np.unique(days)}
    rng = np.random.default_rng(seed)
    donors = np.stack([_donors(said, rows, rng) for _ in range(draws)])  # [draws, short]
    loglik = np.zeros((draws, len(rows)))
    picks: dict[tuple[int, int], list[int]] = {}
    for q, d, e in zip(local.tolist(), days.tolist(), mine["event_idx"].to_numpy().tolist(), strict=True):
        picks.setdefault((d, q), []).append(e)
    for j in range(draws):
        drawn = _with_latents_of(truth, rows, donors[j])
        for d, state in states.items():
            for block in probability_blocks(drawn.chooser, state):
                col = pd.Index(block.events)
                for i, q in enumerate(pd.Index(rows).get_indexer(block.participants).tolist()):
                    where = col.get_indexer(picks[(d, q)])
                    prob = np.where(where >= 0, block.probability[i, np.maximum(where, 0)], 0.0)
                    loglik[j, q] += float(np.log(np.maximum(prob, 1e-12)).sum())
    weight = np.exp(loglik - loglik.max(axis=0, keepdims=True))
    weight /= weight.sum(axis=0, keepdims=True)
    effective = 1.0 / (weight**2).sum(axis=0)
    return {"participants": len(short), "draws": draws, "median_effective_draws": round(float(np.median(effective)), 1),
            "ndcg@10": _posterior_oracle(split, short, truth, rows, donors, weight)}


def _posterior_oracle(split: TemporalSplit, people: pd.Series, truth: AltTruth, rows: np.ndarray,
                      donors: np.ndarray, weight: np.ndarray) -> float:
    """NDCG@10 of ranking `people` (at truth `rows`) by their choice probabilities on the cut date averaged over
    latent draws (donors [draws, people]) with weights [draws, people], without the registrations no reader sees."""
    ids = truth.participant_ids.astype(str)
    catalog = set(split.train.event_index[open_events(split.train, split.cut, split.filters)])
    total: pd.Series | None = None
    with unseen_registrations_hidden():
        for j in range(len(donors)):
            probs = choice_probabilities(Path(), split.cut.date(), people.tolist(),
                                         truth=_with_latents_of(truth, rows, donors[j]))
            w = pd.Series(weight[j], index=ids[rows]).reindex(probs["participant_id"].astype(str)).to_numpy()
            p = pd.Series(probs["probability"].to_numpy() * w,
                          index=pd.MultiIndex.from_arrays([probs["participant_id"], probs["event_id"]]))
            total = p if total is None else total.add(p, fill_value=0.0)
    if total is None:
        return float("nan")
    return scored(split, people, top_k(total.rename("probability").reset_index(), catalog, 10))["ndcg@10"]


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
    names = [*(["true_fit"] if "fit" in leaks else []), *(["true_prestige"] if "prestige" in leaks else []),
             *([f"true_taste_{k}" for k in range(latent["taste"].shape[1])] if "taste" in leaks else [])]

    def leaked(participants: np.ndarray, events: np.ndarray) -> np.ndarray:
        shape = (len(participants), len(events))
        extra = []
        if "fit" in leaks:
            extra.append(latent["interest"][participants] @ latent["weights"][events].T)
        if "prestige" in leaks:
            extra.append(np.broadcast_to(latent["prestige"][events][None, :], shape))
        if "taste" in leaks:
            extra += [np.broadcast_to(latent["taste"][participants, k][:, None], shape)
                      for k in range(latent["taste"].shape[1])]
        return np.stack(extra, axis=-1) if extra else np.zeros((*shape, 0), np.float32)

    recs = recommend_with_extra_features(split, people, tuple(names), leaked)
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
    parser.add_argument("--short-draws", type=int, default=0,
                        help="latent draws of the oracle for those with a short history (importance-weighted; 0: skip)")
    parser.add_argument("--short-lengths", default="1-2", help="history lengths of --short-draws, first-last")
    args = parser.parse_args()
    split = split_with_truth(args.data, args.truth, args.as_of, 90, True)
    people = sample_participants(split, 10000, 0)
    truth = load_alt_truth(args.truth)
    report: dict[str, object] = {"as_of": args.as_of, "participants": len(people)}
    if not args.no_oracle:
        report.update(oracle_scores(split, people, truth))
        said = pd.read_csv(args.data / "participants.csv", dtype=str, keep_default_na=False)
        declared = said.set_index("participant_id")["interests"]
        if args.newcomer_draws:
            report["oracle for newcomers, from what they show"] = oracle_for_newcomers(
                split, people, truth, declared, args.newcomer_draws)
        if args.short_draws:
            first, last = (int(v) for v in args.short_lengths.split("-"))
            report[f"oracle for {args.short_lengths} events, from what they show"] = oracle_for_short_histories(
                split, people, truth, declared, args.short_draws, (first, last))
    latent = latent_tables(split, truth)
    for leak in filter(None, args.leaks.split(",")):
        report[f"reranker, leaked: {leak}"] = leaked_reranker(split, people, latent, LEAKS[leak])
        print(json.dumps(report), flush=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
