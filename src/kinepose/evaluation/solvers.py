"""Evaluation of rotation solvers on motion clips: the numbers every table in kinepose is built from.

A *solver* maps joint positions ``(T, J, 3)`` to ``(local_quat (T, J, 4), root_pos (T, 3))``. It is
judged against the clip's true rotations (geodesic error, split into the joints positions determine
and those they do not) and by the forward kinematics of its output against the clean joints.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm

from kinepose.data.motion import Motion
from kinepose.data.transforms import add_joint_noise
from kinepose.kinematics.fk import forward_kinematics
from kinepose.kinematics.ik import analytic_ik, observable_mask
from kinepose.metrics.positions import mpjpe
from kinepose.metrics.rotations import geodesic_error
from kinepose.metrics.temporal import acceleration_error

Solver = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def analytic_solver(skeleton) -> Solver:
    """The analytic IK of :mod:`kinepose.kinematics.ik` as a solver."""

    def solve(joints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r = analytic_ik(skeleton, joints)
        return r.local_quat, r.root_pos

    return solve


def fitted_solver(skeleton, iterations: int = 4, prior=None) -> Solver:
    """Analytic IK followed by least-squares skeleton fitting (:mod:`kinepose.kinematics.fitting`).

    With ``prior`` (a :class:`~kinepose.kinematics.fitting.PosePrior`, e.g. of the training clips'
    rotations) the fit is the maximum a posteriori one, the prior weighted by each frame's noise level as
    its bone lengths reveal it (:func:`~kinepose.kinematics.fitting.estimate_noise_std`): no network.
    """
    from kinepose.kinematics.fitting import fit_skeleton

    def solve(joints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        r = fit_skeleton(skeleton, joints.double(), iterations=iterations, prior=prior)
        return r.local_quat, r.root_pos

    return solve


@dataclass
class ClipResult:
    """Metrics of one clip. Millimetres and degrees (report units); ``accel_mm`` is per frame^2 (kept for
    existing readers; it cannot be pooled over clips of different frame rates), ``accel_mm_s2`` per
    second^2 (the clip's own fps)."""

    clip: str
    frames: int
    mpjpe_mm: float
    geo_deg: float
    geo_observable_deg: float
    geo_unobservable_deg: float
    accel_mm: float
    per_joint_deg: dict[str, float]
    accel_mm_s2: float = float("nan")


@dataclass
class EvalReport:
    """Metrics of one solver over several clips, frame-weighted means in ``overall``."""

    solver: str
    noise_mm: float
    clips: list[ClipResult]
    overall: ClipResult
    observable_joints: list[str]
    unobservable_joints: list[str]
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def _clip_metrics(
    motion: Motion, quat: torch.Tensor, root: torch.Tensor, clean: torch.Tensor, name: str
) -> tuple[ClipResult, torch.Tensor, torch.Tensor]:
    sk = motion.skeleton
    rot = list(sk.rotated_joints)
    obs = observable_mask(sk)[rot]
    pred_pos = forward_kinematics(sk, quat, root, check=False).positions
    geo = geodesic_error(quat[:, rot], motion.local_quat[:, rot], degrees=True)  # (T, R)
    res = ClipResult(
        clip=name,
        frames=motion.num_frames,
        mpjpe_mm=1000 * float(mpjpe(pred_pos, clean)),
        geo_deg=float(geo.mean()),
        geo_observable_deg=float(geo[:, obs].mean()) if obs.any() else float("nan"),
        geo_unobservable_deg=float(geo[:, ~obs].mean()) if (~obs).any() else float("nan"),
        accel_mm=1000 * float(acceleration_error(pred_pos, clean)) if motion.num_frames >= 3 else float("nan"),
        per_joint_deg={sk.joint_names[j]: float(g) for j, g in zip(rot, geo.mean(0), strict=True)},
        accel_mm_s2=1000 * float(acceleration_error(pred_pos, clean, fps=motion.fps))
        if motion.num_frames >= 3
        else float("nan"),
    )
    return res, geo, (pred_pos - clean).norm(dim=-1)


def evaluate_solver(
    solver: Solver,
    motions: Sequence[Motion],
    name: str = "solver",
    noise_mm: float = 0.0,
    seed: int = 0,
    preprocess: Callable[[torch.Tensor], torch.Tensor] | None = None,
    progress: bool = False,
) -> EvalReport:
    """Run ``solver`` on every clip's joint positions (plus optional Gaussian noise) and score it.

    Args:
        solver: positions (T, J, 3) -> (local_quat (T, J, 4), root_pos (T, 3)).
        motions: clips with true rotations, all on the same skeleton.
        name: the solver's name in the report.
        noise_mm: standard deviation of i.i.d. Gaussian noise added to every joint coordinate, mm.
        seed: seed of the noise.
        preprocess: optional filter applied to the noisy positions before the solver (e.g. smoothing).
        progress: show a progress bar over the clips.
    """
    if not motions:
        raise ValueError("evaluate_solver: no motions given")
    g = torch.Generator().manual_seed(seed)
    results, geos, dists = [], [], []
    sk = motions[0].skeleton
    for m in tqdm(motions, desc=f"{name}, {noise_mm:g} mm", unit="clip", disable=not progress, leave=False):
        clean = m.positions()
        noisy = add_joint_noise(clean, noise_mm, g)
        inp = preprocess(noisy) if preprocess is not None else noisy
        with torch.no_grad():
            quat, root = solver(inp)
        res, geo, dist = _clip_metrics(m, quat.to(clean.dtype), root.to(clean.dtype), clean, m.name)
        results.append(res)
        geos.append(geo)
        dists.append(dist)
    geo_all = torch.cat(geos)
    rot = list(sk.rotated_joints)
    obs = observable_mask(sk)[rot]
    frames = np.array([r.frames for r in results], dtype=float)

    def wmean(attr: str, weights: np.ndarray = frames) -> float:
        vals = np.array([getattr(r, attr) for r in results], dtype=float)
        ok = np.isfinite(vals)
        return float((vals[ok] * weights[ok]).sum() / weights[ok].sum()) if ok.any() else float("nan")

    overall = ClipResult(
        clip="all",
        frames=int(frames.sum()),
        mpjpe_mm=1000 * float(torch.cat(dists).mean()),
        geo_deg=float(geo_all.mean()),
        geo_observable_deg=float(geo_all[:, obs].mean()) if obs.any() else float("nan"),
        geo_unobservable_deg=float(geo_all[:, ~obs].mean()) if (~obs).any() else float("nan"),
        accel_mm=wmean("accel_mm"),
        per_joint_deg={sk.joint_names[j]: float(v) for j, v in zip(rot, geo_all.mean(0), strict=True)},
        # the mean over every acceleration sample of every clip (T - 2 per clip), in physical units
        accel_mm_s2=wmean("accel_mm_s2", frames - 2),
    )
    return EvalReport(
        solver=name,
        noise_mm=noise_mm,
        clips=results,
        overall=overall,
        observable_joints=[sk.joint_names[j] for j, o in zip(rot, obs, strict=True) if o],
        unobservable_joints=[sk.joint_names[j] for j, o in zip(rot, obs, strict=True) if not o],
        meta={"skeleton": sk.name, "seed": seed},
    )
