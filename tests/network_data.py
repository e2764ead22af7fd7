"""Where the tests find the Hawaii40 case, which the repository does not ship (docs/data.md).

``$COSIM_DATA_DIR/hawaii40.m`` when the variable is set, as for users; else the
developers' own copy beside the checkout, ``../shared/data/hawaii40.m``. A test
that needs the case skips when it is absent; one that runs a shipped scenario
sets ``COSIM_DATA_DIR`` to ``HAWAII40.parent``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from models.config import DATA_DIR_VARIABLE

#: The developers' data directory, used when ``COSIM_DATA_DIR`` is not set.
DEVELOPERS_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
#: The Hawaii40 MATPOWER case the tests use.
HAWAII40: Path = Path(os.environ.get(DATA_DIR_VARIABLE) or DEVELOPERS_DATA) / "hawaii40.m"
#: Why a test that needs the case skipped.
HAWAII40_MISSING = (
    f"Hawaii40 not found at {HAWAII40}; set {DATA_DIR_VARIABLE} to the directory holding "
    "hawaii40.m (docs/data.md says where to get it)"
)


def needs_hawaii40() -> Path:
    """The case's path; skips the calling test when the file is absent."""
    if not HAWAII40.is_file():
        pytest.skip(HAWAII40_MISSING)
    return HAWAII40
