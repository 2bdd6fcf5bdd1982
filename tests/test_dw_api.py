"""parse_article_json on the real api.dw.com shapes in tests/data/dw-samples/api, and on anything else."""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archiver.dw.api import ApiArticle, ApiError, ApiImage, parse_article_json
from archiver.dw.script import chinese_script

API = Path(__file__).parent / "data" / "dw-samples" / "api"
HEADS = sorted(API.glob("*.head.txt"))


def completed(head: Path, tail: str) -> bytes:
    """A real, truncated article head (cut inside `text`) closed with `tail`: the rest of the documented shape."""
    raw = head.read_bytes().decode("utf-8", "ignore")  # the cut may split a character
    raw = re.sub(r"(?<!\\)(\\\\)*\\$", lambda m: m.group(0)[:-1], raw)  # or an escape
    return (raw + '" ,\n' + tail + "\n}").encode("utf-8")


def tail_for(article_id: int, day: str) -> str:
    """permaLink, displayDate, body[] (Paragraph HTML with ArticleRef/CommentRef/ExternalRef, an Image),
    referenceGroups and commentsEnabled, in the server's pretty-print."""
    paragraphs = [
        f'<p>甲<a href="https://api.dw.com/api/detail/article/{article_id + 7}" rel="ArticleRef">乙</a>丙</p>',
        "<strong>小标题</strong>",
        '<p>丁<a href="https://api.dw.com/api/detail/article/56900725" rel="CommentRef">戊</a>'
        '<a href="https://www.example.org/x" rel="ExternalRef">己</a>'
        f'<a href="https://api.dw.com/api/detail/article/{article_id + 7}" rel="ArticleRef">乙</a></p>',
        '<span class="editable placeholder" data-id="17295382" data-type="AUTO_TOPIC">乌克兰</span>',
    ]
    body = [{"content": {"type": "Paragraph", "text": p}} for p in paragraphs]
    body.insert(
        1,
        {
            "content": {
                "id": 555,
                "type": "Image",
                "name": "图",
                "sizes": [{"width": 940, "height": 529, "url": "https://static.dw.com/image/555_304.jpg"}],
            }
        },
    )
    rest = {
        "permaLink": f"https://p.dw.com/p/{article_id}",
        "displayDate": f"{day[:4]}-{day[4:6]}-{day[6:]}T10:15:00.000Z",
        "body": body,
        "referenceGroups": [
            {
                "name": "相关内容",
                "type": "Related",
                "items": [
                    {
                        "type": "ArticleRef",
                        "id": 61000001,
                        "name": "x",
                        "url": "https://api.dw.com/api/detail/article/61000001",
                    },
                    {"type": "SearchRef", "name": "y", "url": "https://api.dw.com/api/search/global?terms=y"},
                    {"type": "ArticleRef", "name": "z", "url": "https://api.dw.com/api/detail/article/56900725"},
                ],
            }
        ],
        "commentsEnabled": False,
    }
    text = json.dumps(rest, ensure_ascii=False, indent=2, separators=(",", " : "))
    return text.strip()[1:-1].rstrip()  # the members only, to follow the head's own


