"""Facts about DW's real answers, read off the samples in tests/data/dw-samples (not from our code)."""

# Keys of an api.dw.com article detail, in the order DW's Jackson printer writes them.
API_KEYS = [
    "type",
    "id",
    "languageId",
    "trackingInfo",
    "mainContent",
    "name",
    "teaser",
    "categoryName",
    "text",
    "permaLink",
    "displayDate",
    "body",
    "referenceGroups",
    "commentsEnabled",
]
