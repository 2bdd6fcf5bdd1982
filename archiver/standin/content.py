"""What the stand-in serves, built purely from an Article: the www.dw.com page, the API JSON, robots.txt.

The page follows DW's 2023+ layout (de_a-68117411 and de_a-65897191 in dw-samples): JSON-LD NewsArticle,
`header h1`, `p.teaser-text`, `div.rich-text`, related topics, more on the topic, navigation, footer,
promo, cookie notice and an `__APOLLO_STATE__` script, padded to a size in the real 190-330 KB range.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from html import escape

from archiver.standin import jackson
from archiver.standin.corpus import Article, Figure, Heading, Media, Paragraph, permalink

IMAGE_SIZES = ((220, 124, "301"), (460, 259, "302"), (700, 394, "303"), (940, 529, "304"))
Lookup = Callable[[int], Article | None]

_API_LINK = re.compile(
    r'<a href="https://api\.dw\.com/api/detail/(?:article|comment)/(\d+)" rel="(?:ArticleRef|CommentRef)">'
)
_TOPIC_SPAN = re.compile(r'<span data-id="(\d+)" data-type="AUTO_TOPIC"[^>]*>(.*?)</span>', re.S)
_EXTERNAL = re.compile(r'<a href="([^"]*)" rel="ExternalRef"[^>]*>')


def iso_ms(when: datetime) -> str:
    """`2024-01-30T14:13:12.269Z`, as DW writes dates."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _attr(text: str) -> str:
    return escape(text, quote=True)


def _page_html(html: str, lookup: Lookup) -> str:
    """A feed paragraph as the page shows it: API links become page links, topic spans topic links."""

    def article_link(m: re.Match[str]) -> str:
        ref = lookup(int(m.group(1)))
        path = ref.path if ref else f"/zh/a-{m.group(1)}"
        return f'<a class="internal-link" href="{_attr(path)}">'

    html = _API_LINK.sub(article_link, html)
    html = _TOPIC_SPAN.sub(
        lambda m: f'<a class="internal-link" href="/zh/{_attr(m.group(2))}/t-{m.group(1)}">{m.group(2)}</a>', html
    )
    return _EXTERNAL.sub(
        lambda m: f'<a class="external-link" href="{m.group(1)}" target="_blank" rel="noopener noreferrer">', html
    )


def _figure_html(fig: Figure) -> str:
    base = f"https://static.dw.com/image/{fig.image_id}_" if fig.image_id else fig.url.rsplit("_", 1)[0] + "_"
    caption = _attr(fig.caption)
    return (
        '<figure class="placeholder-image master_landscape big">'
        f'<img data-format="MASTER_LANDSCAPE" data-id="{fig.image_id or ""}" data-url="{base}${{formatId}}.jpg" '
        f'data-aspect-ratio="16/9" alt="{caption}" style="padding-bottom: 56.25%; height: 0; max-height: 0;">'
        f'<figcaption class="img-caption">{caption}</figcaption></figure>'
    )


def _lead_figure(fig: Figure, chrome: int = 0) -> str:
    base = f"https://static.dw.com/image/{fig.image_id}"
    query = f"?v={chrome}" if chrome else ""
    sources = "".join(
        f'<source type="image/jpeg" srcset="{", ".join(f"{base}_{f}.jpg {w}w" for f, w in widths)}" media="{media}">'
        for media, widths in (
            ("(min-width: 0px) and (max-width: 575px)", (("800", 50), ("801", 129), ("802", 352), ("803", 575))),
            ("(min-width: 576px) and (max-width: 991px)", (("600", 78), ("601", 201), ("602", 379), ("604", 767))),
            ("(min-width: 992px) ", (("1000", 80), ("1002", 768), ("1004", 1200))),
        )
    )
    caption = _attr(fig.caption)
    return (
        f'<figure class="sc-eTdDZh gPnUND lead-image"><picture class="sc-hZvXUP jOdTbH">{sources}'
        f'<img fetchpriority="high" src="{base}_302.jpg{query}" alt="{caption}" class="sc-iaJaUu kpBqmy"></picture>'
        + (f'<figcaption class="sc-kDnyiN bKwoJO">{caption}</figcaption>' if fig.caption else "")
        + "</figure>"
    )


