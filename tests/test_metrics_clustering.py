"""Cluster accuracy (best one-to-one matching) and NMI (the evaluation of a method trained without
labels is tested in tests/test_metrics_eval.py, which trains the metric networks it needs)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from i2i_fast.metrics.clustering import (
    cluster_accuracy,
    cluster_matching,
    max_weight_matching,
    normalized_mutual_information,
)


def best_matching_by_brute_force(table: np.ndarray) -> int:
    rows, cols = table.shape
    if rows <= cols:
        return max(sum(table[r, c] for r, c in zip(range(rows), p))
                   for p in itertools.permutations(range(cols), rows))
    return best_matching_by_brute_force(table.T)


def test_matching_is_the_best_one_to_one_matching():
    rng = np.random.default_rng(0)
    for shape in [(3, 3), (4, 2), (2, 5), (5, 5), (1, 1)]:
        for _ in range(20):
            table = rng.integers(0, 50, shape)
            pairs = max_weight_matching(table)
            assert len(pairs) == min(shape)
            assert len({r for r, _ in pairs}) == len({c for _, c in pairs}) == len(pairs)
            assert sum(table[r, c] for r, c in pairs) == best_matching_by_brute_force(table)


def test_cluster_accuracy_and_matching():
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    assert cluster_accuracy((labels + 1) % 3, labels) == 1.0  # renamed clusters
    assert cluster_matching((labels + 1) % 3, labels) == {0: 1, 1: 2, 2: 0}
    assert cluster_accuracy(np.zeros(8, np.int64), labels) == 3 / 8
    # more clusters than labels: the unmatched cluster's images are wrong
    assert cluster_accuracy([0, 0, 1, 2], [0, 0, 1, 1]) == 3 / 4
    with pytest.raises(ValueError, match="clusters"):
        cluster_accuracy([0.5, 1.0], [0, 1])
    with pytest.raises(ValueError, match="as many"):
        cluster_accuracy([0, 1, 1], [0, 1])


def test_normalized_mutual_information():
    labels = np.array([0, 0, 1, 1, 2, 2])
    assert normalized_mutual_information((labels + 2) % 3, labels) == pytest.approx(1.0)
    assert normalized_mutual_information(np.zeros(6, np.int64), labels) == 0.0
    # I / sqrt(H(K) H(C)) written out for clusters [0, 0, 0, 1, 1, 1] against three labels
    clusters = np.array([0, 0, 0, 1, 1, 1])
    h_c, h_k = math.log(3), math.log(2)
    # labels 0 and 2 fall in one cluster each, label 1 is split between both
    joint = np.array([[2, 1, 0], [0, 1, 2]]) / 6
    mi = sum(joint[k, c] * math.log(joint[k, c] / (joint[k].sum() * joint[:, c].sum()))
             for k in range(2) for c in range(3) if joint[k, c] > 0)
    assert normalized_mutual_information(clusters, labels) == pytest.approx(
        mi / math.sqrt(h_k * h_c), rel=1e-12)
