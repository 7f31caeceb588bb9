"""Team features from member skills and ties: competence coverage, strongest and mean fit, diversity, ties."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recommender.columns import Columns
from recommender.graph import AchievementsGraph

TEAM_FEATURES = (
    "size", "mean_fit", "max_fit", "min_fit", "coverage", "complementarity", "teamwork", "diversity", "same_school",
    "former_teammates", "mentor",
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
    members = padded_members(team_of_row, len(event_weights))
    keys = tie_keys(tie_pairs) if tie_pairs and member_ids is not None else None
    values = padded_team_features(
        skills, members, event_weights, teamwork_col=teamwork_col, school=school,
        ids=None if member_ids is None else np.asarray(member_ids, dtype=np.int64), tie_keys=keys, mentor=mentor,
    )
    return pd.DataFrame(values, columns=list(TEAM_FEATURES))


def padded_members(team_of_row: np.ndarray, n_teams: int | None = None) -> np.ndarray:
    """[teams, largest size] of row numbers per team in row order, -1 where a team is shorter."""
    team_of_row = np.asarray(team_of_row, dtype=np.int64)
    n_t = int(team_of_row.max()) + 1 if n_teams is None and len(team_of_row) else int(n_teams or 0)
    counts = np.bincount(team_of_row, minlength=n_t)
    out = np.full((n_t, int(counts.max()) if n_t else 0), -1, dtype=np.int64)
    order = np.argsort(team_of_row, kind="stable")
    slot = np.arange(len(order)) - np.repeat(np.cumsum(counts) - counts, counts)
    out[team_of_row[order], slot] = order
    return out


def tie_keys(pairs: set[tuple[int, int]]) -> np.ndarray:
    """Sorted int64 keys (smaller << 32 | larger) of tie pairs, for vectorized look-ups."""
    if not pairs:
        return np.empty(0, dtype=np.int64)
    arr = np.array(sorted(pairs), dtype=np.int64)
    return np.sort((arr[:, 0] << 32) | arr[:, 1])


def padded_team_features(
    skills: np.ndarray,
    members: np.ndarray,
    event_weights: np.ndarray,
    *,
    teamwork_col: int | None,
    school: np.ndarray | None = None,
    ids: np.ndarray | None = None,
    tie_keys: np.ndarray | None = None,
    mentor: np.ndarray | None = None,
) -> np.ndarray:
    """[teams, TEAM_FEATURES] for teams given as rows of `members` (row numbers into `skills`, -1 = no one).

    event_weights: [competences] (one event for all teams) or [teams, competences]; school: organization
    code per skills row (-1 unknown); ids: the participant position of each skills row, whose pairs are
    looked up in `tie_keys` (see `tie_keys`). Plain array arithmetic over the padded members, so that a
    search can score thousands of candidate teams at once.
    """
    members = np.asarray(members, dtype=np.int64)
    n_t, width = members.shape
    mask = members >= 0
    rows = np.where(mask, members, 0)
    size = mask.sum(axis=1).astype(np.float64)
    if n_t and (size == 0).any():
        raise ValueError("every team needs at least one member")
    weights = np.asarray(event_weights, dtype=np.float64)
    weights = np.broadcast_to(weights, (n_t, weights.shape[-1]))
    # Only the competences some team's event needs enter fit and coverage.
    relevant = np.flatnonzero((weights != 0).any(axis=0))
    w = weights[:, relevant]
    s = np.asarray(skills, dtype=np.float64)[:, relevant][rows]  # [teams, width, relevant]
    fit = np.einsum("tsk,tk->ts", s, w)
    mean_fit = np.where(mask, fit, 0.0).sum(axis=1) / np.maximum(size, 1)
    squares = np.where(mask, fit**2, 0.0).sum(axis=1) / np.maximum(size, 1)
    coverage = (np.where(mask[:, :, None], s, -np.inf).max(axis=1, initial=-np.inf) * w).sum(axis=1)
    if teamwork_col is not None:
        tw = np.asarray(skills, dtype=np.float64)[rows, teamwork_col]
        teamwork = np.where(mask, tw, 0.0).sum(axis=1) / np.maximum(size, 1)
    else:
        teamwork = np.zeros(n_t)
    first, second = np.triu_indices(width, 1)
    both = mask[:, first] & mask[:, second]
    pairs = np.maximum(size * (size - 1) / 2, 1)
    if school is not None:
        sch = np.asarray(school, dtype=np.int64)[rows]
        same = both & (sch[:, first] == sch[:, second]) & (sch[:, first] >= 0)
        same_school = same.sum(axis=1) / pairs
    else:
        same_school = np.zeros(n_t)
    former = np.zeros(n_t)
    if tie_keys is not None and len(tie_keys) and ids is not None and len(first):
        pid = np.asarray(ids, dtype=np.int64)[rows]
        lo = np.minimum(pid[:, first], pid[:, second])
        hi = np.maximum(pid[:, first], pid[:, second])
        key = (lo << 32) | hi
        at = np.minimum(np.searchsorted(tie_keys, key), len(tie_keys) - 1)
        former = (both & (tie_keys[at] == key)).sum(axis=1) / pairs
    return np.column_stack([
        size,
        mean_fit,
        np.where(mask, fit, -np.inf).max(axis=1, initial=-np.inf),
        np.where(mask, fit, np.inf).min(axis=1, initial=np.inf),
        coverage,
        coverage - mean_fit,
        teamwork,
        np.sqrt(np.maximum(squares - mean_fit**2, 0.0)),
        same_school,
        former,
        np.zeros(n_t) if mentor is None else np.asarray(mentor, dtype=np.float64),
    ]).reshape(n_t, len(TEAM_FEATURES))


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


def pair_feature_frame(
    me: np.ndarray,
    partners: np.ndarray,
    event_weights: np.ndarray,
    *,
    teamwork_col: int | None,
    same_school: np.ndarray,
    former_teammates: np.ndarray,
) -> pd.DataFrame:
    """`team_feature_frame` of teams of two, one person with each partner, in plain array arithmetic (a request
    path scores a few pairs: pandas grouping would cost more than the model).

    me: [competences]; partners: [partners, competences]; event_weights: [competences];
    same_school, former_teammates: per partner.
    """
    fit_me = float(me @ event_weights)
    fit = partners @ event_weights
    mean_fit = (fit + fit_me) / 2.0
    squares = (fit**2 + fit_me**2) / 2.0
    coverage = np.maximum(partners, me[None, :]) @ event_weights
    frame = pd.DataFrame({
        "size": np.full(len(partners), 2.0),
        "mean_fit": mean_fit,
        "max_fit": np.maximum(fit, fit_me),
        "min_fit": np.minimum(fit, fit_me),
        "coverage": coverage,
        "complementarity": coverage - mean_fit,
        "teamwork": ((partners[:, teamwork_col] + me[teamwork_col]) / 2.0 if teamwork_col is not None
                     else np.zeros(len(partners))),
        "diversity": np.sqrt(np.maximum(squares - mean_fit**2, 0.0)),
        "same_school": np.asarray(same_school, dtype=np.float64),
        "former_teammates": np.asarray(former_teammates, dtype=np.float64),
        "mentor": np.zeros(len(partners)),
    })
    return frame[list(TEAM_FEATURES)]
