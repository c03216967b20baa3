"""TrainConfig is the one home of fit's options: the `fishcam train` flags are made from its fields,
with the same defaults and the same ranges, and validate() accepts what fit can use."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fishcam_utils.cli import build_parser
from fishcam_utils.training import TrainConfig, make_config
from fishcam_utils.training.config import command_line_options, flag_of


def test_the_command_line_defaults_are_the_configs():
    args = build_parser().parse_args(["train", "--data", "d"])
    defaults = TrainConfig()
    for spec in command_line_options():
        assert getattr(args, spec.name) == getattr(defaults, spec.name), spec.name
    assert {flag_of(s) for s in command_line_options()} >= {"--epochs", "--lr", "--schedule", "--workers", "--momentum"}


@pytest.mark.parametrize("flag, value, option", [("--label-smoothing", "1", "label_smoothing"), ("--lr", "0", "lr"),
                                                 ("--epochs", "0", "epochs"), ("--momentum", "1.5", "momentum"),
                                                 ("--schedule", "linear", "schedule"), ("--patience", "0", "patience")])
def test_a_value_out_of_range_is_refused_alike_on_the_command_line_and_in_python(flag, value, option, capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--data", "d", flag, value])
    assert flag in capsys.readouterr().err
    typed = type(getattr(TrainConfig(), option) or 1)
    with pytest.raises(ValueError, match=f"{option} must be"):
        make_config(**{option: value if option == "schedule" else typed(float(value))})


def test_class_weights_are_balanced_or_numbers_of_any_kind():
    for weights in ("balanced", None, [1.0, 2.0], (1, 2), np.array([1.0, 2.0]), torch.tensor([1.0, 2.0])):
        make_config(class_weights=weights)
    with pytest.raises(ValueError, match="class_weights must be one of \\('balanced',\\) or a sequence of numbers"):
        make_config(class_weights="inverse")
