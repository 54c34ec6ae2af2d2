"""The evaluation engine: translate test inputs of a synthetic set and measure the outputs.

``evaluate(method, "synthetic:NAME", ...)`` takes anything that follows the evaluation part of
the method contract (``data_kind`` and ``translate``, see ``i2i_fast.methods.base``):

- two-domain methods (``data_kind`` "unpaired" or "paired"): the first N images of the test
  split of A are translated to B, K random styles each (``translate(x, n_styles=K,
  target_domain="b", generator=g)``), and those of B to A (``target_domain="a"``), the two
  domains' names in the method contract. Paired methods are evaluated A -> B only.
- multi-domain methods: every (source, target != source) pair of the set's domains, N test
  inputs of the source, K outputs per input and target (``target_domain`` = the target's label).
- mode "latent": K random styles from one call with ``n_styles=K``; mode "reference": K calls
  with ``reference`` (N, 3, H, W), one reference image per input (output (N, 1, 3, H, W) each),
  references drawn at random from the target domain's test split; mode "encoded" (paired sets
  only): one call with ``reference`` = each input's own ground-truth target (BicycleGAN's
  "encoded" output), one output per input. Default modes: "latent" for every method, plus
  "reference" for multi-domain methods and for unpaired two-domain methods that declare
  ``reference_guided`` (MUNIT: the style of a target-domain image), "encoded" for paired methods
  that declare it.
- methods trained without labels (``data_kind`` "unlabelled", TUNIT): their domains are clusters,
  not the set's domains, so they are evaluated by reference only (``target_domain`` None: the
  reference gives the style), on every (source, target) pair of the set's domains. A method
  with a ``cluster(x) -> (N,) cluster indices`` method also gets its clusters scored against the
  true domains of the test images (``clustering``: accuracy after the best one-to-one matching
  of clusters to domains, and NMI).

Per task: content IoU (input's ground-truth mask vs the shapes the learned segmenter finds in each
output), target-domain accuracy (the domain classifier), diversity (mean over the K(K-1)/2 pairs
per input of pixel L1, and of LPIPS when backbone weights are given), FID when Inception weights
are given (outputs vs as many real images of the target domain from the train split); mode
"encoded" also: L1 and (with backbone weights) LPIPS between each output and its ground-truth
target.
Outputs are clamped to [-1, 1] (as when saved as images) and must be finite.

Deterministic by seed: every task draws its styles from a ``torch.Generator`` seeded from
(seed, mode, source, target), and its references from a numpy generator seeded likewise, so a
task's figures do not depend on which other tasks ran. The metric networks are trained once per
(set, resolution) and cached on disk (see ``classifier``, ``segmenter``).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from i2i_fast.data import seeding

from . import real_images
from .classifier import ClassifierSettings, TrainedClassifier, domain_classifier
from .clustering import cluster_accuracy, cluster_matching, normalized_mutual_information
from .diversity import l1_distance, pairs, pairwise_mean
from .fid import InceptionFeatures, fid_from_features
from .iou import mask_iou
from .lpips_distance import LPIPSDistance
from .report import EvalReport, TaskResult
from .segmenter import SegmenterSettings, TrainedSegmenter, shape_segmenter

MODES = ("latent", "reference", "encoded")
DIRECTIONS = ("a2b", "b2a")


class EvaluationError(ValueError):
    """A bad argument of ``evaluate``, or a method output that breaks the contract (shape, NaN);
    the message names what was expected and what came."""


def _int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"evaluate: {name}: expected an int, got {type(value).__name__}")
    if value < minimum:
        raise EvaluationError(f"evaluate: {name}: expected an int >= {minimum}, got {value}")
    return value


def _method_device(method: Any) -> torch.device:
    if isinstance(method, torch.nn.Module):
        for p in method.parameters():
            return p.device
    return torch.device("cpu")


@contextlib.contextmanager
def _inference(method: Any) -> Iterator[None]:
    evaluating = getattr(method, "evaluating", None)
    if callable(evaluating):
        with evaluating():
            yield
        return
    was_training = getattr(method, "training", None)
    if isinstance(method, torch.nn.Module):
        method.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        if isinstance(method, torch.nn.Module) and was_training:
            method.train(True)


def _task_seed(*keys: int | str) -> int:
    return int(seeding.rng(*keys).integers(0, 2**62))


class _Task:
    """One (mode, source, target) task of the evaluation."""

    def __init__(self, mode: str, source: int, target: int, direction: str | None):
        self.mode, self.source, self.target, self.direction = mode, source, target, direction


def _tasks(data_kind: str, n_domains: int, modes: Sequence[str],
           directions: Sequence[str]) -> list[_Task]:
    out = []
    for mode in modes:
        if data_kind == "multi_domain":
            out += [_Task(mode, s, t, None) for s in range(n_domains) for t in range(n_domains)
                    if s != t]
        else:
            out += [_Task(mode, 0 if d == "a2b" else 1, 1 if d == "a2b" else 0, d)
                    for d in directions]
    return out


def _check_outputs(y: object, n: int, k: int, resolution: int, what: str) -> torch.Tensor:
    expected = (n, k, 3, resolution, resolution)
    if not isinstance(y, torch.Tensor) or tuple(y.shape) != expected:
        got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise EvaluationError(f"evaluate: method.translate ({what}): expected an output of "
                              f"shape {expected}, got {got}")
    if not torch.isfinite(y).all():
        raise EvaluationError(f"evaluate: method.translate ({what}): the output has NaN or Inf "
                              f"values")
    return y.float().clamp(-1.0, 1.0)


def evaluate(
    method: Any,
    data: str,
    *,
    resolution: int | None = None,
    n_inputs: int = 50,
    n_styles: int = 10,
    seed: int = 0,
    modes: Sequence[str] | None = None,
    directions: Sequence[str] | None = None,
    lpips: LPIPSDistance | None = None,
    lpips_status: str | None = None,
    fid: InceptionFeatures | None = None,
    fid_status: str | None = None,
    fid_real_images: int | None = None,
    device: torch.device | str | None = None,
    batch_size: int = 8,
    data_seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    classifier_settings: ClassifierSettings | None = None,
    segmenter_settings: SegmenterSettings | None = None,
    log: Callable[[str], None] | None = None,
) -> EvalReport:
    """Evaluate a translator on a synthetic set (see the module doc).

    Args:
        method: a ``Method`` (or any object with ``data_kind`` and ``translate``).
        data: "synthetic:<name>" (the set the method was trained on, or one with its domains).
        resolution: image side; default ``method.config.image_size``.
        n_inputs: N test inputs per source domain (at most the test split's 500).
        n_styles: K outputs per input (and target); diversity needs K >= 2.
        seed: seed of the styles and references.
        modes: "latent" and/or "reference" (default: see the module doc).
        directions: two-domain methods: "a2b" and/or "b2a" (default: both; paired: "a2b").
        lpips: an ``LPIPSDistance`` for LPIPS diversity, or None (then ``lpips_status`` says
            why it is missing in the report).
        fid: ``InceptionFeatures`` for FID, or None (``fid_status`` says why).
        fid_real_images: real target images for FID (default N x K), from the train split.
        device: where the method and metric networks run (default: the method's device).
        batch_size: inputs translated per call.
        data_seed: seed of the synthetic set (its scenes); 0 is the default of training.
        cache_dir: where the trained metric networks are cached (default ~/.cache/i2i_fast/metrics).
        classifier_settings, segmenter_settings: how the metric networks are trained.
        log: progress messages (default: printed to stderr).
    Returns:
        An ``EvalReport`` (``to_json()``, ``table()``).
    """
    start_time = time.perf_counter()
    log = log or (lambda msg: print(msg, file=sys.stderr))
    if not callable(getattr(method, "translate", None)):
        raise TypeError(f"evaluate: method: expected an object with a translate() method, got "
                        f"{type(method).__name__}")
    data_kind = getattr(method, "data_kind", None)
    try:
        real_images.check_synthetic_spec(data)
    except ValueError as error:
        raise EvaluationError(str(error)) from None
    if resolution is None:
        resolution = getattr(getattr(method, "config", None), "image_size", None)
        if resolution is None:
            raise EvaluationError("evaluate: resolution: not given and the method's config has no "
                                  "image_size; pass resolution=")
    resolution = _int("resolution", resolution, 8)
    n_inputs = _int("n_inputs", n_inputs, 1)
    n_styles = _int("n_styles", n_styles, 1)
    seed = _int("seed", seed, 0)
    batch_size = _int("batch_size", batch_size, 1)
    data_seed = _int("data_seed", data_seed, 0)
    try:
        test = real_images.open_domains(data, data_kind, "test", resolution, data_seed)
    except ValueError as error:  # unknown set, set and method kind that do not fit
        raise EvaluationError(f"evaluate: data {data!r} for a {data_kind!r} method: "
                              f"{error}") from None
    # how the tasks are laid out: "multi_domain_reference" (StarGAN v2's training items) is a
    # multi-domain method to evaluate, so is "unlabelled" (TUNIT), by reference only
    unlabelled = data_kind == "unlabelled"
    data_kind = real_images.KIND_OF_METHOD[data_kind]
    n_available = min(len(d) for d in test.domains)
    if n_inputs > n_available:
        raise EvaluationError(f"evaluate: n_inputs: expected at most {n_available} (the test "
                              f"split's images per domain), got {n_inputs}")
    notes: list[str] = []
    if unlabelled:
        if modes is not None and "latent" in modes:
            raise EvaluationError("evaluate: modes: a method trained without labels translates to "
                                  "its clusters, not to the set's domains: expected 'reference' "
                                  "only, got 'latent'")
        modes = ["reference"]
    modes = _modes(data_kind, modes, bool(getattr(method, "reference_guided", False)))
    directions = _directions(data_kind, directions)
    if n_styles < 2:
        notes.append("K = 1: diversity needs at least 2 outputs per input")
    configured = getattr(getattr(method, "config", None), "image_size", None)
    if configured is not None and configured != resolution:
        notes.append(f"evaluated at {resolution}x{resolution}; the method's config says "
                     f"image_size {configured}")
    device = torch.device(device) if device is not None else _method_device(method)

    classifier = domain_classifier(test.styles, resolution, settings=classifier_settings,
                                   cache_dir=cache_dir, log=log).to(device)
    segmenter = shape_segmenter(test.styles, resolution, settings=segmenter_settings,
                                cache_dir=cache_dir, log=log).to(device)
    sanity = _sanity(classifier, segmenter)

    run = _Runner(method, test, classifier, segmenter, lpips, fid, device, n_inputs, n_styles,
                  seed, batch_size, fid_real_images, data_seed, log, unlabelled)
    results = [run.task(task) for task in _tasks(data_kind, len(test.styles), modes, directions)]
    clustering = (clustering_scores(method, test, device, batch_size, log)
                  if callable(getattr(method, "cluster", None)) else None)
    return EvalReport(
        method=str(getattr(method, "name", type(method).__name__)),
        data=data,
        styles=list(test.styles),
        resolution=resolution,
        n_inputs=n_inputs,
        n_styles=n_styles,
        seed=seed,
        data_seed=data_seed,
        modes=modes,
        lpips=(lpips.description if lpips is not None
               else lpips_status or "unavailable: no LPIPS distance given"),
        fid=(fid.description if fid is not None
             else fid_status or "unavailable: no Inception weights given"),
        sanity=sanity,
        tasks=results,
        clustering=clustering,
        notes=notes,
        versions=_versions(),
        seconds=time.perf_counter() - start_time,
    )


def clustering_scores(method: Any, test: real_images.SetDomains, device: torch.device,
                      batch_size: int = 64, log: Callable[[str], None] | None = None
                      ) -> dict[str, Any]:
    """``method.cluster`` on every image of the test split, scored against the true domains:
    accuracy after the best one-to-one matching of clusters to domains (Hungarian), NMI, the
    matching ({domain name: cluster}) and the cluster sizes."""
    if log is not None:
        log("i2i_fast.metrics: clustering the test images")
    clusters, labels = [], []
    for label, domain in enumerate(test.domains):
        for start in range(0, len(domain), batch_size):
            x, _ = real_images.load_images(domain, range(start, min(start + batch_size,
                                                                     len(domain))))
            with _inference(method):
                found = method.cluster(x.to(device))
            clusters.append(torch.as_tensor(found).reshape(-1).cpu())
            labels.append(torch.full((x.shape[0],), label, dtype=torch.int64))
    found, truth = torch.cat(clusters).numpy(), torch.cat(labels).numpy()
    matching = cluster_matching(found, truth)
    return {
        "accuracy": cluster_accuracy(found, truth),
        "nmi": normalized_mutual_information(found, truth),
        "images": int(truth.size),
        "matching": {test.styles[c]: k for c, k in sorted(matching.items())},
        "cluster_sizes": {int(k): int((found == k).sum()) for k in sorted(set(found.tolist()))},
    }


def _modes(data_kind: str, modes: Sequence[str] | None, reference_guided: bool
           ) -> list[str]:
    if modes is None:
        if data_kind == "multi_domain" or (data_kind == "unpaired" and reference_guided):
            return ["latent", "reference"]
        return ["latent", "encoded"] if data_kind == "paired" and reference_guided else ["latent"]
    modes = list(modes)
    if not modes or any(m not in MODES for m in modes) or len(set(modes)) != len(modes):
        raise EvaluationError(f"evaluate: modes: expected distinct values among {MODES}, "
                              f"got {modes}")
    if "encoded" in modes and data_kind != "paired":
        raise EvaluationError(f"evaluate: modes: 'encoded' needs ground-truth pairs (a paired "
                              f"method and set), got a {data_kind!r} method")
    return modes


def _directions(data_kind: str, directions: Sequence[str] | None) -> list[str]:
    """The directions of a two-domain method ([] for a multi-domain one)."""
    if data_kind == "multi_domain":
        if directions is not None:
            raise EvaluationError("evaluate: directions: only for two-domain methods; a "
                                  "multi-domain method is evaluated on every (source, target) pair")
        return []
    if directions is None:
        return ["a2b", "b2a"] if data_kind == "unpaired" else ["a2b"]
    directions = list(directions)
    bad = [d for d in directions if d not in DIRECTIONS]
    if bad or not directions or len(set(directions)) != len(directions):
        raise EvaluationError(f"evaluate: directions: expected distinct values among "
                              f"{DIRECTIONS}, got {directions}")
    if "b2a" in directions and data_kind == "paired":
        raise EvaluationError("evaluate: directions: a paired method is evaluated A -> B only")
    return directions


def _sanity(classifier: TrainedClassifier, segmenter: TrainedSegmenter) -> dict[str, Any]:
    return {
        "classifier_val_accuracy": classifier.info["val_accuracy"],
        "classifier_val_accuracy_per_domain": classifier.info["val_accuracy_per_domain"],
        "classifier_val_images": classifier.info["val_images"],
        "segmenter_val_iou": segmenter.info["val_iou"],
        "segmenter_val_iou_per_domain": segmenter.info["val_iou_per_domain"],
        "rule_val_iou": segmenter.info["rule_val_iou"],
        "segmenter_val_images": segmenter.info["val_images"],
        "classifier_cache": str(classifier.path),
        "segmenter_cache": str(segmenter.path),
    }


def _versions() -> dict[str, str]:
    import platform

    from i2i_fast import __version__

    return {"i2i_fast": __version__, "torch": torch.__version__,
            "python": platform.python_version()}


class _Runner:
    """Runs the tasks of one evaluation (inputs cached per source domain)."""

    def __init__(self, method, test, classifier, segmenter, lpips, fid, device, n_inputs,
                 n_styles, seed, batch_size, fid_real_images, data_seed, log, unlabelled=False):
        self.method, self.test = method, test
        self.unlabelled = unlabelled  # the method's domains are clusters: no target_domain
        self.classifier, self.segmenter = classifier.net, segmenter.net
        self.lpips, self.fid = lpips, fid
        self.device, self.n, self.k, self.seed = device, n_inputs, n_styles, seed
        self.batch_size = batch_size
        self.fid_real_images = fid_real_images or n_inputs * n_styles
        self.data_seed, self.log = data_seed, log
        self._inputs: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._real_features: dict[int, torch.Tensor] = {}

    def inputs(self, label: int) -> tuple[torch.Tensor, torch.Tensor]:
        if label not in self._inputs:
            self._inputs[label] = real_images.load_images(self.test.domains[label], range(self.n))
        return self._inputs[label]

    def translate(self, x: torch.Tensor, task: _Task, generator: torch.Generator,
                  n_styles: int, reference: torch.Tensor | None) -> torch.Tensor:
        # Two-domain methods name their domains "a" and "b"; multi-domain ones take the label.
        target_domain = (None if self.unlabelled
                         else task.target if task.direction is None
                         else "b" if task.direction == "a2b" else "a")
        kwargs: dict[str, Any] = {"n_styles": n_styles, "reference": reference,
                                  "target_domain": target_domain, "generator": generator}
        with _inference(self.method):
            return self.method.translate(x, **kwargs)

    def task(self, task: _Task) -> TaskResult:
        styles = self.test.styles
        name = f"{styles[task.source]} -> {styles[task.target]}"
        self.log(f"i2i_fast.metrics: {task.mode}: {name}")
        begin = time.perf_counter()
        keys = (self.seed, "eval", task.mode, task.source, task.target)
        generator = torch.Generator(device=self.device).manual_seed(_task_seed(*keys))
        target_domain = self.test.domains[task.target]
        ref_index = seeding.rng(*keys, "references").integers(0, len(target_domain),
                                                              size=(self.n, self.k))
        images, masks = self.inputs(task.source)
        k = 1 if task.mode == "encoded" else self.k
        ious, hits, l1, lp, features, target_l1, target_lp = [], [], [], [], [], [], []
        for begin_i in range(0, self.n, self.batch_size):
            end_i = min(begin_i + self.batch_size, self.n)
            x = images[begin_i:end_i].to(self.device)
            n = end_i - begin_i
            if task.mode == "latent":
                y = _check_outputs(self.translate(x, task, generator, self.k, None),
                                   n, self.k, self.test.resolution, f"{task.mode}, {name}")
            elif task.mode == "encoded":
                truth = real_images.load_targets(self.test, range(begin_i, end_i)).to(self.device)
                y = _check_outputs(self.translate(x, task, generator, 1, truth), n, 1,
                                   self.test.resolution, f"{task.mode}, {name}")
                target_l1.append(l1_distance(y[:, 0], truth).cpu())
                if self.lpips is not None:
                    target_lp.append(self.lpips(y[:, 0], truth).float().cpu())
            else:
                columns = []
                for j in range(self.k):
                    refs, _ = real_images.load_images(target_domain, ref_index[begin_i:end_i, j])
                    out = self.translate(x, task, generator, 1, refs.to(self.device))
                    columns.append(_check_outputs(out, n, 1, self.test.resolution,
                                                  f"{task.mode}, {name}, reference per input"))
                y = torch.cat(columns, dim=1)
            flat = y.flatten(0, 1)
            with torch.no_grad():
                found = self.segmenter.segment(flat)
                truth_masks = masks[begin_i:end_i].to(self.device).repeat_interleave(k, dim=0)
                ious.append(mask_iou(found, truth_masks).cpu())
                hits.append((self.classifier.predict(flat) == task.target).float().cpu())
            if k >= 2:
                l1.append(pairwise_mean(y, l1_distance))
                if self.lpips is not None:
                    lp.append(pairwise_mean(y, self.lpips))
            if self.fid is not None:
                features.append(self.fid(flat))
        iou = torch.cat(ious)
        fid_value = None
        if self.fid is not None:
            fid_value = fid_from_features(torch.cat(features), self.real_features(task.target))
        return TaskResult(
            mode=task.mode,
            source=styles[task.source],
            target=styles[task.target],
            direction=task.direction,
            n_inputs=self.n,
            n_styles=k,
            content_iou=float(iou.mean()),
            content_iou_std=float(iou.std()) if iou.numel() > 1 else 0.0,
            target_accuracy=float(torch.cat(hits).mean()),
            diversity_l1=float(torch.cat(l1).mean()) if l1 else None,
            diversity_lpips=float(torch.cat(lp).mean()) if lp else None,
            fid=fid_value,
            pairs_per_input=len(pairs(k)) if k >= 2 else 0,
            seconds=time.perf_counter() - begin,
            target_l1=float(torch.cat(target_l1).mean()) if target_l1 else None,
            target_lpips=float(torch.cat(target_lp).mean()) if target_lp else None,
        )

    def real_features(self, label: int) -> torch.Tensor:
        """Inception features of real images of domain `label` (train split)."""
        if label not in self._real_features:
            domain = real_images.domain_at(self.test.styles, "train", self.test.resolution,
                                           self.data_seed, label)
            count = min(self.fid_real_images, len(domain))
            chunks = []
            for start in range(0, count, 32):
                x, _ = real_images.load_images(domain, range(start, min(start + 32, count)))
                chunks.append(self.fid(x))
            self._real_features[label] = torch.cat(chunks)
        return self._real_features[label]

