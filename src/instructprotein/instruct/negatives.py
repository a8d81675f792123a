"""Negative GO terms for yes/no questions and distractors for multiple choice.

A negative must be *false* for the protein, as far as the graph can tell:

1. not carried, even by propagation (a zinc-binding protein does carry "metal ion
   binding");
2. not a descendant of one of the protein's direct terms: a protein annotated only
   "metal ion binding" may well bind zinc; the record cannot say "no" to "zinc ion
   binding", so we do not either (open-world annotations);
3. a term that annotates at least one protein in the graph, of the same aspect, and at
   least ``min_depth`` below the root, as positives are: otherwise "never seen" or "very
   general" would give the answer away.

Two kinds:

- **random**: terms of the aspect drawn with probability proportional to their propagated
  frequency (to the power ``weight_power``). Positives are drawn from proteins'
  annotations, so they follow the same frequency profile; frequency-matched negatives
  stop a model from answering from term frequency alone (on the paper's GO test set the
  frequency prior alone scores 91.5 %, because its negatives are rare terms).
- **hard**: near the positive in the DAG: *siblings* (other children of its parents) and
  *cousins* (children and grandchildren of its grandparents, i.e. the parents' siblings and
  their children), over is_a + part_of. "copper ion binding" for a zinc binder.

Speed: per-term pools are computed once from the in-memory edge dicts and cached; a
draw is a few set look-ups with rejection, never a query.
"""

from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass
from typing import Literal

from instructprotein.instruct.kgview import GO_ASPECTS, KGView, ProteinTerms

NegativeKind = Literal["sibling", "cousin", "random"]


@dataclass(frozen=True, slots=True)
class Negative:
    eid: int
    kind: NegativeKind


class NegativeSampler:
    """Random and hard negative GO terms for one protein at a time (see module docstring)."""

    def __init__(self, view: KGView, *, weight_power: float = 1.0, min_depth: int = 2, max_tries: int = 50):
        self.view = view
        self.min_depth = min_depth
        self.max_tries = max_tries
        freq = view.frequency
        depth = view.depth
        self._eligible = [False] * (view.n_entities + 1)
        self._pool: dict[str, list[int]] = {}
        self._cum: dict[str, list[float]] = {}
        for aspect in GO_ASPECTS:
            pool = [
                e
                for e in range(1, view.n_entities + 1)
                if view.kinds[e] == "go"
                and view.aspects[e] == aspect
                and freq[e] > 0
                and depth[e] >= min_depth
                and e not in view.roots
            ]
            for e in pool:
                self._eligible[e] = True
            self._pool[aspect] = pool
            self._cum[aspect] = list(itertools.accumulate(float(freq[e]) ** weight_power for e in pool))
        self._hard: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {}

    # -- pools (per term, cached) ------------------------------------------------------------
    def eligible(self, eid: int) -> bool:
        """Could this term be a negative for some protein (rule 3)?"""
        return self._eligible[eid]

    def hard_pools(self, anchor: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(siblings, cousins) of a term, eligible terms of its aspect only, its own lineage removed."""
        got = self._hard.get(anchor)
        if got is not None:
            return got
        v = self.view
        aspect = v.aspects[anchor]
        lineage = v.ancestor_set(anchor)
        parents = v.propagating_parents(anchor)
        siblings: dict[int, None] = {}
        for p in parents:
            for c in v.propagating_children(p):
                siblings[c] = None
        cousins: dict[int, None] = {}
        for g in sorted({g for p in parents for g in v.propagating_parents(p)}):
            for aunt in v.propagating_children(g):
                cousins[aunt] = None
                for c in v.propagating_children(aunt):
                    cousins[c] = None

        def keep(e: int) -> bool:
            return e != anchor and e not in lineage and self._eligible[e] and v.aspects[e] == aspect

        sib = tuple(e for e in siblings if keep(e))
        sib_set = set(sib)
        cou = tuple(e for e in cousins if keep(e) and e not in sib_set)
        got = (sib, cou)
        self._hard[anchor] = got
        return got

    # -- per protein ---------------------------------------------------------------------------
    def allowed(self, eid: int, terms: ProteinTerms) -> bool:
        """Rules 1 and 2: not carried, not below one of the protein's direct terms."""
        if eid in terms.carried:
            return False
        return self.view.ancestor_set(eid).isdisjoint(terms.direct_go)

    def random_negatives(
        self, rng: random.Random, aspect: str, terms: ProteinTerms, k: int = 1, exclude: frozenset[int] = frozenset()
    ) -> list[int]:
        """Up to ``k`` distinct frequency-weighted negatives of ``aspect``."""
        pool, cum = self._pool[aspect], self._cum[aspect]
        if not pool or k <= 0:
            return []
        total = cum[-1]
        out: list[int] = []
        for _ in range(self.max_tries + 4 * k):
            e = pool[bisect.bisect_right(cum, rng.random() * total)] if total > 0 else rng.choice(pool)
            if e not in exclude and e not in out and self.allowed(e, terms):
                out.append(e)
                if len(out) == k:
                    break
        return out

    def hard_negatives(
        self, rng: random.Random, anchor: int, terms: ProteinTerms, k: int = 1, exclude: frozenset[int] = frozenset()
    ) -> list[Negative]:
        """Up to ``k`` distinct siblings / cousins of ``anchor``, drawn uniformly from both pools."""
        sib, cou = self.hard_pools(anchor)
        n = len(sib) + len(cou)
        if n == 0 or k <= 0:
            return []
        out: list[Negative] = []
        seen: set[int] = set()

        def consider(i: int) -> bool:
            e = sib[i] if i < len(sib) else cou[i - len(sib)]
            if e in seen:
                return False
            seen.add(e)
            if e in exclude or not self.allowed(e, terms):
                return False
            out.append(Negative(e, "sibling" if i < len(sib) else "cousin"))
            return len(out) == k

        if n <= self.max_tries:  # small pool: look at every candidate once, in random order
            for i in rng.sample(range(n), n):
                if consider(i):
                    break
        else:
            for _ in range(self.max_tries):
                if consider(rng.randrange(n)):
                    break
        return out

    def sample(
        self,
        rng: random.Random,
        aspect: str,
        terms: ProteinTerms,
        k: int = 1,
        anchor: int | None = None,
        hard_fraction: float = 0.5,
        exclude: frozenset[int] = frozenset(),
    ) -> list[Negative]:
        """``k`` negatives: each is hard with probability ``hard_fraction`` (when ``anchor``
        has any), random otherwise; hard ones that run out are topped up with random ones."""
        n_hard = sum(rng.random() < hard_fraction for _ in range(k)) if anchor is not None else 0
        out = self.hard_negatives(rng, anchor, terms, n_hard, exclude) if n_hard else []
        taken = exclude | {n.eid for n in out}
        out.extend(
            Negative(e, "random") for e in self.random_negatives(rng, aspect, terms, k - len(out), frozenset(taken))
        )
        return out
