// The admin overview of the selfhosted plugin: plain browser JavaScript, no build step, no CDN.
// The admin token lives in sessionStorage (this tab only); keys are write-only and never shown.
"use strict";

const API = "/api/v1/admin/selfhosted";
const TOKEN_KEY = "influgen.admin.token";
const REFRESH_MS = 3000;
const $ = (selector) => document.querySelector(selector);

const state = { overview: null, etag: null, clockOffset: 0, editing: null, timer: null };

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.param = error.param || null;
  }
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${token()}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && state.etag) headers["If-Match"] = state.etag;
  const response = await fetch(API + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (response.headers.get("ETag")) state.etag = response.headers.get("ETag");
  const text = await response.text();
  const document = text ? JSON.parse(text) : null;
  if (response.status === 401) {
    signOut("That token was refused.");
    throw new ApiError(401, document);
  }
  if (!response.ok) throw new ApiError(response.status, document);
  return document;
}

// ---- signing in and out -------------------------------------------------------------------

function showLogin(message) {
  $("#app").hidden = true;
  $("#sign-out").hidden = true;
  $("#login").hidden = false;
  $("#login-error").textContent = message || "";
  $("#token").focus();
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  clearInterval(state.timer);
  showLogin(message);
}

async function signIn(event) {
  event.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $("#token").value.trim());
  $("#token").value = "";
  try {
    await load();
    start();
  } catch (error) {
    if (error.status !== 401) showLogin(error.message);
  }
}

function start() {
  $("#login").hidden = true;
  $("#app").hidden = false;
  $("#sign-out").hidden = false;
  clearInterval(state.timer);
  state.timer = setInterval(() => load().catch(showProblem), REFRESH_MS);
}

// ---- loading and rendering ----------------------------------------------------------------

async function load() {
  const overview = await api("GET", "/?log_limit=50");
  state.overview = overview;
  state.clockOffset = overview.now - Date.now() / 1000;
  render(overview);
}

function serverNow() {
  return Date.now() / 1000 + state.clockOffset;
}

