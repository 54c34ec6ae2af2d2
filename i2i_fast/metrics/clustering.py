"""How well clusters found without labels recover the true domains: accuracy after the best
one-to-one matching of clusters to domains (the Hungarian algorithm, as IIC and TUNIT evaluate),
and normalised mutual information.

Both take integer arrays of predicted clusters and true labels of the same images. The number of
clusters K may differ from the number of domains C: the matching pairs at most min(K, C) of them
and an image of an unmatched cluster counts as wrong.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def _labels(name: str, values: Sequence[int] | np.ndarray) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer) or (array < 0).any():
        raise ValueError(f"clustering: {name}: expected a 1-d array of integers >= 0, got "
                         f"{array.dtype} of shape {array.shape}")
    return array.astype(np.int64)


def contingency(clusters: Sequence[int], labels: Sequence[int]) -> np.ndarray:
    """(K, C) counts of images of cluster k and label c."""
    clusters, labels = _labels("clusters", clusters), _labels("labels", labels)
    if clusters.shape != labels.shape or clusters.size == 0:
        raise ValueError(f"clustering: expected as many clusters as labels (at least one), got "
                         f"{clusters.size} and {labels.size}")
    table = np.zeros((int(clusters.max()) + 1, int(labels.max()) + 1), dtype=np.int64)
    np.add.at(table, (clusters, labels), 1)
    return table


def max_weight_matching(weights: np.ndarray) -> list[tuple[int, int]]:
    """The one-to-one pairs (row, column) of a (R, C) weight matrix with the largest total
    weight, min(R, C) pairs: the Hungarian algorithm (shortest augmenting paths with
    potentials, O(n³)) on the square cost matrix max(weights) - weights padded with zeros."""
    weights = np.asarray(weights, dtype=np.float64)
    rows, cols = weights.shape
    n = max(rows, cols)
    cost = np.zeros((n, n))
    cost[:rows, :cols] = weights.max(initial=0.0) - weights
    u, v = np.zeros(n + 1), np.zeros(n + 1)
    match = np.zeros(n + 1, dtype=np.int64)  # match[column] = row (1-based; 0 = none)
    way = np.zeros(n + 1, dtype=np.int64)
    for row in range(1, n + 1):
        match[0] = row
        col0 = 0
        minv = np.full(n + 1, np.inf)
        used = np.zeros(n + 1, dtype=bool)
        while True:
            used[col0] = True
            row0 = match[col0]
            delta, col1 = np.inf, 0
            for col in range(1, n + 1):
                if not used[col]:
                    reduced = cost[row0 - 1, col - 1] - u[row0] - v[col]
                    if reduced < minv[col]:
                        minv[col], way[col] = reduced, col0
                    if minv[col] < delta:
                        delta, col1 = minv[col], col
            for col in range(n + 1):
                if used[col]:
                    u[match[col]] += delta
                    v[col] -= delta
                else:
                    minv[col] -= delta
            col0 = col1
            if match[col0] == 0:
                break
        while col0:
            col1 = way[col0]
            match[col0] = match[col1]
            col0 = col1
    pairs = [(int(match[col]) - 1, col - 1) for col in range(1, n + 1)]
    return sorted((r, c) for r, c in pairs if r < rows and c < cols)


def cluster_accuracy(clusters: Sequence[int], labels: Sequence[int]) -> float:
    """The fraction of images whose cluster is matched to their label, under the one-to-one
    matching of clusters to labels that maximises it."""
    table = contingency(clusters, labels)
    matched = sum(int(table[k, c]) for k, c in max_weight_matching(table))
    return matched / int(table.sum())


def cluster_matching(clusters: Sequence[int], labels: Sequence[int]) -> dict[int, int]:
    """{label: cluster} of the best one-to-one matching (labels left unmatched when there are
    fewer clusters)."""
    return {c: k for k, c in max_weight_matching(contingency(clusters, labels))}


def normalized_mutual_information(clusters: Sequence[int], labels: Sequence[int]) -> float:
    """I(clusters; labels) / sqrt(H(clusters) H(labels)) (natural logs; the geometric mean, as
    IIC's evaluation and scikit-learn's average_method="geometric"); 1 when both are a single
    group, 0 when only one of them is."""
    table = contingency(clusters, labels).astype(np.float64)
    joint = table / table.sum()
    p_k, p_c = joint.sum(1), joint.sum(0)
    nonzero = joint > 0
    mi = float((joint[nonzero] * np.log(joint[nonzero] / np.outer(p_k, p_c)[nonzero])).sum())
    h_k = -float((p_k[p_k > 0] * np.log(p_k[p_k > 0])).sum())
    h_c = -float((p_c[p_c > 0] * np.log(p_c[p_c > 0])).sum())
    if h_k == 0 and h_c == 0:
        return 1.0
    if h_k == 0 or h_c == 0:
        return 0.0
    return max(0.0, mi / math.sqrt(h_k * h_c))
