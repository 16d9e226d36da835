"""Training and run folders of the head-pose networks (``headpose_dual``, ``headpose_landmarks``).

One loop for both (:func:`fit_headpose`): Adam with cosine decay, a step budget and a wall-clock budget, the
wrapped L1 loss on yaw, pitch and roll (radians), plus for the dual network ``aux_weight`` times the MSE of its
face and pose heads against MediaPipe's normalized landmarks of the same image, counted only where MediaPipe found
them. Images travel as uint8 and become float per batch (random crops-and-shifts of a few pixels and brightness
jitter when ``augment``).

A run folder (:func:`save_headpose_run`) holds ``model.pt`` (state dict), ``config.json`` (what rebuilds it) and
``metrics.json``; :func:`load_headpose_run` reads it back without executing code (``weights_only``).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass

import numpy as np
import torch

from kinepose.models.headpose import LandmarkMLP, create_headpose_dual

__all__ = [
    "RECIPE_DEFAULTS",
    "FitResult",
    "angle_l1",
    "fit_headpose",
    "load_headpose_run",
    "predict_headpose",
    "resolve_recipe",
    "save_headpose_run",
    "train_recipe",
]


def angle_l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute wrapped difference, radians (359 deg vs 1 deg is 2 deg)."""
    d = torch.remainder(pred - target + math.pi, 2 * math.pi) - math.pi
    return d.abs().mean()