function render(overview) {
  renderBanner(overview);
  renderRouting(overview);
  renderCards(overview.endpoints);
  renderLog(overview.routing_log);
  $("#updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
}

function renderBanner(overview) {
  const lines = [];
  if (overview.config_error) {
    lines.push("gateway.yaml was edited but the edit was refused; the running configuration stays:");
    for (const problem of overview.config_error.problems) lines.push(`  ${problem.path}: ${problem.message}`);
  }
  if (overview.restart_required.length) {
    lines.push(`Changed in gateway.yaml, applied after a restart: ${overview.restart_required.join(", ")}`);
  }
  $("#banner").textContent = lines.join("\n");
  $("#banner").hidden = lines.length === 0;
}

function renderRouting(overview) {
  const routing = overview.routing;
  const editing = [$("#routing-percentage"), $("#routing-range"), $("#routing-enabled")].includes(document.activeElement);
  if (!editing && !$("#routing-apply").dataset.dirty) {
    $("#routing-enabled").checked = routing.enabled;
    $("#routing-percentage").value = routing.routing_percentage;
    $("#routing-range").value = routing.routing_percentage;
  }
  const totals = overview.totals;
  const fallbacks = Object.entries(totals.by_reason)
    .filter(([reason, count]) => count > 0 && !["served", "not_selected_by_split", "routing_disabled"].includes(reason))
    .reduce((sum, [, count]) => sum + count, 0);
  const items = [
    ["Self-hosted", totals.selfhosted],
    ["Cloud", totals.cloud],
    ["Fallbacks", fallbacks],
    ["Rejected", totals.rejected],
    ["Queued now", overview.queue.depth],
    ["Oldest wait", overview.queue.oldest_wait_ms === null ? "–" : `${Math.round(overview.queue.oldest_wait_ms)} ms`],
  ];
  const list = $("#totals");
  list.replaceChildren(...items.map(([label, value]) => element("div", {}, [element("dt", { text: label }), element("dd", { text: String(value) })])));
}

function renderCards(endpoints) {
  const cards = $("#cards");
  if (!endpoints.length) {
    cards.replaceChildren(element("p", { class: "muted", text: "No endpoints yet: add one to start routing to your GPUs." }));
    return;
  }
  cards.replaceChildren(...endpoints.map(card));
}

function card(endpoint) {
  const health = endpoint.health.status;
  const circuit = endpoint.circuit.state;
  const used = endpoint.current_load;
  const max = endpoint.max_concurrency;
  const node = element("article", { class: `card ${health}`, "data-endpoint-id": endpoint.id }, [
    element("div", { class: "head" }, [element("span", { class: "name", text: endpoint.name }), element("span", { class: "id", text: endpoint.id })]),
    element("div", { class: "url", text: endpoint.url }),
    element("div", { class: "badges" }, [
      badge(health, `health: ${health}`),
      badge(circuit, circuitText(endpoint.circuit)),
      badge(endpoint.status, endpoint.status),
      badge("", endpoint.api_key ? "key set" : "no key"),
    ]),
    loadBar(used, max),
    element("dl", { class: "metrics" }, [
      ...metric("Load", `${used} / ${max}`),
      ...metric("Avg latency", ms(endpoint.avg_latency_ms)),
      ...metric("p95 latency", ms(endpoint.p95_latency_ms)),
      ...metric("Failures in a row", String(endpoint.consecutive_failures)),
      ...metric("Capabilities", endpoint.capabilities.join(", ")),
      ...metric("Weight", String(endpoint.weight)),
    ]),
    sparkline(endpoint.latency_history_ms),
  ]);
  if (endpoint.last_error) {
    node.append(element("div", { class: "last-error", text: `Last error (${ago(endpoint.last_error.at)}): ${endpoint.last_error.message}` }));
  }
  node.append(actions(endpoint));
  return node;
}

function circuitText(circuit) {
  if (circuit.state === "open" && circuit.reset_at) {
    const left = Math.max(0, Math.round(circuit.reset_at - serverNow()));
    return `circuit open · half-open in ${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
  }
  return circuit.state === "half_open" ? "circuit half-open" : "circuit closed";
}

function actions(endpoint) {
  const buttons = [button("Edit", "quiet", () => openDialog(endpoint))];
  if (endpoint.status === "active") buttons.push(button("Drain", "quiet", () => patch(endpoint, { status: "draining" })));
  if (endpoint.status !== "active") buttons.push(button("Activate", "quiet", () => patch(endpoint, { status: "active" })));
  if (endpoint.status !== "disabled") buttons.push(button("Disable", "quiet", () => patch(endpoint, { status: "disabled" })));
  buttons.push(button("Delete", "danger", () => remove(endpoint)));
  return element("div", { class: "actions" }, buttons);
}

function renderLog(decisions) {
  const rows = decisions.map((decision) =>
    element("tr", {}, [
      element("td", { text: new Date(decision.at * 1000).toLocaleTimeString() }),
      element("td", { text: decision.request_id.slice(0, 12), title: decision.request_id }),
      element("td", { text: decision.capability }),
      element("td", { text: decision.target }),
      element("td", { class: `reason-${decision.reason}`, text: decision.reason, title: decision.error || "" }),
      element("td", { text: String(decision.attempts) }),
      element("td", { text: decision.status === null ? "–" : String(decision.status) }),
      element("td", { text: ms(decision.latency_ms) }),
    ]),
  );
  $("#log tbody").replaceChildren(...rows);
}

// ---- changes ------------------------------------------------------------------------------

async function applyRouting() {
  const body = { enabled: $("#routing-enabled").checked, routing_percentage: Number($("#routing-percentage").value) };
  try {
    const result = await api("PUT", "/routing", body);
    delete $("#routing-apply").dataset.dirty;
    $("#routing-message").textContent = `Saved: ${result.routing.enabled ? "on" : "off"} at ${result.routing.routing_percentage}%`;
    await load();
  } catch (error) {
    $("#routing-message").textContent = error.message;
    if (error.status === 412) await load();
  }
}

async function patch(endpoint, body) {
  try {
    await api("PATCH", `/endpoints/${encodeURIComponent(endpoint.id)}`, body);
    await load();
  } catch (error) {
    showProblem(error);
  }
}

async function remove(endpoint) {
  if (!confirm(`Delete ${endpoint.name}? Requests in flight on it will complete.`)) return;
  try {
    await api("DELETE", `/endpoints/${encodeURIComponent(endpoint.id)}`);
    await load();
  } catch (error) {
    showProblem(error);
  }
}

async function refreshHealth() {
  const button = $("#refresh-health");
  button.disabled = true;
  try {
    await api("POST", "/refresh");
    await load();
  } catch (error) {
    showProblem(error);
  } finally {
    button.disabled = false;
  }
}

function openDialog(endpoint) {
  state.editing = endpoint || null;
  const form = $("#endpoint-form");
  form.reset();
  $("#dialog-title").textContent = endpoint ? `Edit ${endpoint.name}` : "Add endpoint";
  $("#form-error").textContent = "";
  if (endpoint) {
    form.name.value = endpoint.name;
    form.url.value = endpoint.url;
    form.status.value = endpoint.status;
    form.max_concurrency.value = endpoint.max_concurrency;
    form.weight.value = endpoint.weight;
    for (const box of form.querySelectorAll("input[name=capabilities]")) box.checked = endpoint.capabilities.includes(box.value);
  }
  $("#f-api-key").placeholder = endpoint && endpoint.api_key ? "unchanged (type a new key to replace it)" : "none";
  $("#f-api-key-hint").textContent = endpoint && endpoint.api_key ? "A key is stored. Changing the URL requires the key again." : "";
  $("#endpoint-dialog").showModal();
}

async function saveEndpoint(event) {
  event.preventDefault();
  const form = $("#endpoint-form");
  const body = {
    name: form.name.value.trim(),
    url: form.url.value.trim(),
    status: form.status.value,
    max_concurrency: Number(form.max_concurrency.value),
    weight: Number(form.weight.value),
    capabilities: [...form.querySelectorAll("input[name=capabilities]:checked")].map((box) => box.value),
  };
  if (form.api_key.value) body.api_key = form.api_key.value;
  try {
    if (state.editing) {
      await api("PATCH", `/endpoints/${encodeURIComponent(state.editing.id)}`, body);
    } else {
      await api("POST", "/endpoints", body);
    }
    form.api_key.value = "";
    $("#endpoint-dialog").close();
    await load();
  } catch (error) {
    $("#form-error").textContent = error.message;
    if (error.status === 412) await load();
  }
}

function showProblem(error) {
  if (error.status === 401) return;
  $("#banner").textContent = error.message;
  $("#banner").hidden = false;
}

// ---- small helpers ------------------------------------------------------------------------

function element(tag, attributes, children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  for (const child of children || []) node.append(child);
  return node;
}

function loadBar(used, max) {
  const fill = element("span");
  fill.style.width = `${Math.min(100, (100 * used) / max)}%`; // CSSOM, not a style attribute: allowed by the CSP
  return element("div", { class: "load", title: `load ${used}/${max}` }, [fill]);
}

function badge(kind, text) {
  return element("span", { class: `badge ${kind}`, text });
}

function button(label, kind, onClick) {
  const node = element("button", { type: "button", class: kind, text: label });
  node.addEventListener("click", onClick);
  return node;
}

function metric(label, value) {
  return [element("dt", { text: label }), element("dd", { text: value })];
}

function ms(value) {
  return value === null || value === undefined ? "–" : `${Math.round(value)} ms`;
}

function ago(at) {
  const seconds = Math.max(0, Math.round(serverNow() - at));
  return seconds < 90 ? `${seconds} s ago` : `${Math.round(seconds / 60)} min ago`;
}

function sparkline(values) {
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("viewBox", "0 0 100 30");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", values.length ? `latency of the last ${values.length} requests` : "no latency yet");
  if (values.length > 1) {
    const top = Math.max(...values) || 1;
    const points = values.map((value, index) => `${(100 * index) / (values.length - 1)},${30 - (28 * value) / top - 1}`);
    const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
    line.setAttribute("points", points.join(" "));
    svg.append(line);
  }
  return svg;
}

// ---- wiring -------------------------------------------------------------------------------

$("#login-form").addEventListener("submit", signIn);
$("#sign-out").addEventListener("click", () => signOut(""));
$("#routing-apply").addEventListener("click", applyRouting);
$("#routing-range").addEventListener("input", (event) => {
  $("#routing-percentage").value = event.target.value;
  $("#routing-apply").dataset.dirty = "1";
});
$("#routing-percentage").addEventListener("input", (event) => {
  $("#routing-range").value = event.target.value;
  $("#routing-apply").dataset.dirty = "1";
});
$("#routing-enabled").addEventListener("change", () => ($("#routing-apply").dataset.dirty = "1"));
$("#refresh-health").addEventListener("click", refreshHealth);
$("#add-endpoint").addEventListener("click", () => openDialog(null));
$("#endpoint-form").addEventListener("submit", saveEndpoint);
$("#endpoint-cancel").addEventListener("click", () => $("#endpoint-dialog").close());
setInterval(() => state.overview && renderCards(state.overview.endpoints), 1000);

if (token()) {
  load().then(start, (error) => error.status !== 401 && showLogin(error.message));
} else {
  showLogin("");
}
