"""Fitting a lifted skeleton to the 2D keypoints it came from (no network): the step that turns ours' guess into a
pose that reprojects onto the image.

A lifter guesses depth; the 2D keypoints say exactly where every joint is across the image, and a skeleton with
known bone lengths turns each bone's 2D length into the magnitude of its depth. :func:`fit_to_keypoints` keeps the
network's bone lengths, depth ordering and rigid groups, and moves the pose until it reprojects onto the keypoints:
a maximum a posteriori fit over a whole clip of

- a robust (Cauchy) reprojection term over the visible joints, so outliers and swapped joints pull little;
- a prior keeping every bone's direction near the network's (it decides what the image cannot: which way a bone
  points in depth);
- a prior on the joints' acceleration (motion is smooth), and one on the clip's bone proportions. The image cannot
  tell a large subject far away from a small one near, so the network's overall size is kept exactly (the mean log
  length); only the proportions move. (Letting the size move too shrank the boxing subject by 4 %: 99.2 against
  93.4 mm MPJPE on that clip.)
- left/right relabelling: a few times during the fit, each frame's left/right keypoint pairs are swapped where the
  swapped labels reproject better onto the current pose (a detector's label swaps).

The camera is a pinhole with its principal point at the image centre (the screen normalization of
:func:`kinepose.geometry.normalization.normalize_screen_coordinates`) and focal length ``focal`` x half the image
width (a prior: the root's depth per frame is fitted, so a wrong focal length only changes the perspective
slightly; fitting the focal length per clip as well changed nothing measurable on the hand validation clips).
Parameters are the free bones' directions per frame, each rigid group's rotation per frame and shape per
clip, the bone lengths per clip and the root's position in the camera per frame, so the output is a pose of one
skeleton with constant bone lengths, as the lifter's own output.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from kinepose.errors import KineposeError
from kinepose.geometry.rotations import axis_angle_to_matrix
from kinepose.models.lifting.base import Lifter

__all__ = ["RefineConfig", "fit_to_keypoints", "refine_joints"]


@dataclass(frozen=True)
class RefineConfig:
    """Weights of :func:`fit_to_keypoints` as standard deviations (the terms' scales), and the optimizer's.

    Attributes:
        steps: Adam steps over the whole clip (0 switches the fit off). lr: Adam's step size.
        sigma: 2D noise, in screen-normalized units (0.01 = 5 px on a 1,000-px-wide image).
        robust: scale of the Cauchy reprojection loss (same units): residuals beyond it count ~log.
        sigma_direction: how far (unit-vector distance) a bone may move from the network's direction.
        sigma_accel: joint acceleration, metres per frame^2.
        sigma_length: relative change of the clip's bone proportions (the overall size is the network's).
        focal: focal length over half the image width (2 f / w); the benchmark's cameras span 1.6-3.2.
        relabel: how many times during the fit (evenly spaced) each frame's left/right keypoint pairs are checked
            against the current pose and swapped back where the swapped labels reproject better (a detector's
            left/right confusions); 0 switches it off. Needs the skeleton's ``left_right`` pairs.
        flip: ours only: the direction prior is the mean of the network's directions on the keypoints and on their
            mirror image (x negated, left and right swapped), mirrored back (test-time flip, as in VideoPose3D);
            needs ``left_right`` pairs (a no-op on the hand). Validation clip: 100.9 / 79.0 -> 100.1 / 77.7 mm.
    """

    steps: int = 500
    lr: float = 0.02
    sigma: float = 0.01
    robust: float = 0.02
    sigma_direction: float = 0.5
    sigma_accel: float = 0.05
    sigma_length: float = 0.01
    focal: float = 2.4
    relabel: int = 2
    flip: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.flip, bool):
            raise KineposeError(f"refine.flip: must be true or false, got {self.flip!r}")
        for name in ("steps", "relabel"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise KineposeError(f"refine.{name}: must be an integer >= 0, got {value!r}")
        for name, value in asdict(self).items():
            if name not in ("steps", "relabel", "flip") and not (float(value) > 0 and float(value) < float("inf")):
                raise KineposeError(f"refine.{name}: must be a finite number > 0, got {value!r}")

    @classmethod
    def from_value(cls, value) -> RefineConfig | None:
        """``True``/``None``/``False``/a dict of fields -> a config, or None when the fit is off."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, RefineConfig):
            return value
        if not isinstance(value, dict):
            raise KineposeError(f"refine: expected true, false or a mapping of {list(asdict(cls()))}, got {value!r}")
        unknown = sorted(set(value) - set(asdict(cls())))
        if unknown:
            raise KineposeError(f"refine: unknown key(s) {unknown}; known: {sorted(asdict(cls()))}")
        return cls(**value)


