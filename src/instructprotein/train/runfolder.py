"""The run folder: what a run writes, its checkpoints, the best model, and refusing to overwrite a run.

Apart from the loop (:mod:`~instructprotein.train.loop`) so that the recipe reads top to
bottom; the folder's layout is described there. A checkpoint is written aside and renamed,
so it is complete or absent; ``--force`` removes exactly :data:`RUN_OUTPUTS`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from instructprotein.errors import InputError
from instructprotein.jsonable import json_default as _json_default
from instructprotein.model.presets import Preset
from instructprotein.train.data import StageData

if TYPE_CHECKING:
    from accelerate import Accelerator


KEEP_CHECKPOINTS = 2


RUN_OUTPUTS = ("model", "checkpoints", "tokenizer", "data", "log.csv", "tensorboard", "loss.png", "training.json")
"""What a run writes into its folder; ``--force`` removes exactly these, nothing else."""


@dataclass
class TrainState:
    """Everything besides model/optimiser/RNG that a resumed run needs (``state.json``)."""

    step: int = 0
    rows_seen: int = 0
    tokens: int = 0
    elapsed_s: float = 0.0
    best_val: float = math.inf
    best_step: int = -1
    bad_evals: int = 0
    last_eval_step: int = -1
    initial_val: float | None = None
    last_val: float | None = None
    data_fingerprint: str = ""
    stage: str = ""


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint (``checkpoints/step-N`` with its ``state.json``), or None."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return None
    done = [p for p in folder.glob("step-*") if p.is_dir() and (p / "state.json").exists()]
    return max(done, key=_checkpoint_step) if done else None


def _checkpoint_step(path: Path) -> int:
    try:
        return int(path.name.split("-", 1)[1])
    except (IndexError, ValueError):
        return -1


def check_run_dir(run_dir: str | Path, *, resume: bool, force: bool) -> None:
    """Refuse to train into a folder that holds a run unless ``resume`` or ``force``; nothing is written."""
    run_dir = Path(run_dir)
    if resume and force:
        raise InputError("--resume and --force exclude each other (continue the run, or start over)")
    if run_dir.exists() and not run_dir.is_dir():
        raise InputError("the run folder is a file", run_dir)
    finished = (run_dir / "training.json").exists()
    found = [name for name in ("model", "training.json") if (run_dir / name).exists()]
    if latest_checkpoint(run_dir) is not None:
        found.append("checkpoints")
    if found and not (resume or force):
        what = "a finished run" if finished else "an interrupted run"
        raise InputError(
            f"holds {what} ({', '.join(found)}); pass --resume to continue it, or --force to start over "
            "(deletes its model, checkpoints and logs), or choose another --out",
            run_dir,
        )


def clear_run_dir(run_dir: str | Path) -> None:
    """Remove what a run writes (``RUN_OUTPUTS``) from ``run_dir``, nothing else."""
    run_dir = Path(run_dir)
    for name in RUN_OUTPUTS:
        path = run_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def save_checkpoint(accelerator: Accelerator, run_dir: Path, state: TrainState) -> Path:
    """``accelerator.save_state`` into ``checkpoints/.step-N.tmp``, then ``state.json``, then rename to
    ``checkpoints/step-N``: a checkpoint folder is complete or absent. Keeps the newest two."""
    folder = run_dir / "checkpoints"
    final = folder / f"step-{state.step:05d}"
    tmp = folder / f".step-{state.step:05d}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        for stale in folder.glob(".step-*.tmp"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    with _quiet("accelerate"):  # "Removed shared tensor lm_head.weight": the tied output layer, restored on load
        accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / "state.json").write_text(
            json.dumps(asdict(state), indent=2, default=_json_default) + "\n", encoding="utf-8"
        )
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        done = sorted((p for p in folder.glob("step-*") if p.is_dir()), key=_checkpoint_step)
        for old in done[:-KEEP_CHECKPOINTS]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


@contextlib.contextmanager
def _quiet(logger: str):
    target = logging.getLogger(logger)
    level = target.level
    target.setLevel(logging.ERROR)
    try:
        yield
    finally:
        target.setLevel(level)


def _save_model(
    accelerator: Accelerator, model: Any, tokenizer: Any, path: Path, preset: Preset, metrics: dict[str, Any]
) -> None:
    """The unwrapped model as a Hugging Face folder; FSDP/DeepSpeed gather the full state dict first."""
    from accelerate.utils import DistributedType

    from instructprotein.model.factory import save_model

    sharded = accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)
    state_dict = accelerator.get_state_dict(model) if sharded else None  # collective: every process
    if accelerator.is_main_process:
        from transformers.utils import logging as hf_logging

        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # "Writing model shards" at every improvement would bury the training bar
        try:
            save_model(
                accelerator.unwrap_model(model),
                tokenizer,
                path,
                state_dict=state_dict,
                extra_files={
                    "preset.yaml": preset.to_yaml(),
                    "metrics.json": json.dumps(metrics, indent=2, default=_json_default) + "\n",
                },
            )
        finally:
            if bars:
                hf_logging.enable_progress_bar()
    accelerator.wait_for_everyone()


def _data_fingerprint(data: StageData) -> str:
    if data.path is None:
        return ""
    try:
        return json.loads((data.path / "meta.json").read_text(encoding="utf-8")).get("fingerprint", "")
    except (OSError, ValueError):
        return ""
