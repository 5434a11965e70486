"""Make the README's pictures from real data (scikit-learn's bundled breast-cancer set).

Run: ``.venv/bin/python packages/boundedkde/examples/figures.py`` (writes
docs/boundedkde/img/density_1d.png and corner_2d.png atomically).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from boundedkde import BoundedKDE, plot_corner, plot_density
from sklearn.datasets import load_breast_cancer

OUT = Path(__file__).resolve().parents[3] / "docs" / "boundedkde" / "img"


def _save(fig: plt.Figure, name: str) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=OUT)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=100)
        os.replace(tmp, OUT / name)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    plt.close(fig)
    print(f"wrote {OUT / name}")


def main() -> None:
    data = load_breast_cancer()
    names = list(data.feature_names)
    concavity = data.data[:, names.index("mean concavity")]
    kde = BoundedKDE(bounds=(0, None)).fit(concavity)
    ax = plot_density(kde, data=concavity, rug=True)
    ax.set_xlabel("mean concavity (breast-cancer data, bounded below by 0)")
    ax.set_title(f"BoundedKDE, method={kde.method_}, bandwidth={kde.bandwidth_:.3g}")
    _save(ax.figure, "density_1d.png")

    pair = data.data[:, [names.index("mean concavity"), names.index("mean symmetry")]]
    kde2 = BoundedKDE(bounds=[(0, None), (0, None)], method="reflect").fit(pair)
    axes = plot_corner(kde2, data=pair, names=["mean concavity", "mean symmetry"])
    fig = axes[0, 0].figure
    fig.suptitle("68% / 95% highest-density regions; both axes bounded at 0", fontsize=9)
    fig.tight_layout()
    _save(axes[0, 0].figure, "corner_2d.png")


if __name__ == "__main__":
    main()
