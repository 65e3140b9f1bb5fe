"""Pictures of results: per-class IoU bars, bird's-eye views, camera overlays, curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    import io

    from zeroseg3d.utils.atomic import atomic_write_bytes

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def iou_chart(metrics: dict, path: str | Path, title: str = "IoU per class") -> Path:
    """Bars of per-class IoU over the full scan and inside the camera view; unseen classes
    hatched and named in red."""
    plt = _pyplot()
    names = list(metrics["per_class"])
    unseen = set(metrics.get("unseen_classes", []))
    full = [metrics["per_class"][n] or 0.0 for n in names]
    fov = [metrics["fov"]["per_class"][n] or 0.0 for n in names] if "fov" in metrics else None
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(8, 0.55 * len(names)), 4))
    width = 0.4 if fov else 0.8
    bars = ax.bar(x - (width / 2 if fov else 0), full, width, label="full scan", color="#4c72b0")
    if fov:
        bars_fov = ax.bar(x + width / 2, fov, width, label="camera view", color="#55a868")
    for i, name in enumerate(names):
        if name in unseen:
            bars[i].set_hatch("//")
            if fov:
                bars_fov[i].set_hatch("//")
    ax.set_xticks(x, names, rotation=60, ha="right")
    for label in ax.get_xticklabels():
        if label.get_text() in unseen:
            label.set_color("#c44e52")
    ax.set_ylabel("IoU (%)")
    ax.set_ylim(0, 100)
    summary = (f"mIoU {metrics['miou']:.1f}  seen {metrics['miou_seen']:.1f}  "
               f"unseen {metrics['miou_unseen']:.1f}  hIoU {metrics['hiou']:.1f}")
    ax.set_title(f"{title}\n{summary}  (unseen classes hatched, in red)")
    ax.legend()
    return _save(fig, path)


def _colors(labels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    colors = np.full((len(labels), 3), 0.6)
    valid = labels >= 0
    colors[valid] = palette[labels[valid]] / 255.0
    return colors


def bird_eye(points: np.ndarray, predicted: np.ndarray, truth: np.ndarray | None, palette: np.ndarray,
             names: list[str], path: str | Path, extent: float = 50.0) -> Path:
    """Top views coloured by prediction and by ground truth, side by side."""
    plt = _pyplot()
    panels = [("prediction", predicted)] + ([("ground truth", truth)] if truth is not None else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(7 * len(panels), 7), squeeze=False)
    keep = (np.abs(points[:, 0]) < extent) & (np.abs(points[:, 1]) < extent)
    for ax, (title, labels) in zip(axes[0], panels):
        ax.scatter(points[keep, 0], points[keep, 1], c=_colors(labels[keep], palette), s=0.3, linewidths=0)
        ax.set_aspect("equal")
        ax.set_xlim(-extent, extent)
        ax.set_ylim(-extent, extent)
        ax.set_title(title)
        ax.set_xlabel("x (m)")
    present = sorted(set(np.unique(predicted[predicted >= 0])) | set(np.unique(truth[truth >= 0]) if truth is not None else []))
    handles = [plt.Line2D([], [], marker="s", linestyle="", color=palette[c] / 255.0, label=names[c]) for c in present]
    fig.legend(handles=handles, loc="lower center", ncol=min(8, len(handles)), frameon=False)
    return _save(fig, path)


def camera_overlay(image: np.ndarray, uv: np.ndarray, labels: np.ndarray, palette: np.ndarray,
                   path: str | Path, truth: np.ndarray | None = None) -> Path:
    """Predicted classes of the points that project into the image, drawn on it."""
    plt = _pyplot()
    rows = 2 if truth is not None else 1
    fig, axes = plt.subplots(rows, 1, figsize=(12, 3.6 * rows), squeeze=False)
    for ax, (title, values) in zip(axes[:, 0], [("prediction", labels), ("ground truth", truth)][:rows]):
        ax.imshow(image)
        ax.scatter(uv[:, 0], uv[:, 1], c=_colors(values, palette), s=1.5, linewidths=0)
        ax.set_xlim(0, image.shape[1])
        ax.set_ylim(image.shape[0], 0)
        ax.set_axis_off()
        ax.set_title(title)
    return _save(fig, path)


def training_curves(history: list[dict], path: str | Path) -> Path:
    plt = _pyplot()
    keys = sorted({k for record in history for k in record if k.startswith("loss")})
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    steps = [r["step"] for r in history]
    for key in keys:
        axes[0].plot(steps, [r.get(key, np.nan) for r in history], label=key)
    axes[0].set_yscale("log")
    axes[0].set_xlabel("step")
    axes[0].legend()
    axes[0].set_title("losses")
    axes[1].plot(steps, [r.get("lr", np.nan) for r in history])
    axes[1].set_xlabel("step")
    axes[1].set_title("learning rate")
    return _save(fig, path)


def show_interactive(points: np.ndarray, labels: np.ndarray, palette: np.ndarray, title: str = "zeroseg3d") -> bool:
    """An Open3D window of the coloured scan when Open3D is installed and a display exists;
    returns False (the PNGs are the way to look) otherwise."""
    import os

    try:
        import open3d as o3d
    except ImportError:
        return False
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        return False
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points[:, :3].astype(np.float64)))
    cloud.colors = o3d.utility.Vector3dVector(_colors(labels, palette))
    o3d.visualization.draw_geometries([cloud], window_name=title)
    return True
