"""A test spider: fetch the URLs in the `urls` argument and write what came back as JSON lines."""

import json

import scrapy


class FetchUrls(scrapy.Spider):
    name = "fetch_urls"

    def __init__(self, urls: str = "", out: str = "", **kw):
        super().__init__(**kw)
        self.urls = [u for u in urls.split(",") if u]
        self.out = out

    async def start(self):
        for url in self.urls:
            yield scrapy.Request(url, dont_filter=True, meta={"handle_httpstatus_all": True}, errback=self.failed)

    def parse(self, response):
        self._write({"url": response.url, "status": response.status, "body": response.text[:200]})

    def failed(self, failure):
        self._write({"url": failure.request.url, "error": repr(failure.value)})

    def _write(self, row):
        with open(self.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
