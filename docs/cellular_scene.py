"""Draw docs/cellular_scene.png: a cellular scene's projection, slices and labels.

faket phantom --builtin ribosome:3 --builtin globule:6 --builtin ring:4 \
        --box 96 256 256 --voxel-size 10 --slab 80 --membranes ellipsoid:1 \
        --membranes sheet:1 --membrane-proteins barrel:6 --filaments actin:4 \
        --filaments microtubule:1 --volume-fraction 0.1 --seed 3 -o cell/
python docs/cellular_scene.py cell/ docs/cellular_scene.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap

from faket.io import read_mrc


def main(folder: Path, out: Path) -> None:
    """Draw the figure of the specimen in ``folder`` into ``out``."""
    grand = read_mrc(folder / "grandmodel.mrc", ndim=3).data
    classes = read_mrc(folder / "class_mask.mrc", ndim=3).data
    names = {
        int(c["id"]): c["name"]
        for c in json.loads((folder / "classes.json").read_text())["classes"]
    }
    nz, ny, nx = grand.shape
    v = read_mrc(folder / "grandmodel.mrc", ndim=3).voxel_size_a
    extent = (0, nx * v / 10, ny * v / 10, 0)
    colours = plt.get_cmap("tab10")(np.arange(20) % 10)
    cmap = ListedColormap([(1, 1, 1, 0), *colours[: max(names)]])
    fig, axes = plt.subplots(1, 5, figsize=(21, 4.8), constrained_layout=True)
    panels = [
        ("projection along Z (sum of V)", grand.sum(0), None),
        (f"slice z = {nz // 2}", grand[nz // 2], None),
        (f"slice z = {nz // 2}, classes", grand[nz // 2], classes[nz // 2]),
        (f"slice z = {nz // 2 + 15}, classes", grand[nz // 2 + 15], classes[nz // 2 + 15]),
        (f"slice z = {nz // 2 - 15}, classes", grand[nz // 2 - 15], classes[nz // 2 - 15]),
    ]
    for ax, (title, image, label) in zip(axes, panels, strict=True):
        lo, hi = np.percentile(image, (1, 99.7))
        ax.imshow(-image, cmap="gray", vmin=-hi, vmax=-lo, extent=extent)
        if label is not None:
            ax.imshow(
                np.ma.masked_equal(label, 0),
                cmap=cmap,
                vmin=-0.5,
                vmax=max(names) + 0.5,
                alpha=0.55,
                extent=extent,
                interpolation="nearest",
            )
        ax.set_title(title)
        ax.set_xlabel("x (nm)")
    axes[0].set_ylabel("y (nm)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[k - 1]) for k in sorted(names)]
    fig.legend(handles, [names[k] for k in sorted(names)], loc="outside right center")
    fig.savefig(out, dpi=80)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
