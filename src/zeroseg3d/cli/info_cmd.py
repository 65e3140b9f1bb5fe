"""zeroseg3d info: versions, device, and which optional parts can be imported."""

from __future__ import annotations

import importlib
import json
import platform


def _probe(module: str, purpose: str, distribution: str | None = None) -> dict:
    from importlib import metadata

    try:
        imported = importlib.import_module(module)
    except Exception as exc:  # report any import failure, with its reason
        return {"importable": False, "purpose": purpose,
                "reason": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
    version = getattr(imported, "__version__", None)
    if version is None:
        try:
            version = metadata.version(distribution or module)
        except metadata.PackageNotFoundError:
            version = "unknown"
    return {"importable": True, "purpose": purpose, "version": str(version)}


def collect() -> dict:
    from zeroseg3d import __version__

    report = {"zeroseg3d": __version__, "python": platform.python_version(),
              "platform": platform.platform()}
    try:
        import torch

        cuda = torch.cuda.is_available()
        report["torch"] = {
            "version": torch.__version__,
            "cuda_build": torch.version.cuda,
            "device": torch.cuda.get_device_name(0) if cuda else "cpu",
            "cuda_available": cuda,
            "threads": torch.get_num_threads(),
        }
    except Exception as exc:
        report["torch"] = {"importable": False, "reason": f"{type(exc).__name__}: {exc}"}
    report["optional"] = {
        "spconv": _probe("spconv", "sparse convolution backbone (spconv, or spconv-cu12x on GPUs)"),
        "open_clip": _probe("open_clip", "CLIP teacher"),
        "nuscenes": _probe("nuscenes", "nuScenes reader", "nuscenes-devkit"),
        "rerun": _probe("rerun", "interactive 3D view: predict --rerun/--view (pip install 'zeroseg3d[view]')",
                        "rerun-sdk"),
        "open3d": _probe("open3d", "optional point viewer when rerun-sdk is missing"),
    }
    return report


def run(args) -> int:
    report = collect()
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"zeroseg3d {report['zeroseg3d']}  (python {report['python']}, {report['platform']})")
    torch_info = report["torch"]
    if "version" in torch_info:
        print(f"torch      {torch_info['version']}  cuda build {torch_info['cuda_build']}  "
              f"device {torch_info['device']}  threads {torch_info['threads']}")
    else:
        print(f"torch      not importable: {torch_info['reason']}")
    for name, probe in report["optional"].items():
        status = (f"ok {probe['version']}" if probe["importable"]
                  else f"not importable ({probe['reason']})")
        print(f"{name:<10} {status}  - {probe['purpose']}")
    return 0


def add_parser(commands) -> None:
    parser = commands.add_parser("info", help="show versions, device and optional components")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(run=run)
