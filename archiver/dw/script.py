"""Which Chinese script a text is written in (zh-Hans or zh-Hant), by the common characters that differ."""

from __future__ import annotations

# Common characters whose simplified and traditional forms differ (simplified, traditional), pairwise.
_SIMPLIFIED = "们这说国会为时与对后发来经个从关学湾问题报导将于统长开资际军战总当现动实员产区进义"
_TRADITIONAL = "們這說國會為時與對後發來經個從關學灣問題報導將於統長開資際軍戰總當現動實員產區進義"
_SIMP_ONLY = {s for s, t in zip(_SIMPLIFIED, _TRADITIONAL, strict=True) if s != t}
_TRAD_ONLY = {t for s, t in zip(_SIMPLIFIED, _TRADITIONAL, strict=True) if s != t}


def chinese_script(text: str) -> str | None:
    """zh-Hans or zh-Hant by counting common characters that differ between the scripts; None if no evidence."""
    simplified = sum(1 for ch in text if ch in _SIMP_ONLY)
    traditional = sum(1 for ch in text if ch in _TRAD_ONLY)
    if simplified == traditional:
        return None
    return "zh-Hant" if traditional > simplified else "zh-Hans"
