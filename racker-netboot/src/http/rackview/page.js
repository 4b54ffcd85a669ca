// racker rack view: polls /api/rack and draws one slot per node.
"use strict";
(function () {
  const rack = document.getElementById("rack");
  const summary = document.getElementById("summary");
  const empty = document.getElementById("empty");
  const conn = document.getElementById("conn");
  const BAD = ["failed"];
  const OFF = ["excluded"];

  function kind(state) {
    if (BAD.includes(state)) return "bad";
    if (OFF.includes(state)) return "off";
    if (state === "os-up" || state === "joined") return "done";
    if (state === "planned" || state === "waiting") return "idle";
    return "busy";
  }

  function ago(now, t) {
    const s = Math.max(0, now - t);
    if (s < 60) return s + " s ago";
    if (s < 3600) return Math.floor(s / 60) + " min ago";
    return Math.floor(s / 3600) + " h ago";
  }

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function slot(n, now) {
    const li = el("li", "slot " + kind(n.state));
    li.dataset.mac = n.mac;
    li.dataset.state = n.state;
    li.dataset.power = n.power || "unknown";
    li.appendChild(el("span", "u", String(n.slot)));
    li.appendChild(el("span", "name", n.hostname || n.mac));
    const st = el("span", "state", n.state);
    if (n.reason) st.title = n.reason;
    li.appendChild(st);
    const meta = [n.ip || "no address", n.mac];
    if (n.role) meta.push(n.role);
    li.appendChild(el("span", "meta", meta.join(" · ")));
    const pw = el("span", "power " + (n.power || ""), "power " + (n.power || "?"));
    if (n.bmc_error) pw.title = n.bmc_error;
    li.appendChild(pw);
    const bar = el("div", "bar");
    const fill = el("div");
    const pct = n.steps > 0 ? Math.round((100 * n.step) / n.steps) : 0;
    fill.style.width = pct + "%";
    bar.title = "stage " + n.step + " of " + n.steps;
    bar.appendChild(fill);
    li.appendChild(bar);
    let ev = n.last_event ? n.last_event.text + " · " + ago(now, n.last_event.unix) : "no event yet";
    if (n.reason) ev = n.reason + " · " + ev;
    li.appendChild(el("span", "event", ev));
    return li;
  }

  function draw(view) {
    const counts = {};
    for (const n of view.nodes) counts[n.state] = (counts[n.state] || 0) + 1;
    const parts = Object.keys(counts).sort().map((k) => counts[k] + " " + k);
    summary.textContent =
      view.nodes.length + " node(s)" + (view.provisioned ? " · " + view.provisioned : "") +
      (parts.length ? " · " + parts.join(", ") : "");
    const items = view.nodes.map((n) => slot(n, view.now_unix));
    rack.replaceChildren(...items);
    empty.hidden = view.nodes.length > 0;
    document.body.dataset.nodes = String(view.nodes.length);
  }

  async function poll() {
    try {
      const r = await fetch("/api/rack", { cache: "no-store" });
      if (!r.ok) throw new Error("HTTP " + r.status);
      draw(await r.json());
      conn.textContent = "live";
      conn.classList.remove("lost");
    } catch (e) {
      conn.textContent = "connection lost (" + e.message + "), retrying";
      conn.classList.add("lost");
    }
    setTimeout(poll, 1000);
  }
  poll();
})();
