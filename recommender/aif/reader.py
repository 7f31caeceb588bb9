"""Read and validate an AIF v1 dataset into canonical typed tables; every rejected row goes to the quarantine."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recommender.aif.dataset import AifDataset
from recommender.aif.manifest import AifError, read_manifest
from recommender.aif.parsing import ParseContext, arrow_type, blank, parse_field
from recommender.aif.quarantine import (
    concat_quarantine,
    cut_raw,
    mask_csv_record,
    mask_json_record,
    quarantine_frame,
    write_quarantine,
)
from recommender.aif.sources import (
    NotClean,
    RawChunk,
    csv_chunks,
    fast_csv_chunks,
    fast_jsonl_chunks,
    jsonl_chunks,
    raw_records,
    read_csv_header,
    scan_file,
)
from recommender.aif.validation import (
    Rejection,
    duplicate_rows,
    order_violations,
    string_array,
    unknown_references,
)
from recommender.columns import Columns
from recommender.reference import competence_ids, region_codes
from recommender.schema import ACHIEVEMENTS, TABLES, FieldSpec, Kind, TableSpec

__all__ = ["AifError", "read_dataset", "write_quarantine"]

_LINE = "__line"  # physical line of each kept row while the table is being checked
_COMPETENCES = "competences"


@dataclass
class _Failures:
    """Rejected rows of one file, gathered from every stage before their raw text is fetched."""

    lines: list[int] = field(default_factory=list)
    fields: list[str | None] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def add(self, lines: Iterable[int], field_name: str | None, reasons: Iterable[str]) -> None:
        new = [int(n) for n in lines]
        self.lines.extend(new)
        self.fields.extend([field_name] * len(new))
        self.reasons.extend(reasons)


def read_dataset(
    path: Path,
    *,
    known_ids: Mapping[str, Iterable[str]] | None = None,
    extra_competences: Iterable[str] = (),
) -> AifDataset:
    """Read, type and validate every table file of the AIF dataset directory `path`.

    `known_ids` maps a table name to the ids already in the store, so an incremental dataset
    may refer to them (e.g. achievements of participants loaded earlier); `extra_competences`
    are competence ids declared by earlier datasets. Raises AifError only for dataset-level
    problems (manifest, a table given both as CSV and JSONL); bad rows go to the quarantine.
    """
    path = Path(path)
    manifest = read_manifest(path)
    files = _table_files(path)
    known = {name: set(ids) for name, ids in (known_ids or {}).items()}
    reader = _DatasetReader(files, known, frozenset(extra_competences) | frozenset(known.get(_COMPETENCES, ())))
    tables: dict[str, pd.DataFrame] = {}
    quarantines: list[pd.DataFrame] = []
    read_counts: dict[str, int] = {}
    for spec in TABLES:
        if spec.name in files:
            frame, quarantine, count = reader.read_table(spec)
            tables[spec.name] = frame
            quarantines.append(quarantine)
            read_counts[spec.name] = count
    return AifDataset(manifest, tables, concat_quarantine(quarantines), read_counts)


def _table_files(path: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for spec in TABLES:
        found = [p for p in (path / f"{spec.name}.csv", path / f"{spec.name}.jsonl") if p.is_file()]
        if len(found) > 1:
            raise AifError(f"{path}: both {found[0].name} and {found[1].name} given; keep one")
        if found:
            files[spec.name] = found[0]
    return files


class _DatasetReader:
    """Reads tables in dependency order, remembering the ids each kept so later tables can refer to them."""

    def __init__(self, files: dict[str, Path], known: dict[str, set[str]], extra_competences: frozenset[str]):
        self.files = files
        self.known = known
        self.kept_ids: dict[str, pa.Array] = {}
        self._known_arrays: dict[str, pa.Array] = {}
        self.context = ParseContext(competence_ids() | extra_competences, region_codes())

    def read_table(self, spec: TableSpec) -> tuple[pd.DataFrame, pd.DataFrame, int]:
        path = self.files[spec.name]
        header: list[str] = []
        if path.suffix == ".jsonl":
            scan = scan_file(path)
            try:
                frame, failures, read = self._read_chunks(spec, header, None, fast_jsonl_chunks(path, spec, scan))
            except NotClean:
                chunks = jsonl_chunks(path, frozenset(spec.names))
                frame, failures, read = self._read_chunks(spec, header, None, chunks)
        else:
            header = read_csv_header(path)
            problem = _header_problem(spec, header)
            scan = scan_file(path)
            try:
                if problem is not None:
                    raise NotClean(problem[1])
                frame, failures, read = self._read_chunks(spec, header, None, fast_csv_chunks(path, header, scan))
            except NotClean:
                frame, failures, read = self._read_chunks(spec, header, problem, csv_chunks(path, header, scan))
        if spec.name == _COMPETENCES:
            self.context = ParseContext(
                self.context.competence_ids | frozenset(frame[Columns.Competence].dropna().tolist()),
                self.context.region_codes,
            )
        if len(spec.key) == 1:
            self.kept_ids[spec.name] = string_array(frame[spec.key[0]])
        return frame, _quarantine(spec, path, header, failures), read

    def _read_chunks(
        self, spec: TableSpec, header: list[str], problem: tuple[str, str] | None, chunks: Iterator[RawChunk]
    ) -> tuple[pd.DataFrame, _Failures, int]:
        """Parse and check every chunk of one file: the kept rows, the failures, the records read."""
        failures = _Failures()
        parts: list[pa.Table] = []
        read = 0
        for chunk in chunks:
            read += chunk.rows + len(chunk.failures)
            for failure in chunk.failures:
                failures.add([failure.line], failure.field, [failure.reason])
            if problem is not None:
                failures.add(chunk.lines, problem[0], [problem[1]] * chunk.rows)
                continue
            parts.append(self._parse_chunk(spec, chunk, header, failures))
        frame, lines = _to_frame(spec, parts)
        parts.clear()  # the frame holds what is needed; free the chunks before the checks
        frame = self._check_table(spec, frame, lines, failures)
        return frame, failures, read

    def _parse_chunk(self, spec: TableSpec, chunk: RawChunk, header: list[str], failures: _Failures) -> pa.Table:
        """Typed columns of the chunk's rows that parse; the others go to `failures` (first bad field)."""
        n = chunk.rows
        failed = np.zeros(n, dtype=bool)
        columns: dict[str, pa.Array] = {}
        for fspec in spec.fields:
            text = chunk.columns.get(fspec.name)
            if text is None:
                text = pa.nulls(n, pa.string())  # no such column: every value unknown
            parsed = parse_field(fspec, text, self.context)
            columns[fspec.name] = parsed.values
            if fspec.required:
                missing = blank(text) & ~parsed.bad & ~failed
                rows = np.flatnonzero(missing)
                failures.add(chunk.lines[rows], fspec.name, [f"missing required field '{fspec.name}'"] * len(rows))
                failed |= missing
            rows = np.flatnonzero(parsed.bad & ~failed)
            if len(rows):
                texts = text.take(pa.array(rows)).to_pylist()
                failures.add(chunk.lines[rows], fspec.name, [parsed.reason(t) for t in texts])
                failed[rows] = True
        columns[Columns.Extra] = _extras(spec, chunk, header)
        table = pa.table(columns).filter(pa.array(~failed))
        table = table.cast(_schema(spec))
        return table.append_column(_LINE, pa.array(chunk.lines[~failed], type=pa.int64()))

    def _check_table(
        self, spec: TableSpec, frame: pd.DataFrame, lines: np.ndarray, failures: _Failures
    ) -> pd.DataFrame:
        """Checks across rows and tables, in order: value order, duplicates, references."""
        alive = np.ones(len(frame), dtype=bool)

        def reject(rejection: Rejection | None) -> None:
            if rejection is None or not len(rejection.rows):
                return
            failures.add(lines[rejection.rows], rejection.field, rejection.reasons)
            alive[rejection.rows] = False

        for rejection in order_violations(spec, frame):
            reject(_only_alive(rejection, alive))
        reject(duplicate_rows(frame, spec.key, lines, alive))
        if spec is ACHIEVEMENTS:
            reject(duplicate_rows(frame, (Columns.Achievement,), lines, alive))
        self._check_references(spec, frame, alive, reject)
        return frame if alive.all() else frame[alive].reset_index(drop=True)

    def _check_references(
        self, spec: TableSpec, frame: pd.DataFrame, alive: np.ndarray, reject: Callable[[Rejection | None], None]
    ) -> None:
        refs = [f for f in spec.fields if f.ref and f.kind is not Kind.WEIGHTED and self._checked(f)]
        self_ref = any(f.ref == spec.name for f in refs)
        while True:
            before = int(alive.sum())
            for fspec in refs:
                targets = self._targets(fspec, spec, frame, alive)
                rows = unknown_references(frame[fspec.name], targets)
                rows = rows[alive[rows]]
                values = frame[fspec.name].iloc[rows].tolist()
                reasons = [f"unknown {fspec.name} '{v}'" for v in values]
                reject(Rejection(rows, fspec.name, reasons))
            # A row referring to a row of its own table that was just rejected fails in turn.
            if not self_ref or int(alive.sum()) == before:
                break

    def _checked(self, fspec: FieldSpec) -> bool:
        """Required references always; optional ones only when the referred table is known at all."""
        assert fspec.ref is not None
        return fspec.required or fspec.ref == _COMPETENCES or fspec.ref in self.files or bool(self.known.get(fspec.ref))

    def _targets(self, fspec: FieldSpec, spec: TableSpec, frame: pd.DataFrame, alive: np.ndarray) -> pa.Array:
        assert fspec.ref is not None
        if fspec.ref not in self._known_arrays:
            self._known_arrays[fspec.ref] = pa.array(list(self.known.get(fspec.ref, ())), type=pa.large_string())
        parts: list[pa.Array] = [self._known_arrays[fspec.ref]]
        if fspec.ref == _COMPETENCES:
            parts.append(pa.array(sorted(self.context.competence_ids), type=pa.large_string()))
        if fspec.ref == spec.name:
            parts.append(string_array(frame[spec.key[0]][alive]))
        elif fspec.ref in self.kept_ids:
            parts.append(self.kept_ids[fspec.ref])
        return pc.unique(pa.concat_arrays(parts))


