"""Checkers for notebook 08's sanity check: Spearman's rank correlation, and the cascading randomisation loop."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from scipy.stats import rankdata
from torch import nn

from ..explain.cam import GradCAM
from ..explain.judging.experiments import randomized_copies
from ..explain.judging.metrics import spearman as package_spearman
from .core import Mistake, Verdict, WrongAnswer, call, check_shape, diagnose, run_check, same


def _case() -> tuple[torch.Tensor, torch.Tensor]:
    """Four pairs of 5 x 6 maps: after a ReLU (many ties at 0), without ties, one whose second map is
    constant (no ranking: NaN), and two coarse maps (blocks of equal values, as an upsampled CAM has)."""
    generator = torch.Generator().manual_seed(21)
    a, b = torch.randn(4, 5, 6, generator=generator), torch.randn(4, 5, 6, generator=generator)
    a[0], b[0] = a[0].relu(), (b[0] + 0.3).relu()
    b[2] = 0.5
    coarse = torch.randint(0, 3, (2, 1, 3, 3), generator=generator).float()
    blocks = coarse.repeat_interleave(2, 2).repeat_interleave(2, 3)[:, 0, :5, :6]  # 2 x 2 blocks, cut to 5 x 6
    a[3], b[3] = blocks[0], blocks[1]
    return a, b


def _pearson(x: torch.Tensor, y: torch.Tensor, centre: bool = True) -> torch.Tensor:
    x, y = x.double(), y.double()
    if centre:
        x, y = x - x.mean(1, keepdim=True), y - y.mean(1, keepdim=True)
    denominator = x.norm(dim=1) * y.norm(dim=1)
    return torch.where(denominator > 0, (x * y).sum(1) / denominator.clamp_min(1e-300), torch.nan).float()


def _ranks(x: torch.Tensor, per_map: bool = True) -> torch.Tensor:
    """Mean ranks of each map's pixels, or (``per_map=False``) of the whole batch's at once: (N, H*W)."""
    flat = x.flatten(1).numpy()
    return torch.from_numpy(rankdata(flat, axis=1) if per_map else rankdata(flat).reshape(flat.shape))


def _shortcut(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """1 - 6 sum d^2 / (n (n^2 - 1)) of the mean ranks: Spearman's formula for maps without ties."""
    ra, rb = _ranks(a), _ranks(b)
    n = ra.shape[1]
    return (1 - 6 * (ra - rb).pow(2).sum(1) / (n * (n * n - 1))).float()


def _no_ties() -> tuple[torch.Tensor, torch.Tensor]:
    """Three pairs of 5 x 6 maps of distinct values: no ties, no constant map."""
    generator = torch.Generator().manual_seed(22)
    return torch.randn(3, 5, 6, generator=generator), torch.randn(3, 5, 6, generator=generator)


def spearman(student: Callable) -> Verdict:
    """Check ``student(a (N, ...), b (N, ...)) -> (N,)``: Spearman's rank correlation of each pair of maps,
    ties sharing their mean rank, NaN where a map is constant (the package's ``spearman``). First on maps
    without ties, then with ties and a constant map, so that what goes wrong with ties is told apart."""
    mistakes = [
        Mistake("that is Pearson's correlation of the values: Spearman's correlates their *ranks*",
                lambda a, b: _pearson(a.flatten(1), b.flatten(1))),
        Mistake("you ranked the whole batch at once: rank each map on its own (rankdata(..., axis=1) on (N, H*W))",
                lambda a, b: _pearson(_ranks(a, per_map=False), _ranks(b, per_map=False))),
        Mistake("subtract each map's mean rank before you multiply: without it you get the cosine of the ranks, "
                "not their correlation", lambda a, b: _pearson(_ranks(a), _ranks(b), centre=False)),
    ]

    def body() -> None:
        a, b = _no_ties()
        want = package_spearman(a, b)
        got = call(student, *_no_ties())
        if isinstance(got, (int, float)) or (isinstance(got, torch.Tensor) and got.numel() == 1):
            raise WrongAnswer(f"return one correlation per pair of maps, ({len(a)},), not their mean")
        got = torch.as_tensor(got)
        check_shape(got, want, "the correlations")
        diagnose(got, want, mistakes, _no_ties, "the correlations (of maps without ties)")
        a, b = _case()
        want = package_spearman(a, b)
        got = torch.as_tensor(call(student, *_case()))
        check_shape(got, want, "the correlations")
        ranked = ~want.isnan()  # the pairs where both maps have a ranking
        if not same(got[ranked], want[ranked]):
            if same(got[ranked], _shortcut(a, b)[ranked]):
                raise WrongAnswer("1 - 6 sum d^2 / (n(n^2 - 1)) holds only when no two pixels tie, and after a ReLU "
                                  "many do: take Pearson's correlation of the ranks instead")
            raise WrongAnswer("right on maps without ties, wrong on maps with them (a CAM after its ReLU has many "
                              "zeros): tied pixels must share their mean rank, as scipy's rankdata gives them")
        constant = (~ranked).nonzero()[:, 0].tolist()
        if not got[~ranked].isnan().all():
            value = float(got[~ranked][0])
            raise WrongAnswer(f"a constant map (pair {constant}) has no ranking: its correlation is NaN (0 / 0), not "
                              f"{value:g}; leave it NaN, and average with nanmean later")

    return run_check("spearman", "Spearman's rank correlation", student, package_spearman, body,
                     "correct: the same correlations as the package's spearman")


