"""Notebook 09's capstone: the folder setting, the stand-in photos, the check that stops a bad folder,
the leak-aware split, the judging and shortcut tools, the model card; and the notebook itself on a folder
without masks and on a bad folder."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from scipy.stats import binomtest
from torch import nn

from fishcam_utils.course import audit, capstone
from fishcam_utils.data.check import check_dataset
from fishcam_utils.data.fish_drawing import largest_zoom
from fishcam_utils.data.synthetic import SyntheticConfig, dataset_config, generate_dataset, load_metadata
from fishcam_utils.errors import DataError
from fishcam_utils.explain.judging.experiments import EvidenceBatch
from fishcam_utils.explain.judging.metrics import dilate, energy_in_mask, pointing_game

ROOT = Path(__file__).resolve().parents[2]


def photo(path: Path, size=(40, 30), seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def class_folders(root: Path, counts: dict[str, int], size=(40, 30)) -> Path:
    for c, (name, n) in enumerate(counts.items()):
        for i in range(n):
            photo(root / name / f"{i:03d}.png", size, seed=100 * c + i)
    return root


# ---------------------------------------------------------------------------------------------
# The check: every bad folder stops with what to fix


def bad_folder(kind: str, root: Path) -> tuple[Path, list[str]]:
    """A bad folder of ``kind`` and words its message must hold."""
    if kind == "empty":
        root.mkdir()
        return root, ["no images found", "fishcam make-data"]
    if kind == "one class":
        return class_folders(root, {"trout": 5}), ["one class only (trout)", "add a folder per class"]
    if kind == "non-images":
        for name in ("trout", "bass"):
            for i in range(3):
                (root / name).mkdir(parents=True, exist_ok=True)
                (root / name / f"{i}.txt").write_text("not a photo")
        return root, ["has no images", "are not images", "Move them out"]
    if kind == "broken images":
        class_folders(root, {"trout": 3, "bass": 3})
        (root / "bass" / "002.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
        return root, ["002.png"]
    if kind == "masks of another size":
        class_folders(root, {"trout": 3, "bass": 3})
        for image in sorted(root.glob("*/*.png"))[:2]:
            mask = root / "masks" / "body" / image.relative_to(root)
            mask.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((15, 20), 255, np.uint8)).save(mask)
        return root, ["2 mask(s) are of another size", "20x15", "40x30", "at its image's size"]
    if kind == "a class of two photos":
        return class_folders(root, {"trout": 4, "bass": 2, "carp": 3}), ["bass has 2", "at least 3 images"]
    raise ValueError(kind)


BAD = ["empty", "one class", "non-images", "broken images", "masks of another size", "a class of two photos"]


@pytest.mark.parametrize("kind", BAD)
def test_a_bad_folder_stops_at_the_check_with_its_fix(kind, tmp_path):
    folder, words = bad_folder(kind, tmp_path / "photos")
    with pytest.raises(DataError) as raised:
        capstone.check_folder(folder, progress=False)
    message = str(raised.value)
    assert f"{folder} cannot be used for the capstone" in message
    for word in words:
        assert word in message, (word, message)


def test_the_check_reports_small_classes_and_mask_sizes_beside_the_other_problems(tmp_path):
    folder, _ = bad_folder("masks of another size", tmp_path / "a")
    (folder / "carp").mkdir()
    photo(folder / "carp" / "000.png")
    report = check_dataset(folder, progress=False)
    assert len(report.problems) == 2 and "carp has 1" in report.problems[0] and "mask(s)" in report.problems[1]
    # With the masks at their photos' size and enough photos, the same folder passes.
    for mask in (folder / "masks").rglob("*.png"):
        Image.fromarray(np.full((30, 40), 255, np.uint8)).save(mask)
    for i in (1, 2):
        photo(folder / "carp" / f"00{i}.png", seed=900 + i)
    assert capstone.check_folder(folder, progress=False).ok


def test_split_folders_are_not_refused_for_small_classes(tmp_path):
    # A class of one photo per split folder is the folder's own split: make_datasets uses it as it is.
    for split in ("train", "val", "test"):
        class_folders(tmp_path / split, {"trout": 1, "bass": 1})
    assert check_dataset(tmp_path, progress=False).ok


# ---------------------------------------------------------------------------------------------
# The folder setting and the stand-in


def test_the_setting_names_the_folder(monkeypatch, tmp_path):
    drawn = []
    monkeypatch.setattr(capstone, "ensure_standin", lambda progress=True: drawn.append(1) or tmp_path)
    monkeypatch.delenv(capstone.CAPSTONE_ENV, raising=False)
    assert capstone.capstone_folder() == tmp_path and drawn == [1]  # the stand-in by default
    monkeypatch.setenv(capstone.CAPSTONE_ENV, str(tmp_path))
    assert capstone.capstone_folder() == tmp_path
    monkeypatch.setenv(capstone.CAPSTONE_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(DataError,
                       match=f"FOLDER \\(or {capstone.CAPSTONE_ENV}\\) is .*nowhere.*there is no folder.*'kaggle'"):
        capstone.capstone_folder()
    with pytest.raises(DataError, match="there is no folder"):
        capstone.capstone_folder(str(tmp_path / "nowhere"))


def test_kaggle_offline_fails_fast_and_says_where_to_put_a_copy(monkeypatch):
    from fishcam_utils.data import kaggle
    from fishcam_utils.errors import OfflineError

    monkeypatch.setattr(kaggle, "kaggle_fish_dir", lambda extra=None: None)
    monkeypatch.setattr(kaggle, "network_available", lambda **_: False)
    monkeypatch.setitem(__import__("sys").modules, "kagglehub", object())
    with pytest.raises(OfflineError, match="kaggle-fish"):
        capstone.capstone_folder("kaggle")


def test_the_standin_is_photo_sized_in_the_kaggle_layout_with_masks_and_kept(monkeypatch):
    monkeypatch.setitem(capstone.STANDIN_PHOTOS, "quick", 3)
    folder = capstone.ensure_standin(quick=True, progress=False)
    assert folder == capstone.standin_dir(quick=True)
    config = dataset_config(folder)
    assert config.layout == "kaggle" and config.size == capstone.STANDIN_SIZE and config.zoom == capstone.STANDIN_ZOOM
    assert config.degraded_share > 0 and config.distractors > 0  # the course's nuisances
    images = sorted(p for p in folder.glob("*/*/*.png") if not p.parent.name.endswith(" GT"))
    assert len(images) == 27
    for image in images[:5]:
        mask = image.parent.parent / f"{image.parent.name} GT" / image.name
        assert Image.open(image).size == (590, 445) and Image.open(mask).size == (590, 445)
    report = capstone.check_folder(folder, progress=False)
    assert report.index.layout == "kaggle" and report.index.mask_kinds == ["body"] and capstone.masks_used(report.index)
    assert capstone.split_rule(folder, report.index).startswith("stand-in photos")  # not Kaggle's copies
    stamp = (folder / "dataset.json").stat().st_mtime_ns, images[0].stat().st_mtime_ns
    assert capstone.ensure_standin(quick=True, progress=False) == folder
    assert ((folder / "dataset.json").stat().st_mtime_ns, images[0].stat().st_mtime_ns) == stamp  # drawn once
    ceiling = capstone.standin_ceiling(folder)
    assert 0.4 < ceiling <= 2 / 3 + 1e-9  # side views: the course's twins cannot be told apart


def test_zoom_draws_the_same_fish_larger_and_old_datasets_stay_current(tmp_path):
    base = SyntheticConfig(size=(80, 60), fish_per_class=3, views=("side",))
    assert "zoom" not in base.to_dict()
    plain = load_metadata(generate_dataset(tmp_path / "a", base, progress=False))
    zoomed = load_metadata(generate_dataset(tmp_path / "b", SyntheticConfig(**{**base.to_dict(), "zoom": 1.3}),
                                            progress=False))
    assert np.allclose(zoomed["scale"] / plain["scale"], 1.3, atol=1e-3)  # the same draws, scaled
    assert (zoomed["flipped"] == plain["flipped"]).all() and (zoomed["angle_deg"] == plain["angle_deg"]).all()
    for bad in (0.2, largest_zoom(1) + 0.01, "big", True):
        with pytest.raises(ValueError, match="zoom must be a number"):
            SyntheticConfig(zoom=bad)  # a square photo: 1.12 at most
    assert SyntheticConfig(size=(590, 445), zoom=1.39).zoom == 1.39  # a 4:3 photo: 1.40


@pytest.mark.parametrize("size", [(64, 64), (590, 445), (445, 590)])
def test_at_the_largest_zoom_every_fish_stays_whole_on_the_photo(size, tmp_path):
    config = SyntheticConfig(size=size, fish_per_class=3, views=("side",), zoom=largest_zoom(size[0] / size[1]))
    root = generate_dataset(tmp_path / "z", config, progress=False)
    meta = load_metadata(root)
    for relative in meta["body_mask"]:
        body = np.asarray(Image.open(root / relative)) > 0
        assert body.any() and not (body[0].any() or body[-1].any() or body[:, 0].any() or body[:, -1].any())


# ---------------------------------------------------------------------------------------------
# The split


def kaggle_archive(root: Path, species=("Trout", "Sea Bass", "Shrimp"), copies: int = 4, originals: int = 3) -> Path:
    for s, name in enumerate(species):
        for i in range(copies):
            photo(root / "Fish_Dataset" / "Fish_Dataset" / name / name / f"{i + 1:05d}.png", seed=10 * s + i)
            mask = root / "Fish_Dataset" / "Fish_Dataset" / name / f"{name} GT" / f"{i + 1:05d}.png"
            mask.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((30, 40), 255, np.uint8)).save(mask)
        for i in range(originals):
            photo(root / "NA_Fish_Dataset" / name / f"{name}_{i}.png", seed=500 + 10 * s + i)
    return root


@pytest.mark.parametrize("flattened", [False, True])
def test_a_kaggle_archive_is_checked_and_split_from_its_originals(tmp_path, flattened):
    archive = kaggle_archive(tmp_path / "kaggle")
    if flattened:  # a copy one level flatter: the species beside their GT folders and the originals
        inner = archive / "Fish_Dataset" / "Fish_Dataset"
        for species in list(inner.iterdir()):
            for part in species.iterdir():
                part.rename(archive / part.name)
        shutil.rmtree(archive / "Fish_Dataset")
    report = capstone.check_folder(archive, progress=False)
    assert report.index.root == archive / "NA_Fish_Dataset" and "Kaggle's archive" in report.index.notes[0]
    note = capstone.split_rule(archive, report.index)
    assert "copies" in note and "originals" in note
    splits, _ = capstone.capstone_datasets(archive, report.index, image_size=32, progress=False)
    paths = set(splits.index.frame["path"])
    assert len(paths) == 9 and all("NA_Fish_Dataset" in p for p in paths)  # the copies are not used
    assert splits.test.mask_kinds == [] and set(splits.index.frame["split"]) == {"train", "val", "test"}


def test_kaggle_originals_are_checked_and_the_unused_copies_are_not_read(tmp_path):
    archive = kaggle_archive(tmp_path / "kaggle")
    copy = archive / "Fish_Dataset" / "Fish_Dataset" / "Trout" / "Trout" / "00001.png"
    copy.write_bytes(b"a broken copy, never used")
    assert capstone.check_folder(archive, progress=False).decoded == 9  # the originals alone
    (archive / "NA_Fish_Dataset" / "Shrimp" / "Shrimp_0.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="(?s)NA_Fish_Dataset cannot be used for the capstone.*Shrimp_0.png"):
        capstone.check_folder(archive, progress=False)


def test_kaggle_copies_without_their_originals_are_split_with_a_warning(tmp_path):
    archive = kaggle_archive(tmp_path / "kaggle")
    shutil.rmtree(archive / "NA_Fish_Dataset")
    index = capstone.check_folder(archive, progress=False).index
    note = capstone.split_rule(archive, index)
    assert (index.root == archive / "Fish_Dataset" / "Fish_Dataset"
            and "optimistic" in note and "NA_Fish_Dataset" in note)


def test_a_class_folder_set_without_masks_is_split_by_photo_and_one_with_ids_by_object(tmp_path):
    plain = class_folders(tmp_path / "plain", {"a": 4, "b": 4, "c": 4})
    for i, image in enumerate(sorted(plain.glob("*/*.png"))):  # photos of many sizes and shapes, as phones make
        photo(image, size=(40 + 7 * i, 90 - 3 * i), seed=i)
    index = capstone.check_folder(plain, progress=False).index
    splits, note = capstone.capstone_datasets(plain, index, image_size=32, progress=False)
    assert "one by one" in note and splits.test.mask_kinds == []
    assert splits.train[0][0].shape == (3, 32, 32)
    views = tmp_path / "views"
    for c in ("a", "b", "c"):
        for fish in range(4):
            for view in ("side", "back", "belly"):
                photo(views / c / f"{c}{fish}_{view}.png", seed=hash((c, fish, view)) % 1000)
    index = capstone.check_folder(views, progress=False).index
    splits, note = capstone.capstone_datasets(views, index, image_size=32, progress=False)
    frame = splits.index.frame
    assert "by fish" in note and "side view alone" in note and (frame.groupby("fish_id")["split"].nunique() == 1).all()
    assert set(splits.train.frame["view"]) == {"side"}


def test_a_folder_split_into_train_val_test_keeps_its_split(tmp_path):
    for split in ("train", "val", "test"):
        class_folders(tmp_path / "own" / split, {"a": 2, "b": 2})
    index = capstone.check_folder(tmp_path / "own", progress=False).index
    splits, note = capstone.capstone_datasets(tmp_path / "own", index, image_size=32, progress=False)
    assert "the folder's own split (train, val, test)" in note
    assert [len(splits.train), len(splits.val), len(splits.test)] == [4, 4, 4]


def test_a_split_folder_that_cannot_be_used_stops_at_the_check(tmp_path):
    class_folders(tmp_path / "a" / "train", {"x": 3, "y": 3})
    class_folders(tmp_path / "a" / "val", {"x": 1, "y": 1})
    with pytest.raises(DataError, match="no test folder"):
        capstone.check_folder(tmp_path / "a", progress=False)
    class_folders(tmp_path / "b" / "train", {"x": 1, "y": 3})  # train/ and test/: val/ is carved from train/
    class_folders(tmp_path / "b" / "test", {"x": 1, "y": 1})
    with pytest.raises(DataError, match="too few images for a validation split from train/: x has 1"):
        capstone.check_folder(tmp_path / "b", progress=False)


def test_masks_for_some_photos_only_are_left_out_and_said(tmp_path):
    folder = class_folders(tmp_path / "p", {"a": 4, "b": 4, "c": 4})
    for image in sorted(folder.glob("*/*.png"))[:5]:
        mask = folder / "masks" / "body" / image.relative_to(folder)
        mask.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((30, 40), 255, np.uint8)).save(mask)
    index = capstone.check_folder(folder, progress=False).index
    assert not capstone.masks_used(index)
    splits, note = capstone.capstone_datasets(folder, index, image_size=32, progress=False)
    assert splits.test.mask_kinds == [] and "Only 5 of 12 photos have a body mask" in note


# ---------------------------------------------------------------------------------------------
# Judging, the shortcut hunt, the write-up


class TinyNet(nn.Module):
    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.layer1 = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.layer2 = nn.Sequential(nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU())
        self.fc = nn.Linear(8, classes)

    def forward(self, x):
        return self.fc(self.layer2(self.layer1(x)).mean((2, 3)))


def tiny_batch(n: int = 12, size: int = 32, classes: int = 3, masks: bool = True) -> EvidenceBatch:
    g = torch.Generator().manual_seed(0)
    body = torch.zeros(n, size, size, dtype=torch.bool)
    for i in range(n):
        top, left = 4 + i % 8, 3 + (2 * i) % 10
        body[i, top:top + 10, left:left + 14] = True
    return EvidenceBatch(torch.randn(n, 3, size, size, generator=g), torch.arange(n) % classes,
                         {"body": body} if masks else {}, list(range(n)), [f"c{k}" for k in range(classes)])


def test_judge_scores_each_layer_and_the_baselines_against_independent_computations():
    torch.manual_seed(0)
    model, batch = TinyNet().eval(), tiny_batch()
    table = audit.judge(model, batch, ["layer1", "layer2"], tolerance=2, steps=8, curve_images=6)
    assert list(table["method"]) == ["gradcam", "gradcam", "random", "edges"]
    assert np.allclose(table["on_fish"] + table["off_fish"], 1)
    from fishcam_utils.explain.judging.experiments import explanation_maps
    maps = explanation_maps(model, batch.images, batch.labels, "gradcam", "layer2")
    assert table.loc[1, "pointing"] == pytest.approx(pointing_game(maps, batch.masks["body"], 2).float().mean().item())
    # A random map's share on the object is the object's share of the photo a, up to noise: uniform noise on P
    # pixels gives a share of variance a(1 - a) Var(u) / (P E[u]^2) = a(1 - a) / (3P); the mean of 12 photos.
    area = batch.masks["body"].flatten(1).float().mean().item()
    assert abs(table.loc[2, "on_fish"] - area) < 6 * math.sqrt(area * (1 - area) / (3 * 1024 * 12))
    assert ((table[["deletion_auc", "insertion_auc"]] >= 0)
            & (table[["deletion_auc", "insertion_auc"]] <= 1)).all().all()
    unmasked = audit.judge(model, tiny_batch(masks=False), ["layer2"], steps=8, curve_images=6)
    assert "pointing" not in unmasked and unmasked["deletion_auc"].notna().all()


def test_heat_off_the_object_per_class_is_the_mean_of_each_photos_share():
    batch = tiny_batch()
    maps = torch.rand(len(batch), 32, 32, generator=torch.Generator().manual_seed(1))
    table = audit.heat_off_fish(maps, batch)
    shares = 1 - energy_in_mask(maps, batch.masks["body"])
    for k, name in enumerate(batch.classes):
        assert table.loc[name, "heat_off_fish"] == pytest.approx(shares[batch.labels == k].mean().item(), abs=1e-6)
        assert table.loc[name, "photos"] == 4
    with pytest.raises(ValueError, match="needs body masks"):
        audit.heat_off_fish(maps, tiny_batch(masks=False))


def test_painting_the_object_out_keeps_the_background_and_fills_with_its_mean():
    batch = tiny_batch()
    empty = audit.without_fish(batch, grow=2)
    grown = dilate(batch.masks["body"], 2)
    for i in range(len(batch)):
        outside = ~grown[i]
        assert torch.equal(empty[i][:, outside], batch.images[i][:, outside])
        mean = batch.images[i][:, outside].mean(1)
        assert torch.allclose(empty[i][:, grown[i]], mean[:, None].expand(-1, int(grown[i].sum())), atol=1e-6)


class ReadsTheCorner(nn.Module):
    """A model that names the class from the top-left pixel's red channel: a pure background shortcut."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        level = x[:, 0, 0, 0]
        return torch.stack([-(level - k).abs() for k in range(3)], 1) + self.dummy


