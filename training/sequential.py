"""A SASRec-style transformer over each participant's ordered history, scoring events composed from their content.

Upcoming events are new: no one has taken them yet. So an event's embedding is never an id
lookup alone; it is composed of what it shares with past events — its series (when the series
was seen), a projection of its competence weights, its level, format, organizer and reach
(region or online). The network reads the history (events plus results, oldest first, behind a
start token carrying grade and settlement) with causal attention and is trained on next-event
prediction: a sampled softmax of the true next event against events reachable by the same
participant and starting around the same time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from features.event_content import event_attributes, rows_normalized
from features.histories import RESULT_CODES, Histories, participant_histories
from features.series import series_map
from recommender.columns import EVENT_FORMATS, LEVELS, Columns
from recommender.graph import AchievementsGraph, academic_year
from recommender.models import EventRecommender

GRADES = 20  # 0 unknown, 1..19
SETTLEMENTS = {"city": 1, "town": 2, "rural": 3}  # 0 unknown


class SequentialConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    d_model: int = Field(48, ge=8, le=256)
    heads: int = Field(2, ge=1, le=8)
    layers: int = Field(1, ge=1, le=4)
    max_history: int = Field(24, ge=1, le=200, description="latest steps read per participant")
    epochs: int = Field(4, ge=1, le=100, description="more scored worse offline: the sampled objective overfits")
    batch_size: int = Field(256, ge=8)
    learning_rate: float = Field(3e-3, gt=0)
    weight_decay: float = Field(1e-5, ge=0)
    dropout: float = Field(0.1, ge=0, lt=1)
    negatives: int = Field(64, ge=1, description="sampled negatives per predicted step")
    negative_window_days: int = Field(60, ge=1, description="negatives start within this many days of the positive")
    series_dropout: float = Field(0.3, ge=0, le=1, description="share of candidates scored without their series")
    threads: int = Field(1, ge=1, description="torch threads; more spin and slow down on a busy 2-core machine")
    seed: int = 0


@contextmanager
def _torch_session(seed: int, threads: int) -> Iterator[None]:
    """Seeded, deterministic, thread-limited torch without disturbing the caller's global settings."""
    old_threads = torch.get_num_threads()
    old_deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_deterministic)


class _Vocabulary:
    """Fit-time vocabularies mapping any graph's events to embedding indices (0: unknown / not learned)."""

    def __init__(self, graph: AchievementsGraph) -> None:
        self.series = series_map(graph)
        taken = np.zeros(self.series.n_series, dtype=bool)
        taken[self.series.of_event[graph.achievements["event_idx"].to_numpy()]] = True
        self.series_taken = taken
        attrs = event_attributes(graph)
        self.organizers = pd.Index(sorted(set(attrs.organizer.tolist()) - {""}))
        self.regions = pd.Index(sorted(set(attrs.region.tolist()) - {""}))
        self.competences = graph.competence_index.copy()

    def codes(self, graph: AchievementsGraph) -> dict[str, torch.Tensor]:
        attrs = event_attributes(graph)
        s = self.series.project(graph).of_event
        seen = s >= 0
        seen[seen] &= self.series_taken[s[seen]]
        series = np.where(seen, s + 1, 0)
        organizer = self.organizers.get_indexer(attrs.organizer) + 1  # unknown -> 0
        region = np.where(attrs.online, 0, np.maximum(self.regions.get_indexer(attrs.region) + 2, 1))
        ec = rows_normalized(graph.event_competence()).toarray()
        columns = pd.Index(graph.competence_index).get_indexer(self.competences)
        competence = np.zeros((graph.n_events, len(self.competences)), dtype=np.float32)
        present = columns >= 0
        competence[:, present] = ec[:, columns[present]]
        return {
            "series": torch.tensor(series, dtype=torch.long),
            "organizer": torch.tensor(organizer, dtype=torch.long),
            "region": torch.tensor(region, dtype=torch.long),
            "level": torch.tensor(attrs.level, dtype=torch.long),
            "format": torch.tensor(attrs.format, dtype=torch.long),
            "competence": torch.tensor(competence),
        }

    def sizes(self) -> dict[str, int]:
        return {"series": self.series.n_series, "organizers": len(self.organizers), "regions": len(self.regions),
                "competences": len(self.competences)}


