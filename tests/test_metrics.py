"""metrics.py against hand-computed examples: ties, k beyond the list, empty results, duplicates, padding."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vstore.evaluation import metrics


def test_precision_at_k_counts_queries_whose_truth_is_in_the_top_k():
    results = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    truths = [1, 6, 42]
    assert metrics.precision_at_k(results, truths, 1) == pytest.approx(1 / 3)
    assert metrics.precision_at_k(results, truths, 3) == pytest.approx(2 / 3)
    assert metrics.precision_at_ks(results, truths, (1, 2, 3)) == pytest.approx(
        {1: 1 / 3, 2: 1 / 3, 3: 2 / 3}
    )


def test_k_larger_than_the_result_list_uses_what_was_returned():
    assert metrics.precision_at_k([[5, 6]], [6], 10) == 1.0
    assert metrics.precision_at_k([[5, 6]], [7], 10) == 0.0
    assert metrics.top_k([5, 6], 10) == [5, 6]


def test_empty_result_list_is_a_miss_and_no_queries_is_nan():
    assert metrics.precision_at_k([[], [3]], [3, 3], 5) == 0.5
    assert math.isnan(metrics.precision_at_k([], [], 5))
    assert metrics.recall_at_k([[]], [[1]], 10) == 0.0


def test_duplicate_ids_keep_their_slot_but_count_once():
    # [5, 5, 7]: the repeated 5 wastes slot 2, so 7 is only found from k = 3 on.
    assert metrics.top_k([5, 5, 7], 2) == [5]
    assert metrics.precision_at_k([[5, 5, 7]], [7], 2) == 0.0
    assert metrics.precision_at_k([[5, 5, 7]], [7], 3) == 1.0
    # A relevant id returned twice is found once: recall 1/2, not 2/2.
    assert metrics.recall_at_k([[1, 1, 9]], [[1, 2]], 3) == 0.5


def test_negative_ids_are_padding_and_take_no_slot():
    assert metrics.top_k([-1, 4, -1, 5], 2) == [4, 5]
    assert metrics.precision_at_k([[-1, -1]], [3], 10) == 0.0


def test_a_truth_may_be_a_set_of_equally_acceptable_ids():
    assert metrics.precision_at_k([[8, 9]], [{3, 9}], 2) == 1.0
    assert metrics.precision_at_k([[8, 9]], [{3, 9}], 1) == 0.0


def test_recall_averages_the_share_of_relevant_ids_found_and_skips_queries_with_none():
    results = [[1, 2, 3], [4, 5, 6], [7]]
    relevant = [[1, 3, 10, 11], [6], []]
    # (2/4 + 1/1) / 2 queries (the third has nothing to find)
    assert metrics.recall_at_k(results, relevant, 3) == pytest.approx(0.75)
    assert metrics.recall_at_ks(results, relevant, (1, 3)) == pytest.approx({1: 0.125, 3: 0.75})


def test_recall_with_one_relevant_item_equals_precision_as_hit_rate():
    results = [[1, 2], [3, 4], [5, 6]]
    truths = [2, 9, 5]
    for k in (1, 2):
        assert metrics.recall_at_k(results, [[t] for t in truths], k) == metrics.precision_at_k(
            results, truths, k
        )


def test_dcg_uses_exponential_gain_and_log2_discount():
    rels = [1.0, 0.5, 0.0]
    expected = (2**1 - 1) / math.log2(2) + (2**0.5 - 1) / math.log2(3) + 0.0
    assert metrics.dcg_at_k(rels, 3) == pytest.approx(expected)
    assert metrics.dcg_at_k(rels, 1) == pytest.approx(1.0)


def test_ndcg_is_one_for_the_ideal_order_and_less_for_a_worse_one():
    ideal = [0.9, 0.8, 0.3]
    assert metrics.ndcg_at_k([1, 2, 3], [0.9, 0.8, 0.3], ideal, 3) == pytest.approx(1.0)
    swapped = metrics.ndcg_at_k([2, 1, 3], [0.8, 0.9, 0.3], ideal, 3)
    idcg = (2**0.9 - 1) / 1 + (2**0.8 - 1) / math.log2(3) + (2**0.3 - 1) / 2
    dcg = (2**0.8 - 1) / 1 + (2**0.9 - 1) / math.log2(3) + (2**0.3 - 1) / 2
    assert swapped == pytest.approx(dcg / idcg)
    assert swapped < 1.0


def test_ndcg_of_a_short_list_counts_missing_slots_as_zero_gain():
    ideal = [0.9, 0.8]
    expected = (2**0.9 - 1) / ((2**0.9 - 1) + (2**0.8 - 1) / math.log2(3))
    assert metrics.ndcg_at_k([1], [0.9], ideal, 2) == pytest.approx(expected)
    assert metrics.ndcg_at_k([], [], ideal, 2) == 0.0


def test_ndcg_gives_a_repeated_id_no_gain_so_repeating_the_best_cannot_win():
    ideal = [0.9, 0.8]
    repeated = metrics.ndcg_at_k([1, 1], {1: 0.9}, ideal, 2)
    assert repeated == pytest.approx((2**0.9 - 1) / ((2**0.9 - 1) + (2**0.8 - 1) / math.log2(3)))
    assert repeated < 1.0


def test_ndcg_with_ties_in_relevance_is_one_whichever_tied_item_comes_first():
    assert metrics.ndcg_at_k([2, 1], [0.5, 0.5], [0.5, 0.5], 2) == pytest.approx(1.0)


def test_ndcg_clips_negative_cosines_and_is_one_when_there_is_nothing_to_find():
    assert metrics.gain(-0.4) == 0.0
    assert metrics.ndcg_at_k([1, 2], [-0.1, -0.2], [-0.1, -0.2], 2) == 1.0
    assert metrics.mean_ndcg_at_k([[1], [2]], [[0.5], [0.0]], [[0.5], [0.5]], 1) == pytest.approx(0.5)
    assert math.isnan(metrics.mean_ndcg_at_k([], [], [], 3))


def test_tied_ids_accepts_every_id_as_near_as_the_best():
    assert metrics.tied_ids([4, 5, 6], [0.1, 0.1 + 1e-9, 0.2]) == {4, 5}
    assert metrics.tied_ids([-1, 6], [0.0, 0.3]) == {6}
    assert metrics.tied_ids([], []) == frozenset()


def test_top_k_accuracy_counts_true_class_within_the_k_best():
    scores = np.array([[0.9, 0.1, 0.0], [0.2, 0.3, 0.5], [0.1, 0.8, 0.7]])
    labels = [0, 0, 2]
    assert metrics.top_k_accuracy(scores, labels, 1) == pytest.approx(1 / 3)
    assert metrics.top_k_accuracy(scores, labels, 2) == pytest.approx(2 / 3)
    assert metrics.top_k_accuracy(scores, labels, 3) == pytest.approx(1.0)
    assert metrics.top_k_accuracy(scores, labels, 5) == pytest.approx(1.0)


def test_top_k_accuracy_gives_tied_classes_the_expected_credit_not_a_free_hit():
    # All four classes score the same: random tie-breaking finds the true one in top 1 a quarter of the time.
    assert metrics.top_k_accuracy(np.zeros((2, 4)), [0, 3], 1) == pytest.approx(0.25)
    assert metrics.top_k_accuracy(np.zeros((2, 4)), [0, 3], 2) == pytest.approx(0.5)
    # One class strictly better, the true class tied with one other for places 2-3: top-2 credit 1/2.
    assert metrics.top_k_accuracy(np.array([[0.9, 0.5, 0.5]]), [1], 2) == pytest.approx(0.5)
    assert math.isnan(metrics.top_k_accuracy(np.zeros((0, 3)), [], 1))


def test_pair_cosine_stats_gives_mean_and_max_of_matched_rows():
    a = np.array([[1.0, 0.0], [0.0, 2.0]])
    b = np.array([[1.0, 0.0], [1.0, 0.0]])
    assert metrics.pair_cosine_stats(a, b) == pytest.approx((0.5, 1.0))


def test_k_below_one_is_refused():
    with pytest.raises(ValueError):
        metrics.precision_at_k([[1]], [1], 0)
