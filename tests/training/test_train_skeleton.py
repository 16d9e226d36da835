"""`kinepose train --skeleton FILE` (data.skeleton): the recipe's motion replayed on the user's skeleton."""

import numpy as np
import pytest

from kinepose.cli import main
from kinepose.data.sources import load_split, source_skeleton
from kinepose.errors import KineposeError
from kinepose.kinematics import forward_kinematics
from kinepose.models.files import load_model
from kinepose.skeleton import get_skeleton, write_skeleton

TINY = ["data.samples_per_epoch=128", "data.batch_size=64", "trainer.max_epochs=1", "trainer.loggers=[csv]",
        "trainer.progress_bar=false", "model.dim=32", "model.layers=1", "model.fit_iterations=1"]  # fmt: skip


@pytest.fixture
def tall(tmp_path):
    sk = get_skeleton("humanoid")
    off = np.array(sk.offsets) * 1.2
    off[0] = sk.offsets[0]
    path = tmp_path / "tall.yaml"
    write_skeleton(sk.with_offsets(off, name="tall"), path)
    return str(path)


def test_split_replays_on_the_skeleton_file(tall):
    from kinepose.config import resolve_config

    cfg = resolve_config(None, [f"data.skeleton={tall}"])
    sk = source_skeleton(cfg)
    assert sk.name == "tall"
    train, _, _ = load_split(cfg)
    m = train[0]
    np.testing.assert_array_equal(m.skeleton.offsets, sk.offsets)
    x = forward_kinematics(sk, m.local_quat, m.root_pos).positions
    lengths = (x[:, 4] - x[:, 3]).norm(dim=-1)  # right thigh: 1.2 x the humanoid's
    np.testing.assert_allclose(lengths.numpy(), 1.2 * get_skeleton("humanoid").bone_lengths()[4], rtol=1e-9)


def test_train_with_a_skeleton_file(tmp_path, tall, capsys):
    out = tmp_path / "run"
    code = main(["train", "configs/humanoid_hybrid.yaml", *TINY, "--skeleton", tall, "--out", str(out), "--quiet",
                 "--noise-levels", "0"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    model = load_model(str(out))
    assert model.skeleton.name == "tall"
    np.testing.assert_allclose(model.skeleton.bone_lengths()[4], 1.2 * get_skeleton("humanoid").bone_lengths()[4])


def test_a_skeleton_without_the_clips_joints_is_refused(tmp_path):
    from kinepose.config import resolve_config

    cfg = resolve_config(None, ["data.skeleton=hand21"])
    with pytest.raises(KineposeError, match="data.skeleton: joints .* are not in the clip's skeleton"):
        load_split(cfg)
