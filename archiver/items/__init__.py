"""The article item, its schema check, and the item files that survive kill -9."""
