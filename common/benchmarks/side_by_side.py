#!/usr/bin/env python3
"""Side-by-side benchmark (not a test): ddlm_train against upstream word_language_model.

    bazel run //common/benchmarks:side_by_side -- --rounds=3

Runs upstream's main.py (from ../shared/reference/word_language_model, never copied into
this repository) with the torch of /opt/ddlm/torch-2.11.0 (./setup.sh --cuda makes it a
working `import torch`), and ddlm_train from this build, on the same machine in
interleaved rounds (upstream, ddlm, upstream, ddlm, ...), for each model. Both print the
same log lines every --log_interval batches ("ms/batch", the training loss); each run is
stopped once it has printed the line of batch --batches, and its figure is the mean
ms/batch over the whole intervals after the first (the first holds the warm-up, and
upstream divides it by one batch too few). So both sides are timed alike: wall time per
batch over the same batches, including the per-step host read of the loss that upstream
makes (free on a CPU). Nothing is downloaded; WikiText-2 is read from ../shared/data.

Prints each round, then a table: median ms/batch and tokens/s of each side, the ratio
upstream / ddlm with its range over the rounds, the training loss at the last batch (the
two runs draw different dropout masks, so the losses agree to about 1%, not exactly), and
the machine's float32 matmul peak (from ddlm's train_throughput, when given), as the
ceiling. --bf16 adds ddlm_train --precision=bf16 to every round, against ddlm's FP32.
--epoch also times one whole epoch of each side (training and validation), once; with
--launch, also one epoch of `ddlm launch` in the layout it picks for this machine (the
README's main job: coordinator, worker(s), TLS and tokens; the figure is the epoch time
its log prints, and the whole command's wall time is shown beside it).
"""

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

# model name -> (upstream main.py flags, ddlm_train flags). Upstream's defaults are
# ddlm_train's defaults; the rest are the same settings in each side's spelling.
MODELS = {
    "lstm": ([], []),
    "lstm_650": (["--emsize", "650", "--nhid", "650", "--dropout", "0.5"],
                 ["--emsize=650", "--nhid=650", "--dropout=0.5"]),
    "transformer": (["--model", "Transformer", "--lr", "5"], ["--model=Transformer", "--lr=5"]),
}

LINE = re.compile(r"\|\s*epoch\s+(\d+)\s*\|\s*(\d+)/\s*(\d+) batches.*?ms/batch\s+([\d.]+)"
                  r"\s*\|\s*loss\s+([\d.]+)")
END_OF_EPOCH = re.compile(r"end of epoch\s+1\s*\|\s*time:\s*([\d.]+)s.*?valid ppl\s+([\d.]+)")


def repo_root():
    return os.environ.get("BUILD_WORKSPACE_DIRECTORY") or os.getcwd()


def find_ddlm_train(args):
    if args.ddlm_train:
        return os.path.abspath(args.ddlm_train)  # The runs start in a scratch directory.
    here = os.path.dirname(os.path.abspath(__file__))
    for candidate in [os.path.join(here, "..", "..", "worker", "ddlm_train"),
                      os.path.join(repo_root(), "bazel-bin", "worker", "ddlm_train")]:
        if os.access(candidate, os.X_OK):
            return os.path.abspath(candidate)
    sys.exit("side_by_side: ddlm_train not found (bazel build //worker:ddlm_train, or --ddlm_train)")


def find_ddlm(args):
    if args.ddlm:
        return os.path.abspath(args.ddlm)
    candidate = os.path.join(repo_root(), "bazel-bin", "coordinator", "cli", "ddlm")
    if os.access(candidate, os.X_OK):
        return os.path.abspath(candidate)
    sys.exit("side_by_side: the ddlm command line not found (bazel build //coordinator:ddlm, or --ddlm)")