def _only_alive(rejection: Rejection, alive: np.ndarray) -> Rejection:
    keep = alive[rejection.rows]
    return Rejection(
        rejection.rows[keep], rejection.field, [r for r, k in zip(rejection.reasons, keep, strict=True) if k]
    )


def _header_problem(spec: TableSpec, header: list[str]) -> tuple[str, str] | None:
    """(field, reason) when a CSV header makes every row unusable: a required or repeated column."""
    if not header:
        return None
    for name in spec.required:
        if name not in header:
            return name, f"missing required column '{name}'"
    seen: set[str] = set()
    for name in header:
        if name in seen:
            return name, f"column '{name}' appears twice in the header"
        seen.add(name)
    return None


def _extras(spec: TableSpec, chunk: RawChunk, header: list[str]) -> pa.Array:
    """The `extra` JSON object of each row: unknown columns with a value, null when there are none."""
    if chunk.extras is not None:
        return pa.array(chunk.extras, type=pa.string())
    unknown = [name for name in header if name not in spec.names]
    present = {name: ~blank(chunk.columns[name]) for name in unknown}
    rows = np.flatnonzero(np.logical_or.reduce(list(present.values()))) if unknown else np.zeros(0, dtype=np.int64)
    out: list[str | None] = [None] * chunk.rows
    if len(rows):
        values = {name: chunk.columns[name].take(pa.array(rows)).to_pylist() for name in unknown}
        for i, row in enumerate(rows):
            obj = {name: values[name][i] for name in unknown if present[name][row]}
            out[row] = json.dumps(obj, ensure_ascii=False)
    return pa.array(out, type=pa.string())


