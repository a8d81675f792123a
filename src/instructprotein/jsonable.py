"""The one ``default=`` for ``json.dumps`` of results, summaries and training state.

numpy scalars and arrays become plain numbers and lists, paths become text; anything else is
a ``TypeError``, so an object that has no meaning in JSON fails loudly where it is written
instead of landing in a results file as its ``repr``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
