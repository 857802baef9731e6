CREATE TEMP TABLE IF NOT EXISTS import_meta (ord int4 PRIMARY KEY, path text NOT NULL, source_id text, caption text, caption_id text) ON COMMIT DELETE ROWS
