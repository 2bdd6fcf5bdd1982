"""The stand-in's articles: one per DW feed entry, plus generated ones for the ids they cite.

Pure data: a dump body becomes ordered blocks (paragraphs, subheadings, figures, media) that the
content module renders as page and API JSON. Cited ids that no dump holds get a deterministic
Chinese article seeded by the id, so reference chains resolve down to a bounded depth.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path
from urllib.parse import quote, unquote

import lxml.html

from archiver.dw.dumps import FeedEntry, iter_dumps

# Generated articles cite further generated ids only this many hops away from a dump.
MAX_GENERATED_DEPTH = 2

IMAGE_RE = re.compile(r"(?:static|api)\.dw\.com/image/(\d+)_(\w+)\.(\w+)")
API_REF_RE = re.compile(r"api\.dw\.com/api/detail/article/(\d+)")
PAGE_ID_RE = re.compile(r"/a-(\d+)$")

CATEGORIES = (("政治", 1681), ("经济", 1682), ("文化", 1683), ("科技", 1684), ("德国", 1685), ("体育", 1686))


@dataclass(frozen=True, slots=True)
class Paragraph:
    """A body paragraph; `html` is its inner HTML as the feed had it (API links, topic spans)."""

    html: str
    text: str


@dataclass(frozen=True, slots=True)
class Heading:
    """A subheading (`<p><strong>…</strong></p>` in the feed, `h2` on the page)."""

    text: str


@dataclass(frozen=True, slots=True)
class Figure:
    """An in-body image by its original DW URL."""

    url: str
    image_id: int | None
    caption: str


@dataclass(frozen=True, slots=True)
class Media:
    """A video or embed, kept as its source URL and kind (`video` or `youtube`)."""

    kind: str
    src: str


Block = Paragraph | Heading | Figure | Media


@dataclass(frozen=True, slots=True)
class Article:
    """Everything the stand-in serves about one article id."""

    article_id: int
    title: str
    slug: str  # decoded; the canonical path is /zh/<quote(slug)>/a-<id>
    published: datetime
    author: str
    kind: str
    blocks: tuple[Block, ...]
    references: tuple[int, ...]
    category: tuple[str, int]
    generated: bool = False

    @property
    def path(self) -> str:
        """Canonical page path, percent-encoded as DW writes it."""
        return f"/zh/{quote(self.slug, safe='')}/a-{self.article_id}"

    @property
    def page_url(self) -> str:
        return "https://www.dw.com" + self.path

    @property
    def api_url(self) -> str:
        return f"https://api.dw.com/api/detail/article/{self.article_id}"

    @property
    def modified(self) -> datetime:
        """dateModified: a few minutes after publication, fixed per id."""
        return self.published + timedelta(seconds=60 + self.article_id % 3600)

    @property
    def paragraphs(self) -> list[str]:
        return [b.text for b in self.blocks if isinstance(b, Paragraph)]

    @property
    def teaser(self) -> str:
        """The lead: the first sentence of the body, without the dateline prefix."""
        first = next((t for t in self.paragraphs if t.strip()), self.title)
        first = re.sub(r"^（德[国國]之[声聲]中文[网網]）", "", first.strip())
        m = re.match(r"(.+?[。！？])", first)
        return (m.group(1) if m and len(m.group(1)) >= 20 else first[:160]).strip()

    @property
    def lead_image(self) -> Figure:
        """The first figure, or a stand-in lead image derived from the id."""
        for b in self.blocks:
            if isinstance(b, Figure) and b.image_id is not None:
                return b
        image_id = 40_000_000 + self.article_id % 30_000_000
        return Figure(f"https://static.dw.com/image/{image_id}_303.jpg", image_id, self.title)


def permalink(article_id: int) -> str:
    """DW's short link: the id in base 62 (digits, upper, lower), as `p.dw.com/p/4boRv` is 68117411."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    s, n = "", article_id
    while n:
        n, r = divmod(n, 62)
        s = alphabet[r] + s
    return "https://p.dw.com/p/" + (s or "0")


def original_image_url(src: str) -> str | None:
    """Unwrap images.weserv.nl and return the DW image URL (https), or None."""
    m = IMAGE_RE.search(unquote(src or ""))
    if not m:
        return None
    host = "api.dw.com" if "api.dw.com/image" in m.group(0) else "static.dw.com"
    return f"https://{host}/image/{m.group(1)}_{m.group(2)}.{m.group(3)}"


def _image_id(url: str) -> int | None:
    m = IMAGE_RE.search(url)
    return int(m.group(1)) if m else None


def _inner_html(el: lxml.html.HtmlElement) -> str:
    parts = [el.text or ""]
    for child in el:
        parts.append(lxml.html.tostring(child, encoding="unicode"))
    return "".join(parts)


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace("\u200b", "")).strip()


