-- Every path this scan found; files of the dataset not in it are marked missing at the end.
CREATE TEMP TABLE IF NOT EXISTS ingest_seen (path text NOT NULL)
