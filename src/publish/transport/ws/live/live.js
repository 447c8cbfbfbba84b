// attune's live page: a protocol v1 client over this page's own WebSocket (docs/protocol.md).
// The token comes from the URL fragment (#token=…, never sent to a server) or the form, and is
// kept in this tab's sessionStorage only (the fragment is removed from the address bar).
// Everything the daemon sends is written with textContent.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const hash = new URLSearchParams(location.hash.slice(1));
  // The token leaves the address bar (and so history, bookmarks and shared links) at once; it
  // is kept for this tab only, so that a reload still connects.
  let token = hash.get("token") || sessionStorage.getItem("attune-token") || "";
  let chosen = hash.get("participant") || "";
  if (hash.has("token")) {
    sessionStorage.setItem("attune-token", token);
    history.replaceState(null, "", location.pathname
      + (chosen ? `#participant=${encodeURIComponent(chosen)}` : ""));
  }
  const people = new Map();
  let count = 0, lagged = 0, failures = 0, ws = null, timer = null;
  const HISTORY_S = 300;

  function person(id) {
    if (!people.has(id)) {
      people.set(id, { adaptation: null, features: null, streams: new Map(), history: [] });
      const o = document.createElement("option");
      o.value = id;
      o.textContent = id;
      const sel = $("participant");
      if (sel.options.length === 1 && sel.options[0].value === "") sel.remove(0);
      sel.appendChild(o);
      if (!chosen) chosen = id;
      sel.value = chosen;
    }
    return people.get(id);
  }

  function setConn(state, text) {
    $("conn").dataset.state = state;
    $("conn").textContent = text || state;
  }

  const fmt = (v, digits) => (v === null || v === undefined ? "–"
    : typeof v === "number" ? v.toFixed(digits) : String(v));

  function connect() {
    if (!token) {
      $("need-token").hidden = false;
      setConn("no token", "no token");
      return;
    }
    setConn("connecting");
    let opened = false;
    ws = new WebSocket(`ws://${location.host}/?token=${encodeURIComponent(token)}`);
    ws.onopen = () => {
      opened = true;
      failures = 0;
      $("need-token").hidden = true;
      setConn("connected");
      ws.send(JSON.stringify({ type: "hello", protocol: 1, client: "attune-live-page" }));
      ws.send(JSON.stringify({ type: "subscribe", topics: ["adaptation", "state", "features"] }));
    };
    ws.onmessage = (ev) => {
      let m;
      try { m = JSON.parse(ev.data); } catch (e) { return; }
      count += 1;
      handle(m);
      render();
    };
    ws.onclose = () => {
      if (opened) {
        setConn("disconnected", "disconnected, reconnecting");
      } else {
        failures += 1;
        // A browser does not show a refused handshake's reason to the page.
        setConn("refused", "refused: wrong token, or not the address `attune token` printed");
        if (failures >= 3) $("need-token").hidden = false;
      }
      ws = null;
      timer = setTimeout(connect, Math.min(10000, 1000 * 2 ** Math.min(failures, 4)));
    };
  }

  function handle(m) {
    switch (m.type) {
      case "welcome": $("daemon").textContent = `${m.daemon}, protocol ${m.protocol}`; break;
      case "lagged": lagged += m.skipped || 0; break;
      case "error": $("note").textContent = `daemon: ${m.code}: ${m.message}`; break;
      case "adaptation": {
        const p = person(m.participant);
        p.adaptation = m;
        p.history.push([m.t, m.arousal, m.action]);
        while (p.history.length && p.history[0][0] < m.t - HISTORY_S) p.history.shift();
        break;
      }
      case "features": person(m.participant).features = m; break;
      case "state": person(m.participant).streams.set(m.stream, m); break;
      default: break;
    }
  }

  function row(tbody, cells) {
    const tr = document.createElement("tr");
    for (const [text, num] of cells) {
      const td = document.createElement("td");
      td.textContent = text;
      if (num) td.className = "num";
      tr.appendChild(td);
    }
    tbody.appendChild(tr);
  }

  function render() {
    $("count").textContent = String(count);
    $("lagged").textContent = String(lagged);
    const p = people.get(chosen);
    if (!p) return;
    const a = p.adaptation;
    if (a) {
      $("action").dataset.action = a.action;
      $("action").textContent = a.action.replace("_", " ");
      $("arousal").textContent = fmt(a.arousal, 2);
      $("confidence").textContent = fmt(a.confidence, 2);
      $("arousal-state").textContent = a.arousal_state;
      $("t").textContent = fmt(a.t, 2);
      $("arousal-bar").style.width = `${Math.round(100 * (a.arousal || 0))}%`;
      const r = a.reason || {};
      $("rule").textContent = r.rule || "–";
      $("summary").textContent = r.summary || "";
      $("baseline").textContent = r.baseline ? r.baseline.kind : "none";
      $("target").textContent = r.target ? r.target.name : "–";
      const body = $("scoring").tBodies[0];
      body.replaceChildren();
      for (const f of r.features || []) {
        row(body, [[f.name], [fmt(f.value, 2), true], [fmt(f.z, 2), true], [fmt(f.weight, 2), true],
          [fmt(f.baseline_median, 2), true], [f.dropped || ""]]);
      }
    }
    const fbody = $("features").tBodies[0];
    fbody.replaceChildren();
    if (p.features) {
      for (const [k, v] of Object.entries(p.features)) {
        if (k === "type" || k === "participant" || k === "t") continue;
        row(fbody, [[k], [typeof v === "number" ? fmt(v, 3) : fmt(v), true]]);
      }
    }
    const sbody = $("streams").tBodies[0];
    sbody.replaceChildren();
    for (const [name, s] of [...p.streams.entries()].sort()) {
      row(sbody, [[name], [s.state], [fmt(s.since, 1), true]]);
    }
    draw(p.history);
  }

  const ACTION_COLOURS = { ease_off: "#d9822b", hold: "#106ba3", escalate: "#0a6640" };

  function draw(history) {
    const c = $("history"), g = c.getContext("2d");
    g.clearRect(0, 0, c.width, c.height);
    g.strokeStyle = "#e1e8ed";
    for (const y of [0.25, 0.5, 0.75]) {
      g.beginPath(); g.moveTo(0, c.height * (1 - y)); g.lineTo(c.width, c.height * (1 - y)); g.stroke();
    }
    if (!history.length) return;
    const t1 = history[history.length - 1][0], t0 = t1 - HISTORY_S;
    const x = (t) => ((t - t0) / HISTORY_S) * c.width, y = (v) => c.height * (1 - v);
    g.strokeStyle = "#394b59";
    g.beginPath();
    let drawing = false;
    for (const [t, v] of history) {
      if (v === null) { drawing = false; continue; }
      if (drawing) g.lineTo(x(t), y(v)); else g.moveTo(x(t), y(v));
      drawing = true;
    }
    g.stroke();
    for (const [t, v, act] of history) {
      if (v === null) continue;
      g.fillStyle = ACTION_COLOURS[act] || "#a7b6c2";
      g.fillRect(x(t) - 1, y(v) - 1, 3, 3);
    }
  }

  $("participant").addEventListener("change", (e) => { chosen = e.target.value; render(); });
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    token = $("token").value.trim();
    sessionStorage.setItem("attune-token", token);
    failures = 0;
    if (ws && ws.readyState === WebSocket.OPEN) {
      ws.close();  // onclose reconnects with the new token
    } else {
      clearTimeout(timer);
      if (ws) { ws.onclose = null; ws.close(); }
      connect();
    }
  });
  connect();
})();
