"""The terminal client's pictures, checked by decoders that are not HALI's and by a real terminal's screen.

- The encoders: `hali-graphics encode` writes what `hali label` sends for an image; libsixel's `sixel2png` (Debian's
  libsixel-bin), Python's base64 and Pillow decode it, and the pixels must equal the image's.
- The screen: `hali label --graphics sixel` runs in xterm (`-ti vt340`) under Xvfb against a live halid; the window is
  captured with ImageMagick's `import`, and the picture area must match OpenSlide's pixels of the region the client
  says it drew (normalised correlation of luminance >= 0.9 after resampling OpenSlide's region to the picture's size;
  the nuclei's outlines are drawn over it, so it is not 1).
Each test skips with a message where its tools are missing; `Deploy/install-deps.sh --python` installs them.
"""
import base64
import io
import json
import os
import re
import shutil
import subprocess
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.join(ROOT, ".build", "debug")
TOKEN = "graphics-test-token"

np = pytest.importorskip("numpy")
Image = pytest.importorskip("PIL.Image")


def encode(protocol: str, png_path: str, *extra: str) -> bytes:
    tool = os.path.join(BIN, "hali-graphics")
    if not os.path.exists(tool):
        pytest.fail(f"{tool} not built: run swift build first")
    return subprocess.run([tool, "encode", protocol, png_path, *extra], check=True, capture_output=True).stdout


def pattern_image(tmp_path, width=70, height=41):
    """216 colours whose 8-bit values survive sixel's percent (multiples of 51), in a pattern with runs and edges;
    the height is not a multiple of six, so the last band is partial."""
    levels = np.array([0, 51, 102, 153, 204, 255], dtype=np.uint8)
    y, x = np.mgrid[0:height, 0:width]
    index = (x // 3 + 7 * (y // 2)) % 216
    rgb = np.stack([levels[index // 36], levels[(index // 6) % 6], levels[index % 6]], axis=-1).astype(np.uint8)
    path = tmp_path / "pattern.png"
    Image.fromarray(rgb, "RGB").save(path)
    return str(path), rgb


def test_sixel_decoded_by_libsixel_equals_the_image(tmp_path):
    if shutil.which("sixel2png") is None:
        pytest.skip("sixel2png (Debian's libsixel-bin) is not installed")
    path, rgb = pattern_image(tmp_path)
    sixel = tmp_path / "pattern.six"
    sixel.write_bytes(encode("sixel", path))
    out = tmp_path / "decoded.png"
    subprocess.run(["sixel2png", "-i", str(sixel), "-o", str(out)], check=True)
    decoded = np.asarray(Image.open(out).convert("RGB"))
    assert decoded.shape == rgb.shape
    assert np.array_equal(decoded, rgb), f"{int((decoded != rgb).any(axis=-1).sum())} pixels differ"


def test_kitty_chunks_decode_to_the_pixels(tmp_path):
    path, rgb = pattern_image(tmp_path, width=120, height=50)  # 18,000 bytes: 24,000 base64 characters, 6 chunks
    stream = encode("kitty", path).decode("ascii")
    commands = re.findall(r"\x1b_G([^;]*);([^\x1b]*)\x1b\\", stream)
    assert "".join(f"\x1b_G{k};{p}\x1b\\" for k, p in commands) == stream, "bytes outside the APC commands"
    keys = [dict(kv.split("=") for kv in k.split(",")) for k, _ in commands]
    assert keys[0]["a"] == "T" and keys[0]["f"] == "24"
    assert (int(keys[0]["s"]), int(keys[0]["v"])) == (120, 50)
    assert [k["m"] for k in keys] == ["1"] * (len(keys) - 1) + ["0"]
    assert all(set(k) == {"m"} for k in keys[1:]), "only the first chunk carries the image's keys"
    assert all(len(p) <= 4096 for _, p in commands)
    data = base64.b64decode("".join(p for _, p in commands))
    assert np.array_equal(np.frombuffer(data, np.uint8).reshape(50, 120, 3), rgb)


def test_iterm_inline_image_decodes_to_the_pixels(tmp_path):
    path, rgb = pattern_image(tmp_path)
    stream = encode("iterm", path).decode("ascii")
    match = re.fullmatch(r"\x1b\]1337;File=([^:]*):([A-Za-z0-9+/=]*)\x07", stream)
    assert match, stream[:120]
    arguments = dict(kv.split("=") for kv in match.group(1).split(";"))
    png = base64.b64decode(match.group(2))
    assert arguments["inline"] == "1" and int(arguments["size"]) == len(png)
    assert (arguments["width"], arguments["height"]) == ("70px", "41px")
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png)).convert("RGB")), rgb)


