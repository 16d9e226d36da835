"""The Lightning data module: frame windows over a config's training and validation clips."""

from __future__ import annotations

import lightning as L
from torch.utils.data import DataLoader

from kinepose.data.datasets import WindowDataset
from kinepose.data.sources import load_split


class MotionDataModule(L.LightningDataModule):
    """Frame windows over the training and validation clips of a config."""

    def __init__(self, cfg: dict, window: int, target_index: int) -> None:
        super().__init__()
        self.cfg, self.window, self.target_index = cfg, window, target_index
        self.train_clips, self.val_clips, self.test_clips = load_split(cfg)
        data = cfg["data"]
        self.train_set = WindowDataset(self.train_clips, window, target_index, data["samples_per_epoch"])
        self.val_set = WindowDataset(self.val_clips, window, target_index)

    def train_dataloader(self) -> DataLoader:
        # no generator of its own: the shuffle draws its seed from torch's global generator, whose state IKTask
        # keeps in every checkpoint, so a resumed run shuffles as an uninterrupted one
        d = self.cfg["data"]
        return DataLoader(self.train_set, batch_size=d["batch_size"], shuffle=True, drop_last=True,
                          num_workers=d["num_workers"], persistent_workers=d["num_workers"] > 0)  # fmt: skip

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=1024, shuffle=False, num_workers=0)
