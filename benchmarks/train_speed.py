"""Training speed: our loop (packed rows, one fused step) against ``transformers.Trainer``.

Issue 4, item 6: tokens per second of ``instructprotein.train.loop.train_loop`` against the
``Trainer`` on the same model (the tiny preset's shape, the same random initial weights),
the same instruction examples, the same micro-batch (rows / examples per forward pass),
the same optimiser (fused AdamW, the preset's betas, weight decay, clipping, linear
warm-up) and the same number of optimiser steps, measured in one run, alternating, each
side ``--repeats`` times (the best of each is compared: this machine is shared and noisy).

The ``Trainer`` is fed the usual way: tokenised examples, a random sampler and
``DataCollatorForLanguageModeling(mlm=False)``, which pads every batch to its longest
example. Our loop reads packed rows of the context length (several examples per row,
attention kept inside each example). Printed per side: raw tokens/s (every position the
model computes, padding included), useful tokens/s (real tokens), the ratio of useful
tokens/s (the number the issue's ">= 1.3x" is about), and achieved FLOP/s
(6 x parameters x tokens/s) against the machine's measured fp32 matmul FLOP/s.

Both sides are timed over their training steps only: ours from the first to the last step
(its step-0 validation pass and final checkpoint excluded), the Trainer from
``on_train_begin`` to ``on_train_end`` (no evaluation, no saving, logging once).

    python benchmarks/train_speed.py --instructions /tmp/ipwork/instr01 \\
        [--tokenizer RUN/model] [--steps 20] [--repeats 2] [--preset tiny]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: idle OpenMP threads sleep (see the CLI)

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instructions", type=Path, required=True, help="A built instruction dataset folder.")
    parser.add_argument("--tokenizer", type=Path, help="Tokenizer (or model) folder; default: train one on the examples.")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--examples", type=int, default=6000, help="Train examples used (the first N of a seeded shuffle).")
    parser.add_argument("--work", type=Path, help="Scratch folder (default: a temporary one).")
    args = parser.parse_args()

    import datasets
    import torch

    from instructprotein.model.factory import count_parameters, create_model, measure_matmul_flops
    from instructprotein.model.presets import load_preset
    from instructprotein.model.tokenizer import load_tokenizer, train_tokenizer
    from instructprotein.train.data import RowSchedule, encode_examples, load_instruction_splits

    work = args.work or Path(tempfile.mkdtemp(prefix="train-speed-"))
    work.mkdir(parents=True, exist_ok=True)
    steps = args.steps
    base = load_preset(args.preset)
    preset = load_preset(args.preset, {
        "finetune.max_steps": steps, "finetune.warmup_steps": min(5, steps - 1), "finetune.eval_interval": 10**6,
        "finetune.checkpoint_interval": 10**6, "finetune.eval_tokens": base.model.context_length,
        "finetune.max_minutes": None, "finetune.precision": "fp32", "finetune.loss_on": "all",
    })
    spec = preset.finetune
    context = preset.model.context_length
    micro_rows = spec.rows_per_micro_batch(context)
    accumulation = spec.accumulation_steps(1)

    # ---- the same examples for both sides: a seeded sample of the train split that fits the context
    splits = load_instruction_splits(args.instructions)
    train = splits["train"]
    order = np.random.default_rng(0).permutation(len(train))[: args.examples * 2]
    subset = train.select([int(i) for i in order])
    tok = load_tokenizer(args.tokenizer) if args.tokenizer else train_tokenizer(
        subset["text"][:3000], preset.tokenizer.bpe_vocab_size, work / "tokenizer")
    enc = encode_examples(tok, list(subset["text"]), list(zip(subset["answer_start"], subset["answer_end"])), "all")
    keep = [i for i, e in enumerate(enc) if len(e.ids) <= context][: args.examples]
    subset = subset.select(keep)
    ids = [enc[i].ids.tolist() for i in keep]
    lengths = np.array([len(x) for x in ids])
    ds_dir = work / "instructions"
    shutil.rmtree(ds_dir, ignore_errors=True)
    small_valid = subset.select(range(min(64, len(subset))))
    datasets.DatasetDict({"train": subset, "valid": small_valid}).save_to_disk(str(ds_dir / "hf"))

    flops = measure_matmul_flops(1024)
    model0 = create_model(preset, tok, seed=0)
    params = count_parameters(model0)
    print(f"machine: {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, fp32 matmul "
          f"{flops / 1e9:.1f} GFLOP/s (1024^2, measured now)")
    print(f"model: {preset.name} shape, {params:,} parameters, context {context}; {steps} steps of "
          f"{micro_rows} rows/examples x {accumulation} micro-batch(es); {len(ids):,} examples, "
          f"length mean {lengths.mean():.0f}, median {np.median(lengths):.0f}, max {lengths.max()}")

    def ours(rep: int) -> dict:
        from instructprotein.train.data import prepare_instruction_data
        from instructprotein.train.loop import make_accelerator, train_loop

        run = work / f"ours-{rep}"
        shutil.rmtree(run, ignore_errors=True)
        data = prepare_instruction_data(ds_dir, tok, context, work / "packed", loss_on="all", seed=preset.seed)
        accelerator = make_accelerator(spec)
        model = create_model(preset, tok, seed=0)
        result = train_loop(accelerator=accelerator, model=model, tokenizer=tok, data=data, spec=spec, preset=preset,
                            stage="finetune", run_dir=run)
        sched = RowSchedule(data.train.rows, spec.rows_per_batch(context), preset.seed)
        useful = sum(int((np.asarray(data.train.input_ids[sched.rows_at(k * sched.rows_per_batch)]) != tok.pad_token_id).sum())
                     for k in range(steps))
        raw = result.tokens
        seconds = raw / result.tokens_per_second
        return {"raw": raw / seconds, "useful": useful / seconds, "seconds": seconds, "padding": 1 - useful / raw,
                "examples_per_row": data.stats["examples_per_row"]["train"], "loss": result.last_train_loss}

    def trainer(rep: int) -> dict:
        from transformers import DataCollatorForLanguageModeling, Trainer, TrainerCallback, TrainingArguments

        counts = {"raw": 0, "useful": 0}
        collate = DataCollatorForLanguageModeling(tokenizer=tok.backend, mlm=False)

        def count(module, args, kwargs):  # the batches the model trains on (the loader fetches one ahead)
            if module.training:
                counts["raw"] += kwargs["input_ids"].numel()
                counts["useful"] += int(kwargs["attention_mask"].sum())

        clock: dict[str, float] = {}

        class Clock(TrainerCallback):
            def on_train_begin(self, *a, **k):
                clock["start"] = time.perf_counter()

            def on_train_end(self, *a, **k):
                clock["end"] = time.perf_counter()

        model = create_model(preset, tok, seed=0)
        model.register_forward_pre_hook(count, with_kwargs=True)
        targs = TrainingArguments(
            output_dir=str(work / f"trainer-{rep}"), per_device_train_batch_size=micro_rows,
            gradient_accumulation_steps=accumulation, max_steps=steps, learning_rate=spec.lr,
            warmup_steps=min(5, steps - 1), lr_scheduler_type="linear", weight_decay=spec.weight_decay,
            adam_beta1=spec.betas[0], adam_beta2=spec.betas[1], adam_epsilon=spec.eps, max_grad_norm=spec.grad_clip,
            optim="adamw_torch_fused", logging_steps=steps, save_strategy="no", eval_strategy="no", report_to="none",
            use_cpu=True, dataloader_num_workers=0, seed=preset.seed, disable_tqdm=True,
        )
        ds = datasets.Dataset.from_dict({"input_ids": ids})
        t = Trainer(model=model, args=targs, train_dataset=ds, data_collator=collate, callbacks=[Clock()])
        out = t.train()
        seconds = clock["end"] - clock["start"]
        return {"raw": counts["raw"] / seconds, "useful": counts["useful"] / seconds, "seconds": seconds,
                "padding": 1 - counts["useful"] / counts["raw"], "examples_per_row": 1.0, "loss": out.training_loss}

    results: dict[str, list[dict]] = {"ours": [], "trainer": []}
    for rep in range(args.repeats):
        for name, fn in (("ours", ours), ("trainer", trainer)):
            r = fn(rep)
            results[name].append(r)
            print(f"  run {rep + 1} {name:<8} {r['raw']:8,.0f} raw tok/s  {r['useful']:8,.0f} useful tok/s  "
                  f"({r['seconds']:.1f} s, padding {r['padding']:.1%}, {r['examples_per_row']:.2f} examples/row)")
    best = {k: max(v, key=lambda r: r["useful"]) for k, v in results.items()}
    print()
    print(f"{'':10}{'raw tok/s':>12}{'useful tok/s':>14}{'padding':>9}{'GFLOP/s (6N x raw)':>21}{'of matmul':>11}")
    for name, r in best.items():
        achieved = 6 * params * r["raw"]
        print(f"{name:<10}{r['raw']:12,.0f}{r['useful']:14,.0f}{r['padding']:9.1%}{achieved / 1e9:21.2f}"
              f"{achieved / flops:11.1%}")
    ratio_useful = best["ours"]["useful"] / best["trainer"]["useful"]
    ratio_raw = best["ours"]["raw"] / best["trainer"]["raw"]
    print(f"\nratio ours / Trainer: useful tokens/s {ratio_useful:.2f}x, raw tokens/s {ratio_raw:.2f}x "
          f"(target: useful >= 1.3x)")
    print(json.dumps({"ratio_useful": round(ratio_useful, 3), "ratio_raw": round(ratio_raw, 3),
                      "matmul_flops": flops, "parameters": params, "best": best, "all": results}, default=float))
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
