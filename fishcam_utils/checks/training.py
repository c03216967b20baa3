"""Checker for notebook 02: a plain training loop, one epoch."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from ..numerics import float32_atol
from .core import Verdict, WrongAnswer, call, run_check, same

_BATCH = 4  # 10 samples: batches of 4, 4 and 2, so that a mean of batch means is not the mean


def _case() -> tuple[nn.Module, DataLoader, torch.optim.Optimizer, nn.Module]:
    """A small seeded model with BatchNorm (its behaviour differs in train and eval mode), ten
    samples in batches of 4, 4 and 2, plain SGD (so that accumulated gradients show)."""
    with torch.random.fork_rng():
        torch.manual_seed(2)
        model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
        inputs, labels = torch.randn(10, 6), torch.randint(0, 3, (10,))
    model.eval()  # as a model comes back from evaluation: the loop must switch it to training
    loader = DataLoader(TensorDataset(inputs, labels), batch_size=_BATCH, shuffle=False)
    return model, loader, torch.optim.SGD(model.parameters(), lr=0.1), nn.CrossEntropyLoss()


def reference_train_epoch(model: nn.Module, loader, optimizer, loss_fn, device: str | torch.device = "cpu") -> float:
    """One epoch of training, by the book, with batches moved to ``device``; returns the mean loss per sample."""
    model.train()
    total, seen = 0.0, 0
    for inputs, labels in loader:
        inputs, labels = inputs.to(device), labels.to(device)
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), labels)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(labels)
        seen += len(labels)
    return total / seen


def _run(loop: Callable) -> tuple[list[torch.Tensor], float, list[bool]]:
    """Final parameters, returned loss, and the model's mode at each forward, of ``loop`` on the case."""
    model, loader, optimizer, loss_fn = _case()
    modes: list[bool] = []
    model.register_forward_pre_hook(lambda module, args: modes.append(module.training))
    loss = call(loop, model, loader, optimizer, loss_fn)
    return [p.detach().clone() for p in model.parameters()], loss, modes


def _without_zero_grad(model, loader, optimizer, loss_fn) -> float:
    """The reference loop without ``optimizer.zero_grad()``, to recognise that mistake by its weights."""
    model.train()
    for inputs, labels in loader:
        loss_fn(model(inputs), labels).backward()
        optimizer.step()
    return 0.0


def _first_batch_only(model, loader, optimizer, loss_fn) -> float:
    """The reference loop that stops after its first batch (a ``return`` inside the for loop)."""
    model.train()
    for inputs, labels in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), labels)
        loss.backward()
        optimizer.step()
        return loss.item()
    return 0.0


class _NotMoved(torch.Tensor):
    """A batch as the loader gives it: ``.to(device)`` returns a plain tensor, so a model that is
    handed a ``_NotMoved`` got a batch that was never moved to the device."""

    def to(self, *args, **kwargs):
        return torch.Tensor.to(self.as_subclass(torch.Tensor), *args, **kwargs)


class _Unmoved:
    """``loader``'s batches as ``_NotMoved`` tensors; with the loader's ``dataset`` and length."""

    def __init__(self, loader: DataLoader) -> None:
        self.loader, self.dataset, self.batch_size = loader, loader.dataset, loader.batch_size

    def __iter__(self):
        for inputs, labels in self.loader:
            yield inputs.as_subclass(_NotMoved), labels.as_subclass(_NotMoved)

    def __len__(self) -> int:
        return len(self.loader)


def _moves_batches(loop: Callable) -> bool:
    """Whether ``loop(model, loader, optimizer, loss_fn, "cpu")`` moves every batch with ``.to(device)``
    before the model sees it (on a CPU the data is already there, so only this can tell)."""
    model, loader, optimizer, loss_fn = _case()
    plain: list[bool] = []
    model.register_forward_pre_hook(lambda module, args: plain.append(type(args[0]) is torch.Tensor))
    call(loop, model, _Unmoved(loader), optimizer, loss_fn, "cpu")
    return bool(plain) and all(plain)


def _takes_device(loop: Callable) -> bool:
    try:
        return "device" in inspect.signature(loop).parameters
    except (TypeError, ValueError):
        return False


