/*
 * qoslab zoomable charts: latency against time (and other x/y series) drawn in the browser
 * with uPlot (MIT, uPlot.iife.min.js beside this file), with the run's EVENTS as vertical
 * lines, detected spikes as shaded spans, reference lines and teaching notes.
 *
 * A chart is a <div class="qoslab-chart-wrap"> holding a <script type="application/json">
 * spec (written by qoslab.plots.chart) and a tiny bootstrap that calls qoslabChart.render on
 * it, now or once this file has loaded. Works in live JupyterLab (output areas and widget
 * Output areas run trusted scripts), in nbconvert HTML and in widget state rendered offline by
 * the html-manager.
 *
 * Interaction: drag across the plot to zoom into that time range; Ctrl (or Cmd) + wheel zooms
 * around the pointer; Shift + drag (or the middle button) pans; double-click or "reset" shows
 * everything again; the buttons do the same without a mouse. The visible range is written
 * under the chart and in the wrapper's data-x-min / data-x-max attributes.
 *
 * Themes: text, axes and grid take the page's JupyterLab theme variables; on a dark page
 * (judged from the background actually behind the chart) every data colour is replaced by its
 * dark twin listed in spec.theme.dark (qoslab.plots.theme.dark_color: same hue, lifted until
 * it stands out) and shaded spans are less translucent. Charts draw again when JupyterLab's
 * theme changes. The wrapper's data-theme attribute says which was drawn.
 *
 * Part of qoslab (MIT).
 */
