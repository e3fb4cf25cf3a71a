"""Read what a score badge says."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree


def badge_texts(svg: bytes) -> set[str]:
    """Return the texts of a badge's SVG: its label and its value."""
    return {t.text for t in ElementTree.fromstring(svg).iter("{http://www.w3.org/2000/svg}text")}