def _images_to_float(x: torch.Tensor, size: int | None, augment: bool, gen: torch.Generator | None) -> torch.Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, size, size) float in [0, 1]."""
    x = x.permute(0, 3, 1, 2).float() / 255.0
    if augment:
        B, _, H, W = x.shape
        pad = max(H // 24, 1)
        x = torch.nn.functional.pad(x, (pad, pad, pad, pad), mode="replicate")
        dx, dy = (int(v) for v in torch.randint(0, 2 * pad + 1, (2,), generator=gen))
        x = x[:, :, dy : dy + H, dx : dx + W]
        x = x * (0.8 + 0.4 * torch.rand(B, 1, 1, 1, generator=gen))
    if size is not None and x.shape[-1] != size:
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x.clamp(0, 1)


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


def fit_headpose(model: torch.nn.Module, inputs: np.ndarray, ypr: np.ndarray, *, kind: str, steps: int = 2000,
                 batch_size: int = 64, lr: float = 1e-3, max_minutes: float = 15.0, aux_face: np.ndarray | None = None,
                 aux_pose: np.ndarray | None = None, aux_weight: float = 0.0, image_size: int | None = None,
                 augment: bool = True, seed: int = 0, progress: bool = False) -> FitResult:  # fmt: skip
    """Train ``model`` in place.

    Args:
        model: a :class:`HeadPoseDual` (kind ``"images"`` or ``"features"``) or :class:`LandmarkMLP` (``"vectors"``).
        inputs: ``(N, H, W, 3)`` uint8 images, ``(N, C)`` cached backbone features or ``(N, 1503)`` landmark vectors.
        ypr: ``(N, 3)`` radians.
        aux_face / aux_pose: ``(N, 1404)`` / ``(N, 99)`` normalized MediaPipe landmarks, all-zero rows where missing.
        aux_weight: weight of the auxiliary landmark loss (0 = off).
        image_size: images are resized to it (kind ``"images"``).
        max_minutes: wall-clock budget; the loop stops at whichever of ``steps`` and the budget comes first.
    """
    if kind not in ("images", "features", "vectors"):
        raise ValueError(f"kind: expected 'images', 'features' or 'vectors', got {kind!r}")
    if len(inputs) != len(ypr) or len(ypr) == 0:
        raise ValueError(f"inputs ({len(inputs)}) and ypr ({len(ypr)}) must have the same, non-zero length")
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
        for g in opt.param_groups:
            g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * (step - 1) / steps))
        idx = torch.randint(0, len(y_all), (batch_size,), generator=gen)
        out = _forward(model, x_all[idx], kind, image_size, augment, gen)
        loss = angle_l1(out.ypr, y_all[idx])
        if use_aux and out.face is not None:
            lf = (((out.face - af[idx]) ** 2).mean(1) * mf[idx]).sum() / mf[idx].sum().clamp(min=1)
            lp = (((out.pose - ap[idx]) ** 2).mean(1) * mp_[idx]).sum() / mp_[idx].sum().clamp(min=1)
            loss = loss + aux_weight * (lf + lp)
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
                     image_size: int | None = None) -> np.ndarray:  # fmt: skip
    """``(N, 3)`` yaw, pitch, roll radians for ``inputs`` (see :func:`fit_headpose`)."""
    model.eval()
    out = []
    for i in range(0, len(inputs), batch_size):
        x = torch.from_numpy(np.ascontiguousarray(inputs[i : i + batch_size]))
        out.append(_forward(model, x, kind, image_size, False, None).ypr.double().numpy())
    return np.concatenate(out) if out else np.zeros((0, 3))


def save_headpose_run(folder: str | os.PathLike, model: torch.nn.Module, config: dict, metrics: dict | None = None,
                      mean_face: np.ndarray | None = None) -> None:  # fmt: skip
    """Write ``model.pt``, ``config.json`` (``model``: ``headpose_dual`` or ``headpose_landmarks`` and its
    arguments) and ``metrics.json`` into ``folder`` (created), each file atomically."""
    from kinepose._atomic import atomic_write

    os.makedirs(folder, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_write(os.path.join(folder, "model.pt"), lambda f: torch.save(state, f), binary=True)
    atomic_write(os.path.join(folder, "config.json"), lambda f: f.write(json.dumps(config, indent=2)))
    atomic_write(os.path.join(folder, "metrics.json"), lambda f: f.write(json.dumps(metrics or {}, indent=2)))
    if mean_face is not None:
        atomic_write(os.path.join(folder, "mean_face.npy"), lambda f: np.save(f, mean_face), binary=True)


def load_headpose_run(folder: str | os.PathLike) -> tuple[torch.nn.Module, dict]:
    """``(model, config)`` of a :func:`save_headpose_run` folder, in eval mode.

    Raises:
        FileFormatError: a file is missing or not what the config says.
    """
    from kinepose.errors import FileFormatError

    cfg_path = os.path.join(folder, "config.json")
    if not os.path.isfile(cfg_path):
        raise FileFormatError("not a head-pose run folder (no config.json)", os.fspath(folder))
    with open(cfg_path) as f:
        config = json.load(f)
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
    "aux_weight": 0.1, "image_size": 112, "steps": 4000, "batch_size": 128, "lr": 1e-3, "max_minutes": 15.0,
    "seed": 0, "data": {"sequences": 10, "frames": 40, "size": 192, "seed": 0, "test_fraction": 0.25},
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


def train_recipe(cfg: dict, data, train: np.ndarray, *, steps: int | None = None, max_minutes: float | None = None,
                 progress: bool = False) -> tuple[torch.nn.Module, np.ndarray, FitResult]:  # fmt: skip
    """Train a resolved recipe on the frames ``train`` of ``data`` (:class:`kinepose.frontends.headpose_data.
    HeadposeData`); returns the model, its ``(N, 3)`` predictions on every frame (NaN where a landmark model had no
    face) and the :class:`FitResult`. ``steps`` / ``max_minutes`` override the recipe's."""
    hs = data.heads
    torch.manual_seed(cfg["seed"])
    common = dict(steps=steps or cfg["steps"], batch_size=cfg["batch_size"], lr=cfg["lr"],
                  max_minutes=max_minutes or cfg["max_minutes"], seed=cfg["seed"], progress=progress)  # fmt: skip
    if cfg["model"] == "headpose_landmarks":
        model = LandmarkMLP(tuple(cfg["hidden"]), cfg["dropout"], cfg["use_pose"], cfg["residual"])
        tr = train[data.found[train]]
        if model.residual:  # the mean face of these training frames
            from kinepose.models.headpose import GeometricHeadPose

            model.set_mean_face(GeometricHeadPose().fit(data.face[tr], hs.rotation[tr]).mean_face)
        fit = fit_headpose(model, data.vectors[tr], hs.ypr[tr], kind="vectors", augment=False, **common)
        pred = predict_headpose(model, data.vectors, kind="vectors")
        pred[~data.found] = np.nan
        return model, pred, fit
    model = create_headpose_dual(cfg["backbone"], pretrained=cfg["pretrained"], freeze=cfg["freeze"],
                                 weights=cfg["weights"], dropout=cfg["dropout"])  # fmt: skip
    images = _resized(hs.images, int(cfg["image_size"]))
    aux = dict(aux_face=data.aux_face[train], aux_pose=data.aux_pose[train], aux_weight=cfg["aux_weight"])
    if cfg["freeze"]:  # cached features: the frozen backbone runs once over every image
        from kinepose.models.vision.features import extract_features

        feats = extract_features(model.backbone, list(images), images.shape[1], 64).astype(np.float32)
        fit = fit_headpose(model, feats[train], hs.ypr[train], kind="features", augment=False, **aux, **common)
        return model, predict_headpose(model, feats, kind="features"), fit
    fit = fit_headpose(model, images[train], hs.ypr[train], kind="images", **aux, **common)
    return model, predict_headpose(model, images, kind="images", batch_size=64), fit