def _rich_text(blocks: list, lookup: Lookup) -> str:
    out = []
    for i, block in enumerate(blocks):
        if isinstance(block, Paragraph):
            out.append(f"<p>{_page_html(block.html, lookup)}</p>")
        elif isinstance(block, Heading):
            out.append(f"<h2>{escape(block.text, quote=False)}</h2>")
        elif isinstance(block, Figure):
            out.append(_figure_html(block))
        elif isinstance(block, Media) and block.kind == "video":
            out.append(
                '<div class="sc-gVAlfg vjs-wrapper video-player"><video class="video-js" controls preload="none" '
                f'src="{_attr(block.src)}"></video></div>'
            )
        elif isinstance(block, Media):
            out.append(
                f'<div class="sc-bZkfAO embed youtube"><iframe src="{_attr(block.src)}" width="100%" height="259" '
                'frameborder="0" allowfullscreen=""></iframe></div>'
            )
        if i == 3:
            out.append('<span data-slot-id="Article_InContent-1" class="rich-text-ad"></span>')
    return "\n\n".join(out)


def _split_lead(article: Article) -> tuple[Figure, list]:
    blocks = list(article.blocks)
    if blocks and isinstance(blocks[0], Figure) and blocks[0].image_id:
        return blocks[0], blocks[1:]
    return article.lead_image, blocks


def _json_ld(article: Article) -> str:
    lead = article.lead_image
    data = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "mainEntityOfPage": {"@type": "WebPage", "@id": f"https://www.dw.com/zh/{article.slug}/a-{article.article_id}"},
        "publisher": {
            "@type": "Organization",
            "name": "Deutsche Welle",
            "logo": {
                "@type": "ImageObject",
                "url": "https://dw.com/images/icons/favicon-180x180.png",
                "width": "180",
                "height": "180",
            },
        },
        "author": [{"@type": "Person", "name": article.author}] if article.author else [],
        "headline": article.title,
        "image": [
            f"https://static.dw.com/image/{lead.image_id}_804.jpg",
            f"https://static.dw.com/image/{lead.image_id}_604.jpg",
        ],
        "datePublished": iso_ms(article.published),
        "dateModified": iso_ms(article.modified),
    }
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")


_NAV = (
    ("在线报导", "/zh/在线报导/s-9058"),
    ("时政风云", "/zh/时政风云/s-1681"),
    ("经济纵横", "/zh/经济纵横/s-1682"),
    ("文化经纬", "/zh/文化经纬/s-1683"),
    ("科技环境", "/zh/科技环境/s-1684"),
    ("德国专题", "/zh/德国专题/s-1685"),
    ("媒体中心", "/zh/媒体中心/s-100968"),
    ("图片集", "/zh/图片集/s-100985"),
    ("德语学习", "https://learngerman.dw.com/zh/overview"),
)


@lru_cache(maxsize=1)
def _stylesheet() -> str:
    """About 55 KB of styled-components CSS, the same on every page like the real site's."""
    rng = random.Random(20230613)
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    props = (
        "display:flex;flex-direction:column;",
        "margin:0 auto;padding:0 15px;",
        "font-family:'Noto Sans SC',Arial,sans-serif;font-size:1.6rem;line-height:2.8rem;",
        "color:#00293d;background-color:#fff;",
        "position:relative;overflow:hidden;",
        "@media (min-width:992px){max-width:960px;}",
        "transition:color .2s ease-in-out;text-decoration:none;",
        "border-bottom:1px solid #e0dfde;",
    )
    rules = []
    size = 0
    while size < 55_000:
        name = "".join(rng.choice(letters) for _ in range(6))
        rule = f".sc-{name}{{{''.join(rng.sample(props, 3))}}}"
        rules.append(rule)
        size += len(rule)
    return "html .flying-focus-target{outline:none!important;}" + "".join(rules)


