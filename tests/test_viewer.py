"""The offline map viewer (results/map.html) in a real headless Chromium, and the map's GDAL/QGIS class names."""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from conftest import default_config
from PIL import Image
from scipy.ndimage import maximum_filter, minimum_filter

from landcover.classes import EOLEARN_CLASSES, classes_from_config
from landcover.maps import merge_tiles, write_class_geotiff, write_confidence_geotiff
from landcover.viewer import HAS_IMAGERY, MAX_CHECKED, MapTile, build_viewer, write_true_colour
from tools.viewer_sizes import page_size, projected_size

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--force-color-profile=srgb",
]
CLASSES = classes_from_config(default_config()["classes"])
COLOUR = {c.id: c.rgb for c in CLASSES}
NAME = {c.id: c.name for c in CLASSES}


@pytest.mark.slow
def test_map_names_its_classes_for_gdal_and_qgis(completed_run):
    results = completed_run / "results"
    info = json.loads(
        subprocess.run(
            ["gdalinfo", "-json", str(results / "landcover.tif")], capture_output=True, text=True, check=True
        ).stdout
    )
    band = info["bands"][0]
    assert band["categories"][2] == "forest" and band["categories"][8] == "artificial surface"
    fields = [f["name"] for f in info["rat"]["fieldDefn"]]
    assert fields == ["Value", "Class", "Red", "Green", "Blue", "Alpha"]
    rows = {row["f"][0]: row["f"][1:] for row in info["rat"]["row"]}
    assert rows[5] == ["water", 6, 154, 243, 255]
    style = ET.parse(results / "landcover.qml").getroot()
    entries = {e.get("value"): (e.get("label"), e.get("color")) for e in style.iter("paletteEntry")}
    assert entries["2"] == ("forest", "#054907") and "0" not in entries
    assert style.find("pipe/rasterrenderer").get("type") == "paletted"


@pytest.mark.slow
def test_viewer_is_self_contained_and_light(completed_run):
    results = completed_run / "results"
    page = (results / "map.html").read_text()
    assert "http://" not in page and "https://" not in page
    for name in ("viewer.js", "viewer.css", "manifest.js"):
        text = (results / "viewer" / name).read_text()
        assert "http://" not in text and "https://" not in text, name
    sizes = page_size(results / "map.html")
    assert sizes["page_bytes"] < 100_000
    country = projected_size(sizes)
    assert country["page_bytes"] < 500_000 and country["first_view_tile_bytes"] < 2_000_000, country


def write_tile(folder, grid, seed, block=1):
    """A tile's map (in blocks of `block` pixels), confidence, reference (2 bands) and true colour, random."""
    rng = np.random.default_rng(seed)
    shape = (grid.height, grid.width)
    coarse = rng.choice([0, 1, 2, 5], size=(-(-shape[0] // block), -(-shape[1] // block)))
    labels = np.kron(coarse, np.ones((block, block)))[: shape[0], : shape[1]].astype(np.uint8)
    confidence = np.where(labels > 0, rng.integers(1, 101, shape), 0).astype(np.uint8)
    reference = rng.choice([0, 1, 2, 5], size=shape).astype(np.uint8)
    rgb = rng.integers(1, 256, (3, *shape)).astype(np.uint8)
    paths = [folder / f"{grid.tile_id}_{name}.tif" for name in ("map", "confidence", "reference", "rgb")]
    write_class_geotiff(paths[0], labels, grid, EOLEARN_CLASSES)
    write_confidence_geotiff(paths[1], confidence, grid)
    profile = {"driver": "GTiff", "width": grid.width, "height": grid.height, "dtype": "uint8", "crs": grid.crs}
    with rasterio.open(paths[2], "w", count=2, transform=grid.transform, **profile) as dst:
        dst.write(np.stack([reference, reference]))
    with rasterio.open(paths[3], "w", count=3, transform=grid.transform, nodata=0, **profile) as dst:
        dst.write(rgb)
        dst.update_tags(TITLE="true colour 2017-07-15")
    return MapTile(grid.tile_id, *map(str, paths)), labels, confidence, reference


def decode_tile(path):
    """The data picture of a pyramid tile script: (class, reference, confidence byte) per pixel."""
    text = path.read_text()
    png = text.split('"data:image/png;base64,')[1].split('"')[0]
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(png))))


def test_true_colour_of_an_index_only_stack_is_its_ndvi(tmp_path):
    from test_figures import index_only_stack
    from test_maps import tile_grid

    title = write_true_colour(index_only_stack(tile_grid(7, 8, size=20)), tmp_path / "rgb.tif")
    assert title.startswith("NDVI 2017-06-01")
    with rasterio.open(tmp_path / "rgb.tif") as src:
        assert src.count == 3 and src.nodata == 0 and src.tags()["TITLE"] == title
        assert src.read().min() >= 1  # 0 is kept for no data


