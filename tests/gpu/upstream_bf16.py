"""Runs upstream word_language_model's main.py with its models' forward passes in BF16.

    python3 tests/gpu/upstream_bf16.py UPSTREAM_DIR [main.py's arguments...]

Upstream has no precision flag. This wrapper (the GPU check's BF16 baseline,
tests/gpu/run.sh bench) imports upstream's `model` module from UPSTREAM_DIR, wraps the
`forward` of every nn.Module subclass defined there so that each call runs inside
`torch.autocast(device_type, dtype=torch.bfloat16)`, and then runs main.py unchanged.
The loss's backward pass and the weight update run outside autocast, as PyTorch
recommends (float32 weights and gradients; autocast's weight casts are made afresh in
each forward pass). The device type is 'cuda' when torch sees a GPU, else 'cpu'.

On a CPU whose oneDNN has no bfloat16 LSTM (no AVX-512: it throws "could not create a
primitive descriptor"), torch's recurrent layers run in float32 inside the BF16 forward
pass, as ddlm's own CPU fallback does (common/training/autocast.h). That is for a CPU
dry run of the check only.
"""

import functools
import os
import runpy
import sys

import torch
from torch import nn


def autocast_forward(cls, device_type):
    """Makes cls.forward run under a BF16 autocast; returns whether it did."""
    forward = cls.forward
    if getattr(forward, "_bf16_autocast", False):  # Inherited from a class already done.
        return False

    @functools.wraps(forward)
    def bf16_forward(self, *args, **kwargs):
        with torch.autocast(device_type=device_type, dtype=torch.bfloat16):
            return forward(self, *args, **kwargs)

    bf16_forward._bf16_autocast = True
    cls.forward = bf16_forward
    return True


def cpu_bf16_rnn_works():
    """Whether torch's LSTM runs under a CPU BF16 autocast here (in training mode)."""
    try:
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
            state = torch.zeros(1, 1, 8)
            nn.LSTM(8, 8)(torch.zeros(2, 1, 8), (state, state))
        return True
    except RuntimeError:
        return False


def rnns_in_float32():
    """Runs torch's recurrent layers (nn.RNN, nn.LSTM, nn.GRU) with autocast off."""
    for cls in (nn.RNN, nn.LSTM, nn.GRU):
        forward = cls.forward

        def fp32_forward(self, *args, _forward=forward, **kwargs):
            with torch.autocast(device_type="cpu", enabled=False):
                return _forward(self, *args, **kwargs)

        cls.forward = fp32_forward


def main(argv):
    if len(argv) < 2 or not os.path.isfile(os.path.join(argv[1], "main.py")):
        sys.exit("usage: upstream_bf16.py UPSTREAM_DIR [main.py arguments...] (UPSTREAM_DIR holds main.py)")
    upstream = os.path.abspath(argv[1])
    sys.path.insert(0, upstream)
    import model as upstream_model  # Upstream's model.py; main.py's own import reuses it.

    device_type = "cuda" if torch.cuda.is_available() else "cpu"
    if device_type == "cpu" and not cpu_bf16_rnn_works():
        rnns_in_float32()
        print("upstream_bf16: this CPU has no bfloat16 LSTM: recurrent layers run in float32", flush=True)
    # Subclasses first would wrap their inherited forward twice; parents first, then the
    # children that inherit a wrapped forward are skipped.
    classes = [c for c in vars(upstream_model).values()
               if isinstance(c, type) and issubclass(c, nn.Module) and c.__module__ == upstream_model.__name__]
    classes.sort(key=lambda c: len(c.__mro__))
    wrapped = [c.__name__ for c in classes if autocast_forward(c, device_type)]
    if not wrapped:
        sys.exit(f"upstream_bf16.py: no nn.Module subclass in {upstream_model.__file__}")
    print(f"upstream_bf16: forward of {', '.join(wrapped)} under torch.autocast('{device_type}', bfloat16)",
          flush=True)

    sys.argv = [os.path.join(upstream, "main.py")] + argv[2:]
    runpy.run_path(sys.argv[0], run_name="__main__")


if __name__ == "__main__":
    main(sys.argv)
