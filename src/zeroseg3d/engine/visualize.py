"""Pictures of results: per-class IoU bars, confusion matrices, bird's-eye views, camera
overlays (by class or by depth), training curves. Overlays are drawn pixel-exact with PIL."""

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


def confusion_picture(matrix: np.ndarray, names: list[str], path: str | Path, title: str = "confusion",
                      unseen: list[str] | tuple = ()) -> Path:
    """Row-normalised confusion matrix (rows: ground truth, columns: prediction; a last column
    beyond the classes counts points without a prediction), class names on both axes."""
    plt = _pyplot()
    matrix = np.asarray(matrix, dtype=np.float64)[:, :len(names)]
    rows = matrix.sum(1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    size = max(6, 0.42 * len(names))
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    shown = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right")
    ax.set_yticks(range(len(names)), names)
    for label in list(ax.get_xticklabels()) + list(ax.get_yticklabels()):
        if label.get_text() in unseen:
            label.set_color("#c44e52")
    for i in range(len(names)):
        for j in range(len(names)):
            if share[i, j] >= 0.05:
                ax.text(j, i, f"{100 * share[i, j]:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if share[i, j] > 0.6 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("ground truth")
    ax.set_title(f"{title} (% of each true class; unseen in red)")
    fig.colorbar(shown, ax=ax, fraction=0.046)
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


def _legend(names: list[str], palette: np.ndarray, present, width: int):
    """A strip of colour boxes and class names, wrapped to ``width`` pixels (PIL image)."""
    from PIL import Image, ImageDraw

    box, pad = 12, 6
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    items = [(names[c], tuple(int(v) for v in palette[c])) for c in present]
    rows, row, x = [], [], pad
    for name, color in items:
        w = box + 4 + int(draw.textlength(name)) + 2 * pad
        if row and x + w > width:
            rows.append(row)
            row, x = [], pad
        row.append((x, name, color))
        x += w
    if row:
        rows.append(row)
    strip = Image.new("RGB", (width, max(1, len(rows)) * (box + pad) + pad), (255, 255, 255))
    draw = ImageDraw.Draw(strip)
    for r, entries in enumerate(rows):
        y = pad + r * (box + pad)
        for x0, name, color in entries:
            draw.rectangle([x0, y, x0 + box, y + box], fill=color)
            draw.text((x0 + box + 4, y), name, fill=(0, 0, 0))
    return strip


def paint_points(image: np.ndarray, uv: np.ndarray, colors: np.ndarray, radius: int = 1) -> np.ndarray:
    """The image with a (2 radius + 1)-pixel square of ``colors`` (N, 3) uint8 at each (u, v);
    far points first, so nearer ones stay on top when ``uv`` is sorted by depth, farthest first."""
    out = np.array(image[..., :3], dtype=np.uint8, copy=True)
    height, width = out.shape[:2]
    cols = np.rint(uv[:, 0]).astype(np.int64)
    rows = np.rint(uv[:, 1]).astype(np.int64)
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            r, c = rows + dy, cols + dx
            ok = (r >= 0) & (r < height) & (c >= 0) & (c < width)
            out[r[ok], c[ok]] = colors[ok]
    return out


def camera_overlay(image: np.ndarray, uv: np.ndarray, labels: np.ndarray, palette: np.ndarray,
                   path: str | Path, truth: np.ndarray | None = None, names: list[str] | None = None,
                   depth: np.ndarray | None = None) -> Path:
    """The points that project into the image, coloured by predicted class (and, below, by
    ground truth where given), with a legend of the classes present. Pixel-exact: a point at
    (u, v) paints the pixels around (u, v) in its class colour (unlabelled: grey)."""
    from PIL import Image

    order = np.argsort(-depth) if depth is not None else np.arange(len(uv))
    panels = [labels] + ([truth] if truth is not None else [])
    tiles = []
    for values in panels:
        colors = np.full((len(values), 3), 150, np.uint8)
        valid = values >= 0
        colors[valid] = palette[values[valid]]
        tiles.append(Image.fromarray(paint_points(image, uv[order], colors[order])))
    width = image.shape[1]
    canvas = [np.asarray(t) for t in tiles]
    if names is not None:
        present = sorted(set(np.unique(labels[labels >= 0]).tolist())
                         | (set(np.unique(truth[truth >= 0]).tolist()) if truth is not None else set()))
        canvas.append(np.asarray(_legend(names, palette, present, width)))
    return _save_array(np.concatenate(canvas, axis=0), path)


def depth_overlay(image: np.ndarray, uv: np.ndarray, depth: np.ndarray, path: str | Path,
                  max_depth: float = 50.0) -> Path:
    """Points coloured by depth (near: yellow, far: purple) on the image: the calibration check.
    With a right calibration, depth edges fall on object edges in the image."""
    import matplotlib

    colors = (matplotlib.colormaps["plasma_r"](np.clip(depth / max_depth, 0, 1))[:, :3] * 255).astype(np.uint8)
    order = np.argsort(-depth)
    return _save_array(paint_points(image, uv[order], colors[order]), path)


def _save_array(array: np.ndarray, path: str | Path) -> Path:
    import io

    from PIL import Image

    from zeroseg3d.utils.atomic import atomic_write_bytes

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


def scan_pictures(frame, pairing, predicted: np.ndarray, truth: np.ndarray | None, names: list[str],
                  palette: np.ndarray, folder: str | Path, stem: str) -> list[Path]:
    """Every picture of one segmented scan: the bird's-eye view and, for each camera with an
    image, the overlay of the points it sees (prediction, and ground truth where the scan has
    labels). ``pairing`` is the scan's point-camera pairing (geometry.projection)."""
    folder = Path(folder)
    written = [bird_eye(frame.points, predicted, truth, palette, names, folder / f"{stem}_bev.png")]
    for index, camera in enumerate(frame.cameras):
        image = camera.load_image()
        if image is None:
            continue
        rows = pairing.cam_idx == index
        points = pairing.point_idx[rows]
        written.append(camera_overlay(image, pairing.uv[rows], predicted[points], palette,
                                      folder / f"{stem}_{camera.name}.png",
                                      truth=None if truth is None else truth[points], names=names,
                                      depth=pairing.depth[rows]))
    return written


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
