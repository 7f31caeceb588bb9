"""Entity resolution of person records: blocking, pairwise scoring, clustering, confidence and review queue.

A record is one person as one source row saw them (names, birth date, region, school, e-mail).
Candidate pairs come from sorted-neighbourhood blocking on several keys, so the work grows with
the number of records, not its square; each pair gets a log-likelihood style score from the
agreement of its fields and a calibrated confidence in [0, 1]; pairs above the merge threshold are
merged greedily, best first, unless the two groups hold conflicting facts (birth dates, patronymics,
regions: namesakes), and pairs in the grey zone or refused for a conflict go to the review queue.
Reviewer decisions (accept, reject, undo a merge) are constraints of the next run, so every merge
can be taken back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from recommender.identity.normalize import email_key, map_unique, name_key, school_key

# Columns of the record frame `resolve` takes (see `records_from_participants`).
RECORD_ID, SOURCE = "record_id", "source"
NAME_A, NAME_B, MIDDLE = "last_name", "first_name", "middle_name"
BIRTH_DAY = "birth_day"  # int day number since 1970-01-01, -1 unknown
REGION, SCHOOL, EMAIL = "region_code", "organization_id", "email"
RECORD_COLUMNS = (RECORD_ID, SOURCE, NAME_A, NAME_B, MIDDLE, BIRTH_DAY, REGION, SCHOOL, EMAIL)

MERGE, REVIEW = "merge", "review"


class ResolutionConfig(BaseModel):
    """Thresholds and blocking width of a resolution run; defined once, reported with every run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window: int = Field(8, ge=1, le=200)  # neighbours compared in each sorted block
    merge_threshold: float = 8.0  # score from which a pair is merged automatically
    review_threshold: float = 5.5  # score from which a pair not merged goes to the review queue
    workers: int = Field(2, ge=1)  # threads of the string-similarity kernel
    # Confidence = logistic(slope * (score - midpoint)), fitted to the share of true matches per score
    # on the synthetic multi-source benchmark (experiments/benchmarks/bench_entity_resolution.py).
    confidence_midpoint: float = 6.6
    confidence_slope: float = Field(1.8, gt=0)


@dataclass(frozen=True)
class Decision:
    """A reviewer's decision on a pair: `accept` (merge), `reject` or `undo` (never merge these two)."""

    action: str
    left: str
    right: str

    @property
    def pair(self) -> tuple[str, str]:
        return (self.left, self.right) if self.left <= self.right else (self.right, self.left)


@dataclass
class Resolution:
    """The outcome: a participant per record, the merges that made them and the pairs left for review."""

    record_ids: np.ndarray  # object, input order
    participant_ids: np.ndarray  # object, canonical participant id of each record
    confidence: np.ndarray  # float64, confidence that the record belongs to its participant (1 if alone)
    pairs: pd.DataFrame  # merge_id, left, right, score, confidence, decision, evidence columns
    candidate_pairs: int

    @property
    def merges(self) -> pd.DataFrame:
        return self.pairs[self.pairs["decision"] == MERGE].reset_index(drop=True)

    @property
    def review_queue(self) -> pd.DataFrame:
        return self.pairs[self.pairs["decision"] == REVIEW].reset_index(drop=True)

    def record_map(self) -> pd.DataFrame:
        return pd.DataFrame({
            RECORD_ID: pd.array(self.record_ids, dtype="string"),
            "participant_id": pd.array(self.participant_ids, dtype="string"),
            "confidence": np.round(self.confidence, 4),
        })


def pair_id(left: str, right: str) -> str:
    """Stable id of an unordered record pair (the audit trail refers to merges by it)."""
    a, b = (left, right) if left <= right else (right, left)
    return f"{a}~{b}"


def participant_id_for(record_ids: Iterable[str]) -> str:
    """Canonical participant id of a cluster: a hash of its smallest record id (stable across runs)."""
    return "PX" + hashlib.sha1(min(record_ids).encode()).hexdigest()[:14]


# --- features ------------------------------------------------------------------------------------


