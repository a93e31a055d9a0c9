// The Configuration panel: every change goes through the management API (/api/v1) with the
// page's session and its CSRF token, exactly as a script with the admin token would; the
// API's own error message is what the page shows (a license limit included). Keys go to the
// API only: the page never receives one back, it shows the stored hint ("sk-…1234").
(function () {
  "use strict";
  var root = document.getElementById("eldric-dashboard");
  if (!root) return;
  var api = root.dataset.managementApi;
  var csrf = root.dataset.csrf;
  var presets = JSON.parse(document.getElementById("eld-presets").textContent);
  var form = document.getElementById("eld-add-form");
  var shownBackends = null;
  var shownInstances = null;

  function el(tag, text, attrs) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (attrs) Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    return node;
  }

  function say(text, ok) {
    var node = document.getElementById("eld-config-message");
    node.textContent = text;
    node.dataset.outcome = ok ? "ok" : "error";
  }

  // One management-API call; resolves to [status, body] and never rejects.
  function call(method, path, body) {
    var init = {
      method: method,
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrf },
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(api + path, init)
      .then(function (response) {
        if (response.status === 204) return [204, null];
        return response.json().then(function (data) { return [response.status, data]; }, function () { return [response.status, null]; });
      })
      .catch(function () { return [0, null]; });
  }

  function errorText(status, body) {
    if (body && body.error && body.error.message) return body.error.message + (body.error.code ? " (" + body.error.code + ")" : "");
    return status ? "The server answered " + status + "." : "The server could not be reached.";
  }

  // After a write: say what happened, and ask for a fresh state rather than wait for the next push.
  function done(what) {
    return function (answer) {
      var status = answer[0], body = answer[1];
      if (status >= 200 && status < 300) say(what, true); else say(errorText(status, body), false);
      if (window.eldricDashboard) window.eldricDashboard.refresh();
      return answer;
    };
  }

  function backendPath(name) { return "/backends/" + encodeURIComponent(name); }

  function configBody(withName) {
    var data = new FormData(form);
    var body = { type: data.get("type"), url: data.get("url").trim(), api_key: data.get("api_key") };
    if (withName) {
      body.name = data.get("name").trim();
      var priority = parseInt(data.get("priority"), 10);
      if (!isNaN(priority)) body.priority = priority;
    }
    return body;
  }

  form.elements.preset.addEventListener("change", function () {
    var preset = presets[form.elements.preset.value];
    if (!preset) return;
    form.elements.url.value = preset.url;
    form.elements.type.value = preset.type;
    if (!form.elements.name.value) form.elements.name.value = form.elements.preset.value;
  });

  document.getElementById("eld-test-button").addEventListener("click", function () {
    var result = document.getElementById("eld-test-result");
    result.textContent = "testing…";
    result.dataset.outcome = "pending";
    call("POST", "/backends/test", configBody(false)).then(function (answer) {
      var status = answer[0], body = answer[1];
      if (status !== 200) {
        result.textContent = errorText(status, body);
        result.dataset.outcome = "error";
        return;
      }
      var models = body.models.slice(0, 10).join(", ") + (body.model_count > 10 ? ", …" : "");
      result.textContent = body.status + (body.http_status ? " (HTTP " + body.http_status + ")" : "") +
        (body.latency_ms !== null ? ", " + Math.round(body.latency_ms) + " ms" : "") +
        ", " + body.model_count + " models" + (models ? ": " + models : "") + (body.error ? ". " + body.error : "");
      result.dataset.outcome = body.status;
    });
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var body = configBody(true);
    call("POST", "/backends", body).then(done("Added " + body.name + ".")).then(function (answer) {
      if (answer[0] === 201) {
        form.elements.api_key.value = "";  // no reason to keep a key in the page
        document.getElementById("eld-test-result").textContent = "";
      }
    });
  });

  function button(label, action, attrs) {
    var node = el("button", label, Object.assign({ type: "button" }, attrs || {}));
    node.addEventListener("click", action);
    return node;
  }

  function backendActions(b) {
    var cell = el("td");
    cell.appendChild(button(b.enabled ? "Disable" : "Enable", function () {
      call("PATCH", backendPath(b.name), { enabled: !b.enabled }).then(done((b.enabled ? "Disabled " : "Enabled ") + b.name + "."));
    }, { "data-action": b.enabled ? "disable" : "enable" }));
    if (b.source === "static") {
      // The API refuses other changes to it (409): say why up front.
      var who = b.instances.length ? "instance " + b.instances.join(", ") + "'s" : "an instance's";
      cell.appendChild(el("span", " read-only: declared by " + who + " flags/config file", { "class": "eld-muted eld-readonly" }));
      return cell;
    }
    cell.appendChild(button("Delete", function () {
      if (!window.confirm("Delete backend " + b.name + "?")) return;
      call("DELETE", backendPath(b.name)).then(done("Deleted " + b.name + "."));
    }, { "data-action": "delete" }));
    var key = el("input", null, { type: "password", placeholder: "new API key", size: "18", "data-field": "rotate" });
    cell.appendChild(key);
    cell.appendChild(button("Rotate key", function () {
      if (!key.value) { say("Paste the new key first.", false); return; }
      call("PATCH", backendPath(b.name), { api_key: key.value }).then(done("Rotated the key of " + b.name + ".")).then(function () { key.value = ""; });
    }, { "data-action": "rotate" }));
    return cell;
  }

  function renderBackends(backends) {
    // Rebuilt only when something shown here changed, so a key being pasted is not wiped by a push.
    var signature = JSON.stringify(backends.map(function (b) { return [b.name, b.source, b.priority, b.api_key_hint, b.enabled, b.instances]; }));
    if (signature === shownBackends) return;
    shownBackends = signature;
    var rows = backends.map(function (b) {
      var tr = el("tr");
      tr.dataset.backend = b.name;
      tr.dataset.enabled = b.enabled ? "yes" : "no";
      [b.name, b.source === "static" ? "static" : "runtime", b.priority, b.api_key_hint || "not set", b.enabled ? "yes" : "no"]
        .forEach(function (text) { tr.appendChild(el("td", text)); });
      tr.appendChild(backendActions(b));
      return tr;
    });
    var tbody = document.getElementById("eld-config-backends");
    tbody.replaceChildren.apply(tbody, rows.length ? rows : [el("tr")]);
  }

  function renderInstances(instances, backends) {
    var signature = JSON.stringify([instances.map(function (i) { return [i.instance, i.default_backend, i.health_interval_ms]; }),
      backends.map(function (b) { return b.name; })]);
    if (signature === shownInstances) return;
    shownInstances = signature;
    var rows = instances.map(function (i) {
      var tr = el("tr");
      tr.dataset.instance = i.instance;
      tr.appendChild(el("td", i.instance));
      var choice = el("select", null, { "data-field": "default_backend" });
      [""].concat(backends.map(function (b) { return b.name; })).forEach(function (name) {
        choice.appendChild(el("option", name || "(the first configured)", { value: name }));
      });
      choice.value = i.default_backend;
      var interval = el("input", null, { type: "number", min: "100", value: String(i.health_interval_ms), "data-field": "health_interval_ms" });
      [choice, interval].forEach(function (input) { var td = el("td"); td.appendChild(input); tr.appendChild(td); });
      var td = el("td");
      td.appendChild(button("Save", function () {
        var body = { default_backend: choice.value, health_interval_ms: parseInt(interval.value, 10) };
        call("PATCH", "/instances/" + encodeURIComponent(i.instance), body).then(done("Saved the settings of " + i.instance + "."));
      }, { "data-action": "save-instance" }));
      tr.appendChild(td);
      return tr;
    });
    var tbody = document.getElementById("eld-config-instances");
    tbody.replaceChildren.apply(tbody, rows);
  }

  window.eldricConfig = {
    apply: function (state) {
      renderBackends(state.backends);
      renderInstances(state.instances, state.backends);
    },
  };
})();
