-- One row per dataset name; a moved dataset folder keeps its rows (paths are relative to the root).
INSERT INTO public.datasets (name, root, format)
VALUES (%(name)s, %(root)s, %(format)s)
ON CONFLICT (name) DO UPDATE SET root = EXCLUDED.root, format = EXCLUDED.format
RETURNING id
