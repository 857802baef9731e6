"""pgvector against a Faiss side index on the same data: search methods behind one interface (methods,
with one module per engine), the export that feeds Faiss, the side index, the compare harness, plots."""
