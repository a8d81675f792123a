"""A minimal valid task file as a mapping, for tests that change one key at a time."""

from __future__ import annotations

import json

BASE_TASK = {
    "name": "toy",
    "data": {"test": "toy.jsonl"},
    "prompt": {
        "question": "Does the protein associate with metal ion binding?",
        "prefix": "Based on the record, the answer is",
    },
    "candidates": [" no", " yes"],
}


def task_dict(**changes):
    """BASE_TASK with ``changes`` applied (a value of None removes the key)."""
    d = json.loads(json.dumps(BASE_TASK))
    for k, v in changes.items():
        if v is None:
            d.pop(k)
        else:
            d[k] = v
    return d
