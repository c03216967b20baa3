"""The species table: each view alone is ambiguous, any two views are not."""

from itertools import combinations

import pytest

from fishcam_utils.data.species import SPECIES, TRAITS, VIEWS, Species, single_view_ceiling, validate_species


def test_every_two_species_differ_in_at_least_two_views():
    for a, b in combinations(SPECIES, 2):
        differing = [v for v in VIEWS if a.traits[v] != b.traits[v]]
        assert len(differing) >= 2, (a.name, b.name)


def test_each_species_has_a_trait_no_other_species_shows_in_its_deciding_view():
    for s in SPECIES:
        others = [o.traits[s.deciding_view] for o in SPECIES if o is not s]
        assert s.deciding_trait not in others


def test_each_view_decides_three_species_and_pairs_up_the_other_six():
    for view in VIEWS:
        assert sum(s.deciding_view == view for s in SPECIES) == 3
        groups = {}
        for s in SPECIES:
            groups.setdefault(s.traits[view], []).append(s.name)
        assert sorted(len(g) for g in groups.values()) == [1, 1, 1, 2, 2, 2]


def test_single_view_ceiling_counts_look_alike_groups():
    for view in VIEWS:
        # Independent count: a classifier guesses one species per group of look-alikes.
        best = sum(1 for trait in TRAITS[view] if any(s.traits[view] == trait for s in SPECIES))
        assert single_view_ceiling(view) == pytest.approx(best / len(SPECIES)) == pytest.approx(6 / 9)
    with pytest.raises(ValueError, match="view must be one of"):
        single_view_ceiling("top")


def _make(name, side, back, belly, deciding):
    return Species(name, {"side": side, "back": back, "belly": belly}, deciding)


def test_validate_rejects_species_alike_in_two_views():
    table = (_make("A", "bars", "saddle", "red_belly", "side"), _make("B", "spots", "saddle", "red_belly", "side"))
    with pytest.raises(ValueError, match="look alike in"):
        validate_species(table)


def test_validate_rejects_unknown_traits_and_shared_deciding_traits():
    with pytest.raises(ValueError, match="is not a side trait"):
        validate_species((_make("A", "saddle", "saddle", "red_belly", "side"),))
    table = (_make("A", "bars", "saddle", "red_belly", "side"), _make("B", "bars", "ladder", "midline", "back"))
    with pytest.raises(ValueError, match="shared with"):
        validate_species(table)


def test_the_seen_ceiling_counts_a_hidden_trait_as_a_guess():
    from fishcam_utils.data.species import seen_ceiling

    everyone = list(range(len(SPECIES)))
    for view in VIEWS:  # every trait seen, classes balanced: the clean ceiling
        assert seen_ceiling(view, everyone, [False] * 9) == pytest.approx(single_view_ceiling(view))
        assert seen_ceiling(view, everyone, [True] * 9) == pytest.approx(1 / 9)
    # Zebra Darter's side bars are its own; Saddleback Grunt's side stripes are shared with Ruby Bream.
    zebra, saddleback = 0, 3
    assert SPECIES[saddleback].traits["side"] == SPECIES[6].traits["side"]
    assert seen_ceiling("side", [zebra, saddleback], [False, False]) == pytest.approx((1 + 1 / 2) / 2)
    assert seen_ceiling("side", [zebra, saddleback], [True, False]) == pytest.approx((1 / 9 + 1 / 2) / 2)
    with pytest.raises(ValueError, match="view must be one of"):
        seen_ceiling("top", [0], [False])


def test_the_split_ceiling_reads_what_is_hidden_from_the_metadata(tmp_path):
    from fishcam_utils.data.species import seen_ceiling
    from fishcam_utils.data.synthetic import SyntheticConfig, generate_dataset, load_metadata, split_ceiling

    clean = generate_dataset(tmp_path / "clean", SyntheticConfig(size=16, fish_per_class=4), workers=1, progress=False)
    assert split_ceiling(clean, "side", "train") == pytest.approx(single_view_ceiling("side"))  # 2 train fish each
    uneven = generate_dataset(tmp_path / "uneven", SyntheticConfig(size=16, fish_per_class=4, degraded_share=1.0),
                              workers=1, progress=False)
    meta = load_metadata(uneven)
    photos = meta[(meta["view"] == "back") & (meta["split"] == "train")]
    seen = photos["visible_evidence"].replace("", 0).astype(float)
    expected = seen_ceiling("back", photos["label"].tolist(), (seen == 0).tolist())
    assert split_ceiling(uneven, "back", "train") == pytest.approx(expected)
    with pytest.raises(Exception, match="no side photo in the 'holdout' split"):
        split_ceiling(uneven, "side", "holdout")
