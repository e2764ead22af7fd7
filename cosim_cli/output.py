"""What every ``cosim`` sub-command shares: exit statuses, strict JSON, reports, progress.

A command prints either its lines of text or, with ``--json``, one JSON object
on standard output; progress bars and, under ``--json``, the violations of an
invalid scenario go to standard error.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from cosim.io.results import check_output_directory
from cosim.progress import activity, bar
from cosim.scenario.game import ScenarioError
from market.pricing import Mode
from models.equilibrium import EquilibriumResult, solve_equilibrium
from models.game import Game

#: The command did what was asked.
EXIT_OK = 0
#: The results are written, but an equilibrium's fixed point did not converge.
EXIT_NOT_CONVERGED = 1
#: A bad scenario or option: nothing was computed or written.
EXIT_BAD_INPUT = 2
#: A worker process died (killed by the system, e.g. for memory); finished work is kept.
EXIT_WORKER_DIED = 3
#: Interrupted by Ctrl-C (SIGINT), as a shell reports it (128 + 2).
EXIT_INTERRUPTED = 130
#: Ended by SIGTERM (128 + 15).
EXIT_TERMINATED = 143


def json_safe(value: object) -> object:
    """``value`` with non-finite floats as strings, so the output is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def print_json(payload: dict) -> None:
    """Print ``payload`` as indented, strict JSON on standard output."""
    print(json.dumps(json_safe(payload), indent=2, default=str, allow_nan=False))


def emit(args: argparse.Namespace, payload: dict, lines: list[str]) -> None:
    """Print ``payload`` as JSON under ``--json``, else ``lines``."""
    if args.json:
        print_json(payload)
    else:
        print("\n".join(lines))


def report_invalid(args: argparse.Namespace, exc: ScenarioError) -> int:
    """Print every violation of an invalid scenario, one line each; return :data:`EXIT_BAD_INPUT`.

    The lines go to standard error, except for ``cosim validate`` without
    ``--json``, whose report they are (standard output). Under ``--json``
    standard output gets the violations as JSON.
    """
    if args.json:
        payload = {
            "valid": False,
            "file": exc.file,
            "violations": [
                {"path": v.path, "value": v.value, "rule": v.rule} for v in exc.violations
            ],
        }
        print_json(payload)
    for v in exc.violations:
        report = args.command == "validate" and not args.json
        print(v.format(exc.file), file=sys.stdout if report else sys.stderr)
    return EXIT_BAD_INPUT


def solve_with_progress(game: Game, mode: Mode) -> EquilibriumResult:
    """:func:`models.equilibrium.solve_equilibrium`, with its progress on stderr
    (:mod:`cosim.progress`: a bar of iterations with the residuals)."""
    label = f"GMFG fixed point ({mode})"
    with (
        activity(f"solving the {label}"),
        bar(game.config.solver.max_iterations, label, leave=False) as shown,
    ):

        def update(_: int, residuals: dict) -> None:
            shown.set_postfix(
                price=f"{residuals['price_residual']:.1e}",
                exploit=f"{residuals['exploitability']:.1e}",
                refresh=False,
            )
            shown.update(1)

        return solve_equilibrium(game, mode, on_iteration=update)


def add_quiet_argument(parser: argparse.ArgumentParser) -> None:
    """``--quiet``: no progress on stderr (errors and the result still appear)."""
    parser.add_argument("--quiet", action="store_true", help="no progress lines or bars on stderr")


def add_out_arguments(parser: argparse.ArgumentParser, default: str) -> None:
    """``--out DIR`` and ``--overwrite``, the options of every command that writes a result."""
    parser.add_argument(
        "--out",
        help=f"result directory (default: {default}); a new or empty directory, or an "
        "earlier result of this tool with --overwrite",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the earlier result in --out (never a directory holding other files)",
    )


def result_directory(args: argparse.Namespace, default: str) -> Path:
    """The command's ``--out`` (or ``default``), checked before any work starts.

    Raises
    ------
    cosim.io.results.OutputDirectoryError
        When writing there could lose files this tool did not create.
    """
    out = Path(args.out or default)
    check_output_directory(out, overwrite=args.overwrite)
    return out
