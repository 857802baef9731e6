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


def test_ndcg_scores_relevance_to_the_exact_top1_as_the_coco_study_defines_it():
    # Hand-made 2-d vectors: Y = the exact top-1 (id 1, along x); rel = cosine to Y, not to the query.
    vectors = {1: (1.0, 0.0), 2: (0.6, 0.8), 3: (0.0, 1.0), 4: (-0.6, 0.8)}
    rel = {i: v[0] for i, v in vectors.items()}  # cosine with (1, 0): 1.0, 0.6, 0.0, -0.6
    exact = [1, 2, 3]  # the exact top 3 for the query
    idcg = (2**1.0 - 1) / 1 + (2**0.6 - 1) / math.log2(3) + 0.0
    assert metrics.ndcg_at_k([1, 2, 3], exact, rel, 3) == pytest.approx(1.0)
    # A method that returns 2, 1, 4: DCG = (2^0.6-1)/1 + (2^1-1)/log2(3) + 0 (negative cosine clipped).
    dcg = (2**0.6 - 1) + 1 / math.log2(3)
    assert metrics.ndcg_at_k([2, 1, 4], exact, rel, 3) == pytest.approx(dcg / idcg)
    assert metrics.ndcg_at_k([2, 1, 4], exact, rel, 3) == pytest.approx(0.8651, abs=1e-4)  # 1.14665 / 1.32538
    # The query-relevance variant scores the same list differently: it is not the research's figure.
    assert metrics.query_ndcg_at_k([2, 1, 4], [0.6, 1.0, -0.6], [1.0, 0.6, 0.0], 3) != pytest.approx(
        metrics.ndcg_at_k([2, 1, 4], exact, {1: 0.5, 2: 0.9, 3: 0.1, 4: 0.0}, 3)
    )


def test_ndcg_ideal_is_the_exact_list_in_exact_order_and_is_not_capped():
    # The exact top 2 for the query are 1 then 3; item 2 sits nearer Y than 3 does: a method returning
    # 1, 2 beats the exact list against Y, and the figure says so instead of being cut to 1.0.
    rel = {1: 1.0, 2: 0.9, 3: 0.5}
    expected = (1 + (2**0.9 - 1) / math.log2(3)) / (1 + (2**0.5 - 1) / math.log2(3))
    assert metrics.ndcg_at_k([1, 2], [1, 3], rel, 2) == pytest.approx(expected)
    assert expected > 1.0


def test_ndcg_of_a_short_list_counts_missing_slots_as_zero_gain():
    rel = {1: 1.0, 2: 0.8}
    expected = 1.0 / (1.0 + (2**0.8 - 1) / math.log2(3))
    assert metrics.ndcg_at_k([1], [1, 2], rel, 2) == pytest.approx(expected)
    assert metrics.ndcg_at_k([1, -1], [1, 2], rel, 2) == pytest.approx(expected)
    assert metrics.ndcg_at_k([], [1, 2], rel, 2) == 0.0


def test_ndcg_gives_a_repeated_id_no_gain_so_repeating_the_best_cannot_win():
    rel = {1: 1.0, 2: 0.8}
    repeated = metrics.ndcg_at_k([1, 1], [1, 2], rel, 2)
    assert repeated == pytest.approx(1.0 / (1.0 + (2**0.8 - 1) / math.log2(3)))


def test_mean_ndcg_skips_queries_with_nothing_to_normalise_by():
    rel = {1: 1.0, 2: 0.0}
    assert metrics.ndcg_at_k([2], [], rel, 1) != metrics.ndcg_at_k([2], [], rel, 1)  # NaN
    assert metrics.mean_ndcg_at_k([[1], [2]], [[1], [1]], [rel, rel], 1) == pytest.approx(0.5)
    assert math.isnan(metrics.mean_ndcg_at_k([], [], [], 3))


def test_query_ndcg_is_one_for_the_ideal_order_and_clips_negative_cosines():
    ideal = [0.9, 0.8, 0.3]
    assert metrics.query_ndcg_at_k([1, 2, 3], [0.9, 0.8, 0.3], ideal, 3) == pytest.approx(1.0)
    swapped = metrics.query_ndcg_at_k([2, 1, 3], [0.8, 0.9, 0.3], ideal, 3)
    idcg = (2**0.9 - 1) / 1 + (2**0.8 - 1) / math.log2(3) + (2**0.3 - 1) / 2
    dcg = (2**0.8 - 1) / 1 + (2**0.9 - 1) / math.log2(3) + (2**0.3 - 1) / 2
    assert swapped == pytest.approx(dcg / idcg)
    assert metrics.gain(-0.4) == 0.0
    assert metrics.query_ndcg_at_k([1, 2], [-0.1, -0.2], [-0.1, -0.2], 2) == 1.0


