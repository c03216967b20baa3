"""Small helpers several test folders share (fixtures live in ``conftest.py``)."""

from __future__ import annotations

from fishcam_utils.cli import main


def activations_and_gradients(model, layer, x, targets):
    """Explicitly: the layer's output and d(sum of target logits)/d(output), by a plain hook."""
    seen = {}

    def keep(module, inputs, output):
        output.retain_grad()
        seen["a"] = output

    handle = model.get_submodule(layer).register_forward_hook(keep)
    try:
        logits = model(x)
        logits.gather(1, targets[:, None]).sum().backward()
    finally:
        handle.remove()
        model.zero_grad(set_to_none=True)
    return seen["a"].detach(), seen["a"].grad.detach(), logits.detach()


def run_cli(capsys, *args) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of one command (argparse's own exits included)."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as stop:
        code = stop.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err + out
    return code, out, err
