"""Progress bars of finetune and reembed: what was done before the first report starts the bar instead of
being counted as done in no time (which showed 63,550 steps/s and 10,737,418 rows/s)."""

from __future__ import annotations

from vstore.cli.finetune import _Bar as FinetuneBar
from vstore.cli.reembed import _Bar as ReembedBar
from vstore.train.finetune import StepProgress
from vstore.train.reembed import ReembedProgress


def _untimed(bar) -> int:
    """Units the bar has timed: counted since it started, not its starting point."""
    return bar.n - bar.initial


def test_the_finetune_bar_starts_at_the_first_reported_step():
    bar = FinetuneBar()
    try:
        bar(StepProgress(step=41, steps_total=100, epoch=4, loss=1.0, steps_per_s=0.0, phase="train"))
        assert bar.bar.initial == 41 and _untimed(bar.bar) == 0  # a resumed run's 40 steps are not timed
        bar(StepProgress(step=42, steps_total=100, epoch=4, loss=0.9, steps_per_s=1.0, phase="train"))
        bar(StepProgress(step=43, steps_total=100, epoch=4, loss=0.8, steps_per_s=1.0, phase="train"))
        assert bar.bar.n == 43 and _untimed(bar.bar) == 2
    finally:
        bar.close()


def test_the_reembed_bar_starts_at_the_rows_done_before_its_first_report():
    bar = ReembedBar()
    try:
        bar(ReembedProgress(phase="images", done=4_000, total=10_000))
        assert bar.bar.initial == 4_000 and _untimed(bar.bar) == 0
        bar(ReembedProgress(phase="images", done=4_064, total=10_000))
        assert bar.bar.n == 4_064 and _untimed(bar.bar) == 64
        bar(ReembedProgress(phase="captions", done=0, total=50))  # a new phase: a new bar from its own start
        assert bar.bar.desc == "captions" and bar.bar.n == 0
    finally:
        bar.close()
