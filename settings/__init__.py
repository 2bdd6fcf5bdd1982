"""Settings profiles: `default` (embedded, files under output/) and the profiles built on it."""
