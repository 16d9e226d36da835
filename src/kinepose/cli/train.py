"""``kinepose train`` and ``evaluate``."""

from __future__ import annotations

import argparse
import sys


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import os

    from kinepose._progress import progress_enabled
    from kinepose.data.sources.deepmimic import load_deepmimic
    from kinepose.evaluation.solvers import analytic_solver, evaluate_solver
    from kinepose.evaluation.tables import format_table, write_json
    from kinepose.skeleton.presets import get_skeleton

    if args.noise_mm < 0:
        raise ValueError(f"--noise-mm must be >= 0, got {args.noise_mm}")
    if args.json:  # before the evaluation: never over the model, a checkpoint or the run's own files
        from kinepose.cli.files import check_output

        check_output("--json", args.json, (None if args.model == "analytic" else args.model,))
    if args.model == "analytic":
        skeleton = get_skeleton("humanoid")
        if args.skeleton is not None:  # before the clips are read: a bad file fails fast
            from kinepose.cli.skeletons import resolve_skeleton

            skeleton = resolve_skeleton(args.skeleton)
        clips = [c.strip() for c in (args.clips or ",".join(_default_eval_clips())).split(",") if c.strip()]
        motions = [load_deepmimic(c) for c in clips]
        where = f"DeepMimic clips {', '.join(clips)}"
        if args.skeleton is not None:
            from kinepose.cli.skeletons import motion_on_skeleton

            motions = [motion_on_skeleton(m, skeleton) for m in motions]
            where += f" replayed on skeleton '{skeleton.name}'"
        solver, name = analytic_solver(skeleton), "analytic IK"
    else:
        if not os.path.exists(args.model):
            raise ValueError(f"evaluate: {args.model!r} is neither 'analytic' nor an existing run folder or model file")
        _check_finished(args.model)
        from kinepose.data.sources import load_split
        from kinepose.inference import model_solver
        from kinepose.models.files import load_model, model_config

        model = load_model(args.model)
        if args.skeleton is not None:
            from kinepose.cli.skeletons import check_model_skeleton

            check_model_skeleton(args.skeleton, model.skeleton)
        cfg = _run_config(args.model, model_config(args.model))
        if args.clips:
            if model.skeleton.name != "humanoid":
                raise ValueError(
                    f"--clips: the bundled DeepMimic clips are humanoid motion; this model is for "
                    f"'{model.skeleton.name}' (leave out --clips to use its held-out data)"
                )
            motions = [load_deepmimic(c.strip()) for c in args.clips.split(",") if c.strip()]
            where = f"clips {args.clips}"
        else:
            motions = load_split(cfg)[2]
            where = f"{len(motions)} held-out clips"
        solver, name = model_solver(model), f"{model.family} ({cfg.get('name', os.path.basename(args.model))})"
    report = evaluate_solver(solver, motions, name, noise_mm=args.noise_mm, seed=args.seed,
                             progress=progress_enabled(not args.quiet))  # fmt: skip
    print(f"{name} on {where}; joint noise {args.noise_mm:g} mm (seed {args.seed})\n")
    print(format_table(report))
    out = args.json
    if out is None and args.model != "analytic":  # a run keeps its evaluations
        folder = args.model if os.path.isdir(args.model) else os.path.dirname(os.path.abspath(args.model))
        out = os.path.join(folder, f"evaluate_noise{args.noise_mm:g}mm.json")
    if out:
        write_json(out, report.to_dict())
        print(f"\nwrote {out}")
    return 0


def _check_finished(path: str) -> None:
    """A run folder whose training has not finished (checkpoints/, no model.pt) has no model to score yet."""
    import os

    if os.path.isdir(path) and not os.path.exists(os.path.join(path, "model.pt")):
        ckpts = os.path.join(path, "checkpoints")
        if os.path.isdir(ckpts):
            best = os.path.join(ckpts, "best.ckpt")
            also = f", or score its best checkpoint so far: kinepose evaluate {best}" if os.path.isfile(best) else ""
            raise ValueError(f"{path}: its training has not finished (checkpoints/ but no model.pt); finish it with "
                             f"kinepose train --resume {path}{also}")  # fmt: skip


