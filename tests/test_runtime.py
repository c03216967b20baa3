"""The plumbing every floor shares: calling a model on one batch, and the model inside its wrappers."""

from __future__ import annotations

import torch
from torch import nn

from fishcam_utils.runtime import call_model, move_to, unwrap


class TwoInputs(nn.Module):
    def forward(self, views: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        return views.sum((2, 3, 4)) * present


def test_call_model_unpacks_a_tuple_and_passes_a_tensor():
    linear = nn.Linear(3, 2)
    x = torch.randn(4, 3)
    assert torch.equal(call_model(linear, x), linear(x))
    views, present = torch.ones(2, 3, 1, 2, 2), torch.tensor([[True, False, True], [True, True, True]])
    for batch in ((views, present), [views, present]):
        assert torch.equal(call_model(TwoInputs(), batch), 4 * present.float())


def test_unwrap_finds_the_model_inside_data_parallel_and_compile_wrappers():
    inner = nn.Linear(3, 2)
    assert unwrap(inner) is inner and unwrap(nn.DataParallel(inner)) is inner

    class Compiled(nn.Module):  # what torch.compile returns keeps the model as _orig_mod
        def __init__(self, model: nn.Module) -> None:
            super().__init__()
            self._orig_mod = model

    assert unwrap(Compiled(nn.DataParallel(inner))) is inner


def test_move_to_moves_nested_tensors_and_leaves_the_rest():
    batch = {"x": (torch.ones(1), [torch.zeros(2)]), "name": "fish", "n": 3}
    moved = move_to(batch, torch.device("cpu"))
    assert moved["name"] == "fish" and moved["n"] == 3 and isinstance(moved["x"], tuple)
    assert torch.equal(moved["x"][1][0], torch.zeros(2))
