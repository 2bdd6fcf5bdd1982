"""Runtime tweaks measured in bench/ (docs/tuning.md lists each with its setting and gain)."""
