"""Speed of our CAMs and guided backpropagation against a plain forward pass and other libraries.

On a seeded torchvision ResNet-18 (random weights, 9 output classes like the fish dataset, eval
mode), CPU, 2 torch threads, random normal 224x224 images, for each batch size:

1. outputs are checked equal first (before any timing): our Grad-CAM against pytorch-grad-cam,
   captum ``LayerGradCam`` and torchcam, our guided backprop against captum ``GuidedBackprop``
   (each library on its own deep copy of the model, since they leave hooks or change modes);
2. then, after warm-up calls, every round times each method once (``--inner`` calls averaged),
   in a rotating order (interleaved, so that load from other work on the machine hits all methods
   alike), and the median (and range) of the per-round ratios is reported against its goal.

    python bench/cam_bench.py                      # batch sizes 1 and 16 (15 and 10 rounds)
    python bench/cam_bench.py --quick              # smoke run: 3 rounds, batches 1 and 2
    python bench/cam_bench.py --batches 1 --rounds 30 --inner 5

3. the methods users pick pytorch-grad-cam for (Grad-CAM++, LayerCAM, HiResCAM, XGrad-CAM, Eigen-CAM,
   Eigen-Grad-CAM, Score-CAM, Ablation-CAM), at ``layer4``, one image, the predicted class: outputs checked
   equal (the Eigen methods up to the sign pytorch-grad-cam leaves to the SVD), then ours and theirs timed
   in alternating order, ``--peer-rounds`` rounds; goal: ours not slower (pytorch-grad-cam / ours >= 1).

Writes bench/out/cam_bench.md and prints it. Exits with status 1 (before timing anything) when
an output check fails.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from peers import require
from torchvision.models import resnet18

from fishcam_utils.explain.cam import GradCAM, make_cam, normalize_maps, upsample

HERE = Path(__file__).resolve().parent
NUM_CLASSES = 9
SIZE = 224

try:  # guided.py is newer than the rest; the guided rows are skipped if it cannot be imported
    from fishcam_utils.explain.guided import GuidedBackprop as OurGuided

    GUIDED_ERROR = None
except Exception as exc:  # noqa: BLE001 - any import failure just skips those rows
    OurGuided = None
    GUIDED_ERROR = f"{type(exc).__name__}: {exc}"


# ratio name -> (numerator, denominator, goal text, test on the median ratio)
RATIOS: dict[str, tuple[str, str, str, Callable[[float], bool] | None]] = {
    "ours Grad-CAM / forward": ("ours", "forward", "<= 1.15", lambda r: r <= 1.15),
    "pytorch-grad-cam / ours": ("pytorch-grad-cam", "ours", ">= 2.5", lambda r: r >= 2.5),
    "ours / captum LayerGradCam": ("ours", "captum", "<= 1.0", lambda r: r <= 1.0),
    "ours / torchcam": ("ours", "torchcam", "(report)", None),
    "9 separate calls / all_classes (layer3)": ("9 separate (layer3)", "all_classes (layer3)", ">= 3",
                                                 lambda r: r >= 3.0),
    "ours guided / captum guided": ("ours guided", "captum guided", "<= 1.0", lambda r: r <= 1.0),
}


def build_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return resnet18(weights=None, num_classes=NUM_CLASSES).eval()


def make_inputs(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1000 + batch)
    x = torch.randn(batch, 3, SIZE, SIZE, generator=generator)
    t = (torch.arange(batch) * 4 + 1) % NUM_CLASSES  # varied targets, not only the predicted class
    return x, t


def load() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "?"


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return {"cpu": cpu, "cores": str(usable), "arch": platform.machine(), "python": platform.python_version(),
            "torch": torch.__version__, "threads": str(torch.get_num_threads()), "load_start": load()}


# --- 1. outputs first ----------------------------------------------------------------------------

def check_outputs(model: torch.nn.Module, x: torch.Tensor, t: torch.Tensor) -> list[tuple[str, float, float, bool]]:
    """(what, max abs difference, tolerance, ok) for every comparison."""
    from captum.attr import GuidedBackprop as CaptumGuided
    from captum.attr import LayerGradCam
    from pytorch_grad_cam import GradCAM as PGCGradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    from torchcam.methods import GradCAM as TorchcamGradCAM

    results = []

    def record(what: str, ours: torch.Tensor, theirs: torch.Tensor, tol: float) -> None:
        theirs = torch.as_tensor(theirs).to(ours.dtype)
        if ours.shape != theirs.shape:
            results.append((f"{what} (shapes {tuple(ours.shape)} vs {tuple(theirs.shape)})", float("inf"), tol, False))
            return
        diff = (ours - theirs).abs().max().item()
        results.append((what, diff, tol, diff <= tol))

    ours = GradCAM(model, "layer4")(x, t)

    copy_pgc = copy.deepcopy(model)
    with PGCGradCAM(model=copy_pgc, target_layers=[copy_pgc.layer4]) as pgc:
        theirs = pgc(input_tensor=x, targets=[ClassifierOutputTarget(int(k)) for k in t])
    record("Grad-CAM maps vs pytorch-grad-cam", ours.maps, torch.from_numpy(theirs), 1e-4)

    copy_captum = copy.deepcopy(model)
    theirs = LayerGradCam(copy_captum, copy_captum.layer4).attribute(x, target=t, relu_attributions=True)[:, 0]
    record("relu(raw) vs captum LayerGradCam", torch.relu(ours.raw), theirs.detach(), 1e-5)

    copy_tc = copy.deepcopy(model)
    extractor = TorchcamGradCAM(copy_tc, target_layer="layer4")
    try:
        scores = copy_tc(x)
        (theirs,) = extractor(class_idx=t.tolist(), scores=scores)
    finally:
        extractor.remove_hooks()
    record("normalize_maps(relu(raw)) vs torchcam", normalize_maps(torch.relu(ours.raw)), theirs.detach(), 1e-4)

    if OurGuided is not None:
        ours_g = OurGuided(model)(x, t).gradients
        copy_g = copy.deepcopy(model)
        theirs = CaptumGuided(copy_g).attribute(x, target=t)
        record("guided backprop vs captum GuidedBackprop", ours_g, theirs.detach(), 1e-5)
        scale = theirs.abs().max().item()
        results[-1] = (results[-1][0] + f" (captum's largest |value| {scale:.3g})", *results[-1][1:])
    return results


# --- 2. timings ----------------------------------------------------------------------------------

def methods(model: torch.nn.Module, x: torch.Tensor,
            t: torch.Tensor) -> tuple[dict[str, Callable[[], object]], Callable[[], None]]:
    """The timed callables (everything built once, outside the timing) and a clean-up."""
    from captum.attr import GuidedBackprop as CaptumGuided
    from captum.attr import LayerGradCam
    from pytorch_grad_cam import GradCAM as PGCGradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
    from torchcam.methods import GradCAM as TorchcamGradCAM

    ours = GradCAM(model, "layer4")
    ours3 = GradCAM(model, "layer3")  # the model has 9 classes: all_classes gives 9 maps

    copy_pgc = copy.deepcopy(model)
    pgc = PGCGradCAM(model=copy_pgc, target_layers=[copy_pgc.layer4])
    pgc_targets = [ClassifierOutputTarget(int(k)) for k in t]

    copy_captum = copy.deepcopy(model)
    captum = LayerGradCam(copy_captum, copy_captum.layer4)

    copy_tc = copy.deepcopy(model)
    extractor = TorchcamGradCAM(copy_tc, target_layer="layer4")
    class_idx = t.tolist()

    def forward():
        with torch.no_grad():
            return model(x)

    def torchcam():
        return extractor(class_idx=class_idx, scores=copy_tc(x))

    def separate():
        return [ours3(x, targets=k) for k in range(NUM_CLASSES)]

    table: dict[str, Callable[[], object]] = {
        "forward": forward,
        "ours": lambda: ours(x, t),
        "pytorch-grad-cam": lambda: pgc(input_tensor=x, targets=pgc_targets),
        "captum": lambda: captum.attribute(x, target=t, relu_attributions=True),
        "torchcam": torchcam,
        "all_classes (layer3)": lambda: ours3.all_classes(x),
        "9 separate (layer3)": separate,
    }
    if OurGuided is not None:
        guided = OurGuided(model)
        copy_g = copy.deepcopy(model)
        captum_guided = CaptumGuided(copy_g)
        table["ours guided"] = lambda: guided(x, t)
        table["captum guided"] = lambda: captum_guided.attribute(x, target=t)

    def cleanup() -> None:
        extractor.remove_hooks()
        pgc.activations_and_grads.release()

    return table, cleanup


class OtherLoad:
    """Share of the machine's CPU time used by *other* processes since ``start()`` (0 = idle, 1 = all
    cores busy with other work), from /proc/stat minus this process's own CPU time; None if unknown."""

    def __init__(self) -> None:
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.cores = os.cpu_count() or 1

    @staticmethod
    def _busy_jiffies() -> int | None:
        try:
            fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        except (OSError, ValueError):
            return None
        return sum(fields[:8]) - fields[3] - fields[4]  # user..steal, less idle and iowait

    def start(self) -> None:
        times = os.times()
        self.t0, self.own0, self.busy0 = time.perf_counter(), times.user + times.system, self._busy_jiffies()

    def share(self) -> float | None:
        busy = self._busy_jiffies()
        if busy is None or self.busy0 is None:
            return None
        times = os.times()
        wall = time.perf_counter() - self.t0
        other = (busy - self.busy0) / self.tick - (times.user + times.system - self.own0)
        return min(1.0, max(0.0, other / (wall * self.cores)))