def _schema(spec: TableSpec) -> pa.Schema:
    """Arrow schema of a parsed table: spec fields in order, then `extra`."""
    return pa.schema(
        [pa.field(f.name, arrow_type(f.kind)) for f in spec.fields] + [pa.field(Columns.Extra, pa.large_string())]
    )


def _to_frame(spec: TableSpec, parts: list[pa.Table]) -> tuple[pd.DataFrame, np.ndarray]:
    """Canonical pandas columns (see AifDataset) of the parsed rows, and their line numbers."""
    kinds = {f.name: f.kind for f in spec.fields}
    schema = _schema(spec).append(pa.field(_LINE, pa.int64()))
    table = pa.concat_tables(parts) if parts else schema.empty_table()
    data: dict[str, object] = {}
    for name in [*spec.names, Columns.Extra]:
        column = table.column(name)
        data[name] = _to_pandas(column, kinds.get(name, Kind.TEXT))
    lines = np.asarray(table.column(_LINE).to_numpy(), dtype=np.int64)
    return pd.DataFrame(data), lines


def _to_pandas(column: pa.ChunkedArray, kind: Kind) -> object:
    if kind is Kind.DATE:
        return column.to_numpy().astype("datetime64[s]")
    if kind is Kind.FLOAT:
        return np.asarray(column.to_numpy(), dtype="float64")
    if kind in (Kind.BOOL, Kind.INT):
        mask = np.asarray(column.is_null().to_numpy(), dtype=bool)
        filled = pc.fill_null(column, False if kind is Kind.BOOL else 0).to_numpy()
        if kind is Kind.BOOL:
            return pd.arrays.BooleanArray(np.asarray(filled, dtype=bool), mask)
        return pd.arrays.IntegerArray(np.asarray(filled, dtype=np.int64), mask)
    # Arrow-backed `string` over the parsed chunks as they are: no copy of millions of ids.
    return pd.arrays.ArrowStringArray(column)


def _quarantine(spec: TableSpec, path: Path, header: list[str], failures: _Failures) -> pd.DataFrame:
    """The quarantine rows of one file, with raw text; personal data in participant rows is masked."""
    order = np.argsort(np.asarray(failures.lines, dtype=np.int64), kind="stable")
    lines = [failures.lines[i] for i in order]
    jsonl = path.suffix == ".jsonl"
    raws = raw_records(path, lines, jsonl=jsonl)
    identity = frozenset(f.name for f in spec.fields if f.identity)
    texts: list[str | None] = []
    for line in lines:
        raw = raws.get(line)
        if raw is not None and identity:
            raw = (
                mask_json_record(raw, identity)
                if jsonl
                else mask_csv_record(raw, header, identity, frozenset(spec.key))
            )
        texts.append(None if raw is None else cut_raw(raw))
    return quarantine_frame(
        path.name,
        spec.name,
        lines,
        [failures.fields[i] for i in order],
        [failures.reasons[i] for i in order],
        texts,
    )
