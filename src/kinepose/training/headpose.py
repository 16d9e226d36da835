"""Training and run folders of the head-pose networks (``headpose_dual``, ``headpose_landmarks``).

One loop for both (:func:`fit_headpose`): Adam with cosine decay (on the larger of the step and time fractions, so a
run the wall-clock budget stops ends annealed), a step budget and a wall-clock budget, the
wrapped L1 loss on yaw, pitch and roll (radians), plus for the dual network ``aux_weight`` times the MSE of its
face and pose heads against MediaPipe's normalized landmarks of the same image, counted only where MediaPipe found
them. Images travel as uint8 and become float per batch (random crops-and-shifts of a few pixels and brightness
jitter when ``augment``). ``roll_deg`` turns each training image about its centre by a random angle up to that many
degrees, with its label turned too (:func:`roll_images`): for a camera whose principal point is the image centre, as
the rendered heads' is, that is the picture of the scene turned about the optical axis (up to the few-pixel shift
jitter before the turn, the corners filled from the border, and half a pixel between the renderer's centre ``S/2``
and the sampling grid's ``(S - 1)/2``).

A run folder (:func:`save_headpose_run`) holds ``model.pt`` (state dict), ``config.json`` (what rebuilds it) and
``metrics.json``; :func:`load_headpose_run` reads it back without executing code (``weights_only``).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from kinepose.geometry.headpose import mean_ypr, mirror_ypr
from kinepose.models.headpose import LandmarkMLP, create_headpose_dual
from kinepose.models.headpose.landmarks import mirror_landmark_vectors

if TYPE_CHECKING:  # a frontends type, for annotations only: training never imports frontends at run time
    from kinepose.frontends.headpose_data import HeadposeData

__all__ = [
    "RECIPE_DEFAULTS",
    "FitResult",
    "RecipeResult",
    "angle_l1",
    "evaluate_recipe",
    "fit_headpose",
    "load_headpose_run",
    "predict_headpose",
    "resolve_recipe",
    "roll_images",
    "roll_landmarks",
    "save_headpose_run",
    "train_recipe",
]


def angle_l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute wrapped difference, radians (359 deg vs 1 deg is 2 deg)."""
    d = torch.remainder(pred - target + math.pi, 2 * math.pi) - math.pi
    return d.abs().mean()