@dataclass
class _Features:
    n: int
    a: np.ndarray  # int codes of name keys (-1 empty)
    b: np.ndarray
    m: np.ndarray
    keys: np.ndarray  # object: the distinct name keys, indexed by the codes above
    sorted_name: np.ndarray  # int code of the order-free name (both tokens sorted), lexicographic order
    day: np.ndarray
    year: np.ndarray
    month: np.ndarray
    dom: np.ndarray
    region: np.ndarray
    school: np.ndarray
    email: np.ndarray


def _codes(values: np.ndarray, *, sort: bool = False) -> np.ndarray:
    """Integer codes of non-empty keys, -1 for empty."""
    series = pd.Series(values, dtype=object).replace("", None)
    codes, _ = pd.factorize(series, sort=sort, use_na_sentinel=True)
    return codes.astype(np.int64)


def _features(records: pd.DataFrame) -> _Features:
    n = len(records)
    a = map_unique(records[NAME_A], name_key)
    b = map_unique(records[NAME_B], name_key)
    m = map_unique(records[MIDDLE], name_key)
    all_keys = np.concatenate([a, b, m])
    codes, uniques = pd.factorize(pd.Series(all_keys, dtype=object).replace("", None), use_na_sentinel=True)
    lo = np.where(a <= b, a, b)
    hi = np.where(a <= b, b, a)
    sorted_name = _codes(np.char.add(np.char.add(lo.astype(str), " "), hi.astype(str)).astype(object), sort=True)
    day = pd.to_numeric(records[BIRTH_DAY], errors="coerce").fillna(-1).to_numpy(dtype=np.int64)
    known = day >= 0
    dates = np.where(known, day, 0).astype("datetime64[D]")
    year = np.where(known, dates.astype("datetime64[Y]").astype(np.int64), -1)
    year = np.where(known, year + 1970, -1)
    month = np.where(known, dates.astype("datetime64[M]").astype(np.int64) % 12 + 1, -1)
    dom = np.where(known, (dates - dates.astype("datetime64[M]")).astype(np.int64) + 1, -1)
    region_text = records[REGION].astype("string").fillna("").to_numpy(dtype=object)
    school_text = map_unique(records[SCHOOL], school_key)
    school_scoped = np.where(school_text != "", np.char.add(region_text.astype(str), school_text.astype(str)), "")
    return _Features(
        n=n,
        a=codes[:n].astype(np.int64),
        b=codes[n : 2 * n].astype(np.int64),
        m=codes[2 * n :].astype(np.int64),
        keys=np.asarray(uniques, dtype=object),
        sorted_name=sorted_name,
        day=day,
        year=year,
        month=month,
        dom=dom,
        region=_codes(region_text),
        school=_codes(school_scoped.astype(object)),
        email=_codes(map_unique(records[EMAIL], email_key)),
    )


# --- blocking ------------------------------------------------------------------------------------


def _combine(*codes: np.ndarray) -> np.ndarray:
    """One int64 block code from several (-1 when any part is unknown)."""
    out = np.zeros(len(codes[0]), dtype=np.int64)
    unknown = np.zeros(len(codes[0]), dtype=bool)
    for c in codes:
        unknown |= c < 0
        out = out * (int(c.max(initial=0)) + 2) + (c + 1)
    out[unknown] = -1
    return out