def _is_heading_p(el: lxml.html.HtmlElement) -> bool:
    children = [c for c in el if isinstance(c.tag, str)]
    if len(children) != 1 or children[0].tag not in ("strong", "b"):
        return False
    outside = (el.text or "") + (children[0].tail or "")
    return not outside.strip() and bool(_clean(children[0].text_content()))


def parse_body(body_html: str) -> list[Block]:
    """Split a feed-dump body into ordered blocks; drops the date line and the feedx promo footer."""
    if not body_html.strip():
        return []
    root = lxml.html.fragment_fromstring(body_html, create_parent="div")
    only = root[0] if len(root) == 1 and not _clean(root.text or "") else None
    if only is not None and only.tag == "div" and any(c.tag in ("p", "div", "h3", "video") for c in only):
        root = only  # a Jekyll copy: the whole body wrapped in one more <div>
    blocks: list[Block] = []

    def add_text(text: str | None) -> None:
        t = _clean(text or "")
        if t:
            blocks.append(Paragraph(escape(t, quote=False), t))

    add_text(root.text)
    for el in root:
        if not isinstance(el.tag, str):
            continue
        tag = el.tag
        if tag == "hr" or "获取更多RSS" in el.text_content():
            break
        if tag == "div" and len(el) and el[0].tag == "i":
            pass  # <div><i>author<br>date</i></div>
        elif tag == "img":
            url = original_image_url(el.get("src", ""))
            if url:
                blocks.append(Figure(url, _image_id(url), ""))
        elif tag == "div" and el.find("small") is not None and el.find("img") is None:
            caption = _clean(el.text_content())
            if blocks and isinstance(blocks[-1], Figure) and not blocks[-1].caption:
                blocks[-1] = Figure(blocks[-1].url, blocks[-1].image_id, caption)
            elif caption:
                blocks.append(Paragraph(caption, caption))
        elif tag == "div" and el.find("img") is not None:
            url = original_image_url(el.find("img").get("src", ""))
            caption = _clean(el.text_content())
            if url:
                blocks.append(Figure(url, _image_id(url), caption))
            elif caption:
                blocks.append(Paragraph(caption, caption))
        elif tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            if _clean(el.text_content()):
                blocks.append(Heading(_clean(el.text_content())))
        elif tag == "p" and _is_heading_p(el):
            blocks.append(Heading(_clean(el.text_content())))
        elif tag == "video":
            blocks.append(Media("video", el.get("src", "")))
        elif tag == "iframe":
            blocks.append(Media("youtube", el.get("src", "")))
        elif tag == "br":
            pass
        else:
            text = _clean(el.text_content())
            if text:
                html = _inner_html(el) if tag in ("p", "div") else lxml.html.tostring(el, encoding="unicode")
                blocks.append(Paragraph(html.strip(), text))
        add_text(el.tail)
    return blocks


def _slug_from_link(link: str, article_id: int) -> str:
    """The decoded slug between `/zh/` and `/a-<id>` in the raw dump URL."""
    m = re.search(r"dw\.com/zh(?:-hant)?/(.*)/a-" + str(article_id) + r"$", link.strip())
    return unquote(m.group(1)) if m and m.group(1) else ""


def article_from_entry(entry: FeedEntry) -> Article:
    """The article a DW feed entry describes."""
    assert entry.article_id is not None
    aid = entry.article_id
    title = _clean(entry.title)
    published = entry.published or entry.feed_time or date_for_id(aid)
    if published.tzinfo is None:
        published = published.replace(tzinfo=UTC)
    author = _clean(entry.author or "")
    if author.lower().startswith("null"):
        author = ""
    refs = tuple(dict.fromkeys(r.article_id for r in entry.references if r.article_id != aid))
    return Article(
        article_id=aid,
        title=title,
        slug=_slug_from_link(entry.page_url or entry.link, aid) or title,
        published=published,
        author=author,
        kind=entry.kind,
        blocks=tuple(parse_body(entry.body_html)),
        references=refs,
        category=CATEGORIES[aid % 2] if aid % 5 else CATEGORIES[aid % len(CATEGORIES)],
    )


# Anchors for dating ids that no dump dates: two real (id, publication time) pairs.
_ID_DATES = ((54245640, datetime(2020, 7, 20, 14, 53, tzinfo=UTC)), (71613509, datetime(2025, 2, 15, 8, 3, tzinfo=UTC)))


def date_for_id(article_id: int) -> datetime:
    """A plausible publication time for an id (DW ids grow with time)."""
    (i0, t0), (i1, t1) = _ID_DATES
    seconds = (article_id - i0) * (t1 - t0).total_seconds() / (i1 - i0)
    return max(datetime(2005, 1, 1, tzinfo=UTC), t0 + timedelta(seconds=seconds))


