"""The page of the interactive damage map: its HTML, style sheet and script.

The template of ``map.html`` (private helpers of
:mod:`~torchgeo_quake.mapping.html`): :func:`page` gives the HTML page, with
the style sheet and the script inlined, around the slot where
:class:`~torchgeo_quake.mapping.html.HTMLMapWriter` streams the data object
(``DATA``: the quantised outlines, the probabilities, ids and skip reasons, and
the colours and options). The script draws the buildings on a canvas in Web
Mercator coordinates and handles pan, zoom, filters, tooltips and the optional
basemap; it makes no network request without a basemap.
"""

from __future__ import annotations

import html

import numpy as np
import numpy.typing as npt

from ._html_notes import NOTES_STYLE
from .overview import DAMAGED_EDGE, SKIPPED_COLOR

_STYLE = """
html, body { margin: 0; height: 100%; overflow: hidden;
  font: 13px/1.35 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
#map { position: absolute; inset: 0; width: 100%; height: 100%;
  background: #f4f4f2; cursor: grab; touch-action: none; }
#map.dragging { cursor: grabbing; }
.box { position: absolute; background: rgba(255,255,255,0.94); border-radius: 6px;
  box-shadow: 0 1px 4px rgba(0,0,0,0.3); padding: 8px 10px; }
#panel { top: 10px; left: 10px; max-width: 330px; }
#panel h1 { font-size: 15px; margin: 0 0 4px; }
#panel .sub { color: #444; margin-bottom: 6px; }
#legend { display: block; width: 100%; height: 14px; margin: 4px 0 0; }
.ticks { display: flex; justify-content: space-between; font-size: 11px; color: #555; }
#panel label { display: block; margin-top: 3px; }
#controls { top: 10px; right: 10px; padding: 4px; display: flex;
  flex-direction: column; }
#controls button { width: 30px; height: 30px; margin: 2px; font-size: 17px;
  border: 1px solid #bbb; background: #fff; border-radius: 4px; cursor: pointer; }
#tip { pointer-events: none; display: none; min-width: 160px; }
#tip b { font-weight: 600; }
#tip .dmg { color: #b71c1c; }
#scale { bottom: 10px; left: 10px; padding: 3px 8px; }
#scalebar { height: 5px; border: 1.5px solid #222; border-top: none; margin-top: 2px; }
#attr { bottom: 0; right: 0; border-radius: 6px 0 0 0; padding: 2px 6px;
  font-size: 11px; color: #333; }
.key { margin-top: 4px; }
.key div { display: flex; align-items: center; gap: 6px; margin-top: 2px; }
.sw { flex: none; display: inline-block; width: 14px; height: 10px;
  box-sizing: border-box; }
"""

