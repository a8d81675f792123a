"""The Python API: ``Model.load(path)``, then ``describe``, ``design``, ``classify``.

>>> from instructprotein.infer.model import Model            # doctest: +SKIP
>>> m = Model.load("instructprotein-work/model", kg="instructprotein-work/kg.sqlite")
>>> m.describe("MKTAYIAKQRQISFVKSHFSRQ...").to_text()
>>> m.design("binds zinc ion and is located in nucleus", n=4, seed=1)
>>> m.classify("MKTAYIAK...", "What cellular components is the protein located in?",
...            ["nucleus", "cytoplasm"], prefix="The protein is located in").answer

With a knowledge graph, describe maps GO terms to ids and closes them under the ontology,
design checks each sequence against the graph's proteins, and retrieval (homologs'
annotations in the prompt) is on unless ``retrieval=False``. Without one, the model's text
is returned as it is. Every user error is an :class:`~instructprotein.errors.InputError`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from instructprotein.errors import InputError
from instructprotein.infer.classify import DEFAULT_RULE, Choice, Rule, classify
from instructprotein.infer.describe import Description, describe
from instructprotein.infer.generate import DesignRun, design
from instructprotein.infer.inputs import CUT_ABOVE, KEEP_LAST, Query, clean_sequence, read_queries
from instructprotein.infer.retrieval import Homolog, ProteinIndex, Transfer, go_labels, transfer
from instructprotein.infer.terms import TermIndex, TermSet
from instructprotein.kg.store import KnowledgeGraph

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from instructprotein.model.tokenizer import ProteinTokenizer


_SAID: set[Path] = set()


def _combination(folder: Path | None) -> Any:
    """The folder's combination weights (the system's answers), or None, said once per folder."""
    if folder is None:
        return None
    from instructprotein.infer.combine import FILE, load

    got = load(folder)
    if got is None and folder not in _SAID:
        _SAID.add(folder)
        print(
            f"note: {folder} has no {FILE}: answers are the model's own, not combined with the homologs "
            "(`instructprotein evaluate --model ... --instructions ...` fits them)",
            file=sys.stderr,
        )
    return got


class Model:
    """A loaded model folder, optionally with a knowledge graph for terms, checks and retrieval."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: ProteinTokenizer,
        *,
        kg: KnowledgeGraph | str | Path | None = None,
        path: str | Path | None = None,
        retrieval: bool | None = None,
        cut_above: int | None = CUT_ABOVE,
        keep: int = KEEP_LAST,
    ):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.path = Path(path) if path is not None else None
        self.kg: KnowledgeGraph | None = None
        if kg is not None:
            self.kg = kg if isinstance(kg, KnowledgeGraph) else KnowledgeGraph(kg)
        self.retrieval = (self.kg is not None) if retrieval is None else retrieval
        if self.retrieval and self.kg is None:
            raise InputError("retrieval needs a knowledge graph (give kg=...)")
        self.cut_above = cut_above
        self.keep = keep
        self._terms: TermIndex | None = None
        self._index: ProteinIndex | None = None
        self.combination = _combination(self.path)

    @classmethod
    def load(
        cls,
        path: str | Path,
        kg: KnowledgeGraph | str | Path | None = None,
        *,
        device: str | None = None,
        dtype: Any = None,
        retrieval: bool | None = None,
    ) -> Model:
        """Open a model folder (``save_model``'s or the paper's checkpoint) and, optionally, a graph.

        ``device``: ``cpu``, ``cuda``... (default: cuda where available). ``dtype``: default
        fp32 on CPU, bf16 on a GPU that has it.
        """
        import torch

        from instructprotein.model.factory import load_model_and_tokenizer

        folder = Path(path).expanduser()
        if not folder.exists():
            raise InputError("model folder not found", folder)
        dev = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
        if dtype is None:
            dtype = torch.bfloat16 if dev.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
        model, tok = load_model_and_tokenizer(folder, dtype=dtype)
        model.to(dev)
        return cls(model, tok, kg=kg, path=folder, retrieval=retrieval)

    # -- the graph's helpers, built on first use --------------------------------------------------------
    @property
    def terms(self) -> TermIndex | None:
        if self._terms is None and self.kg is not None:
            self._terms = TermIndex(self.kg)
        return self._terms

    @property
    def index(self) -> ProteinIndex | None:
        if self._index is None and self.kg is not None:
            self._index = ProteinIndex(self.kg)
        return self._index

    # -- the three tasks ---------------------------------------------------------------------------------
    def describe(
        self, sequence: str, *, id: str = "query", retrieval: bool | None = None, **options: Any
    ) -> Description:
        """Function, location and GO terms of one sequence (see :func:`~instructprotein.infer.describe.describe`)."""
        return self.describe_many([Query(id, clean_sequence(sequence, id))], retrieval=retrieval, **options)[0]

    def describe_many(
        self, queries: Sequence[Query] | str | Path, *, retrieval: bool | None = None, **options: Any
    ) -> list[Description]:
        """:meth:`describe` for many: queries, or a FASTA / JSON lines file (see :func:`read_queries`)."""
        if isinstance(queries, (str, Path)):
            queries = read_queries(queries)
        use = self.retrieval if retrieval is None else retrieval
        options.setdefault("cut_above", self.cut_above)
        options.setdefault("keep", self.keep)
        options.setdefault("combination", self.combination)
        return describe(
            self.model,
            self.tokenizer,
            list(queries),
            terms=self.terms,
            index=self.index if use else None,
            retrieval=use,
            **options,
        )

    def design(self, text: str, n: int = 4, **options: Any) -> DesignRun:
        """``n`` sequences for a request, checked (see :func:`~instructprotein.infer.generate.design`)."""
        return design(self.model, self.tokenizer, text, n=n, terms=self.terms, index=self.index, **options)

    def classify(
        self,
        sequence: str,
        question: str,
        options: Sequence[str],
        *,
        prefix: str = "",
        rule: Rule = DEFAULT_RULE,
        retrieval: bool | None = None,
        id: str = "query",
        top_k: int = 3,
        max_identity: float | None = None,
    ) -> Choice:
        """The option the model finds most likely after ``{protein}Instruction: {question}\\n\\nOutput: {prefix}``."""
        return self.classify_many(
            [Query(id, clean_sequence(sequence, id))],
            question,
            options,
            prefix=prefix,
            rule=rule,
            retrieval=retrieval,
            top_k=top_k,
            max_identity=max_identity,
        )[0]

    def classify_many(
        self,
        queries: Sequence[Query] | str | Path,
        question: str | Sequence[str],
        options: Sequence[str] | Sequence[Sequence[str]],
        *,
        prefix: str = "",
        rule: Rule = DEFAULT_RULE,
        retrieval: bool | None = None,
        top_k: int = 3,
        max_identity: float | None = None,
    ) -> list[Choice]:
        if isinstance(queries, (str, Path)):
            queries = read_queries(queries)
        queries = list(queries)
        from instructprotein.infer.classify import check_options_fit, context_length

        check_options_fit(self.tokenizer, options, context_length(self.model))  # before the prompts are fitted
        use = self.retrieval if retrieval is None else retrieval
        contexts = None
        if use:
            if self.index is None:
                raise InputError("retrieval needs a knowledge graph (give kg=...)")
            from instructprotein.infer.generate import prompt_fits
            from instructprotein.infer.retrieval import homolog_contexts
            from instructprotein.prompt import option_text

            questions = [question] if isinstance(question, str) else list(question)
            flat = [o for o in options if isinstance(o, str)] or [o for opts in options for o in opts]
            reserve = max((len(self.tokenizer.encode(option_text(o), add_bos=False)) for o in flat), default=8)
            fits = prompt_fits(
                self.model,
                self.tokenizer,
                questions,
                prefix=prefix,
                reserve=reserve,
                cut_above=self.cut_above,
                keep=self.keep,
            )
            found = homolog_contexts(self.index, queries, top_k=top_k, max_identity=max_identity, fits=fits)
            contexts = [found[q.id][1] for q in queries]
        return classify(
            self.model,
            self.tokenizer,
            queries,
            question,
            options,
            prefix=prefix,
            rule=rule,
            contexts=contexts,
            cut_above=self.cut_above,
            keep=self.keep,
        )

    # -- retrieval on its own ------------------------------------------------------------------------------
    def homologs(self, sequence: str, *, top_k: int = 5, **search: Any) -> list[Homolog]:
        """The graph's proteins most similar to ``sequence`` (MMseqs2)."""
        if self.index is None:
            raise InputError("homolog search needs a knowledge graph (give kg=...)")
        q = Query("query", clean_sequence(sequence))
        return self.index.search([q], top_k=top_k, **search)["query"]

    def homology_transfer(self, sequence: str, *, aspect: str | None = None, k: int = 5, **search: Any) -> Transfer:
        """The baseline: GO terms of the best hit and an identity-weighted vote of the top ``k``."""
        if self.kg is None:
            raise InputError("homology transfer needs a knowledge graph (give kg=...)")
        return transfer(self.homologs(sequence, top_k=k, **search), go_labels(self.kg, aspect), k=k)

    def map_terms(self, text: str, *, fuzzy: bool = False) -> TermSet:
        """GO terms named in ``text``, mapped to ids and closed under the ontology."""
        if self.terms is None:
            raise InputError("mapping GO terms needs a knowledge graph (give kg=...)")
        return self.terms.find(text, fuzzy=fuzzy)

    def __repr__(self) -> str:
        kg = self.kg.path if self.kg is not None else None
        return f"Model(path={str(self.path)!r}, kg={str(kg)!r}, retrieval={self.retrieval})"
