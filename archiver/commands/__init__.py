"""Scrapy commands that archiver adds (`scrapy dumps`, `scrapy warc-check`, ...)."""