def test_the_background_only_test_finds_a_background_shortcut_and_not_a_constant_model():
    batch = tiny_batch(n=30)
    for i in range(30):
        batch.images[i, 0, :2, :2] = float(batch.labels[i])  # the class painted in the corner, off the object
    found = audit.background_only(ReadsTheCorner(), batch)
    assert found["background_only"] == 1.0 and found["with_fish"] == 1.0 and found["z"] > 5
    assert "gives the class away" in audit.shortcut_verdict(found)

    class Constant(ReadsTheCorner):
        def forward(self, x):
            return torch.tensor([1.0, 0.0, 0.0]).expand(len(x), 3) + self.dummy

    found = audit.background_only(Constant(), batch)
    assert found["background_only"] == pytest.approx(1 / 3) and abs(found["z"]) < 1e-9
    assert "within chance" in audit.shortcut_verdict(found)
    # Unequal classes: always naming the largest (20 of 30 photos) is right two times in three, and still chance.
    uneven = tiny_batch(n=30)
    uneven.labels = torch.tensor([0] * 20 + [1] * 5 + [2] * 5)
    found = audit.background_only(Constant(), uneven)
    assert found["background_only"] == pytest.approx(2 / 3) and found["chance"] == pytest.approx(2 / 3)
    assert abs(found["z"]) < 1e-9 and "within chance" in audit.shortcut_verdict(found)


