"""SQLAlchemy tables: the schema contract of DESIGN.md. No behaviour lives here.

Alembic revisions own the schema; these tables are what `alembic check` compares them with. The embedding
columns are declared without a dimension because the dimension belongs to the database's model record
(chosen at `vstore init`); env.py skips the dimension when comparing.
"""

from __future__ import annotations

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Computed,
    DateTime,
    Double,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import TSVECTOR

metadata = MetaData()


def _created_at() -> Column:
    return Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now())


embedding_model = Table(
    "embedding_model",
    metadata,
    Column("id", SmallInteger, primary_key=True, server_default=text("1"), autoincrement=False),
    Column("name", Text, nullable=False),
    Column("pretrained", Text, nullable=False),
    Column("checkpoint_sha256", Text),
    Column("dim", Integer, nullable=False),
    Column("random_weights", Boolean, nullable=False, server_default=false()),
    _created_at(),
    # No storage column: vector or halfvec is the type of images/captions.embedding itself (revision 0007;
    # vstore.db.indexes.column_type reads it).
    # the text search configuration of captions.tsv (`vstore init --text-search`, revision 0006)
    Column("text_search", Text, nullable=False, server_default="english"),
    # The model as one text, which text cache rows name (revision 0010): a row of another model is refused.
    Column(
        "model_key",
        Text,
        Computed("name || '/' || pretrained || coalesce('@' || checkpoint_sha256, '')", persisted=True),
    ),
    CheckConstraint("id = 1", name="embedding_model_single_row"),
    UniqueConstraint("model_key", name="embedding_model_model_key"),
)

datasets = Table(
    "datasets",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("root", Text, nullable=False),
    Column("format", Text, nullable=False),
    # What identifies the dataset: the resolved folder, or the manifest file (whose folder is `root`).
    # NULL on rows older than revision 0003 means `root`.
    Column("source", Text),
    _created_at(),
    Index("datasets_source_idx", "source"),
)

images = Table(
    "images",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("dataset_id", BigInteger, ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
    Column("split", Text),
    Column("path", Text, nullable=False),  # relative to the dataset root, '/'-separated
    Column("content_hash", Text),  # sha256 hex of the file bytes
    Column("size", BigInteger),
    Column("mtime", Double),
    Column("width", Integer),
    Column("height", Integer),
    Column("source_id", Text),  # e.g. the COCO image id
    Column("label", Text),  # class folder name, for zero-shot evaluation
    # when the photo was taken: EXIF capture date, else the file's mtime (revision 0006)
    Column("taken_at", DateTime(timezone=True)),
    Column("status", Text, nullable=False, server_default="ok"),
    Column("error", Text),
    Column("embedding", Vector()),
    _created_at(),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("dataset_id", "path", name="images_dataset_path_key"),
    # encoded here, or imported from vectors computed elsewhere (`vstore import`, revision 0009)
    Column("origin", Text, nullable=False, server_default="encoded"),
    CheckConstraint("status IN ('ok', 'failed', 'missing')", name="images_status_check"),
    CheckConstraint("origin IN ('encoded', 'imported')", name="images_origin_check"),
    Index("images_content_hash_idx", "content_hash"),
    Index("images_dataset_split_idx", "dataset_id", "split"),
    Index("images_taken_at_idx", "taken_at"),
    Index("images_labels_gin", text("string_to_array(label, '|')"), postgresql_using="gin"),
    Index(
        "images_embedding_hnsw",
        "embedding",
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"embedding": "vector_cosine_ops"},
    ),
)

captions = Table(
    "captions",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("image_id", BigInteger, ForeignKey("images.id", ondelete="CASCADE"), nullable=False),
    Column("source_id", Text, nullable=False),  # e.g. the COCO annotation id
    Column("text", Text, nullable=False),
    Column("embedding", Vector()),
    _created_at(),
    # full text of `text` in the configuration chosen at init (embedding_model.text_search; revision 0006)
    Column("tsv", TSVECTOR, Computed("to_tsvector('english'::regconfig, text)", persisted=True)),
    Column("origin", Text, nullable=False, server_default="encoded"),  # as images.origin
    UniqueConstraint("image_id", "source_id", name="captions_image_source_key"),
    CheckConstraint("origin IN ('encoded', 'imported')", name="captions_origin_check"),
    Index("captions_image_id_idx", "image_id"),
    Index("captions_tsv_gin", "tsv", postgresql_using="gin"),
    Index(
        "captions_embedding_hnsw",
        "embedding",
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"embedding": "vector_cosine_ops"},
    ),
)

text_queries = Table(
    "text_queries",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("text", Text, nullable=False, unique=True),
    Column("embedding", Vector(), nullable=False),
    _created_at(),
    # the model the vector comes from: only the recorded one (a foreign key to its key, revision 0010)
    Column(
        "model",
        Text,
        ForeignKey("embedding_model.model_key", name="text_queries_model_recorded"),
        nullable=False,
    ),
)

# Index definitions taken down for a bulk load and not yet rebuilt (a crash between the two must not
# lose the index): the next ingest, or `vstore index status`, rebuilds them.
deferred_indexes = Table(
    "deferred_indexes",
    metadata,
    Column("name", Text, primary_key=True),
    Column("definition", Text, nullable=False),
    _created_at(),
)

# A model switch under way (`vstore reembed`, revision 0005): the model switched to, and the new vectors,
# written in committed batches beside the live ones until one transaction swaps them in.
reembed_run = Table(
    "reembed_run",
    metadata,
    Column("id", SmallInteger, primary_key=True, server_default=text("1"), autoincrement=False),
    Column("name", Text, nullable=False),
    Column("pretrained", Text, nullable=False),
    Column("checkpoint_sha256", Text),
    Column("dim", Integer, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("id = 1", name="reembed_run_single_row"),
)

reembed_images = Table(
    "reembed_images",
    metadata,
    Column(
        "id", BigInteger, ForeignKey("images.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    ),
    Column("source_hash", Text),  # the image's content_hash when its new vector was computed
    Column("embedding", Vector()),
)

reembed_captions = Table(
    "reembed_captions",
    metadata,
    Column(
        "id", BigInteger, ForeignKey("captions.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    ),
    Column("source_hash", Text),  # md5 of the caption's text when its new vector was computed
    Column("embedding", Vector()),
)
