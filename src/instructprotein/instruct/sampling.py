"""Debiased sampling of knowledge triples (the paper's 1/m * 1/|cluster| * 1/|triples|).

Annotation databases are dominated by a few terms and by families of near-identical
proteins: drawn uniformly, instructions would mostly teach "metal ion binding" about the
same few hundred families. Proteins are grouped twice, then a triple is drawn with
probability  1/m * 1/|C(p)| * 1/|T(p)|:  a cluster uniformly among the m clusters, a
protein uniformly inside it, a triple uniformly among the protein's.

Clusters: first by sequence (MMseqs2 at 80 % identity, so near-duplicates count once), then
sequence clusters are merged when their representatives have the same *annotation profile*,
estimated by MinHash over the propagated GO terms. Why MinHash: it needs no training (a
graph embedding would), is linear in the number of annotations, and proteins whose
propagated term sets agree (Jaccard close to 1: the hundreds of "ATP binding, cytoplasm"
kinases) fall in one bucket with high probability (P = J^k for k hashes), while proteins
with distinctive annotations keep their own cluster. It is deterministic for a seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def minhash(indptr: np.ndarray, indices: np.ndarray, num_hashes: int = 4, seed: int = 0) -> np.ndarray:
    """MinHash signatures (rows x num_hashes, uint64) of the sets given in CSR form.

    Row i's set is ``indices[indptr[i]:indptr[i+1]]`` (term ids). Empty rows get the
    maximum value in every column, i.e. they share one signature ("no annotation").
    """
    rng = np.random.default_rng(seed)
    n_rows = len(indptr) - 1
    out = np.full((n_rows, num_hashes), np.iinfo(np.uint64).max, dtype=np.uint64)
    if len(indices) == 0:
        return out
    max_term = int(indices.max()) + 1
    nonempty = np.flatnonzero(np.diff(indptr) > 0)
    starts = indptr[:-1][nonempty]
    for k in range(num_hashes):
        # a random permutation of term ids is an exact min-wise independent hash family
        values = rng.permutation(max_term).astype(np.uint64)[indices]
        out[nonempty, k] = np.minimum.reduceat(values, starts)
    return out


def signature_keys(signatures: np.ndarray) -> np.ndarray:
    """One int64 key per row: rows with equal signatures get equal keys."""
    _, inverse = np.unique(signatures, axis=0, return_inverse=True)
    return inverse.reshape(-1).astype(np.int64)


def merge_clusters(sequence_rep: np.ndarray, profile_key: np.ndarray) -> np.ndarray:
    """Final cluster id per protein: the profile key of its sequence cluster's representative.

    ``sequence_rep[i]`` is the index of protein i's representative (itself for singletons).
    """
    return profile_key[sequence_rep]


@dataclass
class SamplingPlan:
    """Per-triple probabilities and the figures ``instructions stats`` reports."""

    probability: np.ndarray  # per triple, sums to 1
    clusters: int  # m
    proteins: int  # proteins with at least one triple

    def draw(self, n: int, seed: int) -> np.ndarray:
        """Indices of ``n`` triples drawn with replacement, sorted (stable shard layout)."""
        rng = np.random.default_rng(seed)
        cdf = np.cumsum(self.probability)
        cdf /= cdf[-1]
        picks = np.searchsorted(cdf, rng.random(n), side="right")
        return np.sort(np.minimum(picks, len(cdf) - 1))


def plan(triple_protein: np.ndarray, protein_cluster: np.ndarray) -> SamplingPlan:
    """Probability of each triple under 1/m * 1/|C(p)| * 1/|T(p)|.

    ``triple_protein[t]`` is the protein index of triple t; ``protein_cluster[p]`` the cluster
    id of protein p. Proteins without triples do not count in cluster sizes (they can never
    be drawn, and counting them would dilute their cluster-mates).
    """
    if len(triple_protein) == 0:
        raise ValueError("no triples to sample from")
    n_prot = len(protein_cluster)
    triples_per_protein = np.bincount(triple_protein, minlength=n_prot)
    has = triples_per_protein > 0
    _, cluster_index = np.unique(protein_cluster, return_inverse=True)
    cluster_index = cluster_index.reshape(-1)
    cluster_size = np.bincount(cluster_index[has], minlength=int(cluster_index.max()) + 1)
    m = int((cluster_size > 0).sum())
    p_protein = np.zeros(n_prot, dtype=np.float64)
    p_protein[has] = 1.0 / m / cluster_size[cluster_index[has]]
    prob = p_protein[triple_protein] / triples_per_protein[triple_protein]
    return SamplingPlan(probability=prob / prob.sum(), clusters=m, proteins=int(has.sum()))


def entropy_bits(counts: np.ndarray) -> float:
    """Shannon entropy of a frequency vector, in bits (higher = flatter)."""
    c = np.asarray(counts, dtype=np.float64)
    c = c[c > 0]
    if len(c) == 0:
        return 0.0
    p = c / c.sum()
    return float(-(p * np.log2(p)).sum())
