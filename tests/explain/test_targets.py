"""The targets of copies of a batch (test-time augmentation, SmoothGrad): in the order the copies are made."""

from __future__ import annotations

import numpy as np
import torch

from fishcam_utils.explain.targets import repeat_targets


def test_targets_of_copies_follow_the_copies_order():
    classes = torch.tensor([4, 0, 7])
    images = torch.arange(3.0)[:, None]  # image i holds the value i: its copies say which image they are
    by_batch, by_image = torch.cat([images] * 2)[:, 0].long(), images.repeat_interleave(2, 0)[:, 0].long()
    for given in (classes, classes.numpy(), classes.tolist(), tuple(classes.tolist())):
        together = repeat_targets(given, 2)
        side_by_side = repeat_targets(given, 2, interleave=True)
        assert torch.as_tensor(together).tolist() == classes[by_batch].tolist(), type(given)
        assert torch.as_tensor(side_by_side).tolist() == classes[by_image].tolist(), type(given)
    score = lambda logits: logits[0]  # noqa: E731 - one score function for every copy
    for single in (None, 3, np.int64(3), torch.tensor(3), score):
        assert repeat_targets(single, 4) is single and repeat_targets(single, 4, interleave=True) is single
