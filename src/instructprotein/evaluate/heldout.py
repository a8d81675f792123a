"""Our own held-out test sets, made from an instruction set's test split of the knowledge graph.

The instruction builder splits the graph's proteins by 30 %-identity clusters
(:mod:`instructprotein.instruct.splits`): no test protein shares a cluster with a training
protein, and proteins decontamination removed are in none. Here the test (or train) split's
proteins become items of the built-in held-out tasks, labelled from the graph:

- ``location``: DeepLoc's 10 classes from the protein's GO CC terms
  (:class:`~instructprotein.instruct.compartments.LocationMapper`), single-location proteins only;
- ``metal``: proteins with at least one GO molecular-function term; "yes" when they carry
  metal ion binding (GO:0046872) directly or by propagation;
- ``go`` (one aspect): up to ``positives`` direct terms of the aspect per protein, drawn
  among terms the generator's negative sampler deems askable (annotating some protein, at
  least 2 below the root), and as many negatives from that sampler (half siblings or cousins
  of a positive, half frequency-matched random terms; never a term the protein carries or one
  below its direct terms), so the set is near balanced and frequency alone does not give
  the answer away;
- ``describe``: the function text the generator wrote for the protein (reference of BLEU /
  ROUGE-L) and its propagated GO terms;
- ``design``: the split's design instructions, one per protein: the request, the GO terms it
  asks for, and the natural protein it was made from.
- ``design_rank``: one request per protein for one of its most specific GO terms, in the
  design instructions' wording, with ``candidates - 1`` requests for terms of the same aspect
  nearest it in propagated frequency that the protein does not carry (even by propagation).

Every choice is seeded (``seed``, the protein's accession), so the same instruction set and
seed give the same items; :meth:`HeldOut.items` also writes them as JSON lines under
``out_dir/heldout/`` so a report's numbers can be traced to the exact items.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

from instructprotein.atomic import write_text
from instructprotein.errors import InputError
from instructprotein.evaluate.data import Item
from instructprotein.evaluate.tasks import Source
from instructprotein.instruct.compartments import LocationMapper
from instructprotein.kg.store import KnowledgeGraph
from instructprotein.prompt.render import normalize_sequence

METAL_ION_BINDING = "GO:0046872"
MEMBRANE = "GO:0016020"
"""DeepLoc's binary label is membrane attachment: a protein is membrane-bound when it carries GO
membrane (by propagation), as the deeploc_binary homology rule reads its hits."""


def _direct_terms(kg: KnowledgeGraph, accessions: list[str], aspect: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {a: [] for a in accessions}
    for i in range(0, len(accessions), 500):
        chunk = accessions[i : i + 500]
        marks = ",".join("?" * len(chunk))
        for acc, term in kg.con.execute(
            "SELECT p.accession, e.id FROM protein p JOIN annotation a ON a.pid = p.pid JOIN entity e ON e.eid = a.eid"
            f" WHERE e.kind = 'go' AND e.aspect = ? AND p.accession IN ({marks})",
            [aspect, *chunk],
        ):
            out[acc].append(term)
    return out


def _sequences(kg: KnowledgeGraph, accessions: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for i in range(0, len(accessions), 500):
        chunk = accessions[i : i + 500]
        marks = ",".join("?" * len(chunk))
        for acc, seq in kg.con.execute(f"SELECT accession, sequence FROM protein WHERE accession IN ({marks})", chunk):
            out[acc] = seq
    return out


class _Cap:
    """A seeded sample of at most ``n`` of the proteins a task can use (all when ``n`` is None),
    in their original order; records how many there were."""

    def __init__(self, n: int | None, seed: int, info: dict[str, Any]):
        self.n, self.seed, self.info = n, seed, info

    def __call__(self, accessions: list[str]) -> list[str]:
        self.info["usable_proteins"] = len(accessions)
        if self.n is None or len(accessions) <= self.n:
            return accessions
        keep = set(random.Random(self.seed).sample(accessions, self.n))
        self.info["sampled_proteins"] = self.n
        return [a for a in accessions if a in keep]


def _question_of(prompt: str) -> str:
    """The question of a rendered prompt, ``Instruction: {question}\\n\\nOutput: ``."""
    text = prompt.strip().removeprefix("Instruction:")
    return text.split("\n\nOutput:")[0].strip()


def _unit(seed: int, key: str) -> random.Random:
    digest = hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "little"))


class HeldOut:
    """The held-out split of an instruction set (``instructions_dir``: splits/, instructions.json)."""

    def __init__(
        self,
        instructions_dir: str | Path,
        *,
        kg: KnowledgeGraph | str | Path | None = None,
        out_dir: str | Path | None = None,
        positives: int = 3,
        max_train: int = 20000,
    ):
        from instructprotein.instruct.splits import Splits

        self.dir = Path(instructions_dir)
        summary_path = self.dir / "instructions.json"
        self.summary_json: dict[str, Any] = {}
        if summary_path.is_file():
            self.summary_json = json.loads(summary_path.read_text(encoding="utf-8"))
        self.splits = Splits.load(self.dir / "splits")
        if kg is None:
            kg_path = self.summary_json.get("kg")
            if not kg_path:
                raise InputError("instructions.json names no knowledge graph; give kg=...", self.dir)
            kg = kg_path
        self.kg = kg if isinstance(kg, KnowledgeGraph) else KnowledgeGraph(kg)
        want = self.splits.parameters.get("kg_content_hash")
        have = self.kg.meta.get("content_hash")
        if want and have and want != have:
            raise InputError(
                f"the splits were made from another knowledge graph (content hash {want[:12]}..., "
                f"this graph {have[:12]}...); give the graph the instruction set was built from",
                self.kg.path,
            )
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.positives = positives
        self.max_train = max_train
        self.written: dict[str, Path] = {}
        self._summaries: dict[str, dict[str, Any]] = {}
        self._cache: dict[tuple[str, int], list[Item]] = {}
        self._view = None
        self._sampler = None
        self._by_frequency: dict[str, tuple[list[int], list[int]]] = {}

    # -- the training side, for baselines ------------------------------------------------------------------
    def train_accessions(self) -> list[str]:
        return self.splits.accessions("train")

    def not_train(self) -> frozenset[str]:
        """Every graph protein the model was not trained on (valid, test, removed)."""
        return frozenset(a for a, s in self.splits.split.items() if s != "train")

    @property
    def min_identity(self) -> float | None:
        cfg = self.summary_json.get("config", {})
        return cfg.get("min_identity") if cfg.get("benchmarks") else None

    # -- items ---------------------------------------------------------------------------------------------
    def summary(self, source: Source) -> dict[str, Any]:
        return self._summaries.get(source.describe(), {})

    def items(self, source: Source, *, seed: int = 0) -> list[Item]:
        key = (source.describe(), seed)
        if key in self._cache:
            return self._cache[key]
        accessions = self.splits.accessions(source.split)
        info: dict[str, Any] = {"split": source.split, "proteins_in_split": len(accessions)}
        if source.split == "train" and len(accessions) > self.max_train and source.heldout != "go":
            accessions = sorted(random.Random(seed).sample(accessions, self.max_train))
            info["sampled"] = self.max_train
        cap = _Cap(source.proteins, seed, info)
        if source.heldout == "location":
            items = self._location(accessions, info, cap)
        elif source.heldout == "metal":
            items = self._metal(accessions, info, cap)
        elif source.heldout == "membrane":
            items = self._carries(accessions, info, cap, MEMBRANE, "C")
        elif source.heldout == "go":
            items = self._go(accessions, str(source.aspect), seed, info, cap)
        elif source.heldout == "describe":
            items = self._describe(accessions, source.split, info, cap)
        elif source.heldout == "design":
            items = self._design(accessions, source.split, info, cap)
        elif source.heldout == "design_rank":
            items = self._design_rank(accessions, seed, info, cap, negatives=source.candidates - 1)
        else:  # pragma: no cover - validated in tasks.py
            raise ValueError(source.heldout)
        info["items"] = len(items)
        if source.heldout != "design_rank":  # there: the true term of each item, not a class
            info["labels"] = dict(Counter(i.label for i in items))
        self._summaries[source.describe()] = info
        self._cache[key] = items
        if self.out_dir is not None:
            name = f"{source.heldout}{('_' + source.aspect) if source.aspect else ''}_{source.split}.jsonl"
            path = self.out_dir / "heldout" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            lines = [
                json.dumps(
                    {
                        "id": i.id,
                        "accession": i.accession,
                        "sequence": i.sequence,
                        "label": i.label,
                        **({"term": i.term, "term_name": i.term_name} if i.term else {}),
                        **({"terms": list(i.terms)} if i.terms is not None else {}),
                        **({"requests": list(i.requests)} if i.requests is not None else {}),
                    }
                )
                for i in items
            ]
            write_text(path, "\n".join(lines) + ("\n" if lines else ""))
            self.written[source.describe()] = path
        return items

    def _seqs(self, accessions: list[str]) -> dict[str, str]:
        return {a: normalize_sequence(s) for a, s in _sequences(self.kg, accessions).items() if s}

    def _location(self, accessions: list[str], info: dict[str, Any], cap: _Cap) -> list[Item]:
        mapper = LocationMapper(self.kg)
        classes = mapper.classes(accessions)
        kept = cap([a for a in accessions if len(classes[a]) == 1])
        info["no_location"] = sum(1 for a in accessions if not classes[a])
        info["several_locations"] = sum(1 for a in accessions if len(classes[a]) > 1)
        seqs = self._seqs(kept)
        return [Item(a, seqs[a], classes[a][0], accession=a) for a in kept if a in seqs]

    def _metal(self, accessions: list[str], info: dict[str, Any], cap: _Cap) -> list[Item]:
        return self._carries(accessions, info, cap, METAL_ION_BINDING, "F")

    def _carries(self, accessions: list[str], info: dict[str, Any], cap: _Cap, term: str, aspect: str) -> list[Item]:
        """Proteins with at least one annotation of ``term``'s aspect; "yes" when they carry
        ``term`` directly or by propagation."""
        annotated = _direct_terms(self.kg, accessions, aspect)
        usable = [a for a in accessions if annotated[a]]
        info[f"without_{aspect.lower()}"] = len(accessions) - len(usable)
        usable = cap(usable)
        try:
            carriers = set(self.kg.proteins_with(term))
        except KeyError:
            carriers = set()
        seqs = self._seqs(usable)
        return [Item(a, seqs[a], "yes" if a in carriers else "no", accession=a) for a in usable if a in seqs]

    def _first_records(self, split: str, task: str, fields: tuple[str, ...]) -> dict[str, dict[str, Any]]:
        """Accession -> ``fields`` of the split's first ``task`` instruction about the protein
        (JSON lines shards, else the Hugging Face dataset)."""
        out: dict[str, dict[str, Any]] = {}
        shards = sorted((self.dir / "jsonl").glob(f"{split}-*.jsonl"))
        if shards:
            for shard in shards:
                with open(shard, encoding="utf-8") as fh:
                    for line in fh:
                        rec = json.loads(line)
                        if rec.get("task") == task and rec.get("accession") not in out:
                            out[rec["accession"]] = {f: rec.get(f) for f in fields}
            return out
        from instructprotein.instruct.dataset import load_instructions

        ds = load_instructions(self.dir)[split]
        columns = [ds[f] for f in ("accession", "task", *fields)]
        for acc, t, *values in zip(*columns):
            if t == task and acc not in out:
                out[acc] = dict(zip(fields, values))
        return out

    def references(self, split: str) -> dict[str, str]:
        """Accession -> the reference function text: the answer of the split's first ``function``
        instruction about the protein."""
        return {a: r["answer"] for a, r in self._first_records(split, "function", ("answer",)).items()}

    def _usable(
        self, accessions: list[str], have: Any, missing: str, info: dict[str, Any], cap: _Cap
    ) -> tuple[list[str], dict[str, str]]:
        """The accessions ``have`` holds (how many it lacks counted as ``info[missing]``), capped,
        and their sequences."""
        kept = [a for a in accessions if a in have]
        info[missing] = len(accessions) - len(kept)
        kept = cap(kept)
        return kept, self._seqs(kept)

    def _design(self, accessions: list[str], split: str, info: dict[str, Any], cap: _Cap) -> list[Item]:
        """The split's design instructions, one per protein: the request (the instruction's
        question as the generator wrote it), the GO terms it asks for, and the natural protein
        it was made from (the reference a design is compared with)."""
        records = self._first_records(split, "design", ("prompt", "triples"))
        kept, seqs = self._usable(accessions, records, "without_design_instruction", info, cap)
        items = []
        for a in kept:
            rec = records[a]
            request = _question_of(str(rec["prompt"] or ""))
            terms = tuple(dict.fromkeys(t[2] for t in rec["triples"] or () if str(t[2]).startswith("GO:")))
            if a in seqs and request and terms:
                items.append(Item(a, seqs[a], request, accession=a, terms=terms))
        return items

    def _describe(self, accessions: list[str], split: str, info: dict[str, Any], cap: _Cap) -> list[Item]:
        refs = self.references(split)
        kept, seqs = self._usable(accessions, refs, "without_reference", info, cap)
        items = []
        for a in kept:
            if a not in seqs:
                continue
            terms = tuple(x.entity.id for x in self.kg.propagated_annotations(a))
            items.append(Item(a, seqs[a], refs[a], accession=a, terms=terms))
        return items

    def _sampler_view(self) -> tuple[Any, Any]:
        if self._view is None:
            from instructprotein.instruct.kgview import KGView
            from instructprotein.instruct.negatives import NegativeSampler

            self._view = KGView(self.kg.path)
            self._sampler = NegativeSampler(self._view)
        return self._view, self._sampler

    def _design_rank(
        self, accessions: list[str], seed: int, info: dict[str, Any], cap: _Cap, negatives: int = 9
    ) -> list[Item]:
        """One ranking item per protein: a request for one of its most specific GO terms (an
        aspect drawn per protein among those it has one of), worded as the design
        instructions word it ("Design a protein that binds zinc ion."), against ``negatives``
        requests for terms of the same aspect nearest it in propagated frequency
        (:meth:`_matched_negatives`)."""
        from instructprotein.infer.prompts import question
        from instructprotein.instruct.templates import function_phrase, location_phrase, process_phrase

        phrase = {"F": function_phrase, "P": process_phrase, "C": location_phrase}
        view, sampler = self._sampler_view()
        askable: dict[str, dict[str, list[int]]] = {}
        for acc in accessions:
            if acc not in view.pid_of:
                continue
            terms = view.terms(view.pid_of[acc])
            pools = {a: [e for e in view.most_specific(terms.direct.get(a, ())) if sampler.eligible(e)] for a in "FPC"}
            pools = {a: v for a, v in pools.items() if v}
            if pools:
                askable[acc] = pools
        info["proteins_without_askable_terms"] = len([a for a in accessions if a in view.pid_of]) - len(askable)
        chosen = cap(list(askable))
        seqs = self._seqs(chosen)
        items: list[Item] = []
        short = 0
        for acc in chosen:
            if acc not in seqs:
                continue
            rng = _unit(seed, f"{acc}:rank")
            aspect = rng.choice(sorted(askable[acc]))
            pos = rng.choice(askable[acc][aspect])
            neg = self._matched_negatives(rng, aspect, pos, view.terms(view.pid_of[acc]), negatives)
            if len(neg) < negatives:
                short += 1
                continue
            eids = [pos, *neg]
            requests = tuple(question("design", 0, description=phrase[aspect](view.names[e])) for e in eids)
            items.append(
                Item(
                    acc,
                    seqs[acc],
                    view.ids[pos],
                    accession=acc,
                    terms=tuple(view.ids[e] for e in eids),
                    requests=requests,
                    term_name=view.names[pos],
                )
            )
        info["skipped_too_few_negatives"] = short
        return items

    def _matched_negatives(self, rng: random.Random, aspect: str, pos: int, terms: Any, k: int) -> list[int]:
        """``k`` terms of ``aspect`` whose propagated frequency is nearest the positive's (a seeded
        draw among the ``20 k`` nearest, widened while too few qualify), each one the protein does
        not carry, even by propagation, and none below its direct terms: a model cannot pick the
        true request for being the commoner (or rarer) term."""
        view, sampler = self._sampler_view()
        if aspect not in self._by_frequency:
            pool = [e for e in range(1, view.n_entities + 1) if sampler.eligible(e) and view.aspects[e] == aspect]
            pool.sort(key=lambda e: (view.frequency[e], view.ids[e]))
            self._by_frequency[aspect] = (pool, [view.frequency[e] for e in pool])
        pool, freqs = self._by_frequency[aspect]
        import bisect

        at = bisect.bisect_left(freqs, view.frequency[pos])
        width = 20 * k
        while True:
            window = [e for e in pool[max(0, at - width // 2) : at + width // 2] if e != pos]
            window = sorted(window, key=lambda e: abs(view.frequency[e] - view.frequency[pos]))[:width]
            rng.shuffle(window)
            out = [e for e in window if sampler.allowed(e, terms)][:k]
            if len(out) == k or width >= len(pool):
                return out
            width *= 2

    def _go(self, accessions: list[str], aspect: str, seed: int, info: dict[str, Any], cap: _Cap) -> list[Item]:
        if self._view is None:
            from instructprotein.instruct.kgview import KGView
            from instructprotein.instruct.negatives import NegativeSampler

            self._view = KGView(self.kg.path)
            self._sampler = NegativeSampler(self._view)
        view, sampler = self._view, self._sampler
        assert sampler is not None
        askable: dict[str, list[int]] = {}
        without = 0
        for acc in accessions:
            if acc not in view.pid_of:
                continue
            pool = [e for e in view.terms(view.pid_of[acc]).direct.get(aspect, ()) if sampler.eligible(e)]
            if pool:
                askable[acc] = pool
            else:
                without += 1
        chosen = cap(list(askable))
        seqs = self._seqs(chosen)
        items: list[Item] = []
        for acc in chosen:
            if acc not in seqs:
                continue
            terms = view.terms(view.pid_of[acc])
            pool = askable[acc]
            rng = _unit(seed, f"{acc}:{aspect}")
            pos = sorted(rng.sample(pool, min(self.positives, len(pool))))
            neg = sampler.sample(rng, aspect, terms, k=len(pos), anchor=pos[0])
            for e, yes in [(e, True) for e in pos] + [(n.eid, False) for n in neg]:
                tid = view.ids[e]
                items.append(Item(f"{acc}|{tid}", seqs[acc], "yes" if yes else "no", tid, view.names[e], accession=acc))
        info["proteins_without_askable_terms"] = without
        return items