def time_rounds(table: dict[str, Callable[[], object]], rounds: int, inner: int, warmup: int,
                label: str) -> tuple[list[dict[str, float]], list[float | None]]:
    """Seconds per call of every method, one dict per round (the order rotates each round), and
    the share of the CPU that other processes used during each round."""
    names = list(table)
    for _ in range(warmup):
        for name in names:
            table[name]()
    out, others = [], []
    meter = OtherLoad()
    for r in range(rounds):
        shift = r % len(names)
        order = names[shift:] + names[:shift]
        seconds = {}
        meter.start()
        for name in order:
            fn = table[name]
            start = time.perf_counter()
            for _ in range(inner):
                fn()
            seconds[name] = (time.perf_counter() - start) / inner
        out.append(seconds)
        others.append(meter.share())
        busy = "?" if others[-1] is None else f"{others[-1]:.0%}"
        print(f"  {label} round {r + 1}/{rounds} (other processes {busy} of the CPU): "
              + ", ".join(f"{n} {seconds[n] * 1e3:.0f}" for n in names) + " ms", flush=True)
    return out, others


# --- 2b. the methods peers offer ------------------------------------------------------------------

PEERS = {"gradcam++": "GradCAMPlusPlus", "layercam": "LayerCAM", "hirescam": "HiResCAM", "xgradcam": "XGradCAM",
         "eigencam": "EigenCAM", "eigengradcam": "EigenGradCAM", "scorecam": "ScoreCAM", "ablationcam": "AblationCAM"}
