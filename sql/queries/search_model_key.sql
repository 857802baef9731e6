-- The recorded model as one text (embedding_model.model_key): compared before every encode, so a process
-- that loaded its model before a `vstore reembed` notices the switch. One row, by primary key.
SELECT model_key FROM public.embedding_model WHERE id = 1
