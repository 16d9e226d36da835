"""Plots: 3D skeletons (PNG) and their animations (GIF, MP4), attention maps, training and benchmark curves;
the interactive 3D viewer (a self-contained HTML page, :mod:`kinepose.viz.viewer`).

Every writer renders headless (matplotlib's Agg backend, selected when a viz module is imported, not when
:mod:`kinepose` is), writes its file atomically and closes its figure. Positions are metres in arrays and
millimetres on the plots; data are Y-up and drawn with y as the vertical axis.
"""

from kinepose.viz.curves import plot_attention, plot_error_vs_noise, plot_per_joint_errors, plot_training_curves
from kinepose.viz.skeleton import animate_skeleton, plot_pose_comparison, plot_skeleton
from kinepose.viz.viewer import view_files, write_viewer

__all__ = [
    "animate_skeleton",
    "plot_attention",
    "plot_error_vs_noise",
    "plot_per_joint_errors",
    "plot_pose_comparison",
    "plot_skeleton",
    "plot_training_curves",
    "view_files",
    "write_viewer",
]
