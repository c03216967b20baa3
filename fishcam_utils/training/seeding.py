"""Seeds for everything, and CPU determinism on request."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python's ``random``, NumPy and torch (every device). With ``deterministic=True`` also
    make torch use deterministic algorithms, so that two runs give identical weights (it raises
    on the few operations that have no deterministic version)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        # cuBLAS needs this to be deterministic; harmless elsewhere.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """The seed of one epoch (and one process): epochs draw their shuffling, augmentation and
    dropout from it, so a run resumed at epoch k draws exactly what an uninterrupted run did."""
    return (seed * 1_000_003 + epoch * 7_919 + rank * 104_729) % 2**63


def seed_worker(worker_id: int) -> None:
    """``DataLoader(worker_init_fn=seed_worker)``: each worker's NumPy and ``random`` follow
    the torch seed the loader gave it."""
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)