def free_display() -> int:
    for n in range(90, 140):
        if not os.path.exists(f"/tmp/.X{n}-lock") and not os.path.exists(f"/tmp/.X11-unix/X{n}"):
            return n
    pytest.skip("no free X display number")


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    from conftest import RunningDaemon

    running = RunningDaemon(tmp_path_factory, "--annotator", f"pixels:{TOKEN}")
    yield running.address
    running.stop()


def test_xterm_shows_the_slides_pixels(daemon, tmp_path):
    missing = [t for t in ("Xvfb", "xterm", "import") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (bash Deploy/install-deps.sh --python installs them)")
    openslide = pytest.importorskip("openslide")
    from conftest import SLIDE

    display = free_display()
    xvfb = subprocess.Popen(["Xvfb", f":{display}", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    frames = tmp_path / "frames.jsonl"
    frames.touch()
    env = dict(os.environ, DISPLAY=f":{display}", HALI_SERVER=daemon, HALI_TOKEN=TOKEN, HALI_FRAME_LOG=str(frames))
    hali = os.path.join(BIN, "hali")
    command = f"'{hali}' label --graphics sixel CMU-1-Small-Region til 2>'{tmp_path}/label.err'; sleep 600"
    term = None
    try:
        for _ in range(50):
            if os.path.exists(f"/tmp/.X11-unix/X{display}"):
                break
            time.sleep(0.1)
        # -b 0 -bw 0: no border, so the text area starts at the window's (0, 0).
        term = subprocess.Popen(["xterm", "-ti", "vt340", "-b", "0", "-bw", "0", "-geometry", "110x36+0+0",
                                 "-fa", "DejaVu Sans Mono", "-fs", "10", "-e", "sh", "-c", command], env=env)
        deadline = time.time() + 60
        while time.time() < deadline and not frames.read_text().strip():
            time.sleep(0.2)
        lines = frames.read_text().strip().splitlines()
        assert lines, "no picture was drawn: " + (tmp_path / "label.err").read_text()
        time.sleep(1.5)  # let xterm paint the sixel
        shot = tmp_path / "xterm.png"
        subprocess.run(["import", "-display", f":{display}", "-window", "root", str(shot)], check=True)
        frame = json.loads(frames.read_text().strip().splitlines()[-1])
        screen = np.asarray(Image.open(shot).convert("RGB")).astype(np.float64)
        x0 = frame["column"] * frame["cell_width"]
        y0 = frame["row"] * frame["cell_height"]
        w, h = frame["width"], frame["height"]
        shown = screen[y0:y0 + h, x0:x0 + w]
        assert shown.shape[:2] == (h, w), f"picture {w}x{h} at ({x0},{y0}) is outside the {screen.shape} screen"
        rx, ry, rw, rh = frame["region"]
        with openslide.OpenSlide(SLIDE) as slide:
            region = slide.read_region((rx, ry), 0, (rw, rh)).convert("RGB").resize((w, h), Image.BILINEAR)
        truth = np.asarray(region).astype(np.float64)

        def luminance(a):
            return 0.299 * a[..., 0] + 0.587 * a[..., 1] + 0.114 * a[..., 2]

        a, b = luminance(shown).ravel(), luminance(truth).ravel()
        correlation = float(np.corrcoef(a, b)[0, 1])
        print(f"picture {w}x{h} px of region {rw}x{rh} at ({rx},{ry}); correlation with OpenSlide {correlation:.3f}")
        keep = os.environ.get("HALI_KEEP_SCREENSHOT")
        if keep:
            shutil.copy(shot, keep)
        assert correlation >= 0.9
    finally:
        if term is not None:
            term.terminate()
            term.wait(timeout=10)
        xvfb.terminate()
        xvfb.wait(timeout=10)
