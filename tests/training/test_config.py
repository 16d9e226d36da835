import pytest

from kinepose.config import DEFAULTS, parse_overrides, resolve_config
from kinepose.errors import KineposeError


def test_defaults_and_file(tmp_path):
    p = tmp_path / "exp.yaml"
    p.write_text("model: {name: seed0, mixer: gru}\ntrainer: {max_epochs: 3}\n")
    cfg = resolve_config(str(p))
    assert cfg["name"] == "exp"
    assert cfg["model"] == {"name": "seed0", "mixer": "gru"}
    assert cfg["trainer"]["max_epochs"] == 3
    assert cfg["optim"] == DEFAULTS["optim"]


def test_overrides_are_typed():
    o = parse_overrides(["optim.lr=3e-4", "data.mirror=false", "model.dim=64", "data.eval_clips=[walk, run]"])
    assert o == {"optim": {"lr": 3e-4}, "data": {"mirror": False, "eval_clips": ["walk", "run"]}, "model": {"dim": 64}}
    cfg = resolve_config(None, ["trainer.max_epochs=2", "model.name=iknet"])
    assert cfg["trainer"]["max_epochs"] == 2 and cfg["model"]["name"] == "iknet"


@pytest.mark.parametrize(
    "text, msg",
    [
        ("trainer: {max_epoch: 3}\n", "unknown config key 'trainer.max_epoch'"),
        ("optimizer: {lr: 1}\n", "unknown config key 'optimizer'"),
        ("data: 3\n", "config key 'data' must be a mapping"),
        ("data: {hand_sequences: {trian: 3}}\n", "unknown config key"),
        ("model: [1, 2\n", "line 2: malformed YAML"),
        ("trainer: {max_epochs: ten}\n", "trainer.max_epochs. must be a number"),
        ("- 1\n- 2\n", "must be a YAML mapping"),
    ],
)
def test_bad_config_files(tmp_path, text, msg):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    with pytest.raises(KineposeError, match=msg):
        resolve_config(str(p))


def test_bad_overrides():
    with pytest.raises(KineposeError, match="unknown config key 'optim.learning_rate'"):
        resolve_config(None, ["optim.learning_rate=1"])
    with pytest.raises(KineposeError, match="expected key=value"):
        resolve_config(None, ["optim.lr"])
    with pytest.raises(KineposeError, match="cannot read config"):
        resolve_config("/nonexistent.yaml")


def test_recipes_resolve():
    import glob

    from kinepose.config import load_config
    from kinepose.training.lifting import resolve_lift_config

    files = sorted(glob.glob("configs/*.yaml"))
    assert len(files) >= 6
    for f in files:
        if load_config(f).get("task") == "lift":  # lifting recipes have their own defaults
            name = resolve_lift_config(f)["model"]["name"]
            assert name in ("skeleton_lifter", "tcn", "mlp", "pose_transformer", "knn")
            continue
        if load_config(f).get("task") == "headpose":  # so do head-pose recipes
            from kinepose.config import merge_config
            from kinepose.training.headpose import RECIPE_DEFAULTS, resolve_recipe

            cfg = resolve_recipe(merge_config(RECIPE_DEFAULTS, f))
            assert (cfg["model"] in ("headpose_landmarks", "headpose_dual") and cfg["max_minutes"] <= 15) or "gpu" in f
            continue
        cfg = resolve_config(f)
        assert cfg["model"]["name"] in ("hybrid", "seed0", "sequence", "iknet", "twist")
