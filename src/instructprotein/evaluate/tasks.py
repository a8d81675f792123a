"""Evaluation tasks as declarative files, and the registry of built-in ones.

A task is one YAML (or JSON) file, in the spirit of lm-evaluation-harness: which data, how
to ask, which answers the model chooses among, what the data's labels mean, how to score,
and which baselines to run beside the model. The built-in tasks live in
``instructprotein/evaluate/tasks/*.yaml``; a user adds one by writing such a file next to a
JSON-lines or TSV file of their own and passing the file's path wherever a task name goes.
No code.

A complete example (every key; only ``name``, ``data.test``, ``prompt`` and
``candidates`` are required)::

    name: enzyme                       # letters, digits, _ and - only
    version: 1                         # raise it when a change makes old scores incomparable
    include: base.yaml                 # optional: a task file (relative to this one) whose keys this
                                       # file extends; mappings merge key by key, the rest is replaced
    description: Is the protein an enzyme? (my data)
    data:
      test: enzyme_test.jsonl          # a path (relative to this file), or
                                       # {packaged: metal_ion_binding_test} (a set shipped with the package), or
                                       # {heldout: location | metal | go, aspect: F, proteins: 1000}  (our
                                       # held-out split; proteins: a seeded sample, default 1000, null: all)
      train: enzyme_train.jsonl        # optional: majority class and composition baseline learn from it
      format: labelled                 # labelled (default) or go_pairs (the paper's *.lm.json GO shape)
      sequence_field: sequence         # JSON lines: where the sequence and the label are
      label_field: label
      term_field: null                 # JSON lines: a per-item term that fills {term} in the prompt
      term_names: kg+go_sqlite         # go_pairs: GO names from the graph, else GO.sqlite (or: kg only)
    prompt:
      question: Is this protein an enzyme?       # {term} is filled per item where there is one
      prefix: Based on the record, the answer is # the answer's fixed start; the candidate follows it
      # or, instead of question + prefix, a whole template:
      # template: "{protein}Instruction: Is this protein an enzyme?\\n\\nOutput: The answer is"
    candidates: [" no", " yes"]        # the continuations scored, each written as it follows the prompt
                                       # (leading space included); or a mapping candidate -> class
    labels: {0: "no", 1: "yes"}        # data label -> class; default: the label is the class name
    positive: "yes"                    # two-class tasks: the class whose probability AUPR ranks
    metrics: [accuracy, aupr]          # accuracy is always computed
    cut: {above: 1024, keep: 1000}     # the paper's rule; null: never cut (the model's context still applies)
    baselines:
      majority: true
      composition: true                # needs data.train
      term_frequency: false            # GO yes/no only: how often the term is annotated in the graph
      homology: {rule: carries_term, term: GO:0003824}  # or rule: location | item_term; or null
    paper: {accuracy: 70.79}           # numbers reported in the paper (percent), shown beside ours
    evidence: general                  # with retrieval, what the homolog block says: general (their GO
                                       # terms), location (their locations), term (whether they carry
                                       # the item's {term}), or {term: GO:0046872} (a fixed term);
                                       # default: term when the prompt has {term}, else general

A second kind of task generates text instead of choosing (``kind: describe``; the built-in
``heldout_describe``): no candidates; ``data.label_field`` names the reference text (default
``reference``) and ``data.terms_field`` the item's true GO ids; ``max_new_tokens``,
``go_aspect`` (F / P / C / null), ``metrics`` among ``bleu``, ``rouge_l``, ``go``, and
baselines ``homology: {rule: go_terms}`` and ``term_frequency`` (CAFA's naive predictor)::

    name: my_describe
    kind: describe
    data: {test: described.jsonl, terms_field: go}     # {"sequence", "reference", "go": [...]}
    prompt: {question: "What is the function of this protein?"}
    max_new_tokens: 48

A third kind writes proteins (``kind: design``; the built-in ``heldout_design``): each item is a
request (``data.label_field``, default ``request``: a description or a whole instruction, as the
``design`` command takes it), the GO ids it asks for (``data.terms_field``, default ``terms``)
and optionally the natural protein it came from (``sequence``); ``sampling`` sets
``per_request``, ``temperature``, ``top_p``, ``min_len``, ``max_len``, ``seed``; ``metrics``
among ``validity``, ``novelty``, ``diversity``, ``consistency`` (the closest training protein
carries the request) and ``describe`` (the model's own description gives it back)::

    name: my_design
    kind: design
    data: {test: requests.jsonl}      # {"request": "binds zinc ion", "terms": ["GO:0008270"]}
    sampling: {per_request: 4, max_len: 200}

``sampling`` also sets ``strategy`` (``exemplar``, default: training proteins carrying the
requested terms rewritten by the model at ``mutation_rate``; ``sample``: from the request
alone) and ``candidates`` (generated per design kept; the model's own verification picks).

A fourth kind ranks requests for a protein (``kind: rank``; :mod:`.rank`; the built-in
``heldout_design_rank`` and the paper's ``scope_{family,superfamily,fold}_rank``): each item
is a protein and candidate requests, scored by the mean log-probability of the protein's
residues after each (the paper's rule; the sum too); ``data.format`` ``candidates`` (JSON
lines ``{"sequence", "requests": [...], "answer": 0}``), ``scope`` (the paper's ``*.lm.json``
with ``data.descriptions``: SCOPe's ``dir.des`` file, ``scope_des`` for the one given to
``evaluate --scope-des``, and ``request: "... {description}"``) or ``{heldout: design_rank,
candidates: 10}``; ``baselines`` ``chance`` and ``homology`` (GO candidates)::

    name: my_rank
    kind: rank
    data: {test: ranked.jsonl}

Prompts are the paper's format, ``{protein}Instruction: {question}\\n\\nOutput: {prefix}``,
built by :func:`~instructprotein.prompt.build_prompt` (no trailing space; each
candidate brings its own). Every problem in a task file is an
:class:`~instructprotein.errors.InputError` naming the file, raised when the task is loaded,
before any data is read or any model runs.
"""

