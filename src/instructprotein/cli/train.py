"""`instructprotein train`: pre-training and instruction tuning through one accelerate loop."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from instructprotein.cli.common import WorkOpt, err, out
from instructprotein.paths import work_dir

train_app = typer.Typer(
    help="Pre-train and instruction-tune the model (one loop through accelerate; "
    "`accelerate launch -m instructprotein.cli train ...` for several processes or GPUs).",
    no_args_is_help=True,
)

PresetOpt = Annotated[str, typer.Option("--preset", help="tiny | small | paper, or a YAML file.")]
SetOpt = Annotated[
    list[str], typer.Option("--set", help="Override a preset key, e.g. --set pretrain.max_steps=50 (repeatable).")
]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its last checkpoint.")]
ForceOpt = Annotated[
    bool, typer.Option("--force", help="Start over in --out, deleting its model, checkpoints and logs.")
]


def _passive_threads() -> None:
    """Let idle OpenMP threads sleep instead of spin. Must run before torch is imported: on a CPU
    shared with other work, spinning threads made a tiny-preset step 2-3x slower (measured)."""
    import os

    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _overrides(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"--set takes key=value, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def _print_training(result) -> None:
    import os

    if int(os.environ.get("RANK", "0")) != 0:  # one report under accelerate launch / torchrun
        return

    def f(x: float | None) -> str:
        return "-" if x is None else f"{x:.4f}"

    t = Table(title=f"{result.stage}: {result.run_dir}")
    t.add_column("")
    t.add_column("value", justify="right")
    for k, v in (
        ("stopped", result.stop_reason),
        ("steps", f"{result.steps:,}"),
        ("tokens", f"{result.tokens:,}"),
        ("epochs", f"{result.epochs:.2f}"),
        ("wall time (loop)", f"{result.wall_seconds / 60:.1f} min"),
        ("tokens/s", f"{result.tokens_per_second:,.0f}"),
        ("train loss first -> last", f"{f(result.first_train_loss)} -> {f(result.last_train_loss)}"),
        (
            "validation loss start -> best",
            f"{f(result.initial_val_loss)} -> {f(result.best_val_loss)} (step {result.best_step:,})",
        ),
        ("processes x accumulation", f"{result.processes} x {result.accumulation_steps}"),
        ("precision", result.precision),
        ("parameters", f"{result.parameters:,}"),
    ):
        t.add_row(k, v)
    out.print(t)
    err.print(f"[green]model: {result.model_dir}[/] (log: {result.run_dir}/log.csv, curves: {result.run_dir}/loss.png)")


@train_app.command("pretrain")
def train_pretrain(
    preset: PresetOpt = "tiny",
    corpus: Annotated[Optional[Path], typer.Option("--corpus", help="Corpus folder (default: WORKDIR/corpus).")] = None,
    out_path: Annotated[
        Optional[Path], typer.Option("--out", help="Run folder (default: WORKDIR/runs/pretrain).")
    ] = None,
    tokenizer: Annotated[
        Optional[Path],
        typer.Option("--tokenizer", help="Use this tokenizer folder instead of training one on the corpus."),
    ] = None,
    resume: ResumeOpt = False,
    force: ForceOpt = False,
    set_: SetOpt = [],  # noqa: B006
    workdir: WorkOpt = None,
) -> None:
    """Pre-train on the protein + text corpus; the model lands in OUT/model.

    Trains the tokenizer first (OUT/tokenizer) unless --tokenizer or model.init_from is given.
    Several processes or GPUs: `accelerate launch [--multi_gpu] [--num_processes N] -m instructprotein.cli
    train pretrain ...` (on CPUs: `torchrun --nproc_per_node N -m instructprotein.cli train pretrain ...`).
    Kill it at any time and run again with --resume.
    """
    _passive_threads()
    from instructprotein.model.presets import load_preset
    from instructprotein.train.stages import pretrain

    spec = load_preset(preset, _overrides(set_))
    result = pretrain(
        spec,
        corpus or work_dir(workdir) / "corpus",
        out_path or work_dir(workdir) / "runs" / "pretrain",
        resume=resume,
        force=force,
        tokenizer=tokenizer,
        progress=True,
    )
    _print_training(result)


@train_app.command("finetune")
def train_finetune(
    preset: PresetOpt = "tiny",
    init: Annotated[
        Optional[Path],
        typer.Option("--init", help="Model folder to start from (default: WORKDIR/runs/pretrain/model)."),
    ] = None,
    instructions_dir: Annotated[
        Optional[Path],
        typer.Option("--instructions", help="Instruction dataset folder (default: WORKDIR/instructions)."),
    ] = None,
    out_path: Annotated[
        Optional[Path], typer.Option("--out", help="Run folder (default: WORKDIR/runs/finetune).")
    ] = None,
    loss_on: Annotated[
        Optional[str],
        typer.Option(
            "--loss-on",
            help="answer: loss on the answer tokens; all: the paper's whole-sequence loss (default: the preset's).",
        ),
    ] = None,
    long: Annotated[
        str,
        typer.Option(
            "--long",
            help="Examples longer than the context: crop (their protein, as inference does), drop (counted) or error.",
        ),
    ] = "crop",
    drop_long: Annotated[bool, typer.Option("--drop-long", help="Same as --long drop.")] = False,
    no_pack: Annotated[
        bool, typer.Option("--no-pack", help="One example per padded row instead of several per row.")
    ] = False,
    resume: ResumeOpt = False,
    force: ForceOpt = False,
    set_: SetOpt = [],  # noqa: B006
    workdir: WorkOpt = None,
) -> None:
    """Instruction-tune a model folder on the instruction dataset; the model lands in OUT/model.

    Examples are packed several per row; attention does not cross examples. Several processes
    or GPUs: `accelerate launch ... -m instructprotein.cli train finetune ...`.
    """
    _passive_threads()
    from instructprotein.model.presets import load_preset
    from instructprotein.train.stages import finetune

    if loss_on is not None and loss_on not in ("answer", "all"):
        raise typer.BadParameter("--loss-on must be answer or all")
    spec = load_preset(preset, _overrides(set_))
    result = finetune(
        spec,
        instructions_dir or work_dir(workdir) / "instructions",
        out_path or work_dir(workdir) / "runs" / "finetune",
        init=init or work_dir(workdir) / "runs" / "pretrain" / "model",
        resume=resume,
        force=force,
        loss_on=loss_on,
        long="drop" if drop_long else long,
        pack=not no_pack,
        progress=True,
    )
    _print_training(result)


@train_app.command("plan")
def train_plan(
    preset: PresetOpt = "tiny",
    gpus: Annotated[int, typer.Option(help="Accelerators the run would use.")] = 1,
    tflops: Annotated[
        Optional[float],
        typer.Option(help="Achieved training TFLOP/s per accelerator (e.g. 400 for an H100 at 40 % of its bf16 peak)."),
    ] = None,
    set_: SetOpt = [],  # noqa: B006
) -> None:
    """What a preset costs before you run it: parameters, memory, tokens and FLOPs per stage, time."""
    from instructprotein.model.presets import load_preset

    spec = load_preset(preset, _overrides(set_))
    out.print(spec.describe(flops_per_second=gpus * tflops * 1e12 if tflops else None), highlight=False)
