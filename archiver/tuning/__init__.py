"""Runtime tweaks: changes made for speed or memory only, each behind a switch whose off position is the plain
Scrapy/stdlib path (docs/tuning.md lists each with its measured gain)."""

# The ARCHIVER_* switches of the tweaks (archiver/config.py has their defaults and meaning).
SWITCHES = (
    "ARCHIVER_GC_FREEZE",
    "ARCHIVER_CAPTURE_YIELDS",
    "ARCHIVER_DECODE_ONCE",
    "ARCHIVER_SCHEMA_FAST_CHECK",
    "ARCHIVER_EXPORT_ASDICT",
    "ARCHIVER_EXTRACT_IDLE_PRIORITY",
)