_SCRIPT = r"""
(function () {
  "use strict";
  var D = DATA;
  var canvas = document.getElementById("map");
  var ctx = canvas.getContext("2d");
  var tip = document.getElementById("tip");
  var n = D.p.length;
  var nr = D.rb.length;
  var q = D.q, x0 = D.origin[0], y0 = D.origin[1];
  var xy = new Float64Array(D.xy.length);
  for (var k = 0; k < D.xy.length; k += 2) {
    xy[k] = x0 + D.xy[k] * q;
    xy[k + 1] = y0 + D.xy[k + 1] * q;
  }
  // Bounding box of every building (from its rings).
  var bb = new Float64Array(4 * n);
  for (var i = 0; i < n; i++) {
    bb[4 * i] = Infinity; bb[4 * i + 1] = Infinity;
    bb[4 * i + 2] = -Infinity; bb[4 * i + 3] = -Infinity;
  }
  var ringsOf = [];
  for (i = 0; i < n; i++) ringsOf.push([]);
  var ext = [Infinity, Infinity, -Infinity, -Infinity];
  for (var r = 0; r < nr; r++) {
    var b = D.rb[r];
    ringsOf[b].push(r);
    for (var v = D.ro[r]; v < D.ro[r + 1]; v++) {
      var x = xy[2 * v], y = xy[2 * v + 1];
      if (x < bb[4 * b]) bb[4 * b] = x;
      if (y < bb[4 * b + 1]) bb[4 * b + 1] = y;
      if (x > bb[4 * b + 2]) bb[4 * b + 2] = x;
      if (y > bb[4 * b + 3]) bb[4 * b + 3] = y;
      if (x < ext[0]) ext[0] = x;
      if (y < ext[1]) ext[1] = y;
      if (x > ext[2]) ext[2] = x;
      if (y > ext[3]) ext[3] = y;
    }
  }
  if (!isFinite(ext[0])) ext = [-1000, -1000, 1000, 1000];
  // Uniform grid over the extent for hit testing.
  var G = Math.max(1, Math.min(512, Math.ceil(Math.sqrt(n / 4))));
  var gw = (ext[2] - ext[0]) / G || 1, gh = (ext[3] - ext[1]) / G || 1;
  var grid = new Array(G * G);
  for (i = 0; i < n; i++) {
    if (!isFinite(bb[4 * i])) continue;
    var c0 = Math.max(0, Math.min(G - 1, Math.floor((bb[4 * i] - ext[0]) / gw)));
    var c1 = Math.max(0, Math.min(G - 1, Math.floor((bb[4 * i + 2] - ext[0]) / gw)));
    var r0 = Math.max(0, Math.min(G - 1, Math.floor((bb[4 * i + 1] - ext[1]) / gh)));
    var r1 = Math.max(0, Math.min(G - 1, Math.floor((bb[4 * i + 3] - ext[1]) / gh)));
    for (var gr = r0; gr <= r1; gr++) {
      for (var gc = c0; gc <= c1; gc++) {
        var cell = gr * G + gc;
        (grid[cell] || (grid[cell] = [])).push(i);
      }
    }
  }
  var thr = Math.round(D.threshold * 1000);
  var view = { cx: (ext[0] + ext[2]) / 2, cy: (ext[1] + ext[3]) / 2, res: 1 };
  var W = 0, H = 0, dpr = 1;
  var mode = "all";
  var showSkipped = true;
  var auditOnly = false;
  var selected = -1;
  var pending = false;

  function fit() {
    var spanx = Math.max(ext[2] - ext[0], 50), spany = Math.max(ext[3] - ext[1], 50);
    view.cx = (ext[0] + ext[2]) / 2;
    view.cy = (ext[1] + ext[3]) / 2;
    view.res = 1.08 * Math.max(spanx / Math.max(W, 1), spany / Math.max(H, 1));
  }
  function resize() {
    dpr = window.devicePixelRatio || 1;
    W = canvas.clientWidth; H = canvas.clientHeight;
    canvas.width = Math.round(W * dpr); canvas.height = Math.round(H * dpr);
    schedule();
  }
  function schedule() {
    if (!pending) { pending = true; window.requestAnimationFrame(draw); }
  }
  function sx(x) { return (x - view.cx) / view.res + W / 2; }
  function sy(y) { return H / 2 - (y - view.cy) / view.res; }
  function wx(px) { return view.cx + (px - W / 2) * view.res; }
  function wy(py) { return view.cy - (py - H / 2) * view.res; }
  function visible(i) {
    if (auditOnly && !(D.au && D.au[i] > 0)) return false;
    var p = D.p[i];
    if (p < 0) return showSkipped && mode !== "damaged";
    if (mode === "skipped") return false;
    if (mode === "damaged") return p >= thr;
    return true;
  }

  // The post-event SAR image, embedded, under the buildings.
  var sarImage = null, showSar = !!D.sar;
  if (D.sar) {
    sarImage = new Image();
    sarImage.onload = schedule;
    sarImage.src = D.sar.png;
  }
  function drawSar() {
    if (!showSar || !sarImage || !sarImage.complete || !sarImage.naturalWidth) {
      return;
    }
    var b = D.sar.bounds;
    ctx.drawImage(sarImage, sx(b[0]), sy(b[3]), (b[2] - b[0]) / view.res,
                  (b[3] - b[1]) / view.res);
  }

  // Optional basemap: XYZ tiles in Web Mercator.
  var tiles = {};
  var HALF = 20037508.342789244;
  function drawTiles() {
    if (!D.basemap) return;
    var z = Math.round(Math.log(2 * HALF / 256 / view.res) / Math.LN2);
    z = Math.max(0, Math.min(D.maxzoom, z));
    var size = 2 * HALF / Math.pow(2, z);
    var tx0 = Math.floor((wx(0) + HALF) / size);
    var tx1 = Math.floor((wx(W) + HALF) / size);
    var ty0 = Math.floor((HALF - wy(0)) / size);
    var ty1 = Math.floor((HALF - wy(H)) / size);
    var m = Math.pow(2, z);
    for (var ty = Math.max(0, ty0); ty <= Math.min(m - 1, ty1); ty++) {
      for (var tx = tx0; tx <= tx1; tx++) {
        var key = z + "/" + tx + "/" + ty;
        var img = tiles[key];
        if (!img) {
          img = new Image();
          img.onload = schedule;
          var xw = ((tx % m) + m) % m;
          img.src = D.basemap.replace("{z}", z).replace("{x}", xw).replace("{y}", ty);
          tiles[key] = img;
        }
        if (img.complete && img.naturalWidth) {
          var left = sx(tx * size - HALF), top = sy(HALF - ty * size);
          ctx.drawImage(img, left, top, size / view.res + 0.5, size / view.res + 0.5);
        }
      }
    }
  }

  function traceBuilding(path, i) {
    var rs = ringsOf[i];
    for (var j = 0; j < rs.length; j++) {
      var r = rs[j], a = D.ro[r], e = D.ro[r + 1];
      path.moveTo(sx(xy[2 * a]), sy(xy[2 * a + 1]));
      for (var v = a + 1; v < e; v++) path.lineTo(sx(xy[2 * v]), sy(xy[2 * v + 1]));
      path.closePath();
    }
  }

  function draw() {
    pending = false;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    drawTiles();
    drawSar();
    var x0v = wx(0), x1v = wx(W), y1v = wy(0), y0v = wy(H);
    var buckets = 64;
    var paths = [];
    for (var k = 0; k <= buckets; k++) paths.push(new Path2D());
    var outline = new Path2D();
    var tiny = 1.5 * view.res;
    for (var i = 0; i < n; i++) {
      if (bb[4 * i + 2] < x0v || bb[4 * i] > x1v || bb[4 * i + 3] < y0v ||
          bb[4 * i + 1] > y1v || !visible(i)) continue;
      var p = D.p[i];
      var bucket = buckets;
      if (p >= 0) bucket = Math.min(buckets - 1, Math.floor(p * buckets / 1001));
      var path = paths[bucket];
      if (bb[4 * i + 2] - bb[4 * i] < tiny && bb[4 * i + 3] - bb[4 * i + 1] < tiny) {
        path.rect(sx(bb[4 * i]) - 0.75, sy(bb[4 * i + 3]) - 0.75, 1.5, 1.5);
      } else {
        traceBuilding(path, i);
        if (p >= thr && view.res < 3) traceBuilding(outline, i);
      }
    }
    ctx.globalAlpha = D.basemap ? 0.85 : 1;
    for (k = 0; k < buckets; k++) {
      ctx.fillStyle = D.colors[Math.round((k + 0.5) * (D.colors.length - 1) / buckets)];
      ctx.fill(paths[k]);
    }
    ctx.fillStyle = D.skipped_color;
    ctx.fill(paths[buckets]);
    ctx.globalAlpha = 1;
    ctx.lineWidth = 1;
    ctx.strokeStyle = D.damaged_edge;
    ctx.stroke(outline);
    if (D.au) drawAudit(x0v, x1v, y0v, y1v);
    if (selected >= 0) {
      var sel = new Path2D();
      traceBuilding(sel, selected);
      ctx.lineWidth = 2.5;
      ctx.strokeStyle = "#1565c0";
      ctx.stroke(sel);
    }
    drawScale();
  }

  // Reference audit: likely omissions (magenta) and commissions (cyan).
  function drawAudit(x0v, x1v, y0v, y1v) {
    var paths = [null, new Path2D(), new Path2D()];
    for (var i = 0; i < n; i++) {
      if (!D.au[i] || bb[4 * i + 2] < x0v || bb[4 * i] > x1v ||
          bb[4 * i + 3] < y0v || bb[4 * i + 1] > y1v || !visible(i)) continue;
      traceBuilding(paths[D.au[i]], i);
    }
    ctx.lineWidth = 2;
    ctx.strokeStyle = "#d500f9";
    ctx.stroke(paths[1]);
    ctx.strokeStyle = "#00acc1";
    ctx.stroke(paths[2]);
  }

  function drawScale() {
    var lat = Math.atan(Math.sinh(view.cy / 6378137));
    var mpp = view.res * Math.cos(lat);
    var target = 120 * mpp;
    var pow = Math.pow(10, Math.floor(Math.log(target) / Math.LN10));
    var len = pow;
    [5, 2, 1].some(function (s) {
      if (s * pow <= target) { len = s * pow; return true; }
      return false;
    });
    document.getElementById("scalebar").style.width = Math.round(len / mpp) + "px";
    document.getElementById("scaletext").textContent =
      len >= 1000 ? (len / 1000) + " km" : len + " m";
  }

  function inside(i, x, y) {
    var rs = ringsOf[i], hit = false;
    for (var j = 0; j < rs.length; j++) {
      var r = rs[j], a = D.ro[r], e = D.ro[r + 1];
      for (var v = a, w = e - 1; v < e; w = v++) {
        var xi = xy[2 * v], yi = xy[2 * v + 1], xj = xy[2 * w], yj = xy[2 * w + 1];
        if ((yi > y) !== (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi) {
          hit = !hit;
        }
      }
      if (hit) return true;
    }
    return false;
  }
  function pick(px, py) {
    var x = wx(px), y = wy(py);
    var gc = Math.floor((x - ext[0]) / gw), gr = Math.floor((y - ext[1]) / gh);
    if (gc < 0 || gr < 0 || gc >= G || gr >= G) return -1;
    var cand = grid[gr * G + gc] || [];
    var best = -1, bestArea = Infinity;
    for (var j = 0; j < cand.length; j++) {
      var i = cand[j];
      if (!visible(i)) continue;
      if (x < bb[4 * i] || x > bb[4 * i + 2]) continue;
      if (y < bb[4 * i + 1] || y > bb[4 * i + 3]) continue;
      if (!inside(i, x, y)) continue;
      var area = (bb[4 * i + 2] - bb[4 * i]) * (bb[4 * i + 3] - bb[4 * i + 1]);
      if (area < bestArea) { best = i; bestArea = area; }
    }
    return best;
  }
  function esc(s) {
    return String(s).replace(/[&<>"]/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c];
    });
  }
  function describe(i) {
    var id = D.id[i] === null ? "(no id)" : D.id[i];
    var s = "<b>" + esc(D.id_field) + " " + esc(id) + "</b><br>";
    var p = D.p[i];
    if (p < 0) {
      s += "not scored: " + esc(D.reasons[D.rs[i]] || "skipped");
    } else {
      s += "damage probability " + (p / 1000).toFixed(3) + "<br>";
      s += p >= thr ? "<b class='dmg'>predicted damaged</b>" : "predicted intact";
    }
    if (D.un && D.un[i] >= 0) s += "<br>unit " + esc(D.units[D.un[i]]);
    if (D.au && D.au[i] > 0) {
      s += "<br>reference: " + (D.au[i] === 1 ?
        "intact: likely omission" : "damaged: likely commission");
    }
    return s;
  }
  function showTip(i, px, py) {
    if (i < 0) { tip.style.display = "none"; return; }
    tip.innerHTML = describe(i);
    tip.style.display = "block";
    var left = px + 14, top = py + 14;
    if (left + tip.offsetWidth > W - 4) left = px - 14 - tip.offsetWidth;
    if (top + tip.offsetHeight > H - 4) top = py - 14 - tip.offsetHeight;
    tip.style.left = left + "px";
    tip.style.top = top + "px";
  }

  // Interaction: drag to pan, wheel or buttons to zoom, hover or tap for details.
  var drag = null, moved = false;
  canvas.addEventListener("pointerdown", function (ev) {
    drag = { x: ev.clientX, y: ev.clientY, cx: view.cx, cy: view.cy };
    moved = false;
    canvas.setPointerCapture(ev.pointerId);
    canvas.classList.add("dragging");
  });
  canvas.addEventListener("pointermove", function (ev) {
    if (drag) {
      var dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) moved = true;
      view.cx = drag.cx - dx * view.res;
      view.cy = drag.cy + dy * view.res;
      tip.style.display = "none";
      schedule();
    } else {
      showTip(pick(ev.offsetX, ev.offsetY), ev.offsetX, ev.offsetY);
    }
  });
  canvas.addEventListener("pointerup", function (ev) {
    canvas.classList.remove("dragging");
    if (drag && !moved) {
      selected = pick(ev.offsetX, ev.offsetY);
      showTip(selected, ev.offsetX, ev.offsetY);
      schedule();
    }
    drag = null;
  });
  canvas.addEventListener("pointerleave", function () {
    if (!drag) tip.style.display = "none";
  });
  function zoomAt(factor, px, py) {
    var x = wx(px), y = wy(py);
    view.res = Math.min(Math.max(view.res * factor, 0.02), 5000);
    view.cx = x - (px - W / 2) * view.res;
    view.cy = y + (py - H / 2) * view.res;
    schedule();
  }
  canvas.addEventListener("wheel", function (ev) {
    ev.preventDefault();
    var speed = ev.deltaMode ? 0.05 : 0.0015;
    zoomAt(Math.exp(ev.deltaY * speed), ev.offsetX, ev.offsetY);
  }, { passive: false });
  canvas.addEventListener("dblclick", function (ev) {
    zoomAt(0.5, ev.offsetX, ev.offsetY);
  });
  document.getElementById("zin").onclick = function () { zoomAt(0.5, W / 2, H / 2); };
  document.getElementById("zout").onclick = function () { zoomAt(2, W / 2, H / 2); };
  document.getElementById("zfit").onclick = function () { fit(); schedule(); };
  var radios = document.querySelectorAll("input[name=mode]");
  for (var j = 0; j < radios.length; j++) {
    radios[j].onchange = function () { mode = this.value; selected = -1; schedule(); };
  }
  document.getElementById("skipped").onchange = function () {
    showSkipped = this.checked; schedule();
  };
  var sarBox = document.getElementById("sarbox");
  if (sarBox) sarBox.onchange = function () { showSar = this.checked; schedule(); };
  var auditBox = document.getElementById("auditonly");
  if (auditBox) auditBox.onchange = function () {
    auditOnly = this.checked; selected = -1; schedule();
  };
  // Legend: the colour ramp with the threshold.
  var legend = document.getElementById("legend");
  var lctx = legend.getContext("2d");
  legend.width = 300; legend.height = 14;
  for (var c = 0; c < 300; c++) {
    lctx.fillStyle = D.colors[Math.floor(c * D.colors.length / 300)];
    lctx.fillRect(c, 0, 1, 14);
  }
  lctx.fillStyle = "#000";
  lctx.fillRect(Math.round(D.threshold * 300) - 1, 0, 2, 14);
  window.addEventListener("resize", resize);
  resize();
  fit();
  schedule();
})();
"""


