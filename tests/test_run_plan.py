"""Spider-argument parsing and the change rule of the run plan."""

from datetime import UTC, datetime

import pytest

from archiver.config import parse_bool
from archiver.run.plan import parse_time


def test_parse_bool_words():
    assert parse_bool("1") and parse_bool("yes") and parse_bool(" On ") and parse_bool(True)
    assert not parse_bool("0") and not parse_bool("false") and not parse_bool("off")
    with pytest.raises(ValueError, match="not a yes/no value: 'maybe'"):
        parse_bool("maybe")


def test_parse_time_forms():
    assert parse_time("2020-07-20") == datetime(2020, 7, 20, tzinfo=UTC)
    assert parse_time("2020-07-20T13:54:12Z") == datetime(2020, 7, 20, 13, 54, 12, tzinfo=UTC)
    assert parse_time("2020-07-20T15:54:12+02:00") == datetime(2020, 7, 20, 13, 54, 12, tzinfo=UTC)
    assert parse_time(None) is None and parse_time("") is None
    with pytest.raises(ValueError):
        parse_time("yesterday")
