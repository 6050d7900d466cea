"""Many small MLPs trained as one computation.

K models that see the same batches (same data, batch size and seed) but differ
in learning rate, momentum, weight decay or hidden width are laid side by side:
their first layers form one (D x sum(h_k)) matrix, so each step is one wide
matrix product instead of K narrow ones, and their output layers form one
block-diagonal matrix. Forward, backward and the SGD update are written out by
hand under no_grad (about twenty tensor ops a step whatever K is), with each
column's own learning rate, momentum and decay, so the result equals training
the models one by one with torch.optim.SGD, to floating-point tolerance.
"""
from __future__ import annotations

import time
from typing import Callable, Optional

import torch
from torch import nn

from ..config.schema import ExperimentConfig
from ..core.errors import ImgclfError
from ..data.loader import Transform, kept_count
from ..data.splits import Splits
from ..models import build_model
from ..models.sizing import check_max_params, trainable_params
from .optim import lr_at
from .trainer import epoch_seed


def softmax_last(z: torch.Tensor) -> torch.Tensor:
    """Softmax over a short last dimension (the classes).

    Written out because torch's CPU softmax over a last dimension of 10 is about 20x slower
    than these four element-wise ops (318 vs 48 us for 128 x 16 x 10 scores, one thread).
    """
    e = (z - z.amax(-1, keepdim=True)).exp_()
    return e.div_(e.sum(-1, keepdim=True))


def log_softmax_last(z: torch.Tensor) -> torch.Tensor:
    """log(softmax_last(z)), computed stably."""
    s = z - z.amax(-1, keepdim=True)
    return s.sub_(s.exp().sum(-1, keepdim=True).log_())


