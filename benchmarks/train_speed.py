"""Training speed: our loop (packed rows) against ``transformers.Trainer`` (padded batches).

Issue 4, item 6: tokens per second of ``instructprotein.train.loop.train_loop`` against the
``Trainer`` on the same model (the tiny preset's shape, the same random initial weights),
the same data, the same micro-batch (rows / examples per forward pass), the same optimiser
(fused AdamW, the preset's betas, weight decay, clipping, linear warm-up) and the same
number of optimiser steps, measured in one run, alternating, each side ``--repeats``
times (this machine is shared and noisy: every pair is printed, the medians are compared).

Two data sets, each side fed the usual way:

- ``instructions`` (``--instructions``): instruction examples that fit the context.
  Ours: several examples per row, attention kept inside each example (block-diagonal
  mask), labels on every token (``loss_on=all``, what the Trainer's collator gives).
- ``corpus`` (``--corpus``): pre-training documents. Ours: ``bos + doc + eos`` concatenated
  and cut into rows (no padding at all, plain causal attention). The Trainer: each
  document ``bos + doc + eos`` truncated to the context.

The Trainer gets tokenised examples, a random sampler and
``DataCollatorForLanguageModeling(mlm=False)``, which pads each batch to its longest member.
Printed per side: raw tokens/s (every position the model computes, padding included),
useful tokens/s (real tokens), their ratio (the issue's ">= 1.3x" is about useful tokens),
and achieved FLOP/s (6 x parameters x raw tokens/s) against the machine's measured fp32
matmul FLOP/s. Both sides are timed over their training steps only: ours from the first
to the last step (its step-0 validation pass and final checkpoint excluded), the Trainer
from ``on_train_begin`` to ``on_train_end`` (no evaluation, no saving, logging once);
the Trainer's tokens are counted in the model's forward (its loader fetches one batch ahead).

    python benchmarks/train_speed.py --instructions /tmp/ipwork/instr01 --corpus /tmp/ipwork/corpus01 \\
        [--tokenizer RUN/model] [--steps 20] [--repeats 3] [--preset tiny]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: idle OpenMP threads sleep (see the CLI)

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instructions", type=Path, help="A built instruction dataset folder.")
    parser.add_argument("--corpus", type=Path, help="A pre-training corpus folder (shard-*.jsonl).")
    parser.add_argument("--tokenizer", type=Path, help="Tokenizer (or model) folder; default: train one on the data.")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--examples", type=int, default=6000, help="Examples / documents used (a seeded sample).")
    parser.add_argument("--work", type=Path, help="Scratch folder (default: a temporary one).")
    args = parser.parse_args()
    if not (args.instructions or args.corpus):
        parser.error("give --instructions and/or --corpus")

    import datasets
    import torch

    from instructprotein.model.factory import (
        count_parameters,
        create_model,
        measure_matmul_flops,
    )
    from instructprotein.model.presets import load_preset
    from instructprotein.model.tokenizer import load_tokenizer, train_tokenizer
    from instructprotein.train.data import RowSchedule, corpus_shards, iter_documents, prepare_pretrain_data
    from instructprotein.train.instruction_data import (
        encode_examples,
        load_instruction_splits,
        prepare_instruction_data,
    )
    from instructprotein.train.loop import make_accelerator, train_loop

    work = args.work or Path(tempfile.mkdtemp(prefix="train-speed-"))
    work.mkdir(parents=True, exist_ok=True)
    steps = args.steps
    base = load_preset(args.preset)
    overrides = {}
    for stage in ("pretrain", "finetune"):
        overrides.update(
            {
                f"{stage}.max_steps": steps,
                f"{stage}.warmup_steps": min(5, steps - 1),
                f"{stage}.eval_interval": 10**6,
                f"{stage}.checkpoint_interval": 10**6,
                f"{stage}.eval_tokens": base.model.context_length,
                f"{stage}.max_minutes": None,
                f"{stage}.precision": "fp32",
                f"{stage}.loss_on": "all",
            }
        )
    preset = load_preset(args.preset, overrides)
    context = preset.model.context_length
    rng = np.random.default_rng(0)

    # ---- the data, written where our loop reads it, and the Trainer's tokenised examples
    sets: dict[str, dict] = {}
    if args.instructions:
        train = load_instruction_splits(args.instructions)["train"]
        order = rng.permutation(len(train))[: args.examples * 2]
        subset = train.select([int(i) for i in order])
        sets["instructions"] = {"texts": list(subset["text"]), "subset": subset}
    if args.corpus:
        docs = [text for text, _ in iter_documents(corpus_shards(args.corpus))]
        pick = rng.permutation(len(docs))[: args.examples]
        sets["corpus"] = {"texts": [docs[int(i)] for i in pick]}
    tok = (
        load_tokenizer(args.tokenizer)
        if args.tokenizer
        else train_tokenizer(
            [t for s in sets.values() for t in s["texts"][:3000]], preset.tokenizer.bpe_vocab_size, work / "tokenizer"
        )
    )
    for name, s in sets.items():
        folder = work / name
        shutil.rmtree(folder, ignore_errors=True)
        if name == "instructions":
            subset = s["subset"]
            enc = encode_examples(tok, s["texts"], list(zip(subset["answer_start"], subset["answer_end"])), "all")
            keep = [i for i, e in enumerate(enc) if len(e.ids) <= context][: args.examples]
            subset = subset.select(keep)
            s["ids"] = [enc[i].ids.tolist() for i in keep]
            datasets.DatasetDict({"train": subset, "valid": subset.select(range(min(64, len(subset))))}).save_to_disk(
                str(folder / "hf")
            )
            s["data"] = prepare_instruction_data(
                folder, tok, context, work / f"{name}-packed", loss_on="all", seed=preset.seed
            )
            s["spec"], s["stage"] = preset.finetune, "finetune"
        else:
            folder.mkdir(parents=True)
            with open(folder / "shard-00000.jsonl", "w", encoding="utf-8") as fh:
                fh.writelines(json.dumps({"text": text}) + "\n" for text in s["texts"])
            enc = tok.encode_batch(s["texts"], add_bos=True, add_eos=True)
            s["ids"] = [e.input_ids[:context] for e in enc]  # the usual truncation
            s["data"] = prepare_pretrain_data(folder, tok, context, work / f"{name}-packed", seed=preset.seed)
            s["spec"], s["stage"] = preset.pretrain, "pretrain"

    flops = measure_matmul_flops(1024)
    params = count_parameters(create_model(preset, tok, seed=0))
    print(
        f"machine: {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, fp32 matmul "
        f"{flops / 1e9:.1f} GFLOP/s (1024^2, measured now)"
    )
    spec0 = preset.finetune
    print(
        f"model: {preset.name} shape, {params:,} parameters, context {context}; {steps} steps of "
        f"{spec0.rows_per_micro_batch(context)} rows (ours) / examples (Trainer) x "
        f"{spec0.accumulation_steps(1)} micro-batch(es)"
    )

    def ours(s: dict, rep: int) -> dict:
        spec, data = s["spec"], s["data"]
        run = work / f"ours-{s['stage']}-{rep}"
        shutil.rmtree(run, ignore_errors=True)
        result = train_loop(
            accelerator=make_accelerator(spec),
            model=create_model(preset, tok, seed=0),
            tokenizer=tok,
            data=data,
            spec=spec,
            preset=preset,
            stage=s["stage"],
            run_dir=run,
        )
        sched = RowSchedule(data.train.rows, spec.rows_per_batch(context), preset.seed)
        useful = sum(
            int((np.asarray(data.train.input_ids[sched.rows_at(k * sched.rows_per_batch)]) != tok.pad_token_id).sum())
            for k in range(steps)
        )
        seconds = result.tokens / result.tokens_per_second
        return {
            "raw": result.tokens / seconds,
            "useful": useful / seconds,
            "seconds": seconds,
            "padding": 1 - useful / result.tokens,
            "loss": result.last_train_loss,
        }

    def trainer(s: dict, rep: int) -> dict:
        from transformers import (
            DataCollatorForLanguageModeling,
            Trainer,
            TrainerCallback,
            TrainingArguments,
        )

        spec = s["spec"]
        counts = {"raw": 0, "useful": 0}
        clock: dict[str, float] = {}

        def count(module, args, kwargs):  # the batches the model trains on (the loader fetches one ahead)
            if module.training:
                counts["raw"] += kwargs["input_ids"].numel()
                counts["useful"] += int(kwargs["attention_mask"].sum())

        class Clock(TrainerCallback):
            def on_train_begin(self, *a, **k):
                clock["start"] = time.perf_counter()

            def on_train_end(self, *a, **k):
                clock["end"] = time.perf_counter()

        model = create_model(preset, tok, seed=0)
        model.register_forward_pre_hook(count, with_kwargs=True)
        targs = TrainingArguments(
            output_dir=str(work / f"trainer-{rep}"),
            per_device_train_batch_size=spec.rows_per_micro_batch(context),
            gradient_accumulation_steps=spec.accumulation_steps(1),
            max_steps=steps,
            learning_rate=spec.lr,
            warmup_steps=min(5, steps - 1),
            lr_scheduler_type="linear",
            weight_decay=spec.weight_decay,
            adam_beta1=spec.betas[0],
            adam_beta2=spec.betas[1],
            adam_epsilon=spec.eps,
            max_grad_norm=spec.grad_clip,
            optim="adamw_torch_fused",
            logging_steps=steps,
            save_strategy="no",
            eval_strategy="no",
            report_to="none",
            use_cpu=True,
            dataloader_num_workers=0,
            seed=preset.seed,
            disable_tqdm=True,
        )
        t = Trainer(
            model=model,
            args=targs,
            train_dataset=datasets.Dataset.from_dict({"input_ids": s["ids"]}),
            data_collator=DataCollatorForLanguageModeling(tokenizer=tok.backend, mlm=False),
            callbacks=[Clock()],
        )
        out = t.train()
        seconds = clock["end"] - clock["start"]
        return {
            "raw": counts["raw"] / seconds,
            "useful": counts["useful"] / seconds,
            "seconds": seconds,
            "padding": 1 - counts["useful"] / counts["raw"],
            "loss": out.training_loss,
        }

    report: dict[str, dict] = {}
    for name, s in sets.items():
        lengths = np.array([len(x) for x in s["ids"]])
        st = s["data"].stats
        print(
            f"\n== {name}: {len(lengths):,} examples, tokens per example mean {lengths.mean():.0f}, median "
            f"{np.median(lengths):.0f}, max {lengths.max()}; ours: {st['rows']['train']:,} rows, "
            f"{st['padding_fraction']['train']:.1%} padding, attention {s['data'].attention}"
        )
        runs: dict[str, list[dict]] = {"ours": [], "trainer": []}
        for rep in range(args.repeats):
            for side, fn in (("ours", ours), ("trainer", trainer)):
                r = fn(s, rep)
                runs[side].append(r)
                print(
                    f"  run {rep + 1} {side:<8} {r['raw']:8,.0f} raw tok/s  {r['useful']:8,.0f} useful tok/s  "
                    f"({r['seconds']:.1f} s, padding {r['padding']:.1%})"
                )
            pair = runs["ours"][-1]["useful"] / runs["trainer"][-1]["useful"]
            print(f"        pair ratio (useful) {pair:.2f}x")
        med = {
            side: {k: statistics.median(r[k] for r in v) for k in ("raw", "useful", "padding")}
            for side, v in runs.items()
        }
        print(
            f"  {'median':<10}{'raw tok/s':>12}{'useful tok/s':>14}{'padding':>9}{'GFLOP/s (6N x raw)':>21}"
            f"{'of matmul':>11}"
        )
        for side, r in med.items():
            achieved = 6 * params * r["raw"]
            print(
                f"  {side:<10}{r['raw']:12,.0f}{r['useful']:14,.0f}{r['padding']:9.1%}{achieved / 1e9:21.2f}"
                f"{achieved / flops:11.1%}"
            )
        ratio_useful = med["ours"]["useful"] / med["trainer"]["useful"]
        ratio_raw = med["ours"]["raw"] / med["trainer"]["raw"]
        print(
            f"  ratio ours / Trainer (medians): useful tokens/s {ratio_useful:.2f}x, raw tokens/s {ratio_raw:.2f}x "
            f"(target: useful >= 1.3x)"
        )
        report[name] = {
            "ratio_useful": round(ratio_useful, 3),
            "ratio_raw": round(ratio_raw, 3),
            "median": med,
            "runs": runs,
        }
    print("\n" + json.dumps({"matmul_flops": flops, "parameters": params, **report}, default=float))
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
