// Vitrine store panel: live updates over server-sent events. No framework, no inline
// script (the CSP forbids it), and nothing from the server is ever parsed as HTML:
// every cell is set with textContent, so a hostile product name stays text.
"use strict";
(function () {
  const body = document.body;
  const url = body.dataset.live;
  if (!url || !window.EventSource) { return; }
  const after = body.dataset.after;
  const labels = body.dataset.labels ? JSON.parse(body.dataset.labels) : {};
  const dot = document.getElementById("live-dot");
  const src = new EventSource(after ? url + "?after=" + encodeURIComponent(after) : url);
  src.onopen = function () { if (dot) { dot.classList.add("on"); } };
  src.onerror = function () { if (dot) { dot.classList.remove("on"); } };

  function fmt(ts) {
    if (!ts) { return "\u2014"; }
    const d = new Date(ts * 1000);
    const p = (n) => String(n).padStart(2, "0");
    return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + " " +
      p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds());
  }

  function cell(tr, text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) { td.className = cls; }
    tr.appendChild(td);
  }

  src.addEventListener("tap", function (msg) {
    const e = JSON.parse(msg.data);
    document.querySelectorAll("table.live-taps").forEach(function (table) {
      const tbody = table.tBodies[0];
      const tr = document.createElement("tr");
      tr.className = "fresh";
      tr.dataset.seq = msg.lastEventId;
      cell(tr, fmt(e.at));
      cell(tr, e.kind + (e.method ? " (" + e.method + ")" : ""));
      cell(tr, e.product || e.gtin || "");
      cell(tr, (e.zone || "") + " / " + (e.shelf || ""));
      cell(tr, e.device_id || "");
      cell(tr, e.customer || labels.anonymous || "anonymous", "customer");
      tbody.insertBefore(tr, tbody.firstChild);
      const max = parseInt(table.dataset.max || "50", 10);
      while (tbody.rows.length > max) { tbody.deleteRow(-1); }
      document.querySelectorAll("p.empty").forEach((p) => p.remove());
    });
  });

  src.addEventListener("pickup", function (msg) {
    const n = JSON.parse(msg.data);
    const box = document.getElementById("notices");
    if (!box) { return; }
    const p = document.createElement("p");
    p.className = "notice";
    p.textContent = (labels.pickup_notice || "Order %s (%s) to collect: customer %s in %s")
      .replace("%s", n.order).replace("%s", labels[n.status] || n.status)
      .replace("%s", n.customer || "").replace("%s", n.zone || "");
    box.insertBefore(p, box.firstChild);
  });

  // Screens page: each screen's latest preview, reloaded when a newer one arrived, and
  // its age ("42 s", "7 min", "3 h", like the server's) counted on the server's clock.
  const screens = document.getElementById("screens");
  const skew = screens && screens.dataset.serverNow ?
    parseFloat(screens.dataset.serverNow) - Date.now() / 1000 : 0;

  function age(at) {
    const s = Math.max(0, Date.now() / 1000 + skew - at);
    return s < 120 ? s.toFixed(0) + " s" : s < 7200 ? (s / 60).toFixed(0) + " min" :
      (s / 3600).toFixed(0) + " h";
  }

  function previews(times) {
    document.querySelectorAll("figure[data-preview]").forEach(function (fig) {
      const at = times ? times[fig.dataset.screen] : null;
      if (at && String(at) !== fig.dataset.at) {
        fig.dataset.at = String(at);
        const img = fig.querySelector("img");
        img.src = fig.dataset.preview + "?v=" + encodeURIComponent(String(at));
        img.hidden = false;
        fig.querySelector(".preview-item").textContent = "";
      }
      if (fig.dataset.at) {
        fig.querySelector(".preview-age").textContent = age(parseFloat(fig.dataset.at));
      }
    });
  }
  if (screens) { setInterval(function () { previews(null); }, 1000); }

  src.addEventListener("status", function (msg) {
    const s = JSON.parse(msg.data);
    if (s.previews) { previews(s.previews); }
    const list = document.getElementById("alarm-list");
    if (list) {
      list.replaceChildren();
      (s.alarms || []).forEach(function (text) {
        const li = document.createElement("li");
        li.textContent = text;
        list.appendChild(li);
      });
      document.getElementById("alarms").classList.toggle("none", !(s.alarms || []).length);
    }
    Object.entries(s.counters || {}).forEach(function ([name, value]) {
      const el = document.querySelector("#metric-" + name + " .value");
      if (el) { el.textContent = String(value); }
    });
    Object.entries(s.devices || {}).forEach(function ([id, status]) {
      document.querySelectorAll("tr[data-device]").forEach(function (tr) {
        if (tr.dataset.device !== id) { return; }
        tr.className = "status-" + status;
        const td = tr.querySelector("td.state");
        if (td && td.dataset.status !== status) {
          td.dataset.status = status;
          td.textContent = labels[status] || status;
        }
      });
    });
  });
})();
