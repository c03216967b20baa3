"""One table type for every lookup by name: backbones, layouts, methods, fusions, heads, weight sources."""

from __future__ import annotations

import pytest

from fishcam_utils.registry import Registry


def test_a_registry_reads_as_an_ordered_mapping_and_names_what_it_holds():
    table = Registry("colour", {"red": 1, "green": 2}, hint="register adds one")
    assert list(table) == ["red", "green"] and table.names() == ["red", "green"] and len(table) == 2
    assert table["green"] == 2 and "red" in table and "blue" not in table and dict(table) == {"red": 1, "green": 2}
    with pytest.raises(KeyError):
        table["blue"]
    with pytest.raises(ValueError, match=r"^unknown colour 'blue'; choose one of red, green \(register adds one\)$"):
        table.lookup("blue")


def test_register_appends_or_inserts_and_refuses_a_taken_name():
    table = Registry("colour", {"red": 1, "green": 2})
    assert table.register("blue", 3) == 3 and table.names() == ["red", "green", "blue"]
    table.register("pink", 4, before="green")
    assert table.names() == ["red", "pink", "green", "blue"]
    with pytest.raises(ValueError, match="the name 'red' is taken by the colour 'red'"):
        table.register("red", 5)
    with pytest.raises(ValueError, match="before='grey' is not a colour; the colours are red, pink, green, blue"):
        table.register("grey", 6, before="grey")
    table.unregister("pink")
    table.unregister("never there")  # forgetting an unknown name is no error
    assert table.names() == ["red", "green", "blue"]


def test_a_key_forgives_spelling_and_aliases_answer_too():
    table = Registry("method", {"grad-cam": ("grad-cam", "Grad-CAM")}, key=lambda s: s.lower().replace("-", ""),
                     aliases=lambda entry: (entry[1],))
    assert table.lookup("GradCAM") is table.lookup("grad-cam") is table["GRAD-CAM"]
    with pytest.raises(ValueError, match="taken by the method 'grad-cam'"):
        table.register("gradcam", ("gradcam", "other"))  # the same name in another spelling
    with pytest.raises(ValueError, match="taken by the method 'grad-cam'"):
        table.register("x", ("x", "Grad-CAM"))  # an alias that another entry answers to


def test_the_six_tables_are_registries():
    from fishcam_utils.data.layout_readers import LAYOUTS
    from fishcam_utils.explain.registry import METHODS
    from fishcam_utils.models import BACKBONES, FUSIONS, HEADS, WEIGHT_SOURCES
    from fishcam_utils.models.factory import EXTRA_BUILDERS

    for table in (BACKBONES, LAYOUTS, METHODS, FUSIONS, HEADS, EXTRA_BUILDERS, WEIGHT_SOURCES):
        assert isinstance(table, Registry)
    assert "multiview" in EXTRA_BUILDERS and "resnet18" in BACKBONES and "gradcam" in METHODS
    with pytest.raises(ValueError, match="unknown fusion 'sum'; choose one of attention, mean, concat, gated"):
        FUSIONS.lookup("sum")
