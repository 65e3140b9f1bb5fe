"""Reader throughput on the real SemanticKITTI frames: read + learning map + pairing."""

from __future__ import annotations

import sys

from common import KITTI, timed, write_result


def main() -> str:
    from zeroseg3d.datasets.semantickitti import SemanticKITTI
    from zeroseg3d.geometry.projection import pair_points

    if not (KITTI / "sequences").is_dir():
        return "reader: skipped (no ../shared/data)"
    dataset = SemanticKITTI.from_root(KITTI, sequences=["00"])

    def read_all():
        for i in range(len(dataset)):
            dataset[i]

    def read_and_pair():
        for i in range(len(dataset)):
            frame = dataset[i]
            pair_points(frame.xyz, frame.cameras)

    read = timed(read_all, repeat=5) / len(dataset)
    paired = timed(read_and_pair, repeat=5) / len(dataset)
    write_result("reader", {"frames": len(dataset), "read_s_per_frame": read, "read_fps": 1 / read,
                            "read_and_pair_s_per_frame": paired, "read_and_pair_fps": 1 / paired})
    return f"reader: {1 / read:.1f} frames/s read, {1 / paired:.1f} frames/s with pairing and occlusion test"


if __name__ == "__main__":
    print(main())
    sys.exit(0)