(function () {
  "use strict";
  var VERSION = 3;
  if (window.qoslabChart && window.qoslabChart.version >= VERSION) {
    return;
  }
  // user zoom per chart key, kept across redraws of a live chart
  var zoomState = window.qoslabChartZoom = window.qoslabChartZoom || {};

  function cssVar(el, name, fallback) {
    var v = "";
    try { v = getComputedStyle(el).getPropertyValue(name).trim(); } catch (e) { v = ""; }
    return v || fallback;
  }

  function parseColor(text) {
    var m = /rgba?\(([^)]*)\)/.exec(text || "");
    if (!m) { return null; }
    var p = m[1].split(/[\s,\/]+/).filter(Boolean).map(parseFloat);
    return p.length >= 3 ? [p[0], p[1], p[2], p.length > 3 ? p[3] : 1] : null;
  }

  function luminance(c) {
    var l = c.slice(0, 3).map(function (v) {
      v /= 255;
      return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2];
  }

  // The colour actually behind an element: the first ancestor with an opaque background
  // (white when none says otherwise, as a browser shows a page).
  function backgroundBehind(node) {
    for (var e = node; e && e.nodeType === 1; e = e.parentElement) {
      var c = parseColor(getComputedStyle(e).backgroundColor);
      if (c && c[3] > 0.5) { return c; }
    }
    return [255, 255, 255, 1];
  }

  function isDarkPage(wrap) {
    if (!wrap.isConnected) { return document.body && document.body.getAttribute("data-jp-theme-light") === "false"; }
    return luminance(backgroundBehind(wrap)) < 0.18;
  }

  // A copy of the spec with each data colour replaced by its dark twin.
  function darkSpec(spec) {
    var twins = (spec.theme && spec.theme.dark) || {};
    function twin(c) { return typeof c === "string" && twins[c.toLowerCase()] ? twins[c.toLowerCase()] : c; }
    function each(list) {
      return (list || []).map(function (g) {
        var copy = {};
        Object.keys(g).forEach(function (k) { copy[k] = g[k]; });
        if (copy.color) { copy.color = twin(copy.color); }
        return copy;
      });
    }
    var out = {};
    Object.keys(spec).forEach(function (k) { out[k] = spec[k]; });
    ["series", "events", "spans", "hlines", "notes"].forEach(function (k) { out[k] = each(spec[k]); });
    return out;
  }

  function fmtNum(v, digits) {
    if (v == null || !isFinite(v)) { return "–"; }
    var a = Math.abs(v);
    if (a !== 0 && (a >= 1e6 || a < 1e-3)) { return v.toExponential(2); }
    return v.toFixed(digits);
  }

  function niceStep(range) {
    // digits to show for x values so neighbouring ticks differ
    if (!(range > 0)) { return 3; }
    var d = Math.ceil(-Math.log10(range)) + 2;
    return Math.max(0, Math.min(6, d));
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text != null) { e.textContent = text; }
    return e;
  }

  function withAlpha(color, alpha) {
    // "#rrggbb" -> rgba(); anything else is returned as it is
    if (typeof color === "string" && /^#[0-9a-fA-F]{6}$/.test(color)) {
      var n = parseInt(color.slice(1), 16);
      return "rgba(" + (n >> 16 & 255) + "," + (n >> 8 & 255) + "," + (n & 255) + "," + alpha + ")";
    }
    return color;
  }

  // One x array for all series: uPlot wants aligned data. Missing samples of a series are
  // `undefined` (joined over); `null` is a gap (a lost probe breaks a line).
  function alignSeries(series) {
    var seen = new Set();
    series.forEach(function (s) { s.x.forEach(function (v) { seen.add(v); }); });
    var xs = Float64Array.from(seen).sort();
    var index = new Map();
    for (var i = 0; i < xs.length; i++) { index.set(xs[i], i); }
    var data = [Array.from(xs)];
    series.forEach(function (s) {
      var y = new Array(xs.length);
      for (var j = 0; j < s.x.length; j++) { y[index.get(s.x[j])] = s.y[j]; }
      data.push(y);
    });
    return data;
  }

  function plainNumber(v) {
    return v >= 1 ? String(Math.round(v * 1000) / 1000) : String(Number(v.toPrecision(2)));
  }

  // Labels of a log axis: at 1, 2 and 5 x 10^n (RTT readers want 20, 50, 100, not 10^2);
  // every tick when that would leave fewer than two labels (a range inside one decade), only
  // the powers of ten when 1-2-5 would crowd the axis (many decades).
  function logTickLabels(u, splits) {
    function lead(v) {
      var m = v / Math.pow(10, Math.floor(Math.log10(v) + 1e-9));
      return Math.round(m * 100) / 100;
    }
    var ok = splits.map(function (v) { return v > 0; });
    var keep = splits.map(function (v, i) { var m = ok[i] && lead(v); return m === 1 || m === 2 || m === 5; });
    var n = keep.filter(Boolean).length;
    if (n < 2) {
      keep = ok;
    } else if (n > 12) {
      keep = splits.map(function (v, i) { return ok[i] && lead(v) === 1; });
    }
    var labels = splits.map(function (v, i) { return keep[i] ? plainNumber(v) : ""; });
    var wrap = u.root && u.root.closest ? u.root.closest(".qoslab-chart-wrap") : null;
    if (wrap) {  // what the reader sees, for tests and tools
      wrap.setAttribute("data-y-labels", labels.filter(function (l) { return l; }).join(" "));
    }
    return labels;
  }

  // Ticks of a log axis at 1..9 x 10^n inside the range (uPlot's own start at the range's
  // minimum, which is no round number once the range is fitted to the data).
  function logSplits(u, axisIdx, min, max) {
    var out = [];
    if (!(min > 0) || !(max > min)) { return out; }
    for (var e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
      for (var m = 1; m <= 9; m++) {
        var v = Number((m * Math.pow(10, e)).toPrecision(12));
        if (v >= min && v <= max) { out.push(v); }
      }
    }
    return out;
  }

  // A log axis fitted to the data (a little margin), not stretched to whole decades.
  function logRange(u, min, max) {
    if (!(min > 0) || !(max > 0)) { return [1, 10]; }
    if (max / min < 1.5) { var mid = Math.sqrt(min * max); min = mid / 1.25; max = mid * 1.25; }
    return [min / 1.12, max * 1.12];
  }

  // Indices of the samples of a series with no drawn neighbour (a lost probe on each side):
  // a line cannot show them, so they are drawn as points.
  function isolatedIndices(ys) {
    var out = [], defined = [];
    for (var i = 0; i < ys.length; i++) { if (ys[i] !== undefined) { defined.push(i); } }
    for (var k = 0; k < defined.length; k++) {
      var i0 = defined[k];
      if (ys[i0] == null) { continue; }
      var before = k > 0 ? ys[defined[k - 1]] : null, after = k + 1 < defined.length ? ys[defined[k + 1]] : null;
      if (before == null && after == null) { out.push(i0); }
    }
    return out;
  }

  // A signed number without "-0"
  function fixed(v, digits) {
    var s = v.toFixed(digits);
    return /^-0(\.0*)?$/.test(s) ? s.slice(1) : s;
  }

  function render(wrap) {
    if (!wrap || !wrap.querySelector) { return; }
    var dataTag = wrap.querySelector("script[type='application/json']");
    if (!dataTag) { return; }
    if (!wrap.isConnected && (wrap.qoslabWaits = (wrap.qoslabWaits || 0) + 1) < 200) {
      setTimeout(function () { render(wrap); }, 25);  // the page's styles apply once attached
      return;
    }
    var spec = JSON.parse(dataTag.textContent);
    var dark = isDarkPage(wrap);
    if (dark) { spec = darkSpec(spec); }
    var wash = dark ? Math.min(1, 0.28 * ((spec.theme && spec.theme.wash_boost) || 1)) : 0.28;
    var lineAlpha = dark ? 1 : 0.8;  // the dark twins' contrast is that of the opaque colour
    var box = wrap.querySelector(".qoslab-chart");
    if (wrap.qoslabPlot) { wrap.qoslabPlot.destroy(); }
    box.textContent = "";

    var ink = cssVar(wrap, "--jp-ui-font-color1", dark ? "#e0e0e0" : "#333333");
    var faint = cssVar(wrap, "--jp-ui-font-color2", dark ? "#a8a8a8" : "#666666");
    var grid = cssVar(wrap, "--jp-border-color2", "rgba(128,128,128,0.25)");
    var font = "12px " + cssVar(wrap, "--jp-ui-font-family", "system-ui, sans-serif");
    var key = spec.key || null;
    var full = spec.x_range || null;
    var hidden = {};  // overlay group label -> hidden

    var head = el("div", "qoslab-chart-title", spec.title || "");
    var sub = el("div", "qoslab-chart-subtitle", spec.subtitle || "");
    var bar = el("div", "qoslab-chart-toolbar");
    var plotBox = el("div", "qoslab-chart-plot");
    var overlayLegend = el("div", "qoslab-chart-overlays");
    var readout = el("div", "qoslab-chart-range");
    box.appendChild(head);
    if (spec.subtitle) { box.appendChild(sub); }
    box.appendChild(bar);
    box.appendChild(plotBox);
    box.appendChild(overlayLegend);
    box.appendChild(readout);

    var data = alignSeries(spec.series);
    var uSeries = [{
      label: spec.xlabel || "x",
      value: function (u, v) { return v == null ? "–" : fmtNum(v, 3) + (spec.xunit ? " " + spec.xunit : ""); }
    }];
    spec.series.forEach(function (s, k) {
      var points = s.mode === "points";
      var lonely = points ? null : isolatedIndices(data[k + 1]);
      uSeries.push({
        label: s.name,
        stroke: s.color,
        width: points ? 0 : 1.4,
        dash: s.dash && s.dash.length ? s.dash : undefined,
        paths: points ? function () { return null; } : undefined,
        points: points ? { show: true, size: 4, width: 0, fill: s.color, stroke: s.color }
                       : { show: false, size: 4, width: 0, fill: s.color, stroke: s.color,
                           filter: function () { return lonely.length ? lonely : null; } },
        spanGaps: false,
        value: function (u, v) { return v == null ? "–" : fmtNum(v, 2) + (spec.yunit ? " " + spec.yunit : ""); }
      });
    });

    function clampRange(min, max) {
      if (!full) { return [min, max]; }
      var width = max - min, total = full[1] - full[0];
      if (width >= total) { return [full[0], full[1]]; }
      if (min < full[0]) { min = full[0]; max = min + width; }
      if (max > full[1]) { max = full[1]; min = max - width; }
      return [min, max];
    }

    function setX(u, min, max, byUser) {
      var r = clampRange(min, max);
      if (!(r[1] > r[0])) { return; }
      if (key) {
        zoomState[key] = byUser && full && (r[0] > full[0] || r[1] < full[1]) ? { min: r[0], max: r[1] } : null;
      }
      u.setScale("x", { min: r[0], max: r[1] });
    }

    function drawSpans(u) {
      if (!spec.spans || !spec.spans.length) { return; }
      var ctx = u.ctx, b = u.bbox, dpr = window.devicePixelRatio || 1;
      ctx.save();
      spec.spans.forEach(function (grp) {
        if (hidden[grp.label]) { return; }
        var minW = 4 * dpr;
        for (var i = 0; i < grp.t0.length; i++) {
          var a = u.valToPos(grp.t0[i], "x", true), z = u.valToPos(grp.t1[i], "x", true);
          if (z < b.left || a > b.left + b.width) { continue; }
          var w = Math.max(z - a, minW), x = (a + z) / 2 - w / 2;
          ctx.fillStyle = withAlpha(grp.color, wash);
          ctx.fillRect(x, b.top, w, b.height);
          ctx.fillStyle = withAlpha(grp.color, 0.9);  // a cap so narrow spans are easy to find
          ctx.fillRect(x, b.top, w, 5 * dpr);
        }
      });
      ctx.restore();
    }

    // Reference lines (a full queue's delay) under the data: probes sitting on the line stay
    // visible; their labels are written over the data (drawOverlays).
    function drawReferenceLines(u) {
      var ctx = u.ctx, b = u.bbox, dpr = window.devicePixelRatio || 1;
      ctx.save();
      (spec.hlines || []).forEach(function (h) {
        if (hidden[h.label]) { return; }
        var y = Math.round(u.valToPos(h.y, "y", true)) + 0.5;
        if (y < b.top || y > b.top + b.height) { return; }
        ctx.strokeStyle = withAlpha(h.color, lineAlpha - 0.05);
        ctx.lineWidth = 1.2 * dpr;
        ctx.setLineDash([6 * dpr, 4 * dpr]);
        ctx.beginPath();
        ctx.moveTo(b.left, y);
        ctx.lineTo(b.left + b.width, y);
        ctx.stroke();
      });
      ctx.restore();
    }

    function drawOverlays(u) {
      var ctx = u.ctx, b = u.bbox, dpr = window.devicePixelRatio || 1;
      ctx.save();
      ctx.beginPath();
      ctx.rect(b.left, b.top, b.width, b.height);
      ctx.clip();
      (spec.events || []).forEach(function (grp) {
        if (hidden[grp.label]) { return; }
        ctx.strokeStyle = withAlpha(grp.color, lineAlpha);
        ctx.lineWidth = (grp.width || 1) * dpr;
        ctx.setLineDash((grp.dash || []).map(function (d) { return d * dpr; }));
        ctx.beginPath();
        grp.t.forEach(function (t) {
          var x = Math.round(u.valToPos(t, "x", true)) + 0.5;
          if (x < b.left || x > b.left + b.width) { return; }
          ctx.moveTo(x, b.top);
          ctx.lineTo(x, b.top + b.height);
        });
        ctx.stroke();
      });
      ctx.setLineDash([]);
      (spec.hlines || []).forEach(function (h) {  // the line itself is under the data
        if (hidden[h.label]) { return; }
        var y = Math.round(u.valToPos(h.y, "y", true)) + 0.5;
        if (y < b.top || y > b.top + b.height) { return; }
        ctx.fillStyle = h.color;
        ctx.font = (11 * dpr) + "px sans-serif";
        ctx.textAlign = "right";
        ctx.fillText(h.label, b.left + b.width - 4 * dpr, y - 4 * dpr);
      });
      (spec.notes || []).forEach(function (n) {
        var x = u.valToPos(n.t, "x", true), y = u.valToPos(n.y, "y", true);
        if (!(x >= b.left && x <= b.left + b.width && y >= b.top && y <= b.top + b.height)) { return; }
        var color = n.color || ink;
        ctx.strokeStyle = color;
        ctx.fillStyle = color;
        ctx.lineWidth = 1.5 * dpr;
        ctx.beginPath();
        ctx.arc(x, y, 9 * dpr, 0, 2 * Math.PI);
        ctx.stroke();
        var tx = x - 30 * dpr, ty = y - 28 * dpr;
        if (tx < b.left + 60 * dpr) { tx = x + 30 * dpr; }
        if (ty < b.top + 14 * dpr) { ty = y + 36 * dpr; }
        ctx.beginPath();
        ctx.moveTo(tx, ty + 4 * dpr);
        ctx.lineTo(x + (tx < x ? -7 : 7) * dpr, y + (ty < y ? -7 : 7) * dpr);
        ctx.stroke();
        ctx.font = "bold " + (12 * dpr) + "px sans-serif";
        ctx.textAlign = tx < x ? "right" : "left";
        ctx.fillText(n.text, tx, ty);
      });
      ctx.restore();
    }

    function updateReadout(u) {
      var s = u.scales.x;
      if (s.min == null) { return; }
      var digits = niceStep(s.max - s.min);
      wrap.setAttribute("data-x-min", String(s.min));
      wrap.setAttribute("data-x-max", String(s.max));
      var unit = spec.xunit ? " " + spec.xunit : "";
      var text = "showing " + fixed(s.min, digits) + "–" + fixed(s.max, digits) + unit;
      if (full) {
        text += " of " + fixed(full[0], digits > 3 ? 3 : digits) + "–" + fixed(full[1], digits > 3 ? 3 : digits) + unit;
      }
      readout.textContent = text + "   ·   drag: zoom · Ctrl+wheel: zoom · Shift+drag: pan · double-click: reset";
    }

    function interaction(u) {
      var over = u.over;
      over.addEventListener("wheel", function (e) {
        if (!(e.ctrlKey || e.metaKey)) { return; }  // plain wheel scrolls the page
        e.preventDefault();
        var rect = over.getBoundingClientRect();
        var at = u.posToVal(e.clientX - rect.left, "x");
        var s = u.scales.x, f = e.deltaY < 0 ? 0.7 : 1 / 0.7;
        setX(u, at - (at - s.min) * f, at + (s.max - at) * f, true);
      }, { passive: false });
      over.addEventListener("mousedown", function (e) {
        if (!(e.shiftKey || e.button === 1)) { return; }
        e.preventDefault();
        e.stopPropagation();
        var x0 = e.clientX, s0 = { min: u.scales.x.min, max: u.scales.x.max };
        var perPx = (s0.max - s0.min) / over.clientWidth;
        function move(ev) {
          var dx = (ev.clientX - x0) * perPx;
          setX(u, s0.min - dx, s0.max - dx, true);
        }
        function up() {
          document.removeEventListener("mousemove", move);
          document.removeEventListener("mouseup", up);
        }
        document.addEventListener("mousemove", move);
        document.addEventListener("mouseup", up);
      }, true);
      over.addEventListener("dblclick", function (e) {
        e.preventDefault();
        e.stopPropagation();
        reset(u);
      }, true);
    }

    function reset(u) {
      if (key) { zoomState[key] = null; }
      if (full) { u.setScale("x", { min: full[0], max: full[1] }); }
    }

    function button(text, title, fn) {
      var b = el("button", "qoslab-chart-button", text);
      b.type = "button";
      b.title = title;
      b.addEventListener("click", fn);
      bar.appendChild(b);
      return b;
    }

    var width = Math.max(320, (wrap.clientWidth || box.clientWidth || 860) - 8);
    var yScale = spec.logy ? { distr: 3, log: 10, range: logRange } : { auto: true, range: function (u, min, max) {
      if (min == null || max == null) { return [0, 1]; }
      var hi = max > 0 ? max * 1.08 : 1;
      return [spec.y_from_zero === false ? min : Math.min(0, min), hi];
    } };
    var opts = {
      width: width,
      height: spec.height || 340,
      pxAlign: 0,
      scales: { x: { time: false }, y: yScale },
      axes: [
        { label: spec.xlabel, stroke: ink, font: font, labelFont: font,
          grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } },
        { label: spec.ylabel, stroke: ink, font: font, labelFont: font, size: 60,
          grid: { stroke: grid, width: 1 }, ticks: { stroke: grid },
          splits: spec.logy ? logSplits : undefined,
          values: spec.logy ? logTickLabels : undefined }
      ],
      series: uSeries,
      cursor: { drag: { x: true, y: false, setScale: true }, points: { size: 6 } },
      legend: { show: true, live: true, markers: {
        show: true, width: 2, dash: "solid",
        stroke: function (u, i) { return spec.series[i - 1] ? spec.series[i - 1].color : null; },
        fill: function (u, i) {
          var s = spec.series[i - 1];
          return s && s.mode === "points" ? s.color : "transparent";
        } } },
      hooks: {
        drawAxes: [drawSpans, drawReferenceLines],
        draw: [drawOverlays],
        setScale: [function (u, scaleKey) { if (scaleKey === "x") { updateReadout(u); } }],
        setSelect: [function (u) {
          if (u.select.width > 0) {
            var a = u.posToVal(u.select.left, "x"), z = u.posToVal(u.select.left + u.select.width, "x");
            // uPlot applies the zoom itself (cursor.drag.setScale); record it as the user's
            if (key && full) { zoomState[key] = { min: a, max: z }; }
          }
        }],
        ready: [interaction]
      }
    };
    var u = new window.uPlot(opts, data, plotBox);
    wrap.qoslabPlot = u;
    if (full) {
      var z = key && zoomState[key];
      if (z) { u.setScale("x", { min: z.min, max: z.max }); } else { u.setScale("x", { min: full[0], max: full[1] }); }
    }
    updateReadout(u);

    button("−", "zoom out", function () {
      var s = u.scales.x, c = (s.min + s.max) / 2, h = (s.max - s.min);
      setX(u, c - h, c + h, true);
    });
    button("+", "zoom in", function () {
      var s = u.scales.x, c = (s.min + s.max) / 2, h = (s.max - s.min) / 4;
      setX(u, c - h, c + h, true);
    });
    button("◀", "pan left", function () {
      var s = u.scales.x, w = (s.max - s.min) / 2;
      setX(u, s.min - w, s.max - w, true);
    });
    button("▶", "pan right", function () {
      var s = u.scales.x, w = (s.max - s.min) / 2;
      setX(u, s.min + w, s.max + w, true);
    });
    button("reset", "show everything", function () { reset(u); });

    // overlay legend: events, spans, reference lines; a click hides or shows the group
    var groups = [];
    (spec.spans || []).forEach(function (g) { groups.push({ label: g.label, color: g.color, kind: "span" }); });
    (spec.events || []).forEach(function (g) { groups.push({ label: g.label, color: g.color, kind: "line", dash: g.dash }); });
    (spec.hlines || []).forEach(function (g) { groups.push({ label: g.label, color: g.color, kind: "hline" }); });
    groups.forEach(function (g) {
      var item = el("span", "qoslab-chart-overlay");
      var sw = el("span", "qoslab-chart-swatch " + g.kind);
      if (g.kind === "span") {
        sw.style.background = withAlpha(g.color, Math.min(1, wash + 0.07));
        sw.style.borderTop = "3px solid " + g.color;
      } else {
        sw.style.borderLeft = (g.kind === "hline" ? "0" : "2px " + (g.dash && g.dash.length ? "dashed " : "solid ") + g.color);
        if (g.kind === "hline") { sw.style.borderTop = "2px dashed " + g.color; }
      }
      item.appendChild(sw);
      item.appendChild(el("span", null, g.label));
      item.title = "click to hide or show";
      item.addEventListener("click", function () {
        hidden[g.label] = !hidden[g.label];
        item.classList.toggle("off", !!hidden[g.label]);
        u.redraw(false, false);
      });
      overlayLegend.appendChild(item);
    });

    head.style.color = ink;
    sub.style.color = faint;
    readout.style.color = faint;
    overlayLegend.style.color = ink;
    wrap.querySelectorAll(".u-legend").forEach(function (lg) { lg.style.color = ink; });

    if (window.ResizeObserver && !wrap.qoslabResize) {
      var last = width;
      wrap.qoslabResize = new ResizeObserver(function () {
        var w = Math.max(320, wrap.clientWidth - 8);
        if (wrap.qoslabPlot && Math.abs(w - last) > 4) {
          last = w;
          wrap.qoslabPlot.setSize({ width: w, height: spec.height || 340 });
        }
      });
      wrap.qoslabResize.observe(wrap);
    }
    wrap.setAttribute("data-theme", dark ? "dark" : "light");
    wrap.setAttribute("data-rendered", "1");
    return u;
  }

  // JupyterLab switches themes by setting these on <body> once the theme's styles apply
  function followTheme() {
    if (!window.MutationObserver || window.qoslabChartThemeWatch) { return; }
    if (!document.body) {  // loaded from <head>
      document.addEventListener("DOMContentLoaded", followTheme);
      return;
    }
    var pending = null;
    window.qoslabChartThemeWatch = new MutationObserver(function () {
      clearTimeout(pending);
      pending = setTimeout(function () {
        document.querySelectorAll(".qoslab-chart-wrap[data-rendered]").forEach(function (w) {
          var u = w.qoslabPlot, x = u ? [u.scales.x.min, u.scales.x.max] : null;
          window.qoslabChart.render(w);
          if (x && x[0] != null && w.qoslabPlot) { w.qoslabPlot.setScale("x", { min: x[0], max: x[1] }); }
        });
      }, 50);
    });
    window.qoslabChartThemeWatch.observe(document.body, { attributes: true,
      attributeFilter: ["data-jp-theme-light", "data-jp-theme-name"] });
  }

  window.qoslabChart = { version: VERSION, render: render };
  followTheme();
  var queue = window.qoslabChartQueue || [];
  window.qoslabChartQueue = [];
  queue.forEach(function (fn) { try { fn(); } catch (e) { console.error(e); } });
})();
