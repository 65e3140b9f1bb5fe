"""Hostile command lines and checkpoints, generated. Every command gets argument lists drawn
from valid values and hostile ones (bad numbers, shards, paths, overrides, devices, class
lists); each answers with a result, argparse's usage error, or one line ``zeroseg3d: error:``
and exit code 2: never a traceback. Checkpoints with generated missing, mistyped, misshapen or
damaged contents are refused in one line naming the file."""

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from zeroseg3d.cli import main
from zeroseg3d.errors import ZeroSeg3DError

pytest.importorskip("spconv")

CLI = settings(max_examples=40, deadline=None, derandomize=True,
               suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


class Reached(Exception):
    """Raised where a command's long work would start: its arguments were accepted."""


def _reached(*args, **kwargs):
    raise Reached


HOSTILE_WORDS = ["", " ", "-", "-1", "0", "1/0", "0/4", "5/4", "abc", "nan", "inf", "1e400", "9" * 40,
                 "ünïcödé", ",", "a,,b", "car,car", "Car, car", "cuda", "cuda:7", "mps"]
HOSTILE_OVERRIDES = ["x=1", "=1", "data=1", "_base_=123", "data.voxel_size=-1", "data.voxel_size=abc",
                     "data.voxel_size=[1, 2]", "data.voxel_size={a: 1}", "train.batch_size=0",
                     "model.backbone=nonexistent", "teacher.readout=bogus", "a.b.c.d=1", "run.seed=1e99",
                     "teacher.allow_unsafe_pickle=true", "data.voxel_size=&a [*a, *a]", "data.root=/nonexistent"]


@pytest.fixture(autouse=True)
def working_directory(tmp_path, monkeypatch):
    """Relative names among the hostile words (``mps``, ``5/4``, ``x=1``) become folders the
    commands write into: in a folder of the test's own, never in the checkout."""
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")


@pytest.fixture
def places(tmp_path):
    """Paths a user might hand over by mistake."""
    (tmp_path / "folder").mkdir()
    (tmp_path / "garbage.bin").write_bytes(b"\x00\x01garbage" * 7)
    (tmp_path / "empty.yaml").write_bytes(b"")
    (tmp_path / "bad.yaml").write_bytes(b"data: [unclosed\n\xff\xfe")
    return [str(tmp_path / "missing"), str(tmp_path / "folder"), str(tmp_path / "garbage.bin"),
            str(tmp_path / "empty.yaml"), str(tmp_path / "bad.yaml")]


def argv_strategy(template, places):
    """``template``: (flag or None for a positional, valid value or None for a bare switch,
    required). Each slot is left out (when optional), given its valid value, or a hostile one."""
    hostile = st.sampled_from(HOSTILE_WORDS + HOSTILE_OVERRIDES + places)

    @st.composite
    def argv(draw):
        words = []
        for flag, valid, required in template:
            if not required and draw(st.booleans()):
                continue
            if valid is None:
                words.append(flag)
                continue
            value = draw(st.one_of(st.just(valid), hostile)) if draw(st.booleans()) else valid
            words += [flag, value] if flag else [value]
        return words + draw(st.lists(hostile, max_size=1))

    return argv()


def run_cli(argv, capsys) -> str:
    """Run the command line; return how it ended: 'ok', 'refused', 'usage' or 'reached'."""
    capsys.readouterr()
    try:
        code = main(argv)
    except Reached:
        return "reached"
    except SystemExit as exit:   # argparse: --help (0) or a usage error (2)
        err = capsys.readouterr().err
        assert exit.code in (0, 2) and "Traceback" not in err, (argv, err)
        if exit.code == 2:
            assert err.strip().splitlines()[-1].startswith("zeroseg3d"), (argv, err)
        return "usage"
    out, err = capsys.readouterr()
    assert code in (0, 2) and "Traceback" not in err + out, (argv, code, err)
    if code == 2:
        errors = [line for line in err.splitlines() if line.startswith("zeroseg3d: error: ")]
        assert len(errors) == 1 and errors[0] == err.strip().splitlines()[-1], (argv, err)
        return "refused"
    return "ok"


@CLI
@given(data=st.data())
def test_config_world_and_info_commands(tmp_path, places, capsys, tiny_run, monkeypatch, data):
    root, config_path, world = tiny_run
    monkeypatch.setattr("zeroseg3d.cli.world_cmd.generate_world", _reached)
    monkeypatch.setattr("zeroseg3d.world.clip_training.train_world_clip", _reached)
    command = data.draw(st.sampled_from(["config", "generate", "train-clip", "info"]))
    templates = {
        "config": (["config"], [(None, str(config_path), False), (None, "data.voxel_size=0.2", False),
                                ("--save", str(tmp_path / "saved"), False)]),
        "generate": (["world", "generate"], [("--out", str(tmp_path / "w"), True), ("--sequences", "1", False),
                                             ("--frames", "2", False), ("--seed", "3", False),
                                             ("--start", "4", False), ("--images", "2", False),
                                             ("--heldout-images", "2", False), ("--workers", "1", False)]),
        "train-clip": (["world", "train-clip"], [("--world", str(world), True), ("--out", str(tmp_path / "c.st"), True),
                                                 ("--steps", "2", False), ("--batch-size", "8", False),
                                                 ("--seed", "1", False),
                                                 ("--threads", "1", False), ("--sequences", "00", False),
                                                 ("--eval-sequences", "08", False)]),
        "info": (["info"], [("--json", None, False)]),
    }
    prefix, template = templates[command]
    argv = prefix + data.draw(argv_strategy(template, places))
    run_cli(argv, capsys)


@CLI
@given(data=st.data())
def test_data_inspect(tmp_path, places, capsys, tiny_run, data):
    root, config_path, world = tiny_run
    template = [(None, str(world / "sequences" / "00"), True), ("--frame", "1", False),
                ("--vocabulary", "semantickitti", False), ("--json", None, False),
                ("--pictures", str(tmp_path / "pictures"), False)]
    run_cli(["data", "inspect"] + data.draw(argv_strategy(template, places)), capsys)


@CLI
@given(data=st.data())
def test_teacher_train_and_demo_accept_or_refuse_their_arguments_before_working(
        tmp_path, places, capsys, tiny_run, tiny_checkpoint, monkeypatch, data):
    root, config_path, world = tiny_run
    monkeypatch.setattr("zeroseg3d.teacher.run.fill_cache", _reached)
    monkeypatch.setattr("zeroseg3d.engine.train.Trainer.train", _reached)
    monkeypatch.setattr("zeroseg3d.engine.demo.prepare_world_and_teacher", _reached)
    command = data.draw(st.sampled_from(["teacher", "train", "demo"]))
    templates = {
        "teacher": [(None, str(config_path), True), (None, "teacher.short_side=32", False), ("--split", "val", False),
                    ("--shard", "1/2", False), ("--no-report", None, False)],
        "train": [(None, str(config_path), True), (None, "train.epochs_guided=1", False),
                  ("--out", str(tmp_path / "run"), False), ("--resume", str(tiny_checkpoint), False)],
        "demo": [("--out", str(tmp_path / "demo"), False), ("--quick", None, False), ("--seed", "1", False),
                 (None, "train.epochs_self=0", False)],
    }
    run_cli([command] + data.draw(argv_strategy(templates[command], places)), capsys)


@settings(max_examples=24, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_evaluate_predict_and_export_run_or_refuse_in_one_line(tmp_path, places, capsys, tiny_run, tiny_checkpoint,
                                                                data):
    root, config_path, world = tiny_run
    scan = world / "sequences" / "08" / "velodyne" / "000000.bin"
    (tmp_path / "names.txt").write_text("car\nroad\nfire hydrant\n")
    command = data.draw(st.sampled_from(["evaluate", "predict", "export"]))
    templates = {
        "evaluate": [(None, str(tiny_checkpoint), True), (None, "data.voxel_size=0.4", False),
                     ("--data", str(world), False), ("--split", "val", False), ("--out", str(tmp_path / "e"), True),
                     ("--device", "cpu", False)],
        "predict": [(None, str(tiny_checkpoint), True), (None, str(scan), True),
                    ("--classes", "car,road,fire hydrant", False), ("--vocabulary", str(tmp_path / "names.txt"), False),
                    ("--format", "ply", False), ("--out", str(tmp_path / "p"), True), ("--pictures", None, False),
                    ("--rerun", str(tmp_path / "p" / "scans.rrd"), False), ("--device", "cpu", False)],
        "export": [(None, str(tiny_checkpoint), True), (None, str(tmp_path / "bundle"), True)],
    }
    run_cli([command] + data.draw(argv_strategy(templates[command], places)), capsys)


def _tensor(shape, dtype, fill):
    tensor = torch.zeros(shape, dtype=dtype)
    if dtype.is_floating_point:
        tensor.fill_(fill)
    return tensor


VALUES = st.one_of(
    st.none(), st.integers(-2**40, 2**40), st.text(max_size=12), st.lists(st.text(max_size=4), max_size=4),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=3),
    st.builds(_tensor, st.lists(st.integers(0, 17), min_size=0, max_size=3).map(tuple),
              st.sampled_from([torch.float32, torch.float16, torch.int64, torch.bool]),
              st.sampled_from([0.0, 1.0, float("nan"), float("inf")])))


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(changes=st.lists(st.tuples(st.sampled_from(["config", "vocabulary", "text_embeddings", "model", "phase",
                                                   "version", "teacher_identity", "workdir_from_run", "weight",
                                                   "format"]),
                                  st.booleans(), VALUES, st.integers(0, 10**6)), min_size=1, max_size=3))
def test_generated_damaged_checkpoints_predict_or_are_refused_in_one_line(tmp_path, tiny_checkpoint, changes):
    from zeroseg3d.engine.checkpoint import save_checkpoint
    from zeroseg3d.engine.predict import Segmenter

    state = torch.load(tiny_checkpoint, weights_only=True)
    for key, delete, value, index in changes:
        if key == "weight":   # one tensor inside the student's weights
            weights = dict(state["model"])
            name = sorted(weights)[index % len(weights)]
            if delete:
                del weights[name]
            else:
                weights[name] = value
            state["model"] = weights
        elif delete:
            state.pop(key, None)
        else:
            state[key] = value
    path = tmp_path / "damaged.pt"
    try:
        save_checkpoint(path, state)
    except Exception:   # torch refuses to save some values: nothing to load
        return
    points = np.random.default_rng(0).uniform(-10, 10, (200, 4)).astype(np.float32)
    try:
        result = Segmenter.from_checkpoint(path, "cpu").predict(points)
    except ZeroSeg3DError as error:
        assert "\n" not in str(error) and str(path) in str(error), str(error)
    else:
        assert len(result.labels) == len(points) and np.isfinite(result.scores).all()


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(cut=st.integers(0, 2**20), flips=st.lists(st.tuples(st.integers(0, 2**20), st.binary(min_size=1, max_size=8)),
                                                 max_size=3))
def test_checkpoint_files_cut_or_overwritten_are_refused_in_one_line(tmp_path, tiny_checkpoint, cut, flips):
    from zeroseg3d.engine.predict import Segmenter

    data = bytearray(tiny_checkpoint.read_bytes())
    for at, payload in flips:
        at %= len(data)
        data[at:at + len(payload)] = payload
    if cut % 3:   # two in three cases also cut the file short
        data = data[:cut % len(data)]
    path = tmp_path / "cut.pt"
    path.write_bytes(bytes(data))
    points = np.random.default_rng(0).uniform(-10, 10, (200, 4)).astype(np.float32)
    try:
        result = Segmenter.from_checkpoint(path, "cpu").predict(points)
    except ZeroSeg3DError as error:
        assert "\n" not in str(error) and str(path) in str(error), str(error)
    else:   # a byte inside a stored tensor's data changes a weight, not the format
        assert len(result.labels) == len(points)