GRADCAM_PP_DIFF: dict[str, float] = {}  # the timed pair's difference, for the notes
GRADCAM_PP_SCALE = 1e4  # the logits' factor under which pytorch-grad-cam's 1e-6 no longer shows
# Each library's own default batch of masked or ablated copies: what a user gets without choosing.
PEER_OPTIONS = {"ablationcam": {"batch_size": 64}}
PEER_LAYER = "layer4"


def peer_calls(model: torch.nn.Module, x: torch.Tensor,
               only: tuple[str, ...] | None = None) -> tuple[dict[str, tuple[Callable, Callable]], Callable]:
    """method -> (ours, pytorch-grad-cam's) callables explaining the predicted classes, and a clean-up."""
    import pytorch_grad_cam as pgc
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    with torch.no_grad():
        predicted = model(x).argmax(1)
    targets = [ClassifierOutputTarget(int(k)) for k in predicted]
    calls, objects = {}, []
    for name, cls in PEERS.items():
        if only is not None and name not in only:
            continue
        options = PEER_OPTIONS.get(name, {})
        ours = make_cam(name, model, PEER_LAYER, progress=False, **options)
        twin = copy.deepcopy(model)
        theirs = getattr(pgc, cls)(model=twin, target_layers=[twin.get_submodule(PEER_LAYER)], **options)
        objects.append(theirs)
        calls[name] = (lambda ours=ours: ours(x, predicted),
                       lambda theirs=theirs: theirs(input_tensor=x, targets=targets))
    return calls, lambda: [o.activations_and_grads.release() for o in objects]


