"""What DW publishes, as pure data: feed dumps, API JSON, page text, text agreement (no Scrapy)."""