def _neighbours(block: np.ndarray, order: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of records in the same block at most `window` apart when sorted by `order` within it."""
    idx = np.flatnonzero(block >= 0)
    idx = idx[np.lexsort((order[idx], block[idx]))]
    blocks = block[idx]
    lefts, rights = [], []
    for off in range(1, min(window, len(idx) - 1) + 1):
        same = blocks[off:] == blocks[:-off]
        lefts.append(idx[:-off][same])
        rights.append(idx[off:][same])
    if not lefts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(lefts), np.concatenate(rights)


def _candidates(f: _Features, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct candidate pairs (i < j) from every blocking key."""
    passes = (
        (f.email, f.sorted_name),  # the same address
        (f.day, f.sorted_name),  # the same birth date, neighbouring names (typos after the first letters)
        (_combine(f.day, f.region), f.sorted_name),
        (_combine(f.sorted_name, f.region), _combine(f.school, f.day + 1)),  # birth date unknown or mistyped
        (_combine(f.sorted_name, f.year), f.day),
        (_combine(f.school, f.a), f.b),  # the same school and surname (both names mistyped elsewhere)
        (_combine(f.school, f.b), f.a),
    )
    keys = []
    for block, order in passes:
        left, right = _neighbours(block, order, window)
        lo, hi = np.minimum(left, right), np.maximum(left, right)
        keys.append(lo * f.n + hi)
    unique = np.sort(np.concatenate(keys)) if keys else np.zeros(0, np.int64)
    unique = unique[np.r_[True, unique[1:] != unique[:-1]]] if len(unique) else unique
    return unique // f.n, unique % f.n


# --- scoring -------------------------------------------------------------------------------------


def _similarity(keys: np.ndarray, x: np.ndarray, y: np.ndarray, workers: int) -> np.ndarray:
    """Jaro-Winkler similarity of name codes x[i] and y[i] (NaN when either is empty), per distinct pair."""
    from rapidfuzz.distance import JaroWinkler
    from rapidfuzz.process import cpdist

    out = np.full(len(x), np.nan)
    ok = (x >= 0) & (y >= 0)
    if not ok.any():
        return out
    width = int(max(x.max(), y.max())) + 1
    combined = np.minimum(x[ok], y[ok]) * width + np.maximum(x[ok], y[ok])
    unique, inverse = np.unique(combined, return_inverse=True)
    qa, qb = keys[unique // width], keys[unique % width]
    sims = cpdist(list(qa), list(qb), scorer=JaroWinkler.normalized_similarity, workers=workers, dtype=np.float64)
    out[ok] = np.asarray(sims)[inverse.ravel()]
    return out


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    return np.stack([(values // 10**k) % 10 for k in range(width)], axis=1)


def _near_dates(f: _Features, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Birth dates one keystroke apart: one digit of DD.MM.YYYY differs, or day and month swapped."""
    differing = (
        (_digits(f.dom[i], 2) != _digits(f.dom[j], 2)).sum(axis=1)
        + (_digits(f.month[i], 2) != _digits(f.month[j], 2)).sum(axis=1)
        + (_digits(f.year[i], 4) != _digits(f.year[j], 4)).sum(axis=1)
    )
    swapped = (f.year[i] == f.year[j]) & (f.month[i] == f.dom[j]) & (f.dom[i] == f.month[j])
    return (differing == 1) | swapped


def _score(f: _Features, i: np.ndarray, j: np.ndarray, workers: int) -> pd.DataFrame:
    """Evidence of each pair and its score (sum of field weights: agreement adds, disagreement takes)."""

    def sim(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return _similarity(f.keys, x, y, workers)

    def pair_mean(s1: np.ndarray, s2: np.ndarray) -> np.ndarray:
        """Mean of the two name similarities, or the one that is known (NaN when neither is)."""
        return np.where(np.isnan(s1), s2, np.where(np.isnan(s2), s1, (s1 + s2) / 2))

    # Names are compared in both orders: sources swap first and last names.
    straight = pair_mean(sim(f.a[i], f.a[j]), sim(f.b[i], f.b[j]))
    swapped = pair_mean(sim(f.a[i], f.b[j]), sim(f.b[i], f.a[j]))
    name = np.fmax(straight, swapped)
    name = np.where(np.isnan(name), 0.0, name)
    middle = sim(f.m[i], f.m[j])

    both_day = (f.day[i] >= 0) & (f.day[j] >= 0)
    same_day = both_day & (f.day[i] == f.day[j])
    near_day = both_day & ~same_day & _near_dates(f, i, j)
    both_email = (f.email[i] >= 0) & (f.email[j] >= 0)
    same_email = both_email & (f.email[i] == f.email[j])
    both_region = (f.region[i] >= 0) & (f.region[j] >= 0)
    same_region = both_region & (f.region[i] == f.region[j])
    both_school = (f.school[i] >= 0) & (f.school[j] >= 0)
    same_school = both_school & (f.school[i] == f.school[j])

    score = np.clip(25.0 * (name - 0.88), -12.0, 3.0)
    score += np.where(np.isnan(middle), 0.0, np.clip(12.0 * (np.nan_to_num(middle) - 0.85), -4.0, 1.8))
    score += np.where(same_day, 6.0, np.where(near_day, 2.0, np.where(both_day, -8.0, 0.0)))
    score += np.where(same_email, 7.0, np.where(both_email, -1.0, 0.0))
    score += np.where(same_region, 0.5, np.where(both_region, -1.5, 0.0))
    score += np.where(same_school, 3.0, np.where(both_school, -0.5, 0.0))
    return pd.DataFrame({
        "i": i,
        "j": j,
        "score": np.round(score, 4),
        "name_similarity": np.round(name, 4),
        "middle_similarity": np.round(middle, 4),
        "same_birth_date": same_day,
        "near_birth_date": near_day,
        "same_email": same_email,
        "same_region": same_region,
        "same_school": same_school,
    })


def confidence_of(score: np.ndarray, cfg: ResolutionConfig) -> np.ndarray:
    """Confidence that a pair is one person: a logistic of the score calibrated on known identities."""
    z = cfg.confidence_slope * (np.asarray(score, dtype=np.float64) - cfg.confidence_midpoint)
    return 1.0 / (1.0 + np.exp(-z))


def _promising(f: _Features, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Pairs that could reach the review threshold with perfect names (the cheap filter before strings)."""
    both_day = (f.day[i] >= 0) & (f.day[j] >= 0)
    close_day = both_day & ((f.day[i] == f.day[j]) | _near_dates(f, i, j))
    same_email = (f.email[i] >= 0) & (f.email[i] == f.email[j])
    same_school = (f.school[i] >= 0) & (f.school[i] == f.school[j])
    return close_day | same_email | (~both_day & same_school)


# --- the run -------------------------------------------------------------------------------------


def resolve(
    records: pd.DataFrame,
    cfg: ResolutionConfig | None = None,
    decisions: Sequence[Decision] = (),
    anchors: np.ndarray | None = None,
) -> Resolution:
    """Cluster `records` (RECORD_COLUMNS) into participants under the reviewer `decisions`.

    `anchors` marks records that are participants already in the store (their record id is the
    participant id): a cluster holding one keeps its id, and two are never merged into one.
    """
    cfg = cfg or ResolutionConfig()
    missing = [c for c in RECORD_COLUMNS if c not in records.columns]
    if missing:
        raise ValueError(f"record frame lacks columns: {', '.join(missing)}")
    record_ids = records[RECORD_ID].astype(str).to_numpy(dtype=object)
    if len(pd.unique(record_ids)) != len(record_ids):
        raise ValueError("record ids must be unique")
    n = len(records)
    f = _features(records.reset_index(drop=True))
    i, j = _candidates(f, cfg.window)
    candidate_pairs = len(i)
    keep = _promising(f, i, j)
    pairs = _score(f, i[keep], j[keep], cfg.workers)

    position = pd.Index(record_ids)
    forced = _decided_pairs(decisions, position)
    pairs = _apply_decisions(pairs, forced)
    pairs["confidence"] = np.round(confidence_of(pairs["score"].to_numpy(), cfg), 6)
    pairs.loc[pairs["decided_by"] == "accept", "confidence"] = 1.0  # a person said so
    decision = np.where(pairs["score"] >= cfg.merge_threshold, MERGE, np.where(
        pairs["score"] >= cfg.review_threshold, REVIEW, ""))
    decided = pairs["decided_by"].to_numpy(dtype=object)
    decision = np.where(decided == "accept", MERGE, np.where(np.isin(decided, ["reject", "undo"]), "", decision))
    pairs["decision"] = decision
    pairs = pairs[pairs["decision"] != ""].reset_index(drop=True)
    decided = pairs["decided_by"].to_numpy(dtype=object)

    anchored = np.zeros(n, dtype=bool) if anchors is None else np.asarray(anchors, dtype=bool)
    labels, refused = _cluster(f, pairs, decided, anchored)
    # A merge that would put two people with conflicting facts together waits for a reviewer instead.
    pairs.loc[refused, "decision"] = REVIEW
    pairs["conflict"] = refused
    pairs = pairs.reset_index(drop=True)
    # A review pair whose records ended up together through other merges needs no reviewer.
    together = labels[pairs["i"].to_numpy()] == labels[pairs["j"].to_numpy()]
    pairs = pairs[~((pairs["decision"] == REVIEW).to_numpy() & together)].reset_index(drop=True)
    merged = pairs[pairs["decision"] == MERGE]
    # Canonical id per cluster from its smallest record id; confidence = weakest merge it took part in.
    frame = pd.DataFrame({"label": labels, "record": record_ids})
    smallest = frame.groupby("label")["record"].min()
    ids = np.array([participant_id_for([r]) for r in smallest.to_numpy()], dtype=object)
    participant_ids = ids[np.searchsorted(smallest.index.to_numpy(), labels)]
    if anchored.any():
        # A cluster with a stored participant keeps that participant's id (at most one per cluster).
        stored = pd.Series(record_ids[anchored], index=labels[anchored])
        mapped = stored[~stored.index.duplicated()].reindex(labels).to_numpy(dtype=object)
        participant_ids = np.where(pd.isna(mapped), participant_ids, mapped)
    confidence = np.ones(n)
    if len(merged):
        conf = merged["confidence"].to_numpy()
        np.minimum.at(confidence, merged["i"].to_numpy(), conf)
        np.minimum.at(confidence, merged["j"].to_numpy(), conf)

    left = record_ids[pairs["i"].to_numpy()]
    right = record_ids[pairs["j"].to_numpy()]
    pairs.insert(0, "right", pd.array(right, dtype="string"))
    pairs.insert(0, "left", pd.array(left, dtype="string"))
    lo = np.where(left <= right, left, right)
    hi = np.where(left <= right, right, left)
    pairs.insert(0, "merge_id", pd.Series(lo, dtype="string") + "~" + pd.Series(hi, dtype="string"))
    pairs = pairs.drop(columns=["i", "j"])
    return Resolution(record_ids, participant_ids, confidence, pairs, candidate_pairs)


class _Clusters:
    """Union-find over records that refuses a union joining conflicting facts.

    Two groups conflict when both know a birth date and no pair of them is equal or one keystroke
    apart, when both know a patronymic and none is alike, or when both know regions and share none.
    Greedy merging in descending score order then keeps a namesake born the same day elsewhere
    from chaining two children into one.
    """

    def __init__(self, f: _Features, anchors: np.ndarray):
        self.f = f
        self.parent = list(range(f.n))
        # Participants already in the store: two of them are never merged here (the store keeps both).
        self.anchored = set(np.flatnonzero(anchors).tolist())
        self.births: dict[int, tuple[int, ...]] = {}
        self.middles: dict[int, tuple[int, ...]] = {}
        self.regions: dict[int, tuple[int, ...]] = {}

    def find(self, x: int) -> int:
        parent = self.parent
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    def _facts(self, root: int) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        if root not in self.births:
            f = self.f
            self.births[root] = (int(f.day[root]),) if f.day[root] >= 0 else ()
            self.middles[root] = (int(f.m[root]),) if f.m[root] >= 0 else ()
            self.regions[root] = (int(f.region[root]),) if f.region[root] >= 0 else ()
        return self.births[root], self.middles[root], self.regions[root]

    def conflict(self, a: int, b: int) -> bool:
        if a in self.anchored and b in self.anchored:
            return True
        ba, ma, ra = self._facts(a)
        bb, mb, rb = self._facts(b)
        if ra and rb and not set(ra) & set(rb):
            return True
        if ba and bb and not any(x == y or _near_day_numbers(x, y) for x in ba for y in bb):
            return True
        if ma and mb and not set(ma) & set(mb):
            from rapidfuzz.distance import JaroWinkler

            keys = self.f.keys
            if not any(JaroWinkler.normalized_similarity(keys[x], keys[y]) >= 0.85 for x in ma for y in mb):
                return True
        return False

    def union(self, a: int, b: int) -> None:
        facts_a, facts_b = self._facts(a), self._facts(b)
        self.parent[b] = a
        if b in self.anchored:
            self.anchored.discard(b)
            self.anchored.add(a)
        for store, x, y in zip((self.births, self.middles, self.regions), facts_a, facts_b, strict=True):
            store[a] = tuple(sorted(set(x) | set(y))) if y else x
            del store[b]


def _near_day_numbers(x: int, y: int) -> bool:
    a = np.datetime64(x, "D").astype(object)
    b = np.datetime64(y, "D").astype(object)
    da, db = f"{a.day:02d}{a.month:02d}{a.year:04d}", f"{b.day:02d}{b.month:02d}{b.year:04d}"
    return sum(p != q for p, q in zip(da, db, strict=True)) == 1 or (
        a.year == b.year and a.month == b.day and a.day == b.month
    )


def _cluster(
    f: _Features, pairs: pd.DataFrame, decided: np.ndarray, anchors: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Cluster label of every record, and which merge pairs were refused for a conflict."""
    merge = pairs["decision"].to_numpy(dtype=object) == MERGE
    accepted = decided == "accept"
    # Reviewer-accepted pairs first (they override conflicts), then by score, best first.
    priority = np.where(accepted, np.inf, pairs["score"].to_numpy(dtype=np.float64))
    order = np.flatnonzero(merge)
    order = order[np.argsort(-priority[order], kind="stable")]
    clusters = _Clusters(f, anchors)
    refused = np.zeros(len(pairs), dtype=bool)
    left = pairs["i"].to_numpy()
    right = pairs["j"].to_numpy()
    for k in order.tolist():
        a, b = clusters.find(int(left[k])), clusters.find(int(right[k]))
        if a == b:
            continue
        if not accepted[k] and clusters.conflict(a, b):
            refused[k] = True
            continue
        clusters.union(a, b)
    labels = np.fromiter((clusters.find(x) for x in range(f.n)), dtype=np.int64, count=f.n)
    return labels, refused


def _decided_pairs(decisions: Sequence[Decision], position: pd.Index) -> dict[tuple[int, int], str]:
    """The last decision on each pair of known records, by record positions (i < j)."""
    out: dict[tuple[int, int], str] = {}
    for d in decisions:
        if d.action not in ("accept", "reject", "undo"):
            raise ValueError(f"unknown decision {d.action!r}")
        a, b = position.get_indexer([d.left, d.right])
        if a < 0 or b < 0 or a == b:
            continue  # a decision about records not in this run
        out[(min(a, b), max(a, b))] = d.action
    return out


def _apply_decisions(pairs: pd.DataFrame, forced: dict[tuple[int, int], str]) -> pd.DataFrame:
    pairs = pairs.copy()
    pairs["decided_by"] = "auto"
    if not forced:
        return pairs
    index = {(int(a), int(b)): k for k, (a, b) in enumerate(zip(pairs["i"], pairs["j"], strict=True))}
    decided = pairs["decided_by"].to_numpy(dtype=object)
    extra = []
    for (a, b), action in forced.items():
        k = index.get((a, b))
        if k is None:
            if action == "accept":  # a pair blocking never proposed, merged by hand
                extra.append({"i": a, "j": b, "score": np.nan, "decided_by": action})
            continue
        decided[k] = action
    pairs["decided_by"] = decided
    if extra:
        pairs = pd.concat([pairs, pd.DataFrame(extra)], ignore_index=True)
    return pairs


def pair_quality(participant_ids: np.ndarray, truth_ids: np.ndarray) -> dict[str, float | int]:
    """Pairwise precision and recall of a clustering against the true person of each record."""
    pred = pd.factorize(pd.Series(participant_ids, dtype=object))[0].astype(np.int64)
    true = pd.factorize(pd.Series(truth_ids, dtype=object))[0].astype(np.int64)

    def pairs(counts: np.ndarray) -> int:
        c = counts.astype(np.int64)
        return int((c * (c - 1) // 2).sum())

    both = pred * (int(true.max(initial=0)) + 1) + true
    tp = pairs(np.unique(both, return_counts=True)[1])
    predicted = pairs(np.bincount(pred))
    actual = pairs(np.bincount(true))
    return {
        "true_pairs": actual,
        "predicted_pairs": predicted,
        "correct_pairs": tp,
        "precision": tp / predicted if predicted else 1.0,
        "recall": tp / actual if actual else 1.0,
    }
