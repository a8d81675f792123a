"""The GO graph as integer arrays: transitive closure over is_a + part_of, ancestor chains.

Propagation follows the true-path rule: a protein annotated with a term also carries every
ancestor reached through ``is_a`` and ``part_of``. ``regulates`` edges are kept in the
store for causal chains but never propagated (a regulator of X is not an instance of X).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from instructprotein.errors import InputError
from instructprotein.formats.records import PROPAGATING_RELATIONS, Ontology


@dataclass
class TermGraph:
    """Live (non-obsolete) terms, indexed 0..n-1, with their parent edges."""

    ids: list[str]
    index: dict[str, int]
    parents: list[list[tuple[int, str]]]  # per term: (parent index, relation)

    @classmethod
    def from_ontology(cls, onto: Ontology) -> TermGraph:
        live = sorted(t.id for t in onto.terms.values() if not t.is_obsolete)
        index = {tid: i for i, tid in enumerate(live)}
        parents: list[list[tuple[int, str]]] = [[] for _ in live]
        for tid in live:
            for relation, parent in onto.terms[tid].parents:
                target = parent if parent in index else onto.resolve(parent)
                if target is None or target not in index or target == tid:
                    continue
                parents[index[tid]].append((index[target], relation))
        return cls(live, index, parents)

    def closure(self, relations: tuple[str, ...] = PROPAGATING_RELATIONS, source: str = "") -> list[dict[int, int]]:
        """For each term, {ancestor index: shortest distance}, the term itself at distance 0.

        Computed in topological order (Kahn), so each term merges its parents' finished
        closures once: linear in the size of the result. A cycle is an input error.
        """
        n = len(self.ids)
        up = [[p for p, rel in self.parents[i] if rel in relations] for i in range(n)]
        children: list[list[int]] = [[] for _ in range(n)]
        pending = [len(up[i]) for i in range(n)]
        for i in range(n):
            for p in up[i]:
                children[p].append(i)
        queue = deque(i for i in range(n) if pending[i] == 0)
        result: list[dict[int, int] | None] = [None] * n
        done = 0
        while queue:
            i = queue.popleft()
            anc = {i: 0}
            for p in up[i]:
                for a, d in result[p].items():  # type: ignore[union-attr]
                    if anc.get(a, 1 << 30) > d + 1:
                        anc[a] = d + 1
            result[i] = anc
            done += 1
            for c in children[i]:
                pending[c] -= 1
                if pending[c] == 0:
                    queue.append(c)
        if done < n:
            stuck = [self.ids[i] for i in range(n) if result[i] is None]
            cycle = self._cycle_among({self.index[s] for s in stuck}, up)
            raise InputError(
                f"cycle in the term graph over {'+'.join(relations)}: {' -> '.join(cycle)}", source or None
            )
        return result  # type: ignore[return-value]

    def _cycle_among(self, nodes: set[int], up: list[list[int]]) -> list[str]:
        """Walk parent edges inside the unresolved set until a node repeats: that loop is a cycle."""
        start = min(nodes)
        seen: dict[int, int] = {}
        path: list[int] = []
        node = start
        while node not in seen:
            seen[node] = len(path)
            path.append(node)
            node = next(p for p in up[node] if p in nodes)
        loop = path[seen[node] :] + [node]
        return [self.ids[i] for i in loop]
