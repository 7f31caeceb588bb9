"""Team features from member skills and ties: competence coverage, strongest and mean fit, diversity, ties."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recommender.columns import Columns
from recommender.graph import AchievementsGraph

TEAM_FEATURES = (
    "size", "mean_fit", "max_fit", "min_fit", "coverage", "teamwork", "diversity", "same_school", "former_teammates",
    "mentor",
)


def team_feature_frame(
    skills: np.ndarray,
    team_of_row: np.ndarray,
    event_weights: np.ndarray,
    *,
    teamwork_col: int | None,
    school: np.ndarray | None = None,
    tie_pairs: set[tuple[int, int]] | None = None,
    member_ids: np.ndarray | None = None,
    mentor: np.ndarray | None = None,
) -> pd.DataFrame:
    """One feature row per team (teams numbered 0..T-1 in `team_of_row`).

    skills: [members, competences]; event_weights: [T, competences] (each team's event needs);
    school: organization code per member row (-1 unknown); tie_pairs: pairs of member ids that were
    teammates before; member_ids: participant position per member row (for tie_pairs).
    """
    team_of_row = np.asarray(team_of_row, dtype=np.int64)
    n_t = len(event_weights)
    order = np.argsort(team_of_row, kind="stable")
    t_sorted = team_of_row[order]
    s = skills[order]
    counts = np.bincount(t_sorted, minlength=n_t)
    if (counts == 0).any():
        raise ValueError("every team needs at least one member")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    w = event_weights[t_sorted]
    fit = (s * w).sum(axis=1)
    mean_fit = np.add.reduceat(fit, starts) / counts
    coverage = (np.maximum.reduceat(s, starts, axis=0) * event_weights).sum(axis=1)
    teamwork = (np.add.reduceat(s[:, teamwork_col], starts) / counts) if teamwork_col is not None else np.zeros(n_t)
    sq = np.add.reduceat(fit**2, starts) / counts
    frame = pd.DataFrame({
        "size": counts.astype(np.float64),
        "mean_fit": mean_fit,
        "max_fit": np.maximum.reduceat(fit, starts),
        "min_fit": np.minimum.reduceat(fit, starts),
        "coverage": coverage,
        "teamwork": teamwork,
        "diversity": np.sqrt(np.maximum(sq - mean_fit**2, 0.0)),
    })
    pairs = np.maximum(counts * (counts - 1) / 2, 1)
    if school is not None:
        sch = np.asarray(school)[order]
        same = np.zeros(n_t)
        frame_s = pd.DataFrame({"t": t_sorted, "s": sch})
        frame_s = frame_s[frame_s["s"] >= 0]
        c = frame_s.groupby(["t", "s"]).size()
        np.add.at(same, c.index.get_level_values(0).to_numpy(), (c * (c - 1) / 2).to_numpy())
        frame["same_school"] = same / pairs
    else:
        frame["same_school"] = 0.0
    former = np.zeros(n_t)
    if tie_pairs and member_ids is not None:
        mids = np.asarray(member_ids)[order]
        for t in range(n_t):
            m = mids[starts[t]:starts[t] + counts[t]]
            former[t] = sum((min(int(a), int(b)), max(int(a), int(b))) in tie_pairs
                            for i, a in enumerate(m) for b in m[i + 1:])
    frame["former_teammates"] = former / pairs
    frame["mentor"] = (np.zeros(n_t) if mentor is None else np.asarray(mentor, dtype=np.float64))
    return frame[list(TEAM_FEATURES)]


def school_codes(graph: AchievementsGraph) -> np.ndarray:
    """Organization code per participant (-1 when unknown)."""
    if Columns.Organization not in graph.participants.columns:
        return np.full(graph.n_participants, -1, dtype=np.int64)
    codes, _ = pd.factorize(graph.participants[Columns.Organization].astype("string"), use_na_sentinel=True)
    return codes.astype(np.int64)


def former_teammate_pairs(graph: AchievementsGraph) -> set[tuple[int, int]]:
    """Pairs (smaller, larger participant position) that were on a team together."""
    a = graph.achievements[graph.achievements["team_idx"] >= 0][["participant_idx", "team_idx"]].drop_duplicates()
    pairs: set[tuple[int, int]] = set()
    for members in a.groupby("team_idx")["participant_idx"].agg(list):
        m = sorted(int(x) for x in members)
        pairs.update((m[i], b) for i in range(len(m)) for b in m[i + 1:])
    return pairs
