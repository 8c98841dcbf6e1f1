// callbridge agent panel: subscribes to the agent's event stream and drives the call API.
// Plain script, no build step. The token stays in sessionStorage (this tab only).
"use strict";

const $ = (id) => document.getElementById(id);
const state = { extension: "", token: "", source: null, lastId: 0, backoff: 1000, current: null };

function setStatus(text, kind) {
  $("status").textContent = text;
  $("status").dataset.state = kind;
}

function api(path, body) {
  return fetch(path, {
    method: "POST",
    headers: { "Authorization": "Bearer " + state.token, "Content-Type": "application/json" },
    body: JSON.stringify(body || {}),
  }).then(async (response) => {
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.detail || response.statusText);
    // 200 instead of 202: the service answered with a request already under way.
    Object.defineProperty(data, "repeated", { value: response.status === 200 });
    return data;
  });
}

// What a click-to-call's state means to the agent. "unconfirmed": the PBX got the request
// but its answer could not be read; the phone may be ringing, so never suggest calling again.
function describeRequest(data, repeated) {
  const number = data.number || "";
  if (data.state === "unconfirmed") return "Call to " + number + " unconfirmed: check your phone (it may be ringing; do not call again)";
  if (repeated) return "Already calling " + number + ": check your phone";
  if (data.state === "unmatched") return "Call to " + number + ": the PBX reported no call (" + (data.error || "unmatched") + ")";
  if (data.state === "failed") return "Call to " + number + " refused by the PBX: " + (data.error || "");
  return "Call to " + number + ": " + (data.state || "");
}

function connect() {
  if (state.source) state.source.close();
  const url = "/v1/agents/" + encodeURIComponent(state.extension) + "/events?access_token=" +
    encodeURIComponent(state.token) + "&last_event_id=" + state.lastId;
  const source = new EventSource(url);
  state.source = source;
  source.onopen = () => { state.backoff = 1000; setStatus("Connected as " + state.extension, "connected"); };
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) {
      // The server refused or went away for good: retry ourselves, with backoff.
      setStatus("Reconnecting…", "reconnecting");
      setTimeout(connect, state.backoff);
      state.backoff = Math.min(state.backoff * 2, 30000);
    } else {
      setStatus("Reconnecting…", "reconnecting");
    }
  };
  source.addEventListener("pop", (message) => {
    state.lastId = Math.max(state.lastId, Number(message.lastEventId) || 0);
    showPop(JSON.parse(message.data));
  });
  source.addEventListener("call", (message) => {
    state.lastId = Math.max(state.lastId, Number(message.lastEventId) || 0);
    const data = JSON.parse(message.data);
    $("dial-result").textContent = describeRequest(data, false);
    $("dial-result").dataset.state = data.state || "";
  });
}

function bestContact(contacts) {
  const list = Object.values(contacts || {});
  return list.find((c) => !(c.candidates && c.candidates.length)) || list[0] || null;
}

function showPop(pop) {
  const call = pop.call || {};
  const contact = bestContact(pop.contacts);
  state.current = call;
  showWrapup(call, pop.contacts || {});
  const section = $("current");
  section.hidden = false;
  section.dataset.state = call.state;
  section.dataset.callId = call.user_call_id || "";
  $("call-state").textContent = call.state || "";
  $("call-state").dataset.value = call.state || "";
  $("call-direction").textContent = call.direction || "";
  const name = callerName(call, contact);
  $("caller-name").textContent = name;
  $("caller-company").textContent = contact && contact.company ? contact.company : "";
  const number = call.remote_e164 || call.remote_number || "";
  $("caller-number").textContent = number;
  $("caller-number").href = "tel:" + number;
  $("call-group").textContent = call.group ? "(group " + call.group + ")" : "";
  const records = $("records");
  records.replaceChildren();
  for (const [connector, found] of Object.entries(pop.contacts || {})) {
    if (!found.url) continue;
    const label = "Open in " + connector + (found.name && found.name !== name ? ": " + found.name : "");
    records.append(recordLink(found.url, label));
  }
  const ambiguous = contact && contact.candidates && contact.candidates.length;
  $("candidates").hidden = !ambiguous;
  $("candidate-list").replaceChildren(...(ambiguous ? contact.candidates.map((c) =>
    recordLink(c.url || "#", c.name + (c.company ? " · " + c.company : ""))) : []));
  if (call.state === "ended") addHistory(call, contact);
  // The background alerts (alerts.js: ring tone, desktop notification) listen for this.
  document.dispatchEvent(new CustomEvent("callbridge:pop", { detail: { call, contact, name } }));
}

function callerName(call, contact) {
  const identity = call.identity || {};
  const fallback = [identity.name, identity.surname].filter(Boolean).join(" ");
  return contact ? contact.name : (fallback || "Unknown caller");
}

// A CRM link, shown as a button: it still is a link (opens the record in a new tab).
function recordLink(url, label) {
  const item = document.createElement("li");
  const link = document.createElement("a");
  link.href = url; link.target = "_blank"; link.rel = "noopener"; link.className = "button";
  link.textContent = label;
  item.append(link);
  return item;
}

