"""Signals that archiver's components send each other (sent with `crawler.signals.send_catch_log`)."""

# A page or API response's text was extracted: kwargs url, record_id (of the response record), text.
# The WARC writer answers with a conversion record that refers to the response, written to a text file
# (`*.warc.wet.gz`), and returns where it went (archiver.warc.writer.WrittenRecord).
text_extracted = object()

# A WARC file was closed and checked: kwargs path, ok (bool), problems (list[str]), records (int).
warc_file_closed = object()

# One article (or cited article) is finished: kwargs item (ArticleItem), new_version (False when a
# recheck found the archived content unchanged, so no item is written).
article_finished = object()

# One input file was accounted for: kwargs path, outcome (read/duplicate/skipped/failed), reason.
dump_processed = object()

# Something makes the run a failure although it may go on or end normally (a full disk, a lost digest index):
# kwargs problem (one line). The run report lists it and the run exits with status 1.
run_problem = object()

# An item could not be written to its items file (a full disk): kwargs item, error. Its article is not done.
item_not_written = object()
