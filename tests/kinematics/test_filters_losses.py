import pytest
import torch

from kinepose.errors import KineposeError, ShapeError
from kinepose.geometry import quat_identity, random_quat
from kinepose.kinematics import moving_average
from kinepose.models.losses import fk_position_loss, geodesic_loss, quat_mse_loss, rotation_loss
from kinepose.skeleton import get_skeleton


def test_moving_average():
    t = torch.arange(10, dtype=torch.float64)[:, None, None].expand(10, 2, 3)
    c = moving_average(t, 5)
    torch.testing.assert_close(c[2:-2], t[2:-2])  # a ramp is unchanged inside a centred window
    k = moving_average(t, 5, causal=True)
    torch.testing.assert_close(k[4:], t[4:] - 2)  # a causal window lags by (w - 1) / 2 frames
    torch.testing.assert_close(moving_average(t, 1), t)
    assert c.shape == t.shape
    with pytest.raises(KineposeError, match="window must be >= 1"):
        moving_average(t, 0)
    with pytest.raises(ShapeError):
        moving_average(torch.zeros(3), 3)


def test_losses():
    g = torch.Generator().manual_seed(0)
    q = random_quat((8, 5), generator=g, dtype=torch.float64)
    assert float(quat_mse_loss(q, -q)) == 0.0
    assert float(geodesic_loss(q, q)) < 1e-2  # clamped at 1 - 1e-6: ~2.8e-3 rad
    ident = quat_identity((1,), dtype=torch.float64)
    quarter = torch.tensor([[2**-0.5, 0, 0, 2**-0.5]], dtype=torch.float64)
    assert float(geodesic_loss(quarter, ident)) == pytest.approx(torch.pi / 2, abs=1e-9)
    p = q.clone().requires_grad_()
    geodesic_loss(p, q).backward()
    assert torch.isfinite(p.grad).all()
    with pytest.raises(ValueError, match="unknown rotation loss"):
        rotation_loss("l1", q, q)
    sk = get_skeleton("hand21")
    from kinepose.kinematics import forward_kinematics

    q = random_quat((4, 21), generator=g, dtype=torch.float64)
    x = forward_kinematics(sk, q).positions
    assert float(fk_position_loss(sk, q, x[:, 0], x)) < 1e-20
    assert float(fk_position_loss(sk, q, x[:, 0], x + 0.01)) == pytest.approx(0.03, rel=1e-6)