def _root_init(joints: torch.Tensor, u: torch.Tensor, v: torch.Tensor, focal: float) -> torch.Tensor:
    """(T, 3) root position in the camera by weak perspective: depth from the ratio of the 2D to the 3D spread of
    the visible joints, x/y from their centroids."""
    w = v[..., None]
    n = v.sum(-1).clamp_min(1.0)
    cu, cx = (u * w).sum(-2) / n[..., None], (joints[..., :2] * w).sum(-2) / n[..., None]
    su = (((u - cu[..., None, :]) ** 2).sum(-1) * v).sum(-1) / n
    sx = (((joints[..., :2] - cx[..., None, :]) ** 2).sum(-1) * v).sum(-1) / n
    z = (focal * sx.sqrt() / su.sqrt().clamp_min(1e-6)).clamp(0.05, 100.0)
    return torch.cat([cu * z[..., None] / focal - cx, z[..., None]], -1)


def _relabel(proj: torch.Tensor, u: torch.Tensor, v: torch.Tensor, pairs: torch.Tensor, c: float):
    """Swap each frame's left/right keypoint pairs (P, 2) where the swapped labels are closer to the current
    projection ``proj`` (..., J, 2) under the robust cost; returns the relabelled (u, v)."""
    a, b = pairs[:, 0], pairs[:, 1]

    def cost(ja, jb):  # (..., P): pair cost with keypoints ja on joint a and jb on joint b
        ea = torch.log1p(((proj[..., a, :] - u[..., ja, :]) / c).square().sum(-1)) * v[..., ja]
        eb = torch.log1p(((proj[..., b, :] - u[..., jb, :]) / c).square().sum(-1)) * v[..., jb]
        return ea + eb

    swap = cost(b, a) < cost(a, b) - 1e-3  # (..., P)
    if not bool(swap.any()):
        return u, v
    idx = torch.arange(u.shape[-2]).expand(v.shape).clone()  # (..., J) which keypoint each joint takes
    idx[..., a] = torch.where(swap, b, a)
    idx[..., b] = torch.where(swap, a, b)
    u2 = torch.gather(u, -2, idx[..., None].expand(*idx.shape, 2))
    return u2, torch.gather(v, -1, idx)