def _navigation() -> str:
    items = "".join(
        f'<li class="nav-item"><a href="{_attr(href)}" class="sc-hLclGa NHSoB" tabindex="0">{name}</a></li>'
        for name, href in _NAV
    )
    return (
        '<ol class="sc-elITqc jrZtoF focus-menu-shown"><li><a href="#main-content" class="sc-cbnPAL cLklnp">'
        '跳到内容</a></li><li><a href="#navigation" class="sc-cbnPAL cLklnp">跳到主菜单</a></li>'
        '<li><a href="#footer" class="sc-cbnPAL cLklnp">跳到更多DW网站</a></li></ol>'
        '<div class="sc-jmxxdg hqOIgT focus-menu-shown"><a href="/zh/在线报导/s-9058" class="sc-hLclGa NHSoB logo" '
        'aria-label="DW 中文 | 德国之声"><svg class="logo-icon" viewBox="0 0 66 36"><path d="M0 0h66v36H0z"/></svg></a>'
        '<nav class="sc-UhFNL bNHSlp"><div id="navigation"></div>'
        f'<div class="nav-position"><ul>{items}</ul></div></nav>'
        '<div class="sc-eGknfI fsQQqI media-group"><a href="/zh/直播/s-100974">直播电视</a></div></div>'
    )


def _season_banner(chrome: int) -> str:
    """A site-wide banner that comes and goes (chrome, not content)."""
    if not chrome:
        return ""
    return (
        f'<div class="sc-banner site-banner" data-tracking-name="banner-{chrome}">'
        f'<a href="/zh/专题/s-{60000 + chrome}">'
        f"专题报道 {chrome}：德国之声年度回顾</a></div>"
    )


def _footer() -> str:
    groups = (
        (
            "关于德国之声",
            (("关于我们", "https://corporate.dw.com/zh/"), ("新闻发布", "https://corporate.dw.com/de/presse/s-2981")),
        ),
        (
            "德国之声的服务",
            (("学德语", "https://learngerman.dw.com/zh/overview"), ("DW Akademie", "https://akademie.dw.com/")),
        ),
        (
            "服务",
            (
                ("订阅新闻", "/zh/newsletter/s-100999"),
                ("联系我们", "/zh/联系我们/s-9059"),
                ("常见问题", "/zh/faq/s-100998"),
            ),
        ),
    )
    sections = "".join(
        f'<div role="group"><h2>{title}</h2><ul>'
        + "".join(f'<li><a href="{_attr(h)}" target="_blank"><span>{n}</span></a></li>' for n, h in links)
        + "</ul></div>"
        for title, links in groups
    )
    return (
        f'<footer id="footer" class="sc-jtrUWv haVSSs"><section data-tracking-name="footer-section-main">'
        f'<div class="row">{sections}</div></section>'
        '<section data-tracking-name="footer-section-social-media"><h2>关注我们</h2><ul>'
        '<a href="https://www.facebook.com/dw.chinese" rel="noopener noreferrer nofollow">facebook</a>'
        '<a href="https://www.youtube.com/dwchinese" rel="noopener noreferrer nofollow">youtube</a>'
        '<a href="https://twitter.com/dw_chinese" rel="noopener noreferrer nofollow">x-twitter</a></ul></section>'
        '<section data-tracking-name="footer-section-standard-links"><ul><li><a href="/zh/版本说明/a-18004808">'
        '版本说明</a></li><li><a href="/zh/数据保护/a-18004812">数据保护</a></li>'
        '<li><a href="/zh/无障碍声明/a-51553138">'
        '无障碍声明</a></li></ul><img src="/images/logos/dw-logo-footer.png" '
        'srcset="/images/logos/dw-logo-footer.png 1x, /images/logos/dw-logo-footer@2x.png 2x" alt="DW" '
        'width="66" height="36"><p>© 2025 德国之声</p></section></footer>'
    )


