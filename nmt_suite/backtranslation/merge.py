"""Merge the chunks of a finished generation into one file, in original sentence order.

    python -m nmt_suite.backtranslation.merge --out-dir runs/X/bt/beam [--shards 4]

Writes ``<out-dir>/merged.tsv`` (one :class:`~.shards.Record` per monolingual sentence,
ids 0..n-1 in order) under a temporary name, renamed when complete. If any chunk is
missing it writes nothing and names the shard jobs to (re-)run.
"""
import argparse
import sys
from pathlib import Path

from nmt_suite.backtranslation.generate import recorded_settings
from nmt_suite.backtranslation.shards import ChunkPlan, CorruptChunkError, chunk_path, read_chunk
from nmt_suite.files import atomic_open, remove_stale_temps

MERGED = "merged.tsv"


class IncompleteGenerationError(RuntimeError):
    pass


def plan_of(out_dir: Path) -> ChunkPlan:
    settings = recorded_settings(out_dir)
    if settings is None:
        raise IncompleteGenerationError(f"no generation recorded in {out_dir}: no shard job has run there")
    return ChunkPlan(settings["data"]["num_sentences"], settings["chunk_size"])


def missing_chunks(out_dir: Path, plan: ChunkPlan) -> list:
    return [c for c in range(plan.num_chunks) if not chunk_path(out_dir, c).exists()]


def merge(out_dir: Path, shards: int = 1) -> Path:
    out_dir = Path(out_dir)
    plan = plan_of(out_dir)
    missing = missing_chunks(out_dir, plan)
    if missing:
        jobs = sorted({plan.shard_of_chunk(c, shards) for c in missing})
        raise IncompleteGenerationError(
            f"{len(missing)} of {plan.num_chunks} chunks missing in {out_dir} (first: "
            f"{chunk_path(out_dir, missing[0]).name}); with --shards {shards}, run --shard-id "
            f"{' '.join(map(str, jobs))}"
        )
    merged = out_dir / MERGED
    remove_stale_temps(out_dir, MERGED)  # left by a killed merge
    with atomic_open(merged) as out:
        for c in range(plan.num_chunks):
            out.writelines(r.to_line() for r in read_chunk(chunk_path(out_dir, c), plan.ids(c)))
    return merged


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, required=True, help="the generation's --out-dir")
    parser.add_argument("--shards", type=int, default=1, help="shard count, to name missing jobs")
    args = parser.parse_args(argv)
    try:
        merged = merge(args.out_dir, args.shards)
    except (IncompleteGenerationError, CorruptChunkError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(merged)
    return 0


if __name__ == "__main__":
    sys.exit(main())