def _batch_losses() -> list[tuple[float, int]]:
    """(loss, size) of each batch, as the reference loop sees them."""
    model, loader, optimizer, loss_fn = _case()
    model.train()
    seen = []
    for inputs, labels in loader:
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), labels)
        loss.backward()
        optimizer.step()
        seen.append((loss.item(), len(labels)))
    return seen


def _loss_tolerance() -> float:
    """How far a correct epoch loss summed another way (as tensors, in another order) may be from the
    reference's: float32 rounding of a cross-entropy's log-sum-exp of 3 logits, its mean over a batch of up
    to ``_BATCH``, the mean over 3 batches, of terms up to the largest |logit| plus log 3."""
    model, loader, _, _ = _case()
    model.train()
    with torch.no_grad():
        largest = max(float(model(inputs).abs().max()) for inputs, _ in loader)
    return float32_atol(largest + math.log(3), terms=3 + _BATCH + 3 + 2)


def training_loop(student: Callable) -> Verdict:
    """Check ``student(model, loader, optimizer, loss_fn[, device]) -> mean loss per sample`` for one epoch:
    the same weights and the same loss as the reference loop, the model in training mode."""
    def body() -> None:
        start = [p.detach().clone() for p in _case()[0].parameters()]
        want_weights, want_loss, _ = _run(reference_train_epoch)
        weights, loss, modes = _run(student)
        if not modes:
            raise WrongAnswer("your loop never called the model: for each batch, compute model(inputs)")
        if not all(modes):
            raise WrongAnswer("the model was in eval mode while it trained: call model.train() at the start "
                              "(BatchNorm and dropout behave differently in training)")
        if same(weights, start):
            raise WrongAnswer("the weights did not change: after loss.backward(), call optimizer.step(), and zero "
                              "the gradients before loss.backward(), not between backward and step")
        if not same(weights, want_weights):
            if same(weights, _run(_without_zero_grad)[0]):
                raise WrongAnswer("the gradients piled up from batch to batch: call optimizer.zero_grad() before "
                                  "each loss.backward()")
            if same(weights, _run(_first_batch_only)[0]):
                raise WrongAnswer("your loop stopped after the first batch: is the `return` inside the for loop? "
                                  "Return after the loop, once every batch is done")
            raise WrongAnswer("the weights after one epoch differ from the reference loop's: for each batch, "
                              "zero the gradients, compute the loss, backward, step, in that order")
        if not isinstance(loss, (int, float)) and not (isinstance(loss, torch.Tensor) and loss.numel() == 1):
            raise WrongAnswer(f"return the epoch's mean loss as a number, not a {type(loss).__name__}")
        if isinstance(loss, torch.Tensor) and loss.requires_grad:
            raise WrongAnswer("you added up the loss tensors, which keeps every batch's graph in memory: add "
                              "loss.item() (a plain number) instead")
        if _takes_device(student) and not _moves_batches(student):
            raise WrongAnswer("move each batch to the device before the model sees it: inputs, labels = "
                              "inputs.to(device), labels.to(device) (on a GPU, the model would get CPU tensors)")
        loss = float(loss)
        tolerance = _loss_tolerance()
        batches = _batch_losses()
        total = sum(mean * n for mean, n in batches)
        for value, message in (
            (total, "you returned the sum of the losses: divide by the number of samples"),
            (total / len(batches), "you divided the summed loss by the number of batches: divide by the number of "
             "samples"),
            (sum(mean for mean, _ in batches), "you added up the batch means: weight each by its batch size "
             "(loss.item() * len(labels)) and divide by the number of samples"),
            (sum(mean for mean, _ in batches) / len(batches), "you averaged the batch means: the last batch is "
             "smaller, so weight each batch's loss by its size (loss.item() * len(labels)) and divide by the number "
             "of samples"),
            (batches[-1][0], "you returned the last batch's loss only: return the mean over the whole epoch"),
        ):
            if abs(loss - value) <= tolerance and abs(loss - want_loss) > tolerance:
                raise WrongAnswer(message)
        if abs(loss - want_loss) > tolerance:
            raise WrongAnswer(f"the loss you return ({loss:.4f}) is not the epoch's mean loss per sample "
                              f"({want_loss:.4f})")

    return run_check("training_loop", "a training loop", student, reference_train_epoch, body,
                     "correct: the same weights and mean loss as the reference loop")
