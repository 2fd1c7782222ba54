"""What a training run leaves beside its adapter: the loss and metric history, and tracker logs.

``history.json`` in the adapter folder holds every optimizer step's loss and every validation's
metrics, so a run can be plotted or compared later without any tracker installed. Trackers
(``log_with``) are Accelerate's; this module only checks, before anything is trained, that the
one asked for can run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from coldstart_peft.errors import ConfigError, MissingDependencyError
from coldstart_peft.outputs import write_text_atomic

if TYPE_CHECKING:
    from coldstart_peft.training import TrainResult

HISTORY_FILE = "history.json"
HISTORY_FORMAT = "coldstart-peft/history@1"
LOGS_FOLDER = "logs"
"""Where ``coldstart-peft train --log-with`` puts tracker logs inside ``--out`` unless ``--project-dir`` is given."""


def trackers(log_with: str | None) -> list[str]:
    """The tracker names of ``log_with`` (comma-separated, as ``--log-with tensorboard,wandb``)."""
    return [name.strip().lower() for name in (log_with or "").split(",") if name.strip()]


def check_trackers(log_with: str | None, project_dir: str | None) -> None:
    """Raise before training when a tracker asked for cannot run.

    Args:
        log_with: ``TrainConfig.log_with``.
        project_dir: ``TrainConfig.project_dir``.

    Raises:
        MissingDependencyError: TensorBoard is asked for and not installed (Accelerate would
            only warn and log nothing); the message gives the install command.
        ConfigError: TensorBoard is asked for without a folder to write to.
    """
    if "tensorboard" not in trackers(log_with):
        return
    from accelerate.utils import is_tensorboard_available

    if not is_tensorboard_available():
        raise MissingDependencyError(
            "--log-with tensorboard needs TensorBoard, which is not installed: "
            "pip install 'coldstart-peft[tensorboard]' (or pip install tensorboard), or train without --log-with"
        )
    if not project_dir:
        raise ConfigError(
            "log_with='tensorboard' writes event files under project_dir; set project_dir to a folder "
            "(coldstart-peft train puts them in <--out>/logs by default)"
        )


def history_record(result: TrainResult, method: str) -> dict[str, Any]:
    """The JSON-ready history of a run: one loss per optimizer step, one record per validation."""
    best = None if result.best is None else {k: v for k, v in result.best.items() if k != "summary"}
    return {
        "format": HISTORY_FORMAT,
        "method": method,
        "steps": result.steps,
        "train_seconds": round(result.seconds, 3),
        "train_pairs": result.train_pairs,
        "precision": result.precision,
        "stopped_early": result.stopped_early,
        "losses": [float(x) for x in result.losses],
        "validation": result.history,
        "best": best,
        "calibration": result.calibration,
    }


def save_history(result: TrainResult, folder: str | Path, method: str) -> Path:
    """Write :func:`history_record` to ``folder/history.json`` (atomically) and return its path."""
    return write_text_atomic(Path(folder) / HISTORY_FILE, json.dumps(history_record(result, method), indent=1, default=str))


def read_history(folder: str | Path) -> dict[str, Any]:
    """Read a run's ``history.json`` back.

    Raises:
        ConfigError: the folder has no history, or the file is not one.
    """
    path = Path(folder) / HISTORY_FILE
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{folder} has no {HISTORY_FILE}; it was saved by a run that did not record one") from None
    if not isinstance(record, dict) or record.get("format") != HISTORY_FORMAT:
        raise ConfigError(f"{path} is not a coldstart-peft training history")
    return record
