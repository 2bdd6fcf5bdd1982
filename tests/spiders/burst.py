"""A test spider: from one response, fetch `n` URLs of one host at once through `engine.download_async`."""

import asyncio
import json

import scrapy


class Burst(scrapy.Spider):
    name = "burst"

    def __init__(self, base: str = "", n: str = "20", out: str = "", **kw):
        super().__init__(**kw)
        self.base, self.n, self.out = base, int(n), out

    async def start(self):
        yield scrapy.Request(f"{self.base}/start", dont_filter=True)

    async def parse(self, response):
        requests = [scrapy.Request(f"{self.base}/r{i}", dont_filter=True) for i in range(self.n)]
        responses = await asyncio.gather(*(self.crawler.engine.download_async(r) for r in requests))
        with open(self.out, "w", encoding="utf-8") as f:
            json.dump(sorted(r.status for r in responses), f)
        return
        yield