def test_layer_grids_are_the_layers_output_sizes_and_the_model_is_left_as_it_was():
    model = TinyNet().train()
    hooks = sum(len(m._forward_hooks) for m in model.modules())
    assert audit.layer_grids(model, ["layer1", "layer2"], 32) == {"layer1": (32, 32), "layer2": (16, 16)}
    assert model.training and sum(len(m._forward_hooks) for m in model.modules()) == hooks


@pytest.mark.parametrize("hits,n", [(0, 10), (7, 18), (43, 72), (72, 72)])
def test_the_wilson_interval_is_scipys(hits, n):
    expected = binomtest(hits, n).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = audit.wilson_interval(hits, n)
    assert low == pytest.approx(expected.low, abs=2e-4) and high == pytest.approx(expected.high, abs=2e-4)
    with pytest.raises(ValueError):
        audit.wilson_interval(5, 3)


def facts(masks: bool = True) -> dict:
    table = pd.DataFrame({"pointing": [0.8, 0.2], "deletion_auc": [0.1, 0.3]},
                         index=pd.Index(["Grad-CAM layer2", "random"], name="map"))
    per_class = pd.DataFrame({"recall": [0.5, 1.0], "support": [4, 3]}, index=pd.Index(["trout", "bass"], name="class"))
    return {"title": "resnet18 on my fish",
            "data": {"folder": "/x/my fish", "layout": "class folders", "classes": ["trout", "bass"], "masks": masks,
                     "counts": "train 20, val 4, test 7"},
            "split": "photos split one by one.",
            "model": {"backbone": "resnet18", "head": "linear", "weights": "imagenet", "image_size": 64, "epochs": 15,
                      "epochs_run": 9, "patience": 5, "best_epoch": 4, "best_val_acc": 0.75},
            "metrics": {"accuracy": 0.7143, "low": 0.359, "high": 0.918, "macro_f1": 0.7, "chance": 0.5,
                        "ceiling": None},
            "per_class": per_class, "explanations": {"summary": "deletion: Grad-CAM layer2 (0.10) > random (0.30)",
                                                     "table": table},
            "shortcuts": {"verdict": "No masks: nothing measured.", "by_class": None},
            "confused": "trout taken for bass (2 of 4 test photos)", "limits": ["7 test photos."]}


