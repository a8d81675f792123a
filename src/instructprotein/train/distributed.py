"""Processes, devices and precision: the ``Accelerator`` a run trains through, and running a
step on the main process first (it builds caches the others read).

Apart from the loop (:mod:`~instructprotein.train.loop`); the launch commands are described there.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from instructprotein.errors import InputError
from instructprotein.model.presets import TrainSpec

if TYPE_CHECKING:
    from accelerate import Accelerator


def resolve_precision(precision: str, device_type: str) -> str:
    """``accelerate``'s mixed_precision for a preset's ``precision``: ``auto`` = bf16 where the device has it."""
    import torch

    if precision == "auto":
        return "bf16" if device_type == "cuda" and torch.cuda.is_bf16_supported() else "no"
    return {"fp32": "no", "bf16": "bf16", "fp16": "fp16"}[precision]


def make_accelerator(spec: TrainSpec, *, deterministic: bool = False) -> Accelerator:
    """An ``Accelerator`` for the processes ``accelerate launch`` (or torchrun) started, or one process.

    Gradient accumulation and precision come from the preset, not from the launch config:
    the preset's batch is in tokens, so the accumulation depends on the number of processes.
    """
    import torch
    from accelerate import Accelerator, PartialState
    from accelerate.utils import is_mps_available, is_npu_available, is_xpu_available

    # Without an accelerator device, processes started by torchrun / accelerate launch train on
    # CPU with gloo; accelerate only sets that up when told it runs on CPU.
    cpu = not (torch.cuda.is_available() or is_mps_available() or is_xpu_available() or is_npu_available())
    state = PartialState(cpu=cpu)
    accumulation = spec.accumulation_steps(state.num_processes)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    mixed = resolve_precision(spec.precision, state.device.type)
    accelerator = Accelerator(
        cpu=cpu, gradient_accumulation_steps=accumulation, mixed_precision=mixed, step_scheduler_with_optimizer=False
    )
    return accelerator


def _seed_everything(seed: int) -> None:
    from accelerate.utils import set_seed

    set_seed(seed, device_specific=True)


def main_first(accelerator: Accelerator, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` on the main process first (it builds caches), then on the others (they read them).

    An error on the main process reaches every process (as the same message) instead of
    leaving the others waiting at a barrier.
    """
    if accelerator.num_processes == 1:
        return fn()
    from accelerate.utils import broadcast_object_list

    result, error = None, None
    if accelerator.is_main_process:
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - re-raised below, on every process
            error = exc
    message = [f"{error}" if error is not None else None, isinstance(error, InputError)]
    accelerator.wait_for_everyone()
    broadcast_object_list(message)
    if error is not None:
        raise error
    if message[0] is not None:
        raise (InputError(message[0]) if message[1] else RuntimeError(f"main process failed: {message[0]}"))
    if not accelerator.is_main_process:
        result = fn()
    accelerator.wait_for_everyone()
    return result


def _on_main(accelerator: Accelerator, fn: Callable[[], Any]) -> None:
    if accelerator.is_main_process:
        fn()
    accelerator.wait_for_everyone()
