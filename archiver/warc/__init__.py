"""WARC output: records, rolling writer, capture middleware, validator, recovery, CDXJ and WACZ."""
