// ordertwin ops page: plain JS, no build step, no dependency. Every value from the API is
// written with textContent (never innerHTML), so nothing in an alert can inject markup.
"use strict";

(function () {
  const REFRESH_MS = 5000;
  const state = { alerts: [], filtersInit: false, lastOrder: null };

  const $ = (sel) => document.querySelector(sel);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined) continue;
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k.startsWith("data-")) node.setAttribute(k, v);
      else node[k] = v;
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  async function getJSON(path) {
    const resp = await fetch(path, { headers: { Accept: "application/json" }, cache: "no-store" });
    let body = {};
    try { body = await resp.json(); } catch (_) { body = {}; }
    return { status: resp.status, body };
  }

  function fmtAge(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) return "–";
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min";
    if (s < 86400) return (s / 3600).toFixed(1) + " h";
    return (s / 86400).toFixed(1) + " d";
  }

  function fmtTime(value) {
    if (value === null || value === undefined || value === "") return "–";
    const d = typeof value === "number" ? new Date(value) : new Date(value);
    if (isNaN(d.getTime())) return String(value);
    return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
  }

  function fmtValue(ind) {
    const v = ind.value;
    if (v === null || v === undefined) return "–";
    if (ind.unit === "ratio") return (v * 100).toFixed(2) + " %";
    if (ind.unit === "seconds") return fmtAge(v);
    return String(Math.round(v * 100) / 100);
  }

  function fmtThreshold(ind) {
    if (ind.threshold === null || ind.threshold === undefined) return "";
    if (ind.unit === "ratio") return "limit " + (ind.threshold * 100).toFixed(1) + " %";
    if (ind.unit === "seconds") return "limit " + fmtAge(ind.threshold);
    return "limit " + ind.threshold;
  }

  // --- worker health ------------------------------------------------------------------
  async function refreshHealth() {
    const box = $("#worker");
    try {
      const { status, body } = await getJSON("/health");
      const st = status === 200 ? body.status || "unknown" : "down";
      box.dataset.status = st;
      $("#worker-status").textContent = "worker " + st;
      $("#worker-detail").textContent =
        (body.twin_rows ?? "?") + " twin rows · " + (body.active_partitions || []).length + " partitions";
    } catch (err) {
      box.dataset.status = "down";
      $("#worker-status").textContent = "worker unreachable";
      $("#worker-detail").textContent = "";
    }
  }

  // --- indicators ---------------------------------------------------------------------
  async function refreshIndicators() {
    const { status, body } = await getJSON("/ops/indicators");
    const box = $("#indicators");
    if (status !== 200) return;
    box.replaceChildren(
      ...body.indicators.map((ind) =>
        el("div", { class: "card indicator", "data-id": ind.id, "data-status": ind.status, title: ind.status },
          el("div", { class: "label", text: ind.label }),
          el("div", { class: "value", text: fmtValue(ind) }),
          el("div", { class: "detail", text: [fmtThreshold(ind), ind.detail].filter(Boolean).join(" · ") }))
      )
    );
  }

  // --- divergences --------------------------------------------------------------------
  function ageOf(alert) {
    return (Date.now() - new Date(alert.episode_started_at).getTime()) / 1000;
  }

  function fillSelect(select, values) {
    const current = select.value;
    const wanted = ["", ...[...new Set(values.filter(Boolean))].sort()];
    const have = [...select.options].map((o) => o.value);
    if (wanted.join("\u0000") === have.join("\u0000")) return;
    select.replaceChildren(...wanted.map((v) => el("option", { value: v, text: v || "all" })));
    select.value = wanted.includes(current) ? current : "";
  }

  function renderDivergences() {
    const alerts = state.alerts;
    fillSelect($("#f-rule"), alerts.map((a) => a.rule));
    fillSelect($("#f-channel"), alerts.map((a) => a.channel));
    fillSelect($("#f-subsystem"), alerts.map((a) => a.subsystem));
    const rule = $("#f-rule").value;
    const channel = $("#f-channel").value;
    const subsystem = $("#f-subsystem").value;
    const minAge = Number($("#f-age").value || 0);
    const needle = $("#f-subject").value.trim().toLowerCase();
    const shown = alerts.filter((a) =>
      (!rule || a.rule === rule) &&
      (!channel || a.channel === channel) &&
      (!subsystem || a.subsystem === subsystem) &&
      ageOf(a) >= minAge &&
      (!needle || String(a.subject).toLowerCase().includes(needle)));
    shown.sort((a, b) => ageOf(b) - ageOf(a));
    $("#divergence-count").textContent = String(alerts.length);
    $("#divergences-empty").hidden = shown.length > 0;
    $("#divergences tbody").replaceChildren(
      ...shown.map((a) => {
        const subject = a.subject_type === "order"
          ? el("a", { class: "subject", href: "#order=" + encodeURIComponent(a.subject), text: a.subject })
          : el("span", { text: a.subject });
        return el("tr", { "data-alert-id": a.alert_id, "data-rule": a.rule },
          el("td", { text: a.rule }),
          el("td", { class: "sev-" + a.severity, text: a.severity }),
          el("td", {}, subject),
          el("td", { text: a.channel || "–" }),
          el("td", { text: a.subsystem || "–" }),
          el("td", { text: fmtAge(ageOf(a)), title: "since " + fmtTime(a.episode_started_at) }),
          el("td", { text: "expected " + a.expected + "; observed " + a.observed }));
      })
    );
  }

  async function refreshAlerts() {
    const { status, body } = await getJSON("/alerts?state=open&limit=10000");
    if (status === 200) {
      state.alerts = body.alerts || [];
      renderDivergences();
    }
    const hist = await getJSON("/alerts?state=all&limit=50");
    if (hist.status === 200) {
      $("#history").replaceChildren(
        ...(hist.body.alerts || []).map((a) =>
          el("li", { "data-kind": a.state },
            el("time", { text: fmtTime(a.emitted_at) }),
            el("strong", { text: a.state + " " }),
            el("span", { text: a.rule + " · " + a.subject + (a.subsystem ? " · " + a.subsystem : "") })))
      );
    }
  }

  // --- order lookup -------------------------------------------------------------------
  function timelineOf(twin) {
    const items = [];
    for (const [key, ms] of Object.entries(twin.milestones || {})) {
      const [system, what, ...rest] = key.split(":");
      let text;
      if (what === "addr") text = system + " reported an address (fingerprint " + rest.join(":").slice(0, 8) + "…)";
      else text = system + " " + [what, ...rest].join(":");
      items.push({ at: ms, kind: "fact", text });
    }
    for (const ep of twin.episodes || []) {
      items.push({ at: new Date(ep.started_at).getTime(), kind: "divergence",
        text: "divergence " + ep.rule + " opened (" + ep.subsystem + " must act by " + fmtTime(ep.deadline) + ")" });
      if (ep.raised && ep.raised_at) {
        items.push({ at: new Date(ep.raised_at).getTime(), kind: "RAISED", text: "alert RAISED: " + ep.rule });
      }
    }
    items.sort((a, b) => a.at - b.at);
    return items;
  }

  async function lookup(orderId) {
    const id = orderId.trim();
    if (!id) return;
    state.lastOrder = id;
    const { status, body } = await getJSON("/orders/" + encodeURIComponent(id));
    const err = $("#order-error");
    if (status !== 200) {
      $("#order").hidden = true;
      err.hidden = false;
      err.textContent = (body && body.error) || ("lookup failed (HTTP " + status + ")");
      return;
    }
    err.hidden = true;
    const twin = body.twin;
    $("#order").hidden = false;
    $("#order").dataset.orderId = twin.order_id;
    const amount = twin.amount_minor === null || twin.amount_minor === undefined
      ? "–" : (twin.amount_minor / 100).toFixed(2) + " " + (twin.currency || "");
    $("#order-summary").replaceChildren(
      ...[["Order", twin.order_id], ["Channel", twin.channel], ["State", twin.state], ["Amount", amount],
        ["Facts applied", twin.version], ["First seen", fmtTime(twin.created_at)],
        ["Last change", fmtTime(twin.updated_at)], ["Open episodes", (twin.episodes || []).length]]
        .map(([k, v]) => el("div", {}, el("b", { text: k }), el("span", { text: String(v) }))));
    const order = ["CHANNEL", "OMS", "WMS", "CARRIER", "FINANCE"];
    const systems = Object.entries(twin.systems || {}).sort((a, b) => order.indexOf(a[0]) - order.indexOf(b[0]));
    $("#order-systems tbody").replaceChildren(
      ...systems.map(([name, v]) => el("tr", { "data-system": name },
        el("td", { text: name }), el("td", { text: v.source }), el("td", { text: v.status + (v.partial ? " (partial)" : "") }),
        el("td", { text: v.raw_status }), el("td", { text: fmtTime(v.event_time) }),
        el("td", { text: v.tracking_no ? (v.carrier || "") + " " + v.tracking_no : "–" }),
        el("td", { text: v.amount_minor === null || v.amount_minor === undefined ? "–" : (v.amount_minor / 100).toFixed(2) })))
    );
    $("#order-timeline").replaceChildren(
      ...timelineOf(twin).map((it) => el("li", { "data-kind": it.kind },
        el("time", { text: fmtTime(it.at) }), el("span", { text: it.text })))
    );
  }

  function fromHash() {
    const m = /^#order=(.+)$/.exec(window.location.hash);
    if (m) {
      const id = decodeURIComponent(m[1]);
      $("#order-id").value = id;
      lookup(id).catch(() => {});
    }
  }

  // --- wiring -------------------------------------------------------------------------
  async function refresh() {
    const jobs = [refreshHealth(), refreshIndicators(), refreshAlerts()];
    if (state.lastOrder) jobs.push(lookup(state.lastOrder));
    await Promise.allSettled(jobs);
    $("#updated").textContent = new Date().toLocaleTimeString();
    document.body.dataset.loaded = "true";
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("#interval").textContent = String(REFRESH_MS / 1000);
    for (const id of ["#f-rule", "#f-channel", "#f-subsystem", "#f-age"]) $(id).addEventListener("change", renderDivergences);
    $("#f-subject").addEventListener("input", renderDivergences);
    $("#filters").addEventListener("submit", (e) => e.preventDefault());
    $("#lookup").addEventListener("submit", (e) => {
      e.preventDefault();
      const id = $("#order-id").value.trim();
      const target = "#order=" + encodeURIComponent(id);
      if (window.location.hash === target) lookup(id).catch(() => {});
      else window.location.hash = target;
    });
    window.addEventListener("hashchange", fromHash);
    fromHash();
    refresh();
    setInterval(refresh, REFRESH_MS);
  });
})();