@pytest.mark.parametrize("head", HEADS, ids=[h.name for h in HEADS])
def test_real_article_heads(head):
    raw = head.read_text("utf-8", "ignore")
    article_id = int(head.name.split(".")[0])
    day = re.search(r'"x9" : "(\d{8})"', raw).group(1)
    name = re.search(r'^  "name" : "(.*)",$', raw, re.MULTILINE).group(1)
    category = re.search(r'"categoryName" : "(.*)",', raw).group(1)
    main_image = re.search(r'"url" : "(https://static.dw.com/image/\d+_304.jpg)"', raw).group(1)
    main = raw[raw.index('"mainContent"') : raw.index('"sizes"')]
    caption = (re.search(r'"description" : "(.*)",', main) or re.search(r'"name" : "(.*)",', main)).group(1)

    doc = parse_article_json(
        completed(head, tail_for(article_id, day)), f"https://api.dw.com/api/detail/article/{article_id}"
    )
    assert isinstance(doc, ApiArticle)
    assert (doc.id, doc.type, doc.language_id) == (article_id, "Article", 4)
    assert doc.name == name
    assert doc.category == category
    assert doc.teaser and not doc.teaser.endswith("\n")
    assert doc.text.startswith("（德国之声中文网）") or doc.text.startswith("（德國之聲中文網）")
    assert '\\"' not in doc.text  # escapes are decoded
    assert doc.display_date == f"{day[:4]}-{day[4:6]}-{day[6:]}T10:15:00Z"
    assert doc.permalink == f"https://p.dw.com/p/{article_id}"
    # body links in order (each once, ExternalRef not), then referenceGroups
    assert doc.references == (article_id + 7, 56900725, 61000001)
    assert doc.images[0].url == main_image
    assert doc.images[0].caption == caption  # the description, else the image's name
    assert doc.images[1] == ApiImage("https://static.dw.com/image/555_304.jpg", "图")
    assert doc.language == ("zh-Hant" if article_id == 65985141 else "zh-Hans")


@pytest.mark.parametrize("head", HEADS, ids=[h.name for h in HEADS])
def test_truncated_heads_are_invalid_json(head):
    with pytest.raises(ApiError) as caught:
        parse_article_json(head.read_bytes(), head.name)
    assert caught.value.reason.startswith("invalid JSON: ")
    assert caught.value.source == head.name


@pytest.mark.parametrize(
    ("name", "video_id", "date", "image"),
    [
        ("video-59567960.json", 59567960, "2021-10-20T19:15:40.878Z", "57347616_304.jpg"),
        ("video-59567962.json", 59567962, None, None),
        ("video-63725621.json", 63725621, "2022-11-12T22:00:00Z", "60116988_304.jpg"),
    ],
)
def test_real_video_envelopes(name, video_id, date, image):
    doc = parse_article_json((API / name).read_bytes(), name)
    assert (doc.id, doc.type, doc.language_id, doc.language) == (video_id, "Video", 1, None)
    assert doc.references == ()  # only SearchRef keywords
    assert doc.permalink.startswith("https://p.dw.com/p/")
    if date:
        assert doc.display_date == date
        assert doc.images[0].url.endswith(image)  # the video's preview image


@pytest.mark.parametrize(
    "name",
    ["list-mediacenter-1_pageIndex-177.json", "list-mediacenter-1_last-page.json", "search-global_languageId-15.json"],
)
def test_lists_are_not_detail_objects(name):
    with pytest.raises(ApiError, match="field 'id' missing"):
        parse_article_json((API / name).read_bytes(), name)


def test_references_from_teaser_groups_by_nested_reference():
    data = {
        "id": 1,
        "referenceGroups": [{"items": [{"type": "BasicTeaser", "reference": {"id": 63026167, "type": "ArticleRef"}}]}],
    }
    assert parse_article_json(json.dumps(data).encode()).references == (63026167,)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty body"),
        (b"  \n", "empty body"),
        (b"\xff\xfe{}", "not UTF-8 at byte 0"),
        (b"[1, 2]", "expected a JSON object, got array"),
        (b'"x"', "expected a JSON object, got string"),
        (b"{}", "field 'id' missing"),
        (b'{"id": true}', "field 'id': expected an integer, got boolean"),
        (b'{"id": 1.5}', "field 'id': expected an integer, got number"),
        (b'{"id": 1, "name": ["x"]}', "field 'name': expected a string, got array"),
        (b'{"id": 1, "body": {}}', "field 'body': expected an array, got object"),
        (b'{"id": 1, "mainContent": "x"}', "field 'mainContent': expected an object, got string"),
    ],
)
def test_wrong_shapes(data, reason):
    with pytest.raises(ApiError) as caught:
        parse_article_json(data, 42)
    assert caught.value.reason == reason
    assert str(caught.value) == f"42: {reason}"


