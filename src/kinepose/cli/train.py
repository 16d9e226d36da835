"""``kinepose train`` and ``evaluate``."""

from __future__ import annotations

import argparse


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import os

    from kinepose._progress import progress_enabled
    from kinepose.data.sources.deepmimic import load_deepmimic
    from kinepose.evaluation.solvers import analytic_solver, evaluate_solver
    from kinepose.evaluation.tables import format_table, write_json
    from kinepose.skeleton.presets import get_skeleton

    if args.noise_mm < 0:
        raise ValueError(f"--noise-mm must be >= 0, got {args.noise_mm}")
    if args.model == "analytic":
        clips = [c.strip() for c in (args.clips or ",".join(_default_eval_clips())).split(",") if c.strip()]
        motions = [load_deepmimic(c) for c in clips]
        solver, name = analytic_solver(get_skeleton("humanoid")), "analytic IK"
        where = f"DeepMimic clips {', '.join(clips)}"
    else:
        if not os.path.exists(args.model):
            raise ValueError(f"evaluate: {args.model!r} is neither 'analytic' nor an existing run folder or model file")
        from kinepose.data.sources import load_split
        from kinepose.inference import model_solver
        from kinepose.models.files import load_model, model_config

        model = load_model(args.model)
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


def _cmd_train(args: argparse.Namespace) -> int:
    import os

    from kinepose._progress import progress_enabled
    from kinepose.config import resolve_config
    from kinepose.evaluation.solvers import analytic_solver, evaluate_solver, fitted_solver
    from kinepose.evaluation.tables import format_comparison, write_json
    from kinepose.inference import model_solver
    from kinepose.training.run import run_training, seconds_to_text

    cfg = resolve_config(args.config, args.overrides)
    if args.quiet:
        cfg["trainer"]["progress_bar"] = False
    run_dir = args.out or os.path.join("runs", cfg["name"])
    result = run_training(cfg, run_dir)
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
    print(f"\nTrained {cfg['name']} ({result.model.family}) in {seconds_to_text(result.train_seconds)}, "
          f"{result.epochs} epochs; run folder {run_dir}\n")  # fmt: skip
    print(f"Held-out clips ({len(test)}: {', '.join(m.name for m in test[:5])}{' ...' if len(test) > 5 else ''}):\n")
    print(format_comparison(reports))
    return 0
