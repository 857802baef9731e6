CREATE TEMP TABLE IF NOT EXISTS import_vectors (ord int4 PRIMARY KEY, image_embedding {storage}, text_embedding {storage}) ON COMMIT DELETE ROWS
