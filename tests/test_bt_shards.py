"""Sharded, resumable back-translation: kill a shard mid-way, re-run, compare with an uninterrupted run."""
import os
import shutil
import subprocess
import sys
import time

import pytest

from bt_toy import GENERATION_CHUNK as CHUNK
from bt_toy import ONE_THREAD, generate_cmd
from bt_toy import toy_corpus, toy_generation, toy_reverse_checkpoint  # noqa: F401  (fixtures)
from conftest import cli
from nmt_suite.backtranslation.merge import merge
from nmt_suite.backtranslation.shards import ChunkPlan, CorruptChunkError


def merge_cmd(out_dir, *extra):
    return [sys.executable, "-m", "nmt_suite.backtranslation.merge", "--out-dir", out_dir, *extra]


def chunk_files(out_dir):
    return sorted(p.name for p in (out_dir / "chunks").glob("chunk-*.tsv"))


@pytest.mark.parametrize("sentences, chunk, shards", [
    (1, 1, 1), (243, 20, 2), (243, 20, 5), (100, 10, 10), (5, 10, 3), (1000, 7, 4),
])
def test_shards_partition_the_chunks_in_order(sentences, chunk, shards):
    plan = ChunkPlan(sentences, chunk)
    owned = [c for k in range(shards) for c in plan.chunks_of_shard(k, shards)]
    assert owned == list(range(plan.num_chunks))
    assert [i for c in owned for i in plan.ids(c)] == list(range(sentences))
    assert all(plan.shard_of_chunk(c, shards) == k for k in range(shards) for c in plan.chunks_of_shard(k, shards))


@pytest.fixture
def uninterrupted(toy_generation):
    return toy_generation


def test_killed_shard_resumes_to_the_uninterrupted_output(toy_corpus, toy_reverse_checkpoint, uninterrupted, tmp_path):
    out = tmp_path / "resumed"
    plan = ChunkPlan(sum(1 for _ in open(uninterrupted / "merged.tsv")), CHUNK)
    shard0 = plan.chunks_of_shard(0, 2)
    log = open(tmp_path / "killed.log", "w")
    job = subprocess.Popen(list(map(str, generate_cmd(toy_corpus, toy_reverse_checkpoint, out,
                                                      "--shards", "2", "--shard-id", "0"))),
                           env={**os.environ, **ONE_THREAD}, stdout=log, stderr=log)
    deadline = time.time() + 300
    while not (out / "chunks").is_dir() or not chunk_files(out):
        assert job.poll() is None, open(tmp_path / "killed.log").read()
        assert time.time() < deadline
        time.sleep(0.005)
    job.kill()
    job.wait()
    done = chunk_files(out)
    assert 0 < len(done) < len(shard0), "the shard job was not killed mid-way"
    # what a kill during a write leaves behind: a torn temporary file
    (out / "chunks" / f".chunk-{shard0[-1]:06d}.tsv.tmp-999999").write_text("12\t-1.0\ttorn")

    incomplete = cli(*merge_cmd(out, "--shards", "2"), check=False)
    assert incomplete.returncode == 1 and "run --shard-id 0 1" in incomplete.stderr
    assert not (out / "merged.tsv").exists()

    cli(*generate_cmd(toy_corpus, toy_reverse_checkpoint, out, "--shards", "2", "--shard-id", "1"), env=ONE_THREAD)
    rerun = cli(*generate_cmd(toy_corpus, toy_reverse_checkpoint, out, "--shards", "2", "--shard-id", "0"),
                env=ONE_THREAD)
    assert f"{len(done)} already done, {len(shard0) - len(done)} to decode" in rerun.stderr
    cli(*merge_cmd(out, "--shards", "2"))

    expected = (uninterrupted / "merged.tsv").read_text().splitlines()
    got = (out / "merged.tsv").read_text().splitlines()
    assert [int(line.split("\t")[0]) for line in got] == list(range(plan.num_sentences))
    assert all(line.split("\t")[1] != "nan" for line in got), "a sentence was left undecoded"
    for lineno, (want, have) in enumerate(zip(expected, got), 1):
        assert want == have, f"line {lineno} differs"
    assert len(got) == len(expected)
    assert not list((out / "chunks").glob(".*.tmp-*"))


def test_other_settings_in_the_same_directory_are_refused(toy_corpus, toy_reverse_checkpoint, uninterrupted,
                                                          tmp_path, capsys):
    from nmt_suite.backtranslation.generate import main as generate_main

    uninterrupted = shutil.copytree(uninterrupted, tmp_path / "copy")
    before = {p.name: p.read_bytes() for p in (uninterrupted / "chunks").iterdir()}
    argv = generate_cmd(toy_corpus, toy_reverse_checkpoint, uninterrupted, "--decoding", "beam")[3:]
    assert generate_main(list(map(str, argv))) == 1  # main() in-process: no second fairseq import
    assert "holds a generation with other settings (differing: decoding;" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in (uninterrupted / "chunks").iterdir()} == before

    shutil.rmtree(uninterrupted / ".stages")  # chunks whose settings nothing records
    argv = generate_cmd(toy_corpus, toy_reverse_checkpoint, uninterrupted)[3:]
    assert generate_main(list(map(str, argv))) == 1
    assert "holds chunks but" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in (uninterrupted / "chunks").iterdir()} == before


@pytest.mark.parametrize("corrupt, message", [
    (lambda lines: lines[:-1], "ends before sentence id 19"),
    (lambda lines: [lines[1], lines[0], *lines[2:]], ":1: sentence id 1, expected 0"),
    (lambda lines: lines + [lines[-1]], ":21: sentence id 19, expected None"),
    (lambda lines: ["0\tnot-a-score\tx\ty", *lines[1:]], ":1: could not convert"),
    (lambda lines: ["0\t-1.0\tonly three", *lines[1:]], ":1: expected 4 tab-separated fields"),
])
def test_merge_rejects_a_corrupt_chunk(uninterrupted, tmp_path, corrupt, message):
    out = tmp_path / "copy"
    shutil.copytree(uninterrupted, out)
    (out / "merged.tsv").unlink()
    chunk = out / "chunks" / "chunk-000000.tsv"
    chunk.write_text("\n".join(corrupt(chunk.read_text().splitlines())) + "\n")
    with pytest.raises(CorruptChunkError) as err:
        merge(out)
    assert "chunk-000000.tsv" in str(err.value) and message in str(err.value)
    assert not (out / "merged.tsv").exists()