class StackedMLP:
    """The parameters of K models side by side, with per-column hyperparameters."""

    def __init__(self, models: list[nn.Module], lrs: list[float], momenta: list[float], decays: list[float],
                 device: torch.device):
        self.k = len(models)
        lins = [[m for m in model.modules() if isinstance(m, nn.Linear)] for model in models]
        self.hidden = [l[0].out_features for l in lins] if len(lins[0]) == 2 else []
        self.classes = lins[0][-1].out_features
        f32 = dict(device=device, dtype=torch.float32)
        c, k = self.classes, self.k

        def cols(values, widths):  # one value per column, repeated over each model's columns
            return torch.cat([torch.full((w,), float(v), **f32) for v, w in zip(values, widths)])

        out_w = [c] * k
        if self.hidden:
            hid = self.hidden
            self.w1 = torch.cat([l[0].weight.detach().t() for l in lins], 1).to(**f32).contiguous()  # (D, H)
            self.b1 = torch.cat([l[0].bias.detach() for l in lins]).to(**f32)
            h_total = sum(hid)
            self.w2 = torch.zeros(h_total, c * k, **f32)  # block-diagonal (H, K*C)
            self.mask2 = torch.zeros(h_total, c * k, **f32)
            off = 0
            for i, (l, h) in enumerate(zip(lins, hid)):
                self.w2[off:off + h, i * c:(i + 1) * c] = l[1].weight.detach().t()
                self.mask2[off:off + h, i * c:(i + 1) * c] = 1
                off += h
            self.b2 = torch.cat([l[1].bias.detach() for l in lins]).to(**f32)
            self.lr1, self.lr2 = cols(lrs, hid), cols(lrs, out_w)
            self.mu1, self.mu2 = cols(momenta, hid), cols(momenta, out_w)
            self.wd1, self.wd2 = cols(decays, hid), cols(decays, out_w)
            self.col_model = [torch.repeat_interleave(torch.arange(k, device=device), torch.tensor(hid, device=device)),
                              torch.arange(k, device=device).repeat_interleave(c)]
        else:
            self.w2 = torch.cat([l[0].weight.detach().t() for l in lins], 1).to(**f32).contiguous()  # (D, K*C)
            self.b2 = torch.cat([l[0].bias.detach() for l in lins]).to(**f32)
            self.mask2 = torch.ones_like(self.w2)
            self.lr2, self.mu2, self.wd2 = cols(lrs, out_w), cols(momenta, out_w), cols(decays, out_w)
            self.col_model = [None, torch.arange(k, device=device).repeat_interleave(c)]
        self.base_lr = torch.tensor(lrs, **f32)
        self.use_momentum = any(m > 0 for m in momenta)
        self.use_decay = any(d > 0 for d in decays)
        self.buf: dict[str, torch.Tensor] = {}
        self.steps = 0

    def model_weights(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Model i's (w1 as D x h, b1, w2 as h x C, b2); w1 and b1 are empty for a perceptron."""
        c = self.classes
        if not self.hidden:
            return torch.empty(0), torch.empty(0), self.w2[:, i * c:(i + 1) * c], self.b2[i * c:(i + 1) * c]
        off, h = sum(self.hidden[:i]), self.hidden[i]
        return (self.w1[:, off:off + h], self.b1[off:off + h], self.w2[off:off + h, i * c:(i + 1) * c],
                self.b2[i * c:(i + 1) * c])

    def set_lr_scale(self, scale: torch.Tensor) -> None:
        """Multiply each model's base learning rate by its schedule factor (K,)."""
        lrs = self.base_lr * scale
        if self.hidden:
            self.lr1 = lrs[self.col_model[0]]
        self.lr2 = lrs[self.col_model[1]]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, K, C) class scores of every model."""
        if self.hidden:
            h = torch.addmm(self.b1, x, self.w1).clamp_min_(0)
            torch.nan_to_num_(h, 0.0, 0.0, 0.0)  # a diverged model must not leak into the others
            x = h
        return torch.addmm(self.b2, x, self.w2).view(len(x), self.k, self.classes)

    def _sgd(self, name: str, p: torch.Tensor, grad: torch.Tensor, lr: torch.Tensor, mu: torch.Tensor,
             wd: Optional[torch.Tensor]) -> None:
        # torch.optim.SGD: g = grad + wd * p; buf = mu * buf + g (buf = g at the first step); p -= lr * buf
        if wd is not None:
            grad = grad.addcmul(p, wd)
        if self.use_momentum:
            if name in self.buf:
                grad = self.buf[name].mul_(mu).add_(grad)
            else:
                grad = self.buf.setdefault(name, grad.clone())
        p.addcmul_(grad, lr, value=-1.0)

    def step(self, x: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One SGD step on a batch; target is (B, 1, C) class probabilities. Returns per-model loss sum and logits."""
        b = len(x)
        if self.hidden:
            hp = torch.addmm(self.b1, x, self.w1)
            h = hp.clamp_min(0)
            torch.nan_to_num_(h, 0.0, 0.0, 0.0)
        else:
            h = x
        z = torch.addmm(self.b2, h, self.w2).view(b, self.k, self.classes)
        logp = log_softmax_last(z)
        loss = -(logp * target).sum(-1).sum(0)  # (K,) summed over the batch
        g = logp.exp_().sub_(target).div_(b).view(b, -1)  # d(mean loss)/dz for each model
        torch.nan_to_num_(g, 0.0, 0.0, 0.0)
        decay2 = self.wd2 if self.use_decay else None
        if self.hidden:
            gh = torch.mm(g, self.w2.t()).mul_(hp > 0)  # through the output layer before it changes
            gw2 = torch.mm(h.t(), g).mul_(self.mask2)
            self._sgd("w2", self.w2, gw2, self.lr2, self.mu2, decay2)
            self._sgd("b2", self.b2, g.sum(0), self.lr2, self.mu2, None)
            if not self.use_momentum and not self.use_decay:
                # Fused: w1 -= x^T (gh * lr), one pass over the wide matrix instead of three.
                ghs = gh * self.lr1
                self.w1.addmm_(x.t(), ghs, alpha=-1.0)
                self.b1.sub_(ghs.sum(0))
            else:
                self._sgd("w1", self.w1, torch.mm(x.t(), gh), self.lr1, self.mu1, self.wd1 if self.use_decay else None)
                self._sgd("b1", self.b1, gh.sum(0), self.lr1, self.mu1, None)
        else:
            self._sgd("w2", self.w2, torch.mm(h.t(), g), self.lr2, self.mu2, decay2)
            self._sgd("b2", self.b2, g.sum(0), self.lr2, self.mu2, None)
        self.steps += 1
        return loss, z

    def finite(self) -> torch.Tensor:
        """(K,) True for each model whose parameters are all finite."""
        ok = torch.ones(self.k, dtype=torch.bool, device=self.w2.device)
        bad2 = ~torch.isfinite(self.w2).all(0) | ~torch.isfinite(self.b2)
        ok &= ~torch.zeros(self.k, dtype=torch.bool, device=ok.device).index_put_((self.col_model[1],), bad2, accumulate=True)
        if self.hidden:
            bad1 = ~torch.isfinite(self.w1).all(0) | ~torch.isfinite(self.b1)
            ok &= ~torch.zeros(self.k, dtype=torch.bool, device=ok.device).index_put_((self.col_model[0],), bad1, accumulate=True)
        return ok

    def freeze(self, i: int) -> None:
        """Silence model i (diverged): zero its parameters and learning rate."""
        self.base_lr[i] = 0.0
        cols2 = self.col_model[1] == i
        self.w2[:, cols2] = 0
        self.b2[cols2] = 0
        if self.hidden:
            cols1 = self.col_model[0] == i
            self.w1[:, cols1] = 0
            self.b1[cols1] = 0
            self.w2[cols1] = 0
        for name, buf in self.buf.items():
            buf.zero_()  # simplest safe reset; the frozen model no longer learns anyway


