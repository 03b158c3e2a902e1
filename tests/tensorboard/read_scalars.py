"""Reads a ddlm TensorBoard run back with the tensorboard package's own readers.

    read_scalars.py RUN_DIR

Every record of every event file in RUN_DIR is read with TensorBoard's record reader,
which checks both masked CRC-32Cs (a bad one raises DataLossError and this exits 1), and
parsed as a TensorBoard Event; then EventAccumulator, what TensorBoard's server uses,
loads the run. Prints one line per scalar, "TAG STEP VALUE", in tag and step order, after
a line "records N".
"""
import os
import sys

from tensorboard.backend.event_processing import event_accumulator
from tensorboard.compat.proto import event_pb2
from tensorboard.compat.tensorflow_stub import errors
from tensorboard.compat.tensorflow_stub import pywrap_tensorflow


def count_records(run_dir):
    records = 0
    for name in sorted(os.listdir(run_dir)):
        if "tfevents" not in name:
            continue
        reader = pywrap_tensorflow.PyRecordReader_New(os.path.join(run_dir, name))
        while True:
            try:
                reader.GetNext()
            except errors.OutOfRangeError:
                break
            event = event_pb2.Event()
            event.ParseFromString(reader.record())
            records += 1
    return records


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: read_scalars.py RUN_DIR")
    run_dir = sys.argv[1]
    print("records", count_records(run_dir))
    acc = event_accumulator.EventAccumulator(
        run_dir, size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    for tag in sorted(acc.Tags()["scalars"]):
        for s in acc.Scalars(tag):
            print(tag, s.step, repr(s.value))


if __name__ == "__main__":
    main()