// One line per finished call: when, direction, who, and how it ended (a coloured badge
// whose word is the outcome, so the colour is never the only cue).
function addHistory(call, contact) {
  const item = document.createElement("li");
  item.dataset.outcome = call.outcome || "unknown";
  const who = contact ? contact.name : (call.remote_e164 || call.remote_number || "unknown");
  const at = new Date(call.ring_at || Date.now());
  const part = (className, text) => {
    const span = document.createElement("span");
    span.className = className; span.textContent = text;
    return span;
  };
  const time = part("when", at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
  const outcome = part("badge", call.outcome || "unknown");
  outcome.dataset.value = call.outcome || "unknown";
  // Spaces between the parts, for screen readers and copied text (the layout ignores them).
  item.append(time, " ", part("direction", call.direction || ""), " ", part("who", who), " ", outcome);
  $("history").prepend(item);
  while ($("history").children.length > 20) $("history").lastChild.remove();
}

// -- wrap-up: notes, outcome and the record the call belongs to (docs/wrap-up.md) ----------
const wrapup = { key: null, revision: 0, timer: null };

function authorized(path) {
  return fetch(path, { headers: { "Authorization": "Bearer " + state.token } }).then(async (response) => {
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.detail || response.statusText);
    return data;
  });
}

function recordOption(contact) {
  const option = document.createElement("option");
  option.value = JSON.stringify({ connector: contact.connector, record_type: contact.record_type, record_id: contact.record_id });
  option.textContent = contact.name + (contact.company ? " · " + contact.company : "") + " (" + contact.connector + ")";
  return option;
}

// Shown from the first pop of a call on; a new call resets it, a pop of the same call keeps
// what the agent typed. The candidates of an ambiguous lookup are the first choices.
function showWrapup(call, contacts) {
  const form = $("wrapup");
  if (!call.key) return;
  form.hidden = false;
  if (wrapup.key === call.key) return;
  wrapup.key = call.key; wrapup.revision = 0;
  form.dataset.callKey = call.key;
  $("wrapup-notes").value = ""; $("wrapup-outcome").value = ""; $("wrapup-search").value = "";
  $("wrapup-result").textContent = "";
  const options = [];
  for (const found of Object.values(contacts)) {
    for (const c of (found.candidates && found.candidates.length ? found.candidates : [found])) options.push(recordOption(c));
  }
  $("wrapup-record").replaceChildren(...options);
  if (options.length === 1) $("wrapup-record").selectedIndex = 0;
  wrapup.choices = options.map((option) => option.cloneNode(true));
  wrapup.number = call.remote_e164 || call.remote_number || "";
  $("new-name").value = ""; $("new-company").value = "";
  // Create is offered for a number no connector knows.
  $("wrapup-new").hidden = options.length > 0 || !wrapup.number;
  authorized("/v1/calls/" + encodeURIComponent(call.key) + "/wrap-up").then((data) => {
    if (wrapup.key !== call.key) return;
    wrapup.revision = data.revision || 0;
    if (data.wrapup) { $("wrapup-notes").value = data.wrapup.notes || ""; $("wrapup-outcome").value = data.wrapup.outcome || ""; }
    $("wrapup-connector").replaceChildren(...(data.connectors || []).map((name) => new Option(name, name)));
    const outcomes = Object.values(data.outcomes || {}).flat();
    $("wrapup-outcomes").replaceChildren(...outcomes.map((o) => new Option(o, o)));
  }).catch(() => {});  // the call may not be journaled yet: the save finds it later
}

function searchRecords() {
  const query = $("wrapup-search").value.trim();
  const connector = $("wrapup-connector").value;
  if (!query || !connector) return;
  authorized("/v1/contacts/search?connector=" + encodeURIComponent(connector) + "&q=" + encodeURIComponent(query))
    .then((found) => {
      if ($("wrapup-search").value.trim() !== query) return;  // the agent typed on
      $("wrapup-record").replaceChildren(...found.map(recordOption));
      if (found.length) $("wrapup-record").selectedIndex = 0;
      $("wrapup-result").textContent = found.length ? "" : "No record matches " + query;
    })
    .catch((error) => { $("wrapup-result").textContent = "Search failed: " + error.message; });
}

$("wrapup-search").addEventListener("input", () => {
  clearTimeout(wrapup.timer);
  wrapup.timer = setTimeout(searchRecords, 250);
});
function restoreChoices() {
  $("wrapup-search").value = "";
  clearTimeout(wrapup.timer);
  $("wrapup-record").replaceChildren(...(wrapup.choices || []).map((option) => option.cloneNode(true)));
  if ($("wrapup-record").options.length === 1) $("wrapup-record").selectedIndex = 0;
  $("wrapup-result").textContent = "";
}

