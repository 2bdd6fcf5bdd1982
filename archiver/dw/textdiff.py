"""Diffs of article text that read well in Chinese: by sentence, then by character within a changed sentence.

Chinese has no spaces between words, so a word diff (split on whitespace) marks whole paragraphs changed.
Sentences end at 。！？；!? (with any closing quotes) or a line break; inside a replaced sentence the
characters that differ are marked. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import SequenceMatcher

_SENTENCE = re.compile(r".+?(?:[。！？；!?;]+[”’」』）)\]\"']*|\n|$)", re.S)

# ANSI colours of the terminal diff.
RED, GREEN, CYAN, REVERSE, NO_REVERSE, RESET = "\x1b[31m", "\x1b[32m", "\x1b[36m", "\x1b[7m", "\x1b[27m", "\x1b[0m"


def sentences(text: str | None) -> list[str]:
    """The text's sentences, stripped, empty ones left out."""
    return [s.strip() for s in _SENTENCE.findall(text or "") if s.strip()]


@dataclass(frozen=True, slots=True)
class Hunk:
    """One step of a sentence diff: `equal`, `delete`, `insert` or `replace`, with the old and new sentences."""

    tag: str
    old: tuple[str, ...]
    new: tuple[str, ...]


def sentence_diff(old: str | None, new: str | None) -> list[Hunk]:
    """The two texts as a sequence of hunks over sentences."""
    a, b = sentences(old), sentences(new)
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    return [Hunk(tag, tuple(a[i1:i2]), tuple(b[j1:j2])) for tag, i1, i2, j1, j2 in matcher.get_opcodes()]


def char_spans(old: str, new: str) -> tuple[list[tuple[bool, str]], list[tuple[bool, str]]]:
    """Both strings as (changed, text) spans, by character."""
    left: list[tuple[bool, str]] = []
    right: list[tuple[bool, str]] = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if i2 > i1:
            left.append((tag != "equal", old[i1:i2]))
        if j2 > j1:
            right.append((tag != "equal", new[j1:j2]))
    return left, right


def changed(hunks: list[Hunk]) -> bool:
    """Whether any hunk is not `equal`."""
    return any(h.tag != "equal" for h in hunks)


def _marked(spans: list[tuple[bool, str]], colour: bool) -> str:
    if not colour:
        return "".join(text for _, text in spans)
    return "".join(f"{REVERSE}{text}{NO_REVERSE}" if is_changed else text for is_changed, text in spans)


def unified(old: str | None, new: str | None, *, context: int = 1, colour: bool = False) -> list[str]:
    """A unified-diff-style listing by sentence (`-` old, `+` new, ` ` context); coloured for a terminal."""
    hunks = sentence_diff(old, new)
    gap = f"{CYAN}@@{RESET}" if colour else "@@"
    lines: list[str] = []
    for n, hunk in enumerate(hunks):
        if hunk.tag == "equal":
            keep = [f"  {s}" for s in hunk.old]
            first, last = n == 0, n == len(hunks) - 1
            head = [] if first else keep[:context]
            tail = [] if last else keep[len(keep) - context :] if context else []
            if len(head) + len(tail) >= len(keep):
                lines += keep if not (first and last) else []
            else:
                lines += [*head, gap, *tail]
            continue
        pairs = list(zip(hunk.old, hunk.new, strict=False)) if hunk.tag == "replace" else []
        for i, sentence in enumerate(hunk.old):
            spans = char_spans(sentence, pairs[i][1])[0] if i < len(pairs) else [(True, sentence)]
            text = _marked(spans, colour) if i < len(pairs) else sentence
            lines.append(f"{RED}- {text}{RESET}" if colour else f"- {text}")
        for i, sentence in enumerate(hunk.new):
            spans = char_spans(pairs[i][0], sentence)[1] if i < len(pairs) else [(True, sentence)]
            text = _marked(spans, colour) if i < len(pairs) else sentence
            lines.append(f"{GREEN}+ {text}{RESET}" if colour else f"+ {text}")
    return lines