class _Network(nn.Module):
    def __init__(self, sizes: dict[str, int], cfg: SequentialConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.series = nn.Embedding(sizes["series"] + 1, d, padding_idx=0)
        self.organizer = nn.Embedding(sizes["organizers"] + 1, d, padding_idx=0)
        self.region = nn.Embedding(sizes["regions"] + 2, d)
        self.level = nn.Embedding(len(LEVELS), d)
        self.format = nn.Embedding(len(EVENT_FORMATS), d)
        self.competence = nn.Linear(sizes["competences"], d, bias=False)
        self.result = nn.Embedding(len(RESULT_CODES) + 1, d)
        self.position = nn.Embedding(cfg.max_history + 1, d)
        self.grade = nn.Embedding(GRADES, d)
        self.settlement = nn.Embedding(len(SETTLEMENTS) + 1, d)
        self.start = nn.Parameter(torch.randn(d) * 0.02)
        layer = nn.TransformerEncoderLayer(
            d, cfg.heads, dim_feedforward=2 * d, dropout=cfg.dropout, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        for emb in (self.series, self.organizer, self.region, self.level, self.format, self.result, self.position,
                    self.grade, self.settlement):
            nn.init.normal_(emb.weight, std=0.05)
        with torch.no_grad():
            self.series.weight[0].zero_()
            self.organizer.weight[0].zero_()

    def content(self, codes: dict[str, torch.Tensor]) -> torch.Tensor:
        """Event embeddings without the series part: all a never-seen series has."""
        return (self.competence(codes["competence"]) + self.level(codes["level"]) + self.format(codes["format"])
                + self.organizer(codes["organizer"]) + self.region(codes["region"]))

    def states(self, table: torch.Tensor, events: torch.Tensor, results: torch.Tensor, grade: torch.Tensor,
               settlement: torch.Tensor) -> torch.Tensor:
        """[B, T+1, d]: the state after the start token and after each step (T = history slots)."""
        t = events.shape[1]
        real = events >= 0
        steps = table[events.clamp(min=0)] * real[..., None] + self.result(results)
        first = (self.start + self.grade(grade) + self.settlement(settlement))[:, None, :]
        x = torch.cat([first, steps], dim=1) + self.position.weight[: t + 1][None]
        causal = torch.triu(torch.ones(t + 1, t + 1, dtype=torch.bool), diagonal=1)
        return self.norm(self.encoder(x, mask=causal))


def _grades(values: np.ndarray) -> np.ndarray:
    return np.clip(np.round(np.nan_to_num(values, nan=0.0)), 0, GRADES - 1).astype(np.int64)


def _settlements(graph: AchievementsGraph, participants: np.ndarray) -> np.ndarray:
    if "settlement_type" not in graph.participants.columns:
        return np.zeros(len(participants), dtype=np.int64)
    kinds = graph.participants["settlement_type"].astype("string").map(SETTLEMENTS).fillna(0)
    return kinds.to_numpy(dtype=np.int64)[participants]


class _NegativeSampler:
    """Events a participant could reach (own region or online) starting near a given day."""

    def __init__(self, graph: AchievementsGraph, regions: pd.Index, window_days: int) -> None:
        attrs = event_attributes(graph)
        start = graph.events[Columns.StartDate].to_numpy().astype("datetime64[D]").astype(np.int64)
        region_of_event = regions.get_indexer(attrs.region)
        pools, keys = [], []
        span = int(start.max() - start.min()) + 4 * window_days + 1 if len(start) else 1
        self.span = span
        self.base = int(start.min()) - 2 * window_days if len(start) else 0
        for r in range(-1, len(regions)):  # -1: a participant of unknown region reaches online events only
            members = np.flatnonzero(attrs.online | ((region_of_event == r) & (r >= 0)))
            members = members[np.argsort(start[members], kind="stable")]
            pools.append(members)
            keys.append((r + 1) * span + (start[members] - self.base))
        self.pool = np.concatenate(pools)
        self.keys = np.concatenate(keys)
        self.start = start
        self.window = window_days
        self.n_events = graph.n_events

    def sample(self, region: np.ndarray, targets: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """[len(targets), n] negatives; region is the participant's region position (-1 unknown)."""
        day = self.start[targets] - self.base
        lo = np.searchsorted(self.keys, (region + 1) * self.span + day - self.window, side="left")
        hi = np.searchsorted(self.keys, (region + 1) * self.span + day + self.window, side="right")
        width = hi - lo
        pick = lo[:, None] + np.floor(rng.random((len(targets), n)) * width[:, None]).astype(np.int64)
        out = self.pool[np.minimum(pick, len(self.pool) - 1)]
        empty = width == 0
        if empty.any():
            out[empty] = rng.integers(0, self.n_events, size=(int(empty.sum()), n))
        return out


def _length_buckets(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of histories of similar length: little padding, most histories are short."""
    order = rng.permutation(len(lengths))
    chunk = batch_size * 32
    batches = []
    for at in range(0, len(order), chunk):
        part = order[at : at + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches += [part[i : i + batch_size] for i in range(0, len(part), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


class SequentialRecommender(EventRecommender):
    """Next event from the ordered history (SASRec-style), events embedded through what they share with past ones.

    Participants are read from their current history at every call (a new achievement counts at
    once); a participant with no history is read from the start token alone (grade, settlement).
    """

    name = "sequential_transformer"

    def __init__(self, config: SequentialConfig | None = None) -> None:
        self.config = config or SequentialConfig()

    # ---- training -----------------------------------------------------------------------------
    def _fit(self, graph: AchievementsGraph) -> None:
        cfg = self.config
        self.vocabulary_ = _Vocabulary(graph)
        self.sizes_ = self.vocabulary_.sizes()
        p_regions = self._participant_regions(graph)
        taken = np.unique(graph.achievements["participant_idx"].to_numpy())
        hist = participant_histories(graph, taken, cfg.max_history)
        reference = graph.cutoff or graph.achievements[Columns.Date].max()
        grade_then = self._grades_at_steps(graph, hist, pd.Timestamp(reference))
        sampler = _NegativeSampler(graph, self.vocabulary_.regions, cfg.negative_window_days)
        rng = np.random.default_rng(cfg.seed)
        with _torch_session(cfg.seed, cfg.threads):
            network = _Network(self.sizes_, cfg)
            codes = self.vocabulary_.codes(graph)
            optimizer = torch.optim.AdamW(network.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
            settlement = _settlements(graph, hist.participants)
            network.train()
            losses = []
            for _ in range(cfg.epochs):
                total, batches = 0.0, 0
                for rows in _length_buckets(hist.lengths, cfg.batch_size, rng):
                    loss = self._batch_loss(network, codes, hist, rows, grade_then[rows], settlement[rows],
                                            p_regions[hist.participants[rows]], sampler, rng)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    total += float(loss.detach())
                    batches += 1
                losses.append(total / max(batches, 1))
            network.eval()
        self.network_ = network
        self.epoch_losses_ = losses

    def _batch_loss(self, network: _Network, codes: dict[str, torch.Tensor], hist: Histories, rows: np.ndarray,
                    grade: np.ndarray, settlement: np.ndarray, regions: np.ndarray, sampler: _NegativeSampler,
                    rng: np.random.Generator) -> torch.Tensor:
        cfg = self.config
        t = int(hist.lengths[rows].max())
        events = hist.events[rows, :t]
        # The state after the start token and steps 1..t-1 predicts steps 1..t.
        target_mask = events >= 0
        tr, tc = np.nonzero(target_mask)
        targets = events[tr, tc]
        negatives = sampler.sample(regions[tr], targets, cfg.negatives, rng)
        candidates = np.concatenate([targets[:, None], negatives], axis=1)
        content = network.content(codes)
        keep = rng.random(candidates.shape) >= cfg.series_dropout
        cand = torch.tensor(candidates)
        emb = content[cand] + network.series(codes["series"][cand]) * torch.tensor(keep)[..., None]
        table = content + network.series(codes["series"])
        states = network.states(table, torch.tensor(events[:, : t - 1]), torch.tensor(hist.results[rows, : t - 1]),
                                torch.tensor(grade), torch.tensor(settlement))
        state = states[torch.tensor(tr), torch.tensor(tc)]
        logits = torch.einsum("nd,nkd->nk", state, emb)
        clash = torch.tensor(negatives == targets[:, None])
        logits[:, 1:] = logits[:, 1:].masked_fill(clash, float("-inf"))
        return nn.functional.cross_entropy(logits, torch.zeros(len(targets), dtype=torch.long))

    # ---- inputs -------------------------------------------------------------------------------
    def _participant_regions(self, graph: AchievementsGraph) -> np.ndarray:
        if Columns.Region not in graph.participants.columns:
            return np.full(graph.n_participants, -1, dtype=np.int64)
        codes = graph.participants[Columns.Region].astype("string").fillna("").to_numpy(dtype=str)
        return np.asarray(self.vocabulary_.regions.get_indexer(codes), dtype=np.int64)

    @staticmethod
    def _grades_at_steps(graph: AchievementsGraph, hist: Histories, reference: pd.Timestamp) -> np.ndarray:
        """Grade at the first step of each history window (the start token's grade)."""
        now = graph.grades_at(reference)[hist.participants]
        first_day = pd.to_datetime(hist.days[:, 0].astype("datetime64[D]"))
        years = (first_day.year - (first_day.month < 9).astype(np.int64)).to_numpy()
        return _grades(now - (academic_year(reference) - years))

    # ---- scoring ------------------------------------------------------------------------------
    def _score(
        self, graph: AchievementsGraph, participants: np.ndarray, events: np.ndarray, as_of: pd.Timestamp,
        allowed: np.ndarray,
    ) -> np.ndarray:
        cfg = self.config
        hist = participant_histories(graph, participants, cfg.max_history)
        t = max(int(hist.lengths.max()), 1)
        ev_codes = self.vocabulary_.codes(graph)
        grade = _grades(graph.grades_at(as_of)[participants])
        grade_first = np.where(hist.lengths > 0, self._grades_at_steps(graph, hist, as_of), grade)
        settlement = _settlements(graph, participants)
        with _torch_session(cfg.seed, cfg.threads), torch.no_grad():
            net = self.network_
            table = net.content(ev_codes) + net.series(ev_codes["series"])
            states = net.states(table, torch.tensor(hist.events[:, :t]), torch.tensor(hist.results[:, :t]),
                                torch.tensor(grade_first), torch.tensor(settlement))
            last = states[torch.arange(len(participants)), torch.tensor(hist.lengths)]
            scores = last @ table[torch.tensor(events)].T
        return scores.numpy().astype(np.float64)

    # ---- persistence: the network travels as its state_dict -----------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        network = state.pop("network_", None)
        if network is not None:
            state["network_state_"] = {k: v.detach().cpu().numpy().copy() for k, v in network.state_dict().items()}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        weights = state.pop("network_state_", None)
        self.__dict__.update(state)
        if weights is not None:
            with torch.random.fork_rng(devices=[]):  # initial weights are overwritten: keep the caller's RNG
                network = _Network(self.sizes_, self.config)
                network.load_state_dict({k: torch.tensor(v) for k, v in weights.items()})
            network.eval()
            self.network_ = network
