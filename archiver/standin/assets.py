"""The static files a 2023+ www.dw.com page loads: hashed stylesheet and script, fonts, icons, chrome images.

One hashed name for every page, as DW deploys them. The stylesheet `@import`s a font sheet by a relative name and
names fonts and images with `url()`, absolute, root-relative and relative, on www.dw.com and static.dw.com; each
file is deterministic, so its ETag and digest stay the same from run to run.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache

from archiver.standin.images import png

STYLESHEET = "/static/index-ef709cb8.css"
SCRIPT = "/static/index-ba192e66.js"
FONT_SHEET = "/static/fonts-5d2c41a0.css"  # @import'ed by the stylesheet as "fonts-5d2c41a0.css"
FONTS = ("/static/fonts/noto-sans-sc-regular-3f1a9c20.woff2", "/static/fonts/noto-sans-sc-bold-7b20e4d1.woff2")
ICONS = ("/images/icons/favicon-16x16.png", "/images/icons/favicon-32x32.png", "/images/icons/favicon-180x180.png")
FOOTER_LOGO = "/images/logos/dw-logo-footer.png"
FOOTER_LOGO_2X = "/images/logos/dw-logo-footer@2x.png"
ARROW = "/images/icons/arrow-right.svg"  # relative in the stylesheet: ../images/icons/arrow-right.svg
LOGO = "/images/logos/dw-logo.svg"  # absolute in the stylesheet: https://www.dw.com/images/logos/dw-logo.svg
PATTERN = "/assets/pattern-2x.png"  # on static.dw.com, absolute in the stylesheet
# Colours the stylesheet gives, which a replayed page shows only if the stylesheet was archived and applied.
KICKER_COLOR = "rgb(0, 116, 224)"

# A year, as DW's CDN sends for hashed names.
CACHE_CONTROL = "public, max-age=31536000, immutable"


@dataclass(frozen=True, slots=True)
class Asset:
    """One static file: its bytes, type and whether gzip is worth it."""

    body: bytes
    content_type: str
    compressible: bool


def _rules(seed: int, size: int) -> str:
    """Component CSS filler of about `size` bytes, like the rest of a bundled stylesheet."""
    rng = random.Random(seed)
    props = (
        "display:flex;align-items:center;",
        "margin:0 0 1.6rem;padding:0 1.5rem;",
        "font-size:1.4rem;line-height:2rem;letter-spacing:.02em;",
        "color:#00293d;background:#fff;",
        "border-radius:4px;box-shadow:0 1px 4px rgba(0,0,0,.16);",
        "transition:opacity .2s ease-out;opacity:1;",
        "@media (min-width:768px){padding:0 3rem;}",
        "grid-template-columns:repeat(12,1fr);gap:1.6rem;",
    )
    out, total = [], 0
    while total < size:
        name = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(7))
        rule = f".dw-{name}{{{''.join(rng.sample(props, 3))}}}\n"
        out.append(rule)
        total += len(rule)
    return "".join(out)


def stylesheet() -> str:
    """The page stylesheet: font sheet import, base styles naming images by url(), then bundle filler."""
    head = (
        '@import "fonts-5d2c41a0.css";\n'
        ":root{--dw-blue:#0074e0;--dw-dark:#00293d}\n"
        'body{margin:0;font-family:"Noto Sans SC","DW Noto Sans",Arial,sans-serif;color:#00293d;background:#fff}\n'
        f".kicker{{color:{KICKER_COLOR};font-weight:700;text-transform:uppercase;font-size:1.3rem}}\n"
        'h1.has-italic{font-family:"Noto Sans SC",serif;font-weight:700;font-size:3.2rem;line-height:1.25}\n'
        ".logo{display:inline-block;width:66px;height:36px;line-height:0;"
        "background:url(https://www.dw.com/images/logos/dw-logo.svg) no-repeat center/contain}\n"
        ".nav-item a::after{content:'';display:inline-block;width:12px;height:12px;"
        "background-image:url('../images/icons/arrow-right.svg')}\n"
        'footer#footer{background:#00293d url("https://static.dw.com/assets/pattern-2x.png") repeat;color:#fff}\n'
        "html{font-size:62.5%}\n"
        "ol.focus-menu-shown,.sr-only,noscript,.advertisement{position:absolute;left:-10000px;width:1px;height:1px;"
        "overflow:hidden}\n"
        ".logo-icon{width:66px;height:36px;visibility:hidden}\n"
        "div.focus-menu-shown{display:flex;align-items:center;gap:2.4rem;padding:1.2rem 2.4rem;"
        "border-bottom:1px solid #e0dfde;font-size:1.5rem}\n"
        "nav ul{display:flex;flex-wrap:wrap;gap:1.6rem;list-style:none;margin:0;padding:0}\n"
        "nav a,.media-group a{color:#00293d;text-decoration:none;font-weight:700}\n"
        "#main-content{max-width:960px;margin:0 auto;padding:2.4rem 1.5rem}\n"
        "#main-content section.row{display:block}\n"
        ".time-area{display:block;color:#6d6d6d;font-size:1.4rem;margin:.8rem 0}\n"
        ".teaser-text{font-size:2rem;line-height:3rem;font-weight:700}\n"
        "section.in-line a{display:inline-block;margin-right:1rem;color:#0074e0;font-size:1.3rem}\n"
        ".copy-button-wrapper{display:none}\n"
        "figure{margin:2.4rem 0}figure img{max-width:100%;height:auto;display:block;background:#e0dfde}\n"
        ".lead-image img{width:100%;aspect-ratio:16/9;object-fit:cover}\n"
        "figcaption{font-size:1.3rem;color:#6d6d6d;margin-top:.6rem}\n"
        ".rich-text{font-size:1.8rem;line-height:3rem}.rich-text p{margin:0 0 2.4rem}\n"
        ".rich-text a{color:#0074e0}\n"
        "#related-topics aside a{display:inline-block;margin:0 .8rem .8rem 0;padding:.4rem 1.2rem;"
        "border:1px solid #0074e0;border-radius:2rem;color:#0074e0;text-decoration:none;font-size:1.4rem}\n"
        ".basic-teaser{display:inline-block;width:30%;margin:0 1.5% 2rem 0;vertical-align:top;font-size:1.4rem}\n"
        ".basic-teaser a{color:#00293d;text-decoration:none}\n"
        "footer#footer{padding:2.4rem;font-size:1.4rem}footer#footer a{color:#fff}\n"
        "footer#footer ul{list-style:none;padding:0}footer#footer h2{font-size:1.6rem}\n"
        ".cookie-notice{background:#f1f3f5;padding:1rem 2.4rem;font-size:1.3rem}\n"
    )
    return head + _rules(20230613, 90_000)


def font_sheet() -> str:
    """The @font-face rules, naming the font files root-relative."""
    return "".join(
        f'@font-face{{font-family:"DW Noto Sans";font-style:normal;font-weight:{weight};font-display:swap;'
        f'src:url({path}) format("woff2")}}\n'
        for weight, path in zip((400, 700), FONTS, strict=True)
    )


def script() -> str:
    """The page's module script: marks the document as run; the rest is bundle filler that defines and does nothing."""
    rng = random.Random(20231101)
    lines = ['document.documentElement.dataset.dwApp = "ready";\n']
    total = 0
    n = 0
    while total < 70_000:
        words = " ".join(rng.choice(("article", "teaser", "image", "video", "audio", "live")) for _ in range(12))
        line = f'const m{n} = Object.freeze({{ id: {n}, label: "{words}" }});\n'
        lines.append(line)
        total += len(line)
        n += 1
    lines.append("export default { ready: true };\n")
    return "".join(lines)