def _default_eval_clips() -> tuple[str, ...]:
    from kinepose.data.sources import DEFAULT_EVAL_CLIPS

    return DEFAULT_EVAL_CLIPS


def _run_config(path: str, stored: dict | None) -> dict:
    """The training config of a model: the one stored inside it, else the run folder's config.yaml."""
    import os

    from kinepose.config import resolve_config

    if stored is not None:
        return resolve_config(base=stored)
    folder = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    if os.path.basename(folder) == "checkpoints":
        folder = os.path.dirname(folder)
    cand = os.path.join(folder, "config.yaml")
    if not os.path.exists(cand):
        raise ValueError(f"{path}: no training config found (neither inside the model nor {cand})")
    return resolve_config(cand)


def _train_config(args: argparse.Namespace) -> tuple[dict, str]:
    """The config and run folder of ``kinepose train``: the recipe with its overrides, or with ``--resume RUN``
    the config stored in RUN (then nothing else may change it)."""
    import os

    from kinepose.config import load_config, resolve_config
    from kinepose.training.run import check_run_name

    if args.resume is None:
        if args.config is None:
            raise ValueError("give a recipe (kinepose train configs/humanoid_hybrid.yaml) or --resume RUN")
        overrides = list(args.overrides) + ([f"data.skeleton={args.skeleton}"] if args.skeleton else [])
        cfg = resolve_config(args.config, overrides)
        check_run_name(cfg["name"])  # before it becomes runs/<name>
        return cfg, args.out or os.path.join("runs", cfg["name"])
    extra = ([args.config] if args.config else []) + list(args.overrides)
    if extra or args.out or args.force:
        given = " ".join(extra + (["--out"] if args.out else []) + (["--force"] if args.force else []))
        raise ValueError(f"--resume continues {args.resume} with its stored config ({args.resume}/config.yaml), "
                         f"unchanged: it takes no recipe, overrides, --out or --force (got {given})")  # fmt: skip
    stored = os.path.join(args.resume, "config.yaml")
    if not os.path.isfile(stored):
        raise ValueError(f"--resume {args.resume}: not a run folder (no config.yaml)")
    return resolve_config(base=load_config(stored)), args.resume


def _interrupted_hint(run_dir: str) -> str:
    """The line ``kinepose train`` prints after Ctrl-C: how to go on from what the run folder holds."""
    import os

    from kinepose.training.run import LAST_CHECKPOINT

    if os.path.exists(os.path.join(run_dir, "model.pt")):
        return f"interrupted after training: the model is saved; score it with kinepose evaluate {run_dir}"
    if os.path.isfile(os.path.join(run_dir, LAST_CHECKPOINT)):
        return f"interrupted: resume with kinepose train --resume {run_dir}"
    return "interrupted before the first epoch ended (nothing to resume): run the same command again"


def _is_lift_recipe(path: str | None) -> bool:
    """A recipe with ``task: lift`` trains a lifter (:mod:`kinepose.training.lifting`)."""
    if path is None:
        return False
    from kinepose.config import load_config

    return load_config(path).get("task") == "lift"


def _is_headpose_recipe(path: str | None) -> bool:
    """A recipe with ``task: headpose`` trains a head-pose network (:mod:`kinepose.training.headpose`)."""
    import os

    if path is None or not os.path.isfile(path):
        return False
    from kinepose.config import load_config

    return load_config(path).get("task") == "headpose"


