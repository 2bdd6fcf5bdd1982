"""A test spider for the stand-in: fetch the requests of a JSON spec and write what Scrapy saw as JSON.

`scrapy runspider tests/standin_probe_spider.py -a spec=SPEC.json -a out=OUT.json`; the spec is a list of
{"name", "url", "headers"?, "meta"?, "keep_body"?}. For each name the output holds the final response
(url, status, headers, body digest, flags) or the error, plus what `headers_received` saw on the wire
(Content-Encoding before decompression; body_length -1 when the body was chunked).
"""

from __future__ import annotations

import base64
import hashlib
import json

import scrapy
from scrapy import signals


class StandinProbe(scrapy.Spider):
    name = "standin_probe"

    def __init__(self, spec: str = "", out: str = "", dumps: str = "", **kw):
        super().__init__(**kw)
        self.dump_paths = [p for p in dumps.split(",") if p]  # read by the in-process stand-in
        with open(spec, encoding="utf-8") as f:
            self.requests = json.load(f)
        self.out = out
        self.results: dict[str, dict] = {}
        self.wire: dict[str, list] = {}

    @classmethod
    def from_crawler(cls, crawler, *args, **kwargs):
        spider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.headers_received, signal=signals.headers_received)
        crawler.signals.connect(spider.response_downloaded, signal=signals.response_downloaded)
        crawler.signals.connect(spider.closed_write, signal=signals.spider_closed)
        return spider

    async def start(self):
        for spec in self.requests:
            meta = {**spec.get("meta", {}), "probe": spec["name"]}
            yield scrapy.Request(
                spec["url"],
                headers=spec.get("headers"),
                meta=meta,
                dont_filter=True,
                callback=self.parse,
                errback=self.failed,
            )

    def headers_received(self, headers, body_length, request, spider):
        name = request.meta.get("probe")
        self.wire.setdefault(name, []).append(
            {
                "url": request.url,
                "body_length": body_length if isinstance(body_length, int) else -1,  # UNKNOWN_LENGTH: chunked
                "content_encoding": (headers.get(b"Content-Encoding") or b"").decode(),
            }
        )

    def response_downloaded(self, response, request, spider):
        name = request.meta.get("probe")
        if self.wire.get(name):
            self.wire[name][-1]["raw_magic"] = response.body[:4].hex()
            self.wire[name][-1]["status"] = response.status

    def parse(self, response):
        spec = next(s for s in self.requests if s["name"] == response.meta["probe"])
        result = {
            "url": response.url,
            "status": response.status,
            "headers": {k.decode().lower(): [v.decode("latin-1") for v in vs] for k, vs in response.headers.items()},
            "length": len(response.body),
            "sha1": hashlib.sha1(response.body).hexdigest(),
            "magic": response.body[:4].hex(),
            "flags": response.flags,
            "protocol": response.protocol,
            "ip": str(response.ip_address),
            "redirect_urls": response.meta.get("redirect_urls", []),
        }
        if spec.get("keep_body"):
            result["body_b64"] = base64.b64encode(response.body).decode()
        self.results[spec["name"]] = result

    def failed(self, failure):
        request = failure.request
        self.results[request.meta["probe"]] = {
            "url": request.url,
            "error": type(failure.value).__name__,
            "message": str(failure.value)[:500],
            "status": getattr(getattr(failure.value, "response", None), "status", None),
        }

    def closed_write(self, spider):
        for name, wire in self.wire.items():
            self.results.setdefault(name, {})["wire"] = wire
        with open(self.out, "w", encoding="utf-8") as f:
            json.dump(self.results, f, ensure_ascii=False)
