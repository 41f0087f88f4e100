"""Read an offline wandb run's `run-<id>.wandb` log with wandb's own record type.

wandb 0.31 keeps its log reader in the wandb-core binary, so the tests walk the log's framing here (a
7-byte file header, then 32 KiB blocks of records, each with a 7-byte crc/length/type header and parts
that continue across blocks) and let wandb's protobuf `Record` parse every record.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

from wandb.proto import wandb_internal_pb2

BLOCK, HEADER = 32 * 1024, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> Iterator[wandb_internal_pb2.Record]:
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a wandb run log"
    pos, parts = HEADER, b""
    while pos + HEADER <= len(data):
        if BLOCK - pos % BLOCK < HEADER:  # too little room left for a header: the block is padded
            pos += BLOCK - pos % BLOCK
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        payload = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind == FULL:
            yield wandb_internal_pb2.Record.FromString(payload)
        elif kind == FIRST:
            parts = payload
        elif kind == MIDDLE:
            parts += payload
        elif kind == LAST:
            yield wandb_internal_pb2.Record.FromString(parts + payload)
        elif kind == 0 and length == 0:  # zero fill at the end of a block
            pos += BLOCK - pos % BLOCK


def history(path: Path) -> list[dict]:
    """Every wandb.log() call of the run, as {key: value}."""
    rows = []
    for rec in records(path):
        if rec.WhichOneof("record_type") == "history":
            rows.append(
                {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in rec.history.item}
            )
    return rows


def run_info(path: Path) -> dict:
    """The run's id and group, and its config as {key: value} (the run record's and later updates)."""
    info, config = None, {}
    for rec in records(path):
        kind = rec.WhichOneof("record_type")
        if kind == "run" and info is None:
            info = {"id": rec.run.run_id, "group": rec.run.run_group}
            config.update({item.key: json.loads(item.value_json) for item in rec.run.config.update})
        elif kind == "config":
            config.update({item.key: json.loads(item.value_json) for item in rec.config.update})
    assert info is not None, f"no run record in {path}"
    return {**info, "config": config}


def artifacts(path: Path) -> list[dict]:
    """The artifacts the run logged (kept in the log until `wandb sync` uploads them)."""
    return [
        {"type": rec.artifact.type, "name": rec.artifact.name, "aliases": list(rec.artifact.aliases)}
        for rec in records(path)
        if rec.WhichOneof("record_type") == "artifact"
    ]
