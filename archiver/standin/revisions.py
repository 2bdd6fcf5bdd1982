"""A schedule of edits and takedowns by epoch, so that runs against the stand-in see the site change.

Spec: comma-separated `ID:KIND@EPOCH`; KIND is `edit` (a paragraph changes, page and API alike), `title`
(the headline changes), `gone` (410), `404`, `moved` (301 to another article) or `restore` (content again
after `gone`, `404` or `moved`). A stand-in at epoch E serves every revision with EPOCH <= E; before its
epoch an article is as the dumps have it. Any epoch above 0 also changes what is not content: the chrome,
the related links and the image URLs' query strings of every page (no change a reader would call an edit).
Example: `54243544:edit@1,1048137:gone@1,1048137:restore@2`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from archiver.standin.corpus import Article, Paragraph

KINDS = ("edit", "title", "gone", "404", "moved", "restore")
_RULE = re.compile(r"^(\d+):(edit|title|gone|404|moved|restore)@(\d+)$")


class RevisionSpecError(ValueError):
    """An ARCHIVER_STANDIN_REVISIONS / --revisions value that cannot be read."""


@dataclass(frozen=True, slots=True)
class Revision:
    """One scheduled change of one article."""

    article_id: int
    kind: str
    epoch: int


@dataclass(frozen=True, slots=True)
class ArticleState:
    """An article as of an epoch: edits and title changes so far, an error status, or a move."""

    edits: int = 0
    titles: int = 0
    status: int | None = None  # 404 or 410
    moved: bool = False


def edit_note(n: int) -> str:
    """The sentence that the n-th edit adds to the article's first paragraph."""
    return f"编者注：本段内容已于第{n}次修订中更正。"


def title_prefix(n: int) -> str:
    """What the n-th title change puts before the headline."""
    return "更新：" if n == 1 else f"第{n}次更新："


@dataclass(frozen=True, slots=True)
class RevisionPlan:
    """The revisions and the epoch a stand-in serves."""

    revisions: tuple[Revision, ...] = ()
    epoch: int = 0

    @classmethod
    def parse(cls, spec: str | None, epoch: int | str = 0) -> RevisionPlan:
        """Read a spec such as `1:edit@1,2:gone@1,2:restore@2`; raises RevisionSpecError naming the bad rule."""
        revisions = []
        for raw in (spec or "").split(","):
            rule = raw.strip()
            if not rule:
                continue
            m = _RULE.match(rule)
            if not m:
                want = f"want ID:KIND@EPOCH with KIND one of {', '.join(KINDS)}"
                raise RevisionSpecError(f"bad revision {rule!r}: {want}")
            revisions.append(Revision(int(m.group(1)), m.group(2), int(m.group(3))))
        try:
            number = int(epoch)
        except ValueError:
            raise RevisionSpecError(f"epoch must be a whole number, not {epoch!r}") from None
        if number < 0:
            raise RevisionSpecError(f"epoch must be 0 or more, not {number}")
        return cls(tuple(sorted(revisions, key=lambda r: r.epoch)), number)

    @property
    def active(self) -> bool:
        """Whether anything differs from epoch 0."""
        return self.epoch > 0

    def state(self, article_id: int) -> ArticleState:
        """The article as of this plan's epoch."""
        state = ArticleState()
        for rev in self.revisions:
            if rev.article_id != article_id or rev.epoch > self.epoch:
                continue
            if rev.kind == "edit":
                state = replace(state, edits=state.edits + 1)
            elif rev.kind == "title":
                state = replace(state, titles=state.titles + 1)
            elif rev.kind in ("gone", "404"):
                state = replace(state, status=410 if rev.kind == "gone" else 404, moved=False)
            elif rev.kind == "moved":
                state = replace(state, moved=True, status=None)
            else:  # restore
                state = replace(state, status=None, moved=False)
        return state


def revise(article: Article, state: ArticleState) -> Article:
    """The article with its edits and title changes applied (the same object when there are none)."""
    if not state.edits and not state.titles:
        return article
    blocks = list(article.blocks)
    if state.edits:
        at = next((i for i, b in enumerate(blocks) if isinstance(b, Paragraph) and b.text.strip()), None)
        notes = "".join(edit_note(n) for n in range(1, state.edits + 1))
        if at is None:
            blocks.append(Paragraph(notes, notes))
        else:
            para = blocks[at]
            assert isinstance(para, Paragraph)
            blocks[at] = Paragraph(para.html + notes, para.text + notes)
    title = title_prefix(state.titles) + article.title if state.titles else article.title
    return replace(article, blocks=tuple(blocks), title=title)


def moved_target(article_id: int, ids: list[int]) -> int | None:
    """The article a `moved` one redirects to: the next id of the dumps (another one, always the same)."""
    others = [i for i in ids if i != article_id]
    if not others:
        return None
    later = [i for i in others if i > article_id]
    return min(later) if later else min(others)
