"""Opening one parquet file and streaming it in record batches, with the checks every table
shares: the file is there and is parquet, it has rows, each contract column exists with the
right type, and required columns have no nulls.

Memory stays bounded by the batch size: nothing here holds a whole column.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pragmatiq.data.validate.dtypes import accepts, coerce, dtype_fix, dtype_hint
from pragmatiq.data.validate.report import ERROR, WARNING, Finding

BATCH_ROWS = 1 << 17
N_EXAMPLES = 3


def first_true(mask: pa.Array, k: int = N_EXAMPLES) -> list[int]:
    """Indices of the first `k` true entries of a boolean array (nulls count as false)."""
    return pc.indices_nonzero(pc.fill_null(mask, False)).slice(0, k).to_pylist()


def n_true(mask: pa.Array) -> int:
    return int(pc.sum(pc.fill_null(mask, False)).as_py() or 0)


class Tally:
    """How many rows (or users) a check hit so far, and the first few examples."""

    def __init__(self) -> None:
        self.count = 0
        self.examples: list[str] = []

    def add(self, mask: pa.Array, describe: Callable[[list[int]], list[str]]) -> None:
        """Count the true entries of `mask`; `describe(indices)` renders examples."""
        n = n_true(mask)
        if not n:
            return
        self.count += n
        room = N_EXAMPLES - len(self.examples)
        if room > 0:
            self.examples += describe(first_true(mask, room))

    def finding(self, severity: str, file: str, column: str | None, check: str, message: str,
                fix: str, unit: str = "rows") -> list[Finding]:
        if not self.count:
            return []
        return [Finding(severity, file, column, check, message, self.count,
                        tuple(self.examples[:N_EXAMPLES]), fix, unit)]


class IdSet:
    """Distinct ids seen over a stream of batches; memory grows with distinct ids only."""

    def __init__(self, cap: int = 1 << 20) -> None:
        self._parts: list[pa.Array] = []
        self._pending = 0
        self._cap = cap

    def add(self, ids: pa.Array) -> None:
        self._parts.append(pc.unique(ids.drop_null()))
        self._pending += len(self._parts[-1])
        if self._pending > self._cap:
            self._compact()

    def _compact(self) -> None:
        if len(self._parts) > 1:
            self._parts = [pc.unique(pa.concat_arrays(self._parts))]
        self._pending = len(self._parts[0]) if self._parts else 0

    def values(self) -> pa.Array:
        self._compact()
        return self._parts[0] if self._parts else pa.array([], pa.string())


def quote(v) -> str:
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


def show(x: pa.Scalar) -> str:
    """One value for an example; timestamps as text, even those beyond Python's datetime."""
    if pa.types.is_timestamp(x.type):
        if not x.is_valid:
            return "None"
        try:
            return str(x.as_py())
        except (ValueError, OverflowError):
            return f"{x.value} {x.type.unit} since epoch"
    return quote(x.as_py())


def row_examples(offset: int, idx: list[int], cols: dict[str, pa.Array],
                 columns: tuple[str, ...] = ("user_id",)) -> list[str]:
    """`row 12 (user_id='u3')` for each index, with the values of `columns`."""
    out = []
    for i in idx:
        vals = [f"{c}={show(cols[c][i])}" for c in columns if c in cols]
        out.append(f"row {offset + i}" + (f" ({', '.join(vals)})" if vals else ""))
    return out


