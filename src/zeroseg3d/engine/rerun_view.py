"""The interactive view: segmented scans recorded for the Rerun viewer (rerun-sdk, imported
lazily; ``pip install 'zeroseg3d[view]'``).

One recording holds, per scan on the ``frame`` timeline: the points with their class (names
and colours from one annotation context, so hovering a point names its class), the per-point
confidence and intensity, the ground truth where the scan has labels, and every camera as a
pinhole with its image and the points it sees. A sequence with poses is placed in world
coordinates, so the scans line up as the car drives. Entity tree::

    world                        annotation context (class id -> name, colour); z up
    world/lidar                  the scan's pose (LiDAR -> world), where known
    world/lidar/points           Points3D (class_ids) + confidence, intensity
    world/lidar/truth            Points3D of the labelled points (class_ids)
    world/lidar/<camera>         the camera's pose and pinhole
    world/lidar/<camera>/image   the image; .../image/points: the projected points by class
"""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

import numpy as np

from zeroseg3d.errors import ConfigError

TIMELINE = "frame"


def import_rerun():
    try:
        import rerun
    except ImportError:
        raise ConfigError("the Rerun view needs rerun-sdk: pip install 'zeroseg3d[view]' "
                          "(or rerun-sdk); pictures without it: --pictures") from None
    return rerun


class RerunRecorder:
    """Records segmented scans into ``path`` (an .rrd file, written atomically when the
    recorder closes) or, with ``spawn``, streams them to a Rerun viewer it starts.

    >>> with RerunRecorder(names, palette(names), "scans.rrd") as recorder:
    ...     recorder.add(frame, prediction, pairing, truth)
    """

    def __init__(self, names: list[str], colors: np.ndarray, path: str | Path | None = None,
                 spawn: bool = False, application_id: str = "zeroseg3d"):
        if (path is None) == (not spawn):
            raise ValueError("record into a file or spawn a viewer (one of the two)")
        self.rr = import_rerun()
        self.path = None if path is None else Path(path)
        self.names = list(names)
        self.colors = np.asarray(colors, np.uint8)
        self.application_id = application_id
        self.frames = 0
        self._stack = contextlib.ExitStack()
        self.stream = None

    def __enter__(self) -> "RerunRecorder":
        rr = self.rr
        from zeroseg3d.utils.atomic import atomic_path

        # an own stream, not rerun's global one: two recorders in one process stay apart
        self.stream = rr.new_recording(self.application_id, recording_id=uuid.uuid4())
        if self.path is not None:
            self.stream.save(str(self._stack.enter_context(atomic_path(self.path))))
        else:
            try:
                self.stream.spawn()
            except Exception as exc:   # no viewer binary, or it cannot start
                raise ConfigError(f"could not start the Rerun viewer ({type(exc).__name__}: {exc}); "
                                  "write a file with --rerun FILE.rrd and open it with `rerun FILE.rrd`") from None
        context = [rr.AnnotationInfo(id=i, label=name, color=tuple(int(c) for c in self.colors[i]))
                   for i, name in enumerate(self.names)]
        self.stream.log("world", rr.AnnotationContext(context), static=True)
        self.stream.log("world", rr.ViewCoordinates.RIGHT_HAND_Z_UP, static=True)
        return self

    def __exit__(self, kind, error, trace) -> None:
        try:
            self.stream.flush(blocking=True)
            self.stream.disconnect()   # closes the file sink: the .rrd is complete on disk
        finally:
            self._stack.__exit__(kind, error, trace)

    def add(self, frame, labels: np.ndarray, scores: np.ndarray | None = None, pairing=None,
            truth: np.ndarray | None = None) -> None:
        """One scan: ``labels`` (N,) indices into the names; ``scores`` (N,) their confidence;
        ``pairing`` the scan's point-camera pairing (geometry.projection) for the camera views;
        ``truth`` (N,) indices into the names, -1 where unknown."""
        rr, stream = self.rr, self.stream
        stream.set_time_sequence(TIMELINE, self.frames)
        self.frames += 1
        if frame.pose is not None:
            stream.log("world/lidar", rr.Transform3D(translation=frame.pose[:3, 3], mat3x3=frame.pose[:3, :3]))
        xyz = np.ascontiguousarray(frame.points[:, :3], np.float32)
        extra = {"intensity": frame.points[:, 3]}
        if scores is not None:
            extra["confidence"] = np.asarray(scores, np.float32)
        stream.log("world/lidar/points", rr.Points3D(xyz, class_ids=labels.astype(np.uint16)),
                   rr.AnyValues(**extra))
        if truth is not None:
            known = truth >= 0
            stream.log("world/lidar/truth", rr.Points3D(xyz[known], class_ids=truth[known].astype(np.uint16)))
        for index, camera in enumerate(frame.cameras):
            # under cameras/, escaped: a camera named "points" or "front left" is a camera
            entity = f"world/lidar/cameras/{rr.escape_entity_path_part(camera.name)}"
            T = camera.T_cam_from_lidar
            stream.log(entity, rr.Transform3D(translation=T[:3, 3], mat3x3=T[:3, :3],
                                              relation=rr.TransformRelation.ChildFromParent))
            stream.log(entity, rr.Pinhole(image_from_camera=camera.K, resolution=list(camera.image_size),
                                          camera_xyz=rr.ViewCoordinates.RDF))
            if camera.image_path is not None:   # the encoded file as it is: far smaller than pixels
                stream.log(f"{entity}/image", rr.EncodedImage(path=camera.image_path))
            elif camera.image is not None:
                stream.log(f"{entity}/image", rr.Image(camera.image))
            if pairing is not None:
                rows = pairing.cam_idx == index
                stream.log(f"{entity}/image/points",
                           rr.Points2D(pairing.uv[rows], class_ids=labels[pairing.point_idx[rows]].astype(np.uint16)))
