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


def test_denoise_unet_shape_and_residual() -> None:
    net = archs.build("DenoiseUNet", {"widths": (4, 8, 16), "blocks": 1})
    x = torch.rand(2, 4, 16, 12)
    assert net(x).shape == (2, 3, 16, 12)
    torch.nn.init.zeros_(net.tail.weight)
    torch.nn.init.zeros_(net.tail.bias)
    torch.testing.assert_close(net(x), x[:, :3])  # predicts the noise and subtracts it
    assert archs.input_channels("DenoiseUNet", {}) == 4 and archs.size_multiple("DenoiseUNet", {}) == 4


def test_discriminators() -> None:
    unet = archs.build_discriminator("UNetDiscriminatorSN", {"num_feat": 8})
    assert unet(torch.rand(2, 3, 32, 40)).shape == (2, 1, 32, 40)  # a score per pixel
    assert "conv1.parametrizations.weight.original" in unet.state_dict() or "conv1.weight_orig" in unet.state_dict()
    vgg = archs.build_discriminator("VGGStyleDiscriminator", {"num_feat": 4, "input_size": 128})
    assert vgg(torch.rand(3, 3, 128, 128)).shape == (3, 1)
    assert {"conv0_0.weight", "bn0_1.weight", "conv4_1.weight", "linear1.weight", "linear2.weight"} <= set(
        vgg.state_dict()
    )


def test_the_compact_residual_is_the_nearest_upsampled_input() -> None:
    net = archs.build("SRVGGNetCompact", {"num_feat": 4, "num_conv": 1, "upscale": 2})
    for p in net.body[-1].parameters():
        torch.nn.init.zeros_(p)  # body contributes nothing
    x = torch.rand(1, 3, 5, 4)
    torch.testing.assert_close(net(x), x.repeat_interleave(2, 2).repeat_interleave(2, 3))


def test_unknown_architecture_says_what_is_known() -> None:
    with pytest.raises(archs.UnknownArchitecture, match="known: \\['AdaINNet', 'DenoiseUNet', 'Generator', 'RRDBNet'"):
        archs.build("Nope", {})


def test_checkpoint_saved_by_one_build_loads_in_another(tmp_path: Path) -> None:
    args = archs.full_args("SRVGGNetCompact", {"num_feat": 8, "num_conv": 2}, 2)
    net = archs.build("SRVGGNetCompact", args)
    saved = checkpoint.Checkpoint(
        config={"scale": 2},
        arch=checkpoint.ArchSpec("SRVGGNetCompact", args),
        params=net.state_dict(),
        params_ema=net.state_dict(),
        step=1,
    )
    saved.save(tmp_path / "a.pt")
    rebuilt = checkpoint.Checkpoint.load(tmp_path / "a.pt").generator()
    x = torch.rand(1, 3, 6, 6)
    torch.testing.assert_close(rebuilt(x), net.eval()(x))


def test_foreign_files_are_not_loaded_as_checkpoints(tmp_path: Path) -> None:
    torch.save({"params": {}}, tmp_path / "b.pt")
    with pytest.raises(checkpoint.CheckpointError, match="not an imgenhance checkpoint"):
        checkpoint.Checkpoint.load(tmp_path / "b.pt")