def check_peers(calls, model: torch.nn.Module | None = None,
                x: torch.Tensor | None = None) -> list[tuple[str, float, float, bool]]:
    rows = []
    for name, (ours, theirs) in calls.items():
        if name == "gradcam++" and model is not None:
            # pytorch-grad-cam adds 1e-6 to each coefficient's denominator, which moves this random model's maps
            # visibly (the diff of the timed pair is in the notes); with logits GRADCAM_PP_SCALE times larger it is
            # negligible, and the maps must agree.
            scaled = copy.deepcopy(model)
            with torch.no_grad():
                scaled.fc.weight.mul_(GRADCAM_PP_SCALE)
                scaled.fc.bias.mul_(GRADCAM_PP_SCALE)
            pair, release = peer_calls(scaled, x, only=("gradcam++",))
            ours, theirs = pair["gradcam++"]
            try:
                result, other = ours(), torch.from_numpy(theirs()).float()
            finally:
                release()
            diff = (result.maps - other).abs().max().item()
            what = f"gradcam++ maps vs pytorch-grad-cam (logits x {GRADCAM_PP_SCALE:g})"
            rows.append((what, diff, 1e-4, diff <= 1e-4))
            plain_ours, plain_theirs = calls[name]
            GRADCAM_PP_DIFF["diff"] = (plain_ours().maps - torch.from_numpy(plain_theirs())).abs().max().item()
            continue
        result, other = ours(), torch.from_numpy(theirs()).float()
        diff = (result.maps - other).abs().max().item()
        if name.startswith("eigen"):  # the component's sign is the SVD routine's choice in pytorch-grad-cam
            flipped = normalize_maps(upsample(torch.relu(-result.raw), tuple(result.maps.shape[-2:])))
            diff = min(diff, (flipped - other).abs().max().item())
        rows.append((f"{name} maps vs pytorch-grad-cam", diff, 1e-4, diff <= 1e-4))
    return rows


# A timing of a fast method repeats its call until it lasts about this long: one call of tens of milliseconds is
# at the mercy of a scheduler tick on a shared 2-core machine.
PEER_TIMING_SECONDS = 0.5


def time_peers(calls, rounds: int) -> dict[str, list[float]]:
    """pytorch-grad-cam's seconds / ours, per round, ours and theirs alternating first; a fast pair is called
    several times per timing (the same count for both), so each timing lasts about PEER_TIMING_SECONDS."""
    ratios: dict[str, list[float]] = {name: [] for name in calls}
    for name, (ours, theirs) in calls.items():
        start = time.perf_counter()
        ours(), theirs()  # warm-up, and how long one call of each takes
        repeats = max(1, math.ceil(PEER_TIMING_SECONDS / ((time.perf_counter() - start) / 2)))
        for r in range(rounds):
            seconds = {}
            for who, fn in ((("ours", ours), ("theirs", theirs)) if r % 2 == 0
                            else (("theirs", theirs), ("ours", ours))):
                start = time.perf_counter()
                for _ in range(repeats):
                    fn()
                seconds[who] = (time.perf_counter() - start) / repeats
            ratios[name].append(seconds["theirs"] / seconds["ours"])
            print(f"  {name} round {r + 1}/{rounds}: ours {seconds['ours'] * 1e3:.0f} ms, pytorch-grad-cam "
                  f"{seconds['theirs'] * 1e3:.0f} ms (mean of {repeats} calls)", flush=True)
    return ratios


