"""archiver: archive the DW sources that feed dumps point to, as WARC files and article items."""

__version__ = "0.1.0"