function createRecord() {
  const name = $("new-name").value.trim();
  if (!name) { $("wrapup-result").textContent = "Type a name to create a record"; $("new-name").focus(); return; }
  $("wrapup-result").textContent = "Creating…";
  api("/v1/contacts", {
    connector: $("wrapup-connector").value, name, number: wrapup.number, kind: $("new-kind").value,
    company: $("new-company").value.trim() || null, extension: state.extension || null,
  }).then((created) => {
    wrapup.choices = [recordOption(created)];
    restoreChoices();
    $("wrapup-new").hidden = true;
    $("wrapup-result").textContent = "Created " + created.name + ": Ctrl+Enter logs the call on it";
    $("wrapup-record").focus();
  }).catch((error) => { $("wrapup-result").textContent = "Not created: " + error.message; });
}

$("new-create").addEventListener("click", createRecord);
$("wrapup-new").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.ctrlKey && !event.metaKey) { event.preventDefault(); createRecord(); }
});
$("wrapup-record").addEventListener("keydown", (event) => {
  if (event.key === "Escape") { event.preventDefault(); $("wrapup-search").focus(); }
});
$("wrapup-search").addEventListener("keydown", (event) => {
  if (event.key === "Escape") {
    event.preventDefault();
    restoreChoices();
  } else if (event.key === "ArrowDown" && $("wrapup-record").options.length) {
    event.preventDefault();
    $("wrapup-record").focus();
    if ($("wrapup-record").selectedIndex < 0) $("wrapup-record").selectedIndex = 0;
  } else if (event.key === "Enter") {
    event.preventDefault();
    clearTimeout(wrapup.timer);
    searchRecords();
  }
});
// Alt+N / Alt+O / Alt+R jump to the notes, the outcome and the record search from anywhere
// (handled here rather than with accesskey, whose modifier differs between browsers).
const WRAPUP_KEYS = { n: "wrapup-notes", o: "wrapup-outcome", r: "wrapup-search" };
document.addEventListener("keydown", (event) => {
  const target = event.altKey && !event.ctrlKey && WRAPUP_KEYS[event.key.toLowerCase()];
  if (!target || $("wrapup").hidden) return;
  event.preventDefault();
  $(target).focus();
});
$("wrapup").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    $("wrapup").requestSubmit();
  }
});
$("wrapup").addEventListener("submit", (event) => {
  event.preventDefault();
  if (!wrapup.key) return;
  const selected = $("wrapup-record").selectedOptions[0];
  const body = {
    notes: $("wrapup-notes").value,
    outcome: $("wrapup-outcome").value.trim() || null,
    record: selected ? JSON.parse(selected.value) : null,
    revision: wrapup.revision + 1,
  };
  const key = wrapup.key;
  $("wrapup-result").textContent = "Saving…";
  api("/v1/calls/" + encodeURIComponent(key) + "/wrap-up", body)
    .then((data) => {
      if (wrapup.key === key) wrapup.revision = data.revision;
      $("wrapup-result").textContent = "Saved (revision " + data.revision + ")";
      $("wrapup-result").dataset.revision = String(data.revision);
    })
    .catch((error) => { $("wrapup-result").textContent = "Not saved: " + error.message; });
});

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  state.extension = $("extension").value.trim();
  state.token = $("token").value;
  sessionStorage.setItem("callbridge", JSON.stringify({ extension: state.extension, token: state.token }));
  connect();
});

$("dial").addEventListener("submit", (event) => {
  event.preventDefault();
  const number = $("dial-number").value.trim();
  $("dial-result").textContent = "Calling " + number + "…";
  api("/v1/calls", { agent: state.extension, number })
    .then((data) => {
      $("dial-result").textContent = describeRequest(data, data.repeated);
      $("dial-result").dataset.externalId = data.external_id;
      $("dial-result").dataset.state = data.state || "";
    })
    .catch((error) => { $("dial-result").textContent = "Failed: " + error.message; });
});

document.querySelectorAll("[data-action]").forEach((button) => {
  button.addEventListener("click", () => {
    const call = state.current;
    if (!call) return;
    const ref = call.external_id || call.user_call_id;
    const action = button.dataset.action;
    const body = action === "transfer" ? { to_extension: $("transfer-to").value.trim() } : {};
    // A command's outcome says nothing about the event stream: keep its connection state.
    const keep = () => $("status").dataset.state;
    api("/v1/calls/" + encodeURIComponent(ref) + "/" + action, body)
      .then(() => setStatus(action + " sent", keep()))
      .catch((error) => setStatus(action + " failed: " + error.message, keep()));
  });
});

// Arrive from a CRM link with #extension=201&token=... (the fragment never reaches servers).
(function init() {
  const fromHash = new URLSearchParams(location.hash.slice(1));
  const saved = JSON.parse(sessionStorage.getItem("callbridge") || "{}");
  const extension = fromHash.get("extension") || saved.extension;
  const token = fromHash.get("token") || saved.token;
  if (fromHash.has("token")) history.replaceState(null, "", location.pathname + location.search);
  if (extension && token) {
    $("extension").value = extension; $("token").value = token;
    state.extension = extension; state.token = token;
    // Kept for this tab, so a reload stays signed in (the fragment is gone by then).
    sessionStorage.setItem("callbridge", JSON.stringify({ extension, token }));
    connect();
  }
})();
