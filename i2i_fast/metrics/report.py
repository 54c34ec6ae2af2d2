"""What an evaluation returns: one row per (mode, source -> target) task, the settings, the
sanity figures of the metric networks; as JSON and as a printed table."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TaskResult:
    """Figures of one task: inputs of domain `source` translated to `target` in `mode`.

    content_iou: mean (and std) over the N x K outputs of the IoU between the input's
        ground-truth shape mask and the shapes the segmenter finds in the output.
    target_accuracy: fraction of the N x K outputs the domain classifier assigns to `target`.
    diversity_l1 / diversity_lpips: mean over inputs of the mean distance over the K(K-1)/2
        pairs of its outputs (None when K < 2; LPIPS None when unavailable).
    fid: FID between the N x K outputs and real images of the target domain (None when
        unavailable).
    target_l1 / target_lpips: mode "encoded" (paired sets): mean over inputs of the distance
        between the output and the input's ground-truth target (pixel L1 of images in [-1, 1];
        LPIPS None when unavailable); None in the other modes.
    """

    mode: str
    source: str
    target: str
    direction: str | None
    n_inputs: int
    n_styles: int
    content_iou: float
    content_iou_std: float
    target_accuracy: float
    diversity_l1: float | None
    diversity_lpips: float | None
    fid: float | None
    pairs_per_input: int
    seconds: float
    target_l1: float | None = None
    target_lpips: float | None = None

    @property
    def name(self) -> str:
        arrow = f"{self.source}->{self.target}"
        return f"{arrow} ({self.direction})" if self.direction else arrow


METRICS = ("content_iou", "target_accuracy", "diversity_l1", "diversity_lpips", "fid",
           "target_l1", "target_lpips")


@dataclass
class EvalReport:
    """Everything an evaluation measured, with what is needed to reproduce it."""

    method: str
    data: str
    styles: list[str]
    resolution: int
    n_inputs: int
    n_styles: int
    seed: int
    data_seed: int
    modes: list[str]
    lpips: str
    fid: str
    sanity: dict[str, Any]
    tasks: list[TaskResult]
    # methods that cluster images (TUNIT): accuracy after the best matching of clusters to
    # domains, NMI, the matching and the cluster sizes on the test images (None otherwise)
    clustering: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> dict[str, dict[str, float | None]]:
        """Per mode, the mean of each metric over its tasks (None where a task has none)."""
        out: dict[str, dict[str, float | None]] = {}
        for mode in self.modes:
            rows = [t for t in self.tasks if t.mode == mode]
            means: dict[str, float | None] = {}
            for metric in METRICS:
                values = [getattr(t, metric) for t in rows]
                means[metric] = (None if not values or any(v is None for v in values)
                                 else sum(values) / len(values))
            out[mode] = means
        return out

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["summary"] = self.summary()
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    def table(self) -> str:
        """A plain-text table of the tasks, the per-mode means, the settings and sanity lines."""
        head = ["mode", "task", "N", "K", "content IoU", "target acc", "div L1", "div LPIPS", "FID"]
        # the distances to ground-truth targets (mode "encoded") only where some task has them
        to_target = any(t.target_l1 is not None for t in self.tasks)
        if to_target:
            head += ["L1 to target", "LPIPS to target"]
        rows = []
        for t in self.tasks:
            rows.append([t.mode, t.name, str(t.n_inputs), str(t.n_styles),
                         f"{t.content_iou:.3f} ± {t.content_iou_std:.3f}",
                         _fmt(t.target_accuracy), _fmt(t.diversity_l1), _fmt(t.diversity_lpips),
                         _fmt(t.fid, 2)]
                        + ([_fmt(t.target_l1), _fmt(t.target_lpips)] if to_target else []))
        summary = self.summary()
        if len(self.tasks) > len(self.modes):
            for mode, means in summary.items():
                n = sum(t.mode == mode for t in self.tasks)
                rows.append([mode, f"mean of {n} tasks", "", "", _fmt(means["content_iou"]),
                             _fmt(means["target_accuracy"]), _fmt(means["diversity_l1"]),
                             _fmt(means["diversity_lpips"]), _fmt(means["fid"], 2)]
                            + ([_fmt(means["target_l1"]), _fmt(means["target_lpips"])]
                               if to_target else []))
        widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
        lines = [
            f"evaluation of {self.method} on {self.data} ({', '.join(self.styles)}) at "
            f"{self.resolution}x{self.resolution}: N = {self.n_inputs} test inputs per source, "
            f"K = {self.n_styles} outputs each, seed {self.seed}",
            "  ".join(h.ljust(w) for h, w in zip(head, widths)),
            "  ".join("-" * w for w in widths),
        ]
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
        s = self.sanity
        lines.append(
            f"sanity (real held-out images): domain classifier accuracy "
            f"{s['classifier_val_accuracy']:.3f}; segmenter IoU {s['segmenter_val_iou']:.3f} "
            f"(lightness rule {s['rule_val_iou']:.3f})"
        )
        if self.clustering is not None:
            c = self.clustering
            lines.append(f"clustering of the {c['images']} test images: accuracy "
                         f"{c['accuracy']:.3f} (best one-to-one matching of clusters to domains: "
                         f"{c['matching']}), NMI {c['nmi']:.3f}; cluster sizes "
                         f"{c['cluster_sizes']}")
        lines.append(f"LPIPS: {self.lpips}")
        lines.append(f"FID: {self.fid}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _fmt(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"
