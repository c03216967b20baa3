"""Preprocessing: normalisation checked by hand, augmentation that moves masks with the image."""

import numpy as np
import pytest
import torch

from fishcam_utils.data.transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    denormalize,
    eval_transform,
    masks_to_tv,
    to_display,
    train_transform,
)
from numerics import float32_atol


def _image(h=40, w=40, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.numeric
def test_eval_transform_normalises_as_computed_by_hand():
    image = _image()
    out = eval_transform(40)(image)
    assert out.shape == (3, 40, 40) and out.dtype == torch.float32
    by_hand = (image.astype(np.float64) / 255 - np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)
    # float32: x / 255, the mean and std as float32 numbers, a subtraction and a division: 5 roundings of
    # terms up to (|x| + mean) / std.
    sizes = ((image / 255 + np.array(IMAGENET_MEAN)) / np.array(IMAGENET_STD)).max()
    np.testing.assert_allclose(out.permute(1, 2, 0).numpy(), by_hand, rtol=0, atol=float32_atol(sizes, terms=5))


@pytest.mark.numeric
def test_denormalize_inverts_the_normalisation():
    image = _image()
    out = eval_transform(40)(image)
    # There and back in float32: the 5 roundings above, then times std and plus mean (and their float32
    # values), of terms up to 1 + mean.
    np.testing.assert_allclose(to_display(out), image / 255, rtol=0,
                               atol=float32_atol(1 + max(IMAGENET_MEAN), terms=5 + 4))
    batch = torch.stack([out, out])
    assert to_display(batch).shape == (2, 40, 40, 3)
    assert denormalize(torch.full((3, 2, 2), 100.0)).max() == 1.0


def test_eval_transform_resizes_images_and_masks_together():
    image = _image(30, 50)
    mask = np.zeros((30, 50), bool)
    mask[:, 25:] = True
    out, masks = eval_transform(20)(image, masks_to_tv({"body": mask}))
    assert out.shape == (3, 20, 20) and masks["body"].shape == (20, 20) and masks["body"].dtype == torch.bool
    assert masks["body"][:, 10:].all() and not masks["body"][:, :10].any()


def _grow(mask: torch.Tensor) -> torch.Tensor:
    """The mask grown by one pixel in every direction."""
    return torch.nn.functional.max_pool2d(mask[None, None].float(), 3, 1, 1)[0, 0].bool()


def test_augmentation_moves_the_mask_with_the_image():
    # A white square on black: after any random crop, flip and rotation, the mask must still
    # sit where the square is, up to one pixel at its edge (images are interpolated, masks not).
    image = np.zeros((64, 64, 3), np.uint8)
    mask = np.zeros((64, 64), bool)
    image[20:44, 10:30] = 255
    mask[20:44, 10:30] = True
    transform = train_transform(64)
    moved_somewhere = False
    for seed in range(10):
        torch.manual_seed(seed)
        out, masks = transform(image, masks_to_tv({"evidence": mask}))
        bright = torch.from_numpy(to_display(out).mean(axis=2) > 0.5)
        moved = masks["evidence"].as_subclass(torch.Tensor)
        inner = ~_grow(~moved)
        assert bright[inner].all(), seed
        assert not (bright & ~_grow(moved)).any(), seed
        moved_somewhere |= not torch.equal(moved, torch.from_numpy(mask))
    assert moved_somewhere


def test_strength_zero_is_the_eval_preprocessing():
    image = _image()
    torch.manual_seed(0)
    assert torch.equal(train_transform(40, strength=0)(image), eval_transform(40)(image))
    with pytest.raises(ValueError, match="strength"):
        train_transform(40, strength=-1)


def test_augmentation_varies():
    image = _image()
    transform = train_transform(40)
    outs = [transform(image) for _ in range(4)]
    assert any(not torch.equal(outs[0], o) for o in outs[1:])


def test_upscaled_masks_stay_on_the_pixels_they_mark():
    # Bilinear image and mask must agree after a 64 -> 150 upscale, up to rounding at the rim.
    image = np.zeros((64, 64, 3), np.uint8)
    mask = np.zeros((64, 64), bool)
    image[20:44, 10:30] = 255
    mask[20:44, 10:30] = True
    out, masks = eval_transform(150)(image, masks_to_tv({"body": mask}))
    bright = to_display(out).mean(axis=2) > 0.5
    disagree = bright ^ masks["body"].numpy()
    assert disagree.sum() <= 4, disagree.sum()