def font_bytes(path: str) -> bytes:
    """Deterministic bytes of a font file's size (a WOFF2 signature, then filler)."""
    rng = random.Random(path)
    return b"wOF2\x00\x01\x00\x00" + rng.randbytes(24_000)


def svg(label: str, viewbox: str, shape: str) -> bytes:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="{viewbox}"><title>{label}</title>{shape}</svg>\n'
    ).encode()


LOGO_SVG = svg(
    "DW",
    "0 0 66 36",
    '<rect width="66" height="36" rx="4" fill="#0074e0"/><text x="33" y="26" font-family="Arial" font-size="22" '
    'font-weight="700" fill="#fff" text-anchor="middle">DW</text>',
)
ARROW_SVG = svg("arrow", "0 0 12 12", '<path d="M4 2l4 4-4 4" fill="none" stroke="#0074e0" stroke-width="2"/>')


@cache
def assets() -> dict[tuple[str, str], Asset]:
    """Every static file by (host, path)."""
    www = "www.dw.com"
    files: dict[tuple[str, str], Asset] = {
        (www, STYLESHEET): Asset(stylesheet().encode(), "text/css", True),
        (www, FONT_SHEET): Asset(font_sheet().encode(), "text/css", True),
        (www, SCRIPT): Asset(script().encode(), "application/javascript", True),
        (www, ARROW): Asset(ARROW_SVG, "image/svg+xml", True),
        (www, LOGO): Asset(LOGO_SVG, "image/svg+xml", True),
        (www, FOOTER_LOGO): Asset(png(66, 36), "image/png", False),
        (www, FOOTER_LOGO_2X): Asset(png(132, 72), "image/png", False),
        ("static.dw.com", PATTERN): Asset(png(32, 32), "image/png", False),
    }
    for path in FONTS:
        files[(www, path)] = Asset(font_bytes(path), "font/woff2", False)
    for path in ICONS:
        side = int(path.rsplit("-", 1)[1].split("x")[0])
        files[(www, path)] = Asset(png(side, side), "image/png", False)
    return files