def test_the_model_card_and_the_audit_template_hold_the_runs_facts(tmp_path):
    card = audit.model_card(facts())
    for text in ("# Model card: resnet18 on my fish", "Accuracy 71.4% (95 % interval 35.9%-91.8%)", "imagenet",
                 "trained 9 of at most 15 epochs", "| trout | 0.500 | 4 |", "| Grad-CAM layer2 | 0.800 | 0.100 |",
                 "photos split one by one.", "- 7 test photos.", "No masks: nothing measured."):
        assert text in card, text
    template = audit.audit_template(facts())
    assert [line[3:] for line in template.splitlines() if line.startswith("## ")] == list(audit.AUDIT_QUESTIONS)
    assert "trout taken for bass" in template and template.count("Your reading: ...") == 4
    path = audit.write_markdown(tmp_path / "deep" / "card.md", card)
    assert path.read_text() == card


# ---------------------------------------------------------------------------------------------
# The notebook, on a folder without masks and on a bad folder


NOTEBOOK = ROOT / "notebooks" / "09_capstone.ipynb"

@pytest.mark.notebook
@pytest.mark.slow

def test_the_capstone_runs_on_a_class_folder_set_without_masks(tmp_path, monkeypatch):
    from fishcam_utils.course.runner import execute_notebook

    # Real-looking photos: the quick stand-in's, in class folders, their masks left behind.
    monkeypatch.setitem(capstone.STANDIN_PHOTOS, "quick", 6)
    standin = capstone.ensure_standin(quick=True, progress=False)
    photos = tmp_path / "my photos"
    for image in standin.glob("*/*/*.png"):
        if not image.parent.name.endswith(" GT"):
            target = photos / image.parent.name.lower().replace(" ", "_") / image.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(image, target)
    monkeypatch.setenv("FISHCAM_QUICK", "1")
    monkeypatch.setenv(capstone.CAPSTONE_ENV, str(photos))
    source = tmp_path / NOTEBOOK.name
    shutil.copy(NOTEBOOK, source)
    run = execute_notebook(source, tmp_path / "out.ipynb", None, progress=False, timeout=600)
    assert run.ok, run.error
    cards = list((tmp_path / "_build" / "capstone").glob("*/model_card.md"))
    assert len(cards) == 1
    card = cards[0].read_text()
    assert "body masks: no" in card and "No masks" in card and "one by one" in card
    assert "Split: photos split one by one" in card and "(class_folders layout)" in card

@pytest.mark.notebook

def test_the_capstone_stops_at_the_check_on_a_bad_folder(tmp_path, monkeypatch):
    import nbformat

    from fishcam_utils.course.runner import execute_notebook

    folder, _ = bad_folder("a class of two photos", tmp_path / "bad photos")
    monkeypatch.setenv("FISHCAM_QUICK", "1")
    monkeypatch.setenv(capstone.CAPSTONE_ENV, str(folder))
    source = tmp_path / NOTEBOOK.name
    shutil.copy(NOTEBOOK, source)
    run = execute_notebook(source, tmp_path / "out.ipynb", None, progress=False, timeout=600)
    assert not run.ok and "nothing after it runs on this folder" in run.error
    cells = [c for c in nbformat.read(tmp_path / "out.ipynb", as_version=4).cells if c.cell_type == "code"]
    failed = [i for i, c in enumerate(cells) if any(o.get("output_type") == "error" for o in c.outputs)]
    assert len(failed) == 1 and "check_folder" in cells[failed[0]].source
    assert all(c.execution_count is None for c in cells[failed[0] + 1:])  # nothing ran after it
    said = json.dumps(cells[failed[0]].outputs)
    assert "cannot be used for the capstone" in said and "bass has 2" in said