# model name -> the JobSpec text of the same model, for `ddlm launch` (MODELS' settings).
LAUNCH_SPECS = {
    "lstm": "model { type: LSTM }",
    "lstm_650": "model { type: LSTM emsize: 650 nhid: 650 dropout: 0.5 }",
    "transformer": "model { type: TRANSFORMER } optimizer { lr: 5 }",
}


def launch_command(args, ddlm, model, data, work):
    """`ddlm launch` of one epoch of `model`, with no --workers: the layout it picks."""
    config = os.path.join(work, "launch_%s.textproto" % model)
    with open(config, "w") as f:
        f.write('name: "side_by_side_%s"\ndata { path: "%s" }\n%s\n'
                'schedule { epochs: 1 log_interval: 200 }\ncheckpoint { path: "%s" }\n'
                % (model, data, LAUNCH_SPECS[model], os.path.join(work, "launch.pt")))
    state = os.path.join(work, "launch_state_%s" % model)
    return [ddlm, "launch", "--config=" + config, "--state_dir=" + state]


def run(cmd, cwd, batches, log_interval, whole_epoch, timeout_s, to_exit=False):
    """Runs one side; returns (list of (batch, ms/batch, loss) lines, epoch seconds, valid ppl).

    With `to_exit`, the process runs until it exits by itself (`ddlm launch` stops its
    coordinator and workers on the way out), and the tuple has its wall seconds too."""
    lines = []
    epoch_s = valid_ppl = None
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    deadline = time.monotonic() + timeout_s
    output = []
    try:
        for raw in proc.stdout:
            output.append(raw)
            m = LINE.search(raw)
            if m:
                lines.append((int(m.group(2)), float(m.group(4)), float(m.group(5))))
                if not whole_epoch and int(m.group(2)) >= batches:
                    break
            e = END_OF_EPOCH.search(raw)
            if e:
                epoch_s, valid_ppl = float(e.group(1)), float(e.group(2))
                if not to_exit:
                    break
            if time.monotonic() > deadline:
                break
        if to_exit:
            proc.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        # SIGTERM first, so that `ddlm launch` stops the processes it started.
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM if to_exit else signal.SIGKILL)
                proc.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    wall_s = time.monotonic() - started
    want = batches if not whole_epoch else None
    if (want is not None and (not lines or lines[-1][0] < want)) or (whole_epoch and epoch_s is None):
        sys.stderr.write("".join(output[-30:]))
        raise RuntimeError("%s stopped before its figures (see its output above)" % cmd[0])
    if to_exit:
        if proc.returncode != 0:
            sys.stderr.write("".join(output[-30:]))
            raise RuntimeError("%s exited with status %d" % (cmd[0], proc.returncode))
        return lines, epoch_s, valid_ppl, wall_s
    return lines, epoch_s, valid_ppl


def mean_ms(lines, log_interval):
    # Whole intervals after the first: batches log_interval+1 .. the last line's batch.
    later = [ms for (b, ms, _) in lines if b > log_interval]
    if not later:
        raise RuntimeError("no interval after the first: raise --batches")
    return statistics.mean(later)


