// Interactive figures of the tutorial: plain JavaScript and SVG, no framework, nothing
// from another host, no eval, no inline handlers (the site's CSP allows this file only).
// A widget is a <div data-widget="NAME"> holding its static figure; with JavaScript on, the
// static figure is hidden and the live one is built beside it. Every control is a native
// form element (keyboard works as usual) and each result is announced through aria-live.
(function () {
  "use strict";

  var SVGNS = "http://www.w3.org/2000/svg";
  var EXP_LIMIT = 88.72283935546875; // the largest x with exp(x) finite in float32
  var F16_MAX = 65504;

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function svg(tag, attrs) {
    var e = document.createElementNS(SVGNS, tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    return e;
  }

  function fmt(v) {
    if (Number.isNaN(v)) return "nan";
    if (!Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
    return v.toFixed(4);
  }

  // softmax in float64 with the max subtracted: what torch.softmax computes, to 1e-7.
  function softmax(s) {
    if (s.some(Number.isNaN)) return s.map(function () { return NaN; });
    var m = Math.max.apply(null, s);
    if (m === -Infinity) return s.map(function () { return NaN; });
    var e = s.map(function (x) { return Math.exp(x - m); });
    var z = e.reduce(function (a, b) { return a + b; }, 0);
    return e.map(function (x) { return x / z; });
  }

  // The float16 value of x, as far as this widget needs it: out of range is +-inf.
  function toFloat16(x) {
    return Math.abs(x) > F16_MAX ? (x > 0 ? Infinity : -Infinity) : x;
  }

  // Scores to weights (chapters 3 and 4): one query at position `query`, one score per key.
  // [value, label] in the order shown (an object would put "1" and "8" first).
  var MASKS = [
    ["inf-before", "−∞ before the softmax"],
    ["zero-after", "×0 after the softmax"],
    ["renorm-after", "×0 after, then renormalised"],
    ["1e9-float16", "+ mask × (−1e9), in float16"]
  ];
  var SCALES = [["1", "×1"], ["sqrt", "/√D (D = 16)"], ["8", "×8"]];

  function weights(scores, query, mask, scale) {
    var k = scale === "sqrt" ? 0.25 : Number(scale);
    var s = scores.map(function (x) { return x * k; });
    var future = s.map(function (_, j) { return j > query; });
    var w, entering = s; // the scores that go through exp
    if (mask === "inf-before") {
      entering = s.map(function (x, j) { return future[j] ? -Infinity : x; });
      w = softmax(entering);
    } else if (mask === "1e9-float16") {
      // the additive form: scores + mask * fill, with fill = -1e9 cast to float16 (-inf)
      var fill = toFloat16(-1e9);
      entering = s.map(function (x, j) { return toFloat16(x) + (future[j] ? 1 : 0) * fill; });
      w = softmax(entering);
    } else {
      w = softmax(s).map(function (x, j) { return future[j] ? 0 : x; });
      if (mask === "renorm-after") {
        var z = w.reduce(function (a, b) { return a + b; }, 0);
        w = w.map(function (x) { return x / z; });
      }
    }
    var overflow = entering.some(function (x) { return x > EXP_LIMIT; });
    return { w: w, scaled: s, overflow: overflow };
  }

  function scoresToWeights(root) {
    var scores = root.getAttribute("data-scores").trim().split(/\s+/).map(Number);
    var query = Number(root.getAttribute("data-query"));
    var n = scores.length;
    var live = el("div", { "class": "widget-live" });
    var form = el("div", { "class": "widget-controls", role: "group", "aria-label": "Scores and options" });
    var inputs = scores.map(function (v, j) {
      var label = el("label", {}, "s" + j + (j > query ? " (future)" : ""));
      var input = el("input", { type: "number", step: "0.5", value: String(v), "data-key": String(j) });
      label.appendChild(input);
      form.appendChild(label);
      return input;
    });
    function choice(name, options) {
      var label = el("label", {}, name + " ");
      var select = el("select", { "data-control": name });
      options.forEach(function (o) {
        select.appendChild(el("option", { value: o[0] }, o[1]));
      });
      label.appendChild(select);
      form.appendChild(label);
      return select;
    }
    var mask = choice("mask", MASKS);
    var scale = choice("scale", SCALES);
    var width = 40 * n + 20;
    var chart = svg("svg", { viewBox: "0 0 " + width + " 145", "class": "widget-bars", role: "img" });
    var out = el("p", { "class": "widget-out", "aria-live": "polite" });
    live.appendChild(form);
    live.appendChild(chart);
    live.appendChild(out);
    root.appendChild(live);

    function draw() {
      var s = inputs.map(function (i) { return Number(i.value) || 0; });
      var r = weights(s, query, mask.value, scale.value);
      while (chart.firstChild) chart.removeChild(chart.firstChild);
      r.w.forEach(function (w, j) {
        var h = Number.isFinite(w) ? Math.max(0, Math.min(1, w)) * 100 : 0;
        var x = 10 + 40 * j;
        chart.appendChild(svg("rect", { x: x + 4, y: 110 - h, width: 28, height: h, "class": j > query ? "future" : "past" }));
        var t = svg("text", { x: x + 18, y: 128, "text-anchor": "middle", "data-weight": String(w) });
        t.textContent = fmt(w);
        chart.appendChild(t);
        var key = svg("text", { x: x + 18, y: 141, "text-anchor": "middle", "class": "key" });
        key.textContent = "key " + j;
        chart.appendChild(key);
      });
      var sum = r.w.reduce(function (a, b) { return a + b; }, 0);
      var note = r.overflow ? " A softmax without the max subtracted would overflow: exp of a score above 88.7 is inf in float32, and inf / inf is nan." : "";
      if (mask.value === "1e9-float16") note += " −1e9 does not fit in float16: it becomes −inf, and 0 × (−inf) is nan, so every weight is nan.";
      out.setAttribute("data-sum", String(sum));
      out.textContent = "Weights " + r.w.map(fmt).join(", ") + "; sum " + fmt(sum) + "." + note;
      chart.setAttribute("aria-label", out.textContent);
    }
    form.addEventListener("input", draw);
    form.addEventListener("change", draw);
    draw();
  }


  // Who sees whom (chapter 11, inference with a KV cache): which keys each query may read, and, with a KV
  // cache, the lower-right mask next to the top-left one that is_causal=True gives.
  function whoSeesWhom(root) {
    var T = Number(root.getAttribute("data-tokens"));
    var live = el("div", { "class": "widget-live" });
    var form = el("div", { "class": "widget-controls", role: "group", "aria-label": "Mask options" });
    function number(name, label, value, max) {
      var l = el("label", {}, label + " ");
      var input = el("input", { type: "number", min: "0", max: String(max), step: "1", value: String(value), "data-control": name });
      l.appendChild(input);
      form.appendChild(l);
      return input;
    }
    var kindLabel = el("label", {}, "attention ");
    var kind = el("select", { "data-control": "kind" });
    [["decoder", "decoder: the past only"], ["encoder", "encoder: every token"]].forEach(function (o) {
      kind.appendChild(el("option", { value: o[0] }, o[1]));
    });
    kindLabel.appendChild(kind);
    form.appendChild(kindLabel);
    var cached = number("cached", "cached tokens", Number(root.getAttribute("data-cached")), T - 1);
    var row = number("row", "query row", 0, T - 1);
    var grids = el("div", { "class": "widget-grids" });
    var out = el("p", { "class": "widget-out", "aria-live": "polite" });
    live.appendChild(form);
    live.appendChild(grids);
    live.appendChild(out);
    root.appendChild(live);

    function clamp(input, lo, hi) {
      var v = Math.round(Number(input.value));
      v = Number.isFinite(v) ? Math.min(hi, Math.max(lo, v)) : lo;
      return v;
    }

    function grid(name, title, Tq, allowed, selected) {
      var cell = 22, pad = 24;
      var g = svg("svg", { viewBox: "0 0 " + (pad + cell * T + 4) + " " + (pad + cell * Tq + 4), "class": "widget-grid", "data-grid": name, role: "img" });
      var caption = el("figcaption", {}, title);
      for (var i = 0; i < Tq; i++) {
        var label = svg("text", { x: pad - 6, y: pad + cell * i + 15, "text-anchor": "end" });
        label.textContent = String(T - Tq + i);
        g.appendChild(label);
        for (var j = 0; j < T; j++) {
          var ok = allowed(i, j);
          var classes = (ok ? "allowed" : "blocked") + (i === selected ? " selected" : "");
          g.appendChild(svg("rect", { x: pad + cell * j, y: pad + cell * i, width: cell - 2, height: cell - 2, "class": classes, "data-q": String(i), "data-k": String(j), "data-allowed": ok ? "1" : "0" }));
        }
      }
      for (var k = 0; k < T; k++) {
        var top = svg("text", { x: pad + cell * k + 10, y: pad - 8, "text-anchor": "middle" });
        top.textContent = String(k);
        g.appendChild(top);
      }
      var figure = el("figure", { "class": "widget-grid-box" });
      figure.appendChild(g);
      figure.appendChild(caption);
      var sees = [];
      for (var s = 0; s < T; s++) if (allowed(selected, s)) sees.push(s);
      g.setAttribute("aria-label", title + ": query row " + selected + " sees keys " + sees.join(", "));
      return { figure: figure, sees: sees };
    }

    function draw() {
      var n = clamp(cached, 0, T - 1), Tq = T - n, r = clamp(row, 0, Tq - 1);
      row.max = String(Tq - 1);
      while (grids.firstChild) grids.removeChild(grids.firstChild);
      var encoder = kind.value === "encoder";
      var lowerRight = grid("lower-right", encoder ? "every key" : "lower-right (correct)", Tq, function (i, j) { return encoder || j <= n + i; }, r);
      grids.appendChild(lowerRight.figure);
      var text = "Query row " + r + " is token " + (n + r) + "; it averages the rows " + lowerRight.sees.join(", ") + " of x.";
      if (!encoder && n > 0) {
        var topLeft = grid("top-left", "top-left (is_causal=True)", Tq, function (i, j) { return j <= i; }, r);
        grids.appendChild(topLeft.figure);
        text += " With the top-left mask it would read only " + topLeft.sees.join(", ") + ".";
      } else if (!encoder) {
        text += " With no cache, top-left and lower-right are the same mask.";
      }
      out.textContent = text;
    }
    form.addEventListener("input", draw);
    form.addEventListener("change", draw);
    draw();
  }


  // Online softmax, step by step (chapter 9): the trace comes from the package, computed when
  // the site was built (hooks/widgets.py); this only shows it, one key at a time.
  function num(v) {
    return typeof v === "string" ? v : v.toFixed(4);
  }

  function onlineSoftmax(root) {
    var data = JSON.parse(root.getAttribute("data-trace"));
    var names = Object.keys(data);
    var live = el("div", { "class": "widget-live" });
    var form = el("div", { "class": "widget-controls", role: "group", "aria-label": "Stepper" });
    var presetLabel = el("label", {}, "scores ");
    var preset = el("select", { "data-control": "preset" });
    names.forEach(function (n) { preset.appendChild(el("option", { value: n }, n)); });
    presetLabel.appendChild(preset);
    var prev = el("button", { type: "button", "data-control": "previous" }, "◀ previous key");
    var next = el("button", { type: "button", "data-control": "next" }, "next key ▶");
    [presetLabel, prev, next].forEach(function (e) { form.appendChild(e); });
    var table = el("table", { "class": "widget-table" });
    var cols = [["s", "score s"], ["m", "max m"], ["scale", "scale e^(m_old − m)"], ["p", "term e^(s − m)"], ["l", "l"], ["acc", "acc"], ["naive", "naive e^s"]];
    var head = el("tr");
    head.appendChild(el("th", { scope: "col" }, "key"));
    cols.forEach(function (c) { head.appendChild(el("th", { scope: "col" }, c[1])); });
    table.appendChild(head);
    var out = el("p", { "class": "widget-out", "aria-live": "polite" });
    var wrap = el("div", { "class": "widget-scroll", tabindex: "0", role: "group", "aria-label": "The trace so far" });
    wrap.appendChild(table);
    live.appendChild(form);
    live.appendChild(wrap);
    live.appendChild(out);
    root.appendChild(live);
    var step = 0;

    function draw() {
      var trace = data[preset.value];
      var steps = trace.steps;
      step = Math.max(0, Math.min(steps.length - 1, step));
      while (table.rows.length > 1) table.deleteRow(1);
      for (var j = 0; j <= step; j++) {
        var tr = el("tr", { "data-step": String(j), "class": j === step ? "current" : "" });
        tr.appendChild(el("th", { scope: "row" }, String(j)));
        cols.forEach(function (c) {
          tr.appendChild(el("td", { "data-name": c[0], "data-value": String(steps[j][c[0]]) }, num(steps[j][c[0]])));
        });
        table.appendChild(tr);
      }
      var s = steps[step];
      var last = step === steps.length - 1;
      var text = "Key " + step + ": m = " + num(s.m) + ", scale " + num(s.scale) + ", l = " + num(s.l) + ", acc = " + num(s.acc) + ".";
      if (last) {
        text += " Output acc / l = " + num(s.acc / s.l) + ".";
        var naiveTop = 0, naiveBottom = 0;
        steps.forEach(function (t, j) {
          var e = t.naive === "inf" ? Infinity : Number(t.naive);
          naiveTop += e * trace.values[j];
          naiveBottom += e;
        });
        var naive = naiveTop / naiveBottom;
        text += " Without the maximum: " + (Number.isNaN(naive) ? "nan (inf / inf)" : num(naive)) + ".";
      }
      out.textContent = text;
      prev.disabled = step === 0;
      next.disabled = last;
    }
    prev.addEventListener("click", function () { step -= 1; draw(); });
    next.addEventListener("click", function () { step += 1; draw(); });
    preset.addEventListener("change", function () { step = 0; draw(); });
    draw();
  }

  // KV cache, step by step (chapter 11): decoding one token at a time, from a trace the package
  // computed when the site was built (sitegen/widgets.py): per step the new token's query, the
  // keys and values the cache holds, the query's weights over them, and the multiply-adds of
  // decode_macs with the cache and without it.
  function vec(row) {
    return row.map(function (x) { return x.toFixed(2).padStart(5); }).join(" ");
  }

  function kvCache(root) {
    var data = JSON.parse(root.getAttribute("data-trace"));
    var steps = data.steps, T = steps.length;
    var live = el("div", { "class": "widget-live" });
    var form = el("div", { "class": "widget-controls", role: "group", "aria-label": "Decoding steps" });
    var prev = el("button", { type: "button", "data-control": "previous" }, "◀ previous token");
    var next = el("button", { type: "button", "data-control": "next" }, "next token ▶");
    form.appendChild(prev);
    form.appendChild(next);
    var query = el("p", { "class": "widget-query" });
    var table = el("table", { "class": "widget-table widget-cache" });
    var head = el("tr");
    ["token", "weight", "key k, value v"].forEach(function (h) { head.appendChild(el("th", { scope: "col" }, h)); });
    table.appendChild(head);
    var wrap = el("div", { "class": "widget-scroll", tabindex: "0", role: "group", "aria-label": "The cache" });
    wrap.appendChild(table);
    var chart = svg("svg", { viewBox: "0 0 " + (30 + 48 * T) + " 136", "class": "widget-macs", role: "img" });
    var out = el("p", { "class": "widget-out", "aria-live": "polite" });
    var caption = el("p", {}, "Decoding " + T + " tokens through a KVCache (one layer, C = " + data.C + "), run when the site was built:");
    [caption, form, query, wrap, chart, out].forEach(function (e) { live.appendChild(e); });
    root.appendChild(live);
    var step = 0, top = steps[T - 1].without;

    function shown(tag, name, value, text) {
      return el(tag, { "data-name": name, "data-value": [].concat(value).join(" ") }, text);
    }

    function column(parts) { // [name, label, vector] lines in one cell
      var td = el("td");
      parts.forEach(function (p) { td.appendChild(shown("div", p[0], p[2], p[1] + vec(p[2]))); });
      return td;
    }

    function bar(x, value, kind, label) {
      var h = 90 * value / top;
      chart.appendChild(svg("rect", { x: x, y: 105 - h, width: 18, height: h, "class": kind }));
      var t = svg("text", { x: x + 9, y: 101 - h, "text-anchor": "middle", "data-macs": kind, "data-step": label });
      t.textContent = String(value);
      chart.appendChild(t);
    }

    function draw() {
      var s = steps[step];
      while (table.rows.length > 1) table.deleteRow(1);
      s.k.forEach(function (k, j) {
        var tr = el("tr", { "data-row": String(j), "class": j === step ? "current" : "" });
        tr.appendChild(el("th", { scope: "row" }, String(j)));
        tr.appendChild(shown("td", "w", s.w[j], s.w[j].toFixed(2)));
        tr.appendChild(column([["k", "k ", k], ["v", "v ", s.v[j]]]));
        table.appendChild(tr);
      });
      var avg = el("tr", { "class": "widget-sum" });
      avg.appendChild(el("th", { scope: "row" }, "Σ w v"));
      avg.appendChild(el("td"));
      avg.appendChild(column([["avg", "  ", s.avg]]));
      table.appendChild(avg);
      query.textContent = "Token " + step + " is new. Its query q = " + vec(s.q) + " reads every cached row:";
      query.setAttribute("data-value", s.q.join(" "));
      while (chart.firstChild) chart.removeChild(chart.firstChild);
      var sums = [0, 0];
      for (var j = 0; j <= step; j++) {
        bar(28 + 48 * j, steps[j].with, "with", j);
        bar(48 + 48 * j, steps[j].without, "without", j);
        sums[0] += steps[j].with;
        sums[1] += steps[j].without;
        var label = svg("text", { x: 47 + 48 * j, y: 118, "text-anchor": "middle", "class": j === step ? "now" : "" });
        label.textContent = "step " + j;
        chart.appendChild(label);
      }
      var legend = svg("text", { x: 4, y: 132 });
      legend.textContent = "multiply-adds: left with the cache, right without";
      chart.appendChild(legend);
      var text = "Step " + step + " (of 0 to " + (T - 1) + "): the cache holds " + (step + 1) + (step ? " rows" : " row") +
        "; the new query's weights are " + s.w.map(function (w) { return w.toFixed(2); }).join(", ") +
        ". Multiply-adds of this step: " + s.with + " with the cache, " + s.without + " without; " +
        "steps 0 to " + step + ": " + sums[0] + " and " + sums[1] + ".";
      out.textContent = text;
      chart.setAttribute("aria-label", "Multiply-adds per step, with and without the cache: " +
        steps.slice(0, step + 1).map(function (t, j) { return "step " + j + " " + t.with + " and " + t.without; }).join("; "));
      var had = document.activeElement;
      prev.disabled = step === 0;
      next.disabled = step === T - 1;
      // a button that becomes disabled loses the focus: hand it to the other one
      if (had === next && next.disabled) prev.focus();
      if (had === prev && prev.disabled) next.focus();
    }
    prev.addEventListener("click", function () { step = Math.max(0, step - 1); draw(); });
    next.addEventListener("click", function () { step = Math.min(T - 1, step + 1); draw(); });
    draw();
  }

  var WIDGETS = { "scores-to-weights": scoresToWeights, "who-sees-whom": whoSeesWhom, "online-softmax": onlineSoftmax, "kv-cache": kvCache };

  function init() {
    var found = document.querySelectorAll("[data-widget]");
    Array.prototype.forEach.call(found, function (root) {
      var make = WIDGETS[root.getAttribute("data-widget")];
      if (!make || root.classList.contains("widget-on")) return;
      make(root);
      root.classList.add("widget-on"); // the stylesheet hides the static figure from here on
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
