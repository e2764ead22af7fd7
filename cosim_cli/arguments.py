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
