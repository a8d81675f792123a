"""The homology side of a run: which tasks need a graph to search, a side on the benchmark graph
and one on the held-out split's, and one MMseqs2 search per graph.

Apart from the runner (:mod:`~instructprotein.evaluate.runner`): the searches are one phase of a
run; a side itself is :class:`~instructprotein.evaluate.homology_side._HomologySide`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from instructprotein.errors import InputError
from instructprotein.evaluate.data import TaskData
from instructprotein.evaluate.homology_side import _HomologySide, _reuse_decontamination_hits
from instructprotein.evaluate.run_inputs import RunInputs
from instructprotein.evaluate.tasks import TaskSpec
from instructprotein.progress import Progress


@dataclass
class HomologySearch:
    """The searched sides (``benchmark``, ``heldout``), the side each task reads (by task name) and
    what ``results.json`` says of them."""

    sides: dict[str, _HomologySide]
    need_side: dict[str, str]
    info: dict[str, Any]

    def side(self, name: str) -> _HomologySide | None:
        """The side task ``name`` reads, if it reads one."""
        return self.sides.get(self.need_side.get(name, ""))


def search_homologs(
    all_specs: Sequence[TaskSpec],
    data: dict[str, TaskData],
    src: RunInputs,
    *,
    homology: bool,
    retrieval: bool,
    sensitivity: float,
    max_seqs: int,
    progress: Progress,
) -> HomologySearch:
    """Every test sequence searched once against its task's graph (decontaminated; the hits the
    decontamination already found are reused where they apply)."""
    heldout, kg_obj, removed, max_identity = src.heldout, src.kg, src.removed, src.max_identity
    decontamination_dir, decon_info = src.decontamination_dir, src.decon_info
    settings = {"top_k": 20, "sensitivity": sensitivity, "max_seqs": max_seqs, "evalue": 1e-3}
    sides: dict[str, _HomologySide] = {}
    homology_info: dict[str, Any] = {"enabled": bool(homology), "max_identity": max_identity, **settings}
    need_side = {
        s.name: ("heldout" if s.test.heldout else "benchmark")
        for s in all_specs
        if (homology and s.homology is not None) or retrieval or s.term_frequency or s.kind == "design"
    }
    searching = {
        s.name for s in all_specs if ((homology and s.homology is not None) or retrieval) and s.kind != "design"
    }
    if need_side:
        not_train = heldout.not_train() if heldout is not None else frozenset()
        if "benchmark" in need_side.values():
            if kg_obj is None:
                raise InputError("homology transfer needs a knowledge graph (give kg=... or instructions_dir=...)")
            same_as_split = heldout is not None and kg_obj.meta.get("content_hash") == heldout.kg.meta.get(
                "content_hash"
            )
            exclude = removed | (not_train if same_as_split else frozenset())
            sides["benchmark"] = _HomologySide(kg_obj, exclude, max_identity, settings)
            homology_info["benchmark_graph"] = {
                "kg": str(kg_obj.path),
                "content_hash": kg_obj.meta.get("content_hash"),
                "excluded_decontaminated": len(removed),
                "excluded_not_in_train_split": len(not_train) if same_as_split else 0,
                "proteins": kg_obj.count("protein"),
            }
        if "heldout" in need_side.values():
            assert heldout is not None
            shared = sides.get("benchmark")  # the same graph: one index, one search, each side's exclusions after
            same_graph = shared is not None and shared.kg.meta.get("content_hash") == heldout.kg.meta.get(
                "content_hash"
            )
            sides["heldout"] = _HomologySide(
                heldout.kg, not_train | removed, max_identity, settings, shared.index if same_graph else None
            )
            homology_info["heldout_graph"] = {
                "kg": str(heldout.kg.path),
                "content_hash": heldout.kg.meta.get("content_hash"),
                "excluded_not_in_train_split": len(not_train),
                "proteins": heldout.kg.count("protein"),
                "train_proteins": len(heldout.train_accessions()),
            }
        wanted = {
            key: [
                i.sequence for n, where in need_side.items() if where == key and n in searching for i in data[n].items
            ]
            for key in sides
        }
        if "benchmark" in sides and decontamination_dir is not None and decon_info.get("applies_to_homology_graph"):
            homology_info["reused_decontamination_hits"] = _reuse_decontamination_hits(
                sides["benchmark"], decontamination_dir, src.decon_parameters, wanted["benchmark"], settings
            )
        if len(sides) == 2 and sides["benchmark"].index is sides["heldout"].index:
            # one MMseqs2 run for both: the index keeps raw hits per sequence, each side filters its own
            everything = sorted(set(wanted["benchmark"] + wanted["heldout"]))
            if everything:
                with progress.step(f"homology search ({len(everything):,} sequences, both sides)"):
                    t0 = time.perf_counter()
                    sides["benchmark"].index.search(
                        {str(i): q for i, q in enumerate(everything)},
                        top_k=1,
                        sensitivity=settings["sensitivity"],
                        max_seqs=settings["max_seqs"],
                    )
                    homology_info["search_seconds"] = round(time.perf_counter() - t0, 1)
        for key, side in sides.items():
            if not wanted[key]:
                continue
            with progress.step(f"homology search ({key} graph, {len(set(wanted[key])):,} sequences)"):
                side.search(wanted[key])
            homology_info[f"{key}_search_seconds"] = round(side.seconds, 1)
    return HomologySearch(sides, need_side, homology_info)
