"""History: the Parquet archive sink, reading the archive back, and replays."""
