"""The stand-in weights committed in checkpoints/standin: small, listed, intact, made by the documented recipe."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch

from fishcam_utils.models import build_model
from fishcam_utils.standin.recipes import STANDIN_RECIPES
from fishcam_utils.standin.weights import MANIFEST, sha256_of

FOLDER = Path(__file__).resolve().parents[2] / "checkpoints" / "standin"
BUDGET = 25_000_000  # bytes, all shipped weights together


@pytest.fixture(scope="module")
def manifest() -> dict:
    path = FOLDER / MANIFEST
    assert path.is_file(), (f"{path} is missing: the course ships its stand-in weights "
                            "(make them with `fishcam pretrain`)")
    return json.loads(path.read_text())


def test_every_shipped_file_is_listed_and_together_they_fit_the_budget(manifest):
    listed = {entry["file"] for entry in manifest.values()}
    present = {p.name for p in FOLDER.iterdir() if p.name != MANIFEST}
    assert present == listed, f"unlisted: {sorted(present - listed)}, missing: {sorted(listed - present)}"
    total = sum((FOLDER / name).stat().st_size for name in listed)
    assert total <= BUDGET, f"{total / 1e6:.1f} MB of stand-in weights, the budget is {BUDGET / 1e6:.0f} MB"


def test_files_match_their_manifest_entries_and_the_recipes(manifest):
    assert set(manifest) <= set(STANDIN_RECIPES)
    for name, entry in manifest.items():
        path = FOLDER / entry["file"]
        assert path.stat().st_size == entry["bytes"], name
        assert sha256_of(path) == entry["sha256"] and entry["file"] == f"standin-{name}-{entry['sha256'][:12]}.pt"
        # Made by the recipe declared in the package, so `fishcam pretrain --backbone <name>` makes it again.
        assert entry["recipe"] == STANDIN_RECIPES[name], f"{name}: the shipped weights were made by another recipe"
        assert entry["data"]["seed"] == STANDIN_RECIPES[name]["data"]["seed"]
        chance = 1 / len(entry["source_classes"])
        assert chance < entry["source_test_accuracy"] <= 1, (name, entry["source_test_accuracy"])


def test_the_shipped_files_are_tracked_by_git(manifest):
    root = FOLDER.parents[1]
    if not (root / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(["git", "ls-files", "checkpoints/standin"], cwd=root, capture_output=True, text=True,
                             check=True).stdout.split()
    assert {Path(t).name for t in tracked} >= {MANIFEST, *(e["file"] for e in manifest.values())}


@pytest.mark.parametrize("name", sorted(STANDIN_RECIPES))
def test_a_shipped_stand_in_loads_into_its_backbone(manifest, name):
    if name not in manifest:
        pytest.skip(f"no stand-in shipped for {name}")
    model = build_model(name, 9, weights="course", verbose=False, **manifest[name]["build"])
    assert model.fishcam_weights == "course"
    with torch.no_grad():
        logits = model.eval()(torch.randn(2, 3, 64, 64))
    assert logits.shape == (2, 9) and torch.isfinite(logits).all()
