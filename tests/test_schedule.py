"""The training schedule: whole batches only, and a learning-rate schedule per phase."""

import math
from types import SimpleNamespace

import pytest

from zeroseg3d.engine.train import _lr_lambda


def _config(**train):
    defaults = dict(warmup_steps=2, self_lr_scale=0.5)
    return SimpleNamespace(train=SimpleNamespace(**{**defaults, **train}))


def test_self_training_restarts_its_own_warm_up_and_cosine():
    factor = _lr_lambda(_config(), guided_steps=10, self_steps=6)
    assert factor(0) == pytest.approx(0.5) and factor(1) == pytest.approx(1.0)   # warm-up
    assert factor(9) == pytest.approx(0.5 * (1 + math.cos(math.pi * 7 / 8)))     # near the end of phase 1
    # phase 2 warms up again to half the learning rate and decays to 0 over its own steps
    assert factor(10) == pytest.approx(0.25) and factor(11) == pytest.approx(0.5)
    assert factor(13) == pytest.approx(0.5 * 0.5 * (1 + math.cos(math.pi * 1 / 4)))
    assert factor(16) == pytest.approx(0.0, abs=1e-12)
    # without self-training the one phase spans every step
    only = _lr_lambda(_config(), guided_steps=10, self_steps=0)
    assert only(12) == pytest.approx(0.0, abs=1e-12) and only(5) > 0.5
