"""The in-memory achievements graph every model takes: id maps, typed tables, sparse matrices, as_of."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from functools import cached_property
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recommender.aif.parsing import parse_weighted
from recommender.columns import IDENTITY_FIELDS, LEVEL_RANK, RESULT_RANK, Columns

# Events are known this long before they start (announcement); as_of(d) keeps no event announced later.
ANNOUNCE_DAYS = 365
QUALIFYING_RESULTS = ("finalist", "prize_winner", "winner")
# The values of an achievement that may change after it is stored (its participant, event and role never do).
REVISED_FIELDS = (Columns.Result, Columns.Date, Columns.Score, Columns.Rank, Columns.Team, "verified",
                  Columns.Achievement)
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
    end: np.ndarray  # days, NaN unknown
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
    announced: np.ndarray  # bool: known in this graph (see `AchievementsGraph.as_of`)
    # The open catalog per (day, filters), filled by `eligibility.open_events`: every request of a day asks for it.
    open_cache: dict[tuple[object, ...], np.ndarray] = field(default_factory=dict, compare=False, repr=False)

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
            start=_days(ev[Columns.StartDate]), end=optional_days(Columns.EndDate),
            deadline=optional_days(Columns.RegistrationDeadline),
            opens=optional_days(Columns.RegistrationOpens), min_grade=optional_float("min_grade"),
            max_grade=optional_float("max_grade"), capacity=optional_float("capacity"), online=online,
            region=np.where(online, -1, np.asarray(codes)), region_index=region_index, parent=parent,
            format=ev["format"].astype(str).to_numpy() if "format" in ev.columns else np.full(n, "", dtype=object),
            announced=graph.announced(),
        )


# Up to this many ids are looked up one by one (see `participant_positions`).
FEW_IDS = 16


def _position(index: pd.Index, key: str) -> int:
    try:
        return int(index.get_loc(key))  # the index is unique: an int
    except KeyError:
        return -1


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
    # The last `live_rows` achievements were folded in while serving (`with_achievements`): they are
    # known from the moment they were posted, so a cut on the day they are dated keeps them.
    live_rows: int = 0
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
    def event_ids(self) -> np.ndarray:
        """Event ids by position as a plain object array: a request maps its ten events without pandas (taking
        them from `event_index`, a pyarrow take, cost about 0.4 ms more a request at 60,000 events)."""
        return np.asarray(self.event_index, dtype=object)

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
        if not self.live_rows:
            return self.latest_date is None or self.latest_date < cut
        base, live = self._latest_dates
        return (base is None or base < cut) and (live is None or live <= cut)

    @cached_property
    def _latest_dates(self) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
        """Newest date of the loaded rows and of the live (folded-in) rows."""
        dates = self.achievements[Columns.Date]
        split = len(dates) - self.live_rows
        base, live = dates.iloc[:split], dates.iloc[split:]
        return (pd.Timestamp(base.max()) if len(base) else None, pd.Timestamp(live.max()) if len(live) else None)

    @property
    def n_participants(self) -> int:
        return len(self.participants)

    @property
    def n_events(self) -> int:
        return len(self.events)

    def participant_positions(self, participant_ids: list[str] | pd.Index | np.ndarray) -> np.ndarray:
        """Internal ids of the given external ids; -1 for unknown ones."""
        if len(participant_ids) <= FEW_IDS:
            # A request's few ids: one hash look-up each. `get_indexer` first converts the whole index
            # (about 1.2 ms for 1,000,000 participants, on every request).
            index = self.participant_index
            return np.asarray([_position(index, str(pid)) for pid in participant_ids], dtype=np.int64)
        return np.asarray(self.participant_index.get_indexer(pd.Index(participant_ids).astype(str)))

    # ---- time ---------------------------------------------------------------------------------
    def as_of(self, when: date | str | pd.Timestamp, *, announce_days: int = ANNOUNCE_DAYS) -> AchievementsGraph:
        """The graph as known strictly before `when`: achievements dated before it, events announced by it.

        Node positions are kept, so ids map the same in the full graph and in its past.
        """
        cut = to_timestamp(when)
        dates = self.achievements[Columns.Date].to_numpy()
        keep = dates < cut.to_datetime64()
        live = np.zeros(len(keep), dtype=bool)
        if self.live_rows:
            # Posted rows are known from the moment they were posted: a cut on their day keeps them.
            live[len(live) - self.live_rows:] = True
            keep |= live & (dates == cut.to_datetime64())
        # An event in the future of `when` that is not announced yet must not leak; positions stay
        # stable by keeping the row but marking it unknown.
        known = self.events[Columns.StartDate] < cut + pd.Timedelta(days=announce_days)
        keep &= known.to_numpy()[self.achievements["event_idx"].to_numpy()]
        ach = self.achievements[keep]
        events = self.events.copy()
        events["announced"] = known.to_numpy()
        # Declared interests do not depend on time: the past shares them.
        kept = {key: m for key, m in self._cache.items() if key == "pi"}
        return replace(self, achievements=ach.reset_index(drop=True), events=events, cutoff=cut,
                       live_rows=int((keep & live).sum()), _cache=kept)

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

    def grades_at(self, when: date | str | pd.Timestamp, positions: np.ndarray | None = None) -> np.ndarray:
        """School grade of every participant (or of those at `positions`) at a date (float, NaN when unknown)."""
        base, moves = self._grade_law
        if positions is not None:
            base, moves = base[positions], moves[positions]
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

    def participant_interests(self) -> sp.csr_matrix:
        """Participants x competences: the interests participants declared (AIF extension), empty rows when none.

        Competences outside the graph's vocabulary are left out, as in `event_competence`.
        """
        if "pi" not in self._cache:
            self._cache["pi"] = _weighted_matrix(self.participants, Columns.Interests, self.competence_index)
        return self._cache["pi"]

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

    # ---- fold-in (serving) --------------------------------------------------------------------
    def with_achievements(
        self, rows: pd.DataFrame, *, participants: pd.DataFrame | None = None
    ) -> AchievementsGraph:
        """This graph plus new achievement rows (and the new participants they need), without a rebuild.

        `rows` carry the AIF achievement fields; every row must name an event of the graph and a
        participant of the graph or of `participants` (rows as `participants` holds them). A row whose
        participant, event and role the graph holds already with the same values is left out, so folding
        the same row twice changes nothing; one whose values differ (a result upgraded from registered to
        winner) replaces the graph's row. The new graph shares the events side (tables, rule arrays,
        competence matrix, series) and gets the participant-side matrices patched by inserting the new
        entries: the cost is a few copies of flat arrays, milliseconds where a rebuild takes seconds. The
        rows are live (`live_rows`): a cut on the day they are dated keeps them, so `known_before(today)`
        still holds after a fold-in of today's registration and requests never copy the graph to cut it.
        """
        return self.fold_achievements(rows, participants=participants)[0]

    def fold_achievements(
        self, rows: pd.DataFrame, *, participants: pd.DataFrame | None = None
    ) -> tuple[AchievementsGraph, int, int]:
        """`with_achievements`, with the number of rows added and of rows replaced."""
        graph = self._with_participants(participants) if participants is not None and len(participants) else self
        new, replaces = graph._new_achievement_rows(rows)
        if not len(new):
            return graph, 0, 0
        old = graph.achievements
        replacing = replaces >= 0
        gone = np.sort(replaces[replacing])
        # The replaced rows leave the frame (slices between them are views) and their new values join the
        # live rows at the end: one copy of the frame, as an append alone costs.
        bounds = [-1, *gone.tolist(), len(old)]
        pieces = [old.iloc[a + 1:b] for a, b in pairwise(bounds) if b > a + 1]
        achievements = _compact_chunks(pd.concat([*pieces, new], ignore_index=True))
        live_gone = int((gone >= len(old) - graph.live_rows).sum())
        out = replace(graph, achievements=achievements, live_rows=graph.live_rows - live_gone + len(new), _cache={})
        p, e = new["participant_idx"].to_numpy(np.int64), new["event_idx"].to_numpy(np.int64)
        added = ~replacing
        shape = (out.n_participants, out.n_events)
        old_rank = np.zeros(len(new), dtype=np.float32)
        old_rank[replacing] = old["result_rank"].to_numpy()[replaces[replacing]]
        won = new[Columns.Result].isin(QUALIFYING_RESULTS).to_numpy()
        was_won = np.zeros(len(new), dtype=bool)
        was_won[replacing] = old[Columns.Result].iloc[replaces[replacing]].isin(QUALIFYING_RESULTS).to_numpy()
        for key, matrix in list(graph._cache.items()):  # request threads may be filling it
            if key in ("ec", "pi"):
                out._cache[key] = matrix  # events x competences, declared interests: neither changed
            elif key == "peTrue":
                # A replaced row's entry moves by the change of its result weight; a new row adds its weight.
                weights = 1.0 + np.maximum(new["result_rank"].to_numpy(np.float32), 0)
                weights[replacing] -= 1.0 + np.maximum(old_rank[replacing], 0)
                out._cache[key] = _csr_with_entries(matrix, p, e, weights, shape)
            elif key == "peFalse":
                out._cache[key] = _csr_with_entries(matrix, p[added], e[added], np.ones(int(added.sum()), np.float32),
                                                    shape)
            elif key == "qualified" and not (was_won & ~won).any():
                # (A result that stops qualifying drops the matrix: rebuilt from the rows when first asked for.)
                out._cache[key] = _csr_with_entries(
                    matrix, p[won], e[won], np.ones(int(won.sum()), np.float32), shape, binary=True
                )
            # Any other cached matrix is rebuilt from the rows when first asked for.
        shared = ("participant_index", "event_index", "event_ids", "competence_index", "_grade_law", "event_arrays",
                  "participant_region_codes", "_series_keys", "_team_index")
        cached = graph.__dict__
        for name in shared:
            if name in cached:
                out.__dict__[name] = cached[name]
        if "registrations_per_event" in cached:
            out.__dict__["registrations_per_event"] = cached["registrations_per_event"] + np.bincount(
                e[added], minlength=graph.n_events
            )
        # A replaced row's old date may stay counted as the newest: `known_before` then errs on the safe side.
        newest = pd.Timestamp(new[Columns.Date].max())
        base, live = graph._latest_dates
        out.__dict__["_latest_dates"] = (base, newest if live is None else max(live, newest))
        latest = graph.latest_date
        out.__dict__["latest_date"] = newest if latest is None else max(latest, newest)
        return out, int(added.sum()), int(replacing.sum())

    def _new_achievement_rows(self, rows: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
        """`rows` as this graph's achievement frame holds them (columns, dtypes, positions), minus known ones,
        and for each the position of the graph row it replaces (-1 for a new row).

        A row is known when the graph holds its participant, event and role; it replaces the graph's row
        when one of its values (REVISED_FIELDS) differs. Within `rows` the first row of a key counts.
        Written for a handful of rows at a time: plain loops and one frame construction, never a scan of
        the graph's rows beyond those of the participants whose (participant, event) pair is taken already.
        """
        rows = rows.reset_index(drop=True)
        p = np.asarray(self.participant_index.get_indexer(rows[Columns.Participant].astype(str)), dtype=np.int64)
        e = np.asarray(self.event_index.get_indexer(rows[Columns.Event].astype(str)), dtype=np.int64)
        if (p < 0).any() or (e < 0).any():
            raise ValueError(f"{int(((p < 0) | (e < 0)).sum())} rows refer to participants or events missing from"
                             " the graph")
        roles = rows[Columns.Role].astype(str).tolist()
        known: dict[tuple[int, int, str], int] = {}
        taken = np.asarray(self.participant_event()[p, e]).ravel() > 0
        a = self.achievements
        if taken.any():
            # Only the participants concerned are scanned, for the role (a person may be contestant and volunteer).
            positions = np.flatnonzero(a["participant_idx"].isin(p[taken]).to_numpy())
            mine = a.iloc[positions]
            known = dict(zip(zip(mine["participant_idx"].tolist(), mine["event_idx"].tolist(),
                                 mine[Columns.Role].astype(str).tolist(), strict=True), positions.tolist(),
                             strict=True))
        compared = [c for c in REVISED_FIELDS if c in rows.columns and c in a.columns]
        keep: list[int] = []
        replaces: list[int] = []
        seen: set[tuple[int, int, str]] = set()
        for i, key in enumerate(zip(p.tolist(), e.tolist(), roles, strict=True)):
            if key in seen:
                continue
            seen.add(key)
            at = known.get(key)
            if at is None or any(not _same_value(rows[c].iat[i], a[c].iat[at]) for c in compared):
                keep.append(i)
                replaces.append(-1 if at is None else at)
        index = np.asarray(keep, dtype=np.int64)
        base = self.achievements
        derived = {
            "participant_idx": p[index].astype(np.int32),
            "event_idx": e[index].astype(np.int32),
            "team_idx": self._team_positions(rows, index),
            "result_rank": np.asarray([RESULT_RANK.get(r, -1) for r in rows[Columns.Result].iloc[index].tolist()],
                                      dtype=np.int8),
        }
        columns: dict[str, object] = {}
        for name, dtype in base.dtypes.items():
            if name in derived:
                columns[str(name)] = derived[str(name)]
            elif name in rows.columns:
                column = rows[name].iloc[index] if len(index) < len(rows) else rows[name]
                columns[str(name)] = (column if column.dtype == dtype else column.astype(dtype)).array
            else:
                columns[str(name)] = pd.array([None] * len(index), dtype=dtype)
        for name, values in derived.items():
            columns.setdefault(name, values)
        return pd.DataFrame(columns, index=pd.RangeIndex(len(index))), np.asarray(replaces, dtype=np.int64)

    def _team_positions(self, rows: pd.DataFrame, index: np.ndarray) -> np.ndarray:
        out = np.full(len(index), -1, dtype=np.int32)
        if Columns.Team not in rows.columns:
            return out
        teams = rows[Columns.Team].iloc[index]
        named = teams.notna().to_numpy(dtype=bool)
        if named.any():
            if "_team_index" not in self.__dict__:
                self.__dict__["_team_index"] = pd.Index(self.teams[Columns.Team].astype(str))
            out[named] = self.__dict__["_team_index"].get_indexer(teams[named].astype(str))
        return out

    def _with_participants(self, participants: pd.DataFrame) -> AchievementsGraph:
        """This graph with participants it does not hold yet appended (positions of the others kept)."""
        ids = participants[Columns.Participant].astype(str)
        rows = participants[~ids.isin(self.participant_index).to_numpy()].drop_duplicates(Columns.Participant)
        rows = rows.drop(columns=[c for c in IDENTITY_FIELDS if c in rows.columns]).reset_index(drop=True)
        if not len(rows):
            return self
        base = self.participants
        for name in base.columns:
            if name not in rows.columns:
                rows[name] = pd.Series([None] * len(rows), dtype=base[name].dtype)
        rows = rows[list(base.columns)].astype(base.dtypes.to_dict())
        merged = pd.concat([base, rows], ignore_index=True)
        out = replace(self, participants=merged, _cache={})
        shape = (out.n_participants, out.n_events)
        for key, matrix in list(self._cache.items()):
            if key == "pi":
                # The new participants' declared interests are appended below the known rows.
                added = _weighted_matrix(rows, Columns.Interests, self.competence_index)
                out._cache[key] = sp.csr_matrix(sp.vstack([matrix, added], format="csr"))
                continue
            if key == "ec":
                out._cache[key] = matrix
            elif key in ("peTrue", "peFalse", "qualified"):  # participants x events: empty rows appended
                out._cache[key] = _csr_with_entries(
                    matrix, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32), shape
                )
            # Any other cached matrix is rebuilt when first asked for.
        cached = self.__dict__
        for name in ("event_index", "competence_index", "event_arrays", "_series_keys", "registrations_per_event",
                     "latest_date", "_latest_dates"):
            if name in cached:
                out.__dict__[name] = cached[name]
        out.__dict__["participant_index"] = self.participant_index.append(pd.Index(rows[Columns.Participant]
                                                                                   .astype(str)))
        return out


def _same_value(a: object, b: object) -> bool:
    """Two cells hold the same value (both unknown counts as the same)."""
    a_missing, b_missing = bool(pd.isna(a)), bool(pd.isna(b))
    if a_missing or b_missing:
        return a_missing and b_missing
    return bool(a == b)


def _weighted_matrix(frame: pd.DataFrame, column: str, vocabulary: pd.Index) -> sp.csr_matrix:
    """Rows x vocabulary from a weighted-list column (`id:w;id:w`); each distinct text is parsed once."""
    shape = (len(frame), len(vocabulary))
    if column not in frame.columns or not len(frame):
        return sp.csr_matrix(shape, dtype=np.float32)
    codes, texts = pd.factorize(frame[column].astype("string"), use_na_sentinel=True)
    positions = {c: i for i, c in enumerate(vocabulary)}
    parsed = [[(positions[c], w) for c, w in parse_weighted(str(t)) if c in positions] for t in texts]
    lengths = np.asarray([len(p) for p in parsed], dtype=np.int64)
    rows = np.flatnonzero(codes >= 0)
    per_row = lengths[codes[rows]]
    flat_cols = np.asarray([c for p in parsed for c, _ in p], dtype=np.int64)
    flat_vals = np.asarray([w for p in parsed for _, w in p], dtype=np.float32)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    # Entry j of row r is entry j of its text's parsed list.
    offsets = np.arange(int(per_row.sum()), dtype=np.int64) - np.repeat(np.cumsum(per_row) - per_row, per_row)
    take = np.repeat(starts[codes[rows]], per_row) + offsets
    return sp.csr_matrix(
        (flat_vals[take], (np.repeat(rows, per_row), flat_cols[take])), shape=shape, dtype=np.float32
    )


def _csr_with_entries(
    matrix: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape: tuple[int, int],
    *, binary: bool = False,
) -> sp.csr_matrix:
    """A new canonical CSR matrix: `matrix` (grown to `shape`) plus the entries, duplicates summed (or set
    to 1 when `binary`). Entries are inserted into copies of the flat arrays, never rebuilt from triplets."""
    m = matrix
    if not m.has_canonical_format:
        m = matrix.copy()
        m.sum_duplicates()
    indptr = np.concatenate([m.indptr, np.full(shape[0] - m.shape[0], m.indptr[-1], dtype=m.indptr.dtype)])
    data, indices = m.data.copy(), m.indices
    if len(rows):
        order = np.lexsort((cols, rows))
        keys = rows[order] * shape[1] + cols[order]
        unique, first = np.unique(keys, return_index=True)
        summed = np.add.reduceat(values[order].astype(data.dtype), first)
        r, c = unique // shape[1], unique % shape[1]
        starts, ends = indptr[r], indptr[r + 1]
        pos = np.asarray([s + np.searchsorted(indices[s:t], cc) for s, t, cc in zip(starts, ends, c, strict=True)],
                         dtype=np.int64)
        exists = (pos < ends) & (indices[np.minimum(pos, len(indices) - 1)] == c) if len(indices) else \
            np.zeros(len(pos), dtype=bool)
        if binary:
            data[pos[exists]] = 1.0
        else:
            data[pos[exists]] += summed[exists]
        added = ~exists
        if added.any():
            at = pos[added]
            indices = _insert_sorted(indices, at, c[added].astype(indices.dtype))
            data = _insert_sorted(data, at, np.ones(len(at), data.dtype) if binary else summed[added])
            grow = np.bincount(r[added] + 1, minlength=shape[0] + 1).cumsum()
            indptr = indptr + grow.astype(indptr.dtype)
    out = sp.csr_matrix((data, indices, indptr), shape=shape)
    out.has_canonical_format = True  # sorted, no duplicates: the next fold-in need not check millions of entries
    return out


def _insert_sorted(values: np.ndarray, at: np.ndarray, new: np.ndarray) -> np.ndarray:
    """`values` with `new[j]` inserted before position `at[j]` (`at` ascending): a few block copies, where
    `np.insert` sorts and masks the whole array."""
    out = np.empty(len(values) + len(at), dtype=values.dtype)
    if len(at) > 1024:  # many rows at once (a start-up catch-up): one masked copy is cheaper than many slices
        slots = at + np.arange(len(at))
        keep = np.ones(len(out), dtype=bool)
        keep[slots] = False
        out[keep] = values
        out[slots] = new
        return out
    previous = 0
    for j, (position, value) in enumerate(zip(at.tolist(), new.tolist(), strict=True)):
        out[previous + j : position + j] = values[previous:position]
        out[position + j] = value
        previous = position
    out[previous + len(at):] = values[previous:]
    return out


# Fold-ins append Arrow-backed text without copying it (one more chunk each); past this many chunks the
# columns are made contiguous again, so that scans do not slow down as the fold-ins pile up.
MAX_TEXT_CHUNKS = 64


def _compact_chunks(frame: pd.DataFrame) -> pd.DataFrame:
    for name in frame.columns:
        array = frame[name].array
        chunked = getattr(array, "_pa_array", None)
        if chunked is not None and chunked.num_chunks > MAX_TEXT_CHUNKS:
            frame[name] = pd.Series(type(array)(chunked.combine_chunks()), index=frame.index, name=name)
    return frame