def audit_codes(audit: npt.NDArray[np.object_]) -> npt.NDArray[np.int64]:
    """The reference audit of every building as codes of the page's data.

    Args:
        audit: ``"likely omission"``, ``"likely commission"`` or None per
            building (:func:`~torchgeo_quake.mapping.audit.audit_kinds`)

    Returns:
        1 for a likely omission, 2 for a likely commission, else 0 (``au``).
    """
    from .audit import COMMISSION, OMISSION

    kinds = np.asarray(audit, dtype=object)
    codes = np.zeros(len(kinds), dtype=np.int64)
    codes[kinds == OMISSION] = 1
    codes[kinds == COMMISSION] = 2
    return codes


def audit_toggle(codes: npt.NDArray[np.int64]) -> str:
    """The panel's toggle of the reference audit.

    Args:
        codes: :func:`audit_codes` of every building

    Returns:
        HTML: a check box showing only the buildings where the map and the
        reference disagree, outlined magenta (likely omissions of the
        reference) or cyan (likely commissions), with their numbers.
    """
    omissions, commissions = int((codes == 1).sum()), int((codes == 2).sum())
    return (
        '<label><input type="checkbox" id="auditonly"> reference audit only: '
        f'<span style="color:#d500f9">{omissions} likely omissions</span> and '
        f'<span style="color:#00acc1">{commissions} likely commissions</span> '
        "(audit.csv)</label>"
    )


