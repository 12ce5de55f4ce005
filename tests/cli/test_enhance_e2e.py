"""``imgenhance enhance`` and ``generate``, on a real service (``--server``) and in process
(``--local``, the default); both must write the same pixels."""

from __future__ import annotations

import os
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from cli.main import main
from tests.cli.conftest import rgb16, rgba, write
from tests.support import images
from tests.support.services import Service


def run(*argv: str) -> int:
    try:
        main(list(argv))
    except SystemExit as exit:
        return int(exit.code or 0)
    return 0


def pixels(path: Path) -> np.ndarray:
    arr = cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_UNCHANGED)
    assert arr is not None, path
    return arr


def size(path: Path) -> tuple[int, int]:
    return images.open_image(path.read_bytes()).size


def test_folders_are_walked_and_their_layout_kept(
    service: Service, tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert run("enhance", str(tree), "-o", str(out), "--scale", "2", "-j", "2", "--server", service.base_url) == 0
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["a.png", "sub/b.png", "sub/deeper/c.png"]
    assert [size(out / p) for p in written] == [(40, 32), (36, 28), (32, 32)]
    summary = capsys.readouterr().out
    assert re.search(r"done\s*│\s*3", summary) and re.search(r"failed\s*│\s*0", summary), summary


def test_globs_keep_the_layout_below_their_first_wildcard(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run("enhance", f"{tree}/sub/**/*.*", str(tree / "a.png"), "-o", str(out), "--scale", "2") == 0
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["a.png", "b.png", "deeper/c.png"]


@pytest.mark.parametrize("where", ["server", "local"])
def test_outputs_that_exist_are_skipped_unless_overwrite(
    where: str, service: Service, tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    backend = ["--server", service.base_url] if where == "server" else ["--local"]
    assert run("enhance", str(tree), "-o", str(out), "--scale", "2", *backend) == 0
    stamp = (out / "a.png").stat().st_mtime_ns
    os.utime(out / "a.png", ns=(stamp - 10**9, stamp - 10**9))
    capsys.readouterr()
    assert run("enhance", str(tree), "-o", str(out), "--scale", "2", *backend) == 0
    assert re.search(r"skipped\s*│\s*3", capsys.readouterr().out)
    assert (out / "a.png").stat().st_mtime_ns == stamp - 10**9
    assert run("enhance", str(tree), "-o", str(out), "--scale", "4", "--overwrite", *backend) == 0
    assert re.search(r"done\s*│\s*3", capsys.readouterr().out) and size(out / "a.png") == (80, 64)


@pytest.mark.parametrize("where", ["server", "local"])
def test_a_failing_file_gets_one_line_and_a_non_zero_exit(
    where: str, service: Service, tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tree / "sub" / "bad.png", b"this is text, whatever its name says")
    backend = ["--server", service.base_url] if where == "server" else []
    assert run("enhance", str(tree), "-o", str(tmp_path / "out"), "-j", "2", *backend) == 1
    captured = capsys.readouterr()
    failures = [line for line in captured.err.splitlines() if line.startswith("failed:")]
    assert len(failures) == 1, captured.err
    assert failures[0].startswith(f"failed: {tree / 'sub' / 'bad.png'}: 415 not-an-image: the upload is not an image")
    assert re.search(r"done\s*│\s*3", captured.out) and re.search(r"failed\s*│\s*1", captured.out)
    assert not (tmp_path / "out" / "sub" / "bad.png").exists()


def test_outscale_on_both_backends(service: Service, tree: Path, tmp_path: Path) -> None:
    src = tree / "a.png"  # 20x16
    assert run("enhance", str(src), "-o", str(tmp_path / "s"), "--outscale", "3.5", "--server", service.base_url) == 0
    assert run("enhance", str(src), "-o", str(tmp_path / "l"), "--outscale", "3.5") == 0
    assert size(tmp_path / "s" / "a.png") == (70, 56)
    assert np.array_equal(pixels(tmp_path / "s" / "a.png"), pixels(tmp_path / "l" / "a.png"))


@pytest.mark.parametrize(
    ("task", "options"),
    [
        ("super-resolve", ["--scale", "2"]),
        ("super-resolve", ["--scale", "4"]),
        ("denoise", ["--sigma", "15"]),
        ("denoise", ["--artifacts", "jpeg"]),  # gray.jpg: its quality read from the file on both sides
    ],
)
def test_local_and_server_write_identical_pixels(
    task: str, options: list[str], service: Service, tmp_path: Path
) -> None:
    src = tmp_path / "in"
    write(src / "rgb.png", images.png(images.photo(24, 20, seed=6)))
    write(src / "rgba.png", rgba())
    write(src / "rgb16.png", rgb16())
    write(src / "gray.jpg", images.jpeg(images.photo(20, 20, seed=7)[..., 0]))
    common = ["enhance", str(src), "--task", task, *options, "-j", "2"]
    assert run(*common, "-o", str(tmp_path / "server"), "--server", service.base_url) == 0
    assert run(*common, "-o", str(tmp_path / "local"), "--local") == 0
    for name in ("rgb.png", "rgba.png", "rgb16.png", "gray.png"):
        server, local = pixels(tmp_path / "server" / name), pixels(tmp_path / "local" / name)
        assert server.shape == local.shape and server.dtype == local.dtype, name
        assert np.array_equal(server, local), (name, np.abs(server.astype(int) - local.astype(int)).max())
    assert pixels(tmp_path / "local" / "rgba.png").shape[2] == 4
    assert pixels(tmp_path / "local" / "rgb16.png").dtype == np.uint16


def test_style_transfer_with_a_named_style(tmp_path: Path) -> None:
    src = write(tmp_path / "p.png", images.png(images.photo(24, 24)))
    out = tmp_path / "out"
    assert (
        run("enhance", str(src), "-o", str(out), "--style", "starry-night", "--max-side", "64", "--format", "jpeg") == 0
    )
    assert size(out / "p.jpg") == (24, 24)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--quality", "80"], "--quality applies to jpeg and webp output; png is lossless (--format)"),
        (["--sigma", "10", "--scale", "2"], "--scale is for --task super-resolve, not denoise"),
        (["--scale", "2", "--outscale", "3"], "--scale or --outscale, not both"),
        (["--task", "style-transfer"], "name a style with --style NAME or send a picture with --style-image FILE"),
        (["--jpeg-quality", "30"], "--jpeg-quality is for --task denoise, not super-resolve"),
        (["--artifacts", "noise", "--jpeg-quality", "30"], "--jpeg-quality goes with --artifacts jpeg"),
        (["--artifacts", "jpeg", "--jpeg-quality", "30", "--sigma", "5"], "send --sigma or --jpeg-quality, not both"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    argv: list[str], message: str, tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("enhance", str(tree), "-o", str(tmp_path / "out"), *argv) == 2
    assert message in capsys.readouterr().err


def test_missing_inputs_and_colliding_outputs_are_usage_errors(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("enhance", str(tmp_path / "nowhere.png"), "-o", str(tmp_path / "out")) == 2
    assert "no such file or folder" in capsys.readouterr().err
    write(tree / "a.jpg", images.jpeg(images.photo(8, 8)))  # a.png and a.jpg both become a.png
    assert run("enhance", str(tree), "-o", str(tmp_path / "out")) == 2
    assert "would both be written to" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_outputs_inside_the_input_folder_are_not_read_back(tree: Path) -> None:
    assert run("enhance", str(tree), "-o", str(tree / "x2"), "--scale", "2") == 0
    assert run("enhance", str(tree), "-o", str(tree / "x2"), "--scale", "2") == 0  # nothing new to read
    assert not (tree / "x2" / "x2").exists()


def test_generate_is_the_same_locally_and_on_the_server(service: Service, tmp_path: Path) -> None:
    served, local = tmp_path / "served.png", tmp_path / "local.png"
    assert (
        run(
            "generate",
            "--model",
            "gen-digits",
            "-n",
            "16",
            "--seed",
            "7",
            "-o",
            str(served),
            "--server",
            service.base_url,
        )
        == 0
    )
    assert run("generate", "--model", "gen-digits", "-n", "16", "--seed", "7", "-o", str(local)) == 0
    assert served.read_bytes() == local.read_bytes()
    assert size(local) == (4 * 32 + 3 * 2, 4 * 32 + 3 * 2)  # a 4x4 grid with 2-px gaps
    assert run("generate", "-n", "4", "--class", "7", "-o", str(tmp_path / "sevens.zip")) == 0
    assert (tmp_path / "sevens.zip").read_bytes()[:2] == b"PK"
    assert run("generate", "-n", "4", "-o", str(local)) == 2  # exists: --overwrite replaces it
