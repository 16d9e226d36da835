"""Evaluation of rotation solvers on motion clips: the numbers every table in kinepose is built from.

A *solver* maps joint positions ``(T, J, 3)`` to ``(local_quat (T, J, 4), root_pos (T, 3))``. It is
judged against the clip's true rotations (geodesic error, split into the joints positions determine
and those they do not) and by the forward kinematics of its output against the clean joints.
"""

from kinepose.evaluation.solvers import ClipResult, EvalReport, analytic_solver, evaluate_solver, fitted_solver
from kinepose.evaluation.tables import format_comparison, format_table, write_json

__all__ = [
    "ClipResult",
    "EvalReport",
    "analytic_solver",
    "evaluate_solver",
    "fitted_solver",
    "format_comparison",
    "format_table",
    "write_json",
]