def peer_report(checks, ratios) -> list[str]:
    lines = ["### The methods peers offer (batch 1, `layer4`, the predicted class)", "",
             "| method | max abs diff of maps | pytorch-grad-cam / ours, median | range | goal | met |",
             "|---|---|---|---|---|---|"]
    for (what, diff, _, _), (name, values) in zip(checks, ratios.items()):
        name = f"{name} (logits x {GRADCAM_PP_SCALE:g} for the check)" if "logits x" in what else name
        med = statistics.median(values)
        lines.append(f"| {name} | {diff:.1e} | {med:.2f} | {min(values):.2f}-{max(values):.2f} | >= 1 | "
                     f"{'yes' if med >= 1 else '**no**'} |")
    notes = {
        "ablationcam": "pytorch-grad-cam's Ablation-CAM runs the whole network once per channel; ours runs the "
                       "layers before `layer4` once per 64 channels and only the rest (pooling and the linear head) "
                       "on the ablated copies.",
        "eigencam": "The Eigen methods' maps agree up to the principal component's sign.",
        "gradcam++": "Grad-CAM++: pytorch-grad-cam adds 1e-6 to each coefficient's denominator, ours follows the "
                     "paper's formula, so on this random model, whose gradients are small, the timed maps differ by "
                     f"up to {GRADCAM_PP_DIFF.get('diff', float('nan')):.2f}; the check above is on a copy with "
                     f"logits {GRADCAM_PP_SCALE:g} times larger, where their 1e-6 is negligible "
                     "(tests/explain/test_cam.py bounds the difference).",
        "scorecam": "Score-CAM: each library at its default batch of masked images (ours 16, theirs 16).",
    }
    said = [text for name, text in notes.items() if name in ratios or (name == "eigencam" and "eigengradcam" in ratios)]
    lines += ["", "A method's call is repeated within a timing until it lasts about "
              f"{PEER_TIMING_SECONDS:g} s (the same count for both), so fast methods are not timed by one call. "
              + " ".join(said), ""]
    return lines


# --- 3. report -----------------------------------------------------------------------------------

def fmt_ratio(value: float) -> str:
    return f"{value:.2f}"


