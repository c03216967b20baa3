"""Training a multi-view model's fusion head on features computed once.

With the branches frozen, every epoch of head-only training would run the three branches over every
photo again to get the same numbers. So the branch features are computed once (one pass over the
photos, without gradients) and the head (fusion + classifier, a few thousand parameters) trains on
them for many epochs in seconds. Exactly what ``fit(..., freeze_epochs=k)`` would do in its head
stage, as the fusion zeroes a missing view's features whatever its branch made of the blank photo.
"""

from __future__ import annotations

import copy
import time

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from ..runtime import pick_device
from .seeding import seed_everything


@torch.inference_mode()
def view_features(model: nn.Module, dataset, batch_size: int = 128, device: str | torch.device | None = None,
                  progress: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every fish of a ``MultiViewDataset`` through the branches of ``model`` (a ``MultiViewNet``),
    in eval mode: features (N, V, F) float, present (N, V) bool, labels (N,) long, on the CPU."""
    if not (hasattr(model, "views") and hasattr(model, "branch") and hasattr(model, "head")):
        raise ValueError(f"view_features needs a multi-view model (MultiViewNet: a branch per view and a fusion head), "
                         f"got {type(model).__name__}; a single-view model trains with fit(...)")
    if getattr(dataset, "views", None) is None and not isinstance(dataset[0][0], (tuple, list)):
        raise ValueError("view_features needs whole fish (make_datasets(..., multiview=True)), got a dataset of "
                         "single images")
    device = pick_device(device)
    model = model.to(device).eval()
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False)
    features, present, labels = [], [], []
    for (views, seen), label in tqdm(loader, desc="branch features", disable=not progress, leave=False):
        views, seen = views.to(device), seen.to(device).bool()
        views = views * seen[:, :, None, None, None]  # blanked as in the model's forward
        features.append(torch.stack([model.branch(v)(views[:, i]) for i, v in enumerate(model.views)], 1).cpu())
        present.append(seen.cpu())
        labels.append(torch.as_tensor(label))
    return torch.cat(features), torch.cat(present), torch.cat(labels).long()


def fit_fusion_head(model: nn.Module, train, val, epochs: int = 40, lr: float = 3e-3, batch_size: int = 128,
                    weight_decay: float = 1e-4, seed: int = 0, device: str | torch.device | None = None,
                    progress: bool = True) -> pd.DataFrame:
    """Train the fusion head of ``model`` (a ``MultiViewNet``, branches left as they are) on branch
    features of ``train`` computed once, with the model's view dropout and auxiliary loss; keep the
    epoch with the lowest validation loss. Returns the history: one row per epoch (stage
    ``"head"``, losses, accuracies in [0, 1], seconds)."""
    seed_everything(seed)
    started = time.perf_counter()
    train_f, train_p, train_y = view_features(model, train, device=device, progress=progress)
    val_f, val_p, val_y = view_features(model, val, device=device, progress=progress)
    head = model.head.cpu()
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    criterion = nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(seed)
    rows, best, best_state = [], float("inf"), None
    for epoch in tqdm(range(epochs), desc="fusion head", disable=not progress, leave=False):
        head.train()
        order = torch.randperm(len(train_y), generator=generator)
        total, correct = 0.0, 0
        for batch in order.split(batch_size):
            present = model.drop_views(train_p[batch]) if model.view_dropout > 0 else train_p[batch]
            output = head(train_f[batch], present)
            loss = criterion(output.logits, train_y[batch]) + model.auxiliary_loss(output, train_y[batch], criterion)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
            correct += (output.logits.argmax(1) == train_y[batch]).sum().item()
        head.eval()
        with torch.no_grad():
            logits = head(val_f, val_p).logits
        val_acc = (logits.argmax(1) == val_y).float().mean().item()
        rows.append({"epoch": epoch + 1, "stage": "head", "lr": lr, "train_loss": total / len(train_y),
                     "train_acc": correct / len(train_y), "val_loss": criterion(logits, val_y).item(),
                     "val_acc": val_acc, "seconds": time.perf_counter() - started})
        # Kept by validation loss, not accuracy: fused accuracy saturates within a few epochs, while
        # the loss (and with it how the views are weighted) keeps improving.
        if rows[-1]["val_loss"] < best:
            best, best_state = rows[-1]["val_loss"], copy.deepcopy(head.state_dict())
    head.load_state_dict(best_state)
    head.to(next(model.branch(model.views[0]).parameters()).device)
    return pd.DataFrame(rows)
