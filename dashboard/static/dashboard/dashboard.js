// The live dashboard: the first state from the JSON endpoint, then a fresh one over the
// websocket every couple of seconds. When the socket drops the page says so, re-reads the
// JSON endpoint and reconnects with a growing delay. Everything shown is set with
// textContent: backend names and upstream errors are never parsed as HTML.
(function () {
  "use strict";
  var root = document.getElementById("eldric-dashboard");
  if (!root) return;
  var apiUrl = root.dataset.api;
  var wsPath = root.dataset.ws;
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
        b.model_count,
        b.per_minute.requests,
        b.per_minute.errors,
        b.per_minute.failovers,
        b.api_key_hint || "-",
      ]);
      tr.dataset.backend = b.name;
      tr.dataset.status = b.status;
      tr.dataset.requests = b.last_5m.requests;
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

  function chart(id, title, label, values, times, stroke, points) {
    var target = document.getElementById(id);
    var data = [times, values];
    if (typeof uPlot === "undefined") {
      target.textContent = title + ": " + values.filter(function (v) { return v !== null; }).slice(-1)[0];
      return;
    }
    if (charts[id]) { charts[id].setData(data); return; }
    charts[id] = new uPlot({
      title: title, width: 360, height: 180,
      series: [{}, { label: label, stroke: stroke, width: 2, spanGaps: false, points: { show: !!points, size: 5 } }],
      axes: [{}, { size: 50 }],
    }, data, target);
  }

  function renderTraffic(traffic) {
    var total = traffic.requests.reduce(function (a, b) { return a + b; }, 0);
    var errors = traffic.errors.reduce(function (a, b) { return a + b; }, 0);
    document.getElementById("eld-traffic-totals").textContent =
      total + " requests, " + errors + " errors in the last hour";
    var percent = traffic.error_rate.map(function (r) { return Math.round(r * 1000) / 10; });
    chart("eld-chart-requests", "Requests per minute", "requests", traffic.requests, traffic.t, "#2563eb");
    // Minutes without requests have no p50: points, so a lone busy minute still shows.
    chart("eld-chart-latency", "p50 latency (ms)", "p50 ms", traffic.p50_ms, traffic.t, "#16a34a", true);
    chart("eld-chart-errors", "Error rate (%)", "errors %", percent, traffic.t, "#dc2626");
  }

  function renderInstances(instances) {
    var rows = instances.map(function (i) {
      var age = i.heartbeat_age_seconds === null ? "never" : i.heartbeat_age_seconds + " s";
      var live = i.live ? statusBadge("healthy", "live", "#16a34a", "") : statusBadge("disabled", "not live", "#6b7280", "");
      var tr = row([i.instance, i.worker_id, age, live, i.default_backend || "-", i.health_interval_ms + " ms"]);
      tr.dataset.instance = i.instance;
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
    renderTraffic(state.traffic);
    renderInstances(state.instances);
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
  reread().then(connect);
})();
