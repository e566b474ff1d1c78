"""nmt_suite.files (atomic writes, hashes) and nmt_suite.stage_cache (stage outputs valid for these inputs)."""
import os

import pytest

from nmt_suite.files import (
    atomic_copy,
    atomic_directory,
    atomic_open,
    atomic_write_json,
    atomic_write_lines,
    read_json,
    remove_stale_temps,
    sha256_json,
    temp_name,
)
from nmt_suite.stage_cache import StageRecords, stage_key


def test_failed_write_keeps_old_content_and_leaves_no_temp(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_open(path) as handle:
            handle.write("half")
            raise RuntimeError("killed")
    assert path.read_text() == "old\n"
    assert list(tmp_path.iterdir()) == [path]


def test_writes_land_whole(tmp_path):
    atomic_write_lines(tmp_path / "a" / "lines.txt", ["x", "y"])
    assert (tmp_path / "a" / "lines.txt").read_bytes() == b"x\ny\n"
    atomic_write_json(tmp_path / "v.json", {"b": 1, "a": "中"})
    assert read_json(tmp_path / "v.json") == {"a": "中", "b": 1}
    assert "中" in (tmp_path / "v.json").read_text(encoding="utf-8")


def test_copy_goes_through_a_temporary_name(tmp_path):
    src, dst = tmp_path / "src.bin", tmp_path / "dst.bin"
    src.write_bytes(b"data")
    seen = []
    atomic_copy(src, dst, copy=lambda s, t: (seen.append(t), open(t, "wb").write(open(s, "rb").read())))
    assert dst.read_bytes() == b"data" and seen == [str(temp_name(dst))] and not temp_name(dst).exists()


def test_directory_swap_replaces_whole_or_not_at_all(tmp_path):
    target = tmp_path / "bt-data"
    with atomic_directory(target) as work:
        (work / "a").write_text("1")
    with pytest.raises(ValueError):
        with atomic_directory(target) as work:
            (work / "b").write_text("2")
            raise ValueError("failed build")
    assert sorted(p.name for p in target.iterdir()) == ["a"]
    with atomic_directory(target) as work:
        (work / "c").write_text("3")
    assert sorted(p.name for p in target.iterdir()) == ["c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bt-data"]


def test_stale_temporaries_of_killed_processes_are_removed(tmp_path):
    (tmp_path / ".chunk-1.tsv.tmp-99999").write_text("torn")
    (tmp_path / ".bt-data.old-99999").mkdir()
    (tmp_path / "chunk-1.tsv").write_text("whole")
    remove_stale_temps(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["chunk-1.tsv"]


@pytest.mark.parametrize("a, b, same", [
    ({"x": 1, "y": 2}, {"y": 2, "x": 1}, True),
    ({"x": 1}, {"x": 2}, False),
    ([1, 2], [2, 1], False),
])
def test_json_hash_ignores_key_order_only(a, b, same):
    assert (sha256_json(a) == sha256_json(b)) is same
    assert (stage_key("train", a) == stage_key("train", b)) is same
    assert stage_key("train", a) != stage_key("average", a)


def test_stage_is_up_to_date_only_for_its_key_and_intact_outputs(tmp_path):
    records = StageRecords(tmp_path / ".stages")
    (tmp_path / "out.txt").write_text("result")
    key = stage_key("step", {"lr": 1})
    assert records.up_to_date("step", key) is None            # never ran
    records.write("step", key, outputs=["out.txt"], wall_s=1.5, note="x")
    record = records.up_to_date("step", key)
    assert record["info"] == {"note": "x"} and record["wall_s"] == 1.5 and list(record["outputs"]) == ["out.txt"]
    assert records.up_to_date("step", stage_key("step", {"lr": 2})) is None   # other inputs
    (tmp_path / "out.txt").write_text("changed")
    os.utime(tmp_path / "out.txt", ns=(1, 1))
    assert records.up_to_date("step", key) is None            # output changed since
    (tmp_path / "out.txt").unlink()
    assert records.up_to_date("step", key) is None            # output gone
    assert records.stages() == ["step"]
    records.drop("step")
    assert records.read("step") is None and records.stages() == []


def test_torn_record_counts_as_absent(tmp_path):
    records = StageRecords(tmp_path / ".stages")
    records.dir.mkdir()
    records.path("train").write_text('{"key": "abc", "outp')
    assert records.read("train") is None
    assert records.up_to_date("train", "abc") is None


def test_outputs_may_live_under_several_bases(tmp_path):
    staged, published = tmp_path / ".staging", tmp_path
    (staged / "bin").mkdir(parents=True)
    (staged / "bin" / "dict.txt").write_text("a 1\n")
    records = StageRecords(staged / ".state", base=staged)
    records.write("binarize", "k", outputs=["bin/dict.txt"])
    (published / "bin").mkdir()
    os.replace(staged / "bin" / "dict.txt", published / "bin" / "dict.txt")
    assert records.up_to_date("binarize", "k") is None
    assert records.up_to_date("binarize", "k", bases=(staged, published)) is not None