def report(info, checks, timings, elapsed) -> str:
    lines = [
        "## CAM speed (bench/cam_bench.py)",
        "",
        f"torchvision `resnet18(weights=None)` seeded (`torch.manual_seed(0)`), {NUM_CLASSES} output classes, "
        f"`eval()`, random normal {SIZE}x{SIZE} images, CPU, {info['threads']} torch threads. "
        f"Machine: {info['cpu']}, {info['cores']} cores ({info['arch']}), Python {info['python']}, "
        f"torch {info['torch']}; {dt.date.today().isoformat()}, {elapsed / 60:.1f} min in all; "
        f"1-min load average {info['load_start']} at the start, {load()} at the end.",
        "",
        "Timed per round, in a rotating order, after warm-up calls: a plain forward (`torch.no_grad()`); our "
        "`GradCAM(model, \"layer4\")(x, t)` (maps at input size, min-max normalised); pytorch-grad-cam `GradCAM` "
        "(object built once; it runs a full `loss.backward()` into every parameter); captum `LayerGradCam.attribute"
        "(relu_attributions=True)`; torchcam `GradCAM` (forward + extractor call, hooks registered once); all 9 "
        "classes at `layer3` by our `all_classes` vs 9 separate calls of ours; our `GuidedBackprop` vs captum's. "
        "Ratios are per round, then the median (range = min-max over rounds).",
        "",
    ]
    if GUIDED_ERROR:
        lines += [f"Guided backprop rows skipped: `fishcam_utils.explain.guided` did not import ({GUIDED_ERROR}).", ""]

    lines += ["Outputs checked before timing (max abs difference):", "",
              "| batch | check | max abs diff | tolerance | ok |", "|---|---|---|---|---|"]
    for batch, rows in checks.items():
        for what, diff, tol, ok in rows:
            lines.append(f"| {batch} | {what} | {diff:.2e} | {tol:.0e} | {'yes' if ok else 'NO'} |")
    lines.append("")
    if not timings:
        return "\n".join(lines)

    lines += ["| measure | batch | median ratio | range (min-max) | goal | met | ratio of best times |",
              "|---|---|---|---|---|---|---|"]
    for measure, (num, den, goal, test) in RATIOS.items():
        for batch, (rounds, _, _) in timings.items():
            if num not in rounds[0] or den not in rounds[0]:
                continue
            ratios = [r[num] / r[den] for r in rounds]
            med = statistics.median(ratios)
            met = "-" if test is None else ("yes" if test(med) else "**no**")
            if test is not None and test(med) != test(round(med, 2)):
                met += f" ({med:.4f})"  # the rounded figure alone would look like the other verdict
            best = min(r[num] for r in rounds) / min(r[den] for r in rounds)
            lines.append(f"| {measure} | {batch} | {fmt_ratio(med)} | "
                         f"{fmt_ratio(min(ratios))}-{fmt_ratio(max(ratios))} "
                         f"| {goal} | {met} | {fmt_ratio(best)} |")
    lines += ["", "Goals are judged on the median ratio. The last column (each method's fastest round, divided) is "
              "a cross-check that ignores rounds slowed by other work on the machine.", ""]
    for batch, (_, _, others) in timings.items():
        known = [o for o in others if o is not None]
        if known:
            lines.append(f"- batch {batch}: other processes used a median {statistics.median(known):.0%} "
                         f"(max {max(known):.0%}) of the CPU during a round.")
    lines.append("")

    batches = list(timings)
    names = list(next(iter(timings.values()))[0][0])
    lines += ["Median milliseconds per call (rounds x calls per timing):", "",
              "| method | " + " | ".join(f"batch {b} ({len(timings[b][0])}x{timings[b][1]})" for b in batches) + " |",
              "|---|" + "---|" * len(batches)]
    for name in names:
        cells = [f"{statistics.median(r[name] for r in timings[b][0]) * 1e3:.1f}" for b in batches]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Rerun: `.venv/bin/python bench/cam_bench.py` (about "
              f"{elapsed / 60:.0f} min; `--quick` for a smoke run; `--help` for rounds and batch sizes).", ""]
    return "\n".join(lines)


def checked_peer_ratios(model: torch.nn.Module, args: argparse.Namespace) -> tuple[list, dict[str, list[float]]]:
    """The methods peers offer (``--methods``, else all), checked, then timed only if every check holds."""
    x, _ = make_inputs(1)
    calls, cleanup = peer_calls(model, x, only=tuple(args.methods) if args.methods else None)
    try:
        checks = check_peers(calls, model, x)
        for what, diff, tol, ok in checks:
            print(f"batch 1: {what}: max abs diff {diff:.2e} (tolerance {tol:.0e}) {'ok' if ok else 'FAILED'}")
        return checks, time_peers(calls, args.peer_rounds) if all(ok for *_, ok in checks) else {}
    finally:
        cleanup()