def fit_to_keypoints(
    compose, decode, keypoints: torch.Tensor, visibility: torch.Tensor, d: torch.Tensor,
    R: torch.Tensor, shape: torch.Tensor, lengths: torch.Tensor, config: RefineConfig,
    pairs: tuple[tuple[int, int], ...] = (), prior: torch.Tensor | None = None,
) -> torch.Tensor:  # fmt: skip
    """Fit a clip's skeleton to its 2D keypoints (module docstring); a batch of clips of one length is fitted at once
    (optional leading dimension B: the clips' problems are independent, so this equals fitting each alone).

    Args:
        compose: ``(d, R, shape) -> (B, T, J, 3)`` unit bone directions (the
            lifter's rigid groups). decode: ``(directions, lengths) -> (B, T, J, 3)`` root-relative joints.
        keypoints: ([B,] T, J, 2) screen-normalized 2D (NaN = missing). visibility: ([B,] T, J) in [0, 1] (0 =
            missing).
        d: ([B,] T, J, 3) the network's free bone directions. R: ([B,] T, G, 3, 3) its group rotations. shape:
            ([B,] C, 3) each clip's group shapes. lengths: ([B,] J) each clip's bone lengths, metres.
        config: the weights.
        pairs: the skeleton's left/right joint pairs, for ``config.relabel``.
        prior: ([B,] T, J, 3) unit directions for the direction prior (default: those of ``d, R, shape``).

    Returns:
        ([B,] T, J, 3) root-relative joints in the camera frame, metres, bone lengths constant over each clip.
    """
    if keypoints.dim() == 3:  # one clip
        return fit_to_keypoints(compose, decode, keypoints[None], visibility[None], d[None], R[None], shape[None],
                                lengths[None], config, pairs, None if prior is None else prior[None])[0]  # fmt: skip
    T = keypoints.shape[1]

    def full(shp, lens):  # per-clip shapes and lengths for every frame
        return shp[:, None].expand(-1, T, -1, -1), lens[:, None].expand(-1, T, -1)

    if config.steps == 0 or T == 0:
        shp_t, len_t = full(shape, lengths)
        return decode(compose(d, R, shp_t), len_t)
    v = ((visibility > 0) & torch.isfinite(keypoints).all(-1)).to(d.dtype)
    u = torch.nan_to_num(keypoints.to(d.dtype), nan=0.0)
    with torch.no_grad():
        shp_t, len_t = full(shape, lengths)
        d0 = compose(d, R, shp_t)
        root0 = _root_init(decode(d0, len_t), u, v, config.focal)
        if prior is not None:
            d0 = prior
    with torch.enable_grad():
        d_free = d.detach().clone().requires_grad_(True)
        omega = torch.zeros(*R.shape[:-2], 3, dtype=d.dtype, requires_grad=True)  # group rotation updates
        rot = (lambda w: axis_angle_to_matrix(w) @ R) if R.shape[-3] else (lambda w: R)
        shp = shape.detach().clone().requires_grad_(True)
        log_len = torch.zeros_like(lengths, requires_grad=True)
        bone = (lengths > 0).to(lengths.dtype)

        def centred(lg):  # the image cannot tell a large subject far away from a small one near: the network's
            return lg - (lg * bone).sum(-1, keepdim=True) / bone.sum(-1, keepdim=True).clamp_min(1.0)  # size kept

        def pose(dn, w, shp, lg):
            shp_t, len_t = full(shp, lengths * centred(lg).exp())
            return compose(dn, rot(w), shp_t), len_t

        root = root0.clone().requires_grad_(True)
        opt = torch.optim.Adam([d_free, omega, shp, log_len, root], lr=config.lr)
        c, s = config.robust, config.sigma
        n = int(config.steps)
        checks = {n * (k + 1) // (config.relabel + 1) for k in range(config.relabel)} if pairs else set()
        pair_t = torch.tensor(pairs, dtype=torch.long).reshape(-1, 2)
        for step in range(n):
            opt.zero_grad(set_to_none=True)
            dirs, len_t = pose(d_free / d_free.norm(dim=-1, keepdim=True).clamp_min(1e-6), omega, shp, log_len)
            X = decode(dirs, len_t)
            C = X + root[..., None, :]
            proj = config.focal * C[..., :2] / C[..., 2:].clamp_min(0.01)
            if step in checks:
                u, v = _relabel(proj.detach(), u, v, pair_t, c)
            r2 = ((proj - u) / c).square().sum(-1)
            loss = ((c / s) ** 2 * torch.log1p(r2) * v).sum()
            loss = loss + ((dirs[..., 1:, :] - d0[..., 1:, :]) / config.sigma_direction).square().sum()
            if T > 2:
                loss = loss + ((X[:, 2:] - 2 * X[:, 1:-1] + X[:, :-2]) / config.sigma_accel).square().sum()
            loss = loss + (centred(log_len)[..., 1:] / config.sigma_length).square().sum()
            (loss / T).backward()
            opt.step()
    with torch.no_grad():
        dirs, len_t = pose(d_free / d_free.norm(dim=-1, keepdim=True).clamp_min(1e-6), omega, shp, log_len)
        return decode(dirs, len_t)


def refine_joints(
    parents: tuple[int, ...], keypoints: torch.Tensor, visibility: torch.Tensor | None, joints: torch.Tensor,
    config: RefineConfig, pairs: tuple[tuple[int, int], ...] = (),
) -> torch.Tensor:  # fmt: skip
    """Any lifter's clip ([B,] T, J, 3) fitted to its 2D keypoints ([B,] T, J, 2) the same way: its bones'
    directions per frame and median lengths over the clip start the fit; no rigid groups (every bone is free)."""
    from kinepose.models.lifting.skeleton_lifter import bone_directions, decode_skeleton

    P = torch.tensor(parents[1:])
    lengths = (joints[..., 1:, :] - joints[..., P, :]).norm(dim=-1).median(-2).values  # ([B,] J - 1)
    lengths = torch.cat([lengths.new_zeros(*lengths.shape[:-1], 1), lengths], -1)
    d = bone_directions(parents, joints)
    vis = Lifter.effective_visibility(keypoints, visibility)
    lead = joints.shape[:-2]  # ([B,] T)
    return fit_to_keypoints(
        lambda dd, R, shape: dd, lambda dirs, lens: decode_skeleton(parents, dirs, lens), keypoints, vis, d,
        joints.new_zeros(*lead, 0, 3, 3), joints.new_zeros(*lead[:-1], 0, 3), lengths, config, pairs,
    )  # fmt: skip
