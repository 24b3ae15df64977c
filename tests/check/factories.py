"""Users' own models for the ``model = "module:callable"`` tests: a tiny MLP with and without skips.

PyTorch's default ``nn.Linear`` init (variance 1/(3 fan_in)) shrinks a plain ReLU stack's signal by
about 6x per layer, so the gradient vanishes without skips and stays of order one with them.
"""

from torch import nn

WIDTH, DEPTH, IN, CLASSES = 16, 10, 3 * 4 * 4, 5


class TinyBlock(nn.Module):
    def __init__(self, skip: bool):
        super().__init__()
        self.fc = nn.Linear(WIDTH, WIDTH)
        self.act = nn.ReLU()
        self.skip = skip

    def forward(self, x):
        out = self.act(self.fc(x))
        return x + out if self.skip else out


class TinyNet(nn.Module):
    def __init__(self, skip: bool):
        super().__init__()
        self.flat = nn.Flatten()
        self.stem = nn.Linear(IN, WIDTH)
        self.blocks = nn.Sequential(*(TinyBlock(skip) for _ in range(DEPTH)))
        self.head = nn.Linear(WIDTH, CLASSES)

    def forward(self, x):
        x = self.stem(self.flat(x))
        x = self.blocks(x)
        return self.head(x)


def residual() -> nn.Module:
    return TinyNet(skip=True)


def plain() -> nn.Module:
    return TinyNet(skip=False)


NOT_A_MODULE = 3
