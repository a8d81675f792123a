"""Debiased sampling flattens the term distribution, and MinHash groups equal profiles."""

from __future__ import annotations

import numpy as np

from instructprotein.instruct.sampling import entropy_bits, merge_clusters, minhash, plan, signature_keys
from instructprotein.kg.stats import gini


def csr(sets: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    indptr = np.cumsum([0] + [len(s) for s in sets])
    indices = np.array([t for s in sets for t in s], dtype=np.int64)
    return indptr, indices


def test_minhash_equal_sets_equal_signatures_disjoint_sets_differ():
    indptr, indices = csr([[1, 2, 3], [3, 2, 1], [7, 8, 9], [], [1, 2, 3, 50]])
    sig = minhash(indptr, indices, num_hashes=8, seed=3)
    keys = signature_keys(sig)
    assert keys[0] == keys[1]
    assert keys[0] != keys[2]
    assert keys[3] not in (keys[0], keys[2])  # the empty profile is its own key
    assert (sig[3] == np.iinfo(np.uint64).max).all()
    # deterministic for a seed
    assert (minhash(indptr, indices, 8, 3) == sig).all()


def test_minhash_collision_rate_tracks_jaccard():
    rng = np.random.default_rng(0)
    base = list(range(100))
    similar = base[:90] + list(range(1000, 1010))  # Jaccard 90/110 = 0.82
    hits = 0
    for seed in range(200):
        indptr, indices = csr([base, similar])
        sig = minhash(indptr, indices, num_hashes=1, seed=seed)
        hits += int(sig[0, 0] == sig[1, 0])
    assert 0.70 < hits / 200 < 0.93, hits
    del rng


def test_sampling_flattens_term_frequencies():
    # 200 proteins of one family all annotated with term 0 (one sequence cluster),
    # 50 more with term 0 in distinct sequence clusters but the same profile,
    # and 50 singletons, each with its own rare term.
    triple_protein, triple_term = [], []
    seq_rep = []
    profiles = []
    for p in range(300):
        if p < 200:
            terms, rep = [0], 0
        elif p < 250:
            terms, rep = [0], p
        else:
            terms, rep = [p], p
        for t in terms:
            triple_protein.append(p)
            triple_term.append(t)
        seq_rep.append(rep)
        profiles.append(terms)
    triple_protein = np.array(triple_protein)
    triple_term = np.array(triple_term)
    keys = signature_keys(minhash(*csr(profiles), num_hashes=4, seed=0))
    clusters = merge_clusters(np.array(seq_rep), keys)
    assert len(np.unique(clusters)) == 51  # one "term 0" cluster + 50 singletons

    uniform = np.bincount(triple_term, minlength=300)
    sampling = plan(triple_protein, clusters)
    assert sampling.clusters == 51
    assert np.isclose(sampling.probability.sum(), 1.0)
    drawn = triple_term[sampling.draw(100_000, seed=1)]
    debiased = np.bincount(drawn, minlength=300)
    # term 0 held 250/300 of the triples; now about 1/51 of the draws
    assert uniform[0] / uniform.sum() > 0.8
    assert abs(debiased[0] / debiased.sum() - 1 / 51) < 0.01
    present = uniform > 0
    assert gini(debiased[present]) < gini(uniform[present]) / 3
    assert entropy_bits(debiased) > entropy_bits(uniform) + 2
    # same seed, same draw
    assert (sampling.draw(1000, seed=7) == sampling.draw(1000, seed=7)).all()


def test_a_protein_with_many_triples_is_not_favoured():
    triple_protein = np.array([0] * 10 + [1])
    sampling = plan(triple_protein, np.array([0, 1]))
    per_protein = np.bincount(triple_protein, weights=sampling.probability)
    assert np.allclose(per_protein, [0.5, 0.5])