def run_peers(model: torch.nn.Module, args: argparse.Namespace, info: dict, start: float) -> int:
    """Part 3 alone: check, then time, the methods peers offer; the report in cam_peers.md. Returns the exit
    status (1 when an output check failed)."""
    checks, ratios = checked_peer_ratios(model, args)
    head = [f"torchvision `resnet18(weights=None)` seeded, {NUM_CLASSES} classes, `eval()`, one random normal "
            f"{SIZE}x{SIZE} image, CPU, {info['threads']} torch threads; {info['cpu']}, torch {info['torch']}; "
            f"{dt.date.today().isoformat()}; {args.peer_rounds} rounds; {(time.perf_counter() - start) / 60:.1f} min "
            f"in all.", ""]
    if ratios:
        text = "\n".join(head + peer_report(checks, ratios))
    else:
        text = "\n".join(head + ["**Output checks failed; nothing was timed.**"]
                         + [f"- {w}: {d:.2e}" for w, d, _, ok in checks if not ok]) + "\n"
    print(text)
    (args.out / "cam_peers.md").write_text(text)
    return 0 if ratios else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, nargs="+", default=None, help="batch sizes (default 1 16)")
    parser.add_argument("--rounds", type=int, nargs="+", default=None,
                        help="interleaved rounds, one value per batch size or one for all "
                             "(default 15 for batches up to 4, 10 above)")
    parser.add_argument("--inner", type=int, nargs="+", default=None,
                        help="calls per timing, averaged; one per batch size or one for all "
                             "(default 3 for batch 1, 1 otherwise)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls of each method first (default 2)")
    parser.add_argument("--quick", action="store_true", help="smoke run: batches 1 2, 3 rounds, 1 warm-up")
    parser.add_argument("--out", type=Path, default=HERE / "out", help="report folder (default bench/out)")
    parser.add_argument("--methods", nargs="+", choices=sorted(PEERS), default=None,
                        help="with --peers-only: these methods only (default: all the peers offer)")
    parser.add_argument("--peers-only", action="store_true",
                        help="only part 3, the methods peers offer (checked, then timed), into cam_peers.md")
    parser.add_argument("--peer-rounds", type=int, default=5,
                        help="rounds for the methods peers offer (default 5; Ablation-CAM's peer takes seconds a call)")
    args = parser.parse_args()
    require("pytorch_grad_cam", "captum", "torchcam")
    torch.set_num_threads(2)

    if args.quick:
        args.batches = args.batches or [1, 2]
        args.rounds = args.rounds or [3]
        args.inner = args.inner or [1]
        args.warmup = min(args.warmup, 1)
        args.peer_rounds = min(args.peer_rounds, 2)
    batches = args.batches or [1, 16]

    def per_batch(values, default):
        if values is None:
            return [default(b) for b in batches]
        if len(values) == 1:
            return values * len(batches)
        if len(values) != len(batches):
            parser.error("give one value, or one per batch size")
        return values

    rounds = per_batch(args.rounds, lambda b: 15 if b <= 4 else 10)
    inner = per_batch(args.inner, lambda b: 3 if b == 1 else 1)

    start = time.perf_counter()
    info = machine()
    model = build_model()
    if args.peers_only:
        args.out.mkdir(parents=True, exist_ok=True)
        sys.exit(run_peers(model, args, info, start))

    checks = {}
    for batch in batches:
        x, t = make_inputs(batch)
        checks[batch] = check_outputs(model, x, t)
        for what, diff, tol, ok in checks[batch]:
            print(f"batch {batch}: {what}: max abs diff {diff:.2e} (tolerance {tol:.0e}) {'ok' if ok else 'FAILED'}")
    failed = [(b, w) for b, rows in checks.items() for w, _, _, ok in rows if not ok]
    args.out.mkdir(parents=True, exist_ok=True)
    if failed:
        text = report(info, checks, {}, time.perf_counter() - start)
        text += "\n**Output checks failed; nothing was timed.**\n"
        print(text)
        (args.out / "cam_bench.md").write_text(text)
        sys.exit(1)

    timings = {}
    for batch, n_rounds, n_inner in zip(batches, rounds, inner):
        x, t = make_inputs(batch)
        table, cleanup = methods(model, x, t)
        try:
            per_round, others = time_rounds(table, n_rounds, n_inner, args.warmup, f"batch {batch}")
            timings[batch] = (per_round, n_inner, others)
        finally:
            cleanup()

    peer_checks, peer_ratios = checked_peer_ratios(model, args)

    text = report(info, checks, timings, time.perf_counter() - start)
    if peer_ratios:
        text += "\n" + "\n".join(peer_report(peer_checks, peer_ratios))
    else:
        text += "\n**The peer methods' output checks failed; they were not timed.**\n" + "\n".join(
            f"- {w}: {d:.2e}" for w, d, _, ok in peer_checks if not ok) + "\n"
    print(text)
    (args.out / "cam_bench.md").write_text(text)
    if not peer_ratios:
        sys.exit(1)


if __name__ == "__main__":
    main()
