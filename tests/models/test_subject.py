"""Learned models use the subject's bone lengths (PoseModel.subject / predict_clip(subject=...))."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from kinepose.data.sources.deepmimic import load_deepmimic
from kinepose.errors import KineposeError
from kinepose.inference import predict_clip
from kinepose.kinematics import analytic_ik, forward_kinematics
from kinepose.kinematics.calibration import calibrate_skeleton
from kinepose.metrics import geodesic_error
from kinepose.models import create_model
from kinepose.skeleton import get_skeleton

sys.path.insert(0, str(Path(__file__).parents[1] / "kinematics"))
from test_calibration import scaled_subject


@pytest.mark.parametrize("seed", [0, 3])
def test_hybrid_on_a_calibrated_subject_is_exact(seed):
    """Issue 9: per-bone scaled subjects (0.85-1.15), clean joints: through the hybrid FK within 0.01 mm and
    0.0 deg on determined joints, and its noise gate reads the input as clean; with the template's lengths
    (the control) it is centimetres and degrees off."""
    m = load_deepmimic("walk")
    sk = m.skeleton
    model = create_model("hybrid", sk)
    subj = scaled_subject(sk, seed)
    x = forward_kinematics(subj, m.local_quat, m.root_pos).positions.float()
    cal = calibrate_skeleton(sk, x)
    det = analytic_ik(sk, x).determined.numpy()
    q, root = predict_clip(model, x, subject=cal)
    fk = forward_kinematics(cal, q.double(), root.double()).positions
    assert float((fk - x.double()).norm(dim=-1).max()) < 1e-5
    assert float(geodesic_error(q.double()[:, det], m.local_quat[:, det], degrees=True).max()) < 0.01
    assert model.subject is None  # restored after the clip
    model.set_subject(cal)
    assert float(model.noise_gate(x[:, None].squeeze(1), None).max()) < 0.05
    model.set_subject(None)
    assert float(model.noise_gate(x, None).mean()) > 0.2  # control: the template sees clean input as noisy
    q0, root0 = predict_clip(model, x)
    fk0 = forward_kinematics(sk, q0.double(), root0.double()).positions
    assert float((fk0 - x.double()).norm(dim=-1).mean()) > 0.005


def test_subject_must_share_the_topology():
    model = create_model("hybrid", get_skeleton("humanoid"))
    with pytest.raises(KineposeError, match="does not have the joints, parents and kinds"):
        model.set_subject(get_skeleton("h36m17"))
    off = np.array(model.skeleton.offsets) * 1.1
    model.set_subject(model.skeleton.with_offsets(off))
    assert model.geometry_skeleton is model.subject


def test_predict_clip_takes_missing_joints():
    m = load_deepmimic("walk")
    model = create_model("hybrid", m.skeleton)
    x = m.positions().float().clone()
    x[4, 7] = float("nan")
    q, root = predict_clip(model, x)
    assert torch.isfinite(q).all() and torch.isfinite(root).all()