_SUBJECTS = (
    "德国政府",
    "欧盟委员会",
    "联合国",
    "北京当局",
    "柏林市政府",
    "多名专家",
    "人权组织",
    "香港特区政府",
    "台湾外交部",
    "德国总理",
)
_VERBS = ("表示", "呼吁", "批评", "宣布", "强调", "警告", "指出", "证实")
_OBJECTS = (
    "双边关系将面临新的考验",
    "有关措施必须符合国际法",
    "经济复苏仍需要时间",
    "新的制裁方案正在讨论之中",
    "言论自由是一项重要权利",
    "供应链安全已成为优先议题",
    "谈判将在下周继续进行",
    "疫情对社会的冲击仍在持续",
    "气候目标不能因危机而推迟",
    "此事引发了广泛的关注",
)
_TOPICS = (
    "中德关系",
    "欧洲议会选举",
    "气候政策",
    "香港局势",
    "新冠疫情",
    "乌克兰战争",
    "能源转型",
    "人工智能",
    "难民政策",
    "贸易争端",
)


def _sentence(rng: random.Random) -> str:
    return f"{rng.choice(_SUBJECTS)}{rng.choice(_VERBS)}，{rng.choice(_OBJECTS)}。"


def generated_article(article_id: int, depth: int) -> Article:
    """A deterministic Chinese article for an id cited by a dump but contained in none."""
    rng = random.Random(article_id)
    topic = rng.choice(_TOPICS)
    title = f"{topic}：{rng.choice(_SUBJECTS)}{rng.choice(_VERBS)}{rng.choice(_OBJECTS)}"
    cites = cited_ids(article_id, depth)
    blocks: list[Block] = []
    image_id = 30_000_000 + rng.randrange(40_000_000)
    blocks.append(Figure(f"https://static.dw.com/image/{image_id}_303.jpg", image_id, f"{topic}（资料图片）"))
    for i in range(rng.randint(4, 8)):
        if i == 3:
            blocks.append(Heading(f"{topic}的背景"))
        text = "".join(_sentence(rng) for _ in range(rng.randint(2, 5)))
        if i == 0:
            text = "（德国之声中文网）" + text
        html = text
        if i < len(cites):
            anchor = rng.choice(_TOPICS)
            link = f'<a href="https://api.dw.com/api/detail/article/{cites[i]}" rel="ArticleRef">{anchor}</a>'
            html, text = html + link + "。", text + anchor + "。"
        blocks.append(Paragraph(html, text))
    return Article(
        article_id=article_id,
        title=title,
        slug=title,
        published=date_for_id(article_id),
        author=rng.choice(("", "", "洪沙", "乐然", "文山")),
        kind="article",
        blocks=tuple(blocks),
        references=cites,
        category=CATEGORIES[article_id % len(CATEGORIES)],
        generated=True,
    )


def cited_ids(article_id: int, depth: int) -> tuple[int, ...]:
    """The ids a generated article at `depth` cites: two older ids, none at the depth bound."""
    if depth >= MAX_GENERATED_DEPTH:
        return ()
    rng = random.Random(article_id * 7919 + 1)
    return tuple(article_id - rng.randint(1_000, 900_000) for _ in range(2))


@dataclass
class Corpus:
    """Articles by id: the dumps' own, then generated ones for every id reachable through citations."""

    articles: dict[int, Article] = field(default_factory=dict)
    depths: dict[int, int] = field(default_factory=dict)

    @classmethod
    def from_entries(cls, entries: Iterable[FeedEntry]) -> Corpus:
        corpus = cls()
        for entry in entries:
            if entry.is_dw and entry.article_id not in corpus.articles:
                corpus.articles[entry.article_id] = article_from_entry(entry)
                corpus.depths[entry.article_id] = 0
        frontier = [(ref, 1) for a in list(corpus.articles.values()) for ref in a.references]
        while frontier:
            aid, depth = frontier.pop()
            if aid in corpus.depths and corpus.depths[aid] <= depth:
                continue
            corpus.depths[aid] = depth
            frontier.extend((c, depth + 1) for c in cited_ids(aid, depth))
        return corpus

    @classmethod
    def from_paths(cls, paths: Iterable[str | Path]) -> Corpus:
        """Read dumps (files, folders, globs); unreadable files are skipped."""
        return cls.from_entries(r.entry for r in iter_dumps(paths) if r.entry is not None)

    def __contains__(self, article_id: int) -> bool:
        return article_id in self.depths

    def __len__(self) -> int:
        return len(self.depths)

    def get(self, article_id: int) -> Article | None:
        """The article for an id, generating (and keeping) cited ones on first use."""
        if article_id not in self.depths:
            return None
        if article_id not in self.articles:
            self.articles[article_id] = generated_article(article_id, self.depths[article_id])
        return self.articles[article_id]

    def dump_ids(self) -> list[int]:
        """Ids that come from dumps, in id order."""
        return sorted(i for i, d in self.depths.items() if d == 0)
