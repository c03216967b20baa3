"""Train/validation/test splits that are stratified, seeded and leak-free.

Leak-free means grouped: every image of one fish (its three views, or the augmented copies of
one photo) lands in the same split. Otherwise the test set holds near-copies of training
images and the test accuracy flatters the model.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from ..errors import DataError
from .dataset_index import DatasetIndex

SPLIT_FRACTIONS = (0.7, 0.15, 0.15)  # train, val, test: the seeded split of a dataset without split folders
VALIDATION_SHARE = 0.15  # of each class's training fish, when a folder has train/ and test/ but no val/


def grouped_split(
    labels: pd.Series,
    groups: pd.Series,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    seed: int = 0,
) -> pd.Series:
    """Assign each row a split ("train", "val" or "test"), whole groups at a time.

    Groups are shuffled with ``seed`` within each class and cut by ``fractions``, so each split
    holds the same class proportions (up to rounding) and every class with a group for each
    non-zero share (three for train/val/test) appears in every split with a non-zero share.
    Returns a Series aligned to ``labels``.
    """
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError("fractions must be three non-negative shares (train, val, test) summing to 1, "
                         f"got {fractions}")
    table = pd.DataFrame({"label": labels.to_numpy(), "group": groups.to_numpy()})
    per_group = table.groupby("group", sort=True)["label"].agg(["nunique", "first"])
    mixed = per_group[per_group["nunique"] > 1]
    if len(mixed):
        raise DataError(f"group {mixed.index[0]!r} holds images of several classes; a fish must have one label.")
    rng = np.random.default_rng(seed)
    split_of: dict[object, str] = {}
    shares = sum(1 for f in fractions if f > 0)  # a class with this many groups has one in each split
    for label in sorted(per_group["first"].unique()):
        members = per_group.index[per_group["first"] == label].to_numpy()
        members = members[rng.permutation(len(members))]
        n = len(members)
        n_val = max(1, round(n * fractions[1])) if fractions[1] > 0 and n >= shares else round(n * fractions[1])
        n_test = max(1, round(n * fractions[2])) if fractions[2] > 0 and n >= shares else round(n * fractions[2])
        for i, group in enumerate(members):
            split_of[group] = "val" if i < n_val else "test" if i < n_val + n_test else "train"
    return pd.Series([split_of[g] for g in table["group"]], index=labels.index, name="split")


def make_splits(
    index: DatasetIndex,
    fractions: tuple[float, float, float] = SPLIT_FRACTIONS,
    seed: int = 0,
    overwrite: bool = False,
) -> DatasetIndex:
    """A copy of ``index`` with a seeded, stratified, grouped split in its ``split`` column.

    A dataset whose folders already define splits keeps them unless ``overwrite=True``.
    """
    if (index.frame["split"] != "").any() and not overwrite:
        raise DataError(
            f"{index.root} already has splits ({', '.join(index.splits)}) from its folders; "
            "use them, or pass overwrite=True to split again."
        )
    _refuse_small_classes(index, index.frame, fractions, "a seeded split")
    frame = index.frame.copy()
    frame["split"] = grouped_split(frame["label"], frame["fish_id"], fractions, seed)
    return replace(index, frame=frame, notes=list(index.notes))


def carve_validation(index: DatasetIndex, fraction: float = VALIDATION_SHARE, seed: int = 0) -> DatasetIndex:
    """A copy of ``index`` whose folders give train and test but no val: ``fraction`` of each
    class's training fish (grouped, seeded) become the validation split, and a note says so."""
    train = index.frame["split"] == "train"
    _refuse_small_classes(index, index.frame[train], (1 - fraction, fraction, 0.0), "a validation split from train/")
    frame = index.frame.copy()
    frame.loc[train, "split"] = grouped_split(frame.loc[train, "label"], frame.loc[train, "fish_id"],
                                              (1 - fraction, fraction, 0.0), seed).to_numpy()
    what = "fish" if index.views else "images"
    note = (f"{index.root} has train and test folders but no val folder: {fraction:.0%} of each class's training "
            f"{what} ({frame.loc[frame['split'] == 'val', 'fish_id'].nunique()} {what}, seed {seed}) "
            "became the validation split.")
    return replace(index, frame=frame, notes=[*index.notes, note])


def small_classes(index: DatasetIndex, frame: pd.DataFrame, fractions: tuple[float, ...], what: str) -> str | None:
    """What is wrong when a class has too few fish (or images) for one in every split that gets a share; None
    when every class has enough."""
    needed = sum(1 for f in fractions if f > 0)
    counts = frame.groupby("label")["fish_id"].nunique().reindex(range(len(index.classes)), fill_value=0)
    short = [f"{index.classes[label]} has {n}" for label, n in counts.items() if n < needed]
    if not short:
        return None
    unit = "fish" if index.views else "images"
    names = ", ".join(s for s, f in zip(("train", "val", "test"), fractions) if f > 0)
    return (f"{len(short)} class(es) of {index.root} have too few {unit} for {what}: {'; '.join(short)}. "
            f"Each class needs at least {needed} {unit} (one for each of {names}); add {unit} to these classes, "
            "or leave their folders out of the dataset.")


def split_problem(index: DatasetIndex) -> str | None:
    """What stops ``make_datasets`` from giving ``index`` a train, validation and test split, with the fix; None
    when nothing does: split folders other than train/val/test or train/test alone, or a class too small for
    the seeded split (or for the validation split carved from train/)."""
    present = set(index.splits)
    if not present:
        return small_classes(index, index.frame, SPLIT_FRACTIONS, "a train/validation/test split")
    if present == {"train", "test"}:
        return small_classes(index, index.frame[index.frame["split"] == "train"],
                             (1 - VALIDATION_SHARE, VALIDATION_SHARE, 0.0), "a validation split from train/")
    missing = {"train", "val", "test"} - present
    if missing:
        return (f"{index.root} has split folders ({', '.join(index.splits)}) but no {' or '.join(sorted(missing))} "
                "folder: add them (train/, val/, test/, each with a folder per class), or move the images out of the "
                "split folders so that a seeded, grouped split is made.")
    return None


def _refuse_small_classes(index: DatasetIndex, frame: pd.DataFrame, fractions: tuple[float, ...], what: str) -> None:
    message = small_classes(index, frame, fractions, what)
    if message:
        raise DataError(message)


def leaked_groups(frame: pd.DataFrame, group: str = "fish_id") -> list[str]:
    """The groups (fish) whose images sit in more than one split: empty for a leak-free split."""
    spread = frame.groupby(group)["split"].nunique()
    return sorted(spread[spread > 1].index.astype(str))
