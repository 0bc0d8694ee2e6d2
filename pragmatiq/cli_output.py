"""How every pragmatiq command reports: results as JSON on stdout, user errors as one line."""

from __future__ import annotations

import functools
import json
import os
import sys
import warnings

import click

from pragmatiq._optional import MissingExtraError

USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, MissingExtraError, KeyError)


def _warning_line(message, category, filename, lineno, line=None) -> str:
    return f"warning: {message}\n"


def one_line_warnings() -> None:
    """Show Python warnings as `warning: ...` lines on stderr, as the commands' own warnings are
    (not with the file, line and source line of the code that raised them)."""
    warnings.formatwarning = _warning_line


def emit(result) -> None:
    """Print a result as JSON on stdout."""
    click.echo(json.dumps(result, indent=2, default=str))


def user_errors(fn=None, *, extra: tuple[type[BaseException], ...] = (), modules: tuple[str, ...] = ()):
    """Turn expected failures (USER_ERRORS, `extra` types, exceptions from `modules`) into one line
    `error: ...` on stderr and exit code 2; `PRAGMATIQ_DEBUG=1` re-raises with the traceback."""

    def decorate(f):
        @functools.wraps(f)
        def wrapper(*args, **kwargs):
            try:
                return f(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - classified below
                expected = isinstance(exc, USER_ERRORS + extra)
                expected |= bool(modules) and type(exc).__module__.startswith(modules)
                if os.environ.get("PRAGMATIQ_DEBUG") or not expected:
                    raise
                msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
                click.echo(f"error: {msg}", err=True)
                sys.exit(2)

        return wrapper

    return decorate(fn) if fn is not None else decorate