class PlainStackedMLP:
    """K MLPs for plain SGD (no momentum, no weight decay): the fastest layout.

    First layer: one wide (D+1) x (H+2) matrix, the models' columns side by side; the last
    input row holds the biases (inputs carry a ones column), and two extra hidden units are
    constants (1 and 0, learning rate 0). Output layer: a (K, P, C) stack with P = the widest
    hidden layer + 1, each model's hidden units gathered into its P slots (narrower models
    pad with the constant 0, the last slot is the constant 1 whose row is the bias), so the
    output layer is one batched product with no wasted block-diagonal zeros.
    A perceptron cohort has no hidden layer: w2 is then (D+1) x (K*C).
    """

    def __init__(self, models: list[nn.Module], lrs: list[float], device: torch.device):
        self.k = k = len(models)
        lins = [[m for m in model.modules() if isinstance(m, nn.Linear)] for model in models]
        self.hidden = [l[0].out_features for l in lins] if len(lins[0]) == 2 else []
        self.classes = c = lins[0][-1].out_features
        f32 = dict(device=device, dtype=torch.float32)
        d = lins[0][0].in_features
        self.base_lr = torch.tensor(lrs, **f32)
        if self.hidden:
            h_total = sum(self.hidden)
            self.one, self.zero = h_total, h_total + 1  # the constant hidden units
            self.w1 = torch.zeros(d + 1, h_total + 2, **f32)
            self.w1[:d, :h_total] = torch.cat([l[0].weight.detach().t() for l in lins], 1)
            self.w1[d, :h_total] = torch.cat([l[0].bias.detach() for l in lins])
            self.w1[d, self.one] = 1.0
            p = max(self.hidden) + 1
            self.w2 = torch.zeros(k, p, c, **f32)
            idx = torch.full((k, p), self.zero, dtype=torch.long)
            pos = torch.zeros(h_total + 2, dtype=torch.long)
            off = 0
            for i, (l, h) in enumerate(zip(lins, self.hidden)):
                self.w2[i, :h] = l[1].weight.detach().t()
                self.w2[i, p - 1] = l[1].bias.detach()
                idx[i, :h] = torch.arange(off, off + h)
                idx[i, p - 1] = self.one
                pos[off:off + h] = i * p + torch.arange(h)
                off += h
            self.idx, self.pos = idx.flatten().to(device), pos.to(device)
            self.col_model = torch.repeat_interleave(torch.arange(k), torch.tensor(self.hidden)).to(device)
        else:
            self.w2 = torch.zeros(d + 1, c * k, **f32)
            self.w2[:d] = torch.cat([l[0].weight.detach().t() for l in lins], 1)
            self.w2[d] = torch.cat([l[0].bias.detach() for l in lins])
        self.batch = 1
        self.set_lr_scale(torch.ones(k, **f32))

    def set_lr_scale(self, scale: torch.Tensor, batch: Optional[int] = None) -> None:
        """Per-model rates: lr x schedule factor / batch size (the mean's 1/B folded in)."""
        self.batch = batch or self.batch
        lrs = self.base_lr * scale / self.batch
        if self.hidden:
            self.lr2 = lrs.view(-1, 1, 1)
            self.lr1 = torch.cat([lrs[self.col_model], lrs.new_zeros(2)])  # the constants never learn
        else:
            self.lr2 = lrs.repeat_interleave(self.classes)[None, :]

    def model_weights(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Model i's (w1 as D x h, b1, w2 as h x C, b2); w1 and b1 are empty for a perceptron."""
        c = self.classes
        if not self.hidden:
            return torch.empty(0), torch.empty(0), self.w2[:-1, i * c:(i + 1) * c], self.w2[-1, i * c:(i + 1) * c]
        off, h = sum(self.hidden[:i]), self.hidden[i]
        return self.w1[:-1, off:off + h], self.w1[-1, off:off + h], self.w2[i, :h], self.w2[i, -1]

    def _out(self, h: torch.Tensor) -> torch.Tensor:
        """(K, B, C) scores from hidden activations (B, H+2)."""
        hp = h.index_select(1, self.idx).view(len(h), self.k, -1).transpose(0, 1)  # (K, B, P)
        return torch.bmm(hp, self.w2), hp

    def logits(self, x1: torch.Tensor) -> torch.Tensor:
        """(N, K, C) scores for inputs that carry the ones column."""
        if not self.hidden:
            return torch.mm(x1, self.w2).view(len(x1), self.k, self.classes)
        h = torch.mm(x1, self.w1).clamp_min_(0)
        torch.nan_to_num_(h, 0.0, 0.0, 0.0)
        return self._out(h)[0].transpose(0, 1)

    def run_epoch(self, xs: torch.Tensor, ts: torch.Tensor, zbuf: torch.Tensor, bs: int, scale: torch.Tensor,
                  chunk_rows: int = 128, order: Optional[torch.Tensor] = None) -> None:
        """SGD over an epoch of pre-shuffled rows, with the first layer's updates deferred per chunk.

        Within a chunk of about `chunk_rows` images, w1 is not touched: the chunk's forward
        products come from one (rows x D) @ (D x H) product at its start, corrected for the
        updates of the chunk's earlier batches through their low-rank form
        x_s @ w1_now = x_s @ w1_start - (x_s @ X_prev^T) @ G_prev, and the chunk's updates are
        applied at its end in one (D x rows) @ (rows x H) product. Same arithmetic as one
        step at a time, reordered; w1 is read and written once per chunk instead of three
        times per batch, which is what bounds small batches.
        """
        stop = len(zbuf)
        k, c = self.k, self.classes
        if order is not None:
            # Gather each chunk's rows when it starts (hot in cache for its products) rather than
            # copying the whole shuffled epoch first: the same bytes, read once instead of twice.
            xs_all, ts_all = xs, ts
        if not self.hidden:
            if order is not None:
                xs, ts = xs_all[order[:stop]], ts_all[order[:stop]]
            for i in range(0, stop, bs):
                j = min(i + bs, stop)
                if j - i != bs:
                    self.set_lr_scale(scale, j - i)
                x, z = xs[i:j], zbuf[i:j]
                torch.mm(x, self.w2, out=z)
                g = softmax_last(z.view(j - i, k, c)).sub_(ts[i:j]).view(j - i, -1)
                torch.nan_to_num_(g, 0.0, 0.0, 0.0)
                self.w2.addcmul_(torch.mm(x.t(), g), self.lr2, value=-1.0)
            return
        k_steps = max(1, chunk_rows // bs)
        gbuf = torch.empty(k_steps * bs, self.w1.shape[1], device=xs.device)
        w1, w2, lr1, lr2, idx, pos = self.w1, self.w2, self.lr1, self.lr2, self.idx, self.pos
        mm, bmm, addmm, thr, nan = torch.mm, torch.bmm, torch.addmm, torch.ops.aten.threshold_backward, torch.nan_to_num_
        for c0 in range(0, stop, k_steps * bs):
            c1 = min(c0 + k_steps * bs, stop)
            if order is not None:
                xs = xs_all.index_select(0, order[c0:c1])
                ts = ts_all.index_select(0, order[c0:c1])
                xc, base = xs, c0
            else:
                xc, base = xs[c0:c1], 0
            pc = mm(xc, w1)  # forward products of the whole chunk at the chunk's starting w1
            for i in range(c0, c1, bs):
                j = min(i + bs, c1)
                b = j - i
                if b != bs:
                    self.set_lr_scale(scale, b)
                    lr1, lr2 = self.lr1, self.lr2
                m = i - c0
                if m:
                    hp = addmm(pc[m:m + b], mm(xc[m:m + b], xc[:m].t()), gbuf[:m], alpha=-1.0)
                else:
                    hp = pc[:b]
                h = hp.clamp_min(0)
                nan(h, 0.0, 0.0, 0.0)  # a diverged model must not leak into the others
                hk = h.index_select(1, idx).view(b, k, -1).transpose(0, 1)  # (K, B, P)
                zk = bmm(hk, w2)  # (K, B, C)
                z = zbuf[i:j].view(b, k, c)
                z.copy_(zk.transpose(0, 1))
                g = softmax_last(z).sub_(ts[i - base:j - base])  # (B, K, C): d(sum loss)/dz
                nan(g, 0.0, 0.0, 0.0)
                gk = g.transpose(0, 1)  # (K, B, C)
                ghk = bmm(gk, w2.transpose(1, 2))  # (K, B, P), through w2 before it changes
                gh = thr(ghk.transpose(0, 1).reshape(b, -1).index_select(1, pos), hp, 0.0)
                w2.addcmul_(bmm(hk.transpose(1, 2), gk), lr2, value=-1.0)
                torch.mul(gh, lr1, out=gbuf[m:m + b])
            w1.addmm_(xc.t(), gbuf[: c1 - c0], alpha=-1.0)  # the chunk's deferred first-layer updates

    def finite(self) -> torch.Tensor:
        """(K,) True for each model whose parameters are all finite."""
        if not self.hidden:
            return torch.isfinite(self.w2).all(0).view(self.k, self.classes).all(1)
        ok = torch.isfinite(self.w2).flatten(1).all(1)
        bad1 = ~torch.isfinite(self.w1[:, : self.one]).all(0)
        return ok & ~torch.zeros(self.k, dtype=torch.bool, device=ok.device).index_put_((self.col_model,), bad1, accumulate=True)

    def freeze(self, i: int) -> None:
        """Silence model i (diverged): zero its parameters and learning rate."""
        self.base_lr[i] = 0.0
        self.set_lr_scale(torch.ones_like(self.base_lr))
        c = self.classes
        if not self.hidden:
            self.w2[:, i * c:(i + 1) * c] = 0
            return
        self.w2[i] = 0
        off, h = sum(self.hidden[:i]), self.hidden[i]
        self.w1[:, off:off + h] = 0


def _evaluate(st, x: torch.Tensor, y: torch.Tensor, smoothing: float, chunk: int = 1000):
    """Per-model (loss, accuracy) on a normalized split, as evaluate_split computes them."""
    loss = torch.zeros(st.k, dtype=torch.float64, device=x.device)
    correct = torch.zeros(st.k, dtype=torch.long, device=x.device)
    c = st.classes
    for i in range(0, len(x), chunk):
        z = st.logits(x[i:i + chunk]).float()
        yb = y[i:i + chunk]
        logp = log_softmax_last(z)
        target = torch.full((len(yb), 1, c), smoothing / c, device=x.device)
        target.scatter_add_(2, yb.view(-1, 1, 1), torch.full((len(yb), 1, 1), 1.0 - smoothing, device=x.device))
        loss += -(logp * target).sum(-1).sum(0).double()
        correct += (z.argmax(-1) == yb[:, None]).sum(0)
    n = max(len(y), 1)
    return (loss / n).tolist(), (correct.double() / n).tolist()


def _stack(cfgs: list[ExperimentConfig], splits: Splits, device: torch.device):
    """The cohort's models stacked (the plain layout when no config has momentum or weight decay),
    and each one's failure so far: a model over its parameter cap is frozen, as a one-by-one run refuses it."""
    models = []
    for c in cfgs:
        torch.manual_seed(c.train.seed)  # the same initial weights as a one-by-one run
        models.append(build_model(c.model.name, c.model.options, splits.shape, len(splits.classes)))
    plain = all(c.optim.momentum == 0 and c.optim.weight_decay == 0 for c in cfgs)
    if plain:
        st = PlainStackedMLP(models, [c.optim.lr for c in cfgs], device)
    else:
        st = StackedMLP(models, [c.optim.lr for c in cfgs], [c.optim.momentum for c in cfgs],
                        [c.optim.weight_decay for c in cfgs], device)
    failed: list[Optional[str]] = [None] * len(cfgs)
    for k, (c, m) in enumerate(zip(cfgs, models)):
        try:
            check_max_params(c, trainable_params(m))  # the same cap as a one-by-one run
        except ImgclfError as e:
            failed[k] = str(e)
            st.freeze(k)
    return st, plain, failed


def _tensors(base, splits: Splits, device: torch.device, plain: bool, classes: int) -> dict:
    """The splits normalized once (float32, flattened; the plain layout adds a ones column) and the
    smoothed one-hot targets of the training split."""
    tf = Transform(base.data.augment, base.data.normalization, splits.mean, splits.std, splits.shape)

    def prep(x):  # in chunks: images left on disk (data/on_disk.py) are read a chunk at a time
        x = torch.cat([tf.eval(x[i : i + 8192].to(device)).flatten(1) for i in range(0, len(x), 8192)])
        return torch.cat([x, x.new_ones(len(x), 1)], 1) if plain else x

    ytr = splits.train.y.to(device)
    eps = base.train.label_smoothing
    onehot = torch.full((len(ytr), 1, classes), eps / classes, device=device)
    onehot.scatter_add_(2, ytr.view(-1, 1, 1), torch.full((len(ytr), 1, 1), 1.0 - eps, device=device))
    has_val = splits.val is not None
    return {"x": prep(splits.train.x), "y": ytr, "onehot": onehot,
            "xva": prep(splits.val.x) if has_val else None, "yva": splits.val.y.to(device) if has_val else None}


def _epoch(st, plain: bool, d: dict, perm: torch.Tensor, scale: torch.Tensor, bs: int, stop: int):
    """One epoch of every stacked model in the order `perm`: each one's summed loss and correct count."""
    c = st.classes
    if plain:
        st.set_lr_scale(scale, bs)
        zbuf = torch.empty(stop, st.k * c, device=perm.device)  # every step's logits, for the epoch's metrics
        st.run_epoch(d["x"], d["onehot"], zbuf, bs, scale, order=perm)
        ys = d["y"][perm]
        z = zbuf.view(stop, st.k, c)
        loss_sum = -(log_softmax_last(z) * d["onehot"][perm[:stop]]).sum(-1).sum(0)
        return loss_sum, (z.argmax(-1) == ys[:stop, None]).sum(0)
    xs, ts, ys = d["x"][perm], d["onehot"][perm], d["y"][perm]  # one gather per epoch, views per step
    st.set_lr_scale(scale)
    loss_sum = torch.zeros(st.k, device=perm.device)
    correct = torch.zeros(st.k, dtype=torch.long, device=perm.device)
    for i in range(0, stop, bs):
        j = min(i + bs, stop)
        loss, z = st.step(xs[i:j], ts[i:j])
        loss_sum += loss
        correct += (z.argmax(-1) == ys[i:j, None]).sum(0)
    return loss_sum, correct


def train_cohort(cfgs: list[ExperimentConfig], splits: Splits, device: torch.device,
                 on_epoch: Callable[[int, list[Optional[dict]]], None] = lambda e, r: None,
                 log: Callable[[str], None] = lambda m: None) -> tuple[list[list[dict]], list[Optional[str]], StackedMLP]:
    """Train configs of one cohort (same sweeps.cohorts.cohort_key) together to the longest epoch count.

    Returns each config's per-epoch history (up to its own epochs), each one's failure reason
    (None if fine) and the stacked parameters.
    """
    base = cfgs[0]
    epochs = [c.train.epochs for c in cfgs]
    st, plain, failed = _stack(cfgs, splits, device)
    d = _tensors(base, splits, device, plain, st.classes)
    bs, n = base.train.batch_size, len(d["y"])
    stop = kept_count(n, bs)  # as the one-by-one loader
    histories: list[list[dict]] = [[] for _ in cfgs]
    elapsed = 0.0
    for epoch in range(max(epochs)):
        t0 = time.perf_counter()
        scale = torch.tensor([lr_at(epoch, c_.train.epochs, c_.schedule, c_.optim.lr) / c_.optim.lr for c_ in cfgs],
                             device=device)
        g = torch.Generator().manual_seed(epoch_seed(base.train.seed, epoch))
        perm = torch.randperm(n, generator=g).to(device)
        with torch.inference_mode():
            loss_sum, correct = _epoch(st, plain, d, perm, scale, bs, stop)
            ok = st.finite() & torch.isfinite(loss_sum)
            eps = base.train.label_smoothing
            vl, va = _evaluate(st, d["xva"], d["yva"], eps) if d["xva"] is not None else ([None] * st.k, [None] * st.k)
        seconds = time.perf_counter() - t0
        elapsed += seconds
        lr_now = (st.base_lr * scale).tolist()
        records: list[Optional[dict]] = []
        for k in range(st.k):
            if failed[k] is not None or epoch >= epochs[k]:
                records.append(None)
                continue
            if not bool(ok[k]):
                failed[k] = (f"training diverged: the loss is {float(loss_sum[k])} in epoch {epoch + 1}; "
                             f"lower optim.lr (now {cfgs[k].optim.lr:g})")
                st.freeze(k)
                records.append(None)
                continue
            rec = {"epoch": epoch + 1, "train_loss": float(loss_sum[k]) / stop, "train_acc": int(correct[k]) / stop,
                   "lr": lr_now[k], "val_loss": vl[k], "val_acc": va[k], "seconds": seconds / st.k,
                   "elapsed": elapsed / st.k}
            histories[k].append(rec)
            records.append(rec)
        on_epoch(epoch + 1, records)
        if all(f is not None or epoch + 1 >= e for f, e in zip(failed, epochs)):
            break
    return histories, failed, st
