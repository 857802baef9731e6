-- Per-session staging table for binary COPY of captions; emptied at every commit.
CREATE TEMP TABLE IF NOT EXISTS ingest_caption_stage (
    path text NOT NULL, source_id text NOT NULL, text text NOT NULL, embedding vector
) ON COMMIT DELETE ROWS