from __future__ import annotations

from pathlib import Path

from instructprotein.errors import InputError
from instructprotein.evaluate.task_files import TASK_SUFFIXES, _read, builtin_dir, builtin_tasks
from instructprotein.evaluate.task_parse import (
    DESCRIBE_METRICS,
    DESIGN_METRICS,
    EVIDENCE_KINDS,
    FORMATS,
    HELDOUT_KINDS,
    HELDOUT_PROTEINS,
    HOMOLOGY_RULES,
    KINDS,
    METRICS,
    TERM_NAMES,
    label_key,
    parse_task,
)
from instructprotein.evaluate.task_schema import DESIGN_SAMPLING
from instructprotein.evaluate.task_spec import Combine, HomologyRule, Source, TaskSpec

__all__ = [
    "DESCRIBE_METRICS",
    "DESIGN_METRICS",
    "DESIGN_SAMPLING",
    "EVIDENCE_KINDS",
    "FORMATS",
    "HELDOUT_KINDS",
    "HELDOUT_PROTEINS",
    "HOMOLOGY_RULES",
    "KINDS",
    "METRICS",
    "TASK_SUFFIXES",
    "TERM_NAMES",
    "Combine",
    "HomologyRule",
    "Source",
    "TaskSpec",
    "builtin_dir",
    "builtin_tasks",
    "label_key",
    "list_tasks",
    "load_task",
    "parse_task",
]


def list_tasks() -> list[tuple[str, str]]:
    """(name, description) of every built-in task, sorted by name."""
    out = []
    for name, path in builtin_tasks().items():
        out.append((name, load_task(path).description))
    return out


def load_task(name_or_path: str | Path) -> TaskSpec:
    """A built-in task by name, or a task file by path (``.yaml``, ``.yml`` or ``.json``)."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.suffix in TASK_SUFFIXES or "/" in text or path.is_file():
        if path.is_dir():
            raise InputError("is a directory, expected a task file (.yaml, .yml or .json)", path)
        if not path.is_file():
            raise InputError("no such task file", path)
        return parse_task(_read(path), path)
    known = builtin_tasks()
    if text not in known:
        raise InputError(f"unknown task {text!r}; built-in tasks: {', '.join(known)} (or give the path of a task file)")
    return parse_task(_read(known[text]), known[text])
