"""Engine benchmark: our MLP VAE against the PyTorch example's VAE, side by side in one run.

    python -m benchmarks.engine [--data-dir ../shared/data] [--epochs 10]

The reference is the PyTorch examples VAE (784-400-20, ReLU, BCE summed over pixels + KL,
Adam 1e-3, batch 128), rewritten here without its module-level globals and fed the way the
example feeds it: a torchvision MNIST dataset with ToTensor through a shuffling DataLoader.
Ours is `python -m core train --arch mlp --latent 20` (SiLU hidden layer, in-memory batches).
Both report the test loss in nats per example (one sample of z, as the example does) and
seconds per training epoch (test evaluation excluded for both).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.machine import header
from core.config import ModelConfig
from core.data import load_dataset
from core.train import TrainConfig, train_model


class ExampleVAE(nn.Module):
    """The PyTorch example's model: 784-400-20 with ReLU."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
        self.fc3, self.fc4 = nn.Linear(20, 400), nn.Linear(400, 784)

    def forward(self, x):
        h = F.relu(self.fc1(x.view(-1, 784)))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)  # the example samples in eval too
        return torch.sigmoid(self.fc4(F.relu(self.fc3(z)))), mu, logvar


def example_loss(recon, x, mu, logvar):
    bce = F.binary_cross_entropy(recon, x.view(-1, 784), reduction="sum")
    return bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


def run_reference(data_dir: Path, epochs: int, seed: int = 1) -> tuple[float, float]:
    from torchvision import datasets, transforms

    torch.manual_seed(seed)
    with tempfile.TemporaryDirectory() as tmp:
        # torchvision wants the extracted files; copy the .gz into a scratch root and let it
        # extract there (the MD5s match, so nothing is downloaded).
        shutil.copytree(data_dir / "MNIST", Path(tmp) / "MNIST")
        train = datasets.MNIST(tmp, train=True, download=True, transform=transforms.ToTensor())
        test = datasets.MNIST(tmp, train=False, transform=transforms.ToTensor())
        train_loader = torch.utils.data.DataLoader(train, batch_size=128, shuffle=True)
        test_loader = torch.utils.data.DataLoader(test, batch_size=128)
        model = ExampleVAE()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        epoch_seconds = []
        for _ in range(epochs):
            model.train()
            t = time.perf_counter()
            for x, _ in train_loader:
                opt.zero_grad()
                recon, mu, logvar = model(x)
                loss = example_loss(recon, x, mu, logvar)
                loss.backward()
                opt.step()
            epoch_seconds.append(time.perf_counter() - t)
        model.eval()
        total = 0.0
        with torch.no_grad():
            for x, _ in test_loader:
                recon, mu, logvar = model(x)
                total += example_loss(recon, x, mu, logvar).item()
    return total / len(test), sum(epoch_seconds) / len(epoch_seconds)


def run_ours(data_dir: Path, epochs: int, seed: int = 0) -> tuple[float, float]:
    data = load_dataset("mnist", data_dir, download=False)
    cfg = ModelConfig(kind="vae", arch="mlp", latent_dim=20, hidden=(400,), image_shape=data.image_shape)
    _, history = train_model(cfg, data, TrainConfig(epochs=epochs, batch_size=128, lr=1e-3, seed=seed))
    train_s = [e.train_seconds for e in history.epochs]
    return history.last.test_loss, sum(train_s) / len(train_s)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    p.add_argument("--epochs", type=int, default=10)
    args = p.parse_args(argv)
    data_dir = Path(args.data_dir)
    print(header("engine: MLP VAE 784-400-20 on MNIST"))
    if not (data_dir / "MNIST" / "raw").is_dir():
        print(f"skipped: no MNIST under {data_dir} (full-data benchmark)")
        return
    ref_loss, ref_s = run_reference(data_dir, args.epochs)
    our_loss, our_s = run_ours(data_dir, args.epochs)
    print("| model | epochs | test loss (nats) | s / epoch | images / s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print(
        f"| PyTorch example (DataLoader, ReLU) | {args.epochs} | {ref_loss:.2f} | {ref_s:.2f} | {60000 / ref_s:,.0f} |"
    )
    print(f"| Latent Lab (`core`, SiLU) | {args.epochs} | {our_loss:.2f} | {our_s:.2f} | {60000 / our_s:,.0f} |")
    print(
        f"throughput ratio: {ref_s / our_s:.2f}x (target >= 1.5x); loss target <= 105 nats: "
        f"{'met' if our_loss <= 105 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