def _more_on_topic(article: Article, lookup: Lookup, chrome: int = 0) -> str:
    teasers = []
    refs = article.references[::-1] if chrome else article.references
    for ref_id in refs[: 6 + chrome]:
        ref = lookup(ref_id)
        if ref is None:
            continue
        teasers.append(
            '<div class="sc-jSFjdj basic-teaser"><figure><img src="https://static.dw.com/image/'
            f'{ref.lead_image.image_id}_301.jpg{f"?v={chrome}" if chrome else ""}" alt=""></figure>'
            '<div class="teaser-data">'
            f'<h3><a href="{_attr(ref.path)}" class="sc-hLclGa NHSoB">{escape(ref.title, quote=False)}</a></h3>'
            f"<time>{ref.published:%d.%m.%Y}</time></div></div>"
        )
    if not teasers:
        return ""
    return (
        '<section class="row"><div class="col"><section class="more-on-topic" '
        f'data-tracking-name="content-block-more-on-topic"><h2>相关内容</h2>{"".join(teasers)}</section></div></section>'
    )


@lru_cache(maxsize=1)
def _filler_strings() -> tuple[str, ...]:
    """Translation-table values: short runs of CJK characters (3 UTF-8 bytes each)."""
    rng = random.Random(4)
    return tuple("".join(chr(0x4E00 + rng.randrange(0x5000)) for _ in range(rng.randint(4, 24))) for _ in range(4096))


def _apollo_state(article: Article, target_size: int, used: int) -> str:
    """The SSR cache script; its filler translation table brings the page to `target_size` bytes."""
    content = {
        "__typename": "Article",
        "id": article.article_id,
        "name": article.title,
        "teaser": article.teaser,
        "namedUrl": article.path,
        "shortUrl": permalink(article.article_id),
        "firstPublicationDate": iso_ms(article.published),
        "lastModifiedDate": iso_ms(article.modified),
        "categoryName": article.category[0],
        "persons": [{"__typename": "Person", "fullName": article.author}] if article.author else [],
    }
    state = {"ROOT_QUERY": {"__typename": "Query"}, f"Article:{article.article_id}": content}
    base = "window.__APOLLO_STATE__=" + json.dumps(state, ensure_ascii=False, separators=(",", ":"))
    rng = random.Random(article.article_id)
    table: dict[str, str] = {}
    size = used + len(base.encode("utf-8")) + 60
    words = ("content_block", "navigation", "teaser", "headline", "label", "button", "region", "media_center")
    pool = _filler_strings()
    while size < target_size:
        key = f"{rng.choice(words)}.{rng.choice(words)}.{len(table)}"
        value = pool[rng.randrange(len(pool))]
        table[key] = value
        size += len(key) + len(value) * 3 + 6
    state["ROOT_QUERY"]['i18nByLang({"lang":"CHINESE"})'] = {"__typename": "Translations", "all": table}
    return "window.__APOLLO_STATE__=" + json.dumps(state, ensure_ascii=False, separators=(",", ":")).replace(
        "</", "<\\/"
    )


def target_page_size(article_id: int) -> int:
    """A page size in the measured 190-330 KB range, fixed per id."""
    return 195_000 + (article_id * 2654435761) % 130_000


