// The live dashboard: the first state from the JSON endpoint, then a fresh one over the
// websocket every couple of seconds. When the socket drops the page says so, re-reads the
// JSON endpoint and reconnects with a growing delay. Everything shown is set with
// textContent: backend names and upstream errors are never parsed as HTML.
(function () {
  "use strict";
  var root = document.getElementById("eldric-dashboard");
  if (!root) return;
  var apiUrl = root.dataset.api;
  var trafficUrl = root.dataset.trafficApi;
  var wsPath = root.dataset.ws;
  var lastState = null;
  var scopedFetchedAt = 0;
  var models = [];
  var statuses = {};
  var socket = null;
  var retryDelay = 1000;
  var charts = {};

  function el(tag, text, attrs) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (attrs) Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    return node;
  }

  function row(cells) {
    var tr = document.createElement("tr");
    cells.forEach(function (cell) {
      var td = document.createElement("td");
      if (cell instanceof Node) td.appendChild(cell); else td.textContent = cell === null || cell === undefined ? "-" : String(cell);
      tr.appendChild(td);
    });
    return tr;
  }

  function ago(iso) {
    if (!iso) return "never";
    var seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    if (seconds < 90) return Math.round(seconds) + " s ago";
    if (seconds < 5400) return Math.round(seconds / 60) + " min ago";
    return Math.round(seconds / 3600) + " h ago";
  }

  function statusBadge(key, label, colour, reason) {
    var span = el("span", null, { "class": "eld-status", title: reason || "" });
    var dot = el("span", null, { "class": "eld-dot" });
    dot.style.background = colour;
    span.style.color = colour;
    span.appendChild(dot);
    span.appendChild(document.createTextNode(label));
    span.dataset.status = key;
    return span;
  }

  // A latency sparkline of the last hour as inline SVG: one point per minute, gaps where the
  // backend had no requests.
  function sparkline(values) {
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("class", "eld-spark");
    svg.setAttribute("viewBox", "0 0 120 24");
    svg.setAttribute("preserveAspectRatio", "none");
    var present = (values || []).filter(function (v) { return v !== null; });
    if (!present.length) { svg.dataset.points = "0"; return svg; }
    var max = Math.max.apply(null, present) || 1;
    var step = 120 / Math.max(1, values.length - 1);
    var path = "";
    var pen = false;
    values.forEach(function (v, i) {
      if (v === null) { pen = false; return; }
      var x = (i * step).toFixed(1), y = (22 - (v / max) * 20).toFixed(1);
      path += (pen ? " L" : " M") + x + " " + y;
      pen = true;
    });
    var line = document.createElementNS(ns, "path");
    line.setAttribute("d", path.trim());
    svg.appendChild(line);
    if (present.length === 1 || path.indexOf("L") === -1) {
      values.forEach(function (v, i) {
        if (v === null) return;
        var dot = document.createElementNS(ns, "circle");
        dot.setAttribute("cx", (i * step).toFixed(1)); dot.setAttribute("cy", (22 - (v / max) * 20).toFixed(1)); dot.setAttribute("r", "1.5");
        svg.appendChild(dot);
      });
    }
    svg.dataset.points = String(present.length);
    var title = document.createElementNS(ns, "title");
    title.textContent = "mean latency per minute, max " + Math.round(max) + " ms";
    svg.appendChild(title);
    return svg;
  }

  // Uptime over 24 h and the probe history as a bar of 30-minute cells: green all healthy,
  // red none, amber in between, grey without probes.
  function uptime(probes) {
    var wrap = el("span", null, { "class": "eld-uptime" });
    if (!probes || probes.uptime_24h === null) { wrap.textContent = "no probes yet"; return wrap; }
    wrap.appendChild(el("span", (Math.round(probes.uptime_24h * 1000) / 10) + " %", { "class": "eld-uptime-figure" }));
    var bar = el("span", null, { "class": "eld-probe-bar", title: probes.probes_24h + " probes, " + probes.cell_minutes + " min a cell" });
    probes.cells.forEach(function (share) {
      var cell = el("span", null, { "class": "eld-probe-cell" });
      cell.style.background = share === null ? "#e5e7eb" : share >= 1 ? "#16a34a" : share <= 0 ? "#dc2626" : "#d97706";
      bar.appendChild(cell);
    });
    wrap.appendChild(bar);
    return wrap;
  }

  function ms(value) { return value === null || value === undefined ? "-" : Math.round(value) + " ms"; }
  function percent(rate) { return (Math.round(rate * 1000) / 10) + " %"; }

  function replaceRows(tbody, rows) {
    tbody.replaceChildren.apply(tbody, rows);
  }

  function renderBackends(backends) {
    var rows = backends.map(function (b) {
      var tr = row([
        b.name,
        statusBadge(b.status, b.status_label, b.colour, b.status_reason),
        b.latency_ms === null ? null : Math.round(b.latency_ms) + " ms",
        ago(b.last_checked_at),
        el("span", b.last_error || "-", { "class": "eld-error" }),
        sparkline(b.minutes ? b.minutes.latency_ms : []),
        uptime(b.probes),
        b.model_count,
        b.per_minute.requests,
        b.per_minute.errors,
        b.per_minute.failovers,
        b.api_key_hint || "-",
      ]);
      tr.dataset.backend = b.name;
      tr.dataset.status = b.status;
      tr.dataset.requests = b.last_5m.requests;
      tr.dataset.uptime = b.probes && b.probes.uptime_24h !== null ? String(Math.round(b.probes.uptime_24h * 1000) / 10) : "";
      return tr;
    });
    if (!rows.length) rows = [row(["No backends configured."])];
    replaceRows(document.getElementById("eld-backends"), rows);
  }

  function renderModels() {
    var query = document.getElementById("eld-model-search").value.trim().toLowerCase();
    var shown = models.filter(function (m) { return !query || m.id.toLowerCase().indexOf(query) !== -1; });
    var rows = shown.slice(0, 500).map(function (m) {
      var serving = m.backends.map(function (b) { return b.name + " (" + b.priority + ")"; }).join(", ");
      var routable = m.routable ? statusBadge("healthy", "yes", (statuses.healthy || {}).colour || "#16a34a", "")
        : statusBadge("unhealthy", "no: " + m.why_not, (statuses.unhealthy || {}).colour || "#dc2626", m.why_not);
      var tr = row([m.id, serving, routable]);
      tr.dataset.model = m.id;
      tr.dataset.routable = m.routable ? "yes" : "no";
      return tr;
    });
    if (shown.length > rows.length) rows.push(row([(shown.length - rows.length) + " more; narrow the search."]));
    if (!rows.length) rows = [row([query ? "No model matches." : "No models discovered yet."])];
    replaceRows(document.getElementById("eld-models"), rows);
  }

  // One uPlot per chart, its data replaced on every push; ``lines`` is [[label, colour], ...].
  function chart(id, title, lines, times, columns) {
    var target = document.getElementById(id);
    var data = [times].concat(columns);
    if (typeof uPlot === "undefined") {
      target.textContent = title + ": " + columns[0].filter(function (v) { return v !== null; }).slice(-1)[0];
      return;
    }
    if (charts[id]) { charts[id].setData(data); return; }
    var series = [{}].concat(lines.map(function (line) {
      // Steps without requests have no latency: points, so a lone busy step still shows.
      return { label: line[0], stroke: line[1], width: 2, spanGaps: false, points: { show: !!line[2], size: 5 } };
    }));
    charts[id] = new uPlot({ title: title, width: 360, height: 180, series: series, axes: [{}, { size: 50 }] }, data, target);
  }

  function drawSeries(traffic) {
    var scope = traffic.backend ? "backend " + traffic.backend : traffic.model ? "model " + traffic.model : "gateway";
    var per = traffic.step_minutes === 5 ? "5 min" : "minute";
    document.getElementById("eld-traffic-panel").dataset.scope = scope + " " + traffic.range;
    chart("eld-chart-requests", "Requests/s (per " + per + ")", [["req/s", "#2563eb"]], traffic.t, [traffic.requests_per_s]);
    chart("eld-chart-latency", "Latency (ms)", [["p50", "#16a34a", true], ["p95", "#d97706", true]], traffic.t,
      [traffic.p50_ms, traffic.p95_ms]);
    chart("eld-chart-ttft", "Time to first token (ms)", [["p50", "#7c3aed", true], ["p95", "#db2777", true]], traffic.t,
      [traffic.ttft_p50_ms, traffic.ttft_p95_ms]);
    chart("eld-chart-errors", "Error rate (%)", [["errors %", "#dc2626"]], traffic.t,
      [traffic.error_rate.map(function (r) { return Math.round(r * 1000) / 10; })]);
  }

  function scopeQuery() {
    var scope = document.getElementById("eld-traffic-scope").value;
    var range = document.getElementById("eld-traffic-range").value;
    if (!scope && range === "1h") return null;  // what every push carries
    var query = "?range=" + encodeURIComponent(range);
    if (scope) query += "&" + scope.split(":")[0] + "=" + encodeURIComponent(scope.slice(scope.indexOf(":") + 1));
    return query;
  }

  function fetchScoped(force) {
    var query = scopeQuery();
    if (query === null || (!force && Date.now() - scopedFetchedAt < 5000)) return;
    scopedFetchedAt = Date.now();
    fetch(trafficUrl + query, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (traffic) { if (traffic && scopeQuery() === query) drawSeries(traffic); })
      .catch(function () { /* shown again at the next push */ });
  }

  function setScopes(state) {
    var select = document.getElementById("eld-traffic-scope");
    var wanted = [""];
    state.backends.forEach(function (b) { wanted.push("backend:" + b.name); });
    (state.breakdown ? state.breakdown.models : []).forEach(function (m) { wanted.push("model:" + m.name); });
    var have = Array.prototype.map.call(select.options, function (o) { return o.value; });
    if (have.join("\n") === wanted.join("\n")) return;
    var current = select.value;
    select.replaceChildren.apply(select, wanted.map(function (value) {
      var label = value ? value.replace(":", " ") : "the whole gateway";
      var option = el("option", label, { value: value });
      return option;
    }));
    select.value = wanted.indexOf(current) === -1 ? "" : current;
  }

  function breakdownRows(entries, what) {
    var rows = entries.map(function (e) {
      var tr = row([e.name || "(no backend reached)", e.requests, e.requests_per_s, percent(e.error_rate), e.failovers,
        ms(e.p50_ms), ms(e.p95_ms), ms(e.ttft_p50_ms), ms(e.ttft_p95_ms)]);
      tr.dataset[what] = e.name;
      return tr;
    });
    return rows.length ? rows : [row(["No traffic in the last hour."])];
  }

  function renderUsage(usage) {
    if (!usage) return;
    var period = usage[document.getElementById("eld-usage-period").value] || usage.today;
    var rows = [];
    period.organisations.forEach(function (o) {
      rows.push(row([o.organisation, "all keys", o.requests, o.input_tokens, o.output_tokens, o.cost_usd.toFixed(4) + (o.unpriced ? " (some unpriced)" : "")]));
      period.keys.filter(function (k) { return k.organisation === o.organisation; }).forEach(function (k) {
        var key = k.key ? (k.key.name || "key") + " (" + k.key.prefix + "…)" : "no key (master)";
        rows.push(row(["", key, k.requests, k.input_tokens, k.output_tokens, k.cost_usd.toFixed(4)]));
      });
    });
    replaceRows(document.getElementById("eld-usage"), rows.length ? rows : [row(["No usage since " + period.since + "."])]);
  }

  function renderTraffic(state) {
    var traffic = state.traffic;
    var total = traffic.requests.reduce(function (a, b) { return a + b; }, 0);
    var errors = traffic.errors.reduce(function (a, b) { return a + b; }, 0);
    document.getElementById("eld-traffic-totals").textContent =
      total + " requests, " + errors + " errors in the last hour";
    setScopes(state);
    if (scopeQuery() === null) drawSeries(traffic); else fetchScoped(false);
    if (state.breakdown) {
      replaceRows(document.getElementById("eld-breakdown-backends"), breakdownRows(state.breakdown.backends, "backend"));
      replaceRows(document.getElementById("eld-breakdown-models"), breakdownRows(state.breakdown.models, "model"));
    }
    renderUsage(state.usage);
  }

  function renderDecisions(decisions) {
    if (decisions === null || decisions === undefined) return;  // the JSON endpoint has none: keep the socket's
    var rows = decisions.map(function (d) {
      var failovers = d.failovers.map(function (f) {
        return f.backend + ": " + f.outcome + (f.status ? " " + f.status : "") + (f.reason ? " (" + f.reason + ")" : "");
      });
      if (d.final) failovers.push("last, " + d.final.backend + ": " + d.final.outcome + (d.final.reason ? " (" + d.final.reason + ")" : ""));
      var status = el("span", d.status || "none", { "class": d.status >= 400 || !d.status ? "eld-bad" : "eld-good" });
      var tr = row([new Date(d.at * 1000).toLocaleTimeString(), (d.model || "-") + " → " + (d.backend || "none"), status,
        ms(d.latency_ms), failovers.join("; ") || "-", el("code", d.request_id)]);
      tr.dataset.requestId = d.request_id;
      tr.dataset.failovers = String(d.failovers.length);
      return tr;
    });
    replaceRows(document.getElementById("eld-decisions"), rows.length ? rows : [row(["No requests yet."])]);
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "-";
    var d = Math.floor(seconds / 86400), h = Math.floor(seconds % 86400 / 3600), m = Math.floor(seconds % 3600 / 60);
    if (d) return d + " d " + h + " h";
    if (h) return h + " h " + m + " min";
    return m ? m + " min " + Math.floor(seconds % 60) + " s" : Math.floor(seconds) + " s";
  }

  function figure(value, unit) { return value === null || value === undefined ? "-" : value + unit; }

  function instanceLoad(r) {
    if (r.requests_in_flight === undefined) return "-";
    return [r.requests_in_flight + " in flight", r.active_connections + " connections",
      figure(r.requests_per_minute, " req/min"), figure(r.errors_per_minute, " err/min"),
      "p50 " + ms(r.p50_latency_ms)].join(", ");
  }

  function instanceMachine(r) {
    if (r.process_rss_bytes === undefined) return "-";
    var rss = r.process_rss_bytes === null ? "-" : Math.round(r.process_rss_bytes / 1048576) + " MB";
    return "CPU " + figure(r.process_cpu_percent, " %") + " (host " + figure(r.cpu_percent, " %") + "), RSS " + rss;
  }

  // The controller client's state as the instance's last heartbeat reported it.
  function controllerCell(c) {
    if (!c || !c.configured) return el("span", "none configured", { "class": "eld-muted" });
    var ok = c.state === "registered";
    var badge = statusBadge(ok ? "healthy" : "unhealthy", c.state, ok ? "#16a34a" : "#dc2626", c.last_error || "");
    var text = c.url + "; last success " + (c.last_success || "never") + "; " + c.consecutive_failures + " consecutive failures" +
      (c.last_error ? "; last error " + c.last_error + " at " + c.last_error_at : "");
    var cell = el("span");
    cell.appendChild(badge);
    cell.appendChild(el("span", " " + text, { "class": "eld-muted" }));
    cell.dataset.controllerState = c.state;
    return cell;
  }

  function renderInstances(instances) {
    var rows = instances.map(function (i) {
      var r = i.report || {};
      var age = i.heartbeat_age_seconds === null ? "never" : i.heartbeat_age_seconds + " s";
      var live = i.live ? statusBadge("healthy", "live", "#16a34a", "") : statusBadge("disabled", "not live", "#6b7280", "");
      var tr = row([i.instance, i.worker_id, duration(i.uptime_seconds), age, live,
        i.live ? instanceLoad(r) : "-", i.live ? instanceMachine(r) : "-", controllerCell(r.controller),
        i.default_backend || "-", i.health_interval_ms + " ms"]);
      tr.dataset.instance = i.instance;
      tr.dataset.uptime = i.uptime_seconds === null ? "" : String(i.uptime_seconds);
      tr.dataset.controllerState = r.controller ? r.controller.state : "";
      return tr;
    });
    replaceRows(document.getElementById("eld-instances"), rows);
  }

  function apply(frame) {
    if (!frame || frame.type !== "state") return;
    var state = frame.state;
    statuses = state.statuses || statuses;
    if (state.models !== null && state.models !== undefined) models = state.models;
    renderBackends(state.backends);
    renderModels();
    renderTraffic(state);
    renderDecisions(state.decisions);
    renderInstances(state.instances);
    lastState = state;
    if (window.eldricConfig) window.eldricConfig.apply(state);
    document.getElementById("eld-updated").textContent = "updated " + new Date(state.generated_at).toLocaleTimeString();
    root.dataset.generatedAt = state.generated_at;
  }

  function setConnection(state, text) {
    var node = document.getElementById("eld-connection");
    node.dataset.state = state;
    node.textContent = text;
  }

  function reread() {
    return fetch(apiUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 403) { window.location.reload(); return null; }  // logged out or license changed
        return response.ok ? response.json() : null;
      })
      .then(function (state) { if (state) apply({ type: "state", state: state }); })
      .catch(function () { /* the server is away; the socket's reconnect tries again */ });
  }

  function connect() {
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + window.location.host + wsPath);
    socket.onopen = function () { retryDelay = 1000; setConnection("live", "live"); };
    socket.onmessage = function (event) { apply(JSON.parse(event.data)); };
    socket.onclose = function () {
      setConnection("reconnecting", "connection lost, reconnecting…");
      window.setTimeout(function () { reread(); connect(); }, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 15000);
    };
  }

  // While the socket is down the page still refreshes, more slowly, from the JSON endpoint.
  window.setInterval(function () { if (!socket || socket.readyState !== WebSocket.OPEN) reread(); }, 5000);
  document.getElementById("eld-model-search").addEventListener("input", renderModels);
  ["eld-traffic-scope", "eld-traffic-range"].forEach(function (id) {
    document.getElementById(id).addEventListener("change", function () {
      if (scopeQuery() === null && lastState) drawSeries(lastState.traffic); else fetchScoped(true);
    });
  });
  document.getElementById("eld-usage-period").addEventListener("change", function () { if (lastState) renderUsage(lastState.usage); });
  // The Configuration panel (config.js) asks for a fresh state after each write.
  window.eldricDashboard = {
    refresh: function () {
      if (socket && socket.readyState === WebSocket.OPEN) socket.send("refresh"); else reread();
    },
  };
  reread().then(connect);
})();
