"""`pragmatiq validate`: check a dataset directory against the parquet contract (DESIGN §2).

    from pragmatiq.data.validate import validate_dataset
    report = validate_dataset("data")
    for f in report.findings:
        print(f.line())          # ERROR events.parquet[ts]: ... — fix: ...
    report.exit_code             # 0 clean (warnings allowed), 1 errors, 2 unusable

Modules: `report` (Finding, ValidationReport), `scan` (opening files, column/type/null checks
shared by every table), `dtypes` (accepted types and the exact cast that fixes a wrong one),
`events`, `fields`, `tables` (profiles, transfers), `labels`, `core` (the orchestration and the
checks across files). Everything streams record batches through `pyarrow.compute`.
"""

from pragmatiq.data.validate.core import validate_dataset
from pragmatiq.data.validate.report import Finding, ValidationReport

__all__ = ["Finding", "ValidationReport", "validate_dataset"]
