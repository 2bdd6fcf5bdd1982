"""Recheck classification, Chinese text diffs, the change history in the state, the stand-in's revision schedule."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import pytest

from archiver.dw.textdiff import sentence_diff, sentences, unified
from archiver.items.model import ArticleItem, Capture, ItemError
from archiver.run.changelog import Replay, atom_feed, collect, html_page, timestamp14
from archiver.run.changes import (
    CONTENT,
    EDITED,
    GONE,
    MOVED,
    REDIRECTED,
    REMOVED,
    RESTORED,
    UNCHANGED,
    UNREACHABLE,
    Observation,
    Previous,
    changed_fields,
    classify,
    field_digests,
    normalize_text,
    observe,
)
from archiver.standin.corpus import Corpus
from archiver.standin.revisions import RevisionPlan, RevisionSpecError, edit_note, moved_target, revise
from archiver.state.store import State
from tests.crawl_support import DUMPS

PAGE = "https://www.dw.com/zh/x/a-100"
API = "https://api.dw.com/api/detail/article/100"


def item(**fields: object) -> ArticleItem:
    base: dict[str, object] = {
        "article_id": 100,
        "kind": "article",
        "url": PAGE,
        "api_url": API,
        "title": "德国 大选",
        "teaser": "第一句。",
        "text": "第一句。第二句。",
        "api_text": "第一句。第二句。",
        "authors": ["王 五", "李四"],
        "published": "2024-01-30T14:13:12.269Z",
    }
    return ArticleItem(**(base | fields))  # type: ignore[arg-type]


def cap(role: str, status: int, url: str | None = None) -> Capture:
    return Capture(
        url=url or (PAGE if role == "page" else API), role=role, status=status, fetched_at="2026-01-01T00:00:00Z"
    )


# --- normalized comparison ---


def test_whitespace_width_and_invisible_characters_are_not_edits() -> None:
    a = field_digests(item())
    b = field_digests(
        item(
            title="德国大选 ",
            text="第一句。\n\n  第二句。\u200b",
            api_text="第一句。 第二句。",
            teaser="\u3000第一句。",
            authors=["李四", "王五"],
        )
    )
    assert changed_fields(a, b) == ()
    assert normalize_text("ＡＢＣ　１２３") == "ABC 123"
    assert normalize_text("Merkel  und\nMacron") == "Merkel und Macron"


def test_changed_fields_are_named_and_api_text_reports_as_text() -> None:
    a = field_digests(item())
    assert changed_fields(a, field_digests(item(title="德国大选结果"))) == ("title",)
    assert changed_fields(a, field_digests(item(api_text="第一句。第三句。"))) == ("text",)
    both = field_digests(item(text="新。", api_text="新。", modified="2024-02-01T00:00:00Z", authors=["赵六"]))
    assert changed_fields(a | {"modified": "x"}, both) == ("text", "authors", "modified")
    # A field not extracted this time (None) is unknown, not removed.
    assert changed_fields(a, field_digests(item(teaser=None, title=None))) == ()


def test_observe_page_and_api_together() -> None:
    assert observe(100, [cap("page", 200), cap("api", 200)], []) == Observation(CONTENT)
    assert observe(100, [cap("page", 304), cap("api", 304)], []) == Observation(CONTENT)
    gone = [cap("page", 410), cap("api", 410)]
    assert observe(100, gone, [ItemError(PAGE, "HTTP 410"), ItemError(API, "HTTP 410")]).outcome == GONE
    assert observe(100, [cap("api", 404)], [ItemError(API, "HTTP 404")]).outcome == GONE  # a cited article
    moved = [cap("page", 200, "https://www.dw.com/zh/y/a-200"), cap("api", 200, API.replace("100", "200"))]
    assert observe(100, moved, []) == Observation(REDIRECTED, "https://www.dw.com/zh/y/a-200")
    assert observe(100, [cap("api", 200)], [ItemError(PAGE, "timeout: TimeoutError")]).outcome == UNREACHABLE
    assert observe(100, [cap("page", 503), cap("api", 200)], [ItemError(PAGE, "HTTP 503")]).outcome == UNREACHABLE
    assert observe(100, [cap("page", 429), cap("api", 429)], []).outcome == UNREACHABLE
    assert observe(100, [], [ItemError(PAGE, "ConnectionLost")]).outcome == UNREACHABLE
    image = "https://static.dw.com/image/1_302.jpg"
    assert observe(100, [cap("page", 200), cap("api", 200)], [ItemError(image, "HTTP 503")], [image]).outcome == CONTENT


def test_classify_every_kind() -> None:
    digests = field_digests(item())
    live = Previous(CONTENT, digests)
    assert classify(live, Observation(CONTENT), digests).kind == UNCHANGED
    edit = classify(live, Observation(CONTENT), field_digests(item(title="新标题")))
    assert (edit.kind, edit.fields) == (EDITED, ["title"])
    assert classify(live, Observation(GONE), digests).kind == REMOVED
    assert classify(Previous(GONE, digests), Observation(GONE), digests).kind == UNCHANGED  # recorded once
    assert classify(Previous(GONE, digests), Observation(CONTENT), digests).kind == RESTORED
    back = classify(Previous(GONE, digests), Observation(CONTENT), field_digests(item(text="改。", api_text="改。")))
    assert (back.kind, back.fields) == (RESTORED, ["text"])
    there = "https://www.dw.com/zh/y/a-200"
    assert classify(live, Observation(REDIRECTED, there), digests).kind == MOVED
    assert classify(Previous(REDIRECTED, digests, there), Observation(REDIRECTED, there), digests).kind == UNCHANGED
    assert classify(live, Observation("unreachable"), {}).kind == UNREACHABLE
    # Archived before the history existed: content becomes the baseline; a removal is still one.
    assert classify(None, Observation(CONTENT), digests).kind == UNCHANGED
    assert classify(None, Observation(GONE), {}).kind == REMOVED


# --- diffs for Chinese ---


def test_sentences_split_on_chinese_punctuation_and_keep_quotes() -> None:
    text = "他说：“我们会赢。”然后离开了！真的吗？是的；\n第二段"
    assert sentences(text) == ["他说：“我们会赢。”", "然后离开了！", "真的吗？", "是的；", "第二段"]


def test_unified_diff_by_sentence_marks_characters() -> None:
    old = "第一句。第二句话很长。第三句。第四句。第五句。"
    new = "第一句。第二句话很短。第三句。第四句。第五句。新的一句。"
    hunks = sentence_diff(old, new)
    assert [h.tag for h in hunks] == ["equal", "replace", "equal", "insert"]
    lines = unified(old, new)
    assert "- 第二句话很长。" in lines and "+ 第二句话很短。" in lines and "+ 新的一句。" in lines
    assert "@@" in lines and "  第四句。" not in lines  # context of one sentence
    coloured = unified(old, new, colour=True)
    assert any("很\x1b[7m短\x1b[27m" in line for line in coloured)


# --- history in the state ---


def test_history_rows_filters_and_order(tmp_path: Path) -> None:
    with State.open(tmp_path / "state.sqlite3") as state:
        cap_row = {"role": "page", "url": PAGE, "status": 200, "fetched_at": "2026-01-01T00:00:00Z", "record_id": "<a>"}
        state.record_change(100, "new", version=1, observed=CONTENT, at=1000.0, digests={"t": "1"}, captures=[cap_row])
        state.record_change(100, EDITED, version=2, observed=CONTENT, at=2000.0, fields=["title"], title="新")
        state.record_change(200, REMOVED, version=2, observed=GONE, at=3000.0)
        assert state.last_change(100).kind == EDITED and state.last_change(100).fields == ["title"]
        assert state.last_change(300) is None
        assert [r.article_id for r in state.changes()] == [200, 100, 100]
        assert [r.kind for r in state.changes(kinds=[EDITED, REMOVED], since=1500.0, until=3000.0)] == [EDITED]
        assert [r.version for r in state.changes(article_id=100)] == [2, 1]
        assert state.article_history(100)[0].captures == [cap_row]
        entries = collect(state, tmp_path)
        assert [e.kind for e in entries] == [REMOVED, EDITED] and entries[1].previous.captures == [cap_row]
        replay = Replay("http://pywb.example/coll/", "https://host/a.wacz")
        assert replay.links(cap_row)["pywb"] == f"http://pywb.example/coll/20260101000000/{PAGE}"
        page = html_page(entries, replay, generated="2026-01-01T00:00:00Z")
        assert page.count('<section class="change"') == 2
        feed = atom_feed(entries, replay, feed_id="urn:uuid:0", generated="x", self_url=None)
        feedparser = pytest.importorskip("feedparser")
        parsed = feedparser.parse(feed)
        assert not parsed.bozo and [e.title for e in parsed.entries] == ["[removed] article 200", "[edited] 新"]
    assert timestamp14("2026-12-06T02:54:13.120Z") == "20261206025413"


# --- the stand-in's schedule ---


def test_revision_plan_by_epoch() -> None:
    spec = "1:edit@1,1:edit@2,2:gone@1,2:restore@3,3:moved@2,4:title@1,5:404@1"
    assert RevisionPlan.parse(spec, 0).state(1).edits == 0
    at2 = RevisionPlan.parse(spec, 2)
    assert at2.state(1).edits == 2 and at2.state(2).status == 410 and at2.state(3).moved
    assert at2.state(4).titles == 1 and at2.state(5).status == 404
    assert RevisionPlan.parse(spec, 3).state(2).status is None
    for bad in ("1:delete@1", "x:edit@1", "1:edit", "1:edit@-1"):
        with pytest.raises(RevisionSpecError, match="bad revision"):
            RevisionPlan.parse(bad)
    with pytest.raises(RevisionSpecError, match="epoch"):
        RevisionPlan.parse("", "soon")


def test_revise_changes_a_paragraph_or_the_title() -> None:
    corpus = Corpus.from_paths([DUMPS])
    article = next(a for a in map(corpus.get, corpus.dump_ids()) if a and a.paragraphs)
    plan = RevisionPlan.parse(f"{article.article_id}:edit@1,{article.article_id}:title@2", 2)
    changed = revise(article, plan.state(article.article_id))
    assert changed.title == "更新：" + article.title
    assert sum(a != b for a, b in zip(article.paragraphs, changed.paragraphs, strict=True)) == 1
    assert edit_note(1) in "".join(changed.paragraphs)
    assert revise(article, RevisionPlan().state(article.article_id)) is article
    ids = corpus.dump_ids()
    assert moved_target(ids[0], ids) == ids[1] and moved_target(ids[-1], ids) == ids[0]


def test_standin_command_serves_an_epoch(standin_factory) -> None:
    corpus = Corpus.from_paths([DUMPS])
    first, second, third = corpus.dump_ids()[2:5]
    spec = f"{first}:gone@1,{second}:moved@1,{third}:edit@1,{third}:404@2"
    # The crawl's setting names work here too (`-s`), as does `--epoch 1 --revisions SPEC`.
    running = standin_factory(extra=["-s", "ARCHIVER_STANDIN_EPOCH=1", "-s", f"ARCHIVER_STANDIN_REVISIONS={spec}"])

    def get(host: str, path: str) -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection("127.0.0.1", running.http_port, timeout=30)
        conn.request("GET", path, headers={"Host": host})
        return conn.getresponse()

    assert get("api.dw.com", f"/api/detail/article/{first}").status == 410
    moved = get("api.dw.com", f"/api/detail/article/{second}")
    assert moved.status == 301 and moved.getheader("Location").endswith(f"/api/detail/article/{third}")
    edited = json.loads(get("api.dw.com", f"/api/detail/article/{third}").read())
    assert edit_note(1) in edited["text"]
    page = get("www.dw.com", corpus.get(third).path).read().decode()
    assert edit_note(1) in page and "专题报道 1" in page and "_302.jpg?v=1" in page