def _sniff(path: Path) -> str:
    """A guess at what a file that parquet cannot open actually is."""
    with open(path, "rb") as fh:
        head = fh.read(64)
        fh.seek(max(path.stat().st_size - 4, 0))
        tail = fh.read(4)
    if head[:4] == b"PAR1":
        return ("it is parquet but its metadata is corrupt" if tail == b"PAR1"
                else "it is truncated (no parquet footer)")
    if head[:1] in (b"{", b"["):
        return "it looks like JSON"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if "," in text:
        return "it looks like CSV"
    return "it is not parquet"


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def open_parquet(root: Path, rel: str, *,
                 required: bool) -> tuple[pq.ParquetFile | None, list[Finding]]:
    """Open `root/rel`; on any problem return None and the findings explaining it.

    A required file that is absent is an error; an optional one is simply skipped. A file that
    is present but unreadable is an error either way. A parquet file with zero rows is returned
    (its schema is still worth checking) with an error, or a warning when the file is optional.
    """
    path = root / rel
    if not path.exists():
        if not required:
            return None, []
        return None, [Finding(ERROR, rel, None, "missing-file", "required file is missing",
                              0, (), f"write {rel} into {root} (see DESIGN §2 / "
                              "pragmatiq.data.schema for its columns)", "")]
    if path.is_dir():
        return None, [Finding(ERROR, rel, None, "not-a-file",
                              "is a directory (a multi-part parquet dataset), expected one file",
                              0, (), "write a single file, e.g. Spark .coalesce(1) or "
                              "pq.ParquetWriter over pyarrow.dataset.dataset(dir).to_batches()",
                              "")]
    if path.stat().st_size == 0:
        return None, [Finding(ERROR, rel, None, "empty-file", "file is empty (0 bytes)", 0, (),
                              f"rewrite it: pq.write_table(table, '{rel}')", "")]
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        return None, [Finding(ERROR, rel, None, "corrupt-file",
                              f"cannot be read as parquet: {_sniff(path)} ({_one_line(exc)})",
                              0, (),
                              f"rewrite it with pyarrow: pq.write_table(table, '{rel}') "
                              "(for CSV/JSON: pyarrow.csv.read_csv / pyarrow.json.read_json "
                              "first, then cast to the contract schema)", "")]
    if pf.metadata.num_rows == 0:
        return pf, [Finding(ERROR if required else WARNING, rel, None, "empty-file",
                            "parquet file has no rows", 0, (),
                            "write the data into it (or remove the file if it is optional)", "")]
    return pf, []


def map_keys_leaf(pf: pq.ParquetFile, column: str) -> str | None:
    """The parquet path of a map column's keys (`fields.key_value.key`), or None when the
    column is not stored as a map. Reading it yields list<struct<key>> with the map's nulls."""
    if not pa.types.is_map(pf.schema_arrow.field(column).type):
        return None
    paths = [pf.schema.column(i).path for i in range(len(pf.schema))]
    keys = [p for p in paths if p.startswith(column + ".") and p.count(".") == 2
            and p.endswith(".key")]
    return keys[0] if len(keys) == 1 else None


_NULL_FIX = {
    "user_id": 'drop rows with no user: table = table.filter(pc.is_valid(table["user_id"]))',
    "fields": "write a map for every event (an empty map {} if it truly has no fields), "
              "never null",
    "attributes": "write an empty map {} for a profile with no attributes, never null",
    "lifelong": "write an empty list [] for a profile with no milestones, never null",
}


def column_findings(pf: pq.ParquetFile, rel: str, expected: pa.Schema, schema_name: str,
                    columns: tuple[str, ...] | None = None,
                    accept: Callable[[pa.DataType, pa.DataType], bool] = accepts,
                    ) -> tuple[dict[str, pa.DataType], list[Finding]]:
    """The checks a file's schema alone answers: every contract column (`columns`, default all)
    exists and has an accepted type. Reads no data beyond a 64-row head of mistyped columns
    (it picks the exact fix, e.g. the epoch unit). -> (plan: the present columns and their
    contract types, findings). `accept(actual, expected)`: the type rule (default: the
    contract's; a reader that converts more, such as the tokenizer, passes its own)."""
    num_rows = pf.metadata.num_rows
    actual = pf.schema_arrow
    plan: dict[str, pa.DataType] = {}
    findings: list[Finding] = []
    mistyped: list[str] = []
    for name in columns or tuple(expected.names):
        exp = expected.field(name).type
        if actual.get_field_index(name) < 0:
            findings.append(Finding(
                ERROR, rel, name, "missing-column",
                f"column '{name}' ({exp}) is missing; the file has {actual.names}",
                num_rows, (), f"add '{name}' as {exp} ({schema_name})"))
            continue
        plan[name] = exp
        if not accept(actual.field(name).type, exp):
            mistyped.append(name)
    if not mistyped:
        return plan, findings
    sample = {}
    if num_rows:
        try:
            head = next(pf.iter_batches(batch_size=64, columns=mistyped))
            sample = dict(zip(head.schema.names, head.columns))
        except (pa.ArrowException, OSError, StopIteration):
            sample = {}
    for name in mistyped:
        act, exp = actual.field(name).type, expected.field(name).type
        findings.append(Finding(
            ERROR, rel, name, "wrong-dtype",
            f"column '{name}' is {act}{dtype_hint(act, exp)}, the contract says {exp}",
            num_rows, (), dtype_fix(name, act, exp, schema_name, sample.get(name))))
    return plan, findings


