"""Which segmentation to score content with: the styles' lightness rule or the learned segmenter?

    python -m i2i_fast.metrics.compare_segmenters [--data synthetic:shapes-k5] [--resolution 64]
        [--n-inputs 24] [--out FILE.json]

For every ordered pair of the set's domains (source != target) and N test inputs of the source,
builds the outputs of stand-in translators and scores each with every segmenter (IoU against the
*input's* ground-truth mask, mean over all outputs):

- real: the input itself, segmented as its own domain (what every segmenter should get right);
- identity: the input untranslated (content intact, wrong domain);
- oracle: the input's scene re-rendered in the target style (content intact, right domain);
- oracle degraded like an imperfect generator: blurred (3x3 box, twice), noisy (sigma 0.1),
  washed out (contrast x0.7 around mid-grey), brighter / darker (+-0.2, i.e. +-0.1 luma);
- wrong scene: another scene in the target style (content lost);
- random: uniform noise (content lost).

Segmenters: "rule (target)": ``segment_shapes`` with the target style's rule (what an output in
the target domain should obey); "rule (classified)": the rule of the domain the classifier sees
in the output; "learned": ``ShapeSegmenter``. A good content score is high on the first rows
(whatever the domain and moderate degradation) and low on the last two.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys

import torch

from i2i_fast.data import segment_shapes

from .baselines import IdentityBaseline, OracleBaseline, RandomBaseline
from .classifier import domain_classifier
from .iou import mask_iou
from .real_images import load_images, open_domains
from .segmenter import shape_segmenter
from .training import box_blur

DEGRADATIONS = {
    "oracle": lambda y, g: y,
    "oracle, blurred": lambda y, g: box_blur(box_blur(y)),
    "oracle, noise 0.1": lambda y, g: y + 0.1 * torch.randn(y.shape, generator=g),
    "oracle, contrast x0.7": lambda y, g: y * 0.7,
    "oracle, brighter +0.2": lambda y, g: y + 0.2,
    "oracle, darker -0.2": lambda y, g: y - 0.2,
}


def compare(data: str, resolution: int, n_inputs: int, cache_dir=None, log=None) -> dict:
    """IoU per (stand-in, segmenter), averaged over all (source, target) pairs and inputs."""
    test = open_domains(data, "multi_domain", "test", resolution)
    styles = test.styles
    classifier = domain_classifier(styles, resolution, cache_dir=cache_dir, log=log).net
    segmenter = shape_segmenter(styles, resolution, cache_dir=cache_dir, log=log).net
    oracle = OracleBaseline(data, resolution, "multi_domain")
    wrong = OracleBaseline(data, resolution, "multi_domain", scene_offset=1)
    generator = torch.Generator().manual_seed(0)
    scores: dict[str, dict[str, list[torch.Tensor]]] = {}

    def score(row: str, y: torch.Tensor, truth: torch.Tensor, target: int) -> None:
        y = y.clamp(-1, 1)
        by_class = classifier.predict(y)
        found = {
            "rule (target)": segment_shapes(y, styles[target]),
            "rule (classified)": torch.stack(
                [segment_shapes(y[i], styles[int(c)]) for i, c in enumerate(by_class)]),
            "learned": segmenter.segment(y),
        }
        for name, mask in found.items():
            scores.setdefault(row, {}).setdefault(name, []).append(mask_iou(mask, truth))

    with torch.no_grad():
        for source in range(len(styles)):
            x, m = load_images(test.domains[source], range(n_inputs))
            score("real (own domain)", x, m, source)
            for target in range(len(styles)):
                if target == source:
                    continue
                score("identity", IdentityBaseline("multi_domain").translate(
                    x, target_domain=target)[:, 0], m, target)
                y = oracle.translate(x, target_domain=target, generator=generator)[:, 0]
                for row, degrade in DEGRADATIONS.items():
                    score(row, degrade(y, generator), m, target)
                score("wrong scene", wrong.translate(x, target_domain=target,
                                                     generator=generator)[:, 0], m, target)
                score("random", RandomBaseline("multi_domain").translate(
                    x, target_domain=target, generator=generator)[:, 0], m, target)
    return {
        "date": datetime.date.today().isoformat(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "data": data,
        "resolution": resolution,
        "n_inputs": n_inputs,
        "styles": list(styles),
        "iou": {row: {name: float(torch.cat(v).mean()) for name, v in per.items()}
                for row, per in scores.items()},
    }


def table(result: dict) -> str:
    names = list(next(iter(result["iou"].values())))
    lines = [f"content IoU vs the input's mask, {result['data']} at {result['resolution']}x"
             f"{result['resolution']}, {result['n_inputs']} inputs per source domain, all "
             f"(source, target) pairs",
             "| stand-in | " + " | ".join(names) + " |",
             "|---|" + "---|" * len(names)]
    for row, per in result["iou"].items():
        lines.append(f"| {row} | " + " | ".join(f"{per[n]:.3f}" for n in names) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m i2i_fast.metrics.compare_segmenters",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="synthetic:shapes-k5")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--n-inputs", type=int, default=24)
    parser.add_argument("--out", default=None, help="write the figures as JSON here")
    args = parser.parse_args(argv)
    result = compare(args.data, args.resolution, args.n_inputs)
    print(table(result))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