def test_returned_share_counts_rows_against_what_could_come_back():
    # k = 4 over a corpus of 3: a full answer has 3 rows; padding (-1) is not a row.
    assert metrics.returned_share([[5, 6, 7, -1], [5, -1, -1, -1]], 4, available=3) == pytest.approx(
        (1.0 + 1 / 3) / 2
    )
    assert metrics.returned_share([[5, 6]], 2, available=100) == 1.0


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


def test_top_k_accuracy_uses_plain_ranks_with_ties_broken_by_class_order():
    # All four classes score the same: the stable order puts class 0 first, so only item 0 is a top-1 hit.
    assert metrics.top_k_accuracy(np.zeros((2, 4)), [0, 3], 1) == pytest.approx(0.5)
    assert metrics.top_k_accuracy(np.zeros((2, 4)), [0, 3], 3) == pytest.approx(0.5)
    assert metrics.top_k_accuracy(np.zeros((2, 4)), [0, 3], 4) == pytest.approx(1.0)
    assert math.isnan(metrics.top_k_accuracy(np.zeros((0, 3)), [], 1))


def test_top_k_accuracy_with_several_labels_counts_any_of_them():
    scores = np.array([[0.1, 0.9, 0.5, 0.0], [0.8, 0.1, 0.2, 0.3], [0.0, 0.1, 0.2, 0.9]])
    # item 0: labels {0, 2}; ranks of 0 and 2 are 3 and 2. item 1: {3} rank 2. item 2: {2, 3}: 3 is first.
    labels = [{0, 2}, {3}, {2, 3}]
    assert metrics.top_k_accuracy(scores, labels, 1) == pytest.approx(1 / 3)
    assert metrics.top_k_accuracy(scores, labels, 2) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        metrics.top_k_accuracy(scores, [{0}, set(), {1}], 1)


def test_pair_cosine_stats_gives_mean_and_max_of_matched_rows():
    a = np.array([[1.0, 0.0], [0.0, 2.0]])
    b = np.array([[1.0, 0.0], [1.0, 0.0]])
    assert metrics.pair_cosine_stats(a, b) == pytest.approx((0.5, 1.0))


def test_k_below_one_is_refused():
    with pytest.raises(ValueError):
        metrics.precision_at_k([[1]], [1], 0)


def test_roc_auc_is_the_share_of_positive_negative_pairs_ranked_right():
    # positives at 0.1, 0.4; negatives at 0.3, 0.5, 0.4. Pairs (pos, neg) nearer-positive: 0.1 beats all 3;
    # 0.4 beats 0.5, ties 0.4 (half), loses to 0.3: (3 + 1.5) / 6 = 0.75.
    distances = [0.1, 0.4, 0.3, 0.5, 0.4]
    positive = [True, True, False, False, False]
    assert metrics.roc_auc(distances, positive) == pytest.approx(0.75)
    assert metrics.roc_auc([0.1, 0.2], [True, False]) == 1.0
    assert metrics.roc_auc([0.1, 0.2], [False, True]) == 0.0
    assert math.isnan(metrics.roc_auc([0.1], [True]))


def test_best_f1_threshold_picks_the_distance_with_the_highest_f1():
    # thresholds: 0.1 -> tp 1, predicted 1, F1 2/3; 0.3 -> tp 1, predicted 2: 2*1/(2+2) = 0.5;
    # 0.4 -> tp 2, predicted 4: 4/6 = 0.667 (not above 2/3: the smaller threshold is kept); 0.5 -> 4/7.
    distances = [0.1, 0.4, 0.3, 0.5, 0.4]
    positive = [True, True, False, False, False]
    threshold, f1 = metrics.best_f1_threshold(distances, positive)
    assert (threshold, f1) == (pytest.approx(0.1), pytest.approx(2 / 3))
    assert metrics.best_f1_threshold([0.2, 0.6], [True, True]) == (pytest.approx(0.6), pytest.approx(1.0))


def test_roc_curve_steps_through_each_distance():
    # positives 0.1, 0.4; negatives 0.3, 0.4: t=0.1 -> (0, 1/2); t=0.3 -> (1/2, 1/2); t=0.4 -> (1, 1).
    curve = metrics.roc_curve([0.1, 0.4, 0.3, 0.4], [True, True, False, False])
    assert curve == [(0.0, 0.0), (0.0, 0.5), (0.5, 0.5), (1.0, 1.0)]
    assert metrics.roc_curve([0.1], [True]) == []
