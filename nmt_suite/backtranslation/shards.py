"""How the monolingual corpus is cut for generation, and the format of what comes back.

The corpus (sentence ids ``0 .. n-1`` of the binarized monolingual split) is cut into
fixed-size *chunks* of consecutive ids; chunk ``j`` holds ids ``[j*C, (j+1)*C)``. A
*shard* is a contiguous run of chunks: shard ``k`` of ``N`` owns chunks
``[k*M//N, (k+1)*M//N)`` of the ``M`` chunks. Chunks, not shards, are the unit of work
that is written atomically, so

- a killed shard job loses at most the chunk it was decoding, and a re-run skips the
  chunks already on disk (no lost, duplicated or reordered line);
- a chunk's content depends only on its ids and the generation settings, never on the
  number of shards: re-running with another ``--shards`` reuses every finished chunk, and
  shards can run on different machines that share the output directory;
- merging is concatenating chunk files in chunk order, i.e. original sentence order.

fairseq's own ``--num-shards/--shard-id`` shards *batches* round-robin, which depends on
``--max-tokens`` and length-sorting, and fairseq-generate writes one unordered file with
no way to resume; hence this plan.
"""
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, NamedTuple


class CorruptChunkError(ValueError):
    """A chunk file does not hold exactly the ids it should, in order."""


class Record(NamedTuple):
    """One generated sentence: id in the monolingual split, hypothesis score, both sides as pieces."""

    id: int
    score: float
    source: str
    hypothesis: str

    def to_line(self) -> str:
        # Pieces come from fairseq dictionaries, which split on whitespace, so no field holds a tab.
        return f"{self.id}\t{self.score:.6f}\t{self.source}\t{self.hypothesis}\n"

    @classmethod
    def from_line(cls, line: str, where: str) -> "Record":
        fields = line.rstrip("\n").split("\t")
        if len(fields) != 4:
            raise CorruptChunkError(f"{where}: expected 4 tab-separated fields, got {len(fields)}")
        try:
            return cls(int(fields[0]), float(fields[1]), fields[2], fields[3])
        except ValueError as err:
            raise CorruptChunkError(f"{where}: {err}") from None


@dataclass(frozen=True)
class ChunkPlan:
    num_sentences: int
    chunk_size: int

    def __post_init__(self):
        if self.num_sentences < 1:
            raise ValueError("the monolingual corpus is empty: nothing to back-translate")
        if self.chunk_size < 1:
            raise ValueError(f"chunk size must be >= 1, got {self.chunk_size}")

    @property
    def num_chunks(self) -> int:
        return math.ceil(self.num_sentences / self.chunk_size)

    def ids(self, chunk: int) -> range:
        start = chunk * self.chunk_size
        return range(start, min(start + self.chunk_size, self.num_sentences))

    def chunks_of_shard(self, shard_id: int, num_shards: int) -> range:
        if num_shards < 1 or not 0 <= shard_id < num_shards:
            raise ValueError(f"--shard-id must be in [0, {num_shards}), got {shard_id}")
        m = self.num_chunks
        return range(shard_id * m // num_shards, (shard_id + 1) * m // num_shards)

    def shard_of_chunk(self, chunk: int, num_shards: int) -> int:
        """Inverse of :meth:`chunks_of_shard` (for messages naming the job to re-run)."""
        return next(k for k in range(num_shards) if chunk in self.chunks_of_shard(k, num_shards))


def chunk_dir(out_dir: Path) -> Path:
    return Path(out_dir) / "chunks"


def chunk_path(out_dir: Path, chunk: int) -> Path:
    return chunk_dir(out_dir) / f"chunk-{chunk:06d}.tsv"


def read_chunk(path: Path, expected_ids: range) -> Iterator[Record]:
    """Records of a finished chunk, checked to be exactly ``expected_ids`` in order."""
    expected = iter(expected_ids)
    with open(path, encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, 1):
            record = Record.from_line(line, f"{path}:{lineno}")
            want = next(expected, None)
            if record.id != want:
                raise CorruptChunkError(f"{path}:{lineno}: sentence id {record.id}, expected {want}")
            yield record
    missing = next(expected, None)
    if missing is not None:
        raise CorruptChunkError(f"{path}: ends before sentence id {missing}")
