"""Findings and the validation report: plain data the CLI prints and the API returns."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    """One problem in one file (and column), with how many rows or users it hits and the fix.

    `check` is a short stable code (`wrong-dtype`, `missing-file`, `not-contiguous`, ...) that
    scripts can match on; `message` and `fix` are for the engineer reading the output.
    `unit` names what `count` counts ("rows", "users", "values"; "" for file-level findings).
    """

    severity: str  # "error" | "warning"
    file: str  # relative to the dataset dir: "events.parquet", "labels/churn_6m.parquet"
    column: str | None
    check: str
    message: str
    count: int
    examples: tuple[str, ...]
    fix: str
    unit: str = "rows"

    def line(self, root: str | os.PathLike | None = None, severity: bool = True) -> str:
        """`ERROR events.parquet[ts]: ... (12 rows, e.g. ...) — fix: ...`; with `root` the file is
        named by its path (`data/events.parquet[ts]: ...`), without `severity` no ERROR/WARNING."""
        where = (os.path.join(root, self.file) if root else self.file) + (
            f"[{self.column}]" if self.column else "")
        detail = []
        if self.count:
            unit = self.unit[:-1] if self.count == 1 and self.unit.endswith("s") else self.unit
            detail.append(f"{self.count:,} {unit}".rstrip())
        if self.examples:
            detail.append("e.g. " + ", ".join(self.examples))
        extent = f" ({'; '.join(detail)})" if detail else ""
        fix = f" — fix: {self.fix}" if self.fix else ""
        return (f"{self.severity.upper()} " if severity else "") + f"{where}: {self.message}{extent}{fix}"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["examples"] = list(self.examples)
        return d


@dataclass
class ValidationReport:
    """Every finding for one dataset directory. `exit_code`: 2 unusable, 1 errors, 0 clean."""

    root: str
    findings: list[Finding] = field(default_factory=list)
    unusable: bool = False

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == ERROR]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == WARNING]

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def exit_code(self) -> int:
        if self.unusable:
            return 2
        return 1 if self.errors else 0

    def to_dict(self) -> dict:
        return {
            "root": self.root,
            "valid": self.ok,
            "unusable": self.unusable,
            "exit_code": self.exit_code,
            "n_errors": len(self.errors),
            "n_warnings": len(self.warnings),
            "findings": [f.to_dict() for f in self.findings],
        }
