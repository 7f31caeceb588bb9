"""The in-memory achievements graph every model takes: id maps, typed tables, sparse matrices, as_of."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recommender.aif.parsing import parse_weighted
from recommender.columns import IDENTITY_FIELDS, LEVEL_RANK, RESULT_RANK, Columns

# Events are known this long before they start (announcement); as_of(d) keeps no event announced later.
ANNOUNCE_DAYS = 365
QUALIFYING_RESULTS = ("finalist", "prize_winner", "winner")
TABLE_NAMES = (
    "participants",
    "events",
    "achievements",
    "teams",
    "mentors",
    "organizations",
    "resource_centers",
    "programs",
    "competences",
)


def to_timestamp(value: date | str | pd.Timestamp) -> pd.Timestamp:
    return pd.Timestamp(value).normalize()


def academic_year(ts: pd.Timestamp) -> int:
    """The year an academic year starts in (September to August)."""
    return int(ts.year - (1 if ts.month < 9 else 0))


def academic_years(dates: pd.Series) -> pd.Series:
    """`academic_year` of every date in a series."""
    return dates.dt.year - (dates.dt.month < 9).astype("int64")


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="string") for c in columns})


def online_flags(events: pd.DataFrame) -> np.ndarray:
    """An event is online when it says so or names no region (AIF: empty region = online)."""
    online = np.zeros(len(events), dtype=bool)
    if "online" in events.columns:
        online |= events["online"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    if Columns.Region in events.columns:
        online |= events[Columns.Region].isna().to_numpy()
    else:
        online[:] = True
    return online


def _days(values: pd.Series) -> np.ndarray:
    """Dates as float days since the epoch (NaN when unknown)."""
    ts = pd.to_datetime(values)
    out = (ts - pd.Timestamp("1970-01-01")).dt.days.astype("float64")
    return out.to_numpy(dtype=np.float64, na_value=np.nan)


def day_number(when: date | str | pd.Timestamp) -> float:
    return float((to_timestamp(when) - pd.Timestamp("1970-01-01")).days)


@dataclass(frozen=True)
class EventArrays:
    start: np.ndarray  # days
    deadline: np.ndarray  # days, NaN unknown
    opens: np.ndarray  # days, NaN unknown
    min_grade: np.ndarray  # NaN unknown
    max_grade: np.ndarray
    capacity: np.ndarray
    online: np.ndarray  # bool: online or no region
    region: np.ndarray  # code in region_index, -1 for online / no region
    region_index: pd.Index
    parent: np.ndarray  # position of the previous stage, -1 none, -2 named but missing
    format: np.ndarray  # str

    @classmethod
    def from_graph(cls, graph: AchievementsGraph) -> EventArrays:
        ev = graph.events
        n = len(ev)

        def optional_days(col: str) -> np.ndarray:
            return _days(ev[col]) if col in ev.columns else np.full(n, np.nan)

        def optional_float(col: str) -> np.ndarray:
            if col not in ev.columns:
                return np.full(n, np.nan)
            return ev[col].astype("Float64").astype("float64").to_numpy(dtype=np.float64, na_value=np.nan)

        online = online_flags(ev)
        if Columns.Region in ev.columns:
            codes, uniques = pd.factorize(ev[Columns.Region].astype("string"), sort=True)
            region_index = pd.Index(uniques.astype(str))
        else:
            codes, region_index = np.full(n, -1), pd.Index([], dtype=str)
        parent = np.full(n, -1, dtype=np.int64)
        if Columns.ParentEvent in ev.columns:
            named = ev[Columns.ParentEvent].notna().to_numpy()
            pos = np.asarray(graph.event_index.get_indexer(ev[Columns.ParentEvent].astype("string").fillna("")))
            parent = np.where(named, np.where(pos >= 0, pos, -2), -1)
        return cls(
            start=_days(ev[Columns.StartDate]), deadline=optional_days(Columns.RegistrationDeadline),
            opens=optional_days(Columns.RegistrationOpens), min_grade=optional_float("min_grade"),
            max_grade=optional_float("max_grade"), capacity=optional_float("capacity"), online=online,
            region=np.where(online, -1, np.asarray(codes)), region_index=region_index, parent=parent,
            format=ev["format"].astype(str).to_numpy() if "format" in ev.columns else np.full(n, "", dtype=object),
        )


@dataclass(frozen=True)
class AchievementsGraph:
    """A frozen, typed view of the achievements graph.

    Node tables keep their external string ids; a node's internal integer id is its row position,
    and achievements carry those positions (`participant_idx`, `event_idx`, `team_idx`). Identity
    fields (names, birth dates, e-mails) never enter a graph.
    """

    participants: pd.DataFrame
    events: pd.DataFrame
    achievements: pd.DataFrame
    teams: pd.DataFrame
    mentors: pd.DataFrame
    organizations: pd.DataFrame
    resource_centers: pd.DataFrame
    programs: pd.DataFrame
    competences: pd.DataFrame
    # Date the graph is known up to (exclusive); None = everything in the source.
    cutoff: pd.Timestamp | None = None
    _cache: dict[str, sp.csr_matrix] = field(default_factory=dict, compare=False, repr=False)

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def from_tables(cls, tables: Mapping[str, pd.DataFrame], *, known_competences: pd.DataFrame | None = None
                    ) -> AchievementsGraph:
        """Build from canonical AIF tables (as read from AIF or the store snapshot)."""
        from recommender.reference import competences as reference_competences

        def table(name: str, key: str) -> pd.DataFrame:
            df = tables.get(name)
            if df is None:
                return _empty([key])
            return df.drop(columns=[c for c in IDENTITY_FIELDS if c in df.columns]).reset_index(drop=True)

        participants = table("participants", Columns.Participant)
        if "birth_year" not in participants.columns and tables.get("participants") is not None:
            src = tables["participants"]
            if "birth_date" in src.columns:
                participants["birth_year"] = pd.to_datetime(src["birth_date"]).dt.year.astype("Int64").values
        events = table("events", Columns.Event)
        teams = table("teams", Columns.Team)
        mentors = table("mentors", Columns.Mentor)
        organizations = table("organizations", Columns.Organization)
        resource_centers = table("resource_centers", Columns.ResourceCenter)
        programs = table("programs", Columns.Program)
        comp = known_competences if known_competences is not None else reference_competences()
        declared = tables.get("competences")
        if declared is not None and len(declared):
            comp = pd.concat([comp, declared[~declared[Columns.Competence].isin(comp[Columns.Competence])]])
        competences = comp.reset_index(drop=True)

        ach = tables.get("achievements")
        ach = _empty([Columns.Participant, Columns.Event]) if ach is None else ach.reset_index(drop=True)
        ach = ach.copy()
        ach[Columns.Date] = pd.to_datetime(ach[Columns.Date]) if len(ach) else pd.Series(dtype="datetime64[s]")
        p_index = pd.Index(participants[Columns.Participant].astype(str))
        e_index = pd.Index(events[Columns.Event].astype(str))
        t_index = pd.Index(teams[Columns.Team].astype(str))
        ach["participant_idx"] = p_index.get_indexer(ach[Columns.Participant].astype(str)).astype(np.int32)
        ach["event_idx"] = e_index.get_indexer(ach[Columns.Event].astype(str)).astype(np.int32)
        if Columns.Team in ach.columns:
            ach["team_idx"] = t_index.get_indexer(ach[Columns.Team].astype("string").fillna("")).astype(np.int32)
        else:
            ach["team_idx"] = np.full(len(ach), -1, dtype=np.int32)
        unresolved = (ach["participant_idx"] < 0) | (ach["event_idx"] < 0)
        if unresolved.any():
            raise ValueError(
                f"{int(unresolved.sum())} achievements refer to participants or events missing from the graph"
            )
        ach["result_rank"] = ach[Columns.Result].map(RESULT_RANK).astype("float64").fillna(-1).astype(np.int8)
        for date_col in (Columns.StartDate, Columns.EndDate, Columns.RegistrationDeadline, Columns.RegistrationOpens):
            if date_col in events.columns:
                events[date_col] = pd.to_datetime(events[date_col])
        events["level_rank"] = events["level"].map(LEVEL_RANK).astype("int8") if len(events) else []
        return cls(
            participants=participants,
            events=events,
            achievements=ach,
            teams=teams,
            mentors=mentors,
            organizations=organizations,
            resource_centers=resource_centers,
            programs=programs,
            competences=competences,
        )

    @classmethod
    def from_aif(cls, path: Path) -> AchievementsGraph:
        """Read an AIF directory; rows the validator rejects are left out (the ingest report counts them)."""
        from recommender.aif.reader import read_dataset

        dataset = read_dataset(Path(path))
        graph = cls.from_tables(dataset.tables)
        exported = dataset.manifest.get("exported_at")
        if exported and "grade" in graph.participants.columns and "grade_date" not in graph.participants.columns:
            graph.participants["grade_date"] = to_timestamp(str(exported)[:10])
        return graph

    # ---- id maps ------------------------------------------------------------------------------
    @cached_property
    def participant_index(self) -> pd.Index:
        return pd.Index(self.participants[Columns.Participant].astype(str))

    @cached_property
    def event_index(self) -> pd.Index:
        return pd.Index(self.events[Columns.Event].astype(str))

    @cached_property
    def competence_index(self) -> pd.Index:
        return pd.Index(self.competences[Columns.Competence].astype(str))

    @cached_property
    def latest_date(self) -> pd.Timestamp | None:
        """Date of the newest achievement (None for an empty graph)."""
        if not len(self.achievements):
            return None
        return pd.Timestamp(self.achievements[Columns.Date].max())

    def known_before(self, when: date | str | pd.Timestamp) -> bool:
        """True when the graph holds nothing dated at or after `when`: cutting it there would change nothing
        about achievements (events are all treated as announced)."""
        cut = to_timestamp(when)
        if self.cutoff is not None:
            return self.cutoff <= cut
        return self.latest_date is None or self.latest_date < cut

    @property
    def n_participants(self) -> int:
        return len(self.participants)

    @property
    def n_events(self) -> int:
        return len(self.events)

    def participant_positions(self, participant_ids: list[str] | pd.Index | np.ndarray) -> np.ndarray:
        """Internal ids of the given external ids; -1 for unknown ones."""
        return np.asarray(self.participant_index.get_indexer(pd.Index(participant_ids).astype(str)))

    # ---- time ---------------------------------------------------------------------------------
    def as_of(self, when: date | str | pd.Timestamp, *, announce_days: int = ANNOUNCE_DAYS) -> AchievementsGraph:
        """The graph as known strictly before `when`: achievements dated before it, events announced by it.

        Node positions are kept, so ids map the same in the full graph and in its past.
        """
        cut = to_timestamp(when)
        ach = self.achievements[self.achievements[Columns.Date] < cut]
        # An event in the future of `when` that is not announced yet must not leak; positions stay
        # stable by keeping the row but marking it unknown.
        known = self.events[Columns.StartDate] < cut + pd.Timedelta(days=announce_days)
        ach = ach[known.to_numpy()[ach["event_idx"].to_numpy()]]
        events = self.events.copy()
        events["announced"] = known.to_numpy()
        return replace(self, achievements=ach.reset_index(drop=True), events=events, cutoff=cut, _cache={})

    def announced(self) -> np.ndarray:
        """Boolean mask of the events known in this graph."""
        if "announced" in self.events.columns:
            return self.events["announced"].to_numpy(dtype=bool)
        return np.ones(self.n_events, dtype=bool)

    @cached_property
    def _grade_law(self) -> tuple[np.ndarray, np.ndarray]:
        """grade(academic year Y) = base + Y * moves; computed once, read on every request."""
        n = self.n_participants
        base = np.full(n, np.nan)
        moves = np.zeros(n)
        p = self.participants
        if "birth_year" in p.columns:
            by = p["birth_year"].astype("Float64").astype("float64").to_numpy()
            known = ~np.isnan(by)
            base[known] = -by[known] - 6
            moves[known] = 1.0
        if "grade" in p.columns:
            g = p["grade"].astype("Float64").astype("float64").to_numpy()
            known = ~np.isnan(g)
            if "grade_date" in p.columns:
                gd = academic_years(pd.to_datetime(p["grade_date"])).astype("float64").to_numpy()
                dated = known & ~np.isnan(gd)
                base[dated] = g[dated] - gd[dated]
                moves[dated] = 1.0
                undated = known & np.isnan(gd)
            else:
                undated = known
            base[undated] = g[undated]
            moves[undated] = 0.0
        return base, moves

    def grades_at(self, when: date | str | pd.Timestamp) -> np.ndarray:
        """School grade of every participant at a date (float, NaN when unknown)."""
        base, moves = self._grade_law
        return base + academic_year(to_timestamp(when)) * moves

    @cached_property
    def event_arrays(self) -> EventArrays:
        """The events' rule-relevant columns as plain arrays (the request path reads these, not pandas)."""
        return EventArrays.from_graph(self)

    @cached_property
    def participant_region_codes(self) -> np.ndarray:
        """Region of each participant in the events' region vocabulary; -2 when unknown or unseen."""
        if Columns.Region not in self.participants.columns:
            return np.full(self.n_participants, -2, dtype=np.int64)
        regions = self.participants[Columns.Region].astype("string").fillna("")
        codes = np.asarray(self.event_arrays.region_index.get_indexer(regions.to_numpy(dtype=str)))
        return np.where(codes >= 0, codes, -2)

    @cached_property
    def registrations_per_event(self) -> np.ndarray:
        return np.bincount(self.achievements["event_idx"].to_numpy(), minlength=self.n_events)

    # ---- matrices -----------------------------------------------------------------------------
    def participant_event(self, *, weighted: bool = False) -> sp.csr_matrix:
        """Participants x events; 1 per achievement (or its result weight), duplicates summed."""
        key = f"pe{weighted}"
        if key not in self._cache:
            a = self.achievements
            values = (1.0 + np.maximum(a["result_rank"].to_numpy(np.float32), 0)) if weighted else np.ones(len(a))
            m = sp.csr_matrix(
                (values.astype(np.float32), (a["participant_idx"].to_numpy(), a["event_idx"].to_numpy())),
                shape=(self.n_participants, self.n_events),
            )
            m.sum_duplicates()
            self._cache[key] = m
        return self._cache[key]

    def event_competence(self) -> sp.csr_matrix:
        """Events x competences, the events' competence weights."""
        if "ec" not in self._cache:
            rows, cols, vals = [], [], []
            comp_pos = {c: i for i, c in enumerate(self.competence_index)}
            for i, text in enumerate(self.events["competences"].astype("string").fillna("")):
                for cid, w in parse_weighted(text):
                    j = comp_pos.get(cid)
                    if j is not None:
                        rows.append(i)
                        cols.append(j)
                        vals.append(w)
            self._cache["ec"] = sp.csr_matrix(
                (np.asarray(vals, np.float32), (np.asarray(rows, np.int64), np.asarray(cols, np.int64))),
                shape=(self.n_events, len(self.competence_index)),
            )
        return self._cache["ec"]

    def participant_competence(self) -> sp.csr_matrix:
        """Participants x competences: competence weight of every event taken, summed."""
        return (self.participant_event() @ self.event_competence()).tocsr()

    def participant_team(self) -> sp.csr_matrix:
        a = self.achievements[self.achievements["team_idx"] >= 0]
        m = sp.csr_matrix(
            (np.ones(len(a), np.float32), (a["participant_idx"].to_numpy(), a["team_idx"].to_numpy())),
            shape=(self.n_participants, len(self.teams)),
        )
        m.data[:] = 1.0
        return m

    @cached_property
    def _series_keys(self) -> pd.Series:
        if Columns.Series in self.events.columns:
            return self.events[Columns.Series].astype("string").fillna(self.events[Columns.Event].astype("string"))
        return self.events[Columns.Event].astype("string")

    def series_keys(self) -> pd.Series:
        """The recurring identity of each event: its series, or the event itself when it has none."""
        return self._series_keys

    def qualified(self) -> sp.csr_matrix:
        """Participants x events: 1 where the participant reached a qualifying result at that event."""
        if "qualified" in self._cache:
            return self._cache["qualified"]
        a = self.achievements[self.achievements[Columns.Result].isin(QUALIFYING_RESULTS)]
        m = sp.csr_matrix(
            (np.ones(len(a), np.float32), (a["participant_idx"].to_numpy(), a["event_idx"].to_numpy())),
            shape=(self.n_participants, self.n_events),
        )
        m.data[:] = 1.0
        self._cache["qualified"] = m
        return m
