// The landcover map viewer: a canvas over pre-rendered pyramid tiles, for pages opened from disk.
// Tiles arrive as scripts (LCV.tile) carrying data: URL pictures, the only kind a file:// page may read back.
"use strict";
(function () {
  const LCV = (window.LCV = window.LCV || {});
  const LAYERS = [
    { id: "true_colour", name: "true colour", on: false, opacity: 1, smooth: true },
    { id: "map", name: "land cover", on: true, opacity: 1 },
    { id: "reference", name: "reference", on: false, opacity: 1 },
    { id: "confidence", name: "confidence", on: false, opacity: 1 },
    { id: "disagreement", name: "disagreement", on: false, opacity: 1 },
    { id: "reference_check", name: "reference check", on: false, opacity: 1, vector: true },
  ];
  const HAS_IMAGERY = 128;
  const DISAGREE = [230, 0, 126, 255];
  const AGREE = [255, 255, 255, 0];
  const RAMP = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]]; // viridis, 0..100 %
  const CHECK_RAMP = [[255, 200, 0], [255, 100, 0], [200, 0, 40]]; // reference check: share contradicted 50..100 %
  let checked = null; // flagged reference polygons, worst first, once loaded
  const tiles = new Map(); // "z/x_y" -> {state, w, h, pixels, rgb, layers}
  const infos = new Map(); // tile id -> info, or a list of callbacks while loading
  let M = null;
  let present = [];
  let lut = null;
  let names = {};
  let canvas, ctx;
  const view = { cx: 0, cy: 0, res: 1 }; // centre in map units, map units per CSS pixel
  let selected = null;
  let pending = 0;

  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs, ...children) => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "style") node.style.cssText = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key in node) node[key] = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) node.append(child);
    return node;
  };

  function hexRgb(hex) {
    const v = parseInt(hex.slice(1), 16);
    return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
  }

  function rampColour(percent) {
    const t = (Math.min(100, Math.max(0, percent)) / 100) * (RAMP.length - 1);
    const i = Math.min(RAMP.length - 2, Math.floor(t));
    const f = t - i;
    return RAMP[i].map((c, k) => Math.round(c + (RAMP[i + 1][k] - c) * f));
  }

  LCV.manifest = function (manifest) {
    M = manifest;
    present = M.present.map((list) => new Set(list ? list.split(",") : []));
    lut = new Uint8ClampedArray(256 * 4);
    for (const c of M.classes) {
      lut.set([...hexRgb(c.colour), 255], c.id * 4);
      names[c.id] = c.name;
    }
    init();
  };

  // ---- tiles ----
  // map units per pixel of level z, across and down (pixels may be slightly non-square, as an EOPatch's)
  function levelRes(z) {
    return M.res * 2 ** (M.levels - z);
  }

  function levelResY(z) {
    return M.resY * 2 ** (M.levels - z);
  }

  const right = () => M.left + M.width * M.res;
  const bottom = () => M.top - M.height * M.resY;

  function loadScript(src, onerror) {
    pending++;
    const script = el("script", { src });
    script.onload = script.onerror = () => {
      pending--;
      script.remove();
    };
    if (onerror) script.addEventListener("error", onerror);
    document.head.append(script);
  }

  function decode(url) {
    const img = new Image();
    img.src = url;
    return img.decode().then(() => img);
  }

  function getTile(z, x, y) {
    const key = `${z}/${x}_${y}`;
    let tile = tiles.get(key);
    if (!tile && present[z] && present[z].has(`${x}_${y}`)) {
      tile = { state: "loading", callbacks: [] };
      tiles.set(key, tile);
      loadScript(`${M.folder}/tiles/${z}/${x}_${y}.js`);
    }
    return tile;
  }

  LCV.tile = function (key, dataUrl, rgbUrl) {
    const tile = tiles.get(key);
    pending++;
    Promise.all([decode(dataUrl), decode(rgbUrl)]).then(([data, rgb]) => {
      const c = el("canvas", { width: data.width, height: data.height });
      const g = c.getContext("2d", { willReadFrequently: true });
      g.drawImage(data, 0, 0);
      tile.w = data.width;
      tile.h = data.height;
      tile.pixels = g.getImageData(0, 0, tile.w, tile.h).data;
      tile.rgb = rgb;
      tile.layers = {};
      tile.state = "ready";
      pending--;
      tile.callbacks.forEach((f) => f(tile));
      tile.callbacks = [];
      draw();
    });
  };

  function whenReady(tile, callback) {
    if (tile.state === "ready") callback(tile);
    else tile.callbacks.push(callback);
  }

  function layerCanvas(tile, id) {
    if (tile.layers[id]) return tile.layers[id];
    const c = el("canvas", { width: tile.w, height: tile.h });
    const g = c.getContext("2d");
    const out = g.createImageData(tile.w, tile.h);
    const p = tile.pixels;
    const o = out.data;
    if (id === "true_colour") {
      g.drawImage(tile.rgb, 0, 0, tile.w, tile.h);
      o.set(g.getImageData(0, 0, tile.w, tile.h).data);
    }
    for (let i = 0; i < p.length; i += 4) {
      const cls = p[i], ref = p[i + 1], conf = p[i + 2] & 127;
      let rgba;
      if (id === "map") rgba = lut.subarray(cls * 4, cls * 4 + 4);
      else if (id === "reference") rgba = lut.subarray(ref * 4, ref * 4 + 4);
      else if (id === "confidence") rgba = cls && conf ? [...rampColour(conf), 255] : AGREE;
      else if (id === "disagreement") rgba = cls && ref ? (cls === ref ? AGREE : DISAGREE) : AGREE;
      else {
        o[i + 3] = p[i + 2] & HAS_IMAGERY ? 255 : 0;
        continue;
      }
      o.set(rgba, i);
    }
    g.putImageData(out, 0, 0);
    return (tile.layers[id] = c);
  }

  // ---- drawing ----
  function size() {
    return { w: canvas.clientWidth, h: canvas.clientHeight };
  }

  function toScreen(x, y) {
    const { w, h } = size();
    return [(x - view.cx) / view.res + w / 2, (view.cy - y) / view.res + h / 2];
  }

  function toMap(sx, sy) {
    const { w, h } = size();
    return [view.cx + (sx - w / 2) * view.res, view.cy - (sy - h / 2) * view.res];
  }

  function levelFor(res) {
    const z = Math.ceil(M.levels - Math.log2(res / M.res) - 1e-9);
    return Math.max(0, Math.min(M.levels, z));
  }

  // the tile of level z at map coordinates, as (tx, ty) and its pixel offset
  function tileAt(z, x, y) {
    const r = levelRes(z);
    const px = Math.floor((x - M.left) / r);
    const py = Math.floor((M.top - y) / levelResY(z));
    return [Math.floor(px / M.tileSize), Math.floor(py / M.tileSize), px % M.tileSize, py % M.tileSize];
  }

  function drawTile(z, tx, ty) {
    // the tile itself, or the part of a loaded coarser tile that covers it
    const r = levelRes(z);
    const span = M.tileSize * r;
    const spanY = M.tileSize * levelResY(z);
    const x0 = M.left + tx * span;
    const y0 = M.top - ty * spanY;
    const w = Math.min(span, right() - x0);
    const h = Math.min(spanY, y0 - bottom());
    for (let a = z; a >= 0; a--) {
      const shift = z - a;
      const tile = a === z ? getTile(z, tx, ty) : tiles.get(`${a}/${tx >> shift}_${ty >> shift}`);
      if (!tile || tile.state !== "ready") continue;
      const ar = levelRes(a);
      const ax0 = M.left + (tx >> shift) * M.tileSize * ar;
      const ary = levelResY(a);
      const ay0 = M.top - (ty >> shift) * M.tileSize * ary;
      const src = [(x0 - ax0) / ar, (ay0 - y0) / ary, w / ar, h / ary];
      const [sx, sy] = toScreen(x0, y0);
      for (const layer of LAYERS) {
        if (!layer.on || layer.opacity === 0 || layer.vector) continue;
        ctx.globalAlpha = layer.opacity;
        ctx.imageSmoothingEnabled = !!layer.smooth;
        ctx.drawImage(layerCanvas(tile, layer.id), ...src, sx, sy, w / view.res, h / view.res);
      }
      ctx.globalAlpha = 1;
      return;
    }
  }

  function draw() {
    if (!M) return;
    const { w, h } = size();
    const dpr = window.devicePixelRatio || 1;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const z = levelFor(view.res);
    const [x0, y0] = toMap(0, 0);
    const [x1, y1] = toMap(w, h);
    const [tx0, ty0] = tileAt(z, Math.max(x0, M.left), Math.min(y0, M.top));
    const [tx1, ty1] = tileAt(z, Math.min(x1, right() - 1e-6), Math.max(y1, bottom() + 1e-6));
    for (let ty = ty0; ty <= ty1; ty++) for (let tx = tx0; tx <= tx1; tx++) drawTile(z, tx, ty);
    if ($("grid-toggle").checked) drawGrid();
    drawChecked();
    drawScale();
    document.body.dataset.level = z;
  }

  function drawGrid() {
    ctx.font = "12px system-ui, sans-serif";
    for (const t of M.grid) {
      const [left, bottom, right, top] = t.bounds;
      const [sx, sy] = toScreen(left, top);
      const sw = (right - left) / view.res;
      const sh = (top - bottom) / view.res;
      const isSelected = selected === t.id;
      ctx.strokeStyle = isSelected ? "#e6007e" : "rgba(0,0,0,.75)";
      ctx.lineWidth = isSelected ? 3 : 1;
      ctx.strokeRect(sx, sy, sw, sh);
      if (sw > 90) {
        ctx.fillStyle = "rgba(255,255,255,.8)";
        ctx.fillRect(sx + 2, sy + 2, ctx.measureText(t.id).width + 6, 16);
        ctx.fillStyle = "#000";
        ctx.fillText(t.id, sx + 5, sy + 14);
      }
    }
  }

  // ---- reference check ----
  LCV.referenceCheck = function (polygons) {
    checked = polygons.map((p) => {
      const path = new Path2D();
      for (const ring of p.rings) {
        ring.forEach(([x, y], i) => (i ? path.lineTo(x, -y) : path.moveTo(x, -y)));
        path.closePath();
      }
      return { ...p, path };
    });
    draw();
  };

  function checkColour(share) {
    const t = Math.min(1, Math.max(0, (share - 0.5) / 0.5)) * (CHECK_RAMP.length - 1);
    const i = Math.min(CHECK_RAMP.length - 2, Math.floor(t));
    return CHECK_RAMP[i].map((c, k) => Math.round(c + (CHECK_RAMP[i + 1][k] - c) * (t - i)));
  }

  function drawChecked() {
    const layer = LAYERS.find((l) => l.id === "reference_check");
    if (!layer.on || !checked) return;
    const { w, h } = size();
    const dpr = window.devicePixelRatio || 1;
    // map units to device pixels, the path's y being -y (north up)
    ctx.setTransform(dpr / view.res, 0, 0, dpr / view.res, dpr * (w / 2 - view.cx / view.res), dpr * (h / 2 + view.cy / view.res));
    ctx.globalAlpha = layer.opacity;
    for (let i = checked.length - 1; i >= 0; i--) { // the worst drawn last, on top; a dark halo for contrast
      ctx.lineWidth = 4.5 * view.res;
      ctx.strokeStyle = "rgba(0,0,0,.75)";
      ctx.stroke(checked[i].path);
      ctx.lineWidth = 2.5 * view.res;
      ctx.strokeStyle = `rgb(${checkColour(checked[i].share)})`;
      ctx.stroke(checked[i].path);
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.globalAlpha = 1;
  }

  function checkedAt(x, y) {
    const layer = LAYERS.find((l) => l.id === "reference_check");
    if (!layer.on || !checked) return null;
    ctx.save();
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    const found = checked.find((p) => ctx.isPointInPath(p.path, x, -y));
    ctx.restore();
    return found || null;
  }

  function drawScale() {
    const target = 120 * view.res;
    const power = 10 ** Math.floor(Math.log10(target));
    const nice = [5, 2, 1].map((f) => f * power).find((v) => v <= target);
    $("scale-bar").style.width = `${nice / view.res}px`;
    $("scale-label").textContent = nice >= 1000 ? `${nice / 1000} km` : `${nice} m`;
  }

  // ---- pixel values ----
  function valuesAt(x, y, exact, callback) {
    // the finest loaded level (or, with `exact`, the map's own pixels once loaded)
    const inside = x >= M.left && x < right() && y <= M.top && y > bottom();
    if (!inside) return callback(null);
    for (let z = M.levels; z >= 0; z--) {
      const [tx, ty, px, py] = tileAt(z, x, y);
      const tile = z === M.levels && exact ? getTile(z, tx, ty) : tiles.get(`${z}/${tx}_${ty}`);
      if (!tile) continue;
      if (tile.state !== "ready") {
        if (exact) return whenReady(tile, () => valuesAt(x, y, exact, callback));
        continue;
      }
      const i = (py * tile.w + px) * 4;
      const p = tile.pixels;
      return callback({ cls: p[i], ref: p[i + 1], conf: p[i + 2] & 127, level: z });
    }
    callback(null);
  }

  function describe(x, y, v) {
    const rows = [["x, y", `${Math.round(x)}, ${Math.round(y)} (${M.crs})`]];
    const tile = tileOf(x, y);
    if (tile) rows.push(["tile", tile.id]);
    if (v) {
      rows.push(["class", v.cls ? names[v.cls] || `class ${v.cls}` : "no data"]);
      rows.push(["confidence", v.cls && v.conf ? `${v.conf} %` : "–"]);
      rows.push(["reference", v.ref ? names[v.ref] || `class ${v.ref}` : "no reference"]);
      if (v.level !== M.levels) rows.push(["pixel", `overview, ${levelRes(v.level)} m`]);
    }
    const polygon = checkedAt(x, y);
    if (polygon) {
      rows.push(["reference check", `#${polygon.rank}: ${names[polygon.cls]} in the reference, ${Math.round(100 * polygon.share)} % mapped as another class with high confidence; the map prefers ${names[polygon.map]} (${polygon.conf} %)`]);
    }
    return rows;
  }

  function tileOf(x, y) {
    return M.grid.find((t) => x >= t.bounds[0] && x < t.bounds[2] && y > t.bounds[1] && y <= t.bounds[3]);
  }

  // ---- tile panel ----
  LCV.tileInfo = function (id, info) {
    const waiting = infos.get(id);
    infos.set(id, info);
    if (Array.isArray(waiting)) waiting.forEach((f) => f(info));
  };

  function withInfo(id, callback) {
    const known = infos.get(id);
    if (known && !Array.isArray(known)) return callback(known);
    if (known) return known.push(callback);
    infos.set(id, [callback]);
    loadScript(`${M.folder}/info/${id}.js`);
  }

  function showTile(t) {
    selected = t.id;
    draw();
    const box = $("tile");
    box.replaceChildren(el("p", {}, el("b", { id: "tile-id" }, t.id), ` · ${t.bounds.map(Math.round).join(", ")}`));
    withInfo(t.id, (info) => {
      if (selected !== t.id) return;
      box.append(
        el("p", {}, `imagery: ${info.imagery}`),
        el("img", { src: info.thumbnail, alt: `true colour, reference and map of tile ${t.id}`, className: "thumb" }),
        el("p", { className: "caption" }, "true colour · reference · land cover"),
      );
      if (info.picture) box.append(el("p", {}, el("a", { href: info.picture, target: "_blank" }, "full picture of the tile")));
      for (const [path, text] of Object.entries(info.logs)) {
        box.append(el("details", { className: "log" }, el("summary", {}, path), el("pre", {}, text)));
      }
      showFigures();
    });
  }

  function showFigures() {
    const box = $("figures");
    box.replaceChildren();
    for (const f of M.figures) {
      if (f.tile && f.tile !== selected) {
        box.append(el("p", {}, el("a", { href: "#", onclick: (e) => (e.preventDefault(), goToTile(f.tile)) }, `tile ${f.tile}`), `: ${f.caption.split(".")[0]}.`));
        continue;
      }
      box.append(el("figure", {}, el("img", { src: f.src, alt: f.caption }), el("figcaption", {}, f.caption)));
    }
  }

  function goToTile(id) {
    const t = M.grid.find((g) => g.id === id);
    const [left, bottom, right, top] = t.bounds;
    fit(left, bottom, right, top);
    showTile(t);
  }

  // ---- controls ----
  function fit(left, bottom, right, top) {
    const { w, h } = size();
    view.cx = (left + right) / 2;
    view.cy = (bottom + top) / 2;
    view.res = Math.max((right - left) / (w - 20), (top - bottom) / (h - 20));
    draw();
  }

  function zoom(factor, sx, sy) {
    const { w, h } = size();
    if (sx === undefined) [sx, sy] = [w / 2, h / 2];
    const [x, y] = toMap(sx, sy);
    view.res = Math.min(Math.max(view.res * factor, M.res / 16), levelRes(0) * 4);
    view.cx = x - (sx - w / 2) * view.res;
    view.cy = y + (sy - h / 2) * view.res;
    draw();
  }

  function buildPanel() {
    $("crs").textContent = `${M.crs}, ${+M.res.toFixed(4)} m pixels, ${M.grid.length} tiles`;
    for (const layer of LAYERS.filter((l) => !l.vector || M.referenceCheck)) {
      const box = el("input", { type: "checkbox", checked: layer.on, id: `layer-${layer.id}` });
      const slider = el("input", { type: "range", min: 0, max: 100, value: layer.opacity * 100, id: `opacity-${layer.id}`, title: "opacity" });
      box.onchange = () => ((layer.on = box.checked), draw());
      slider.oninput = () => ((layer.opacity = slider.value / 100), draw());
      $("layers").append(el("label", { className: "row" }, box, layer.name, slider));
    }
    $("grid-toggle").onchange = draw;
    for (const c of M.classes) {
      $("legend").append(el("li", { dataset: { id: c.id } }, el("span", { className: "swatch", style: `background:${c.colour}` }), c.name));
    }
    const stops = [0, 25, 50, 75, 100].map((p) => `rgb(${rampColour(p)}) ${p}%`).join(",");
    $("ramps").append(
      el("div", {}, "confidence"),
      el("div", { className: "ramp", style: `background:linear-gradient(to right,${stops})` }),
      el("div", { className: "ramp-labels" }, el("span", {}, "0 %"), el("span", {}, "100 %")),
      el("div", { className: "row" }, el("span", { className: "swatch", style: `background:rgb(${DISAGREE.slice(0, 3)})` }), "disagreement: map ≠ reference"),
    );
    if (M.referenceCheck) {
      const checkStops = [50, 75, 100].map((p) => `rgb(${checkColour(p / 100)}) ${2 * p - 100}%`).join(",");
      $("ramps").append(
        el("div", { id: "check-legend" }, "reference check: flagged polygons, share of their pixels mapped as another class with high confidence (may also be land use that is not land cover)"),
        el("div", { className: "ramp", style: `background:linear-gradient(to right,${checkStops})` }),
        el("div", { className: "ramp-labels" }, el("span", {}, "50 %"), el("span", {}, "100 %")),
      );
      loadScript(`${M.folder}/reference_check.js`);
    }
    showFigures();
  }

  function showPixel(rows) {
    $("pixel").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", { dataset: { key: k } }, v)]));
  }

  function init() {
    canvas = $("canvas");
    ctx = canvas.getContext("2d");
    buildPanel();
    const map = $("map");
    let drag = null;
    map.addEventListener("pointerdown", (e) => {
      if (e.target.closest("#zoom")) return;
      drag = { x: e.clientX, y: e.clientY, cx: view.cx, cy: view.cy, moved: false };
      map.setPointerCapture(e.pointerId);
    });
    map.addEventListener("pointermove", (e) => {
      const rect = canvas.getBoundingClientRect();
      const sx = e.clientX - rect.left, sy = e.clientY - rect.top;
      if (drag) {
        const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
        if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
        if (drag.moved) {
          map.classList.add("dragging");
          view.cx = drag.cx - dx * view.res;
          view.cy = drag.cy + dy * view.res;
          draw();
        }
        return;
      }
      const [x, y] = toMap(sx, sy);
      valuesAt(x, y, false, (v) => {
        const hover = $("hover");
        hover.hidden = !v;
        if (!v) return;
        hover.replaceChildren(...describe(x, y, v).slice(1).map(([k, val]) => el("div", {}, `${k}: ${val}`)));
        hover.style.left = `${sx + 14}px`;
        hover.style.top = `${sy + 14}px`;
      });
    });
    map.addEventListener("pointerleave", () => ($("hover").hidden = true));
    map.addEventListener("pointerup", (e) => {
      const wasDrag = drag && drag.moved;
      drag = null;
      map.classList.remove("dragging");
      if (wasDrag || e.target.closest("#zoom")) return;
      const rect = canvas.getBoundingClientRect();
      const [x, y] = toMap(e.clientX - rect.left, e.clientY - rect.top);
      showPixel(describe(x, y, null));
      valuesAt(x, y, true, (v) => showPixel(describe(x, y, v)));
      const t = tileOf(x, y);
      if (t && t.id !== selected) showTile(t);
    });
    map.addEventListener("wheel", (e) => {
      e.preventDefault();
      const rect = canvas.getBoundingClientRect();
      zoom(e.deltaY > 0 ? 1.25 : 0.8, e.clientX - rect.left, e.clientY - rect.top);
    }, { passive: false });
    $("zoom-in").onclick = () => zoom(0.5);
    $("zoom-out").onclick = () => zoom(2);
    $("zoom-fit").onclick = () => fit(M.left, bottom(), right(), M.top);
    window.addEventListener("resize", draw);
    $("zoom-fit").onclick();
  }

  // for tests and scripting: where a map coordinate is on screen, and whether tiles are still loading
  LCV.toScreen = (x, y) => toScreen(x, y);
  LCV.view = view;
  LCV.checked = () => (checked || []).map(({ path, ...p }) => p);
  LCV.idle = () => pending === 0 && [...tiles.values()].every((t) => t.state === "ready");
  LCV.setView = (cx, cy, res) => ((view.cx = cx), (view.cy = cy), (view.res = res), draw());
})();
