-- vstore.text(t): the cached CLIP embedding of a text, for SQL clients that cannot run the model.
-- Texts enter the cache when the CLI searches them or through `vstore embed-text "..."`.
-- Only a row of the database's recorded model is returned (text_queries.model, revision 0010).
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
