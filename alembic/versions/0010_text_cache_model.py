"""text cache rows name their model

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04

A process that loaded the model before a `vstore reembed` (a running `vstore serve`) could write vectors
of the old model into the text cache the switch had just emptied, and every later search and
`vstore.text()` would read them as the new model's. Now:

- embedding_model.model_key: the recorded model as one text (name/pretrained, plus @checkpoint sha256
  when there is one), generated from the record, unique;
- text_queries.model: the model a cached vector comes from, NOT NULL, a foreign key to model_key. The
  database itself refuses a row of any model but the recorded one (the key of a model switched away from
  no longer exists), and refuses to move the record to another model while rows of the old one remain
  (reembed empties the cache in the same transaction). Existing rows get the current model;
- vstore.text(t) returns only a row of the recorded model (the check is explicit, not only implied by the
  key).

Frozen: the statements are written out here, never read from sql/.
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TEXT_FUNCTION = """
CREATE OR REPLACE FUNCTION vstore.text(t text) RETURNS vector
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    v vector;
BEGIN
    SELECT q.embedding INTO v
    FROM public.text_queries q
    JOIN public.embedding_model m ON m.id = 1 AND m.model_key = q.model
    WHERE q.text = t;
    IF v IS NULL THEN
        RAISE EXCEPTION 'vstore: no cached embedding for the text %', quote_literal(t)
            USING ERRCODE = 'no_data_found',
                  HINT = 'Add it with: vstore embed-text ' || quote_literal(t)
                         || ' (or search it once with vstore search), then run this query again.';
    END IF;
    RETURN v;
END
$$;
"""

OLD_TEXT_FUNCTION = """
CREATE OR REPLACE FUNCTION vstore.text(t text) RETURNS vector
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    v vector;
BEGIN
    SELECT q.embedding INTO v FROM public.text_queries q WHERE q.text = t;
    IF v IS NULL THEN
        RAISE EXCEPTION 'vstore: no cached embedding for the text %', quote_literal(t)
            USING ERRCODE = 'no_data_found',
                  HINT = 'Add it with: vstore embed-text ' || quote_literal(t)
                         || ' (or search it once with vstore search), then run this query again.';
    END IF;
    RETURN v;
END
$$;
"""


def upgrade() -> None:
    op.execute(
        "ALTER TABLE public.embedding_model ADD COLUMN model_key text GENERATED ALWAYS AS "
        "(name || '/' || pretrained || coalesce('@' || checkpoint_sha256, '')) STORED"
    )
    op.execute(
        "ALTER TABLE public.embedding_model ADD CONSTRAINT embedding_model_model_key UNIQUE (model_key)"
    )
    op.execute("ALTER TABLE public.text_queries ADD COLUMN model text")
    op.execute(
        "UPDATE public.text_queries SET model = (SELECT model_key FROM public.embedding_model WHERE id = 1)"
    )
    op.execute("DELETE FROM public.text_queries WHERE model IS NULL")  # no model recorded: nothing to trust
    op.execute("ALTER TABLE public.text_queries ALTER COLUMN model SET NOT NULL")
    op.execute(
        "ALTER TABLE public.text_queries ADD CONSTRAINT text_queries_model_recorded "
        "FOREIGN KEY (model) REFERENCES public.embedding_model (model_key)"
    )
    op.execute(TEXT_FUNCTION)


def downgrade() -> None:
    op.execute(OLD_TEXT_FUNCTION)
    op.execute("ALTER TABLE public.text_queries DROP CONSTRAINT text_queries_model_recorded")
    op.execute("ALTER TABLE public.text_queries DROP COLUMN model")
    op.execute("ALTER TABLE public.embedding_model DROP CONSTRAINT embedding_model_model_key")
    op.execute("ALTER TABLE public.embedding_model DROP COLUMN model_key")
