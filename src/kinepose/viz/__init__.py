"""Plots: 3D skeletons (PNG) and their animations (GIF), attention maps, training and benchmark curves.

Every writer renders headless (matplotlib's Agg backend, selected when a viz module is imported, not when
:mod:`kinepose` is), writes its file atomically and closes its figure. Positions are metres in arrays and
millimetres on the plots; data are Y-up and drawn with y as the vertical axis.
"""

from kinepose.viz.curves import plot_attention, plot_error_vs_noise, plot_per_joint_errors, plot_training_curves
from kinepose.viz.skeleton import animate_skeleton, plot_pose_comparison, plot_skeleton

__all__ = [
    "animate_skeleton",
    "plot_attention",
    "plot_error_vs_noise",
    "plot_per_joint_errors",
    "plot_pose_comparison",
    "plot_skeleton",
    "plot_training_curves",
]
