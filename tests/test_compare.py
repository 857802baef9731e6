"""`vstore compare`: recall against exact ground truth, sweeps, JSON rows, the plot, index clean-up."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vstore.bench.synth import load_synthetic
from vstore.cli import main
from vstore.compare.base import BuildOptions
from vstore.compare.harness import compare
from vstore.compare.methods import EXACT_METHODS, parse_methods
from vstore.db import indexes
from vstore.db.connect import connect
from vstore.errors import ConfigError

ROW_FIELDS = {
    "method",
    "params",
    "recall_at_k",
    "returned",
    "recall_by_kind",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "qps",
    "build_s",
    "size_bytes",
    "server_ms",
    "k",
    "queries",
    "rows",
    "threads",
    "cpu_count",
}


@pytest.fixture
def synthetic(settings):
    """400 clustered images with one caption each (text->image queries), loaded without the ingest."""
    load_synthetic(settings, 400, captions_per_image=1, seed=3)
    return settings


def test_exact_methods_have_recall_one(synthetic):
    report = compare(synthetic, k=10, queries=30, methods=list(EXACT_METHODS), repeats=1)
    assert {r.method for r in report.rows} == set(EXACT_METHODS)
    assert report.meta["query_kinds"] == {"stored-image->image": 15, "text->image": 15}
    assert [r.recall_at_k for r in report.rows] == [1.0] * len(EXACT_METHODS)
    assert all(r.recall_by_kind == {"stored-image->image": 1.0, "text->image": 1.0} for r in report.rows)


def test_exact_is_exact_when_the_corpus_holds_fewer_than_k_candidates(settings):
    # 10 images, k = 10: a stored-image query (its own row dropped) has 9 candidates. Recall divides by
    # min(k, candidates), so an exact scan scores 1.0 (dividing by k gave 0.95 on this query mix).
    load_synthetic(settings, 10, captions_per_image=1, seed=3)
    report = compare(settings, k=10, queries=10, methods=["pgvector-exact", "faiss-flat"], repeats=1)
    assert report.meta["query_kinds"] == {"stored-image->image": 5, "text->image": 5}
    assert [(r.recall_at_k, r.returned) for r in report.rows] == [(1.0, 1.0), (1.0, 1.0)]


def test_compare_json_prints_rows_and_meta_on_stdout_and_nothing_else(synthetic, monkeypatch, capsys):
    monkeypatch.setenv("VSTORE_DATABASE_URL", synthetic.database_url)
    args = ["compare", "-k", "3", "--queries", "4", "--repeats", "1", "-m", "faiss-flat", "--json"]
    assert main(args) == 0
    document = json.loads(capsys.readouterr().out)  # the whole of stdout is one JSON document
    assert [row["method"] for row in document["rows"]] == ["faiss-flat"]
    assert document["rows"][0]["k"] == 3 and document["meta"]["queries"] == 4


def test_several_k_give_one_row_per_k_and_a_latency_plot(synthetic, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VSTORE_DATABASE_URL", synthetic.database_url)
    json_file, plot = tmp_path / "rows.json", tmp_path / "latency.png"
    args = ["compare", "-k", "1,5,20", "--queries", "6", "--repeats", "1", "--methods", "faiss-flat"]
    assert (
        main(
            [*args, "--methods", "pgvector-hnsw", "--ef-search", "10"]
            + ["--out", str(json_file), "--plot", str(plot)]
        )
        == 0
    )
    rows = json.loads(json_file.read_text())
    assert [(r["method"], r["k"]) for r in rows] == [
        ("faiss-flat", 1),
        ("faiss-flat", 5),
        ("faiss-flat", 20),
        ("pgvector-hnsw", 1),
        ("pgvector-hnsw", 5),
        ("pgvector-hnsw", 20),
    ]
    # ef_search 10 caps pgvector's HNSW at 10 rows: at k = 20, 10 of 20 rows come back for a text query and
    # 9 for a stored image (its own row is dropped), and the run says so instead of counting misses.
    assert [r["returned"] for r in rows[:5]] == [1.0] * 5
    assert rows[5]["returned"] == pytest.approx((3 * 10 + 3 * 9) / (6 * 20))
    assert rows[5]["recall_at_k"] <= 0.5
    assert [r["recall_at_k"] for r in rows[:3]] == [1.0, 1.0, 1.0]
    table = capsys.readouterr().out
    assert "* fewer rows came back" in table
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ann_recall_never_falls_as_the_search_widens(synthetic):
    options = BuildOptions(nlist=16, ef_sweep=(1, 2, 4, 8, 16, 64), probe_sweep=(1, 2, 4, 8, 16))
    methods = ["pgvector-hnsw", "pgvector-ivfflat", "faiss-hnsw", "faiss-ivf", "faiss-ivfpq"]
    report = compare(synthetic, k=10, queries=40, methods=methods, options=options, repeats=1)
    for method in methods:
        recalls = [r.recall_at_k for r in report.rows if r.method == method]
        assert len(recalls) >= 5, method
        assert recalls == sorted(recalls), (method, recalls)  # monotone non-decreasing
        if method != "faiss-ivfpq":  # PQ codes are lossy: a full scan still misses
            assert recalls[-1] >= 0.95, (method, recalls)
    ivf = [r for r in report.rows if r.method == "faiss-ivf"]
    assert ivf[-1].params == {"nprobe": 16} and ivf[-1].recall_at_k == 1.0  # all lists scanned: exact


def test_ivfflat_built_for_the_run_is_dropped_unless_kept(synthetic):
    def kinds() -> set[str]:
        with connect(synthetic) as conn:
            return {i.kind for i in indexes.list_indexes(conn) if i.table == "images"}

    options = BuildOptions(nlist=8, probe_sweep=(1, 8))
    report = compare(synthetic, queries=6, methods=["pgvector-ivfflat"], options=options, repeats=1)
    assert kinds() == {"hnsw"}
    assert report.rows[0].build_s is not None and report.rows[0].build_params == {"lists": 8}
    assert report.rows[-1].recall_at_k == 1.0  # probes = lists: exact
    options.keep_ivfflat = True
    compare(synthetic, queries=6, methods=["pgvector-ivfflat"], options=options, repeats=1)
    assert kinds() == {"hnsw", "ivfflat"}


def test_hnsw_is_measured_even_when_an_ivfflat_index_exists(synthetic):
    with connect(synthetic) as conn:
        indexes.create_index(conn, "images", "ivfflat", lists=4)
    options = BuildOptions(ef_sweep=(1,))
    row = compare(synthetic, queries=10, methods=["pgvector-hnsw"], options=options, repeats=1).rows[0]
    # ef_search=1 caps an HNSW scan at one row per query; an IVFFlat or exact plan would return k.
    # A stored image's one row is itself (dropped): 0 of 10 rows; a text query 1 of 10.
    assert row.recall_at_k <= 0.1 + 1e-9 and row.returned == pytest.approx((5 * 0 + 5 * 1) / (10 * 10))


def test_cli_writes_json_rows_with_every_field_and_a_png_plot(synthetic, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VSTORE_DATABASE_URL", synthetic.database_url)
    json_file, plot = tmp_path / "rows.json", tmp_path / "plot.png"
    code = main(
        [
            "compare",
            "-k",
            "5",
            "--queries",
            "10",
            "--repeats",
            "1",
            "--methods",
            "pgvector-exact,pgvector-hnsw",
            "--methods",
            "faiss-hnsw",
            "--ef-search",
            "10,40",
            "--out",
            str(json_file),
            "--plot",
            str(plot),
        ]
    )
    assert code == 0
    table = capsys.readouterr().out
    assert "pgvector-hnsw" in table and "recall" in table.splitlines()[0]
    rows = json.loads(json_file.read_text())
    assert isinstance(rows, list) and len(rows) == 5
    for row in rows:
        assert ROW_FIELDS <= set(row), ROW_FIELDS - set(row)
        assert row["cpu_count"] >= 1 and row["k"] == 5
    assert [r["server_ms"] is not None for r in rows] == [True, True, True, False, False]
    assert json.loads(json_file.with_suffix(".meta.json").read_text())["cpu_count"] >= 1
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 1000


def test_unknown_method_is_a_usage_error():
    with pytest.raises(Exception, match="unknown method"):
        parse_methods(["pgvector-hnsw,scann"])


def test_storage_bench_measures_each_variant_and_leaves_no_tables(synthetic):
    from vstore.bench.storage import VARIANTS, storage_effect

    rows = storage_effect(synthetic, queries=3, repeats=1)
    assert [r.variant for r in rows] == list(VARIANTS) and all(r.rows == 400 and r.p50_ms > 0 for r in rows)
    with connect(synthetic) as conn:
        left = conn.execute(
            "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'vstore_bench_%'"
        ).fetchone()[0]
    assert left == 0


def image_index_kinds(settings) -> set[str]:
    with connect(settings) as conn:
        return {i.kind for i in indexes.list_indexes(conn) if i.table == "images"}


def test_missing_hnsw_index_is_built_for_the_run_and_removed_after(synthetic):
    with connect(synthetic) as conn:
        indexes.drop_index(conn, "images", "hnsw")
    options = BuildOptions(m=8, ef_construction=32, ef_sweep=(40,))
    row = compare(synthetic, queries=6, methods=["pgvector-hnsw"], options=options, repeats=1).rows[0]
    assert row.build_s is not None and row.build_params == {"m": 8, "ef_construction": 32}
    assert image_index_kinds(synthetic) == set()


def test_other_hnsw_parameters_than_the_schema_index_are_refused_and_the_index_kept(synthetic):
    with pytest.raises(ConfigError, match="vstore index create"):
        compare(synthetic, queries=4, methods=["pgvector-hnsw"], options=BuildOptions(m=32), repeats=1)
    assert image_index_kinds(synthetic) == {"hnsw"}


def test_cli_bench_synth_fills_a_scratch_dataset(settings, monkeypatch, capsys):
    monkeypatch.setenv("VSTORE_DATABASE_URL", settings.database_url)
    assert main(["bench", "synth", "--rows", "50", "--captions-per-image", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == 50 and report["captions"] == 100 and report["dim"] == 32
    assert main(["bench", "synth", "--rows", "10", "--dim", "512"]) == 1  # not the database's dimension


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_other_metrics_rank_unit_vectors_like_cosine_on_indexes_built_for_the_run(synthetic, metric):
    # On L2-normalised vectors cosine, inner product and L2 give the same order, so every exact method
    # scores 1.0 against the cosine truth and a full IVF probe too; the run's own index (matching opclass)
    # is what the planner used (PgvectorMethod checks EXPLAIN), and it is gone afterwards.
    options = BuildOptions(nlist=4, ef_sweep=(100,), probe_sweep=(4,), metric=metric)
    methods = ["pgvector-exact", "pgvector-hnsw", "pgvector-ivfflat", "faiss-flat", "faiss-ivf"]
    report = compare(synthetic, k=10, queries=20, methods=methods, options=options, repeats=1)
    recall = {r.method: r.recall_at_k for r in report.rows}
    assert {m: recall[m] for m in methods if m != "pgvector-hnsw"} == dict.fromkeys(
        [m for m in methods if m != "pgvector-hnsw"], 1.0
    )
    assert recall["pgvector-hnsw"] >= 0.95
    assert {r.metric for r in report.rows} == {metric} and report.meta["metric"] == metric
    assert next(r for r in report.rows if r.method == "pgvector-hnsw").build_s is not None  # built for it
    with connect(synthetic) as conn:
        assert {i.name for i in indexes.list_indexes(conn) if i.table == "images"} == {
            "images_embedding_hnsw"
        }


def test_pgvector_distances_under_every_metric_are_cosine_distances(synthetic):
    from vstore.compare.base import load_corpus
    from vstore.compare.methods import build_method

    corpus = load_corpus(synthetic, "images")
    query = corpus.vectors[7]
    expected = np.sort(1.0 - corpus.vectors @ query)[:5]
    for metric in ("cosine", "ip", "l2"):
        method = build_method("pgvector-exact", corpus, synthetic, BuildOptions(metric=metric))
        try:
            method.configure()
            _, distances = method.search(query, 5)
        finally:
            method.close()
        assert distances == pytest.approx(expected, abs=1e-5), metric
    with pytest.raises(ConfigError, match="unknown --metric"):
        build_method("pgvector-exact", corpus, synthetic, BuildOptions(metric="hamming"))


def test_annoy_is_measured_with_its_file_size_and_load_time_and_full_search_is_exact(synthetic):
    pytest.importorskip("annoy", reason="the annoy method is in the optional bench extra")
    report = compare(synthetic, k=10, queries=20, methods=["annoy"], repeats=1)
    rows = report.rows
    assert [r.params for r in rows] == [{"search_k": s} for s in (100, 500, 2000, 10000)]
    recalls = [r.recall_at_k for r in rows]
    assert recalls == sorted(recalls)  # more nodes inspected, never worse
    # search_k 10000 > 400 items x 10 trees' leaves: every item is inspected, so the answer is exact.
    assert recalls[-1] == 1.0
    # An Annoy file holds the 400 vectors (32 float32 each) plus the trees' nodes.
    assert rows[0].size_bytes > 400 * 32 * 4 and rows[0].build_s is not None
    assert rows[0].build_params["n_trees"] == 10 and rows[0].build_params["load_ms"] >= 0


def test_annoy_missing_gives_a_clear_error(synthetic, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "annoy", None)  # as if the bench extra were not installed
    with pytest.raises(ConfigError, match=r"vstore\[bench\]"):
        compare(synthetic, k=10, queries=4, methods=["annoy"], repeats=1)
