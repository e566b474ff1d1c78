"""nmt_suite.analysis.gnorm (analysis/plot_gnorm.py): the figure's artists, not just that a file appears."""
import json

import matplotlib.pyplot as plt
import pytest

from nmt_suite.analysis import gnorm as plot_gnorm


def _records(spike_at, n=200, clip_norm=1.0, overflow_at=()):
    records = []
    for update in range(1, n + 1):
        if update in overflow_at:
            records.append({"update": update, "gnorm": None, "overflow": True, "clipped": False,
                            "clip_norm": clip_norm})
        gnorm = spike_at.get(update, 0.5 + 0.05 * (update % 3))
        records.append({"update": update, "epoch": 1, "gnorm": gnorm, "clipped": gnorm > clip_norm > 0,
                        "clip_norm": clip_norm, "lr": 1e-3, "loss": 5.0, "ntokens": 1000})
    return records


def _circles(fig):
    return [line for ax in fig.axes for line in ax.get_lines()
            if (line.get_gid() or "").startswith(plot_gnorm.CIRCLE_GID)]


@pytest.mark.parametrize("spike_at, top, expected_updates", [
    ({}, 2, []),
    ({120: 4.0}, 2, [120]),
    ({60: 3.0, 120: 6.0}, 2, [60, 120]),
    ({40: 3.0, 90: 6.0, 150: 5.0}, 2, [90, 150]),
    ({40: 3.0, 90: 6.0, 150: 5.0}, 3, [40, 90, 150]),
])
def test_circles_around_top_explosions(spike_at, top, expected_updates):
    fig, spikes = plot_gnorm.build_figure(_records(spike_at), top=top)
    circles = _circles(fig)
    assert len(circles) == len(expected_updates)
    assert sorted(int(c.get_xdata()[0]) for c in circles) == expected_updates
    assert [s.update for s in spikes] == expected_updates
    texts = [t.get_text() for t in fig.axes[0].texts]
    for update in expected_updates:
        assert any(f"update {update}\n" in t for t in texts)
    plt.close(fig)


@pytest.mark.parametrize("log_scale", [False, True])
@pytest.mark.parametrize("spike_at", [{120: 6.0}, {60: 4.0, 110: 7.0}, {3: 50.0, 199: 40.0}])
def test_explosion_labels_stay_inside_the_axes(spike_at, log_scale):
    fig, spikes = plot_gnorm.build_figure(_records(spike_at), top=2, log_scale=log_scale)
    fig.canvas.draw()
    ax = fig.axes[0]
    frame = ax.get_window_extent()
    assert len(ax.texts) == len(spikes) > 0
    for label in ax.texts:
        box = label.get_window_extent()
        assert frame.y0 <= box.y0 and box.y1 <= frame.y1, label.get_text()
    plt.close(fig)


def test_clip_line_overflows_and_log_scale():
    fig, _ = plot_gnorm.build_figure(_records({100: 5.0}, overflow_at={50}), log_scale=True)
    ax = fig.axes[0]
    clip_lines = [line for line in ax.get_lines() if "clip threshold" in str(line.get_label())]
    assert len(clip_lines) == 1 and list(clip_lines[0].get_ydata()) == [1.0, 1.0]
    overflow_lines = [line for line in ax.get_lines() if list(line.get_xdata()) == [50, 50]]
    assert len(overflow_lines) == 1
    assert ax.get_yscale() == "log"
    plt.close(fig)


def test_cli_writes_png_and_svg(tmp_path, capsys):
    log = tmp_path / "gnorm.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in _records({60: 3.0, 120: 6.0})))
    assert plot_gnorm.main([str(log), "-o", str(tmp_path / "plots" / "gnorm.png")]) == 0
    png, svg = tmp_path / "plots" / "gnorm.png", tmp_path / "plots" / "gnorm.svg"
    assert png.read_bytes().startswith(b"\x89PNG")
    svg_text = svg.read_text()
    assert svg_text.count(f'id="{plot_gnorm.CIRCLE_GID}-') == 2
    assert "circled: update 60" in capsys.readouterr().out


def test_cli_bad_log_is_a_clear_error(tmp_path, capsys):
    log = tmp_path / "gnorm.jsonl"
    log.write_text('{"update": 1, "gnorm": 1.0}\nnot json\n{"update": 3, "gnorm": 1.0}\n')
    assert plot_gnorm.main([str(log), "-o", str(tmp_path / "g.png")]) == 2
    assert "gnorm.jsonl:2" in capsys.readouterr().err
    assert not (tmp_path / "g.png").exists()
