"""Argument types shared by the ``cosim`` sub-commands (a violation exits with status 2)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import NoReturn


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr, status 2 (no usage block)."""

    def error(self, message: str) -> NoReturn:
        """Print ``PROG: MESSAGE (PROG --help lists the options)`` and exit with status 2."""
        print(f"{self.prog}: {message} ({self.prog} --help lists the options)", file=sys.stderr)
        raise SystemExit(2)


def counted(minimum: int, reason: str = "", maximum: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer ≥ ``minimum`` (and ≤ ``maximum`` when given).

    ``reason`` is added to the message of a value below ``minimum``.
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: not an integer") from None
        if value < minimum:
            why = f" ({reason})" if reason else ""
            raise argparse.ArgumentTypeError(f"{value}: must be ≥ {minimum}{why}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{value}: must be ≤ {maximum}")
        return value

    return parse


def resolution(text: str) -> float:
    """An argparse type: a finite amount ≥ 0 (e.g. a resolution in $)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: not a number") from None
    if not (value >= 0.0 and value < float("inf")):
        raise argparse.ArgumentTypeError(f"{value}: must be a finite number ≥ 0")
    return value
