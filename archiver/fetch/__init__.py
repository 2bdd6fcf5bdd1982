"""How archiver fetches: the downloader, scope, politeness, conditional requests, the guarded resolver."""
