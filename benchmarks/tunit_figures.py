"""The README's TUNIT translation grid from a trained checkpoint: held-out images of
synthetic:shapes-k3 (rows, `--inputs` per domain) translated by reference images (columns, one
per domain; the first row shows the references). Each image is labelled with its true domain and
the cluster C assigns it to (C never saw the labels).

    i2i-fast train tunit --data synthetic:shapes-k3 --config demo --run-dir runs/tunit_demo
    python benchmarks/tunit_figures.py runs/tunit_demo/checkpoints/step_000001200.pt \
        --out benchmarks/results/tunit-demo-grid.png
"""

from __future__ import annotations

import argparse

import torch

from i2i_fast.metrics import real_images
from i2i_fast.train.images import grid, save_png
from i2i_fast.train.translate import load_method

DATA = "synthetic:shapes-k3"


def reference_grid(method, inputs: int, reference_index: int):
    """Rows: `inputs` test images per domain (indices 0..inputs-1); columns: the input, then its
    translation by each domain's test image `reference_index`."""
    test = real_images.open_domains(DATA, method.data_kind, "test", method.config.image_size, 0)
    x = torch.cat([real_images.load_images(d, range(inputs))[0] for d in test.domains])
    refs = torch.cat([real_images.load_images(d, [reference_index])[0] for d in test.domains])
    names = [name for name in test.styles for _ in range(inputs)]
    x_clusters, ref_clusters = method.cluster(x).tolist(), method.cluster(refs).tolist()
    columns = ["input"] + [f"ref {name} (c{c})" for name, c in zip(test.styles, ref_clusters)]
    rows = [[None, *refs]]
    labels = ["references"]
    for i in range(x.shape[0]):
        out = method.translate(x[i:i + 1].expand(refs.shape[0], -1, -1, -1), reference=refs)
        rows.append([x[i], *out[:, 0].clamp(-1, 1)])
        labels.append(f"{names[i]} (c{x_clusters[i]})")
    return grid(rows, column_labels=columns, row_labels=labels)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoint")
    p.add_argument("--out", default="tunit_grid.png")
    p.add_argument("--inputs", type=int, default=2, help="rows per domain")
    p.add_argument("--reference-index", type=int, default=10,
                   help="which test image of each domain is the reference")
    args = p.parse_args()
    torch.manual_seed(0)
    method = load_method(args.checkpoint)
    with torch.no_grad():
        pixels = reference_grid(method, args.inputs, args.reference_index)
    print(save_png(pixels, args.out))


if __name__ == "__main__":
    main()
