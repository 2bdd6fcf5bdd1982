"""A test spider: fetch `n` URLs of one host, noting the event loop's turn when each download starts and ends."""

import asyncio
import json
from typing import ClassVar

import scrapy
from scrapy.core.downloader.handlers.http11 import HTTP11DownloadHandler


class Turns:
    """Counts the event loop's turns: `tick` runs once in each."""

    count = 0
    log: ClassVar[list[dict]] = []

    @classmethod
    def tick(cls) -> None:
        cls.count += 1
        asyncio.get_running_loop().call_soon(cls.tick)


class TurnNotingHandler(HTTP11DownloadHandler):
    """Scrapy's HTTP/1.1 handler, noting the turn a download starts in and the turn its response came back in."""

    async def download_request(self, request):
        start = Turns.count
        response = await super().download_request(request)
        Turns.log.append({"url": request.url, "start": start, "end": Turns.count})
        return response


class TurnsSpider(scrapy.Spider):
    name = "turns"
    custom_settings: ClassVar[dict] = {"DOWNLOAD_HANDLERS": {"http": f"{__name__}.TurnNotingHandler"}}

    def __init__(self, base: str = "", n: str = "6", out: str = "", **kw):
        super().__init__(**kw)
        self.base, self.n, self.out = base, int(n), out

    async def start(self):
        Turns.tick()
        for i in range(self.n):
            yield scrapy.Request(f"{self.base}/r{i}", dont_filter=True)

    def parse(self, response):
        pass

    def closed(self, reason):
        with open(self.out, "w", encoding="utf-8") as f:
            json.dump(Turns.log, f)
