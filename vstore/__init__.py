"""vstore: a multimodal (CLIP) vector store on PostgreSQL + pgvector."""