def render_page(article: Article, lookup: Lookup, *, revision: int = 0, chrome: int = 0) -> str:
    """The full www.dw.com article page; `revision` > 0 adds an update note (content that changes).

    `chrome` > 0 varies what is not content (navigation, promo, related topics and articles, image query strings).
    """
    lead, blocks = _split_lead(article)
    if revision:
        blocks = [*blocks, Paragraph(f"（更新 {revision}）本文已更新。", f"（更新 {revision}）本文已更新。")]
    title = escape(article.title, quote=False)
    teaser = escape(article.teaser, quote=False)
    canonical = article.page_url
    date_de = f"{article.published:%d.%m.%Y}"
    metas = [
        f'<meta data-rh="true" name="description" content="{_attr(article.teaser)}"/>',
        '<meta data-rh="true" name="robots" content="max-snippet:-1, max-video-preview:-1, max-image-preview:large"/>',
        '<meta data-rh="true" property="og:site_name" content="dw.com"/>',
        f'<meta data-rh="true" property="og:title" content="{_attr(article.title)} – DW – {date_de}"/>',
        f'<meta data-rh="true" property="og:url" content="{canonical}"/>',
        f'<meta data-rh="true" property="og:image" content="https://static.dw.com/image/{lead.image_id}_6.jpg"/>',
        '<meta data-rh="true" property="og:type" content="article"/>',
        f'<meta data-rh="true" property="article:published_time" content="{iso_ms(article.published)}"/>',
        f'<meta data-rh="true" property="article:modified_time" content="{iso_ms(article.modified)}"/>',
        '<meta data-rh="true" name="twitter:card" content="summary_large_image"/>',
        '<meta data-rh="true" name="twitter:site" content="@dw_chinese"/>',
    ]
    metas += [f'<meta data-rh="true" property="article:tag" content="{_attr(w)}"/>' for w in article.title.split()[:8]]
    author = (
        '<div class="sc-ihxOxR exeCrb author-details"><span><span class="sc-iJfdHH author no-link">'
        f"{escape(article.author, quote=False)}</span></span></div>"
        if article.author
        else ""
    )
    data_layer = json.dumps(
        {
            "pageData": {
                "categoryLevel1": "在线报导",
                "categoryLevel2": article.category[0],
                "contentId": article.article_id,
            }
        },
        ensure_ascii=False,
    )
    share = permalink(article.article_id)
    head = (
        '<!doctype html>\n<html lang="zh-Hans">\n  <!--\n'
        "      !IMPORTANT!: Before changing the file structure here, please check how SSR code depends on it\n"
        "    -->\n<head>\n"
        '  <meta charset="utf-8">\n'
        '  <meta name="viewport" content="width=device-width, initial-scale=1, shrink-to-fit=no">\n'
        '  <meta name="theme-color" content="#000000">\n\n'
        '  <link rel="icon" type="image/png" href="/images/icons/favicon-16x16.png" sizes="16x16">\n'
        '  <link rel="icon" type="image/png" href="/images/icons/favicon-32x32.png" sizes="32x32">\n'
        '  <link rel="apple-touch-icon" href="/images/icons/favicon-180x180.png" sizes="180x180">\n'
        '  <link rel="preconnect" href="https://commons.dw.com">\n\n'
        f'  <title data-rh="true">{title} – DW – {date_de}</title>\n'
        '  <script type="module" defer="true" crossorigin src="/static/index-ba192e66.js"></script>\n'
        '  <link rel="stylesheet" href="/static/index-ef709cb8.css">\n'
        '  <link rel="preload" href="/static/fonts/noto-sans-sc-regular-3f1a9c20.woff2" as="font" type="font/woff2" '
        "crossorigin>\n"
        f'<link data-rh="true" rel="canonical" href="{canonical}"/>'
        '<link data-rh="true" rel="preconnect" href="https://static.dw.com"/>'
        '<link data-rh="true" rel="manifest" href="/zh/manifest.json"/>'
        f'<link data-rh="true" rel="amphtml" href="https://amp.dw.com{article.path}"/>{"".join(metas)}\n'
        f"  <script>if(!window.dataLayer) {{ window.dataLayer = [{data_layer}]; }}</script>\n"
        "  <script>(function(w,d,s,l,i){w[l]=w[l]||[];w[l].push({'gtm.start':new Date().getTime(),"
        "event:'gtm.js'});})(window,document,'script','dataLayer','GTM-TMM8FB');</script>\n"
        f'  <script type="application/ld+json">{_json_ld(article)}</script>\n'
        f'  <style data-styled="true" data-styled-version="5.3.6">{_stylesheet()}</style>\n'
        "</head>\n"
    )
    related = "".join(
        f'<a href="/zh/{_attr(w)}/t-{17_000_000 + (article.article_id + i) % 999_999}" role="button" tabindex="0">'
        f"{escape(w)}</a>"
        for i, w in enumerate((article.category[0], "中国", "德国", "欧盟", *(("热点", "气候", "科技")[:chrome])))
    )
    extra = f"第{chrome}期特刊现已上线。" if chrome else ""
    promo = f"<h2>订阅德国之声中文新闻</h2><p>每天为您精选德国之声中文网的最新报道。{extra}</p>"
    body = (
        "<body>\n<noscript>You need to enable JavaScript to run this app.</noscript>\n"
        f'<div id="root"><div class="sc-dkjKgF Oldwm">{_navigation()}{_season_banner(chrome)}\n'
        '<div class="sc-fHIGvW jTgZVM container-fluid" id="main-content"><section class="row">'
        '<div class="detail-zone col">\n'
        '<article class="sc-kATywh dKNoQg"><div class="sc-jlYcmd content-area"><header class="sc-osfUn cknHRf">\n'
        f'<div class="kicker" data-tracking-name="content-detail-kicker"><span>{article.category[0]}</span></div>\n'
        f'<h1 class="sc-iJfdHH sc-ilpitK cmgBOB has-italic">{title}</h1>{author}\n'
        f'<span class="time-area"><span class="publication"><time aria-hidden="true">{date_de}</time>'
        f'<span class="sr-only">{article.published:%Y年%m月%d日}</span></span></span>\n'
        f'<p class="sc-iJfdHH sc-cCIIiH cmgBOB teaser-text has-italic">{teaser}</p></header>\n'
        '<section class="sc-jOmZZe fxssNa in-line closed" data-tracking-name="sharing-icons-inline">'
        '<div class="always-visible">\n'
        f'<a href="https://www.facebook.com/sharer/sharer.php?u={share}" target="_blank" '
        'rel="noopener noreferrer nofollow" title="外部链接 — 分享到 Facebook" class="facebook">Facebook</a>\n'
        f'<a href="https://twitter.com/intent/tweet?url={share}" target="_blank" '
        'rel="noopener noreferrer nofollow" title="外部链接 — 分享到 X" class="x-twitter">X</a></div>\n'
        f'<div class="copy-button-wrapper closed"><span>{share}</span></div></section>\n'
        f"{_lead_figure(lead, chrome)}\n"
        '<div class="sc-grZQYV advertisement no-box"><span class="label-top">广告</span>'
        '<div id="dw_d_article_top" class="gpt-slot"></div></div>\n'
        f'<div class="sc-iJfdHH sc-lbyHcV cmgBOB rich-text has-italic">{_rich_text(blocks, lookup)}\n</div>'
        '<footer class="sc-eymMWw dmVBiP"><div class="feedback"><div role="button" id="feedback-button">'
        "请给我们反馈！</div></div></footer></div></article></div></section>\n"
        '<section class="row"><div class="alternating-zone col odd-alternating">'
        '<section id="related-topics" data-tracking-name="section-related-topics">'
        f'<div><h2>相关主题</h2><aside>{related}</aside></div><div id="post-related-topics"></div></section>'
        "</div></section>\n"
        f"{_more_on_topic(article, lookup, chrome)}\n"
        '<section class="row"><div class="col promo">'
        '<section class="sc-promo newsletter-promo" data-tracking-name="promo-newsletter">'
        f"{promo}"
        '<a href="/zh/newsletter/s-100999">立即订阅</a></section></div></section>\n'
        f"</div>{_footer()}\n"
        '<div class="sc-cookie cookie-notice" role="dialog" aria-label="Cookie">'
        "<p>我们使用cookies改善我们的服务。更多信息请参阅我们的数据保护声明。</p><button>确定</button></div>\n"
        '</div><div id="flying-focus" class="sc-bcPKhP dLdKVz"></div>\n'
    )
    used = len(head.encode("utf-8")) + len(body.encode("utf-8")) + 40
    apollo = _apollo_state(article, target_page_size(article.article_id), used)
    return head + body + f"<script>{apollo}</script>\n</div>\n</body>\n</html>\n"


