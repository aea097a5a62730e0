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
  var state = {filter: "all", q: "", limit: meta.size, gen: 0, matches: []};
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
    d.appendChild(s); d.appendChild(el("pre", "txt", rec.p)); p.appendChild(d); tr.appendChild(p);
    tr.appendChild(pre(rec.t));
    if (meta.has_base) { tr.appendChild(answer(rec.b)); }
    var m = answer(rec.m);
    if (rec.j) { m.appendChild(el("div", "ci", "judge: " + rec.j)); }
    tr.appendChild(m);
    var sc = el("td", "ci");
    if (meta.has_base) {
      sc.appendChild(el("b", null, "base")); sc.appendChild(document.createTextNode(" " + scoreText(rec.bs)));
      sc.appendChild(el("br"));
    }
    sc.appendChild(el("b", null, "model")); sc.appendChild(document.createTextNode(" " + scoreText(rec.ms)));
    tr.appendChild(sc);
    tr.appendChild(el("td", "st-" + rec.st, LABELS[rec.st] || rec.st));
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
      if (state.filter === "all" || !index || index.status[k - 1].indexOf(state.filter) >= 0) { out.push(k); }
    }
    return out;
  }

  function run() {
    var gen = ++state.gen;
    state.matches = [];
    state.limit = meta.size;
    if (state.filter === "all" && !state.q) {
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
        statusEl.textContent = n + " matching sample" + (n === 1 ? "" : "s");
        return Promise.resolve();
      }
      var page = todo[done];
      return load(page).then(function (records) {
        if (gen !== state.gen) { return; }
        records.forEach(function (rec) {
          if ((state.filter === "all" || rec.st === state.filter) && (!q || text(rec).indexOf(q) >= 0)) {
            state.matches.push(rec);
          }
        });
        done += 1;
        if (state.matches.length <= state.limit) { render(); } else { more.hidden = false; }
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

  function saveHash() {
    var parts = [];
    if (state.filter !== "all") { parts.push("filter=" + encodeURIComponent(state.filter)); }
    if (state.q) { parts.push("q=" + encodeURIComponent(state.q)); }
    try { history.replaceState(null, "", parts.length ? "#" + parts.join("&") : location.pathname); } catch (e) { /* file:// quirks */ }
  }

  function readHash() {
    var h = location.hash.replace(/^#/, "");
    if (h.indexOf("=") < 0) { return; }  /* a plain #s-12 anchor */
    h.split("&").forEach(function (kv) {
      var i = kv.indexOf("="), k = kv.slice(0, i), v = decodeURIComponent(kv.slice(i + 1));
      if (k === "filter") { setFilter(v); } else if (k === "q") { state.q = v; $("search").value = v; }
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
  more.addEventListener("click", function () { state.limit += meta.size; render(); });
  readHash();
  run();
}());