def two_tile_viewer(folder, block=1):
    """A viewer of two 300 x 300 pixel tiles side by side (600 x 300: pyramid levels 0..2)."""
    from test_maps import tile_grid

    tiles, truth = [], []
    for index, (ix, iy) in enumerate([(10, 20), (11, 20)]):
        tile, labels, confidence, reference = write_tile(folder, tile_grid(ix, iy, size=300), index, block)
        tiles.append(tile)
        truth.append((labels, confidence, reference))
    merge_tiles([t.map for t in tiles], folder / "landcover.tif", EOLEARN_CLASSES)
    build_viewer(folder / "landcover.tif", tiles, EOLEARN_CLASSES, folder / "map.html", folder / "viewer")
    return tiles, truth


def test_pyramid_levels_carry_exact_values_at_full_resolution(tmp_path):
    tiles, truth = two_tile_viewer(tmp_path)

    folder = tmp_path / "viewer"
    manifest = json.loads((folder / "manifest.js").read_text().removeprefix("LCV.manifest(").strip().rstrip(");"))
    assert manifest["levels"] == 2 and (manifest["width"], manifest["height"]) == (600, 300)
    assert manifest["present"] == ["0_0", "0_0,1_0", "0_0,1_0,2_0,0_1,1_1,2_1"]
    labels, confidence, reference = (np.concatenate(parts, axis=1) for parts in zip(*truth))
    data = decode_tile(folder / "tiles" / "2" / "1_1.js")  # map pixels rows 256..299, columns 256..511
    window = np.s_[256:300, 256:512]
    np.testing.assert_array_equal(data[..., 0], labels[window])
    np.testing.assert_array_equal(data[..., 1], reference[window])
    np.testing.assert_array_equal(data[..., 2] % HAS_IMAGERY, confidence[window])
    assert (data[..., 2] & HAS_IMAGERY).all()
    overview = decode_tile(folder / "tiles" / "0" / "0_0.js")
    assert overview.shape[:2] == (75, 150)
    assert set(np.unique(overview[..., 0])) <= {0, 1, 2, 5}  # nearest: no invented classes
    info = (folder / "info" / f"{tiles[0].tile_id}.js").read_text()
    assert "true colour 2017-07-15" in info and (folder / "info" / f"{tiles[0].tile_id}.png").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temporaries