def null_finding(rel: str, name: str, count: int, examples: list[str] | tuple[str, ...]) -> list[Finding]:
    """The error for `count` nulls in required column `name` (none when count is 0)."""
    if not count:
        return []
    return [Finding(ERROR, rel, name, "null-values", f"required column '{name}' has nulls", count,
                    tuple(examples[:N_EXAMPLES]),
                    _NULL_FIX.get(name, f'drop or fill these rows: table = '
                                        f'table.filter(pc.is_valid(table["{name}"]))'))]


def metadata_null_counts(pf: pq.ParquetFile, names: list[str]) -> dict[str, int | None]:
    """Nulls of top-level scalar columns from the parquet statistics alone (no data read);
    None for a column whose row groups do not all record a null count."""
    leaf = {pf.schema.column(i).path: i for i in range(len(pf.schema))}
    out: dict[str, int | None] = {}
    for name in names:
        i, total = leaf.get(name), 0
        for g in range(pf.metadata.num_row_groups if i is not None else 0):
            stats = pf.metadata.row_group(g).column(i).statistics
            if stats is None or not stats.has_null_count:
                total = None
                break
            total += stats.null_count
        out[name] = total if i is not None else None
    return out


class TableScan:
    """One parquet file against one contract schema: column and type checks up front, then
    null counts while the caller streams coerced columns with `batches()`.

    `columns` lists the contract columns to check (all by default; an unknown label task
    checks only user_id). Columns missing or uncoercible are left out of the batches.
    """

    def __init__(self, pf: pq.ParquetFile, rel: str, expected: pa.Schema, schema_name: str,
                 columns: tuple[str, ...] | None = None) -> None:
        self.pf, self.rel = pf, rel
        self.failed = False
        self.num_rows = pf.metadata.num_rows
        self.plan, self.findings = column_findings(pf, rel, expected, schema_name, columns)
        self.nulls = {name: Tally() for name in self.plan}

    def batches(self, batch_rows: int | None = None, read_as: dict[str, str] | None = None
                ) -> Iterator[tuple[int, dict[str, pa.Array]]]:
        """Yield `(row offset, {column: coerced array})`; counts nulls on the way. A read
        error mid-file becomes a `corrupt-file` finding and ends the stream.

        `read_as` maps a column to the parquet leaf to read in its place (`map_keys_leaf`):
        a map's keys alone tell nulls and empties apart at a third of the decoding cost.
        """
        offset = 0
        names = [(read_as or {}).get(n, n) for n in self.plan]
        try:
            for batch in self.pf.iter_batches(batch_size=batch_rows or BATCH_ROWS, columns=names):
                raw = dict(zip(batch.schema.names, batch.columns))
                for name, arr in raw.items():
                    if arr.null_count:
                        self.nulls[name].add(arr.is_null(),
                                             lambda idx: row_examples(offset, idx, raw))
                cols = {}
                for name, arr in raw.items():
                    c = coerce(arr, self.plan[name])
                    if c is not None:
                        cols[name] = c
                yield offset, cols
                offset += batch.num_rows
        except (pa.ArrowException, OSError) as exc:
            self.failed = True
            self.findings.append(Finding(
                ERROR, self.rel, None, "corrupt-file",
                f"read failed after row {offset}: {_one_line(exc)}",
                self.num_rows - offset, (), f"rewrite {self.rel} from its source"))

    def finish(self) -> list[Finding]:
        out = list(self.findings)
        for name, tally in self.nulls.items():
            out += null_finding(self.rel, name, tally.count, tally.examples)
        return out