def _images_to_float(x: torch.Tensor, size: int | None, augment: bool, gen: torch.Generator | None) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, size, size) float in [0, 1] (on ``x``'s device)."""
    x = x.permute(0, 3, 1, 2).float() / 255.0
    if augment:
        B, _, H, W = x.shape
        pad = max(H // 24, 1)
        x = torch.nn.functional.pad(x, (pad, pad, pad, pad), mode="replicate")
        dx, dy = (int(v) for v in torch.randint(0, 2 * pad + 1, (2,), generator=gen))
        x = x[:, :, dy : dy + H, dx : dx + W]
        x = x * (0.8 + 0.4 * torch.rand(B, 1, 1, 1, generator=gen)).to(x.device)
    if size is not None and x.shape[-1] != size:
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x.clamp(0, 1)


Tensors = tuple[torch.Tensor, ...]


def roll_images(images: torch.Tensor, theta: torch.Tensor, ypr: torch.Tensor,
                landmarks: Tensors = ()) -> tuple[torch.Tensor, torch.Tensor, Tensors]:  # fmt: skip
    """The pictures of the same scenes with every camera-frame point turned by ``theta`` about the optical axis
    (through the image centre), i.e. seen by the camera turned the other way.

    A camera-frame point ``p`` becomes ``Rz(theta) p`` (OpenCV axes, ``Rz = [[c, -s, 0], [s, c, 0], [0, 0, 1]]``;
    ``Rz2`` its top-left 2x2 block), so the pixel ``u`` moves to ``centre + Rz2 (u - centre)`` (clockwise on screen for
    ``theta > 0``, y pointing down),
    the head's rotation becomes ``Rz(theta) R`` and landmarks given relative to a centre turn their (x, y) by ``Rz2``
    (depth unchanged; all-zero rows, the missing ones, stay zero).

    Args:
        images: ``(B, C, S, S)`` float, square.
        theta: ``(B,)`` radians.
        ypr: ``(B, 3)`` radians, :mod:`kinepose.geometry.headpose`'s convention.
        landmarks: ``(B, 3 M)`` flattened (x, y, z) rows, e.g. the normalized MediaPipe face and pose targets.

    Returns:
        The turned images (border pixels repeated into the corners), their ``ypr`` and landmarks.
    """
    _, _, H, W = images.shape
    if H != W:
        raise ValueError(f"roll_images: images must be square (a turn about the centre), got {H}x{W}")
    c, s = torch.cos(theta).to(images), torch.sin(theta).to(images)
    z = torch.zeros_like(c)
    # affine_grid maps output coordinates to input ones: u_in = Rz2^T u_out (normalized, centred, square)
    A = torch.stack([torch.stack([c, s, z], -1), torch.stack([-s, c, z], -1)], 1)  # (B, 2, 3)
    grid = torch.nn.functional.affine_grid(A, list(images.shape), align_corners=False)
    out = torch.nn.functional.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    new_ypr, turned = roll_landmarks(theta, ypr, landmarks)
    return out, new_ypr, turned


def flip_images(images: torch.Tensor, ypr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The mirror pictures (left and right swapped) of the same scenes, and their labels.

    Mirroring the picture about its centre column is, for a camera whose principal point is the image centre, the
    picture of the mirrored scene ``M p`` (``M = diag(-1, 1, 1)``, OpenCV axes). A head ``p_cam = R p_head`` becomes
    ``M R p_head = (M R M) (M p_head)``: a mirrored face (a new identity, its left and right swapped, so its
    anatomical frame is again right-handed) at the rotation ``M R M``, which in :mod:`kinepose.geometry.headpose`'s
    convention is ``(-yaw, pitch, -roll)``: exactly for the labels. ``torch.flip`` mirrors about the column
    ``(W - 1) / 2`` (pixel centres at integers), where the head renderer's principal point ``W / 2`` is half a pixel
    off (and the training shifts of :func:`_images_to_float` move the picture a few pixels): as for the roll, the
    picture is a near, not an exact, image of the mirrored scene.

    Args:
        images: ``(B, C, H, W)``.
        ypr: ``(B, 3)`` radians.
    """
    return torch.flip(images, dims=(-1,)), mirror_ypr(ypr)


def jitter_colors(images: torch.Tensor, amount: float, grayscale: float,
                  gen: torch.Generator | None) -> torch.Tensor:  # fmt: skip
    """Per-picture colour changes that keep the geometry: each channel times a gain uniform in ``[1 - amount,
    1 + amount]``, and with probability ``grayscale`` the picture in grey (ITU-R 601 luma). ``(B, 3, H, W)`` in
    ``[0, 1]`` -> the same, clamped."""
    B = images.shape[0]
    x = images
    if amount > 0:
        gains = 1.0 + amount * (2 * torch.rand(B, 3, 1, 1, generator=gen) - 1)
        x = x * gains.to(x)
    if grayscale > 0:
        grey = (torch.rand(B, generator=gen) < grayscale).to(x.device)
        luma = (x * torch.tensor([0.299, 0.587, 0.114]).to(x)[None, :, None, None]).sum(1, keepdim=True)
        x = torch.where(grey[:, None, None, None], luma.expand_as(x), x)
    return x.clamp(0, 1)


def roll_landmarks(theta: torch.Tensor, ypr: torch.Tensor, landmarks: Tensors = ()) -> tuple[torch.Tensor, Tensors]:
    """What :func:`roll_images` does to the labels: ``ypr`` (B, 3) of ``Rz(theta) R``, and each ``(B, 3 M)`` row of
    (x, y, z) landmarks (relative to a centre, e.g. a landmark model's whole input vector) with its (x, y) turned by
    ``Rz2``; all-zero rows stay zero."""
    from kinepose.geometry.headpose import matrix_to_ypr, ypr_to_matrix

    c64, s64 = torch.cos(theta).double(), torch.sin(theta).double()
    one, zero = torch.ones_like(c64), torch.zeros_like(c64)
    Rz = torch.stack([torch.stack([c64, -s64, zero], -1), torch.stack([s64, c64, zero], -1),
                      torch.stack([zero, zero, one], -1)], 1)  # fmt: skip
    new_ypr = matrix_to_ypr(Rz @ ypr_to_matrix(ypr.double())).to(ypr.dtype)
    turned = []
    for lm in landmarks:
        p = lm.reshape(lm.shape[0], -1, 3)
        x, y = p[..., 0], p[..., 1]
        cc, ss = c64[:, None].to(lm), s64[:, None].to(lm)
        turned.append(torch.stack([cc * x - ss * y, ss * x + cc * y, p[..., 2]], -1).reshape(lm.shape))
    return new_ypr, tuple(turned)


@dataclass
class FitResult:
    """``steps`` run, ``seconds`` taken, ``final_loss`` (mean of the last 50 steps), ``stopped_by`` ("steps" or
    "time")."""

    steps: int
    seconds: float
    final_loss: float
    stopped_by: str


def _forward(model, x: torch.Tensor, kind: str, size: int | None, augment: bool, gen):
    if kind == "images":
        return model(_images_to_float(x, size, augment, gen))
    if kind == "features":
        return model.forward_features(x)
    return model(x)


def _aux_loss(out, face: torch.Tensor, pose: torch.Tensor, w_face: torch.Tensor, w_pose: torch.Tensor) -> torch.Tensor:
    """MSE of the face and pose heads against their targets, averaged over the rows whose weight is 1."""
    lf = (((out.face - face) ** 2).mean(1) * w_face).sum() / w_face.sum().clamp(min=1)
    lp = (((out.pose - pose) ** 2).mean(1) * w_pose).sum() / w_pose.sum().clamp(min=1)
    return lf + lp


def fit_headpose(model: torch.nn.Module, inputs: np.ndarray, ypr: np.ndarray, *, kind: str, steps: int = 2000,
                 batch_size: int = 64, lr: float = 1e-3, max_minutes: float = 15.0, aux_face: np.ndarray | None = None,
                 aux_pose: np.ndarray | None = None, aux_weight: float = 0.0, image_size: int | None = None,
                 augment: bool = True, roll_deg: float = 0.0, flip: bool = False, color_jitter: float = 0.0,
                 grayscale: float = 0.0, seed: int = 0, progress: bool = False,
                 device: str = "cpu") -> FitResult:  # fmt: skip
    """Train ``model`` in place.

    Args:
        model: a :class:`HeadPoseDual` (kind ``"images"`` or ``"features"``) or :class:`LandmarkMLP` (``"vectors"``).
        inputs: ``(N, H, W, 3)`` uint8 images, ``(N, C)`` cached backbone features or ``(N, 1503)`` landmark vectors.
        ypr: ``(N, 3)`` radians.
        aux_face / aux_pose: ``(N, 1404)`` / ``(N, 99)`` normalized MediaPipe landmarks, all-zero rows where missing.
        aux_weight: weight of the auxiliary landmark loss (0 = off).
        image_size: images are resized to it (kind ``"images"``).
        roll_deg: with ``augment``, each training image turns about its centre by a uniform random angle in
            ``[-roll_deg, roll_deg]``, labels and landmark targets with it (:func:`roll_images`); for kind
            ``"vectors"`` the landmark vectors turn the same way (:func:`roll_landmarks`), as they would, nearly, in a
            turned picture (MediaPipe's answer on a turned picture is close to, not exactly, its turned answer).
            Not for kind ``"features"`` (cached features cannot be turned: :func:`resolve_recipe` refuses it).
        flip: with ``augment``, half the training pictures are mirrored with their labels (:func:`flip_images`;
            their auxiliary landmark targets mirrored too, as MediaPipe's answer on the mirror picture would be,
            nearly), or for kind ``"vectors"`` half the landmark vectors
            (:func:`kinepose.models.headpose.landmarks.mirror_landmark_vectors`): mirrored faces are new
            identities, in nobody's test set.
        color_jitter / grayscale: with ``augment`` and kind ``"images"``, per-channel gains and grey pictures
            (:func:`jitter_colors`): skin tones and photos that training identities do not have.
        max_minutes: wall-clock budget; the loop stops at whichever of ``steps`` and the budget comes first.
        device: where the model trains (``"cuda"`` for the GPU recipes); the data stays on the CPU, batch by batch.
    """
    if kind not in ("images", "features", "vectors"):
        raise ValueError(f"kind: expected 'images', 'features' or 'vectors', got {kind!r}")
    if len(inputs) != len(ypr) or len(ypr) == 0:
        raise ValueError(f"inputs ({len(inputs)}) and ypr ({len(ypr)}) must have the same, non-zero length")
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be >= 1, got {steps} and {batch_size}")
    model.to(device)
    gen = torch.Generator().manual_seed(seed)
    x_all = torch.from_numpy(np.ascontiguousarray(inputs))
    y_all = torch.as_tensor(ypr, dtype=torch.float32)
    use_aux = aux_weight > 0 and aux_face is not None and aux_pose is not None
    if use_aux:
        af, ap = torch.as_tensor(aux_face, dtype=torch.float32), torch.as_tensor(aux_pose, dtype=torch.float32)
        mf, mp_ = (af.abs().sum(1) > 0).float(), (ap.abs().sum(1) > 0).float()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    model.train()
    from tqdm.auto import tqdm

    t0, losses, stopped = time.perf_counter(), [], "steps"
    bar = tqdm(total=steps, unit="step", desc="train", disable=not progress, leave=False)
    step = 0
    for step in range(1, steps + 1):
        # cosine decay on the larger of the step and time fractions: a run the time cap stops ends annealed
        frac = max((step - 1) / steps, (time.perf_counter() - t0) / max(60 * max_minutes, 1e-9))
        for g in opt.param_groups:
            g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))
        idx = torch.randint(0, len(y_all), (batch_size,), generator=gen)
        y = y_all[idx].to(device)
        if use_aux:
            fi, pi, wf, wp = af[idx].to(device), ap[idx].to(device), mf[idx].to(device), mp_[idx].to(device)
        if kind == "images" and augment and (roll_deg > 0 or flip or color_jitter > 0 or grayscale > 0):
            if roll_deg > 0:  # drawn before the shifts, as before flip existed: seeded roll runs repeat
                theta = math.radians(roll_deg) * (2 * torch.rand(len(idx), generator=gen) - 1)
            x = _images_to_float(x_all[idx].to(device), image_size, augment, gen)
            if roll_deg > 0:
                x, y, marks = roll_images(x, theta.to(device), y, (fi, pi) if use_aux else ())
                if use_aux:
                    fi, pi = marks
            if flip:
                m = (torch.rand(len(idx), generator=gen) < 0.5).to(device)
                xf, yf = flip_images(x, y)
                x, y = torch.where(m[:, None, None, None], xf, x), torch.where(m[:, None], yf, y)
                if use_aux:  # the landmark targets are landmark_vector's layout: mirror them the same way
                    mir = mirror_landmark_vectors(torch.cat([fi, pi], 1))
                    fi = torch.where(m[:, None], mir[:, : fi.shape[1]], fi)
                    pi = torch.where(m[:, None], mir[:, fi.shape[1] :], pi)
            if color_jitter > 0 or grayscale > 0:
                x = jitter_colors(x, color_jitter, grayscale, gen)
            out = model(x)
        elif kind == "vectors" and augment and (roll_deg > 0 or flip):
            x = x_all[idx].to(device)
            if roll_deg > 0:
                theta = math.radians(roll_deg) * (2 * torch.rand(len(idx), generator=gen) - 1)
                y, (x,) = roll_landmarks(theta.to(device), y, (x,))
            if flip:
                m = (torch.rand(len(idx), generator=gen) < 0.5).to(device)
                x = torch.where(m[:, None], mirror_landmark_vectors(x), x)
                y = torch.where(m[:, None], mirror_ypr(y), y)
            out = model(x)
        else:
            out = _forward(model, x_all[idx].to(device), kind, image_size, augment, gen)
        loss = angle_l1(out.ypr, y)
        if use_aux and out.face is not None:
            loss = loss + aux_weight * _aux_loss(out, fi, pi, wf, wp)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        bar.update(1)
        if time.perf_counter() - t0 > 60 * max_minutes:
            stopped = "time"
            break
    bar.close()
    model.eval()
    return FitResult(step, time.perf_counter() - t0, float(np.mean(losses[-50:])), stopped)


@torch.no_grad()
def predict_headpose(model: torch.nn.Module, inputs: np.ndarray, *, kind: str, batch_size: int = 128,
                     image_size: int | None = None, flip_tta: bool = False) -> np.ndarray:  # fmt: skip
    """``(N, 3)`` yaw, pitch, roll radians for ``inputs`` (see :func:`fit_headpose`), on the model's device.

    Args:
        flip_tta: also predict on the mirror inputs (pictures flipped left to right, or for kind ``"vectors"``
            :func:`~kinepose.models.headpose.landmarks.mirror_landmark_vectors`), mirror those answers back
            (:func:`~kinepose.geometry.headpose.mirror_ypr`) and return the mean rotation of the two
            (:func:`~kinepose.geometry.headpose.mean_ypr`): test-time augmentation, twice the inference cost.
            Not for kind ``"features"`` (cached features cannot be mirrored).
    """
    from kinepose.errors import KineposeError

    if flip_tta and kind == "features":
        raise KineposeError("flip_tta: cached backbone features cannot be mirrored; predict from the pictures")
    model.eval()
    device = next(model.parameters()).device
    out = []
    for i in range(0, len(inputs), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(inputs[i : i + batch_size])).to(device)
        p = _forward(model, x, kind, image_size, False, None).ypr.double()
        if flip_tta:
            xf = torch.flip(x, dims=(2,)) if kind == "images" else mirror_landmark_vectors(x)
            pf = mirror_ypr(_forward(model, xf, kind, image_size, False, None).ypr.double())
            p = mean_ypr(torch.stack([p, pf]))
        out.append(p.cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 3))


def save_headpose_run(folder: str | os.PathLike, model: torch.nn.Module, config: dict,
                      metrics: dict | None = None) -> None:  # fmt: skip
    """Write ``model.pt``, ``config.json`` (``model``: ``headpose_dual`` or ``headpose_landmarks`` and its
    arguments) and ``metrics.json`` into ``folder`` (created), each file atomically."""
    from kinepose._atomic import atomic_write

    os.makedirs(folder, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_write(os.path.join(folder, "model.pt"), lambda f: torch.save(state, f), binary=True)
    atomic_write(os.path.join(folder, "config.json"), lambda f: f.write(json.dumps(config, indent=2)))
    atomic_write(os.path.join(folder, "metrics.json"), lambda f: f.write(json.dumps(metrics or {}, indent=2)))


def load_headpose_run(folder: str | os.PathLike) -> tuple[torch.nn.Module, dict]:
    """``(model, config)`` of a :func:`save_headpose_run` folder, in eval mode.

    Raises:
        FileFormatError: a file is missing or not what the config says.
    """
    from kinepose.errors import FileFormatError

    cfg_path = os.path.join(folder, "config.json")
    if not os.path.isfile(cfg_path):
        raise FileFormatError("not a head-pose run folder (no config.json)", os.fspath(folder))
    try:
        with open(cfg_path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, ValueError) as exc:
        raise FileFormatError(f"not a readable JSON file ({exc})", cfg_path) from exc
    if not isinstance(config, dict):
        raise FileFormatError("expected a JSON object (the recipe)", cfg_path)
    name = config.get("model")
    if name == "headpose_landmarks":
        model = LandmarkMLP(tuple(config.get("hidden", (512, 256, 128))), config.get("dropout", 0.1),
                            config.get("use_pose", True), config.get("residual", False))  # fmt: skip
    elif name == "headpose_dual":
        model = create_headpose_dual(config.get("backbone", "resnet18"), dropout=config.get("dropout", 0.2))
    else:
        raise FileFormatError(f"config.json: model must be headpose_dual or headpose_landmarks, got {name!r}", cfg_path)
    try:
        state = torch.load(os.path.join(folder, "model.pt"), map_location="cpu", weights_only=True)
        model.load_state_dict(state)
    except Exception as exc:
        raise FileFormatError(f"model.pt does not match config.json ({type(exc).__name__}: {str(exc)[:200]})",
                              os.path.join(os.fspath(folder), "model.pt")) from exc  # fmt: skip
    model.eval()
    return model, config


#: Keys of a head-pose recipe (``configs/headpose_*.yaml``) and their defaults.
RECIPE_DEFAULTS = {
    "name": "headpose", "task": "headpose", "model": "headpose_landmarks", "hidden": [512, 256, 128],
    "dropout": 0.1, "use_pose": True,
    "residual": False, "backbone": "resnet18", "pretrained": False, "freeze": False, "weights": None,
    "aux_weight": 0.1, "roll_deg": 0.0, "flip": False, "color_jitter": 0.0, "grayscale": 0.0, "image_size": 112,
    "steps": 4000, "batch_size": 128, "lr": 1e-3,
    "max_minutes": 15.0, "seed": 0,
    "data": {"sequences": 10, "frames": 40, "size": 192, "seed": 0, "test_fraction": 0.25},
}  # fmt: skip


def resolve_recipe(cfg: dict) -> dict:
    """A recipe with every key (defaults filled in); unknown keys or a wrong model name are an error."""
    from kinepose.errors import KineposeError

    unknown = sorted(set(cfg) - set(RECIPE_DEFAULTS))
    if unknown:
        raise KineposeError(f"head-pose recipe: unknown key(s) {unknown}; accepted: {', '.join(RECIPE_DEFAULTS)}")
    out = {**RECIPE_DEFAULTS, **cfg, "data": {**RECIPE_DEFAULTS["data"], **(cfg.get("data") or {})}}
    if out["model"] not in ("headpose_landmarks", "headpose_dual"):
        raise KineposeError(f"head-pose recipe: model must be headpose_landmarks or headpose_dual, got "
                            f"{out['model']!r}")  # fmt: skip
    checks = (("steps", 1, None), ("batch_size", 1, None), ("lr", 0.0, None), ("max_minutes", 0.0, None),
              ("image_size", 32, None), ("dropout", 0.0, 0.95), ("aux_weight", 0.0, None),
              ("roll_deg", 0.0, 90.0), ("color_jitter", 0.0, 0.95), ("grayscale", 0.0, 1.0))  # fmt: skip
    for key, lo, hi in checks:
        v = out[key]
        if isinstance(v, bool) or not isinstance(v, int | float) or v < lo or (hi is not None and v > hi) or (
                lo == 0.0 and key in ("lr", "max_minutes") and v <= 0):  # fmt: skip
            raise KineposeError(f"head-pose recipe: {key} must be a number >= {lo}" + (f" and <= {hi}" if hi else "")
                                + f" (> 0 for lr and max_minutes), got {v!r}")  # fmt: skip
    if not isinstance(out["flip"], bool):
        raise KineposeError(f"head-pose recipe: flip must be true or false, got {out['flip']!r}")
    picture_only = [k for k in ("roll_deg", "flip", "color_jitter", "grayscale") if out[k]]
    if out["model"] == "headpose_dual" and out["freeze"] and picture_only:
        raise KineposeError(f"head-pose recipe: {', '.join(picture_only)} change(s) training pictures, but a frozen "
                            "backbone trains on cached features; turn them off or set freeze: false")  # fmt: skip
    if out["model"] == "headpose_landmarks" and any(out[k] for k in ("color_jitter", "grayscale")):
        raise KineposeError("head-pose recipe: color_jitter and grayscale are for the image network "
                            "(headpose_dual); a landmark model reads no pictures")  # fmt: skip
    dd = out["data"]
    for key in ("sequences", "frames"):
        if isinstance(dd.get(key), bool) or not isinstance(dd.get(key), int) or dd[key] < 1:
            raise KineposeError(f"head-pose recipe: data.{key} must be an integer >= 1, got {dd.get(key)!r}")
    if not isinstance(dd.get("size"), int) or dd["size"] < 64:
        raise KineposeError(f"head-pose recipe: data.size must be an integer >= 64 pixels, got {dd.get('size')!r}")
    if not isinstance(dd.get("test_fraction"), int | float) or not 0 < dd["test_fraction"] < 1:
        raise KineposeError(f"head-pose recipe: data.test_fraction must be in (0, 1), got {dd.get('test_fraction')!r}")
    bad = sorted(set(out["data"]) - set(RECIPE_DEFAULTS["data"]))
    if bad:
        accepted = ", ".join(RECIPE_DEFAULTS["data"])
        raise KineposeError(f"head-pose recipe: unknown data key(s) {bad}; accepted: {accepted}")
    return out


def _resized(images: np.ndarray, size: int) -> np.ndarray:
    import cv2

    if images.shape[1] == size:
        return images
    return np.stack([cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA) for im in images])


def train_recipe(cfg: dict, data: HeadposeData, train: np.ndarray, *, steps: int | None = None,
                 max_minutes: float | None = None, progress: bool = False,
                 device: str = "cpu") -> tuple[torch.nn.Module, np.ndarray, FitResult]:  # fmt: skip
    """Train a resolved recipe on the frames ``train`` of ``data`` (:class:`kinepose.frontends.headpose_data.
    HeadposeData`); returns the model, its ``(N, 3)`` predictions on every frame (NaN where a landmark model had no
    face) and the :class:`FitResult`. ``steps`` / ``max_minutes`` override the recipe's."""
    hs = data.heads
    torch.manual_seed(cfg["seed"])
    common = dict(steps=steps or cfg["steps"], batch_size=cfg["batch_size"], lr=cfg["lr"],
                  max_minutes=max_minutes or cfg["max_minutes"], seed=cfg["seed"], progress=progress,
                  device=device)  # fmt: skip
    if cfg["model"] == "headpose_landmarks":
        model = LandmarkMLP(tuple(cfg["hidden"]), cfg["dropout"], cfg["use_pose"], cfg["residual"])
        tr = train[data.found[train]]
        if model.residual:  # the mean face of these training frames
            from kinepose.models.headpose import GeometricHeadPose

            model.set_mean_face(GeometricHeadPose().fit(data.face[tr], hs.rotation[tr]).mean_face)
        fit = fit_headpose(model, data.vectors[tr], hs.ypr[tr], kind="vectors", augment=cfg["roll_deg"] > 0 or
                           cfg["flip"], roll_deg=cfg["roll_deg"], flip=cfg["flip"], **common)  # fmt: skip
        pred = predict_headpose(model, data.vectors, kind="vectors")
        pred[~data.found] = np.nan
        return model, pred, fit
    model = create_headpose_dual(cfg["backbone"], pretrained=cfg["pretrained"], freeze=cfg["freeze"],
                                 weights=cfg["weights"], dropout=cfg["dropout"])  # fmt: skip
    images = _resized(hs.images, int(cfg["image_size"]))
    aux = dict(aux_face=data.aux_face[train], aux_pose=data.aux_pose[train], aux_weight=cfg["aux_weight"])
    if cfg["freeze"]:  # cached features: the frozen backbone runs once over every image
        from kinepose.models.vision.features import extract_features

        model.to(device)
        feats = extract_features(model.backbone, list(images), images.shape[1], 64).astype(np.float32)
        fit = fit_headpose(model, feats[train], hs.ypr[train], kind="features", augment=False, **aux, **common)
        return model, predict_headpose(model, feats, kind="features"), fit
    fit = fit_headpose(model, images[train], hs.ypr[train], kind="images", roll_deg=cfg["roll_deg"], flip=cfg["flip"],
                       color_jitter=cfg["color_jitter"], grayscale=cfg["grayscale"], **aux, **common)  # fmt: skip
    return model, predict_headpose(model, images, kind="images", batch_size=64), fit


@dataclass
class RecipeResult:
    """What :func:`evaluate_recipe` returns: the trained ``model``, its ``pred`` (N, 3) on every frame, the
    :class:`FitResult` and ``metrics`` (``held_out_identities``, ``test_frames``, ``test_frames_face_found`` and
    ``test``: this run and the geometric fit, both over the held-out frames where MediaPipe found a face, plus
    this run over every held-out frame for the image network)."""

    model: torch.nn.Module
    pred: np.ndarray
    fit: FitResult
    metrics: dict


def evaluate_recipe(cfg: dict, data: HeadposeData, *, progress: bool = False, device: str = "cpu") -> RecipeResult:
    """Split ``data`` by identity (``cfg["data"]``'s ``test_fraction`` and ``seed``), train the recipe on one side and
    score it beside the geometric fit (the same training frames' mean face) on the other."""
    from kinepose.data.splits import group_split
    from kinepose.metrics.headpose import headpose_report
    from kinepose.models.headpose import GeometricHeadPose

    hs, d = data.heads, cfg["data"]
    split = group_split(hs.identity, test_fraction=d["test_fraction"], seed=d["seed"])
    tr, te = split["train"], split["test"]
    model, pred, fit = train_recipe(cfg, data, tr, progress=progress, device=device)
    geo = GeometricHeadPose().fit(data.face[tr], hs.rotation[tr])
    found = te[data.found[te]]
    test = {
        "this run": headpose_report(pred[found], hs.ypr[found]),
        "geometric (Kabsch to the mean face)": headpose_report(geo.predict(data.face[found]), hs.ypr[found]),
    }
    if cfg["model"] == "headpose_dual":
        test["this run, every frame"] = headpose_report(pred[te], hs.ypr[te])
    metrics = {"held_out_identities": sorted({hs.identities[i] for i in np.unique(hs.identity[te])}),
               "test_frames": len(te), "test_frames_face_found": len(found), "test": test,
               "steps": fit.steps, "train_seconds": fit.seconds, "stopped_by": fit.stopped_by}  # fmt: skip
    return RecipeResult(model, pred, fit, metrics)