#: The panel's toggle of the SAR underlay.
SAR_TOGGLE = (
    '<label><input type="checkbox" id="sarbox" checked> post-event SAR image '
    "under the buildings (downsampled)</label>"
)

#: Where the page template receives the map's data.
DATA_SLOT = "@@DATA@@"


def legend_key(threshold: float) -> str:
    """The legend entries of the page's outlines and grey buildings.

    They are drawn as the script draws the buildings: a building predicted
    damaged keeps its probability's fill and gets a
    :data:`~torchgeo_quake.mapping.overview.DAMAGED_EDGE` outline (from street
    zoom on, where single buildings can be told apart); a building not scored
    is grey.

    Args:
        threshold: decision threshold

    Returns:
        HTML of the entries.
    """
    return (
        '<div class="key">'
        f'<div><span class="sw" style="border:2px solid {DAMAGED_EDGE}"></span>'
        f"<span>outlined: predicted damaged (probability &ge; {threshold:.3f}; "
        "the fill is its probability, the outline shows when zoomed in)</span>"
        "</div>"
        f'<div><span class="sw" style="background:{SKIPPED_COLOR}"></span>'
        "<span>grey: not scored (hover for the reason)</span></div>"
        "</div>"
    )


def page(
    title: str,
    subtitle: str,
    threshold: float,
    attr: str,
    notes: str = "",
    credit: str = "",
) -> str:
    """The HTML page around the data.

    Args:
        title: page title
        subtitle: line under the title
        threshold: decision threshold
        attr: escaped attribution text of the basemap (may be empty)
        notes: HTML block under the subtitle (escaped; may be empty), see
            :func:`~torchgeo_quake.mapping._html_notes.notes_html`
        credit: escaped credit of the data (e.g. of OpenStreetMap footprints;
            may be empty)

    Returns:
        The page, with :data:`DATA_SLOT` where the data object goes.
    """
    credits = "; ".join(
        ["torchgeo_quake damage map", *(text for text in (credit, attr) if text)]
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{_STYLE}{NOTES_STYLE}</style>
</head>
<body>
<canvas id="map"></canvas>
<div id="panel" class="box">
  <h1>{html.escape(title)}</h1>
  <div class="sub">{html.escape(subtitle)}</div>
  {notes}
  <div>damage probability (black mark: threshold {threshold:.3f})</div>
  <canvas id="legend"></canvas>
  <div class="ticks"><span>0</span><span>0.5</span><span>1</span></div>
  {legend_key(threshold)}
  <label><input type="radio" name="mode" value="all" checked> all buildings</label>
  <label><input type="radio" name="mode" value="damaged"> predicted damaged only</label>
  <label><input type="radio" name="mode" value="skipped"> not scored only</label>
  <label><input type="checkbox" id="skipped" checked> show buildings not scored
    (grey)</label>
</div>
<div id="controls" class="box">
  <button id="zin" title="zoom in">+</button>
  <button id="zout" title="zoom out">&minus;</button>
  <button id="zfit" title="whole city">&#x2922;</button>
</div>
<div id="tip" class="box"></div>
<div id="scale" class="box"><span id="scaletext"></span><div id="scalebar"></div></div>
<div id="attr" class="box">{credits}</div>
<script>var DATA = {DATA_SLOT};</script>
<script>{_SCRIPT}</script>
</body>
</html>
"""
