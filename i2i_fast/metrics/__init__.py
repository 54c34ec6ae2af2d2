"""Evaluation on the synthetic sets with ground truth (``i2i-fast eval``).

``evaluate(method, "synthetic:NAME", ...)`` (``engine``) translates test inputs and reports, per
direction / (source, target) pair and mode:

- content preservation (``segmenter``, ``iou``): IoU between the input's ground-truth shape mask
  and the shapes a small learned segmenter finds in each output;
- target-domain accuracy (``classifier``): the share of outputs a small CNN, trained on real
  images of the set's domains, assigns to the target domain;
- diversity (``diversity``): mean pairwise pixel L1 over the K(K-1)/2 pairs of each input's
  outputs, and LPIPS (``lpips_distance``, the real ``lpips`` package) when backbone weights
  are supplied as a local file;
- FID (``fid``): a hook on torchvision InceptionV3 pool features, with user-supplied weights.

The metric networks are trained on real renders and cached on disk (``cache``); their accuracy /
IoU on real held-out images is printed with every report. ``baselines`` holds stand-in
translators (identity, oracle, random) that bracket each figure.
"""

from .baselines import IdentityBaseline, OracleBaseline, RandomBaseline
from .classifier import ClassifierSettings, DomainClassifier, domain_classifier
from .diversity import l1_distance, pairwise_mean
from .engine import evaluate
from .fid import FIDUnavailable, InceptionFeatures, fid_from_features, frechet_distance
from .iou import mask_iou
from .lpips_distance import LPIPSDistance, LPIPSUnavailable, lpips_or_reason
from .report import EvalReport, TaskResult
from .segmenter import SegmenterSettings, ShapeSegmenter, shape_segmenter

__all__ = [
    "ClassifierSettings", "DomainClassifier", "EvalReport", "FIDUnavailable", "IdentityBaseline",
    "InceptionFeatures", "LPIPSDistance", "LPIPSUnavailable", "OracleBaseline", "RandomBaseline",
    "SegmenterSettings", "ShapeSegmenter", "TaskResult", "domain_classifier", "evaluate",
    "fid_from_features", "frechet_distance", "l1_distance", "lpips_or_reason", "mask_iou",
    "pairwise_mean", "shape_segmenter",
]
