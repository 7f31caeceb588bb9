"""Benchmark: mentor assignment and team formation judged by a synthetic world's true effects.

    .venv/bin/python experiments/benchmarks/bench_mentors_teams.py --world /tmp/w40 --participants 40000 --seed 7

Prints JSON: assignment true benefit vs the true-effect optimum and a random feasible assignment,
capacity and rural checks, timing for up to 5,000 teams x 2,000 mentors; team formation mean true
success vs random and greedy strongest-first for 5,000 registrants; mentor and teammate ranking
NDCG@10 side by side with popularity and the oracle.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from features.mentor_features import event_competences, mentor_load, reach_matrix, team_table
from features.team_features import former_teammate_pairs, team_feature_frame
from recommender.columns import Columns
from recommender.graph import AchievementsGraph
from recommender.synth.config import SynthConfig
from recommender.synth.generate import generate_world
from recommender.synth.truth import Truth, load_truth
from training.mentors import MentorModel, assignment_groups, rank_mentors, solve_assignment
from training.teams import (
    TeamSuccessModel,
    form_teams,
    historical_teams,
    participant_skills,
    random_teams,
    rank_teammates,
    strongest_first_teams,
    teamwork_column,
)


def _cut_date(graph: AchievementsGraph, share: float) -> pd.Timestamp:
    dates = graph.achievements[Columns.Date].sort_values()
    return pd.Timestamp(dates.iloc[int(share * (len(dates) - 1))]).normalize()


def _true_benefit_matrix(truth: Truth, event_ids: np.ndarray, mentor_ids: np.ndarray) -> np.ndarray:
    events, inverse = np.unique(event_ids.astype(str), return_inverse=True)
    out = np.empty((len(events), len(mentor_ids)))
    for i, e in enumerate(events):
        out[i] = truth.mentor_benefit(list(mentor_ids), [e] * len(mentor_ids))
    return out[inverse.ravel()]


def _random_feasible(reach: np.ndarray, capacity: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    cap = capacity.copy()
    out = np.full(len(reach), -1, dtype=np.int64)
    for t in rng.permutation(len(reach)):
        options = np.flatnonzero(reach[t] & (cap > 0))
        if len(options):
            out[t] = int(rng.choice(options))
            cap[out[t]] -= 1
    return out


def _total(benefit: np.ndarray, choice: np.ndarray) -> float:
    served = choice >= 0
    return float(benefit[np.flatnonzero(served), choice[served]].sum())


def bench_assignment(graph: AchievementsGraph, truth: Truth, as_of: pd.Timestamp, n_teams: int) -> dict[str, object]:
    teams = team_table(graph)
    future = teams[(teams["start_date"] >= as_of) & (teams["event_idx"] >= 0)].head(n_teams).reset_index(drop=True)
    t0 = time.perf_counter()
    model = MentorModel().fit(graph.as_of(as_of))
    fit_s = time.perf_counter() - t0
    mentors = model.mentors_
    # Every future team is treated as still looking for a mentor; capacities are the mentors' full ones
    # minus teams mentored at events still running on the cut date.
    past = teams[teams["start_date"] < as_of]
    capacity = mentors["capacity"].to_numpy() - mentor_load(past, mentors, as_of)
    rural = future["rural"].to_numpy(bool)
    t0 = time.perf_counter()
    benefit = model.expected_benefit(future["event_idx"].to_numpy())
    reach = reach_matrix(future["region_code"].to_numpy(), mentors)
    groups = assignment_groups(future)
    choice = solve_assignment(benefit, reach, capacity, rural, groups=groups)
    solve_s = time.perf_counter() - t0
    true = _true_benefit_matrix(truth, future[Columns.Event].to_numpy(), mentors[Columns.Mentor].to_numpy())
    # The optimum with the true effects: no rural priority, a much wider candidate set.
    optimum = solve_assignment(true, reach, capacity, np.zeros(len(future), bool), groups=groups,
                               candidates_per_team=400, mentor_candidates=40)
    rand = [_total(true, _random_feasible(reach, capacity, s)) for s in range(3)]
    used = np.bincount(choice[choice >= 0], minlength=len(mentors))
    left = capacity - used
    unserved_rural = np.flatnonzero(rural & (choice < 0))
    rural_violations = int(sum((reach[t] & (left > 0)).any() for t in unserved_rural))
    ours = _total(true, choice)
    opt = _total(true, optimum)
    return {
        "teams": len(future), "mentors": len(mentors), "capacity_total": int(np.maximum(capacity, 0).sum()),
        "served": int((choice >= 0).sum()), "rural_teams": int(rural.sum()),
        "rural_served": int((rural & (choice >= 0)).sum()), "rural_left_while_capacity": rural_violations,
        "capacity_exceeded": int((used > np.maximum(capacity, 0)).sum()),
        "true_benefit": round(ours, 3), "true_optimum": round(opt, 3), "random_mean": round(float(np.mean(rand)), 3),
        "ratio_to_optimum": round(ours / opt, 4), "ratio_to_random": round(ours / float(np.mean(rand)), 4),
        "fit_seconds": round(fit_s, 2), "assign_seconds": round(solve_s, 2),
    }


def bench_formation(graph: AchievementsGraph, truth: Truth, as_of: pd.Timestamp, n_reg: int, seed: int
                    ) -> dict[str, object]:
    past = graph.as_of(as_of)
    t0 = time.perf_counter()
    skills = participant_skills(past)
    skill_s = time.perf_counter() - t0
    ev = graph.events
    team_events = ev[ev["team_max"].notna() & (pd.to_datetime(ev[Columns.StartDate]) >= as_of)]
    need_all = event_competences(graph)
    rng = np.random.default_rng(seed)
    tw = teamwork_column(graph)
    feats, target = historical_teams(past, skills)
    model = TeamSuccessModel().fit(feats, target)
    out: dict[str, object] = {"registrants": n_reg, "skill_fit_seconds": round(skill_s, 2),
                              "history_teams": len(target)}
    events_out: list[dict[str, object]] = []
    means: dict[str, list[float]] = {"formed": [], "random": [], "strongest_first": []}
    for _, row in team_events.head(3).iterrows():
        e = graph.event_index.get_loc(row[Columns.Event])
        need = need_all[e]
        lo, hi = int(row["team_min"]), int(row["team_max"])
        pos = np.sort(rng.choice(graph.n_participants, size=min(n_reg, graph.n_participants), replace=False))
        ids = graph.participants[Columns.Participant].astype(str).to_numpy()[pos]
        t0 = time.perf_counter()
        formed = form_teams(skills[pos], need, lo, hi, teamwork_col=tw)
        form_s = time.perf_counter() - t0
        labels = {"formed": formed, "random": random_teams(len(pos), lo, hi, seed),
                  "strongest_first": strongest_first_teams(skills[pos], need, lo, hi)}
        result: dict[str, object] = {"event_id": row[Columns.Event], "team_min": lo, "team_max": hi,
                                     "form_seconds": round(form_s, 3)}
        for name, lab in labels.items():
            teams = [list(ids[lab == t]) for t in range(int(lab.max()) + 1)]
            sizes = np.array([len(t) for t in teams])
            assert sizes.min() >= min(lo, len(pos)) and sizes.max() <= hi, name
            success = truth.team_success(teams, row[Columns.Event], as_of.date())
            f = team_feature_frame(skills[pos], lab, np.repeat(need[None, :], len(teams), axis=0), teamwork_col=tw)
            result[name] = {"mean_true_success": round(float(success.mean()), 4),
                            "mean_predicted_percentile": round(float(model.predict(f).mean()), 4)}
            means[name].append(float(success.mean()))
        events_out.append(result)
    out["events"] = events_out
    out["mean_true_success"] = {k: round(float(np.mean(v)), 4) for k, v in means.items()}
    return out


def _ndcg_single(rank: int | None) -> float:
    return 0.0 if rank is None or rank > 10 else 1.0 / np.log2(rank + 1)


def bench_rankings(graph: AchievementsGraph, truth: Truth, as_of: pd.Timestamp, n: int, seed: int
                   ) -> dict[str, object]:
    """NDCG@10 of the mentor actually chosen later, and of the teammates actually joined later."""
    past = graph.as_of(as_of)
    model = MentorModel().fit(past)
    teams = team_table(graph)
    chosen = teams[(teams["start_date"] >= as_of) & teams[Columns.Mentor].notna()].head(n)
    popularity = model.record_["mentored_teams"].to_numpy(float)
    mentor_ids = model.mentors_[Columns.Mentor].to_numpy()
    scores: dict[str, list[float]] = {"model": [], "popularity": [], "oracle": []}
    for _, row in chosen.iterrows():
        ranked = rank_mentors(model, past, team_id=row[Columns.Team], k=10, teams=teams)
        hit = np.flatnonzero(ranked[Columns.Mentor].to_numpy() == row[Columns.Mentor])
        scores["model"].append(_ndcg_single(int(hit[0]) + 1 if len(hit) else None))
        reach = reach_matrix(np.array([row["region_code"]], dtype=object), model.mentors_)[0]
        true = truth.mentor_benefit(list(mentor_ids), [row[Columns.Event]] * len(mentor_ids))
        for name, s in (("popularity", popularity), ("oracle", true)):
            order = [j for j in np.argsort(-np.where(reach, s, -np.inf), kind="stable")[:10] if reach[j]]
            top = mentor_ids[order]
            hit = np.flatnonzero(top == row[Columns.Mentor])
            scores[name].append(_ndcg_single(int(hit[0]) + 1 if len(hit) else None))
    mentors_out = {k: round(float(np.mean(v)), 4) for k, v in scores.items()} | {"queries": len(chosen)}

    skills = participant_skills(past)
    ties = former_teammate_pairs(past)
    a = graph.achievements
    fut = a[(a[Columns.Date] >= as_of) & (a["team_idx"] >= 0)]
    rng = np.random.default_rng(seed)
    sample = fut.iloc[rng.permutation(len(fut))[:n]]
    activity = np.bincount(past.achievements["participant_idx"], minlength=graph.n_participants).astype(float)
    school = truth.school
    t_scores: dict[str, list[float]] = {"model": [], "popularity": [], "oracle": []}
    ids = graph.participants[Columns.Participant].astype(str).to_numpy()
    for _, row in sample.iterrows():
        at_event = a[a[Columns.Event] == row[Columns.Event]]
        pool = list(dict.fromkeys(at_event[Columns.Participant].astype(str)))
        mates = set(at_event.loc[at_event["team_idx"] == row["team_idx"], Columns.Participant].astype(str))
        mates.discard(str(row[Columns.Participant]))
        if not mates:
            continue
        ranked = rank_teammates(past, row[Columns.Participant], row[Columns.Event], skills, candidates=pool, k=10,
                                ties=ties)
        p = int(row["participant_idx"])
        cand = graph.participant_positions([c for c in pool if c != row[Columns.Participant]])
        lists = {
            "model": list(ranked[Columns.Participant]),
            "popularity": list(ids[cand[np.argsort(-activity[cand], kind="stable")[:10]]]),
            "oracle": list(ids[cand[np.argsort(-(school[cand] == school[p]).astype(float), kind="stable")[:10]]]),
        }
        ideal = sum(1.0 / np.log2(i + 2) for i in range(min(len(mates), 10)))
        for name, top in lists.items():
            dcg = sum(1.0 / np.log2(i + 2) for i, x in enumerate(top[:10]) if x in mates)
            t_scores[name].append(dcg / ideal)
    teammates_out = {k: round(float(np.mean(v)), 4) for k, v in t_scores.items()} | {
        "queries": len(t_scores["model"]), "oracle_note": "true school grouping the generator forms teams by"}
    return {"mentor_ndcg@10": mentors_out, "teammate_ndcg@10": teammates_out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=Path, default=Path("data/worlds/bench_mentors_teams"))
    parser.add_argument("--participants", type=int, default=40000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--teams", type=int, default=5000)
    parser.add_argument("--registrants", type=int, default=5000)
    parser.add_argument("--ranking-queries", type=int, default=300)
    parser.add_argument("--cut-share", type=float, default=0.6)
    args = parser.parse_args()
    if not (args.world / "aif").is_dir():
        generate_world(SynthConfig(participants=args.participants, seed=args.seed), args.world)
    graph = AchievementsGraph.from_aif(args.world / "aif")
    truth = load_truth(args.world)
    # team_success recomputes true skills on every call; the benchmark asks for one date many times.
    skills_cache: dict[object, np.ndarray] = {}
    true_skills_at = truth.skills_at

    def cached_skills_at(d: object) -> np.ndarray:
        if d not in skills_cache:
            skills_cache[d] = true_skills_at(d)  # type: ignore[arg-type]
        return skills_cache[d]

    setattr(truth, "skills_at", cached_skills_at)  # noqa: B010
    as_of = _cut_date(graph, args.cut_share)
    report: dict[str, object] = {
        "world": {"participants": graph.n_participants, "mentors": len(graph.mentors), "teams": len(graph.teams),
                  "seed": args.seed, "as_of": as_of.date().isoformat()},
    }
    for name, run in (
        ("assignment", lambda: bench_assignment(graph, truth, as_of, args.teams)),
        ("formation", lambda: bench_formation(graph, truth, as_of, args.registrants, args.seed)),
        ("rankings", lambda: bench_rankings(graph, truth, as_of, args.ranking_queries, args.seed)),
    ):
        t0 = time.perf_counter()
        report[name] = run()
        print(f"{name}: {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)
        print(json.dumps({name: report[name]}, default=str), file=sys.stderr, flush=True)
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
