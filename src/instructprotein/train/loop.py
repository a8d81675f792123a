"""One training loop for pre-training and instruction tuning, through ``accelerate``.

:func:`train_loop` is the recipe, readable top to bottom (nanoGPT / torchtune style):
sizes -> optimiser -> ``accelerator.prepare`` -> resume -> (evaluate, train a step, log,
evaluate, checkpoint, stop?) -> final evaluation, checkpoint, summary and plot.
:func:`~instructprotein.train.stages.pretrain` and :func:`~instructprotein.train.stages.finetune`
(:mod:`~instructprotein.train.stages`) only set up what differs between the stages
(tokenizer and model, data) and check every input first, so that a bad input is an
:class:`~instructprotein.errors.InputError` before any step and before anything in the run
folder is touched.

Running on several processes, GPUs or nodes::

    accelerate launch [--multi_gpu --num_processes N | --config_file fsdp.yaml] -m instructprotein.cli train pretrain --preset small
    torchrun --standalone --nproc_per_node N -m instructprotein.cli train pretrain ...   # N CPU processes (gloo)

``accelerate``'s own configuration picks DDP, FSDP or DeepSpeed; the loop only uses the
``Accelerator`` API (``prepare``, ``accumulate``, ``backward``, ``clip_grad_norm_``,
``save_state`` / ``load_state``, ``get_state_dict``, ``reduce``). On a machine without a GPU,
``accelerate launch --cpu`` starts a single process; ``torchrun`` starts several, and
:func:`make_accelerator` sets them up on CPU with gloo. Tokenizer training and
tokenisation run once, on the main process; the others read its files. Precision and
gradient accumulation come from the preset, not from the launch configuration.

CPU threads: the CLI sets ``OMP_WAIT_POLICY=PASSIVE`` before torch loads (idle OpenMP
threads sleep instead of spinning). On this project's 2-core machine, shared with other
work, spinning threads made a tiny-preset step 2-3x slower and the per-tensor AdamW update
slower than the model's matmuls; the fused AdamW update is used wherever torch has it.
Library users who train on a busy CPU should set the variable before importing torch.

Batches count tokens (see :class:`~instructprotein.model.presets.TrainSpec`): an optimiser
step reads ``batch_tokens / context`` packed rows, all processes together; each process
reads its slice in micro-batches of ``micro_batch_tokens`` and accumulates gradients.
The loss of a step is the mean over every label token of the global batch, or with
``loss_weighting: example`` the mean over its examples of each one's mean token loss (the
weighted sum on each process is divided by the global total of weights), so one process
and many give the same loss and gradients for the same global batch, whatever the number
of label tokens per row (answer-only labels vary a lot). The data position is the number of rows read
(:class:`~instructprotein.train.data.RowSchedule`), so ``--resume`` reads exactly the
rows the killed run would have read next, on any number of processes.

Stopping: at ``max_steps``, at ``max_tokens``, when ``patience`` evaluations in a row did
not improve the validation loss (early stopping), or when the loop's wall time reaches
``max_minutes`` (steps, evaluations and checkpoints count; tokenizer training and
tokenisation do not; resumed segments add up). The reason is printed and stored in
``training.json``; the last step is evaluated and checkpointed, so a run stopped by its
budget continues with ``--resume --set pretrain.max_minutes=...``. The model the next
stage uses is the best one (``run_dir/model``); the final weights are in the last
checkpoint, so no separate ``final/`` folder is written.

A folder that holds a run (``model/``, ``training.json`` or a checkpoint) is refused unless
``--resume`` (continue from the last checkpoint; a finished run has nothing left to do
unless a limit was raised) or ``--force`` (delete what a run writes, ``RUN_OUTPUTS``, and
start over), so a finished model is never overwritten by accident.

Run folder::

    run_dir/
      model/                 best validation loss so far (save_model: weights, tokenizer, preset.yaml, metrics.json);
                             the folder the next stage (or inference) uses
      checkpoints/step-NNNNN/  the last two resumable states (accelerate save_state: model, optimiser,
                             RNG of every process; state.json: step, rows read, best loss, patience, time),
                             each written into a temporary folder and renamed
      tokenizer/             (pre-training from scratch) the BPE + protein tokenizer trained on the corpus
      data/<stage>/          the tokenised, packed data (see instructprotein.train.data)
      log.csv                step, epoch, tokens, train_loss, val_loss, lr, grad_norm, tokens_per_s, elapsed_s:
                             a row per optimiser step (val_loss at evaluation steps), plus val-only rows for
                             the evaluation before step 1 (step 0) and after a last step that was not one
      tensorboard/           the same scalars for TensorBoard
      loss.png               train and validation loss curves
      training.json          the summary, written when the run ends (its presence marks a finished run)
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from instructprotein.atomic import write_text
from instructprotein.errors import InputError
from instructprotein.jsonable import json_default as _json_default
from instructprotein.model.presets import Preset, TrainSpec
from instructprotein.train.data import RowSchedule, StageData
from instructprotein.train.distributed import (
    _seed_everything,
    main_first,
    make_accelerator,
    resolve_precision,
)
from instructprotein.train.logs import (
    LOG_COLUMNS,
    _board,
    _CsvLog,
    _say,
    _TrainBar,
    plot_losses,
    read_log,
)
from instructprotein.train.loss import token_loss_sum
from instructprotein.train.runfolder import (
    KEEP_CHECKPOINTS,
    RUN_OUTPUTS,
    TrainState,
    _checkpoint_step,
    _data_fingerprint,
    _save_model,
    check_run_dir,
    clear_run_dir,
    latest_checkpoint,
    save_checkpoint,
)

__all__ = [  # the loop, and what callers of the one-module loop imported from here (the stages: train.stages)
    "KEEP_CHECKPOINTS",
    "LOG_COLUMNS",
    "RUN_OUTPUTS",
    "TrainResult",
    "TrainState",
    "check_run_dir",
    "clear_run_dir",
    "latest_checkpoint",
    "main_first",
    "make_accelerator",
    "plot_losses",
    "read_log",
    "resolve_precision",
    "save_checkpoint",
    "token_loss_sum",
    "train_loop",
]

if TYPE_CHECKING:
    import torch
    from accelerate import Accelerator

log = logging.getLogger("instructprotein.train")


@dataclass
class TrainResult:
    stage: str
    run_dir: str
    model_dir: str
    stop_reason: str
    steps: int
    tokens: int
    epochs: float
    wall_seconds: float
    tokens_per_second: float
    first_train_loss: float | None
    last_train_loss: float | None
    initial_val_loss: float | None
    best_val_loss: float | None
    best_step: int
    final_val_loss: float | None
    processes: int
    accumulation_steps: int
    precision: str
    parameters: int
    data: dict[str, Any] = field(default_factory=dict)


# =========================================================================== the loop


def train_loop(
    *,
    accelerator: Accelerator,
    model: torch.nn.Module,
    tokenizer: Any,
    data: StageData,
    spec: TrainSpec,
    preset: Preset,
    stage: str,
    run_dir: Path,
    resume: bool = False,
    show_progress: bool = False,
    on_step: Callable[[dict[str, Any]], None] | None = None,
    provenance: dict[str, Any] | None = None,
) -> TrainResult:
    """Train ``model`` on ``data`` with ``spec``'s hyper-parameters; returns the summary (also ``training.json``).

    ``provenance`` (:func:`~instructprotein.train.stages.data_provenance`) goes into the saved model's ``metrics.json`` as
    ``data``, for its model card."""
    import torch

    from instructprotein.model.factory import count_parameters

    # ---- 1. sizes: a preset's batch means the same global batch on any number of processes
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    context = data.train.context_length
    processes, rank = accelerator.num_processes, accelerator.process_index
    rows_per_batch = spec.rows_per_batch(context)
    micro_rows = spec.rows_per_micro_batch(context)
    accumulation = spec.accumulation_steps(processes)
    if accelerator.gradient_accumulation_steps != accumulation:
        raise ValueError(
            f"the Accelerator accumulates {accelerator.gradient_accumulation_steps} micro-batches, the "
            f"preset needs {accumulation} on {processes} process(es): create it with make_accelerator"
        )
    schedule = RowSchedule(data.train.rows, rows_per_batch, preset.seed)
    parameters = count_parameters(model)
    say = _say(show_progress)

    _seed_everything(preset.seed)  # dropout; a resumed run restores every process's RNG below

    # ---- 2. optimiser: AdamW, weight decay on matrices only (not on biases, norms); lr set every step
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim < 2]
    groups = [{"params": decay, "weight_decay": spec.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    try:  # one fused kernel per step: on CPU the per-tensor loop cost more than the model's matmuls (measured)
        optimizer = torch.optim.AdamW(groups, lr=spec.lr_at(0), betas=spec.betas, eps=spec.eps, fused=True)
    except (RuntimeError, ValueError):
        optimizer = torch.optim.AdamW(groups, lr=spec.lr_at(0), betas=spec.betas, eps=spec.eps)
    model, optimizer = accelerator.prepare(model, optimizer)
    attn_impl = getattr(accelerator.unwrap_model(model).config, "_attn_implementation", "sdpa") or "sdpa"

    # ---- 3. resume: model, optimiser and RNG from the last checkpoint, the rest from state.json
    state = TrainState(stage=stage, data_fingerprint=_data_fingerprint(data))
    checkpoint = latest_checkpoint(run_dir) if resume else None
    if checkpoint is not None:
        accelerator.load_state(str(checkpoint))
        state = TrainState(**json.loads((checkpoint / "state.json").read_text(encoding="utf-8")))
        if state.stage != stage:
            raise InputError(f"the checkpoint is from stage {state.stage!r}, not {stage!r}", checkpoint)
        if state.data_fingerprint != _data_fingerprint(data):
            say(f"[yellow]the training data changed since {checkpoint.name}; continuing at row {state.rows_seen:,}[/]")
        say(f"resumed from {checkpoint} (step {state.step:,}, {state.tokens:,} tokens)")
    elif resume:
        say(f"no checkpoint in {run_dir / 'checkpoints'}: starting from the beginning")
    if accelerator.is_main_process:
        with contextlib.suppress(FileNotFoundError):
            (run_dir / "training.json").unlink()  # no longer finished
    csv_log = _CsvLog(run_dir / "log.csv", keep_until=state.step, enabled=accelerator.is_main_process)
    board = _board(run_dir / "tensorboard", state.step, accelerator.is_main_process)

    # ---- helpers that close over the above
    def forward_loss_sum(batch: dict[str, Any]) -> torch.Tensor:
        return token_loss_sum(model, batch, accelerator.device, attn_impl)

    def evaluate() -> float:
        """Mean loss on the first ``eval_tokens`` of the validation rows (the same rows every time), weighted
        as training weighs it (``loss_weighting``), so the best checkpoint is the best by the trained objective."""
        n = min(data.valid.rows, max(1, spec.eval_tokens // context))
        per_process = math.ceil(n / processes)
        mine = [r for r in range(rank * per_process, (rank + 1) * per_process)]  # rows >= n are dummies
        total = torch.zeros(2, dtype=torch.float64, device=accelerator.device)
        model.eval()
        with torch.no_grad():
            for i in range(0, len(mine), micro_rows):  # every process runs as many forwards (FSDP needs it)
                rows = np.array(mine[i : i + micro_rows])
                batch = data.valid.batch(np.where(rows < n, rows, 0), spec.loss_weighting)
                batch["labels"][torch.from_numpy(rows >= n)] = -100  # an ignored label adds 0, whatever its weight
                total[0] += forward_loss_sum(batch).double()
                total[1] += data.valid.label_total(rows[rows < n], spec.loss_weighting)
        model.train()
        total = accelerator.reduce(total, "sum")
        return float(total[0] / total[1]) if total[1] > 0 else float("nan")

    def save_best(val: float) -> None:
        _save_model(
            accelerator,
            model,
            tokenizer,
            run_dir / "model",
            preset,
            {
                "stage": stage,
                "step": state.step,
                "tokens": state.tokens,
                "val_loss": val,
                **({"data": provenance} if provenance else {}),
            },
        )

    def run_eval() -> float:
        val = evaluate()
        state.last_eval_step, state.last_val = state.step, val
        if state.initial_val is None:
            state.initial_val = val
        if val < state.best_val:
            state.best_val, state.best_step, state.bad_evals = val, state.step, 0
            save_best(val)
        else:
            state.bad_evals += 1
        board.scalar("val/loss", val, state.step)
        say(f"step {state.step:,}: validation loss {val:.4f} (best {state.best_val:.4f} at step {state.best_step:,})")
        return val

    # ---- 4. train
    budget_s = spec.max_minutes * 60 if spec.max_minutes else None
    segment_start = time.perf_counter()
    elapsed_before = state.elapsed_s
    bar = _TrainBar(stage, spec.max_steps, state.step, budget_s, elapsed_before) if show_progress else None
    say(
        f"{stage}: {parameters:,} parameters, {data.train.rows:,} rows of {context} tokens, "
        f"{rows_per_batch} rows per step = {processes} process(es) x {accumulation} micro-batch(es) x {micro_rows} rows; "
        f"attention {data.attention}; precision {accelerator.mixed_precision}"
    )
    if state.step == 0 and state.last_eval_step < 0:  # where the validation curve starts
        val0 = run_eval()
        csv_log.write(step=0, epoch=0.0, tokens=0, val_loss=val0, lr=spec.lr_at(0), elapsed_s=0.0)
    step_times: list[tuple[int, float]] = []
    stop_reason = ""
    segment_steps = [state.step]  # the step this segment started at (for the time-budget projection)
    model.train()
    try:
        while True:
            # -- stop?
            elapsed = elapsed_before + time.perf_counter() - segment_start
            over_time = budget_s is not None and elapsed >= budget_s
            if processes > 1:  # every process must stop at the same step
                flag = accelerator.reduce(torch.tensor([float(over_time)], device=accelerator.device), "sum")
                over_time = bool(flag.item() > 0)
            if state.step >= spec.max_steps:
                stop_reason = f"max_steps ({spec.max_steps:,}) reached"
            elif spec.max_tokens and state.tokens >= spec.max_tokens:
                stop_reason = f"max_tokens ({spec.max_tokens:,}) reached"
            elif state.bad_evals >= spec.patience:
                stop_reason = f"early stopping: no better validation loss in {spec.patience} evaluations"
            elif over_time:
                stop_reason = f"time budget of {spec.max_minutes:g} min reached (max_minutes)"
            if stop_reason:
                break

            # -- one optimiser step: lr from the schedule, accumulate micro-batches, clip, step
            t0 = time.perf_counter()
            lr = spec.lr_at(state.step, _horizon(spec, state.step, budget_s, elapsed, elapsed_before, segment_steps))
            for group in optimizer.param_groups:
                group["lr"] = lr
            global_rows = schedule.rows_at(state.rows_seen)
            labels_in_batch = max(1.0, data.train.label_total(global_rows, spec.loss_weighting))
            scale = processes * accumulation / labels_in_batch  # backward() divides by accumulation; DDP averages
            local_sum = torch.zeros((), dtype=torch.float64, device=accelerator.device)
            grad_norm = None
            for rows in schedule.split(global_rows, rank, processes, micro_rows):
                with accelerator.accumulate(model):
                    loss_sum = forward_loss_sum(data.train.batch(rows, spec.loss_weighting))
                    accelerator.backward(loss_sum * scale)
                    local_sum += loss_sum.detach().double()
                    if accelerator.sync_gradients:
                        if spec.grad_clip and spec.grad_clip > 0:
                            grad_norm = accelerator.clip_grad_norm_(model.parameters(), spec.grad_clip)
                        optimizer.step()
                        optimizer.zero_grad(set_to_none=True)
            loss = float(accelerator.reduce(local_sum, "sum")) / labels_in_batch
            state.step += 1
            state.rows_seen += rows_per_batch
            state.tokens += rows_per_batch * context
            step_s = time.perf_counter() - t0
            step_times.append((rows_per_batch * context, step_s))
            state.elapsed_s = elapsed_before + time.perf_counter() - segment_start

            # -- log
            tps = rows_per_batch * context / max(step_s, 1e-9)
            gn = float(grad_norm) if grad_norm is not None else None
            board.scalar("train/loss", loss, state.step)
            board.scalar("train/lr", lr, state.step)
            board.scalar("train/tokens_per_s", tps, state.step)
            if gn is not None:
                board.scalar("train/grad_norm", gn, state.step)
            val = run_eval() if state.step % spec.eval_interval == 0 else None
            csv_log.write(
                step=state.step,
                epoch=round(schedule.epoch(state.rows_seen), 4),
                tokens=state.tokens,
                train_loss=loss,
                val_loss=val,
                lr=lr,
                grad_norm=gn,
                tokens_per_s=round(tps, 1),
                elapsed_s=round(state.elapsed_s, 2),
            )
            if bar is not None:
                bar.update(state.step, loss, state.last_val, step_times)
            if on_step is not None and accelerator.is_main_process:
                on_step({"step": state.step, "loss": loss, "lr": lr, "tokens": state.tokens, "val_loss": val})

            # -- checkpoint (atomic; the last two kept)
            if state.step % spec.checkpoint_interval == 0:
                state.elapsed_s = elapsed_before + time.perf_counter() - segment_start
                save_checkpoint(accelerator, run_dir, state)
    finally:
        if bar is not None:
            bar.stop()
        board.flush()

    # ---- 5. the end: evaluate and checkpoint the last step, write the summary and the plot
    say(f"stopping after step {state.step:,}: {stop_reason}")
    if state.last_eval_step != state.step:  # a row of its own: the step's training row is written
        val_end = run_eval()
        state.elapsed_s = elapsed_before + time.perf_counter() - segment_start
        csv_log.write(
            step=state.step,
            epoch=round(schedule.epoch(state.rows_seen), 4),
            tokens=state.tokens,
            val_loss=val_end,
            elapsed_s=round(state.elapsed_s, 2),
        )
    csv_log.close()
    state.elapsed_s = elapsed_before + time.perf_counter() - segment_start
    last = latest_checkpoint(run_dir)
    if last is None or _checkpoint_step(last) != state.step:
        save_checkpoint(accelerator, run_dir, state)
    if not (run_dir / "model").exists():  # best never saved (no evaluation improved on +inf, e.g. nan losses)
        save_best(state.last_val if state.last_val is not None else float("nan"))
    board.close()
    history = _CsvLog.read(run_dir / "log.csv") if accelerator.is_main_process else []
    train_hist = [r["train_loss"] for r in history if r.get("train_loss") is not None]
    tokens_timed = sum(t for t, _ in step_times)
    seconds_timed = sum(s for _, s in step_times)
    result = TrainResult(
        stage=stage,
        run_dir=str(run_dir),
        model_dir=str(run_dir / "model"),
        stop_reason=stop_reason,
        steps=state.step,
        tokens=state.tokens,
        epochs=round(schedule.epoch(state.rows_seen), 4),
        wall_seconds=round(state.elapsed_s, 2),
        tokens_per_second=round(tokens_timed / seconds_timed, 1) if seconds_timed else 0.0,
        first_train_loss=train_hist[0] if train_hist else None,
        last_train_loss=float(np.mean(train_hist[-10:])) if train_hist else None,
        initial_val_loss=state.initial_val,
        best_val_loss=state.best_val if math.isfinite(state.best_val) else None,
        best_step=state.best_step,
        final_val_loss=state.last_val,
        processes=processes,
        accumulation_steps=accumulation,
        precision=accelerator.mixed_precision,
        parameters=parameters,
        data=data.stats,
    )
    if accelerator.is_main_process:
        plot_losses(run_dir / "log.csv", run_dir / "loss.png", title=f"{stage} ({preset.name}): {run_dir.name}")
        summary = asdict(result) | {"preset": preset.to_dict()}
        write_text(run_dir / "training.json", json.dumps(summary, indent=2, default=_json_default) + "\n")
    accelerator.wait_for_everyone()
    say(
        f"{stage} done: {state.step:,} steps, {state.tokens:,} tokens in {state.elapsed_s / 60:.1f} min; "
        f"validation loss {state.initial_val:.4f} -> best {state.best_val:.4f} (step {state.best_step:,}); "
        f"model in {run_dir / 'model'}"
    )
    return result


# =========================================================================== the time budget


HORIZON_AFTER = 10
"""Steps of a segment before its pace is trusted for projecting where a time budget ends."""


def _horizon(
    spec: TrainSpec, step: int, budget_s: float | None, elapsed: float, elapsed_before: float, segment_steps: list[int]
) -> int | None:
    """The step a time-capped run is projected to stop at, so the learning rate decays to its
    floor by then instead of being cut off high (a 10-minute run of a 1,000-step schedule
    would otherwise end at a quarter of its decay). None without a time budget, or before
    the pace is known (the schedule then runs as if to ``max_steps``)."""
    done = step - segment_steps[0]
    if budget_s is None or done < HORIZON_AFTER:
        return None
    pace = (elapsed - elapsed_before) / done  # wall seconds per step, evaluations and checkpoints included
    return step + max(1, int((budget_s - elapsed) / max(pace, 1e-9)))