def known_pixels(results, count=4):
    """Map pixels inside 5 x 5 blocks of one class (for exact screen colours), one per class, with their values."""
    with rasterio.open(results / "landcover.tif") as src:
        labels, transform = src.read(1), src.transform
    pure = (minimum_filter(labels, 5) == maximum_filter(labels, 5)) & (labels > 0)
    points = []
    for value in np.unique(labels[pure])[:count]:
        rows, cols = np.nonzero(pure & (labels == value))
        row, col = rows[len(rows) // 2], cols[len(cols) // 2]
        x, y = transform * (col + 0.5, row + 0.5)
        points.append((float(x), float(y), int(value)))
    return points


def pixel_at(png: bytes, x: float, y: float) -> tuple[int, int, int]:
    return Image.open(io.BytesIO(png)).convert("RGB").getpixel((round(x), round(y)))


@pytest.fixture(scope="module")
def browser():
    from playwright import sync_api  # a test extra: `make test` installs it

    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def open_viewer(browser, results):
    page = browser.new_page(viewport={"width": 1280, "height": 800}, device_scale_factor=1)
    seen = {"requests": [], "errors": []}
    page.on("request", lambda request: seen["requests"].append(request.url))
    page.on("console", lambda message: message.type == "error" and seen["errors"].append(message.text))
    page.on("pageerror", lambda error: seen["errors"].append(str(error)))
    page.route(
        "**/*", lambda route: route.continue_() if route.request.url.startswith(("file:", "data:")) else route.abort()
    )
    page.goto((results / "map.html").as_uri())
    page.wait_for_function("window.LCV && LCV.idle && LCV.idle()")
    return page, seen


def settle(page):
    page.wait_for_function("LCV.idle()")
    page.evaluate("new Promise(requestAnimationFrame)")


@pytest.mark.slow
def test_viewer_in_chromium(browser, completed_run, tmp_path):
    results = completed_run / "results"
    page, seen = open_viewer(browser, results)
    page.screenshot(path=tmp_path / "whole.png")

    legend = page.locator("#legend li").all_inner_texts()
    assert [text.strip() for text in legend] == [c.name for c in CLASSES if c.id]

    # the map's colours on screen are the COG's class colours, pixel for pixel
    page.uncheck("#grid-toggle")
    points = known_pixels(results)
    assert len(points) >= 2
    for x, y, value in points:
        page.evaluate(f"LCV.setView({x}, {y}, 2.5)")  # one map pixel = 4 screen pixels
        settle(page)
        sx, sy = page.evaluate(f"LCV.toScreen({x}, {y})")
        assert pixel_at(page.locator("#canvas").screenshot(), sx, sy) == COLOUR[value], (x, y, NAME[value])

    # a click on a known pixel tells its class, confidence and reference
    x, y, value = points[0]
    page.evaluate(f"LCV.setView({x}, {y}, 2.5)")
    settle(page)
    sx, sy = page.evaluate(f"LCV.toScreen({x}, {y})")
    page.locator("#canvas").click(position={"x": sx, "y": sy})
    page.wait_for_function("document.querySelector('#pixel dd[data-key=confidence]')")
    shown = {k: page.locator(f"#pixel dd[data-key='{k}']").inner_text() for k in ("class", "confidence", "reference")}
    tile_id = page.locator("#pixel dd[data-key='tile']").inner_text()
    with rasterio.open(results / "maps" / f"{tile_id}_confidence.tif") as src:
        tile_row, tile_col = src.index(x, y)
        confidence = int(src.read(1)[tile_row, tile_col])
    with rasterio.open(results / "reference" / f"{tile_id}.tif") as src:
        reference = int(src.read(1)[src.index(x, y)])
    assert shown["class"] == NAME[value]
    assert shown["confidence"] == f"{confidence} %"
    assert shown["reference"] == (NAME[reference] if reference else "no reference")

    # the clicked tile offers its picture and its logs
    page.wait_for_selector("#tile details.log")
    assert page.locator("#tile-id").inner_text() == tile_id
    assert page.locator("#tile img.thumb").evaluate("img => img.complete && img.naturalWidth > 0")
    logs = page.locator("#tile details.log summary").all_inner_texts()
    assert any(f"predict/{tile_id}.log" in name for name in logs), logs

    # layers toggle: the reference layer alone shows the reference colour at the same place
    page.uncheck("#layer-map")
    page.check("#layer-reference")
    settle(page)
    expected = COLOUR[reference] if reference else None
    colour = pixel_at(page.locator("#canvas").screenshot(), sx, sy)
    if expected:
        assert colour == expected
    page.uncheck("#layer-reference")
    settle(page)
    blank = pixel_at(page.locator("#canvas").screenshot(), sx, sy)
    assert blank not in COLOUR.values()  # nothing drawn but the background
    page.check("#layer-true_colour")
    page.check("#layer-confidence")
    page.fill("#opacity-confidence", "50")
    page.check("#grid-toggle")
    page.click("#zoom-fit")
    settle(page)
    page.screenshot(path=tmp_path / "layers.png")

    # the reference check: the flagged polygons, worst first; a click inside the worst tells its rank and scores
    checked = gpd.read_file(results / "report" / "reference_check.gpkg", layer="reference_check")
    flagged = checked[checked["flagged"]].sort_values("rank")
    assert len(flagged) > 0, "the tiny run flags no reference polygon"
    page.uncheck("#layer-true_colour")
    page.uncheck("#layer-confidence")
    page.check("#layer-reference_check")
    settle(page)
    shown = page.evaluate("LCV.checked()")
    assert [p["rank"] for p in shown] == flagged["rank"].tolist()[:MAX_CHECKED]
    assert "reference check" in page.locator("#check-legend").inner_text()
    worst = flagged.iloc[0]
    x, y = worst.geometry.representative_point().coords[0]
    page.evaluate(f"LCV.setView({x}, {y}, 2.5)")
    settle(page)
    sx, sy = page.evaluate(f"LCV.toScreen({x}, {y})")
    page.locator("#canvas").click(position={"x": sx, "y": sy})
    page.wait_for_selector("#pixel dd[data-key='reference check']")
    text = page.locator("#pixel dd[data-key='reference check']").inner_text()
    assert text.startswith(f"#{worst['rank']}: {worst['class_name']} in the reference, ") and (
        f"{round(100 * worst['other_share'])} % mapped as another class" in text
    ), text
    page.check("#layer-map")
    page.click("#zoom-fit")
    settle(page)
    page.screenshot(path=tmp_path / "reference_check.png")

    assert not seen["errors"], seen["errors"]
    outside = [url for url in seen["requests"] if not url.startswith(("file:", "data:"))]
    assert not outside, outside
    page.close()


def test_every_pyramid_level_lands_in_place_in_chromium(browser, tmp_path):
    """Blocks of 16 x 16 pixels keep their class on every level (nearest overviews): at block centres the screen
    shows the block's colour at full resolution, and at 2x and 4x zoomed out."""
    _, truth = two_tile_viewer(tmp_path, block=16)
    labels = np.concatenate([truth[0][0], truth[1][0]], axis=1)
    page, seen = open_viewer(browser, tmp_path)
    page.uncheck("#grid-toggle")
    left, top = 30000.0, 63000.0  # tile_grid(10, 20, 300): 10 m pixels
    for res, level in ((2.5, "2"), (20.0, "1"), (40.0, "0")):
        for row, col in ((8, 8), (264, 296), (280, 520), (136, 584)):  # block centres in both tiles, both tile rows
            x, y = left + col * 10 + 5, top - row * 10 - 5  # the pixel's centre
            page.evaluate(f"LCV.setView({x}, {y}, {res})")
            settle(page)
            assert page.evaluate("document.body.dataset.level") == level
            sx, sy = page.evaluate(f"LCV.toScreen({x}, {y})")
            shot = page.locator("#canvas").screenshot()
            expected = COLOUR[labels[row, col]] if labels[row, col] else None
            colour = pixel_at(shot, sx, sy)
            if expected:
                assert colour == expected, (res, row, col)
            else:
                assert colour not in COLOUR.values(), (res, row, col)
    assert not seen["errors"], seen["errors"]
    page.close()
