"""The fine-tuning run's directory: what it holds and how it is written and read back.

model.pt       the weights: a state_dict under "state_dict", which open_clip loads as a local
               checkpoint (`--pretrained DIR/model.pt`, `vstore reembed --pretrained DIR`)
recipe.json    model, starting weights, hyperparameters, seed, split
database.json  the database it came from (URL without password, model record, counts, held-out ids)
scores.json    held-out retrieval scores before and after, and the gain
history.json   loss per step, seconds per epoch
loss.png       the loss curve
resume.pt      optimizer and weights at the last completed step, while the run is unfinished
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from vstore.errors import ConfigError, NotFound

MODEL_FILE = "model.pt"
RESUME_FILE = "resume.pt"
RECIPE_FILE = "recipe.json"
DATABASE_FILE = "database.json"
SCORES_FILE = "scores.json"
HISTORY_FILE = "history.json"
PLOT_FILE = "loss.png"


def write_json(path: Path, value: Any) -> None:
    """Write through a temporary file and rename, so a crash never leaves half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(value, indent=2, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFound(f"{path} is missing; this is not a complete `vstore finetune` directory.") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc.msg}); the run directory is damaged.") from exc


def save_torch(path: Path, value: Any) -> None:
    import torch

    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(value, tmp)
    os.replace(tmp, path)


def load_torch(path: Path) -> Any:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def prepare_out(out: Path, resume: bool) -> None:
    """A new run needs an empty (or absent) directory; --resume needs one with a resumable state."""
    if resume:
        if not (out / RESUME_FILE).is_file():
            done = (out / MODEL_FILE).is_file()
            raise NotFound(
                f"{out} has no interrupted run to resume"
                + (" (that run finished: its weights are in model.pt)." if done else ".")
                + " Start a new run with another --out."
            )
        return
    # A run that failed before its first step leaves only its JSON files: nothing to resume, reusable.
    leftovers = {RECIPE_FILE, DATABASE_FILE, SCORES_FILE}
    if out.exists() and (not out.is_dir() or any(p.name not in leftovers for p in out.iterdir())):
        raise ConfigError(
            f"--out {out} is not an empty directory; choose a new one, or add --resume to continue the "
            "interrupted run it holds."
        )
    out.mkdir(parents=True, exist_ok=True)


def checkpoint_file(path: str | Path) -> Path:
    """A fine-tuning directory or a weights file -> the weights file."""
    candidate = Path(path).expanduser()
    if candidate.is_dir():
        candidate = candidate / MODEL_FILE
    if not candidate.is_file():
        raise NotFound(
            f"no checkpoint at {candidate}; give a weights file or a finished `vstore finetune --out` "
            "directory (it holds model.pt)."
        )
    return candidate.resolve()


def plot_loss(history: list[dict[str, Any]], path: Path, title: str) -> Path:
    """Loss per step, with its running mean over an epoch, as a PNG (Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    steps = np.array([h["step"] for h in history])
    losses = np.array([h["loss"] for h in history])
    per_epoch = max(1, sum(1 for h in history if h["epoch"] == history[0]["epoch"])) if history else 1
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, losses, lw=0.8, alpha=0.5, label="loss per step")
    if len(losses) >= per_epoch > 1:
        smooth = np.convolve(losses, np.ones(per_epoch) / per_epoch, mode="valid")
        ax.plot(steps[per_epoch - 1 :], smooth, lw=2, label=f"mean of the last {per_epoch} steps (1 epoch)")
    ax.set_xlabel("step")
    ax.set_ylabel("contrastive loss (ClipLoss)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