def _cmd_train_lift(args: argparse.Namespace) -> int:
    import os

    from kinepose.training.lifting import EVAL_CONDITIONS, resolve_lift_config, train_lifter
    from kinepose.training.run import check_run_name, seconds_to_text

    if args.resume is not None or args.skeleton:
        raise ValueError("--resume and --skeleton are for joints-to-rotations recipes; a lifting recipe (task: lift) "
                         "trains in one go on its own skeleton")  # fmt: skip
    cfg = resolve_lift_config(args.config, list(args.overrides))
    check_run_name(cfg["name"])
    run_dir = args.out or os.path.join("runs", cfg["name"])
    res = train_lifter(cfg, run_dir, force=args.force, progress=None if not args.quiet else False)
    print(f"\nTrained {cfg['name']} ({res['family']}, {res['parameters']:,} parameters) in "
          f"{seconds_to_text(res['train_seconds'])}; run folder {run_dir}\n")  # fmt: skip
    print(f"Held-out clips, {cfg['data']['views']} cameras each: MPJPE / PA-MPJPE (mm), bone-length std (mm)")
    for cond in EVAL_CONDITIONS:
        t = res["test"][cond]
        print(f"  {cond:13s} {t['mpjpe_mm']:7.1f} / {t['pa_mpjpe_mm']:6.1f}   bones {t['bone_std_mm']:.2f}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    if args.resume is not None:
        import os

        if _is_headpose_recipe(os.path.join(args.resume, "config.json")):
            raise ValueError(f"--resume {args.resume}: a head-pose run (task: headpose) trains in one go and cannot "
                             f"be resumed; train it again: kinepose train {os.path.join(args.resume, 'config.json')} "
                             f"--out {args.resume} --force")  # fmt: skip
        stored = os.path.join(args.resume, "config.yaml")
        if os.path.isfile(stored) and _is_lift_recipe(stored):
            raise ValueError(f"--resume {args.resume}: a lifting run (task: lift) trains in one go and cannot be "
                             f"resumed; train it again: kinepose train {stored} --out {args.resume} "
                             "--force")  # fmt: skip
    if args.resume is None and _is_lift_recipe(args.config):
        return _cmd_train_lift(args)
    if args.resume is None and _is_headpose_recipe(args.config):
        from kinepose.cli.headpose import train_headpose

        return train_headpose(args)
    cfg, run_dir = _train_config(args)
    if args.quiet:
        cfg["trainer"]["progress_bar"] = False  # this process only: a resumed run's config.yaml stays as it is
    try:
        return _train_and_compare(args, cfg, run_dir)
    except KeyboardInterrupt:  # Ctrl-C: one line on how to go on, no traceback; 130 as a shell's 128 + SIGINT
        print(f"\n{_interrupted_hint(run_dir)}", file=sys.stderr)
        return 130


def _train_and_compare(args: argparse.Namespace, cfg: dict, run_dir: str) -> int:
    import os

    from kinepose._progress import progress_enabled
    from kinepose.evaluation.solvers import analytic_solver, evaluate_solver, fitted_solver
    from kinepose.evaluation.tables import format_comparison, write_json
    from kinepose.inference import model_solver
    from kinepose.training.run import run_training, seconds_to_text

    result = run_training(cfg, run_dir, force=args.force, resume=args.resume is not None)
    if not result.is_global_zero:
        return 0  # other DDP processes: rank 0 evaluates and prints
    from kinepose.data.sources import load_split

    test = load_split(cfg)[2]
    sk = result.model.skeleton
    reports = []
    bar = progress_enabled(not args.quiet)
    for noise in args.noise_levels:
        solvers = ((analytic_solver(sk), "analytic IK"), (fitted_solver(sk), "analytic IK + least-squares fit"),
                   (model_solver(result.model), f"{result.model.family} (this run)"))  # fmt: skip
        for solver, name in solvers:
            reports.append(evaluate_solver(solver, test, name, noise_mm=noise, progress=bar))
    write_json(os.path.join(run_dir, "eval.json"), {
        "train_seconds": result.train_seconds, "epochs": result.epochs, "best_val_geo_deg": result.best_val_geo_deg,
        "residual_selection": result.residual_selection, "reports": [r.to_dict() for r in reports],
    })  # fmt: skip
    resumed = " (resumed)" if args.resume is not None else ""
    print(f"\nTrained {cfg['name']} ({result.model.family}) in {seconds_to_text(result.train_seconds)}, "
          f"{result.epochs} epochs{resumed}; run folder {run_dir}\n")  # fmt: skip
    print(f"Held-out clips ({len(test)}: {', '.join(m.name for m in test[:5])}{' ...' if len(test) > 5 else ''}):\n")
    print(format_comparison(reports))
    return 0
