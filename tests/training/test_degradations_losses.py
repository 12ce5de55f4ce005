from __future__ import annotations

import numpy as np
import pytest
import torch

from training import degradations as D
from training.losses import GAN_TYPES, PerceptualLoss, discriminator_loss, generator_loss, gradient_penalty


def test_kernels_are_normalised_and_padded() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        k = D.random_kernel(rng, (0.2, 3.0), sinc_prob=0.3)
        assert k.shape == (D.KERNEL_SIZE, D.KERNEL_SIZE) and abs(k.sum() - 1) < 1e-6
    iso = D.gaussian_like_kernel(21, 2.0, 2.0, 0.3, 1.0, "gaussian")
    np.testing.assert_allclose(iso, iso.T, atol=1e-9)  # isotropic: rotation-free


def test_per_sample_filter_with_a_delta_is_identity() -> None:
    x = torch.rand(3, 3, 16, 16)
    delta = torch.zeros(3, 5, 5)
    delta[:, 2, 2] = 1
    torch.testing.assert_close(D.filter_per_sample(x, delta), x)


def test_realesrgan_output_size_range_and_seeded_determinism() -> None:
    hr = torch.rand(4, 3, 64, 64)

    def run(seed: int) -> torch.Tensor:
        return D.realesrgan(hr, 4, np.random.default_rng(seed), torch.Generator().manual_seed(seed))

    lr = run(0)
    assert lr.shape == (4, 3, 16, 16) and float(lr.min()) >= 0 and float(lr.max()) <= 1
    torch.testing.assert_close(run(0), lr)
    assert not torch.equal(run(1), lr)


def test_noise_mixture_labels_each_sample_with_its_level() -> None:
    clean = torch.full((64, 3, 32, 32), 0.5)
    noisy, level = D.noisy(clean, np.random.default_rng(0), torch.Generator().manual_seed(0))
    assert noisy.shape == clean.shape and level.shape == (64,)
    measured = ((noisy - clean) ** 2).mean(dim=(1, 2, 3)).sqrt() * 255
    assert (level >= 0).all() and (level <= 60).all()
    assert float(torch.corrcoef(torch.stack([level, measured]))[0, 1]) > 0.9  # the label tracks the real noise
    x = D.level_map(noisy, level, torch.tensor([True, False] * 32), 50.0)
    assert x.shape == (64, 4, 32, 32) and float(x[0, 3, 0, 0]) == -1.0
    assert abs(float(x[1, 3, 5, 5]) - float(level[1]) / 50) < 1e-6


@pytest.mark.parametrize("kind", GAN_TYPES)
def test_gan_losses_prefer_the_right_answer(kind: str) -> None:
    real, fake = torch.full((8, 1), 3.0), torch.full((8, 1), -3.0)
    good_d, bad_d = discriminator_loss(kind, real, fake), discriminator_loss(kind, fake, real)
    assert good_d < bad_d  # D is rewarded for scoring real above fake
    assert generator_loss(kind, real, real) < generator_loss(kind, real, fake)  # G likes fakes that score high


def test_gradient_penalty_is_zero_for_a_unit_slope_critic() -> None:
    critic = torch.nn.Linear(4, 1, bias=False)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[1.0, 0.0, 0.0, 0.0]]))
    assert gradient_penalty(critic, torch.rand(5, 4), torch.rand(5, 4)).item() < 1e-10


def test_vgg19_perceptual_loss_refuses_without_weights_unless_told(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FileNotFoundError, match="no weights file was given"):
        PerceptualLoss({"conv2_2": 1.0}, None, "refuse", net="vgg19")
    loss = PerceptualLoss({"conv1_2": 0.5, "conv2_2": 1.0}, None, "random", net="vgg19")
    assert "random weights" in loss.source
    x = torch.rand(2, 3, 32, 32)
    assert float(loss(x, x)) == 0 and float(loss(x, torch.rand(2, 3, 32, 32))) > 0
    # a torchvision-style state dict (features.N.*) loads
    vgg = loss.vgg.features.state_dict()
    torch.save({f"features.{k}": v for k, v in vgg.items()}, tmp_path / "vgg.pth")
    assert "vgg.pth" in PerceptualLoss({"conv2_2": 1.0}, tmp_path / "vgg.pth", net="vgg19").source


def test_vgg16_perceptual_loss_needs_the_fetched_weights(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from training import pretrained

    monkeypatch.setattr(pretrained, "CACHE_DIR", tmp_path / "empty")
    with pytest.raises(pretrained.WeightsError, match="python -m training weights fetch"):
        PerceptualLoss()


def test_vgg16_perceptual_loss_uses_pre_activation_conv_layers(vgg_weights) -> None:  # type: ignore[no-untyped-def]
    loss = PerceptualLoss()
    assert set(loss.layer_weights) == {"conv1_2", "conv2_2", "conv3_3", "conv4_3", "conv5_3"}
    assert "VGG16 ImageNet" in loss.source
    x = torch.rand(1, 3, 32, 32)
    assert float(loss(x, x)) == 0 and float(loss(x, x.flip(-1))) > 0
    with pytest.raises(ValueError, match="VGG16 has no layers \\['conv5_4'\\]"):
        PerceptualLoss({"conv5_4": 1.0})


def test_partial_target_leaves_the_noise_above_the_told_level() -> None:
    gen = torch.Generator().manual_seed(3)
    clean = torch.rand(4, 3, 64, 64, generator=gen)
    noisy = clean + torch.randn(clean.shape, generator=gen) * 25 / 255
    true = torch.full((4,), 25.0)
    told = torch.tensor([0.0, 15.0, 25.0, 40.0])
    target = D.partial_target(clean, noisy, true, told)
    torch.testing.assert_close(target[0], noisy[0])  # told nothing: remove nothing
    torch.testing.assert_close(target[2], clean[2])  # told the true level: remove it all
    torch.testing.assert_close(target[3], clean[3])  # told more: still the clean image, not over-smoothing
    left = ((target[1] - clean[1]) ** 2).mean().sqrt() * 255
    assert abs(float(left) - 20.0) < 0.5  # sqrt(25^2 - 15^2): the rest of the noise, in quadrature


def test_told_levels_are_the_true_ones_unless_mismatched() -> None:
    true = torch.linspace(0, 50, 1000)
    rng = np.random.default_rng(0)
    assert torch.equal(D.told_levels(true, rng, D.NoiseConfig(mismatch_prob=0.0)), true)
    told = D.told_levels(true, rng, D.NoiseConfig(mismatch_prob=0.5, max_sigma=50.0))
    changed = (told != true).float().mean().item()
    assert 0.4 < changed < 0.6 and float(told.min()) >= 0 and float(told.max()) <= 50