def test_limits_are_parameters():
    doc = b'{"id": 1, "name": "' + b"x" * 1000 + b'"}'
    assert parse_article_json(doc, max_bytes=2000).name == "x" * 1000
    with pytest.raises(ApiError, match=r"too large: 1021 bytes > 1000"):
        parse_article_json(doc, max_bytes=1000)
    nested = b'{"id": 1, "x": ' + b"[" * 10 + b"]" * 10 + b"}"
    assert parse_article_json(nested, max_depth=11).id == 1
    with pytest.raises(ApiError, match=r"too deeply nested \(> 10 levels\)"):
        parse_article_json(nested, max_depth=10)


def test_nesting_beyond_the_interpreter_stack_is_an_api_error():
    with pytest.raises(ApiError, match="too deeply nested"):
        parse_article_json(b"[" * 200_000 + b"]" * 200_000, max_bytes=10**6)


def test_api_error_survives_pickling():
    error = pickle.loads(pickle.dumps(ApiError("https://api.dw.com/api/detail/article/1", "invalid JSON: x")))
    assert (error.source, error.reason) == ("https://api.dw.com/api/detail/article/1", "invalid JSON: x")


@pytest.mark.parametrize(
    ("text", "script"),
    [
        ("关注白纸运动 德国总统盼中国尊重言论自由", "zh-Hans"),
        ("涉新疆強迫勞動 德國車廠遭NGO提起申訴", "zh-Hant"),
        ("Merkel", None),
    ],
)
def test_chinese_script(text, script):
    assert chinese_script(text) == script


# --- nothing but ApiArticle or ApiError, whatever comes in ------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
KEYS = ["id", "type", "languageId", "mainContent", "name", "teaser", "categoryName", "text", "permaLink",
        "displayDate", "body", "referenceGroups", "content", "items", "reference", "sizes", "url", "width"]  # fmt: skip
DW_LIKE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 10**9)
    | st.text(max_size=40)
    | st.sampled_from(
        ["Image", "Paragraph", "ArticleRef", '<a href="https://api.dw.com/api/detail/article/7" rel="ArticleRef">x</a>']
    ),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.sampled_from(KEYS), children, max_size=6),
    max_leaves=30,
)


def _outcome(data: bytes) -> None:
    try:
        doc = parse_article_json(data, "x")
    except ApiError as exc:
        assert exc.reason
        return
    assert isinstance(doc, ApiArticle) and isinstance(doc.id, int)
    assert all(isinstance(r, int) for r in doc.references)
    assert all(isinstance(i, ApiImage) and isinstance(i.url, str) for i in doc.images)


@given(st.binary(max_size=300))
def test_any_bytes(data):
    _outcome(data)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(JSON)
def test_any_json(value):
    _outcome(json.dumps(value).encode())


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(KEYS), DW_LIKE, max_size=10))
def test_any_dw_like_object(value):
    _outcome(json.dumps(value, ensure_ascii=False).encode())


def test_the_standins_api_documents():
    """Every article the stand-in serves for the bundled dumps parses, with the references it cites."""
    from archiver.dw.dumps import iter_dumps
    from archiver.standin.content import render_api
    from archiver.standin.corpus import Corpus

    dumps = Path(__file__).parent / "data" / "feed-dumps"
    corpus = Corpus.from_entries(r.entry for r in iter_dumps([dumps]) if r.entry is not None)
    ids = corpus.dump_ids()
    assert len(ids) > 150
    for article_id in ids:
        article = corpus.get(article_id)
        doc = parse_article_json(render_api(article, corpus.get).encode("utf-8"), article.api_url)
        assert (doc.id, doc.type, doc.language_id) == (article_id, "Article", 4)
        assert doc.language in ("zh-Hans", "zh-Hant")
        assert doc.name == article.title
        assert doc.references == tuple(dict.fromkeys(article.references))
        assert doc.images[0].url.startswith("https://static.dw.com/image/")
