"""utils/optim.adamw: torch's fused AdamW where every parameter allows it, the same update as
torch's default for-loop implementation to rounding."""

import torch

from zeroseg3d.utils.optim import adamw


def _model(device="cpu"):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.GELU(), torch.nn.Linear(5, 3)).to(device)


def test_fused_on_the_cpu_and_the_same_steps_as_the_for_loop():
    fused_model, loop_model = _model(), _model()
    fused = adamw(fused_model.parameters(), 1e-2, 0.05)
    loop = torch.optim.AdamW(loop_model.parameters(), lr=1e-2, weight_decay=0.05, foreach=False)
    assert fused.defaults["fused"] is True and fused.defaults["weight_decay"] == 0.05
    x, y = torch.randn(32, 6), torch.randint(0, 3, (32,))
    for _ in range(20):
        for model, optimizer in ((fused_model, fused), (loop_model, loop)):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
    moved = sum((a - b).abs().sum() for a, b in zip(fused_model.parameters(), _model().parameters()))
    assert moved > 0.5   # the steps did change the weights
    for a, b in zip(fused_model.parameters(), loop_model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # its state loads into the default implementation and back (checkpoints of either kind resume)
    loop.load_state_dict(fused.state_dict())
    fused.load_state_dict(loop.state_dict())


def test_not_fused_where_torch_has_no_kernel():
    optimizer = adamw(_model("meta").parameters(), 1e-3, 0.0)
    assert not optimizer.defaults["fused"]
