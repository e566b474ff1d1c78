"""Which checkpoints get averaged, and what averaging refuses."""
import pytest
import torch

from fairseq_ext.checkpoint_safety import safe_load
from nmt_suite.rungs.averaging import average_checkpoints, last_checkpoints


@pytest.mark.parametrize("files, n, expected", [
    # epoch checkpoints sort by number, not by name; checkpoint_last.pt saved with the newest is skipped
    ({"checkpoint1.pt": 10, "checkpoint2.pt": 20, "checkpoint10.pt": 100, "checkpoint_last.pt": 100,
      "checkpoint_best.pt": 20}, 2, ["checkpoint2.pt", "checkpoint10.pt"]),
    ({"checkpoint1.pt": 10, "checkpoint2.pt": 20}, 5, ["checkpoint1.pt", "checkpoint2.pt"]),
    # update checkpoints (--save-interval-updates) win over epoch checkpoints, sorted by update
    ({"checkpoint1.pt": 600, "checkpoint_1_100.pt": 100, "checkpoint_2_1000.pt": 1000, "checkpoint_1_500.pt": 500},
     2, ["checkpoint_1_500.pt", "checkpoint_2_1000.pt"]),
    ({"checkpoint_last.pt": 7, "checkpoint_best.pt": 7}, 5, ["checkpoint_last.pt"]),
    ({"checkpoint3.pt": 30, "checkpoint4.pt": 40}, 0, ["checkpoint4.pt"]),
    # stopped mid-epoch (--stop-time-hours, --max-update): the final weights are only in checkpoint_last.pt
    ({"checkpoint1.pt": 284, "checkpoint2.pt": 568, "checkpoint_last.pt": 677}, 1, ["checkpoint_last.pt"]),
    ({"checkpoint1.pt": 284, "checkpoint2.pt": 568, "checkpoint_last.pt": 677}, 2,
     ["checkpoint2.pt", "checkpoint_last.pt"]),
    ({"checkpoint_1_500.pt": 500, "checkpoint_last.pt": 520}, 5, ["checkpoint_1_500.pt", "checkpoint_last.pt"]),
])
def test_last_checkpoints(tmp_path, files, n, expected):
    for name, updates in files.items():
        torch.save({"optimizer_history": [{"num_updates": updates}]}, tmp_path / name)
    assert [p.name for p in last_checkpoints(tmp_path, n)] == expected


def test_no_checkpoint_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        last_checkpoints(tmp_path, 5)


def _checkpoint(path, model):
    torch.save({"model": model, "optimizer_history": [{"num_updates": 1}], "last_optimizer_state": {"x": 1},
                "extra_state": {}}, path)
    return path


def test_average_is_the_elementwise_mean_and_keeps_integer_buffers(tmp_path):
    a = _checkpoint(tmp_path / "a.pt", {"w": torch.tensor([1.0, 2.0]), "h": torch.tensor([1.0], dtype=torch.half),
                                        "version": torch.tensor([3])})
    b = _checkpoint(tmp_path / "b.pt", {"w": torch.tensor([3.0, 6.0]), "h": torch.tensor([2.0], dtype=torch.half),
                                        "version": torch.tensor([3])})
    info = average_checkpoints([a, b], tmp_path / "avg.pt")
    avg = safe_load(tmp_path / "avg.pt")
    assert info == {"averaged": ["a.pt", "b.pt"], "n": 2}
    assert avg["model"]["w"].tolist() == [2.0, 4.0]
    assert avg["model"]["h"].dtype == torch.half and avg["model"]["h"].tolist() == [1.5]
    assert avg["model"]["version"].tolist() == [3]
    assert "last_optimizer_state" not in avg and avg["optimizer_history"] == [{"num_updates": 1}]


@pytest.mark.parametrize("other, message", [
    ({"w": torch.zeros(2), "extra": torch.zeros(1)}, "parameters differ"),
    ({"w": torch.zeros(3)}, "has shape (3,)"),
])
def test_different_models_are_refused_and_nothing_is_written(tmp_path, other, message):
    a = _checkpoint(tmp_path / "a.pt", {"w": torch.zeros(2)})
    b = _checkpoint(tmp_path / "b.pt", other)
    with pytest.raises(ValueError, match=r"b\.pt.*" + message.replace("(", r"\(").replace(")", r"\)")):
        average_checkpoints([a, b], tmp_path / "avg.pt")
    assert not (tmp_path / "avg.pt").exists()
