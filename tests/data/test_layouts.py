"""The four layouts, found and read; every kind of bad input gets an error naming the file and the fix."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest
from conftest import write_image

from fishcam_utils.data.layouts import DataWarning, detect_layout, find_kaggle_root, group_by_fish, scan_dataset
from fishcam_utils.data.species import SPECIES, VIEWS
from fishcam_utils.data.synthetic import load_metadata
from fishcam_utils.errors import DataError


def _class_tree(root, spec: dict[str, int], ext=".png"):
    for name, n in spec.items():
        for i in range(n):
            write_image(root / name / f"img{i}{ext}")
    return root


# ------------------------------------------------------------------ class folders


def test_class_folders_labels_are_alphabetical_and_counted(tmp_path):
    root = _class_tree(tmp_path / "ds", {"trout": 3, "bass": 2, "carp": 1})
    index = scan_dataset(root)
    assert index.layout == "class_folders" == detect_layout(root)
    assert index.classes == ["bass", "carp", "trout"]
    assert index.counts()["all"].tolist() == [2, 1, 3]
    assert set(index.frame["fish_id"]) == {f"{c}/img{i}" for c, n in {"trout": 3, "bass": 2, "carp": 1}.items()
                                           for i in range(n)}
    assert (index.frame["split"] == "").all() and index.views == ()


def test_split_folders_are_read_with_their_common_names(tmp_path):
    root = tmp_path / "ds"
    for split in ("Training", "valid", "TEST"):
        _class_tree(root / split, {"bass": 2, "trout": 1})
    index = scan_dataset(root)
    assert index.splits == ["train", "val", "test"]
    assert index.counts().loc["bass"].tolist() == [2, 2, 2]


def test_upper_case_extensions_and_nested_folders_count(tmp_path):
    root = _class_tree(tmp_path / "ds", {"bass": 1, "trout": 1})
    write_image(root / "bass" / "UPPER.JPG")
    write_image(root / "bass" / "day2" / "more.Png")
    index = scan_dataset(root)
    assert sorted(index.frame.loc[index.frame["class_name"] == "bass", "relpath"]) == [
        "bass/UPPER.JPG", "bass/day2/more.Png", "bass/img0.png"]


def test_system_clutter_is_skipped_quietly(tmp_path):
    root = _class_tree(tmp_path / "ds", {"bass": 1, "trout": 1})
    (root / "bass" / ".DS_Store").write_bytes(b"\x00\x01")
    (root / "trout" / "Thumbs.db").write_bytes(b"\x00")
    (root / "trout" / "._img0.png").write_bytes(b"apple double")
    write_image(root / "trout" / ".ipynb_checkpoints" / "img0-checkpoint.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        index = scan_dataset(root)
    assert len(index) == 2


def test_other_files_are_named_unless_skipped(tmp_path):
    root = _class_tree(tmp_path / "ds", {"bass": 1, "trout": 1})
    (root / "bass" / "notes.txt").write_text("caught on Tuesday")
    with pytest.raises(DataError) as info:
        scan_dataset(root)
    assert "notes.txt" in str(info.value) and "unknown_files='skip'" in str(info.value)
    assert len(scan_dataset(root, unknown_files="skip")) == 2


def test_empty_and_missing_folders_are_explained(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images found under .*empty.*fishcam make-data"):
        scan_dataset(tmp_path / "empty")
    with pytest.raises(DataError, match="does not exist"):
        scan_dataset(tmp_path / "nowhere")
    write_image(tmp_path / "file.png")
    with pytest.raises(DataError, match="is a file, not a dataset folder"):
        scan_dataset(tmp_path / "file.png")


def test_a_class_folder_without_images_is_named(tmp_path):
    root = _class_tree(tmp_path / "ds", {"bass": 2})
    (root / "trout").mkdir()
    (root / "trout" / ".DS_Store").write_bytes(b"")
    with pytest.raises(DataError, match=r"class folder .*trout has no images"):
        scan_dataset(root)


def test_splits_with_different_classes_are_refused(tmp_path):
    root = tmp_path / "ds"
    _class_tree(root / "train", {"bass": 2, "trout": 2, "carp": 1})
    _class_tree(root / "test", {"bass": 1, "trout": 1})
    with pytest.raises(DataError) as info:
        scan_dataset(root)
    assert "test lacks ['carp']" in str(info.value)


def test_explicit_class_lists_order_labels_and_catch_typos(tmp_path):
    root = _class_tree(tmp_path / "ds", {"bass": 1, "trout": 1})
    index = scan_dataset(root, classes=["trout", "bass"])
    assert index.classes == ["trout", "bass"]
    assert dict(zip(index.frame["class_name"], index.frame["label"])) == {"trout": 0, "bass": 1}
    with pytest.raises(DataError, match=r"not in the class list: \['trout'\]"):
        scan_dataset(root, classes=["bass"])
    with pytest.raises(DataError, match=r"\['trouts'\] have no images"):
        scan_dataset(root, classes=["bass", "trout", "trouts"])


def test_mirrored_mask_trees_are_paired_by_path(tmp_path):
    root = _class_tree(tmp_path / "ds", {"bass": 2, "trout": 1}, ext=".jpg")
    write_image(root / "masks" / "body" / "bass" / "img0.png")
    index = scan_dataset(root)
    assert index.mask_kinds == ["body"]
    masks = dict(zip(index.frame["relpath"], index.frame["mask_body"]))
    assert masks["bass/img0.jpg"].endswith("masks/body/bass/img0.png")
    assert masks["bass/img1.jpg"] == "" and masks["trout/img0.jpg"] == ""


# ------------------------------------------------------------------ Kaggle


def test_kaggle_masks_are_paired_never_counted(tiny_kaggle):
    every_png = list(tiny_kaggle.rglob("*.png"))
    index = scan_dataset(tiny_kaggle)
    assert index.layout == "kaggle"
    assert find_kaggle_root(tiny_kaggle) == tiny_kaggle / "Fish_Dataset"
    assert index.classes == [s.name for s in SPECIES]  # order from dataset.json
    assert len(index) == 9 * 4
    gt = [p for p in every_png if " GT" in p.parent.name]
    assert len(gt) == len(index)  # a naive glob counts masks as images
    assert not index.frame["relpath"].str.contains(" GT/").any()
    for path, mask in zip(index.frame["path"], index.frame["mask_body"]):
        species = path.split("/")[-2]
        assert mask.endswith(f"/{species} GT/{path.split('/')[-1]}")
    assert index.mask_kinds == ["body"]
    assert any("not counted" in note for note in index.notes)


def test_kaggle_images_without_masks_are_noted(tiny_kaggle, tmp_path):
    copy = shutil.copytree(tiny_kaggle, tmp_path / "k")
    species = SPECIES[0].name
    (copy / "Fish_Dataset" / species / f"{species} GT" / "00002.png").unlink()
    (copy / "Fish_Dataset" / "README.txt").write_text("A Large Scale Fish Dataset")
    index = scan_dataset(copy)
    assert (index.frame["mask_body"] == "").sum() == 1
    assert any("1 image(s) have no GT mask" in note for note in index.notes)


def test_naming_the_kaggle_layout_on_other_data_is_an_error(tmp_path):
    root = _class_tree(tmp_path / "ds", {"bass": 1})
    with pytest.raises(DataError, match="not in the Kaggle fish layout"):
        scan_dataset(root, layout="kaggle")


# ------------------------------------------------------------------ multi-view


def test_multiview_dataset_is_read_with_views_masks_and_class_order(tiny_synth):
    index = scan_dataset(tiny_synth)
    assert index.layout == "multiview" and index.views == VIEWS
    assert index.classes == [s.name for s in SPECIES]
    assert index.mask_kinds == ["body", "evidence"]
    meta = load_metadata(tiny_synth)
    assert len(index) == len(meta)
    assert set(index.frame["relpath"]) == set(meta["image"])
    fish = group_by_fish(index)
    assert len(fish) == 36 and (fish[list(VIEWS)] != "").all().all()


def test_a_missing_view_is_reported_by_fish_id(synth_copy):
    meta = load_metadata(synth_copy)
    gone = meta[(meta["fish_id"] == "F00005") & (meta["view"] == "back")]["image"].item()
    (synth_copy / gone).unlink()
    with pytest.raises(DataError) as info:
        scan_dataset(synth_copy)
    assert "F00005 (missing back)" in str(info.value) and "missing_views='keep'" in str(info.value)

    with pytest.warns(DataWarning, match="F00005.*Kept"):
        kept = scan_dataset(synth_copy, missing_views="keep")
    row = group_by_fish(kept).set_index("fish_id").loc["F00005"]
    assert row["back"] == "" and row["side"] != ""

    with pytest.warns(DataWarning, match="Dropped"):
        dropped = scan_dataset(synth_copy, missing_views="drop")
    assert "F00005" not in set(dropped.frame["fish_id"]) and dropped.frame["fish_id"].nunique() == 35


def test_an_unknown_view_suffix_is_named(synth_copy):
    meta = load_metadata(synth_copy)
    for row in (0, 3):  # the side views of two fish
        source = synth_copy / meta["image"][row]
        source.rename(source.with_name(source.name.replace("_side", "_top")))
    with pytest.raises(DataError) as info:
        scan_dataset(synth_copy)
    text = str(info.value)
    assert "2 file(s): the view suffix '_top'" in text and "side, back, belly" in text and "views=[" in text


def test_a_fish_in_two_splits_is_a_leak(synth_copy):
    meta = load_metadata(synth_copy)
    row = meta[meta["split"] == "train"].iloc[0]
    target = synth_copy / "test" / row["species"] / f"{row['fish_id']}_{row['view']}.png"
    (synth_copy / row["image"]).rename(target)
    with pytest.raises(DataError, match=rf"fish {row['fish_id']} appears in several splits \(test, train\)"):
        scan_dataset(synth_copy)


def test_a_view_twice_is_named(synth_copy):
    meta = load_metadata(synth_copy)
    source = synth_copy / meta["image"][0]
    write_image(source.with_suffix(".jpg"))
    with pytest.raises(DataError, match="twice"):
        scan_dataset(synth_copy)


# ------------------------------------------------------------------ labels in file names


def test_labels_from_file_names(tmp_path):
    root = tmp_path / "flat"
    for name in ("trout_001.jpg", "trout_002.jpg", "sea_bass_001.JPG", "sea_bass_002.png"):
        write_image(root / name)
    (root / ".DS_Store").write_bytes(b"")
    assert detect_layout(root) == "filename"
    index = scan_dataset(root, classes=["sea_bass", "trout"])
    assert dict(zip(index.frame["relpath"], index.frame["class_name"])) == {
        "trout_001.jpg": "trout", "trout_002.jpg": "trout", "sea_bass_001.JPG": "sea_bass",
        "sea_bass_002.png": "sea_bass"}
    assert index.classes == ["sea_bass", "trout"]
    guessed = scan_dataset(root)  # without a list: everything before the last underscore
    assert set(guessed.classes) == {"sea_bass", "trout"}


def test_file_names_without_a_known_label_are_named(tmp_path):
    root = tmp_path / "flat"
    write_image(root / "trout_001.jpg")
    write_image(root / "IMG1234.jpg")
    with pytest.raises(DataError, match=r"1 file\(s\): no label in the name.*\n.*IMG1234.jpg"):
        scan_dataset(root)
    with pytest.raises(DataError, match=r"the name does not start with a known class.*\n.*IMG1234.jpg"):
        scan_dataset(root, classes=["trout"])


def test_bad_arguments_are_named(tiny_synth):
    with pytest.raises(ValueError, match="layout must be"):
        scan_dataset(tiny_synth, layout="coco")
    with pytest.raises(ValueError, match="missing_views"):
        scan_dataset(tiny_synth, missing_views="ignore")
    index = scan_dataset(tiny_synth)
    with pytest.raises(ValueError, match="split 'training' not in this dataset"):
        index.subset(split="training")
    with pytest.raises(ValueError, match="view 'top' not in this dataset"):
        index.subset(view="top")


def test_multiview_without_split_folders_gets_grouped_splits(tiny_synth, tmp_path):
    from fishcam_utils.data.splits import leaked_groups, make_splits

    flat = tmp_path / "flat"
    for split in ("train", "val", "test"):
        for species_dir in (tiny_synth / split).iterdir():
            shutil.copytree(species_dir, flat / species_dir.name, dirs_exist_ok=True)
    index = scan_dataset(flat)
    assert index.layout == "multiview" and index.splits == [] and len(index) == 9 * 4 * 3
    assert index.frame.groupby("fish_id")["view"].nunique().eq(3).all()
    split = make_splits(index, seed=0)
    assert leaked_groups(split.frame) == [] and split.splits == ["train", "val", "test"]


# ------------------------------------------------------------------ folders as users have them


def test_labels_in_file_names_inside_split_folders(tmp_path):
    root = tmp_path / "plants"  # the plant tutorial's layout: train/0_abc.jpg, val/..., test/...
    for split in ("train", "val", "test"):
        for label in (0, 1, 2):
            write_image(root / split / f"{label}_{split}a.jpg")
            write_image(root / split / f"{label}_{split}b.jpg")
    assert detect_layout(root) == "filename"
    for layout in ("auto", "filename"):
        index = scan_dataset(root, layout)
        assert index.splits == ["train", "val", "test"] and index.classes == ["0", "1", "2"]
        assert index.counts().loc["1"].tolist() == [2, 2, 2]
    named = scan_dataset(root, classes=["rose", "tulip", "daisy"])  # a leading number indexes the class list
    assert dict(zip(named.frame["relpath"], named.frame["class_name"]))["val/2_vala.jpg"] == "daisy"
    write_image(root / "test" / "7_stray.jpg")
    with pytest.raises(DataError, match=r"1 file\(s\): the leading number is not a position in the class list "
                                        r"\(0 to 2.*\n.*7_stray.jpg"):
        scan_dataset(root, classes=["rose", "tulip", "daisy"])


def test_numeric_labels_sort_as_numbers(tmp_path):
    for label in (0, 2, 10):
        write_image(tmp_path / "flat" / f"{label}_a.png")
    assert scan_dataset(tmp_path / "flat").classes == ["0", "2", "10"]


def test_multiview_fish_numbered_per_class_are_one_fish_per_split_class_and_id(tmp_path):
    root = tmp_path / "mv"
    for split in ("train", "test"):
        for species in ("bass", "trout"):
            for n in range(3):
                for view in VIEWS:
                    write_image(root / split / species / f"fish{n}_{view}.png")
    with pytest.warns(DataWarning, match=r"fish0 of bass is in test and train\): they are read as different fish"):
        index = scan_dataset(root)  # the same IDs in train and test: different fish, or a leak? Said.
    fish = group_by_fish(index)
    assert len(fish) == 2 * 2 * 3 and (fish[list(VIEWS)] != "").all().all()
    assert "train/bass/fish0" in set(fish["fish_id"]) and "test/trout/fish2" in set(fish["fish_id"])
    assert any("numbered per folder" in note for note in index.notes)
    write_image(root / "train" / "bass" / "fish0_side.jpg")  # a real duplicate, in one folder
    with pytest.raises(DataError, match="fish train/bass/fish0 has its 'side' view twice"), pytest.warns(DataWarning):
        scan_dataset(root)
    shutil.rmtree(root / "test")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numbered per class within one split: nothing to warn about
        (root / "train" / "bass" / "fish0_side.jpg").unlink()
        assert len(group_by_fish(scan_dataset(root))) == 2 * 3


def test_a_kaggle_species_folder_given_directly_points_to_its_parent(tiny_kaggle):
    species = tiny_kaggle / "Fish_Dataset" / SPECIES[0].name
    with pytest.raises(DataError) as info:
        scan_dataset(species)
    assert "one species folder of the Kaggle fish dataset" in str(info.value)
    assert str(species.parent) in str(info.value)


def test_a_flattened_kaggle_copy_pairs_its_mask_folders_instead_of_counting_them(tiny_kaggle, tmp_path):
    flat = tmp_path / "flat"
    for species_dir in (tiny_kaggle / "Fish_Dataset").iterdir():
        if species_dir.is_dir():
            for inner in species_dir.iterdir():
                shutil.copytree(inner, flat / inner.name)  # <Species>/ beside <Species> GT/
    index = scan_dataset(flat)
    assert index.classes == sorted(s.name for s in SPECIES) and len(index) == 36  # not 18 classes, not 72 images
    assert index.mask_kinds == ["body"] and (index.frame["mask_body"] != "").all()
    assert all(Path(m).parent.name.endswith(" GT") for m in index.frame["mask_body"])
    for n in range(2):  # the archive's originals, copied along
        write_image(flat / "NA_Fish_Dataset" / SPECIES[0].name / f"{n:05d}.png")
    index = scan_dataset(flat)
    assert "NA_Fish_Dataset" not in index.classes and len(index) == 36
    assert any("NA_Fish_Dataset (2 images)" in n for n in index.notes)
    shutil.rmtree(flat / SPECIES[1].name)  # its GT folder is left alone
    with pytest.raises(DataError, match=rf"{SPECIES[1].name} GT looks like a mask folder.*no folder"):
        scan_dataset(flat)


def test_the_kaggle_originals_and_stray_files_are_said_and_offered(tiny_kaggle, tmp_path):
    archive = tmp_path / "archive"  # as the Kaggle download unpacks: Fish_Dataset/Fish_Dataset and NA_Fish_Dataset
    shutil.copytree(tiny_kaggle, archive / "Fish_Dataset")
    for n in range(3):
        write_image(archive / "NA_Fish_Dataset" / SPECIES[0].name / f"{n:05d}.png")
    (archive / "Fish_Dataset" / "Fish_Dataset" / "license.txt").write_text("CC BY 4.0")
    index = scan_dataset(archive)
    assert index.layout == "kaggle" and len(index) == 36
    originals = next(n for n in index.notes if "NA_Fish_Dataset" in n)
    assert "3 images" in originals and "leak-free" in originals
    assert f"--data '{archive / 'NA_Fish_Dataset'}'" in originals
    assert any("license.txt" in n for n in index.notes)
    assert scan_dataset(archive / "NA_Fish_Dataset").layout == "class_folders"  # the offer works as said


def test_a_kaggle_species_in_another_form_is_named_not_skipped(tiny_kaggle, tmp_path):
    copy = shutil.copytree(tiny_kaggle / "Fish_Dataset", tmp_path / "k")
    write_image(copy / "Mystery Fish" / "00001.png")  # beside the species folders, but not Mystery Fish/Mystery Fish/
    with pytest.raises(DataError, match="Mystery Fish is beside the Kaggle species folders but not in their form"):
        scan_dataset(copy)


def test_every_problem_of_a_folder_is_listed_in_one_error(synth_copy):
    meta = load_metadata(synth_copy)
    (synth_copy / meta["image"][0]).unlink()  # a missing view
    (synth_copy / "train" / meta["species"][0] / "notes.txt").write_text("fed on Tuesday")  # not an image
    source = synth_copy / meta["image"][9]
    source.rename(source.with_name(source.name.replace("_side", "_top")))  # an unknown view
    with pytest.raises(DataError) as info:
        scan_dataset(synth_copy)
    text = str(info.value)
    assert text.startswith(f"3 problems in {synth_copy}")
    assert "notes.txt" in text and "'_top'" in text and "lack a view" in text


def test_skipped_files_are_said_and_images_outside_class_folders_are_problems(tmp_path):
    root = _class_tree(tmp_path / "ds", {"bass": 1, "trout": 1})
    (root / "bass" / "notes.txt").write_text("caught on Tuesday")
    index = scan_dataset(root, unknown_files="skip")
    assert any("left out 1 file(s)" in n and "notes.txt" in n for n in index.notes)
    (root / "README.md").write_text("my fish")
    assert any("README.md" in n for n in scan_dataset(root, unknown_files="skip").notes)
    write_image(root / "loose.png")
    with pytest.raises(DataError, match="1 image.* lie in .* beside the class or split folders, in no class"):
        scan_dataset(root)
    skipped = scan_dataset(root, unknown_files="skip")
    assert len(skipped) == 2 and any("left out 1 image(s)" in n and "loose.png" in n for n in skipped.notes)


def test_what_lies_beside_the_split_folders_is_said(tmp_path):
    root = tmp_path / "ds"
    for split in ("train", "val", "test"):
        _class_tree(root / split, {"bass": 1, "trout": 1})
    _class_tree(root / "unsorted", {"carp": 2})
    index = scan_dataset(root)
    assert any("beside the split folders, in no split: unsorted" in n for n in index.notes)
    write_image(root / "IMG_0001.jpg")
    with pytest.raises(DataError, match=r"1 image\(s\) lie in .*ds beside the class or split folders"):
        scan_dataset(root)
