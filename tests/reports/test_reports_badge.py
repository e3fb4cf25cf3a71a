"""The SVG badge: well-formed XML, escaped text, widths from text, colour from the score."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from pipeline.reports import ReportInputError, badge_svg, score_badge
from tests.reports.report_samples import case, collection, mixed_report, report

SVG = "{http://www.w3.org/2000/svg}"


def parts(svg: str) -> dict:
    """Parse a badge and return its sizes, colours and texts."""
    root = ET.fromstring(svg)
    rects = root.findall(f"{SVG}g/{SVG}rect")
    texts = [t.text for t in root.findall(f"{SVG}g/{SVG}text") if t.get("aria-hidden") is None]
    return {"width": int(root.get("width")), "label_width": int(rects[0].get("width")),
            "message_width": int(rects[1].get("width")), "color": rects[1].get("fill"),
            "texts": texts, "title": root.find(f"{SVG}title").text}


def test_badge_is_well_formed_and_sized_from_its_text():
    short = parts(badge_svg("grade", "9%", "red"))
    long = parts(badge_svg("grade", "100% of everything", "red"))

    assert short["texts"] == ["grade", "9%"]
    assert short["title"] == "grade: 9%"
    assert short["width"] == short["label_width"] + short["message_width"]
    assert long["label_width"] == short["label_width"]
    assert long["message_width"] > short["message_width"] + 80


def test_badge_text_is_escaped():
    svg = badge_svg('<b>"x"</b> & y', "</text><script>alert(1)</script>", "#123")

    found = parts(svg)
    assert found["texts"] == ['<b>"x"</b> & y', "</text><script>alert(1)</script>"]
    assert "<script>" not in svg
    assert found["color"] == "#123"


def test_badge_colour_must_be_known_or_hex():
    with pytest.raises(ReportInputError, match="colour"):
        badge_svg("a", "b", "red;stroke:url(javascript:1)")
    with pytest.raises(ReportInputError):
        badge_svg("a", "b", "#12345")


@pytest.mark.parametrize("passed, total, message, color", [
    (10, 10, "100%", "#4c1"), (9, 10, "90%", "#4c1"), (8, 10, "80%", "#97ca00"),
    (6, 10, "60%", "#a4a61d"), (4, 10, "40%", "#dfb317"), (2, 10, "20%", "#fe7d37"),
    (1, 10, "10%", "#e05d44"), (0, 10, "0%", "#e05d44"),
])
def test_score_badge_colour_follows_the_score(passed, total, message, color):
    collections = ([collection(f"P{n}", [case("t")]) for n in range(passed)]
                   + [collection(f"F{n}", [case("t", "FAILED", "E   x")])
                      for n in range(total - passed)])

    found = parts(score_badge(report(collections)))

    assert (found["texts"], found["color"]) == (["grade", message], color)


def test_score_badge_without_a_score_is_grey():
    assert parts(score_badge(None))["texts"] == ["grade", "no result"]
    broken = parts(score_badge(report([], course_error="bad test.yaml")))
    assert (broken["texts"], broken["color"]) == (["grade", "not graded"], "#9f9f9f")
    assert parts(score_badge(mixed_report(), label="week 1"))["texts"] == ["week 1", "25%"]
