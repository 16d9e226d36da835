"""Model files load without running code: malicious and old-format pickles are refused with a clear error,
save_model writes only what ``torch.load(weights_only=True)`` reads, and real run files (model.pt, .ckpt) load."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import pickle

import numpy as np
import pytest
import torch

from kinepose.cli import main
from kinepose.errors import KineposeError
from kinepose.inference import predict_clip
from kinepose.models import create_model, load_model, model_config, save_model
from kinepose.skeleton import get_skeleton


class Payload:
    """Unpickling this creates ``marker``: a stand-in for a file that runs code when loaded."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


@dataclasses.dataclass
class OldExtra:
    """An object an older kinepose might have stored in ``extra`` (not plain data)."""

    epochs: int = 3


def _write_malicious(path: pathlib.Path, marker: pathlib.Path, how: str) -> None:
    payload = {"format": "kinepose-model", "family": "iknet", "extra": {"x": Payload(marker)}}
    if how == "torch_save":
        torch.save(payload, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(payload, f)


def _model():
    torch.manual_seed(0)
    return create_model("iknet", get_skeleton("humanoid"), hidden=32, layers=2).eval()


def _joints(frames: int = 6) -> torch.Tensor:
    return torch.randn(frames, 15, 3, generator=torch.Generator().manual_seed(1)) * 0.3


def _assert_refused(message: str, path: pathlib.Path) -> None:
    assert str(path) in message
    assert "Python objects" in message and "retrain" in message and "without running code" in message


@pytest.mark.parametrize("how", ["torch_save", "pickle_dump"])
def test_malicious_payload_really_runs_code_with_weights_only_false(tmp_path, how):
    """The check below is not vacuous: the same file runs its code under an unsafe load."""
    path, marker = tmp_path / "model.pt", tmp_path / "ran"
    _write_malicious(path, marker, how)
    assert not marker.exists()
    # a bare pickle runs while torch reads it as its magic number; torch's "corrupt file?" error comes after
    with contextlib.suppress(RuntimeError) if how == "pickle_dump" else contextlib.nullcontext():
        torch.load(path, map_location="cpu", weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("how", ["torch_save", "pickle_dump"])
@pytest.mark.parametrize("via", ["load_model", "run_folder", "model_config", "cli_ik", "cli_evaluate"])
def test_malicious_model_file_is_refused_and_never_run(tmp_path, capsys, how, via):
    path, marker = tmp_path / "model.pt", tmp_path / "ran"
    _write_malicious(path, marker, how)
    if via in ("load_model", "run_folder", "model_config"):
        fn = model_config if via == "model_config" else load_model
        with pytest.raises(KineposeError) as err:
            fn(str(tmp_path if via == "run_folder" else path))
        _assert_refused(str(err.value), path)
    else:
        inp, out = tmp_path / "joints.npz", tmp_path / "rot.npz"
        np.savez(inp, joints=_joints().numpy())
        argv = ["ik", "--model", str(path), "--input", str(inp), "--output", str(out), "--quiet"]
        if via == "cli_evaluate":
            argv = ["evaluate", str(path), "--quiet"]
        assert main(argv) == 2
        _assert_refused(capsys.readouterr().err, path)
        assert not out.exists()
    assert not marker.exists()


@pytest.mark.parametrize("old", [np.zeros(3), OldExtra()], ids=["numpy_array", "dataclass"])
def test_old_style_model_file_asks_to_retrain(tmp_path, old):
    """The payload of save_model with one non-plain value in ``extra`` (as an older kinepose might have saved):
    readable by an unsafe load, refused here."""
    path = tmp_path / "model.pt"
    save_model(str(path), _model(), extra={"epochs": 3})
    payload = torch.load(path, map_location="cpu", weights_only=True)
    payload["extra"]["old"] = old
    torch.save(payload, path)
    assert isinstance(torch.load(path, map_location="cpu", weights_only=False)["extra"]["old"], type(old))
    for fn in (load_model, model_config):
        with pytest.raises(KineposeError, match="older kinepose") as err:
            fn(str(path))
        _assert_refused(str(err.value), path)


@pytest.mark.parametrize("damage", ["text", "zip_header", "truncated"])
def test_damaged_and_missing_files_keep_their_own_errors(tmp_path, damage):
    bad = tmp_path / "model.pt"
    save_model(str(bad), _model())
    data = {"text": b"not a model at all", "zip_header": b"PK\x03\x04junk", "truncated": bad.read_bytes()[:2000]}
    bad.write_bytes(data[damage])
    with pytest.raises(KineposeError, match="cannot load model") as err:
        load_model(str(bad))
    assert str(bad) in str(err.value) and "Python objects" not in str(err.value)
    assert model_config(str(bad)) is None
    assert model_config(str(tmp_path / "missing.pt")) is None
    with pytest.raises(KineposeError, match="no such model file"):
        load_model(str(tmp_path / "missing.pt"))


def test_save_load_round_trip_is_exact_and_weights_only(tmp_path):
    model = _model()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))  # away from any default initialization
    path = tmp_path / "model.pt"
    extra = {"config": {"seed": 0, "model": {"name": "iknet"}}, "f": np.float64(1.5), "a": np.arange(3),
             "p": pathlib.Path("runs/x"), "t": (1, 2), "v": torch.ones(2)}  # fmt: skip
    save_model(str(path), model, extra=extra)
    payload = torch.load(path, map_location="cpu", weights_only=True)  # what load_model does: no error
    assert payload["extra"]["f"] == 1.5 and type(payload["extra"]["f"]) is float
    assert payload["extra"]["a"] == [0, 1, 2] and payload["extra"]["p"] == os.path.join("runs", "x")
    assert payload["extra"]["t"] == (1, 2) and torch.equal(payload["extra"]["v"], torch.ones(2))
    assert model_config(str(path)) == extra["config"]
    loaded = load_model(str(path))
    x = _joints()
    q1, r1 = predict_clip(model, x)
    q2, r2 = predict_clip(loaded, x)
    assert torch.equal(q1, q2) and torch.equal(r1, r2)


def test_save_model_refuses_values_it_could_not_load_back(tmp_path):
    path = tmp_path / "model.pt"
    with pytest.raises(KineposeError, match=r"extra\['info'\]\['obj'\] is a OldExtra"):
        save_model(str(path), _model(), extra={"info": {"obj": OldExtra()}})
    assert not path.exists() and os.listdir(tmp_path) == []


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from kinepose.config import resolve_config
    from kinepose.training import run_training

    cfg = resolve_config(None, ["data.samples_per_epoch=128", "data.batch_size=64", "trainer.max_epochs=1",
                                "trainer.loggers=[csv]", "trainer.progress_bar=false", "model.name=iknet",
                                "model.hidden=32"])  # fmt: skip
    run = tmp_path_factory.mktemp("tiny") / "run"
    return run, run_training(cfg, str(run)), cfg


@pytest.mark.parametrize("name", ["model.pt", "checkpoints/best.ckpt", "checkpoints/last.ckpt"])
def test_real_run_files_load_weights_only(tiny_run, name):
    run, res, cfg = tiny_run
    path = run / name
    torch.load(path, map_location="cpu", weights_only=True)  # Lightning's checkpoint is plain data too
    x = _joints()
    q1, r1 = predict_clip(res.model, x)
    q2, r2 = predict_clip(load_model(str(path)), x)
    torch.testing.assert_close(q1, q2)
    torch.testing.assert_close(r1, r2)
    assert model_config(str(path))["model"] == cfg["model"]
