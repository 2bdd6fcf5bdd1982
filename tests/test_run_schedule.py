"""The recheck schedule: intervals by age, bursts after edits, the fixed interval, the per-run budget, the due index.

Every time here is a controlled clock (`now=` arguments), never a sleep.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from scrapy.utils.test import get_crawler

from archiver import config
from archiver.dw.dumps import iter_dumps
from archiver.run.plan import RunPlan
from archiver.run.schedule import (
    DAY,
    DEFAULT,
    DEFAULT_BUDGET,
    HOUR,
    WEEK,
    RecheckPolicy,
    Schedule,
    format_span,
    lateness,
    next_check,
    parse_duration,
)
from archiver.state.store import ARCHIVED, RetryPolicy, State

ROOT = Path(__file__).resolve().parents[1]
DUMPS = ROOT / "tests" / "data" / "feed-dumps"
T0 = 1_800_000_000.0  # the controlled clock's "now" for the article's first capture
YEAR = 365 * DAY


# --- the pure schedule ---


def test_durations_and_steps_parse_and_print_back() -> None:
    assert [parse_duration(x) for x in ("90", "90s", "15m", "6h", "1d", "2w", "1y", 30)] == [
        90, 90, 900, 6 * HOUR, DAY, 2 * WEEK, YEAR, 30,
    ]  # fmt: skip
    assert str(DEFAULT) == "1d:1h,1w:6h,30d:1d,1y:1w,*:90d"
    assert (
        Schedule.parse(str(DEFAULT)) == DEFAULT == Schedule.parse([("1d", "1h"), "7d:6h", "30d:1d", "1y:1w", "*:90d"])
    )
    assert format_span(3 * HOUR + 25 * 60 + 7) == "3h 25m" and format_span(2 * DAY + 5) == "2d 5s"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1d:1h,7d", "bad step '7d'"),
        ("1d:1h,1d:2h,*:1d", "ages must increase"),
        ("1d:0,*:1d", "more than 0"),
        ("1d:1h,7d:6h", r"last step must be \*:interval"),
        ("1d:soon,*:1d", "not a duration: 'soon'"),
    ],
)
def test_a_bad_schedule_is_refused_with_the_setting_and_step_named(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as err:
        Schedule.parse(value)
    assert str(err.value).startswith("ARCHIVER_RECHECK_SCHEDULE: ")


def test_a_young_and_an_old_article_get_their_intervals() -> None:
    now = T0
    assert next_check(now - 2 * HOUR, None, now) == now + HOUR  # younger than a day: hourly
    assert next_check(now - 3 * DAY, None, now) == now + 6 * HOUR
    assert next_check(now - 10 * DAY, None, now) == now + DAY
    assert next_check(now - 100 * DAY, None, now) == now + WEEK
    assert next_check(now - 5 * YEAR, None, now) == now + 90 * DAY  # older than a year: every 90 days
    # No publication time: the age counts from the first capture.
    assert next_check(None, now - 2 * DAY, now) == now + 6 * HOUR
    assert next_check(None, None, now) == now + HOUR  # first capture is now


def test_an_edit_shortens_the_next_interval_for_a_while() -> None:
    old = T0 - 3 * YEAR
    assert next_check(old, None, T0) == T0 + 90 * DAY
    assert next_check(old, None, T0, "edited", T0) == T0 + HOUR  # the check that found the edit
    assert next_check(old, None, T0 + 5 * HOUR, "edited", T0) == T0 + 6 * HOUR  # still within the burst (1 day)
    assert next_check(old, None, T0 + DAY, "edited", T0) == T0 + DAY + 90 * DAY  # the burst is over
    assert next_check(old, None, T0, "restored", T0) == T0 + HOUR
    assert next_check(old, None, T0, "removed", T0) == T0 + 90 * DAY  # removed: rechecked on its schedule


def test_a_fixed_interval_replaces_the_schedule_and_zero_means_now() -> None:
    fixed = RecheckPolicy(fixed=DAY)
    assert next_check(T0 - 5 * YEAR, None, T0, policy=fixed) == T0 + DAY
    assert next_check(T0 - HOUR, None, T0, "edited", T0, policy=fixed) == T0 + DAY
    decision = RecheckPolicy(fixed=0).decide(T0 - 5 * YEAR, None, T0)
    assert (decision.next_check, decision.tier) == (T0, 4)  # the age step still orders a budget


def test_lateness_puts_the_most_overdue_in_own_intervals_first_and_young_before_old() -> None:
    now = T0
    young_3h_late = lateness(now, now - 3 * HOUR, now - 4 * HOUR, 0)  # hourly, 3 intervals late
    old_3d_late = lateness(now, now - 3 * DAY, now - 93 * DAY, 4)  # every 90 days, 1/30 of an interval late
    young_1h_late = lateness(now, now - HOUR, now - 2 * HOUR, 0)
    old_200d_late = lateness(now, now - 200 * DAY, now - 290 * DAY, 4)  # 2.2 intervals late
    assert sorted([old_3d_late, young_1h_late, old_200d_late, young_3h_late]) == [
        young_3h_late, old_200d_late, young_1h_late, old_3d_late,
    ]  # fmt: skip
    # Equally late in their own intervals: the younger step first.
    assert lateness(now, now - HOUR, now - 2 * HOUR, 0) < lateness(now, now - 90 * DAY, now - 180 * DAY, 4)


def test_settings_decide_fixed_or_schedule_and_the_budget() -> None:
    def crawler(**values):
        return get_crawler(settings_dict=values).settings

    default = crawler()
    assert config.recheck_policy(default) == RecheckPolicy(DEFAULT, None)
    assert config.recheck_budget(default) == DEFAULT_BUDGET
    fixed = crawler(ARCHIVER_RECHECK_AFTER="0")  # as `-s ARCHIVER_RECHECK_AFTER=0` gives it
    assert config.recheck_policy(fixed).fixed == 0 and config.recheck_budget(fixed) is None  # as before: no cap
    assert config.recheck_budget(crawler(ARCHIVER_RECHECK_AFTER="43200", ARCHIVER_RECHECK_BUDGET="50")) == 50
    assert config.recheck_policy(crawler(ARCHIVER_RECHECK_AFTER="")).fixed is None  # `-s NAME=` unsets it
    assert config.recheck_budget(crawler(ARCHIVER_RECHECK_BUDGET="0")) is None
    custom = config.recheck_policy(crawler(ARCHIVER_RECHECK_SCHEDULE="2d:30m,*:30d"))
    assert str(custom.schedule) == "2d:30m,*:30d"
    with pytest.raises(ValueError, match="ARCHIVER_RECHECK_BUDGET"):
        config.recheck_budget(crawler(ARCHIVER_RECHECK_BUDGET="-1"))


def test_set_means_given_at_project_priority_or_above_not_a_default() -> None:
    from scrapy.settings import Settings

    profile = Settings()
    profile.setmodule("settings.default", priority="project")  # what `scrapy crawl` in this project reads
    assert config.recheck_policy(profile).fixed is None and config.recheck_budget(profile) == DEFAULT_BUDGET
    profile.set("ARCHIVER_RECHECK_AFTER", 600, priority="addon")  # an add-on's default is no user's choice
    assert config.recheck_policy(profile).fixed is None
    for priority in ("project", "spider", "cmdline"):  # a settings module, custom_settings, -s / scrapyd
        settings = Settings()
        settings.set("ARCHIVER_RECHECK_AFTER", "600", priority=priority)
        assert config.recheck_policy(settings).fixed == 600 and config.recheck_budget(settings) is None
    settings.set("ARCHIVER_RECHECK_AFTER", "", priority="cmdline")  # `-s ARCHIVER_RECHECK_AFTER=`: unset again
    assert config.recheck_policy(settings).fixed is None


# --- the state: next checks where articles are finished, the due index ---


@pytest.fixture
def st(tmp_path: Path):
    s = State.open(tmp_path / "state.sqlite3", retry=RetryPolicy(max_attempts=3, base=100, cap=250))
    yield s
    s.close()


def archive(st: State, aid: int, now: float, published: float | None, **kw):
    st.claim_article(aid, kind="article", page_url=f"p{aid}", run_id=f"r{now}", now=now)
    return st.finish_article(aid, ARCHIVED, f"r{now}", now, published=published, **kw)


def test_the_state_schedules_by_age_and_keeps_the_publication_time(st: State) -> None:
    young = archive(st, 1, T0, published=T0 - 2 * HOUR)
    old = archive(st, 2, T0, published=T0 - 3 * YEAR)
    unknown = archive(st, 3, T0, published=None)
    assert (young.next_check, young.tier, young.published) == (T0 + HOUR, 0, T0 - 2 * HOUR)
    assert (old.next_check, old.tier) == (T0 + 90 * DAY, 4)
    assert (unknown.next_check, unknown.tier) == (T0 + HOUR, 0)  # age from its first capture: now
    # Rechecked a week later, without a publication time from the item: the stored one counts.
    st.claim_article(1, run_id="r2", now=T0 + WEEK)
    again = st.finish_article(1, ARCHIVED, "r2", T0 + WEEK, changed=False)
    assert (again.next_check, again.tier) == (T0 + WEEK + DAY, 2)
    st.claim_article(3, run_id="r2", now=T0 + 2 * DAY)  # first captured two days ago
    assert st.finish_article(3, ARCHIVED, "r2", T0 + 2 * DAY).next_check == T0 + 2 * DAY + 6 * HOUR


def test_an_edit_found_by_a_recheck_brings_the_article_back_to_the_shortest_interval(st: State) -> None:
    archive(st, 7, T0, published=T0 - 2 * YEAR)
    st.claim_article(7, run_id="r2", now=T0 + 90 * DAY)
    edited = st.finish_article(7, ARCHIVED, "r2", T0 + 90 * DAY, change_kind="edited")
    assert (edited.next_check, edited.tier) == (T0 + 90 * DAY + HOUR, 0)
    assert (edited.last_change, edited.last_change_kind) == (T0 + 90 * DAY, "edited")
    # The next checks find nothing new: hourly while the burst lasts, then back to every 90 days.
    st.claim_article(7, run_id="r3", now=T0 + 90 * DAY + HOUR)
    assert st.finish_article(7, ARCHIVED, "r3", T0 + 90 * DAY + HOUR, changed=False).next_check == (
        T0 + 90 * DAY + 2 * HOUR
    )
    st.claim_article(7, run_id="r4", now=T0 + 91 * DAY)
    assert st.finish_article(7, ARCHIVED, "r4", T0 + 91 * DAY, changed=False).next_check == T0 + 181 * DAY


def test_an_explicit_fixed_interval_still_works_as_before(st: State) -> None:
    st.claim_article(4, run_id="r1", now=T0, recheck_after=DAY)
    assert st.finish_article(4, ARCHIVED, "r1", T0, DAY, published=T0 - 3 * YEAR).next_check == T0 + DAY
    assert not st.claim_article(4, run_id="r2", now=T0 + HOUR, recheck_after=DAY).fetch
    assert st.claim_article(4, run_id="r2", now=T0 + HOUR, recheck_after=0).reason == "recheck"  # 0 = now


def test_a_failed_recheck_waits_its_backoff_then_its_scheduled_interval(st: State) -> None:
    archive(st, 5, T0, published=T0 - 3 * YEAR)
    now = T0 + 90 * DAY
    for attempt, wait in ((1, 100), (2, 200), (3, 90 * DAY)):  # max_attempts 3: then the schedule's interval
        st.claim_article(5, run_id=f"f{attempt}", now=now)
        row = st.finish_article(5, "failed", f"f{attempt}", now, errors=["timeout"])
        assert (row.status, row.next_check, row.version) == (ARCHIVED, now + wait, 1)
        now += wait


def test_the_due_queries_are_index_lookups(st: State) -> None:
    queries = {
        "due": "SELECT * FROM articles WHERE status = 'archived' AND next_check <= :now "
        "AND (next_check, article_id) > (:k, :id) ORDER BY next_check, article_id LIMIT 500",
        "late": "SELECT * FROM articles WHERE status = 'archived' AND last_checked <= :cut "
        "AND (next_check > :now OR next_check IS NULL) ORDER BY last_checked, article_id LIMIT 500",
        "tier": "SELECT * FROM articles WHERE status = 'archived' AND tier = :tier AND next_check <= :now "
        "ORDER BY next_check LIMIT 5",
        "tier null": "SELECT * FROM articles WHERE status = 'archived' AND tier IS NULL AND next_check <= :now "
        "ORDER BY next_check LIMIT 5",
        "count": "SELECT count(*), min(next_check) FROM articles WHERE status = 'archived' AND next_check <= :now",
        "top tier": "SELECT tier FROM articles WHERE status = 'archived' AND tier IS NOT NULL "
        "ORDER BY tier DESC LIMIT 1",
    }
    for aid in range(1, 300):
        archive(st, aid, T0, published=T0 - aid * 10 * DAY)
    st._query("ANALYZE")
    params = {"now": T0, "cut": T0, "k": 0, "id": 0, "tier": 1}
    for name, sql in queries.items():
        plan = " ".join(str(r[-1]) for r in st._query("EXPLAIN QUERY PLAN " + sql, params))
        assert "USING" in plan and "INDEX" in plan and "SCAN" not in plan and "TEMP B-TREE" not in plan, (name, plan)


def test_due_rechecks_come_most_overdue_first_with_a_fixed_interval_too(st: State) -> None:
    for aid, published in ((1, T0 - 3 * YEAR), (2, T0 - 2 * HOUR), (3, T0 - 10 * DAY)):
        archive(st, aid, T0, published=published)
    later = T0 + 100 * DAY
    assert [r.article_id for r in st.due_rechecks(later)] == [2, 3, 1]  # due at +1h, +1d, +90d
    # A fixed interval also takes those last checked that long ago, whatever their next_check says.
    assert [r.article_id for r in st.due_rechecks(T0 + 2 * HOUR, recheck_after=HOUR)] == [2, 1, 3]
    assert st.count_due(T0 + 2 * HOUR, recheck_after=HOUR) == (3, T0 + HOUR)
    assert st.count_due(T0 + 2 * HOUR) == (1, T0 + HOUR)


# --- the run plan: budget, order, accounting ---


STATE_EXTENSION = {"archiver.state.extension.StateExtension": 10}  # the state's edge: run lock, run record


def plan_for(tmp_path: Path, run_id: str, **settings) -> RunPlan:
    """The plan of a run on `tmp_path/out`, its state opened (and locked) by the StateExtension."""
    values = {"ARCHIVER_OUTPUT_DIR": str(tmp_path / "out"), "ARCHIVER_RUN_ID": run_id, "EXTENSIONS": STATE_EXTENSION}
    return RunPlan(get_crawler(settings_dict=values | settings))


def seed(state: State, n_young: int, n_old: int, now: float) -> None:
    """Young articles (hourly) and old ones (every 90 days), all archived at `now`."""
    for aid in range(1, n_young + 1):
        archive(state, aid, now, published=now - 2 * HOUR)
    for aid in range(1001, 1001 + n_old):
        archive(state, aid, now, published=now - 3 * YEAR)


def test_the_budget_caps_a_run_and_nothing_is_lost_only_delayed(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, "run-1", ARCHIVER_RECHECK_BUDGET="4")
    seed(plan.state, 5, 5, T0)
    later = T0 + 200 * DAY  # everything is due: the young ones overdue by ~200 hourly intervals, the old by ~1.2
    planned = plan.plan_rechecks(now=later)
    stats = plan.stats.get_stats()
    assert planned == 4 == stats["archiver/rechecks/planned"]
    assert stats["archiver/rechecks/due"] == 10 and stats["archiver/rechecks/skipped_budget"] == 6
    assert stats["archiver/rechecks/oldest_overdue"] == 200 * DAY - HOUR  # a young one still waits
    assert stats["archiver/rechecks/overdue_over_1w"] == 6 and stats["archiver/rechecks/overdue_over_1d"] == 6
    assert sorted(j.article_id for j in plan.jobs()) == [1, 2, 3, 4]  # young (far more intervals late) first

    for aid in (1, 2, 3, 4):  # the run fetches them
        plan.state.finish_article(aid, ARCHIVED, "run-1", later, changed=False)
    plan.state.close()  # the run ends: its lock goes
    checked: list[list[int]] = []
    for run in range(2, 5):  # later runs take what waited, in budgets of 4, until nothing is due
        plan = plan_for(tmp_path, f"run-{run}", ARCHIVER_RECHECK_BUDGET="4")
        plan.plan_rechecks(now=later + run)
        jobs = list(plan.jobs())
        assert all(j.recheck for j in jobs)
        checked.append([j.article_id for j in jobs])
        for job in jobs:
            plan.state.finish_article(job.article_id, ARCHIVED, f"run-{run}", later + run, changed=False)
        plan.state.close()
    assert checked == [[5, 1001, 1002, 1003], [1004, 1005], []]  # each once, none lost
    assert plan.stats.get_value("archiver/rechecks/skipped_budget") == 0


def test_new_articles_and_retries_come_before_rechecks_and_never_count_against_the_budget(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, "run-new", ARCHIVER_RECHECK_BUDGET="3")
    seed(plan.state, 0, 50, T0)  # 50 archived articles, all due for a recheck below
    entries = [r.entry for r in iter_dumps([DUMPS]) if r.entry and r.entry.is_dw][:20]
    for entry in entries:
        plan.add_entry(entry)
    assert plan.plan_rechecks(now=T0 + 100 * DAY) == 3
    jobs = list(plan.jobs())
    new_ids = {e.article_id for e in entries}
    assert {j.article_id for j in jobs if not j.recheck} == new_ids  # every new article is fetched
    assert [j.recheck for j in jobs] == [False] * len(new_ids) + [True] * 3  # and before any recheck
    assert plan.stats.get_value("archiver/rechecks/skipped_budget") == 47


def test_without_a_budget_an_explicit_recheck_after_rechecks_everything_due(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, "run-all", ARCHIVER_RECHECK_AFTER="0")
    seed(plan.state, 3, 700, T0)  # more than one page of the due query
    assert plan.budget is None
    assert plan.plan_rechecks(now=T0 + 1) == 703
    assert plan.stats.get_value("archiver/rechecks/skipped_budget") == 0


# --- a real crawl: the budget, the report, new dumps first ---


def test_a_crawl_rechecks_within_its_budget_and_reports_what_waits(standin, tmp_path: Path) -> None:
    from crawl_support import run_crawl

    by_id = {r.entry.article_id: Path(r.path) for r in iter_dumps([DUMPS]) if r.entry and r.entry.is_dw}
    ids = sorted(by_id)[:10]
    folder = tmp_path / "dumps"
    folder.mkdir()
    for aid in ids[:6]:
        shutil.copy(by_id[aid], folder / f"{aid}.md")
    lean = {"refs_depth": "0", "media": "0"}
    out = tmp_path / "out"
    one = run_crawl(out, standin, folder, args=lean)
    assert one.returncode == 0 and one.report()["rechecks"]["planned"] == 0
    with State.open(out / "state.sqlite3") as state:  # 400 days pass: every archived article is due
        assert {state.get_article(a).tier for a in ids[:6]} == {4}  # DW articles of 2020: the oldest step
        state._query(
            "UPDATE articles SET next_check = next_check - ?, last_checked = last_checked - ?", (400 * DAY,) * 2
        )
    for aid in ids[6:]:  # and new dumps arrive
        shutil.copy(by_id[aid], folder / f"{aid}.md")
    two = run_crawl(out, standin, folder, args=lean, settings={"ARCHIVER_RECHECK_BUDGET": "2"})
    assert two.returncode == 0, two.log[-3000:]
    assert {i["article_id"] for i in two.items()} == set(ids[6:])  # every new article, whatever the budget
    r = two.report()["rechecks"]
    assert (r["due"], r["planned"], r["done"], r["skipped_budget"]) == (6, 2, 2, 4)
    assert 310 * DAY < r["oldest_overdue_seconds"] < 311 * DAY and r["overdue_over"]["1w"] == 4
    assert "rechecks 2/2 done, 4 skipped for budget (oldest overdue 310d" in two.log
    three = run_crawl(out, standin, folder, args=lean, settings={"ARCHIVER_RECHECK_BUDGET": "10"})
    r = three.report()["rechecks"]
    assert (r["due"], r["planned"], r["done"], r["skipped_budget"]) == (4, 4, 4, 0)  # the rest, one run later
    assert three.items() == []  # nothing changed at the stand-in: no new versions


def test_the_progress_line_counts_rechecks(caplog: pytest.LogCaptureFixture) -> None:
    from archiver.run.report import RunReport

    caplog.set_level(logging.INFO, logger="archiver.run.report")
    crawler = get_crawler(settings_dict={"ARCHIVER_PROGRESS_INTERVAL": 0})
    report = RunReport(crawler)
    report.log_progress()
    assert (
        "progress: dumps read 0" in caplog.text and "rechecks" not in caplog.text
    )  # a run without rechecks due says nothing of them
    for key, value in {"planned": 40, "done": 3, "skipped_budget": 7, "oldest_overdue": 2 * DAY + 3 * HOUR}.items():
        crawler.stats.set_value(f"archiver/rechecks/{key}", value)
    report.log_progress()
    assert "rechecks 3/40 done, 7 skipped for budget (oldest overdue 2d 3h)" in caplog.text
