"""Where a model's starting weights come from: one table, read by build_model."""

from __future__ import annotations

import pytest
import torch

from fishcam_utils.models import WEIGHT_SOURCES, build_model
from fishcam_utils.models.weights import Loaded, Request


def test_the_table_names_every_source_and_build_model_refuses_others():
    assert WEIGHT_SOURCES.names() == ["auto", "imagenet", "course", "pretrained", "random"]
    with pytest.raises(ValueError, match="weights must be one of 'auto', 'imagenet', 'course', 'pretrained', "
                                         "'random', None or a file path, got 3"):
        build_model("fishresnet", 3, weights=3, width=4, blocks=(1, 1))


def test_a_new_source_is_one_entry_and_build_model_loads_it():
    reference = build_model("fishresnet", 3, weights=None, verbose=False, width=4, blocks=(1, 1)).state_dict()
    ones = {k: torch.ones_like(v) if v.is_floating_point() else v for k, v in reference.items()}

    def constant(request: Request) -> Loaded:
        assert request.name == "fishresnet" and request.config["width"] == 4
        return Loaded("ones", ones, pretrained_size=48)

    WEIGHT_SOURCES.register("ones", constant)
    try:
        model = build_model("fishresnet", 3, weights="ones", verbose=False, width=4, blocks=(1, 1))
    finally:
        WEIGHT_SOURCES.unregister("ones")
    assert model.fishcam_weights == "ones" and model.fishcam_pretrained_size == 48
    backbone = [v for k, v in model.state_dict().items() if not k.startswith("fc.") and v.is_floating_point()]
    assert all(bool((v == 1).all()) for v in backbone)
    assert not bool((model.fc.weight == 1).all())  # the head starts fresh whatever the weights held


def test_random_and_none_are_the_same_source():
    a = build_model("fishresnet", 3, weights="random", verbose=False, width=4, blocks=(1, 1))
    b = build_model("fishresnet", 3, weights=None, verbose=False, width=4, blocks=(1, 1))
    assert a.fishcam_weights == b.fishcam_weights == "random" and a.fishcam_pretrained_size is None
