// Parkgate staff dashboard: a snapshot over the WebSocket, then coalesced deltas applied in place.
// Plain JS, no build step. Reconnects with backoff (1 s doubling to 30 s, with jitter) and resynchronises from
// the new snapshot; while offline the page says so and greys out what may be stale.
(function () {
  "use strict";

  const MAX_READS = 20;
  const LIST_LIMIT = 100; // arrivals / departures listed per car park, as apps/staff/selectors.py sends them
  const state = {}; // car park code -> snapshot data, kept current by deltas
  const commandLanes = {}; // command_id -> lane id (manual opens started here)
  const commandResults = {}; // command_id -> command event seen before the POST answered
  const live = document.getElementById("live");
  const note = document.getElementById("offline-note");
  let offlineSince = null;
  let everConnected = false;
  let delay = 1000;
  let socket = null;

  // --- small helpers ------------------------------------------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  function tileOf(code) { return document.querySelector(`[data-carpark="${CSS.escape(code)}"]`); }

  function timeAt(iso, tz) {
    if (!iso) return "";
    return new Date(iso).toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit", timeZone: tz });
  }

  function csrfToken() {
    const input = document.querySelector("#csrf input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  async function post(url, data) {
    const body = new URLSearchParams(data || {});
    const response = await fetch(url, {
      method: "POST", body, credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "Accept": "application/json" },
    });
    let json = {};
    try { json = await response.json(); } catch (e) { /* not JSON */ }
    return { ok: response.ok, status: response.status, json };
  }

  // --- rendering ----------------------------------------------------------------------------------------------

  function renderAll(cp) {
    renderOccupancy(cp);
    renderLanes(cp);
    renderCameras(cp);
    renderAlerts(cp);
    renderPeople(cp, "arrivals", cp.arrivals, "came");
    renderPeople(cp, "departures", cp.departures, "gone");
    renderOverstays(cp);
    renderReads(cp);
  }

  function renderOccupancy(cp) {
    const tile = tileOf(cp.code);
    if (!tile) return;
    tile.dataset.occupancy = String(cp.occupancy);
    tile.dataset.capacity = String(cp.capacity);
    tile.querySelector(".n").textContent = cp.occupancy;
    tile.querySelector(".cap").textContent = cp.capacity;
    const gauge = tile.querySelector(".gauge");
    gauge.max = cp.capacity; gauge.high = Math.round(cp.capacity * 0.9); gauge.optimum = 0;
    gauge.value = Math.min(cp.occupancy, cp.capacity);
    gauge.textContent = `${cp.occupancy} of ${cp.capacity}`;
    const pct = cp.capacity ? Math.round((100 * cp.occupancy) / cp.capacity) : 0;
    gauge.setAttribute("aria-label", `Occupancy of ${cp.code}: ${cp.occupancy} of ${cp.capacity} (${pct}%)`);
    renderChart(cp, tile.querySelector(".chart svg"));
  }

  function renderChart(cp, svg) {
    const start = Date.parse(cp.day_start), end = Date.parse(cp.day_end);
    const points = cp.chart || [];
    // Scaled to the day's peak (not the capacity), so a quiet day still shows its shape; the red dashed line is
    // the capacity when it is in view.
    const expected = forecastLine(cp); // today's forecast (apps/insight), drawn dashed beside the live count
    const peak = Math.max(cp.occupancy, ...points.map((p) => p[1]), ...expected.map((p) => p[1]));
    const top = Math.min(Math.max(10, Math.ceil(peak * 1.25)), Math.max(cp.capacity, peak, 1));
    const x = (iso) => (300 * (Date.parse(iso) - start)) / (end - start);
    const y = (n) => 88 - (84 * n) / top;
    let path = "";
    points.forEach(([at, n], i) => {
      const px = Math.max(0, Math.min(300, x(at))).toFixed(1), py = y(n).toFixed(1);
      path += i === 0 ? `M${px},${py}` : `H${px}V${py}`;
    });
    const nowX = Math.max(0, Math.min(300, x(new Date().toISOString()))).toFixed(1);
    if (points.length) path += `H${nowX}`;
    const capLine = cp.capacity <= top
      ? `<line class="cap-line" x1="0" x2="300" y1="${y(cp.capacity).toFixed(1)}" y2="${y(cp.capacity).toFixed(1)}"/>` : "";
    const ahead = expected.map(([at, n], i) => `${i ? "L" : "M"}${Math.max(0, Math.min(300, x(at))).toFixed(1)},${y(n).toFixed(1)}`);
    const forecastPath = ahead.length ? `<path class="forecast-line" d="${ahead.join("")}"/>` : "";
    svg.innerHTML = capLine + `<path class="area" d="${path}V88H0Z"/><path class="line" d="${path}"/>` + forecastPath;
    svg.parentElement.dataset.top = String(top);
    svg.parentElement.setAttribute("aria-label", `Occupancy today at ${cp.code}, now ${cp.occupancy} of ${cp.capacity}`);
  }

  const forecasts = {}; // car park code -> today's [hour, expected, low, high], fetched once per page load
  function forecastLine(cp) {
    if (!(cp.code in forecasts)) {
      forecasts[cp.code] = [];
      fetch(`/reports/forecast/today?carpark=${encodeURIComponent(cp.code)}`, { credentials: "same-origin" })
        .then((r) => (r.ok ? r.json() : { hours: [] }))
        .then((body) => {
          forecasts[cp.code] = body.hours || [];
          if (forecasts[cp.code].length && state[cp.code]) renderOccupancy(state[cp.code]);
        })
        .catch(() => {});
    }
    return forecasts[cp.code];
  }

  function renderLanes(cp) {
    const list = tileOf(cp.code).querySelector(".lanes");
    list.replaceChildren(...cp.lanes.map((lane) => laneItem(cp, lane)));
  }

  function laneItem(cp, lane) {
    const online = lane.device && lane.online;
    const item = el("li", { class: "lane", "data-lane-id": lane.id },
      el("span", { class: "lane-code", text: `${lane.code}` }),
      el("span", { class: "muted", text: lane.direction }),
      el("span", { class: `badge ${online ? "ok" : "bad"}`, text: lane.device ? (online ? "online" : "offline") : "no controller" }),
      el("span", { class: `badge barrier-${lane.barrier}`, text: `barrier ${lane.barrier}` }),
      clockBadge(lane),
      el("button", {
        type: "button", class: "open-btn", text: "Open barrier", disabled: !online,
        "aria-label": `Open barrier at ${cp.code} ${lane.code}`, onclick: () => askOpen(cp, lane),
      }),
      el("span", { class: "command-status", role: "status", "aria-live": "polite", text: lane.commandText || "" }),
    );
    return item;
  }

  // Vendor cameras (HTTP push): their lane, the reads kept while unmapped; supervisors map them here.
  function renderCameras(cp) {
    const tile = tileOf(cp.code);
    const cameras = cp.cameras || [];
    tile.querySelector(".cameras-panel").hidden = !cameras.length;
    const canMap = tile.hasAttribute("data-can-map-cameras");
    tile.querySelector(".cameras").replaceChildren(...cameras.map((c) => {
      const label = `Lane for camera ${c.camera} of ${c.device_name}`;
      const select = el("select", { "aria-label": label, name: "lane" },
        ...c.lanes.map((code) => el("option", { value: code, text: code, selected: code === c.lane })));
      const form = canMap ? el("form", { class: "camera-map", onsubmit: (e) => mapCamera(e, c, select) },
        select, el("button", { type: "submit", text: "Map", "aria-label": `Map camera ${c.camera}` })) : null;
      return el("li", { class: "camera", "data-device": c.device, "data-camera": c.camera },
        el("span", { class: "camera-id", text: c.camera }),
        el("span", { class: "muted", text: c.device_name }),
        el("span", { class: `badge ${c.lane ? "ok" : "bad"}`, text: c.lane ? `→ ${c.lane}` : "not mapped" }),
        c.kept ? el("span", { class: "kept", text: `${c.kept} read${c.kept === 1 ? "" : "s"} ${c.lane ? "being decided" : "kept"}` }) : null,
        form,
        el("span", { class: "map-status", role: "status", "aria-live": "polite", text: c.statusText || "" }),
      );
    }));
  }

  async function mapCamera(event, camera, select) {
    event.preventDefault();
    const answer = await post(`/dashboard/devices/${camera.device}/cameras`, { camera: camera.camera, lane: select.value });
    camera.statusText = answer.ok ? "" : `Not mapped: ${answer.json.detail || answer.json.error || answer.status}`;
    if (answer.ok) camera.lane = select.value;
    for (const cp of Object.values(state)) if ((cp.cameras || []).includes(camera)) renderCameras(cp);
    resync(); // the kept reads' count and the acknowledged alert
  }

  function resync() {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send('{"type":"resync"}');
  }

  // The controller's clock minus the server's (heartbeats, pushes); red from 5 s, which already misdates reads.
  function clockBadge(lane) {
    const offset = lane.clock_offset_s;
    if (!lane.device || offset === null || offset === undefined) return el("span", { class: "clock" });
    const text = Math.abs(offset) < 1 ? "clock ok" : `clock ${offset > 0 ? "+" : "−"}${Math.abs(offset).toFixed(0)} s`;
    return el("span", { class: `badge clock ${Math.abs(offset) >= 5 ? "bad" : "ok"}`, text });
  }

  function renderAlerts(cp) {
    const tile = tileOf(cp.code);
    tile.querySelector(".alerts-count").textContent = cp.alerts.length;
    tile.querySelector(".alerts-panel").classList.toggle("hot", cp.alerts.length > 0);
    const list = tile.querySelector(".alerts");
    if (!cp.alerts.length) { list.replaceChildren(el("li", { class: "muted", text: "No open alerts" })); return; }
    list.replaceChildren(...cp.alerts.map((alert) => el("li", { class: "alert", "data-alert-id": alert.id },
      el("span", { class: "reason", text: alert.reason.replaceAll("_", " ") }),
      el("span", { class: "plate", text: alert.plate || "—" }),
      alert.detail ? el("span", { class: "detail", text: alert.detail }) : null,
      el("span", { class: "muted", text: `${alert.lane || ""} ${timeAt(alert.created_at, cp.timezone)}` }),
      el("button", { type: "button", class: "ack-btn", text: "Acknowledge",
        "aria-label": `Acknowledge ${alert.reason.replaceAll("_", " ")} alert for ${alert.plate || "unknown plate"}`,
        onclick: (e) => acknowledge(cp, alert, e.currentTarget) }),
    )));
  }

  function renderPeople(cp, kind, data, doneWord) {
    const tile = tileOf(cp.code);
    const noShows = data.items.filter((b) => b.status === "no_show").length;
    tile.querySelector(`.${kind}-count`).textContent =
      `${data.done} of ${data.total} ${doneWord}` + (noShows ? ` · ${noShows} no-show` : "");
    const list = tile.querySelector(`.${kind}`);
    if (!data.items.length) { list.replaceChildren(el("li", { class: "muted", text: "None today" })); return; }
    list.replaceChildren(...data.items.map((b) => el("li", {
      class: b.done ? "done" : b.status === "no_show" ? "no-show" : "", "data-booking": b.reference },
      el("span", { class: "mark", "aria-hidden": "true", text: b.done ? "✓" : b.status === "no_show" ? "✗" : "·" }),
      el("span", { class: "time", text: timeAt(b.at, cp.timezone) }),
      el("span", { class: "plate", text: b.plates.join(", ") }),
      el("span", { class: "who", text: `${b.customer} · ${b.reference}` + (b.sold ? ` · ${b.sold}` : "") }),
      ...(kind === "departures" && b.return_status ? [el("span", { class: `flight flight-${b.return_status}`,
        text: `${b.return_flight} ${b.return_status}` + (b.return_estimated ? ` ${timeAt(b.return_estimated, cp.timezone)}` : "") })] : []),
      el("span", { class: "visually-hidden", text: b.done ? doneWord : b.status === "no_show" ? "no-show" : "expected" }),
    )));
  }

  function renderOverstays(cp) {
    const tile = tileOf(cp.code);
    tile.querySelector(".overstays-count").textContent = cp.overstays.length;
    const list = tile.querySelector(".overstays");
    if (!cp.overstays.length) { list.replaceChildren(el("li", { class: "muted", text: "None" })); return; }
    list.replaceChildren(...cp.overstays.map((o) => el("li", { "data-visit": o.visit },
      el("span", { class: "plate", text: o.plate }),
      el("span", { class: "who", text: `${o.booking} · due out ${timeAt(o.departure, cp.timezone)}` }),
    )));
  }

  function renderReads(cp) {
    const body = tileOf(cp.code).querySelector(".reads tbody");
    if (!cp.reads.length) { body.replaceChildren(el("tr", {}, el("td", { colspan: 5, class: "muted", text: "No reads yet" }))); return; }
    body.replaceChildren(...cp.reads.map((r) => el("tr", { class: `read ${r.action}` },
      el("td", { text: timeAt(r.captured_at, cp.timezone) }),
      el("td", { text: r.lane }),
      el("td", { class: "plate", text: r.plate }),
      el("td", {}, el("span", { class: `badge ${r.action === "open" ? "ok" : r.action === "deny" ? "bad" : ""}`, text: r.action }),
        " ", el("span", { class: "reason", text: (r.reason || "").replaceAll("_", " ") }),
        r.match && r.match !== "exact" ? el("span", { class: "muted", text: ` (${r.match})` }) : null),
      el("td", { text: r.booking || "" }),
    )));
  }

  // --- applying what the server sends ---------------------------------------------------------------------------

  function applySnapshot(msg) {
    for (const cp of msg.carparks) {
      const previous = state[cp.code];
      if (previous) { // keep the command results shown on lanes across a resync
        for (const lane of cp.lanes) {
          const old = previous.lanes.find((l) => l.id === lane.id);
          if (old) lane.commandText = old.commandText;
        }
      }
      cp.visited = {}; // booking reference -> "in" / "out": visits seen, for bookings whose event comes after them
      state[cp.code] = cp;
      if (tileOf(cp.code)) renderAll(cp);
    }
  }

  function applyDelta(msg) {
    const cp = state[msg.carpark];
    if (!cp) return;
    if (msg.occupancy !== null && msg.occupancy !== undefined) {
      cp.occupancy = msg.occupancy;
      cp.chart.push([new Date().toISOString(), msg.occupancy]);
    }
    renderOccupancy(cp);
    if (msg.reads.length) {
      const known = new Set(cp.reads.map((r) => r.id));
      cp.reads = msg.reads.filter((r) => !known.has(r.id)).reverse().concat(cp.reads).slice(0, MAX_READS);
      renderReads(cp);
      if ((cp.cameras || []).some((c) => c.lane && c.kept)) resync(); // a mapped camera's kept reads being decided
    }
    if (msg.alerts.length) {
      if (msg.alerts.some((a) => a.reason === "unmapped_camera" && !a.acknowledged_by)) resync(); // its camera
      for (const alert of msg.alerts) {
        cp.alerts = cp.alerts.filter((a) => a.id !== alert.id);
        if (!alert.acknowledged_by) cp.alerts.unshift(alert);
      }
      renderAlerts(cp);
    }
    if (msg.devices.length) {
      for (const device of msg.devices) {
        for (const lane of cp.lanes) {
          if (lane.device === device.device || (device.lanes || []).includes(lane.code)) {
            lane.device = device.device;
            lane.online = device.online;
            if (device.barriers && device.barriers[lane.code]) lane.barrier = device.barriers[lane.code];
            if ("clock_offset_s" in device) lane.clock_offset_s = device.clock_offset_s;
          }
        }
      }
      renderLanes(cp);
    }
    if (msg.commands.length) {
      for (const command of msg.commands) showCommand(cp, command);
      renderLanes(cp);
    }
    if (msg.bookings && msg.bookings.length) applyBookings(cp, msg.bookings);
    if (msg.visits.length) applyVisits(cp, msg.visits);
  }

  // Bookings as they are now (new, amended, moved, cancelled, no-show): each is in today's arrivals (departures)
  // when it is here, not cancelled, and arrives (departs) between this car park's midnights.
  function applyBookings(cp, bookings) {
    for (const b of bookings) {
      placeBooking(cp, cp.arrivals, b, "arrival", ["arrived", "departed"], ["in", "out"]);
      placeBooking(cp, cp.departures, b, "departure", ["departed"], ["out"]);
    }
    renderPeople(cp, "arrivals", cp.arrivals, "came");
    renderPeople(cp, "departures", cp.departures, "gone");
  }

  function placeBooking(cp, list, b, field, doneStatuses, doneVisits) {
    const index = list.items.findIndex((i) => i.reference === b.reference);
    const old = index >= 0 ? list.items.splice(index, 1)[0] : null;
    if (old) list.total -= 1;
    const at = Date.parse(b[field]);
    if (b.carpark === cp.code && b.status !== "cancelled" && at >= Date.parse(cp.day_start) && at < Date.parse(cp.day_end)) {
      const done = doneStatuses.includes(b.status) || doneVisits.includes(cp.visited[b.reference]) || Boolean(old && old.done);
      const item = { reference: b.reference, customer: b.customer, plates: b.plates, sold: b.sold, at: b[field], status: b.status, done,
        return_flight: b.return_flight, return_status: b.return_status, return_estimated: b.return_estimated };
      const later = list.items.findIndex((i) => Date.parse(i.at) > at);
      list.items.splice(later < 0 ? list.items.length : later, 0, item);
      list.items = list.items.slice(0, LIST_LIMIT);
      list.total += 1;
    }
    list.done = list.items.filter((i) => i.done).length;
  }

  function applyVisits(cp, visits) {
    for (const visit of visits) {
      if (!visit.booking) continue;
      cp.visited[visit.booking] = visit.exited_at ? "out" : cp.visited[visit.booking] || "in";
      for (const b of cp.arrivals.items) if (b.reference === visit.booking) b.done = true;
      if (visit.exited_at) for (const b of cp.departures.items) if (b.reference === visit.booking) b.done = true;
    }
    for (const list of [cp.arrivals, cp.departures]) list.done = list.items.filter((i) => i.done).length;
    const exited = new Set(visits.filter((v) => v.exited_at).map((v) => v.id));
    cp.overstays = cp.overstays.filter((o) => !exited.has(o.visit));
    renderPeople(cp, "arrivals", cp.arrivals, "came");
    renderPeople(cp, "departures", cp.departures, "gone");
    renderOverstays(cp);
  }

  const COMMAND_TEXT = {
    pending: "opening… waiting for the controller",
    done: "barrier opened (done)",
    failed: "failed",
    expired: "timed out (expired at the controller)",
    timed_out: "timed out: no answer from the controller",
  };

  function showCommand(cp, command) {
    const laneId = commandLanes[command.command_id];
    let lane = laneId ? cp.lanes.find((l) => l.id === laneId) : null;
    if (!lane) lane = cp.lanes.find((l) => l.code === command.lane);
    if (!lane) return;
    if (command.issued_by && !laneId) commandResults[command.command_id] = command; // maybe ours, POST not back yet
    const who = command.issued_by ? `Manual open · ${command.issued_by}` : "Automatic open";
    const detail = command.detail ? `: ${command.detail}` : "";
    lane.commandText = `${who}: ${COMMAND_TEXT[command.status] || command.status}${command.status === "pending" ? "" : detail}`;
    lane.commandStatus = command.status;
  }

  // --- actions --------------------------------------------------------------------------------------------------

  const dialog = document.getElementById("open-dialog");
  const form = document.getElementById("open-form");
  const reasonInput = document.getElementById("open-reason");
  const dialogError = dialog ? dialog.querySelector(".dialog-error") : null;
  let opening = null;

  function askOpen(cp, lane) {
    opening = { cp, lane, opener: document.activeElement };
    dialog.querySelector(".lane-name").textContent = `${cp.code} ${lane.code}`;
    reasonInput.value = "";
    dialogError.textContent = "";
    dialog.showModal();
    reasonInput.focus();
  }

  if (dialog) {
    document.getElementById("open-cancel").addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => { if (opening && opening.opener) opening.opener.focus(); });
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const reason = reasonInput.value.trim();
      if (!reason) { dialogError.textContent = "A reason is required."; reasonInput.focus(); return; }
      const { cp, lane } = opening;
      const answer = await post(`/dashboard/lanes/${lane.id}/open`, { reason });
      if (answer.ok) {
        commandLanes[answer.json.command_id] = lane.id;
        const early = commandResults[answer.json.command_id];
        showCommand(cp, early || { command_id: answer.json.command_id, status: "pending", lane: lane.code });
      } else {
        lane.commandText = `Manual open: failed: ${answer.json.detail || answer.json.error || answer.status}`;
      }
      renderLanes(cp);
      dialog.close();
    });
  }

  async function acknowledge(cp, alert, button) {
    button.disabled = true;
    const answer = await post(`/dashboard/alerts/${alert.id}/acknowledge`);
    if (answer.ok) {
      cp.alerts = cp.alerts.filter((a) => a.id !== alert.id);
      renderAlerts(cp);
    } else {
      button.disabled = false;
      button.textContent = "Retry acknowledge";
    }
  }

  // --- the socket -----------------------------------------------------------------------------------------------

  function setLive(online) {
    document.body.classList.toggle("offline", !online);
    if (online) {
      live.textContent = "live";
      live.className = "live on";
      if (offlineSince) {
        const seconds = Math.round((Date.now() - offlineSince) / 1000);
        note.textContent = `Was offline for ${seconds} s (since ${new Date(offlineSince).toLocaleTimeString("en-GB")}); resynchronised.`;
        note.hidden = false;
        offlineSince = null;
      }
    } else {
      if (everConnected && !offlineSince) offlineSince = Date.now();
      live.textContent = everConnected ? "offline: reconnecting…" : "connecting…";
      live.className = "live off";
      if (offlineSince) {
        note.textContent = `Offline since ${new Date(offlineSince).toLocaleTimeString("en-GB")}: figures may be out of date.`;
        note.hidden = false;
      }
    }
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + "/ws/dashboard/");
    socket.onmessage = (event) => {
      const msg = JSON.parse(event.data);
      if (msg.type === "snapshot") {
        applySnapshot(msg);
        delay = 1000;
        everConnected = true;
        setLive(true);
      } else if (msg.type === "delta") {
        applyDelta(msg);
      } else if (msg.type === "revoked") {
        socket.onclose = null;
        location.reload(); // logged out or lost the role: the page shows what is left (or the login form)
      }
    };
    let opened = false;
    socket.onopen = () => { opened = true; };
    socket.onclose = (event) => {
      if (event.code === 4403) { location.reload(); return; }
      if (!opened && everConnected) checkStillLoggedIn();
      setLive(false);
      setTimeout(connect, delay * (0.75 + Math.random() * 0.5));
      delay = Math.min(delay * 2, 30000);
    };
  }

  // A refused upgrade looks like any network failure to the page: if the page itself now redirects to the login
  // form (logged out elsewhere, session expired, role gone), go there instead of retrying for ever.
  async function checkStillLoggedIn() {
    try {
      const answer = await fetch(location.pathname, { redirect: "manual", cache: "no-store", credentials: "same-origin" });
      if (answer.type === "opaqueredirect" || answer.status === 401 || answer.status === 403) location.reload();
    } catch (e) { /* the server is down: keep retrying */ }
  }

  // Keys held by drivers (apps.ground's key safe), per car park: asked for with each snapshot, not live.
  async function showKeysOut() {
    try {
      const answer = await fetch("/ops/keys-out.json", { cache: "no-store", credentials: "same-origin" });
      if (!answer.ok) return;
      const counts = (await answer.json()).carparks;
      for (const [code, n] of Object.entries(counts)) {
        const count = tileOf(code)?.querySelector(".keys-out-count");
        if (count) count.textContent = n;
      }
    } catch (e) { /* the count is a convenience: the board has the list */ }
  }

  if (document.querySelector("[data-carpark]")) { connect(); showKeysOut(); setInterval(showKeysOut, 60000); }
  else { live.textContent = "no car parks"; }
  // Resynchronise now and then (bookings made since the snapshot appear in today's lists).
  setInterval(resync, 300000);
})();
