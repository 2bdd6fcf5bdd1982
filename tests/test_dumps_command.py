"""`scrapy dumps`, run as the real command in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "feed-dumps"
SAMPLE = ROOT / "archiver" / "data" / "sample-dumps"


def scrapy(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "scrapy", "dumps", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        timeout=120,
        check=False,
    )


def lines(proc: subprocess.CompletedProcess[bytes]) -> list[dict]:
    return [json.loads(line) for line in proc.stdout.decode("utf-8").splitlines()]


def test_summary_accounts_for_every_file_of_the_corpus():
    proc = scrapy(DATA, "--summary", "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    on_disk = sum(len(names) for _, _, names in os.walk(DATA))
    assert summary["files"] == on_disk == 210
    assert (summary["parsed"], summary["skipped"], summary["failed"]) == (208, 2, 0)
    assert summary["kinds"] == {"article": 177, "gallery": 11, "video": 19, "empty": 1}
    assert summary["dw_entries"] == 198 and len(summary["not_dw"]) == 10
    assert summary["reasons"] == {"not a .md file": 1, "not a feed dump": 1}
    assert [(Path(f["path"]).name, f["reason"]) for f in summary["skipped_files"]] == [
        ("MANIFEST.tsv", "not a .md file"),
        ("SOURCE.md", "not a feed dump"),
    ]
    dups = summary["duplicates"]
    assert set(dups) == {"54020896", "54030183", "54237399", "56573833", "56971577"}
    assert sorted(Path(p).name.split("_")[0] for p in dups["54237399"]) == [
        "1047809",
        "1047813",
        "2020-07-20-获释后首发声 许章润：极权必败.md",
    ]
    assert summary["article_ids"] == 198 - sum(len(p) - 1 for p in dups.values())


def test_summary_text():
    proc = scrapy(DATA, "--summary")
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout.decode("utf-8")
    assert text.startswith("files: 210 (parsed 208, skipped 2, failed 0)\n")
    assert "parsed by kind: article 177, gallery 11, video 19, empty 1\n" in text
    assert "DW entries: 198 (192 distinct article ids); not a DW article: 10\n" in text
    assert f"  {json.dumps(str(DATA / 'SOURCE.md'))}: not a feed dump" in text
    assert "duplicate article ids: 5\n  54020896: " in text


def test_one_json_object_per_file_with_odd_names_and_utc_times():
    folder = DATA / "nodebe4-news-beyond-wall" / "articles" / "德国之声"
    proc = scrapy(folder)
    assert proc.returncode == 0, proc.stderr
    out = lines(proc)
    assert {o["path"] for o in out} == {str(p) for p in folder.iterdir()}
    assert len(out) == 151 and all(o["status"] == "parsed" for o in out)
    by_id = {o["article_id"]: o for o in out}
    e = by_id[53985946]  # the file with newlines in its name and title
    assert e["path"].endswith("1048198_德语媒体：北京的快速回应\n\n.md")
    assert e["title"] == "德语媒体：北京的快速回应"
    assert e["body_html"].startswith("<div><i>     任琛（摘编）<br>2020-06-29T14:58:06.315Z</i></div>")
    assert e["feed_time"] == "2020-06-29T15:54:09Z"
    assert e["published"] == "2020-06-29T14:58:06.315Z"
    assert e["api_url"] == "https://api.dw.com/api/detail/article/53985946"
    assert e["images"] == [
        {
            "url": "https://api.dw.com/image/53882155_303.jpg",
            "caption": "资料图片：双手比出5，代表“五大诉求”的香港示威民众",
        }
    ]
    assert "德语媒体" in proc.stdout.decode("utf-8")  # ensure_ascii=False
    assert by_id[54220201]["page_url"].endswith(
        "/%E6%A3%8B%E5%AD%90%3F%E7%89%BA%E7%89%B2%E5%93%81%3F%E8%A2%AB%E9%A9%B1%E9%80%90%E7%9A%84%E5%89%8D%E9%A9%BB%E5%8D%8E%E8%AE%B0%E8%80%85%E5%90%90%E9%9C%B2%E5%BF%83%E5%A3%B0/a-54220201"
    )


def test_errors_are_lines_and_set_the_exit_status(tmp_path):
    (tmp_path / "empty.md").write_bytes(b"")
    good = DATA / "duty-machine-news" / "articles" / "dw" / "1046202.md"
    proc = scrapy(good, tmp_path / "empty.md", tmp_path / "missing.md", "--no-body", cwd=tmp_path)
    assert proc.returncode == 1
    first, empty, missing = lines(proc)
    assert first["status"] == "parsed" and first["article_id"] == 55253484 and "body_html" not in first
    assert first["references"] == [{"article_id": 55187148, "rel": "ArticleRef"}]
    assert empty == {"path": str(tmp_path / "empty.md"), "status": "failed", "reason": "empty file", "detail": ""}
    assert (missing["status"], missing["reason"]) == ("failed", "not found")


def test_packaged_sample_dumps_are_all_dw_and_parse(tmp_path):
    proc = scrapy(SAMPLE, "--summary", "--json", cwd=tmp_path)  # outside the project: no scrapy.cfg
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert (summary["files"], summary["parsed"], summary["failed"]) == (26, 25, 0)
    assert [Path(f["path"]).name for f in summary["skipped_files"]] == ["README.txt"]
    assert summary["not_dw"] == []
    assert all(summary["kinds"][k] >= 1 for k in ("article", "gallery", "video", "empty"))
    names = [p.name for p in SAMPLE.iterdir()]
    assert not any(c in n for n in names for c in "\n?:") and not any(n.endswith(" .md") for n in names)


def test_no_path_is_a_usage_error():
    proc = scrapy()
    assert proc.returncode == 2
    assert b"name at least one dump file" in proc.stderr + proc.stdout


def test_max_bytes_option_and_setting():
    good = DATA / "duty-machine-news" / "articles" / "dw" / "1046202.md"
    (by_option,) = lines(scrapy(good, "--max-bytes", "1000"))
    (by_setting,) = lines(scrapy(good, "-s", "ARCHIVER_DUMP_MAX_BYTES=1000"))
    for out in (by_option, by_setting):
        assert (out["status"], out["reason"], out["detail"]) == ("failed", "too large", "over 1000 bytes")
