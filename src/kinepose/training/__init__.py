"""Training with Lightning: the task (:mod:`~kinepose.training.task`), the data module
(:mod:`~kinepose.training.datamodule`) and run folders (:mod:`~kinepose.training.run`).

Model files are not here: :mod:`kinepose.models.files` loads them without Lightning.
"""

from kinepose.training.datamodule import MotionDataModule
from kinepose.training.run import (
    RunResult,
    TrainingInterrupted,
    check_config,
    check_run_folder,
    run_training,
    seconds_to_text,
    select_residual_joints,
    training_pose_prior,
)
from kinepose.training.task import IKTask

__all__ = [
    "IKTask",
    "MotionDataModule",
    "RunResult",
    "TrainingInterrupted",
    "check_config",
    "check_run_folder",
    "run_training",
    "seconds_to_text",
    "select_residual_joints",
    "training_pose_prior",
]
