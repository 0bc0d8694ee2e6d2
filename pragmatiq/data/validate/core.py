"""`validate_dataset`: every file through its checks, then the checks across files."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from pragmatiq.data import schema
from pragmatiq.data.validate.events import EventFacts, check_events
from pragmatiq.data.validate.labels import check_labels
from pragmatiq.data.validate.report import ERROR, WARNING, Finding, ValidationReport
from pragmatiq.data.validate.scan import TableScan, open_parquet, quote
from pragmatiq.data.validate.tables import check_profiles, check_transfers

_NAMES = {schema.EVENTS_FILE: "pragmatiq.data.schema.EVENTS",
          schema.PROFILES_FILE: "pragmatiq.data.schema.PROFILES",
          schema.TRANSFERS_FILE: "pragmatiq.data.schema.TRANSFERS"}
_CONTRACT = {schema.EVENTS_FILE: schema.EVENTS, schema.PROFILES_FILE: schema.PROFILES,
             schema.TRANSFERS_FILE: schema.TRANSFERS}


def _not_in(ids: pa.Array, reference: pa.Array) -> pa.Array:
    """The ids absent from `reference` (both distinct string arrays)."""
    return ids.filter(pc.invert(pc.is_in(ids, value_set=reference)))


# users with events must have a profile row (tokenize refuses them too)
NO_PROFILE = ("users with events but no row in profiles.parquet",
              "add a profiles.parquet row (user_id, as_of, attributes, lifelong) for each, or drop their events")


def membership_findings(rel: str, column: str, ids: pa.Array | None, profiles: pa.Array | None,
                severity: str, message: str, fix: str,
                check: str = "unknown-user") -> list[Finding]:
    """A finding for the `ids` missing from `profiles` (skipped when either is unknown)."""
    if ids is None or profiles is None:
        return []
    missing = _not_in(ids, profiles)
    if not len(missing):
        return []
    ex = tuple(quote(u) for u in missing.slice(0, 3).to_pylist())
    return [Finding(severity, rel, column, check, message, len(missing), ex, fix, "users")]


def _scan(root: Path, rel: str, required: bool) -> tuple[TableScan | None, list[Finding], bool]:
    """Open a contract file; returns (scan or None, findings, unreadable)."""
    pf, found = open_parquet(root, rel, required=required)
    if pf is None:
        return None, found, bool(found) or required
    return TableScan(pf, rel, _CONTRACT[rel], _NAMES[rel]), found, False


def _label_files(root: Path) -> tuple[list[tuple[str, str]], list[Finding]]:
    """(relative path, task) for each labels/*.parquet; other files there get a warning."""
    d = root / schema.LABELS_DIR
    if not d.is_dir():
        return [], []
    files, out = [], []
    for p in sorted(d.iterdir()):
        rel = f"{schema.LABELS_DIR}/{p.name}"
        if p.suffix == ".parquet":
            files.append((rel, p.stem))
        elif not p.name.startswith("."):
            out.append(Finding(WARNING, rel, None, "ignored-file",
                               "not a .parquet file, so it is not read as a label table", 0, (),
                               f"write it as {schema.LABELS_DIR}/<task>.parquet", ""))
    return files, out


def validate_dataset(path: str | os.PathLike) -> ValidationReport:
    """Check a dataset directory against the data contract (DESIGN §2).

    Every file is streamed once in record batches; every finding is collected (none stops
    the check). `report.unusable` is set when the directory, or a required file, cannot be
    read at all; `report.exit_code` is then 2, else 1 with any error, else 0.
    """
    root = Path(path)
    report = ValidationReport(str(root))
    if not root.is_dir():
        what = "does not exist" if not root.exists() else "is not a directory"
        report.findings.append(Finding(ERROR, ".", None, "missing-directory",
                                       f"dataset directory {root} {what}", 0, (),
                                       "pass the directory holding events.parquet and "
                                       "profiles.parquet", ""))
        report.unusable = True
        return report
    add = report.findings.extend

    events: EventFacts | None = None
    scan, found, bad = _scan(root, schema.EVENTS_FILE, required=True)
    add(found)
    report.unusable |= bad
    if scan is not None:
        found, events = check_events(scan)
        add(found)
        report.unusable |= scan.failed
        events = None if scan.failed else events  # partial facts would mislead cross checks

    profile_users = None
    scan, found, bad = _scan(root, schema.PROFILES_FILE, required=True)
    add(found)
    report.unusable |= bad
    if scan is not None:
        found, profile_users = check_profiles(scan)
        add(found)
        report.unusable |= scan.failed
        profile_users = None if scan.failed else profile_users

    event_users = events.users if events else None
    add(membership_findings(schema.EVENTS_FILE, "user_id", event_users, profile_users, ERROR, *NO_PROFILE))
    add(membership_findings(schema.PROFILES_FILE, "user_id", profile_users, event_users, WARNING,
                    "profiles with no events (their embedding sees only the profile)",
                    "drop these profiles, or check that their events were exported", "no-events"))

    scan, found, _ = _scan(root, schema.TRANSFERS_FILE, required=False)
    add(found)
    if scan is not None:
        found, ends = check_transfers(scan)
        add(found)
        # A warning, not an error: a counterparty outside the book (another bank's customer)
        # is normal, and nothing downstream needs a profile for it.
        add(membership_findings(schema.TRANSFERS_FILE, "from_user/to_user", ends, profile_users,
                        WARNING, "transfer counterparties with no row in profiles.parquet "
                        "(external accounts?)", "fine for accounts outside the book; otherwise "
                        "add their profiles"))

    files, found = _label_files(root)
    add(found)
    for rel, task in files:
        pf, found = open_parquet(root, rel, required=False)
        add(found)
        if pf is None:
            continue
        found, label_users = check_labels(pf, rel, task, events)
        add(found)
        add(membership_findings(rel, "user_id", label_users, profile_users, ERROR,
                        "labelled users with no row in profiles.parquet",
                        "drop these label rows, or add the users' profiles and events"))
    return report
