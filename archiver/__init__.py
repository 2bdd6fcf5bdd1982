"""archiver: archive the DW sources that feed dumps point to, as WARC files and article items."""

import os

__version__ = "0.1.0"

# Scrapy's cookie middleware asks tldextract for public suffixes; on first use tldextract would fetch the list from
# the internet (long tracebacks on an offline crawl). Its bundled snapshot is what we use; an explicit value wins.
os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
