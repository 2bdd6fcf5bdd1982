"""Nothing off the allowed hosts is fetched, whatever the URL or a redirect says."""

from archiver.fetch.scope import out_of_scope

DW = frozenset({"www.dw.com", "api.dw.com", "static.dw.com"})


def test_dw_hosts_over_http_and_https_are_in_scope():
    assert out_of_scope("https", "www.dw.com", DW) is None
    assert out_of_scope("http", "STATIC.DW.COM", DW) is None
    assert out_of_scope("https", "api.dw.com.", DW) is None


def test_other_hosts_and_schemes_are_refused_with_a_reason():
    assert out_of_scope("https", "evil.example", DW) == "host 'evil.example' not allowed"
    assert out_of_scope("https", "127.0.0.1", DW) == "host '127.0.0.1' not allowed"
    assert out_of_scope("https", "www.dw.com.evil.example", DW) == "host 'www.dw.com.evil.example' not allowed"
    assert out_of_scope("file", None, DW) == "scheme 'file' not allowed"
    assert out_of_scope("javascript", None, DW) == "scheme 'javascript' not allowed"
    assert out_of_scope("https", None, DW) == "host None not allowed"
