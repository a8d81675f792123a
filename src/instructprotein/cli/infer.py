"""`instructprotein describe / design / classify`: use a trained model on proteins and descriptions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from instructprotein.cli.common import WorkOpt, err, graph_if_any, tuned_model

ModelOpt = Annotated[
    Optional[Path], typer.Option("--model", help="Model folder (default: WORKDIR/runs/finetune/model, the main job's).")
]
KgInferOpt = Annotated[
    Optional[Path],
    typer.Option(
        "--kg",
        help="Knowledge graph: maps GO names to ids, checks designs, finds homologs (retrieval; "
        "default: WORKDIR/kg.sqlite where it exists).",
    ),
]
OutOpt = Annotated[Optional[Path], typer.Option("--out", help="Write here instead of standard output.")]
TopKOpt = Annotated[int, typer.Option(help="Homologs put in the prompt.")]
MaxIdentityOpt = Annotated[
    Optional[float],
    typer.Option(
        help="Drop homologs at or above this identity (e.g. 0.7 to ask about a protein the graph "
        "already holds, as the evaluation does)."
    ),
]


def describe(
    inputs: Annotated[list[str], typer.Argument(help="Sequences, pasted FASTA, or FASTA / JSON-lines files.")],
    model: ModelOpt = None,
    kg: KgInferOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="text, jsonl or tsv.")] = "text",
    out: OutOpt = None,
    no_retrieval: Annotated[bool, typer.Option("--no-retrieval", help="No homologs in the prompt.")] = False,
    baseline: Annotated[bool, typer.Option(help="Also print the homology-transfer prediction.")] = False,
    top_k: TopKOpt = 3,
    max_identity: MaxIdentityOpt = None,
    max_new_tokens: Annotated[int, typer.Option(help="Longest answer.")] = 128,
    fuzzy: Annotated[bool, typer.Option(help="Also map GO names by fuzzy match (ratio >= 0.9).")] = False,
    workdir: WorkOpt = None,
) -> None:
    """Function, location and GO terms of each protein, with real GO ids and their ancestors."""
    from instructprotein.infer.commands import describe_command

    describe_command(
        tuned_model(model, workdir),
        inputs,
        graph_if_any(kg, workdir),
        fmt,
        out,
        retrieval=False if no_retrieval else None,
        baseline=baseline,
        top_k=top_k,
        max_identity=max_identity,
        max_new_tokens=max_new_tokens,
        fuzzy=fuzzy,
    )


def design(
    description: Annotated[
        str, typer.Argument(help='What the protein should be, e.g. "a zinc-binding protein located in the nucleus".')
    ],
    model: ModelOpt = None,
    n: Annotated[int, typer.Option("--n", help="Number of designs.")] = 4,
    kg: KgInferOpt = None,
    out: OutOpt = None,
    checks_out: Annotated[Optional[Path], typer.Option("--checks", help="Write the checks table here (TSV).")] = None,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 1.0,
    top_p: Annotated[float, typer.Option(help="Nucleus sampling mass.")] = 0.95,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same designs.")] = 0,
    min_len: Annotated[int, typer.Option(help="Shortest design.")] = 30,
    max_len: Annotated[
        Optional[int],
        typer.Option(help="Longest design (default: 400, or what the model's context leaves after the request)."),
    ] = None,
    length: Annotated[Optional[int], typer.Option(help="Ask for about this many residues.")] = None,
    strategy: Annotated[
        str,
        typer.Option(
            help="exemplar: rewrite known proteins that carry the requested GO terms (~60 % identity); sample: from the request alone; auto: exemplar where the graph has such proteins."
        ),
    ] = "auto",
    candidates: Annotated[
        Optional[int],
        typer.Option(
            help="Generate this many and keep the best --n (checks, novelty, closest protein carries the request, the model's verification); default 2 x n with a graph."
        ),
    ] = None,
    workdir: WorkOpt = None,
) -> None:
    """Write sequences for a description (FASTA) and check each one (alphabet, length, low
    complexity, closest known protein, its identity, whether it carries the requested
    annotations, and the model's own verification score)."""
    from instructprotein.infer.commands import design_command

    design_command(
        tuned_model(model, workdir),
        description,
        n,
        graph_if_any(kg, workdir),
        out,
        checks_out,
        temperature=temperature,
        top_p=top_p,
        seed=seed,
        min_len=min_len,
        max_len=max_len,
        length=length,
        strategy=strategy,
        candidates=candidates,
        echo=lambda text: err.print(text, highlight=False, soft_wrap=True),
    )  # a table: not wrapped


def classify(
    inputs: Annotated[list[str], typer.Argument(help="Sequences, pasted FASTA, or FASTA / JSON-lines files.")],
    question: Annotated[
        str, typer.Option(help="The question, e.g. 'Does the protein associate with metal ion binding?'.")
    ],
    option: Annotated[list[str], typer.Option("--option", help="A candidate answer (repeat for each).")],
    model: ModelOpt = None,
    prefix: Annotated[
        str, typer.Option(help="Answer prefix the options continue, e.g. 'Based on the record, the answer is'.")
    ] = "",
    rule: Annotated[str, typer.Option(help="first_token (the paper's), sum or mean log-likelihood.")] = "sum",
    kg: KgInferOpt = None,
    no_retrieval: Annotated[bool, typer.Option("--no-retrieval", help="No homologs in the prompt.")] = False,
    top_k: TopKOpt = 3,
    max_identity: MaxIdentityOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="text, jsonl or tsv.")] = "text",
    out: OutOpt = None,
    workdir: WorkOpt = None,
) -> None:
    """Zero-shot choice among options by the model's likelihood, batched with a shared prefix cache."""
    from instructprotein.infer.commands import classify_command

    classify_command(
        tuned_model(model, workdir),
        inputs,
        question,
        option,
        prefix=prefix,
        rule=rule,
        kg_path=graph_if_any(kg, workdir, warn=not no_retrieval),
        retrieval=False if no_retrieval else None,
        top_k=top_k,
        max_identity=max_identity,
        fmt=fmt,
        out=out,
    )
