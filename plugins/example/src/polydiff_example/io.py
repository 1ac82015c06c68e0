"""points2d files: the points as CSV (read back by ``read``) and a scatter plot as SVG."""
import csv
from pathlib import Path

import numpy as np

EXTENT = 4.0  # the plot shows [-EXTENT, EXTENT] on both axes


def write(outputs, folder, request) -> list[Path]:
    folder = Path(folder)
    points = np.stack(outputs)
    with open(folder / "points.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["x", "y"])
        writer.writerows([[f"{v:.6f}" for v in row] for row in points.tolist()])
    dots = "".join(f'<circle cx="{x:.3f}" cy="{-y:.3f}" r="0.03"/>' for x, y in points.tolist())
    (folder / "points.svg").write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{-EXTENT} {-EXTENT} {2 * EXTENT} {2 * EXTENT}" '
        f'width="256" height="256"><g fill="#286edc">{dots}</g></svg>\n')
    return [folder / "points.csv", folder / "points.svg"]


def read(files) -> list[np.ndarray]:
    """The points in ``points.csv`` among ``files`` (the inverse of ``write``)."""
    path = next(Path(f) for f in files if Path(f).suffix == ".csv")
    with open(path, newline="") as f:
        rows = list(csv.reader(f))[1:]
    return [np.array([float(v) for v in row], dtype=np.float32) for row in rows if row]


def picture(x) -> np.ndarray:
    """A batch of points as a density image over [-EXTENT, EXTENT]^2 (north up), for figures."""
    points = np.asarray(x, dtype=np.float64)
    counts, _, _ = np.histogram2d(points[:, 1], points[:, 0], bins=64, range=[[-EXTENT, EXTENT]] * 2)
    return np.log1p(counts[::-1])
