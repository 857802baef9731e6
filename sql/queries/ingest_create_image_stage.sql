-- Per-session staging table for binary COPY; emptied at every commit.
CREATE TEMP TABLE IF NOT EXISTS ingest_image_stage (
    split text, path text NOT NULL, content_hash text, size bigint, mtime double precision,
    width integer, height integer, source_id text, label text, status text NOT NULL, error text,
    embedding vector, touch boolean NOT NULL, taken_at double precision
) ON COMMIT DELETE ROWS
