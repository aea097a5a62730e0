/* Sample browser: filters and search across every page of one benchmark.
   Works from file://: other pages' records come from data-K.js chunks loaded with
   <script src> (fetch() of local files is blocked there). All text is inserted with
   textContent, never innerHTML: model output is untrusted. */
(function () {
  "use strict";
  var meta = JSON.parse(document.getElementById("page-meta").textContent);
  var index = window.HARNESS_INDEX || null;
  var LABELS = meta.labels || {};
  var chunks = {}, waiting = {}, hay = {};
  var state = {filter: "all", q: "", limit: meta.size, gen: 0, matches: [], metric: meta.metric || null, sort: ""};
  var $ = function (id) { return document.getElementById(id); };
  var statusEl = $("js-status"), more = $("more");

  window.HarnessSamples = {
    put: function (page, records) {
      chunks[page] = records;
      (waiting[page] || []).forEach(function (cb) { cb.ok(records); });
      delete waiting[page];
    }
  };

  function load(page) {
    return new Promise(function (ok, fail) {
      if (chunks[page]) { ok(chunks[page]); return; }
      if (waiting[page]) { waiting[page].push({ok: ok, fail: fail}); return; }
      waiting[page] = [{ok: ok, fail: fail}];
      var s = document.createElement("script");
      s.src = "data-" + page + ".js";
      s.onerror = function () {
        (waiting[page] || []).forEach(function (cb) { cb.fail(new Error("cannot load " + s.src)); });
        delete waiting[page];
      };
      document.head.appendChild(s);
    });
  }

  function text(rec) {
    if (!hay[rec.i]) {
      hay[rec.i] = [rec.id, rec.sub, rec.p, rec.t, rec.m, rec.b || "", rec.j || ""].join("\n").toLowerCase();
    }
    return hay[rec.i];
  }

  function scoreText(scores) {
    if (!scores) { return ""; }
    return Object.keys(scores).map(function (k) { return k + " " + Number(scores[k]).toPrecision(3).replace(/\.?0+$/, ""); }).join(" \u00B7 ");
  }

  function el(tag, cls, txt) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (txt !== undefined && txt !== null) { e.textContent = txt; }
    return e;
  }

  /* the status of a sample by the chosen metric (the page's own status for the primary one) */
  function status(rec) {
    if (!state.metric || state.metric === meta.metric) { return rec.st; }
    return (rec.sts || {})[state.metric] || "?";
  }

  function change(rec) {
    var k = state.metric || meta.metric;
    var v = rec.dc ? (k && k in rec.dc ? rec.dc[k] : rec.dc[Object.keys(rec.dc)[0]]) : undefined;
    return typeof v === "number" ? v : 0;
  }

  /* one side of the base -> model word diff, built with textContent inside <ins>/<del> */
  function diffed(ops, side) {
    var p = el("pre", "txt diff");
    p.setAttribute("data-side", side);
    ops.forEach(function (o) {
      if (o[0] === "=") { p.appendChild(document.createTextNode(o[1])); }
      else if (o[0] === "-" && side === "base") { p.appendChild(el("del", null, o[1])); }
      else if (o[0] === "+" && side === "model") { p.appendChild(el("ins", null, o[1])); }
    });
    return p;
  }

  function pct(x) { return (100 * x).toFixed(1) + " %"; }

  function choices(td, cv) {
    if (!cv) { return; }
    var t = el("table", "choices"), body = el("tbody"), hasBase = cv.ch.length && cv.ch[0].pb !== null;
    var head = el("tr");
    head.appendChild(el("th", null, "choice"));
    if (hasBase) { head.appendChild(el("th", "num", "p base")); }
    head.appendChild(el("th", "num", "p model"));
    var th = el("thead"); th.appendChild(head); t.appendChild(th);
    cv.ch.forEach(function (c) {
      var tr = el("tr", c.g ? "gold" : null);
      tr.setAttribute("data-choice", c.l);
      tr.appendChild(el("td", null, c.l + ". " + c.x + (c.g ? " \u2713" : "")));
      if (hasBase) { tr.appendChild(el("td", "num", pct(c.pb))); }
      tr.appendChild(el("td", "num", pct(c.pm)));
      body.appendChild(tr);
    });
    t.appendChild(body); td.appendChild(t);
    var roles = Object.keys(cv.mg || {});
    if (roles.length) {
      td.appendChild(el("div", "ci margin", "margin p(gold) \u2212 best other: " + roles.map(function (r) {
        var v = 100 * cv.mg[r];
        return r + " " + (v >= 0 ? "+" : "") + v.toFixed(1) + " pp";
      }).join(" \u00B7 ")));
    }
  }

  function pre(txt) { var td = el("td"); td.appendChild(el("pre", "txt", txt)); return td; }

  function answer(txt) {
    var td = el("td");
    td.appendChild(txt ? el("pre", "txt", txt) : el("span", "empty", "(empty answer)"));
    return td;
  }

  function row(rec) {
    var tr = el("tr");
    tr.setAttribute("data-doc", rec.id);
    tr.setAttribute("data-status", rec.st);
    var page = Math.floor(rec.i / meta.size) + 1;
    var td = el("td"), a = el("a", null, "#" + rec.i);
    a.href = "page-" + page + ".html#s-" + rec.i;
    td.appendChild(a); td.appendChild(el("br")); td.appendChild(document.createTextNode(rec.id));
    td.appendChild(el("br")); td.appendChild(el("span", "ci", rec.sub));
    tr.appendChild(td);
    var p = el("td"), d = el("details"), s = el("summary", null, rec.p.length > 160 ? rec.p.slice(-160) : rec.p);
    d.appendChild(s); d.appendChild(el("pre", "txt", rec.p)); p.appendChild(d); choices(p, rec.cv); tr.appendChild(p);
    tr.appendChild(pre(rec.t));
    if (meta.has_base) {
      if (rec.df && rec.b) { var bt = el("td"); bt.appendChild(diffed(rec.df, "base")); tr.appendChild(bt); }
      else { tr.appendChild(answer(rec.b)); }
    }
    var m = answer(rec.m);
    if (rec.df && rec.m) { m = el("td"); m.appendChild(diffed(rec.df, "model")); }
    if (rec.j) { m.appendChild(el("div", "ci", "judge: " + rec.j)); }
    tr.appendChild(m);
    var sc = el("td", "ci");
    if (meta.has_base) {
      sc.appendChild(el("b", null, "base")); sc.appendChild(document.createTextNode(" " + scoreText(rec.bs)));
      sc.appendChild(el("br"));
    }
    sc.appendChild(el("b", null, "model")); sc.appendChild(document.createTextNode(" " + scoreText(rec.ms)));
    tr.appendChild(sc);
    var st = status(rec);
    tr.setAttribute("data-status", st);
    tr.appendChild(el("td", "st-" + st, LABELS[st] || st));
    return tr;
  }

  function render() {
    var body = $("js-table").tBodies[0];
    body.textContent = "";
    var frag = document.createDocumentFragment();
    state.matches.slice(0, state.limit).forEach(function (rec) { frag.appendChild(row(rec)); });
    body.appendChild(frag);
    more.hidden = state.matches.length <= state.limit;
  }

  function pagesToScan() {
    var out = [];
    for (var k = 1; k <= meta.pages; k++) {
      var anyMetric = state.metric && state.metric !== meta.metric;  /* the index holds the primary status only */
      if (state.filter === "all" || anyMetric || !index || index.status[k - 1].indexOf(state.filter) >= 0) { out.push(k); }
    }
    return out;
  }

  function run() {
    var gen = ++state.gen;
    state.matches = [];
    state.limit = meta.size;
    if (state.filter === "all" && !state.q && !state.sort) {
      $("page-view").hidden = false; $("js-view").hidden = true; statusEl.textContent = "";
      return Promise.resolve();
    }
    $("page-view").hidden = true; $("js-view").hidden = false;
    var todo = pagesToScan(), q = state.q.toLowerCase(), done = 0;
    render();
    statusEl.textContent = "searching\u2026";
    function next() {
      if (gen !== state.gen) { return Promise.resolve(); }
      if (done >= todo.length) {
        var n = state.matches.length;
        if (state.sort) {  /* stable: ties keep sample order */
          var sign = state.sort === "gain" ? -1 : 1;
          state.matches.sort(function (a, b) { return sign * (change(a) - change(b)) || a.i - b.i; });
          render();
        }
        statusEl.textContent = n + " matching sample" + (n === 1 ? "" : "s");
        return Promise.resolve();
      }
      var page = todo[done];
      return load(page).then(function (records) {
        if (gen !== state.gen) { return; }
        records.forEach(function (rec) {
          if ((state.filter === "all" || status(rec) === state.filter) && (!q || text(rec).indexOf(q) >= 0)) {
            state.matches.push(rec);
          }
        });
        done += 1;
        if (state.sort) { /* sorted once every page is in */ } else if (state.matches.length <= state.limit) { render(); } else { more.hidden = false; }
        statusEl.textContent = state.matches.length + " matches, searched " + done + "/" + todo.length + " pages";
        return next();
      }, function (err) {
        statusEl.textContent = err.message;
      });
    }
    return next();
  }

  function setFilter(code) {
    state.filter = code;
    Array.prototype.forEach.call(document.querySelectorAll("#toolbar button"), function (b) {
      b.setAttribute("aria-pressed", b.getAttribute("data-filter") === code ? "true" : "false");
    });
  }

  /* the buttons' counts follow the metric the status is read from */
  function setMetric(k) {
    state.metric = k;
    var counts = (meta.by_metric || {})[k];
    if (!counts) { return; }
    var total = 0;
    Object.keys(counts).forEach(function (c) { total += counts[c]; });
    Array.prototype.forEach.call(document.querySelectorAll("#toolbar button"), function (b) {
      var code = b.getAttribute("data-filter"), n = code === "all" ? total : (counts[code] || 0);
      b.textContent = (code === "all" ? "all" : (LABELS[code] || code)) + " (" + n + ")";
    });
  }

  function saveHash() {
    var parts = [];
    if (state.filter !== "all") { parts.push("filter=" + encodeURIComponent(state.filter)); }
    if (state.q) { parts.push("q=" + encodeURIComponent(state.q)); }
    if (state.metric && state.metric !== meta.metric) { parts.push("metric=" + encodeURIComponent(state.metric)); }
    if (state.sort) { parts.push("sort=" + encodeURIComponent(state.sort)); }
    try { history.replaceState(null, "", parts.length ? "#" + parts.join("&") : location.pathname); } catch (e) { /* file:// quirks */ }
  }

  function readHash() {
    var h = location.hash.replace(/^#/, "");
    if (h.indexOf("=") < 0) { return; }  /* a plain #s-12 anchor */
    h.split("&").forEach(function (kv) {
      var i = kv.indexOf("="), k = kv.slice(0, i), v = decodeURIComponent(kv.slice(i + 1));
      if (k === "filter") { setFilter(v); } else if (k === "q") { state.q = v; $("search").value = v; }
      else if (k === "metric" && $("metric")) { $("metric").value = v; setMetric(v); }
      else if (k === "sort" && $("sort")) { $("sort").value = v; state.sort = v; }
    });
  }

  $("toolbar").hidden = false;
  Array.prototype.forEach.call(document.querySelectorAll("#toolbar button"), function (b) {
    b.addEventListener("click", function () { setFilter(b.getAttribute("data-filter")); saveHash(); run(); });
  });
  var timer = null;
  $("search").addEventListener("input", function (ev) {
    clearTimeout(timer);
    timer = setTimeout(function () { state.q = ev.target.value.trim(); saveHash(); run(); }, 250);
  });
  if ($("metric")) { $("metric").addEventListener("change", function (ev) { setMetric(ev.target.value); saveHash(); run(); }); }
  if ($("sort")) { $("sort").addEventListener("change", function (ev) { state.sort = ev.target.value; saveHash(); run(); }); }
  more.addEventListener("click", function () { state.limit += meta.size; render(); });
  readHash();
  run();
}());
