"""Argument types shared by the ``cosim`` sub-commands (a violation exits with status 2)."""

from __future__ import annotations

import argparse
from collections.abc import Callable


def counted(minimum: int, reason: str = "") -> Callable[[str], int]:
    """An argparse type: an integer ≥ ``minimum``; ``reason`` is added to the message."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: not an integer") from None
        if value < minimum:
            why = f" ({reason})" if reason else ""
            raise argparse.ArgumentTypeError(f"{value}: must be ≥ {minimum}{why}")
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