class _StagedNet(nn.Module):
    """Stages ``stem`` and ``block`` (convolution, BatchNorm with statistics of its own, ReLU) and ``fc``
    after global average pooling; seeded, eval mode."""  # (a stage is a container: resetting it alone does nothing)

    def __init__(self) -> None:
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(31)
            self.stem = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU())
            self.block = nn.Sequential(nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU())
            self.fc = nn.Linear(8, 5)
            for bn in (self.stem[1], self.block[1]):  # as if trained: statistics that a reset would forget
                bn.running_mean.copy_(torch.randn(bn.num_features) * 0.5)
                bn.running_var.copy_(torch.rand(bn.num_features) + 0.5)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.block(self.stem(x)).mean((2, 3)))


STAGES = ("fc", "block", "stem")  # top down
SEED = 3


def _cascade_case() -> tuple[nn.Module, list[str], Callable[[nn.Module], torch.Tensor], int]:
    """The net, its stages, a Grad-CAM at ``block`` for five images of fixed classes (image 4's map is
    zero everywhere, as a class with no evidence gets: no ranking, NaN), and the seed."""
    x = torch.randn(5, 3, 8, 10, generator=torch.Generator().manual_seed(32))

    def explain(model: nn.Module) -> torch.Tensor:
        maps = GradCAM(model, "block")(x, targets=[0, 1, 2, 3, 4], normalize=None).maps
        return maps * torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0])[:, None, None]

    return _StagedNet(), list(STAGES), explain, SEED


def _loop(model: nn.Module, stages: Sequence[str], explain: Callable, seed: int, copies: str = "one",
          order: str = "given", seeding: str = "once", against: str = "trained",
          inside: bool = True, average: str = "nanmean") -> list[float]:
    """Cascading randomisation written out, with one step done another way (the typical slips)."""
    trained = explain(model)
    previous, randomized, rhos = trained, copy.deepcopy(model), []
    torch.manual_seed(0 if seeding == "zero" else seed)
    for stage in (list(stages) if order == "given" else list(reversed(stages))):
        if copies == "fresh":
            randomized = copy.deepcopy(model)
        if seeding == "each":
            torch.manual_seed(seed)
        stage_module = randomized.get_submodule(stage)
        for module in (stage_module.modules() if inside else [stage_module]):
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
            if hasattr(module, "reset_running_stats"):  # (BatchNorm's reset_parameters does it too)
                module.reset_running_stats()
        maps = explain(randomized)
        rho = package_spearman(trained if against == "trained" else previous, maps)
        rhos.append((rho.nanmean() if average == "nanmean" else rho.mean()).item())
        previous = maps
    return rhos


def reference_cascade(model: nn.Module, stages: Sequence[str], explain: Callable, seed: int = 0) -> list[float]:
    """The package's cascading randomisation (``randomized_copies``) with the student's signature: the mean
    Spearman correlation with the trained model's maps after each stage, top down."""
    trained = explain(model)
    return [package_spearman(trained, explain(randomized)).nanmean().item()
            for _, _, randomized in randomized_copies(model, stages, seed)]


def cascading_randomisation(student: Callable) -> Verdict:
    """Check ``student(model, stages, explain, seed) -> one mean correlation per stage``: cascading
    randomisation (Adebayo et al. 2018), the model itself never changed."""
    mistakes = [
        Mistake("you started from a fresh copy of the trained model at each stage: that is *independent* "
                "randomisation. The cascade keeps randomising one copy, so that the stages pile up",
                lambda *case: _loop(*case, copies="fresh")),
        Mistake("you went through the stages in the wrong order: the list is top down (classifier first); randomise "
                "it in that order, one more stage at a time", lambda *case: _loop(*case, order="reversed")),
        Mistake("you seeded before every stage, so each stage draws the same numbers: seed once, before the loop",
                lambda *case: _loop(*case, seeding="each")),
        Mistake("you seeded with 0: use the seed you are given, torch.manual_seed(seed)",
                lambda *case: _loop(*case, seeding="zero")),
        Mistake("you compared each stage's maps with the previous stage's: compare every one with the *trained* "
                "model's maps", lambda *case: _loop(*case, against="previous")),
        Mistake("a stage is a container (nn.Sequential) with no reset_parameters of its own: reset every module "
                "inside it, for module in randomized.get_submodule(stage).modules()",
                lambda *case: _loop(*case, inside=False)),
    ]

    def body() -> None:
        model, stages, explain, seed = _cascade_case()
        before = copy.deepcopy(model.state_dict())
        want = torch.tensor(reference_cascade(model, stages, explain, seed))
        got = call(student, model, stages, explain, seed)
        if any(not torch.equal(value, model.state_dict()[key]) for key, value in before.items()):
            raise WrongAnswer("you randomised the model you were given: the trained model must stay as it is; "
                              "randomise randomized = copy.deepcopy(model)")
        try:
            got = torch.as_tensor(got, dtype=torch.float32).flatten()
        except (TypeError, ValueError, RuntimeError) as error:
            raise WrongAnswer("return one number per stage: a list of floats, or a tensor") from error
        check_shape(got, want, "the correlations (one per stage)")
        if got.isnan().any():
            raise WrongAnswer("a NaN: image 4's map is zero everywhere (no ranking, so its correlation is NaN), and "
                              ".mean() passes the NaN on. Average over the images with .nanmean()")
        again = torch.as_tensor(call(student, model, stages, explain, seed), dtype=torch.float32).flatten()
        if not torch.equal(again, got):
            raise WrongAnswer("two calls with the same seed gave different correlations: call torch.manual_seed(seed) "
                              "before the first reset, so that the random weights are the same every time")
        diagnose(got, want, mistakes, _cascade_case, "the correlations")

    return run_check("cascading_randomisation", "cascading randomisation", student, reference_cascade, body,
                     "correct: the same correlations as the package's sanity_check")