def print_rounds_table(args, results, sides, ratio, tokens_per_batch):
    print()
    header = ("| model | upstream ms/batch | ddlm ms/batch | upstream tok/s | ddlm tok/s | "
              "upstream / ddlm, median (range) | loss at batch %d, upstream / ddlm |" % args.batches)
    rule = "|---|---|---|---|---|---|---|"
    if args.bf16:
        header += " ddlm bf16 ms/batch | ddlm fp32 / bf16 | loss, bf16 |"
        rule += "---|---|---|"
    print(header)
    print(rule)
    for model, by_side in results.items():
        ups, up_loss = by_side["upstream"]
        dds, dd_loss = by_side["ddlm"]
        up, dd = statistics.median(ups), statistics.median(dds)
        line = "| %s | %.1f | %.1f | %.0f | %.0f | %s | %.2f / %.2f |" % (
            model, up, dd, tokens_per_batch * 1000 / up, tokens_per_batch * 1000 / dd,
            ratio(ups, dds), statistics.median(up_loss), statistics.median(dd_loss))
        if args.bf16:
            bfs, bf_loss = by_side["ddlm bf16"]
            line += " %.1f | %s | %.2f |" % (statistics.median(bfs), ratio(dds, bfs),
                                             statistics.median(bf_loss))
        print(line)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=3, help="0: none (with --epoch: the epochs only)")
    p.add_argument("--models", default="lstm,lstm_650,transformer")
    p.add_argument("--batches", type=int, default=100, help="stop each run after this batch")
    p.add_argument("--log_interval", type=int, default=25)
    p.add_argument("--data", default=None, help="default: ../shared/data/wikitext-2")
    p.add_argument("--upstream", default=None,
                   help="main.py (default: ../shared/reference/word_language_model/main.py)")
    p.add_argument("--python", default="/opt/ddlm/torch-2.11.0/bin/python3")
    p.add_argument("--ddlm_train", default=None)
    p.add_argument("--ddlm_flags", default="", help="extra ddlm_train flags, e.g. --precision=bf16")
    p.add_argument("--peak_gflops", type=float, default=0,
                   help="the machine's matmul peak, to print beside the table")
    p.add_argument("--bf16", action="store_true",
                   help="also run ddlm_train --precision=bf16 in every round (its own column)")
    p.add_argument("--epoch", action="store_true",
                   help="also time one whole epoch of each side, once (minutes)")
    p.add_argument("--launch", action="store_true",
                   help="with --epoch: also one epoch of `ddlm launch` in the layout it picks")
    p.add_argument("--ddlm", default=None, help="the ddlm command line (for --launch)")
    p.add_argument("--timeout_s", type=int, default=3600)
    args = p.parse_args()

    if args.rounds < 0:
        sys.exit("side_by_side: --rounds must be >= 0, got %d" % args.rounds)
    if args.rounds > 0 and args.batches < 2 * args.log_interval:
        sys.exit("side_by_side: --batches (%d) must be at least twice --log_interval (%d): the "
                 "figure is the mean over the intervals after the first" % (args.batches,
                                                                           args.log_interval))
    if args.log_interval < 1:
        sys.exit("side_by_side: --log_interval must be >= 1")
    root = repo_root()
    shared = os.path.join(root, "..", "shared")
    data = os.path.abspath(args.data or os.path.join(shared, "data", "wikitext-2"))
    upstream = os.path.abspath(args.upstream or os.path.join(
        shared, "reference", "word_language_model", "main.py"))
    if args.launch and not args.epoch:
        sys.exit("side_by_side: --launch times an epoch: give --epoch too")
    ddlm_train = find_ddlm_train(args)
    ddlm = find_ddlm(args) if args.launch else None
    for path, what in [(data, "the corpus"), (upstream, "upstream's main.py"), (args.python, "python")]:
        if not os.path.exists(path):
            sys.exit("side_by_side: %s not found at %s" % (what, path))
    check = subprocess.run([args.python, "-c", "import torch; print(torch.__version__, torch.get_num_threads())"],
                           capture_output=True, text=True)
    if check.returncode != 0:
        sys.exit("side_by_side: %s cannot import torch (run ./setup.sh --cuda, which installs the "
                 "whole wheel):\n%s" % (args.python, check.stderr[-2000:]))
    torch_version, torch_threads = check.stdout.split()
    print("upstream: %s with torch %s (%s threads); ddlm: %s" % (upstream, torch_version,
                                                                 torch_threads, ddlm_train))
    print("data: %s; batches %d, log interval %d, rounds %d" % (data, args.batches,
                                                                args.log_interval, args.rounds))
    work = tempfile.mkdtemp(prefix="side_by_side.")
    tokens_per_batch = 20 * 35
    sides = ["upstream", "ddlm"] + (["ddlm bf16"] if args.bf16 else [])
    results = {}  # model -> side -> (ms/batch per round, loss per round)
    epoch = {}
    try:
        for model in args.models.split(","):
            if model not in MODELS:
                sys.exit("side_by_side: unknown model %r (known: %s)" % (model, ", ".join(MODELS)))
            up_flags, dd_flags = MODELS[model]
            def command(side, log_interval):
                if side == "upstream":
                    return [args.python, "-u", upstream, "--data", data, "--epochs", "1",
                            "--log-interval", str(log_interval), "--save",
                            os.path.join(work, "upstream.pt")] + up_flags
                extra = ["--precision=bf16"] if side == "ddlm bf16" else []
                return ([ddlm_train, "--data=" + data, "--epochs=1",
                         "--log_interval=%d" % log_interval, "--save=" + os.path.join(work, "ddlm.pt")]
                        + dd_flags + args.ddlm_flags.split() + extra)
            results[model] = {side: ([], []) for side in sides}
            for r in range(args.rounds):
                figures = []
                for side in sides:  # Interleaved: each round runs every side once.
                    lines, _, _ = run(command(side, args.log_interval), work, args.batches,
                                      args.log_interval, False, args.timeout_s)
                    results[model][side][0].append(mean_ms(lines, args.log_interval))
                    results[model][side][1].append(lines[-1][2])
                    figures.append("%s %7.1f ms/batch" % (side, results[model][side][0][-1]))
                up, dd = results[model]["upstream"][0][-1], results[model]["ddlm"][0][-1]
                print("%-12s round %d: %s; upstream / ddlm %.2fx" % (model, r + 1, ", ".join(figures),
                                                                  up / dd), flush=True)
            if args.epoch:
                _, up_s, up_ppl = run(command("upstream", 200), work, 0, 200, True, args.timeout_s)
                _, dd_s, dd_ppl = run(command("ddlm", 200), work, 0, 200, True, args.timeout_s)
                la = None
                if args.launch:
                    _, la_s, la_ppl, la_wall = run(launch_command(args, ddlm, model, data, work), work,
                                                   0, 200, True, args.timeout_s, to_exit=True)
                    la = (la_s, la_ppl, la_wall)
                epoch[model] = (up_s, up_ppl, dd_s, dd_ppl, la)
                print("%-12s epoch: upstream %.1f s (valid ppl %.2f), ddlm_train %.1f s (valid ppl %.2f)%s"
                      % (model, up_s, up_ppl, dd_s, dd_ppl,
                         "" if la is None else ", ddlm launch %.1f s (valid ppl %.2f; the command %.1f s)" % la),
                      flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def ratio(a, b):
        r = [x / y for x, y in zip(a, b)]
        return "%.2fx (%.2f-%.2f)" % (statistics.median(r), min(r), max(r))

    if args.rounds > 0:
        print_rounds_table(args, results, sides, ratio, tokens_per_batch)
    if epoch:
        print()
        print("| model | upstream epoch s | ddlm_train epoch s | upstream / ddlm_train | "
              "valid ppl, upstream / ddlm_train |" + (" ddlm launch epoch s (command s) | upstream / "
                                                      "launch | launch valid ppl |" if args.launch else ""))
        print("|---|---|---|---|---|" + ("---|---|---|" if args.launch else ""))
        for model, (up_s, up_ppl, dd_s, dd_ppl, la) in epoch.items():
            row = "| %s | %.1f | %.1f | %.2fx | %.2f / %.2f |" % (model, up_s, dd_s, up_s / dd_s,
                                                                 up_ppl, dd_ppl)
            if la is not None:
                row += " %.1f (%.1f) | %.2fx | %.2f |" % (la[0], la[2], up_s / la[0], la[1])
            print(row)
    if args.peak_gflops > 0:
        print("\nmatmul peak (float32, this machine): %.1f GFLOP/s" % args.peak_gflops)


if __name__ == "__main__":
    main()
