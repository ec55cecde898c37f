"""Writing ``speecheq infer``'s records: JSON lines (one object a record) or TSV (one row a record).

The TSV has a fixed header (each task's columns, speecheq.tasks), with a ``p_<category>`` column per category,
so that files from one model can be concatenated and read by column position.
"""

from __future__ import annotations

import json
import sys
from typing import Iterable, List, Optional, Sequence, TextIO

from speecheq.errors import SpeechEQError
from speecheq.io import Pathlike
from speecheq.tasks import readout_order

FORMATS = ("jsonl", "tsv")


def tsv_header(categories: Sequence[str]) -> List[str]:
    tasks = [c for t in readout_order() for c in t.tsv_columns(categories)]
    return ["path", "id", "segment", "start", "end", "duration", *tasks, "warnings", "error"]


def tsv_row(rec: dict, categories: Sequence[str]) -> str:
    def cell(v):
        if v is None:
            return "-"
        return str(v).replace("\t", " ").replace("\n", " ")

    return "\t".join(
        cell(v)
        for v in [
            rec["path"],
            rec.get("id"),
            "all" if rec.get("summary") else rec.get("segment"),
            rec.get("start"),
            rec.get("end"),
            rec.get("duration"),
            *[c for t in readout_order() for c in t.tsv_cells(rec, categories)],
            "; ".join(rec["warnings"]) if rec.get("warnings") else None,
            rec.get("error"),
        ]
    )


def output_format(output: Optional[Pathlike], fmt: Optional[str]) -> str:
    if fmt:
        if fmt not in FORMATS:
            raise SpeechEQError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
        return fmt
    return "tsv" if output is not None and str(output).endswith(".tsv") else "jsonl"


def write_records(records: Iterable[dict], stream: TextIO, fmt: str, categories: Sequence[str]) -> None:
    if fmt == "tsv":
        stream.write("\t".join(tsv_header(categories)) + "\n")
    for rec in records:
        stream.write((json.dumps(rec, ensure_ascii=False) if fmt == "jsonl" else tsv_row(rec, categories)) + "\n")
        if stream is sys.stdout:  # a pipe reader sees each record as it is made
            stream.flush()