def _image_object(image_id: int, name: str, description: str | None) -> dict:
    obj: dict = {"id": image_id, "type": "Image", "name": name}
    if description:
        obj["description"] = description
    obj["sizes"] = [
        {"width": w, "height": h, "url": f"https://static.dw.com/image/{image_id}_{fmt}.jpg"}
        for w, h, fmt in IMAGE_SIZES
    ]
    return obj


def api_document(article: Article, lookup: Lookup, *, revision: int = 0) -> dict:
    """The `/api/detail/article/<id>` object, keys in DW's order."""
    aid = article.article_id
    category, category_id = article.category
    lead = article.lead_image
    ymd = f"{article.published:%Y%m%d}"
    body: list[dict] = []
    texts: list[str] = []
    for block in article.blocks:
        if isinstance(block, Paragraph):
            body.append({"type": "Paragraph", "text": f"<p>{block.html}</p>"})
            texts.append(block.text)
        elif isinstance(block, Heading):
            body.append({"type": "Paragraph", "text": f"<h2>{escape(block.text, quote=False)}</h2>"})
            texts.append(block.text)
        elif isinstance(block, Figure) and block.image_id and block is not lead:
            body.append(_image_object(block.image_id, block.caption or article.title, block.caption or None))
        elif isinstance(block, Media) and block.kind == "video":
            body.append({"type": "Video", "name": article.title, "url": block.src})
    if revision:
        note = f"（更新 {revision}）本文已更新。"
        body.append({"type": "Paragraph", "text": f"<p>{note}</p>"})
        texts.append(note)
    refs = []
    for ref_id in article.references:
        ref = lookup(ref_id)
        refs.append(
            {
                "type": "ArticleRef",
                "id": ref_id,
                "name": ref.title if ref else "",
                "url": f"https://api.dw.com/api/detail/article/{ref_id}",
            }
        )
    groups: list[dict] = [
        {
            "name": "关键词",
            "type": "Keywords",
            "items": [
                {
                    "type": "SearchRef",
                    "name": category,
                    "url": f"https://api.dw.com/api/search/global?terms={category}&languageId=4",
                }
            ],
        }
    ]
    if refs:
        groups.append({"name": "相关内容", "type": "RelatedContent", "items": refs})
    return {
        "type": "Article",
        "id": aid,
        "languageId": 4,
        "trackingInfo": {
            "level2": "4",
            "page": f"<prefix>::在线报导::{category}::{article.title}",
            "customCriteria": {
                "x8": "",
                "x9": ymd,
                "x10": f"<prefix>::在线报导::{category}",
                "x1": "1",
                "x2": "4",
                "X14": "",
                "x3": str(aid),
                "x4": str(category_id),
                "x5": article.title,
                "X15": "",
                "x6": "1",
                "X18": "",
                "x7": "",
            },
        },
        "mainContent": _image_object(lead.image_id or 0, lead.caption or article.title, lead.caption or None),
        "name": article.title,
        "teaser": article.teaser,
        "categoryName": category,
        "text": " ".join(texts),
        "permaLink": permalink(aid),
        "displayDate": iso_ms(article.published),
        "body": body,
        "referenceGroups": groups,
        "commentsEnabled": False,
    }


def render_api(article: Article, lookup: Lookup, *, revision: int = 0) -> str:
    """The API JSON text, Jackson-printed."""
    return jackson.dumps(api_document(article, lookup, revision=revision))


ROBOTS = {
    "www.dw.com": "User-agent: *\nDisallow: /search/\nDisallow: /*?maca=\nAllow: /\n\nSitemap: https://www.dw.com/sitemap.xml\n",
    "api.dw.com": "User-agent: *\nAllow: /\n",
    "static.dw.com": "User-agent: *\nAllow: /\n",
}


def not_found_page() -> str:
    """DW's 404 page, short."""
    return (
        '<!doctype html>\n<html lang="zh-Hans"><head><meta charset="utf-8"><title>404 – DW</title></head>'
        "<body><h1>找不到该页面</h1><p>很抱歉，您请求的页面不存在。</p></body></html>\n"
    )
