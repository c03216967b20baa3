"""Sentences about a run's outcome, worded from its values: which of two wins, or that they tie.

A notebook never writes "layer1 scored better" into its prose; it prints
``versus("layer1", e1, "layer3", e3, "energy", tie=0.01)`` (through ``Report.say``), and the words
follow the numbers of the run the student sees.
"""

from __future__ import annotations

from collections.abc import Mapping


def _check(tie: float, fmt: str) -> None:
    if not tie >= 0:
        raise ValueError(f"tie must be a number >= 0 (the difference below which two values count as equal), "
                         f"not {tie!r}")
    try:
        fmt.format(0.5)
    except (ValueError, IndexError, KeyError) as error:
        raise ValueError(f"fmt must be a format for one number, such as '{{:.2f}}', not {fmt!r} ({error})") from None


def _alike(a: float, b: float, tie: float, fmt: str) -> bool:
    """Within ``tie``, or printed alike: "beats" between two equal-looking numbers would read as a mistake."""
    return abs(a - b) <= tie or fmt.format(a) == fmt.format(b)


def versus(name_a: str, a: float, name_b: str, b: float, measure: str, higher_is_better: bool = True,
           tie: float = 0.0, fmt: str = "{:.2f}") -> str:
    """"A beats B on <measure> (0.52 against 0.47)", "B beats A ...", or "A and B tie on <measure>
    (...)" when ``|a - b| <= tie`` or the two print alike. Lower wins when ``higher_is_better`` is False."""
    _check(tie, fmt)
    shown = f"({fmt.format(a)} against {fmt.format(b)})"
    if _alike(a, b, tie, fmt):
        return f"{name_a} and {name_b} tie on {measure} {shown}"
    a_wins = (a > b) == higher_is_better
    if a_wins:
        return f"{name_a} beats {name_b} on {measure} {shown}"
    return f"{name_b} beats {name_a} on {measure} ({fmt.format(b)} against {fmt.format(a)})"


def ranking(scores: Mapping[str, float], higher_is_better: bool = True, tie: float = 0.0,
            fmt: str = "{:.2f}") -> str:
    """The names best first, "A (0.52) > B (0.47) ≈ C (0.46)": ``≈`` between neighbours within ``tie``
    or printed alike."""
    _check(tie, fmt)
    if not scores:
        raise ValueError("ranking needs at least one score")
    order = sorted(scores, key=lambda name: scores[name], reverse=higher_is_better)
    text = f"{order[0]} ({fmt.format(scores[order[0]])})"
    for before, name in zip(order, order[1:]):
        sign = "≈" if _alike(scores[before], scores[name], tie, fmt) else ">"
        text += f" {sign} {name} ({fmt.format(scores[name])})"
    return text
