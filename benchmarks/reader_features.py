"""Which features should the system's sequence reader use? Plain composition against the reader's.

The reader (``infer/reader.py``) answers where no homolog is found, and is weighed beside the
homologs everywhere else. For each kind the system reads (location, membrane, metal), this
trains it on the instruction set's held-out ``train`` split twice in one run, once on plain
composition (``composition-420``, the composition baseline's features) and once on the
reader's features (``sequence-513``: the termini, hydropathy, metal-site residue pairs), each
with its L2 strength picked by 3-fold cross-validated log loss, and prints the cross-validated
and ``valid``-split accuracy and log loss of both. The ratio is the reader's validation
accuracy over composition's (above 1.00x: the extra features read something composition
misses), and composition's validation log loss over the reader's (above 1.00x: the reader's
probabilities, which the combination weighs, are better). No test set is read.

    python benchmarks/reader_features.py --instructions WORKDIR/instructions [--max-train 20000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TASKS = {"location": "deeploc10", "membrane": "deeploc_binary", "metal": "metal_ion_binding"}
"""Each read kind and a task whose validation twin asks it (the twin's items are the kind's)."""


def kind_data(instructions: Path, task: str, max_train: int) -> tuple[list, list, list[str]]:
    """(train, valid, classes) of a task's validation twin: (sequence, label) pairs."""
    from instructprotein.evaluate.data import load_task_data
    from instructprotein.evaluate.run_inputs import load_specs, open_inputs
    from instructprotein.evaluate.system import validation_spec

    with tempfile.TemporaryDirectory() as tmp:
        src = open_inputs(
            Path(tmp), kg=None, decontamination_dir=None, instructions_dir=instructions, max_identity=None
        )
        assert src.heldout is not None
        spec = validation_spec(load_specs([task], None)[0])
        data = load_task_data(spec, kg=src.heldout.kg, heldout=src.heldout, seed=0, max_train=max_train)
    pairs = [(i.sequence, i.label) for i in data.train or () if i.label in spec.classes]
    return pairs, [(i.sequence, i.label) for i in data.items if i.label in spec.classes], spec.classes


def measure(train: list, valid: list, classes: list[str], features: str) -> dict[str, float]:
    from instructprotein.evaluate.baselines import CompositionModel

    start = time.perf_counter()
    model = CompositionModel(
        [s for s, _ in train], [t for _, t in train], classes, features=features, criterion="log_loss"
    )
    _, prob = model.predict([s for s, _ in valid])
    y = np.array([classes.index(t) for _, t in valid])
    p_true = np.clip(prob[np.arange(len(y)), y], 1e-12, 1.0)
    cv = model.info["cv_log_loss"][f"{model.info['c']:g}"]
    return {
        "c": model.info["c"],
        "cv_log_loss": cv,
        "valid_accuracy": float(np.mean(prob.argmax(axis=1) == y)),
        "valid_log_loss": float(-np.mean(np.log(p_true))),
        "seconds": time.perf_counter() - start,
    }


def main(argv: list[str] | None = None) -> int:
    from instructprotein.infer.reader import COMPOSITION, READER_FEATURES

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instructions", type=Path, required=True, help="the instruction set's folder (with splits/)")
    ap.add_argument("--max-train", type=int, default=20000, help="train proteins per kind (a seeded sample)")
    args = ap.parse_args(argv)
    if not (args.instructions / "splits").is_dir():
        print(f"error: {args.instructions} has no splits/ (give an instruction set's folder)", file=sys.stderr)
        return 2
    print(f"{'kind':9s} {'features':16s} {'train':>6s} {'C':>6s} {'cv loss':>8s} {'valid acc':>9s} {'valid loss':>10s}")
    for kind, task in TASKS.items():
        train, valid, classes = kind_data(args.instructions, task, args.max_train)
        got = {}
        for features in (COMPOSITION, READER_FEATURES):
            r = got[features] = measure(train, valid, classes, features)
            print(
                f"{kind:9s} {features:16s} {len(train):6d} {r['c']:6g} {r['cv_log_loss']:8.4f} "
                f"{100 * r['valid_accuracy']:8.1f}% {r['valid_log_loss']:10.4f}   ({r['seconds']:.0f} s)"
            )
        acc = got[READER_FEATURES]["valid_accuracy"] / max(got[COMPOSITION]["valid_accuracy"], 1e-9)
        loss = got[COMPOSITION]["valid_log_loss"] / max(got[READER_FEATURES]["valid_log_loss"], 1e-9)
        print(
            f"{kind:9s} reader against composition on {len(valid)} validation proteins: "
            f"accuracy {acc:.2f}x, log loss {loss:.2f}x lower"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
