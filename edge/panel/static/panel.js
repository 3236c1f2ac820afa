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

// Collect with the camera (pickups/scan): frames from the tablet's back camera are posted
// as JPEG to the edge, which reads the pickup QR; a store scanner's reads are polled too.
// Staff confirm before anything is collected.
(function () {
  const root = document.getElementById("pickup-camera");
  if (!root) { return; }
  const labels = JSON.parse(root.dataset.labels || "{}");
  const video = document.getElementById("camera");
  const status = document.getElementById("camera-status");
  const panel = document.getElementById("scan-order");
  const message = document.getElementById("scan-message");
  const canvas = document.createElement("canvas");
  let busy = false;
  let held = false;  // an order is on screen: stop reading until "scan another"
  let deskAfter = root.dataset.deskAfter || "0";

  function text(id, value) { document.getElementById(id).textContent = value || ""; }

  function show(r, via) {
    if (!r.found) { return; }
    if (!r.order_id) {  // a code, but not one that collects anything
      message.hidden = false;
      message.textContent = r.error || "";
      return;
    }
    held = true;
    message.hidden = true;
    panel.hidden = false;
    text("scan-short", r.short);
    text("scan-status", r.status_label);
    text("scan-customer", r.customer);
    text("scan-total", r.total);
    const list = document.getElementById("scan-lines");
    list.replaceChildren();
    (r.lines || []).forEach(function (line) {
      const li = document.createElement("li");
      li.textContent = line;
      list.appendChild(li);
    });
    const err = document.getElementById("scan-error");
    err.hidden = !r.error;
    err.textContent = r.error || "";
    document.getElementById("scan-order-id").value = r.order_id;
    document.getElementById("scan-code").value = r.code;
    document.getElementById("confirm-button").disabled = !r.collectable;
    // A pay-at-pickup order: the same button says the payment was taken, and says so to
    // the edge, which refuses to hand over an unpaid order otherwise.
    document.getElementById("scan-take-payment").value = r.pay_at_pickup ? "1" : "0";
    document.getElementById("scan-pay").hidden = !r.pay_at_pickup;
    document.getElementById("confirm-button").textContent =
      r.pay_at_pickup ? labels.pay_and_collect : labels.confirm;
    status.textContent = via || "";
  }

  function post(blob) {
    return fetch(root.dataset.frame, {
      method: "POST", body: blob, credentials: "same-origin",
      headers: {"Content-Type": "image/jpeg", "X-CSRFToken": root.dataset.csrf},
    }).then((resp) => resp.json()).then((r) => { if (!held) { show(r); } });
  }

  function tick() {
    if (busy || held || video.readyState < 2 || !video.videoWidth) { return; }
    busy = true;
    const scale = Math.min(1, 960 / video.videoWidth);
    canvas.width = Math.round(video.videoWidth * scale);
    canvas.height = Math.round(video.videoHeight * scale);
    canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
    canvas.toBlob(function (blob) {
      (blob ? post(blob) : Promise.resolve()).catch(function () {}).finally(function () {
        busy = false;
      });
    }, "image/jpeg", 0.85);
  }

  function desk() {
    if (held) { return; }
    fetch(root.dataset.desk + "?after=" + encodeURIComponent(deskAfter),
          {credentials: "same-origin"}).then((resp) => resp.json()).then(function (r) {
      if (r.after !== undefined) { deskAfter = String(r.after); }
      if (!held && r.found) {
        show(r, (labels.desk || "%s").replace("%s", r.scanner || ""));
      }
    }).catch(function () {});
  }

  document.getElementById("scan-again").addEventListener("click", function () {
    held = false;
    panel.hidden = true;
    status.textContent = labels.looking || "";
  });

  setInterval(desk, 1000);
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    status.textContent = (labels.no_camera || "%s").replace("%s", "getUserMedia");
    return;
  }
  navigator.mediaDevices.getUserMedia({
    audio: false, video: {facingMode: {ideal: "environment"}, width: {ideal: 1280}},
  }).then(function (stream) {
    video.srcObject = stream;
    status.textContent = labels.looking || "";
    setInterval(tick, 300);
  }).catch(function (err) {
    status.textContent = (labels.no_camera || "%s").replace("%s", err.name || String(err));
  });
})();
