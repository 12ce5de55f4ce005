from __future__ import annotations

from pathlib import Path

import pytest
import torch

from training import archs, checkpoint


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_srvgg_shapes_and_key_names(scale: int) -> None:
    net = archs.build("SRVGGNetCompact", archs.full_args("SRVGGNetCompact", {"num_feat": 8, "num_conv": 2}, scale))
    assert net(torch.rand(2, 3, 12, 10)).shape == (2, 3, 12 * scale, 10 * scale)
    keys = set(net.state_dict())
    # Real-ESRGAN's layout: conv, act, (conv, act) x num_conv, conv
    assert {"body.0.weight", "body.1.weight", "body.2.weight", "body.6.weight"} <= keys


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_rrdb_shapes_and_basicsr_key_names(scale: int) -> None:
    net = archs.build("RRDBNet", archs.full_args("RRDBNet", {"num_feat": 8, "num_block": 2, "num_grow_ch": 4}, scale))
    assert net(torch.rand(1, 3, 16, 12)).shape == (1, 3, 16 * scale, 12 * scale)
    keys = set(net.state_dict())
    assert {
        "conv_first.weight",
        "body.1.rdb3.conv5.bias",
        "conv_body.weight",
        "conv_up1.weight",
        "conv_up2.weight",
        "conv_hr.weight",
        "conv_last.weight",
    } <= keys
    assert archs.size_multiple("RRDBNet", {"scale": scale}) == {4: 1, 2: 2, 1: 4}[scale]


def test_the_compact_residual_is_the_nearest_upsampled_input() -> None:
    net = archs.build("SRVGGNetCompact", {"num_feat": 4, "num_conv": 1, "upscale": 2})
    for p in net.body[-1].parameters():
        torch.nn.init.zeros_(p)  # body contributes nothing
    x = torch.rand(1, 3, 5, 4)
    torch.testing.assert_close(net(x), x.repeat_interleave(2, 2).repeat_interleave(2, 3))


def test_unknown_architecture_says_what_is_known() -> None:
    with pytest.raises(AssertionError, match="known: \\['RRDBNet', 'SRVGGNetCompact'\\]"):
        archs.build("Nope", {})


def test_checkpoint_saved_by_one_build_loads_in_another(tmp_path: Path) -> None:
    args = archs.full_args("SRVGGNetCompact", {"num_feat": 8, "num_conv": 2}, 2)
    net = archs.build("SRVGGNetCompact", args)
    state = {
        "config": {"scale": 2},
        "arch": {"name": "SRVGGNetCompact", "args": args},
        "params": net.state_dict(),
        "params_ema": net.state_dict(),
        "step": 1,
    }
    checkpoint.save(tmp_path / "a.pt", state)
    rebuilt = checkpoint.build_generator(checkpoint.load(tmp_path / "a.pt"))
    x = torch.rand(1, 3, 6, 6)
    torch.testing.assert_close(rebuilt(x), net.eval()(x))


def test_foreign_files_are_not_loaded_as_checkpoints(tmp_path: Path) -> None:
    torch.save({"params": {}}, tmp_path / "b.pt")
    with pytest.raises(AssertionError, match="not an imgenhance checkpoint"):
        checkpoint.load(tmp_path / "b.pt")
