// callbridge's calling extension for HubSpot.
//
// HubSpot -> callbridge: a dial-number event becomes POST /v1/calls with the record as CRM
// context, so the call engagement lands on that record. callbridge -> HubSpot: the agent's
// event stream (/v1/agents/{extension}/events) announces incoming calls, answers and hang-ups.
// Every call is announced with createEngagement: false: callbridge writes the one engagement
// per call itself (exactly once, with the PBX's data), so HubSpot must not write a second one.
import CallingExtensions from "./calling-extensions-sdk.esm.js";

const STORE = "callbridge.hubspot.";
const apiBase = new URL("../../", window.location.href);
const $ = (id) => document.getElementById(id);

const state = {
  ready: false,
  portalId: null,
  streamAbort: null,
  lastEventId: null,
  announced: new Set(),
  calls: new Map(), // externalCallId -> {state, number}
};

function creds() {
  return {
    extension: localStorage.getItem(STORE + "extension") || "",
    token: localStorage.getItem(STORE + "token") || "",
  };
}

function loggedIn() {
  const c = creds();
  return Boolean(c.extension && c.token);
}

function setStatus(text) {
  $("status").textContent = text;
}

function api(path) {
  return new URL(path, apiBase).toString();
}

function authHeaders(extra = {}) {
  return { Authorization: `Bearer ${creds().token}`, ...extra };
}

const cti = new CallingExtensions({
  debugMode: false,
  eventHandlers: {
    onReady: (data = {}) => {
      state.ready = true;
      state.portalId = data.portalId || state.portalId;
      cti.initialized({ isLoggedIn: loggedIn() });
      render();
      if (loggedIn()) connect();
    },
    onDialNumber: (data) => dial(data || {}),
    onEngagementCreated: () => {
      // Only hosts that ignore createEngagement:false get here; callbridge still logs once.
      setStatus("HubSpot created an engagement; callbridge logs the call itself");
    },
    onCreateEngagementSucceeded: () => {},
    onCreateEngagementFailed: () => {},
    onEndCall: () => hangupCurrent(),
    onVisibilityChanged: () => {},
    onCallerIdMatchSucceeded: () => {},
    onCallerIdMatchFailed: () => {},
    onNavigateToRecordFailed: () => {},
    onFinalizeEngagementSucceeded: () => {},
    onFinalizeEngagementFailed: () => {},
    onSetCallState: () => {},
    onInitiateCallIdSucceeded: () => {},
    onInitiateCallIdFailed: () => {},
    onUpdateEngagementSucceeded: () => {},
    onUpdateEngagementFailed: () => {},
    onPublishToChannelSucceeded: () => {},
    onPublishToChannelFailed: () => {},
    onSetWidgetUrlFailed: () => {},
    onFailed: () => {},
    defaultEventHandler: () => {},
  },
});

// --- HubSpot -> callbridge: click-to-call --------------------------------------------------

async function dial(data) {
  const { extension } = creds();
  if (!loggedIn()) {
    cti.sendError({ message: "Sign in to callbridge first" });
    setStatus("sign in to place calls");
    return;
  }
  const number = String(data.phoneNumber || data.toPhoneNumber || "");
  const body = { agent: extension, number };
  if (data.objectId) {
    body.crm = {
      connector: "hubspot",
      record_type: String(data.objectType || "CONTACT").toLowerCase(),
      record_id: String(data.objectId),
    };
  }
  setStatus(`calling ${number}…`);
  let answer;
  try {
    const response = await fetch(api("v1/calls"), {
      method: "POST",
      headers: authHeaders({ "Content-Type": "application/json" }),
      body: JSON.stringify(body),
    });
    answer = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(answer.detail || answer.message || `HTTP ${response.status}`);
    answer.repeated = response.status === 200;
  } catch (error) {
    setStatus(`call failed: ${error.message}`);
    cti.sendError({ message: `callbridge could not place the call: ${error.message}` });
    return;
  }
  const id = String(answer.external_id || answer.externalid || answer.id || "");
  if (answer.repeated && state.announced.has(id)) {
    // The service answered with the request already under way for this number: no new call.
    setStatus(`already calling ${number}: check your phone`);
    return;
  }
  state.calls.set(id, { state: "requested", number });
  state.announced.add(id);
  cti.outgoingCall({
    externalCallId: id,
    toNumber: number,
    fromNumber: extension,
    callStartTime: Date.now(),
    createEngagement: false,
  });
  // "unconfirmed": the PBX got the request but its answer was unreadable. The phone may be
  // ringing: say so, and never report an error HubSpot would offer to retry.
  const shown = answer.state === "unconfirmed" ? "unconfirmed: check your phone" : "requested";
  renderCall({ number, direction: "outbound", state: shown });
  if (answer.state === "unconfirmed") {
    setStatus(`call to ${number} unconfirmed: check your phone (it may be ringing; do not dial again)`);
  }
}

async function hangupCurrent() {
  for (const [id, call] of state.calls) {
    if (call.state !== "ended") {
      await fetch(api(`v1/calls/${encodeURIComponent(id)}/hangup`), {
        method: "POST",
        headers: authHeaders(),
      }).catch(() => {});
    }
  }
}

// --- callbridge -> HubSpot: the agent's event stream -------------------------------------

function endStatus(call) {
  switch (call.outcome) {
    case "answered": return "COMPLETED";
    case "missed": return "NO_ANSWER";
    case "rejected": return "BUSY";
    default: return call.answer_at ? "COMPLETED" : "FAILED";
  }
}

// --- the wrap-up (docs/wrap-up.md): notes, disposition, the contact -------------------------

// HubSpot's default call dispositions (an account may add its own: they arrive as text).
const DISPOSITIONS = [
  ["", "(as logged)"],
  ["f240bbac-87c9-4f6e-bf70-924b57d47db7", "Connected"],
  ["b2cf5968-551e-4856-9783-52b3da59a7d0", "Left voicemail"],
  ["a4c4c377-d246-4b32-a13b-75a56a4cd0ff", "Left live message"],
  ["73a0d17f-1163-4015-bdd5-ec830791da20", "No answer"],
  ["9d9162e7-6cf3-4944-bf63-4dff82258764", "Busy"],
  ["17b47fee-58de-441e-a44c-c6300d46f273", "Wrong number"],
];
const wrapup = { key: null, revision: 0 };

function showWrapup(call, contact) {
  if (!call.key) return;
  $("wrapup").hidden = false;
  // Search and create are offered when the lookup was ambiguous or found nothing.
  const ambiguous = Boolean(contact && (contact.candidates || []).length);
  $("wrapup-find").hidden = Boolean(contact) && !ambiguous;
  finder.number = call.remote_e164 || call.remote_number || "";
  $("wrapup-new").hidden = Boolean(contact) || !finder.number || finder.created;
  if (wrapup.key === call.key) return;
  wrapup.key = call.key;
  wrapup.revision = 0;
  finder.created = false;
  for (const id of ["wrapup-notes", "wrapup-search", "new-name", "new-company"]) $(id).value = "";
  $("wrapup-result").textContent = "";
  $("wrapup-found").textContent = "";
  $("wrapup-outcome").replaceChildren(...DISPOSITIONS.map(([value, label]) => new Option(label, value)));
  finder.candidates = contact ? (ambiguous ? contact.candidates : [contact]) : [];
  listRecords(finder.candidates, false);
}

// --- finding or creating the contact: search as you type through /v1/contacts -------------

const finder = { timer: null, seq: 0, candidates: [], number: "", created: false };

function listRecords(found, pick) {
  $("wrapup-record").replaceChildren(new Option("(as logged)", ""), ...found.map((c) => new Option(
    c.company ? `${c.name} (${c.company})` : c.name,
    JSON.stringify({ connector: "hubspot", record_type: c.record_type || "contact", record_id: c.record_id }))));
  if (pick && found.length) $("wrapup-record").selectedIndex = 1;
}

async function answerOf(response) {
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    const wait = response.headers.get("Retry-After");
    throw new Error((answer.detail || `HTTP ${response.status}`) + (wait ? ` (retry in ${wait} s)` : ""));
  }
  return answer;
}

async function findRecords() {
  clearTimeout(finder.timer);
  const query = $("wrapup-search").value.trim();
  const seq = ++finder.seq;
  if (query.length < 2) { listRecords(finder.candidates, false); $("wrapup-found").textContent = ""; return; }
  $("wrapup-found").textContent = "Searching…";
  try {
    const url = api(`v1/contacts/search?connector=hubspot&q=${encodeURIComponent(query)}`);
    const found = await answerOf(await fetch(url, { headers: authHeaders() }));
    if (seq !== finder.seq) return;  // the agent typed on: a newer search answers
    listRecords(found, true);
    $("wrapup-found").textContent = found.length ? `${found.length} found: ↓ to choose` : `No contact matches ${query}`;
  } catch (error) {
    if (seq === finder.seq) $("wrapup-found").textContent = `Search failed: ${error.message}`;
  }
}

async function createRecord() {
  const name = $("new-name").value.trim();
  if (!name) { $("wrapup-found").textContent = "Type a name to create a contact"; $("new-name").focus(); return; }
  const body = {
    connector: "hubspot", name, number: finder.number, kind: $("new-kind").value,
    company: $("new-company").value.trim() || null, extension: creds().extension || null,
  };
  $("wrapup-found").textContent = "Creating…";
  try {
    const created = await answerOf(await fetch(api("v1/contacts"), {
      method: "POST", headers: authHeaders({ "Content-Type": "application/json" }), body: JSON.stringify(body),
    }));
    finder.created = true;
    finder.candidates = [created];
    listRecords(finder.candidates, true);
    $("wrapup-new").hidden = true;
    $("wrapup-found").textContent = `Created ${created.name}: Ctrl+Enter logs the call on it`;
    $("wrapup-record").focus();
  } catch (error) {
    $("wrapup-found").textContent = `Not created: ${error.message}`;
  }
}

$("wrapup-search").addEventListener("input", () => {
  clearTimeout(finder.timer);
  finder.timer = setTimeout(findRecords, 300);
});
$("wrapup-search").addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const select = $("wrapup-record");
  if (event.key === "ArrowDown") {
    event.preventDefault();
    select.focus();
    if (select.selectedIndex < 1 && select.options.length > 1) select.selectedIndex = 1;
  } else if (event.key === "Enter") {
    event.preventDefault();
    findRecords();
  } else if (event.key === "Escape") {
    event.preventDefault();
    $("wrapup-search").value = "";
    findRecords();
  }
});
$("wrapup-record").addEventListener("keydown", (event) => {
  if (event.key === "Escape" && !$("wrapup-find").hidden) { event.preventDefault(); $("wrapup-search").focus(); }
});
$("new-create").addEventListener("click", createRecord);
$("wrapup-new").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.ctrlKey && !event.metaKey) { event.preventDefault(); createRecord(); }
});
// Alt+R: to the contact search from anywhere on the page.
document.addEventListener("keydown", (event) => {
  if (!event.altKey || event.ctrlKey || event.key.toLowerCase() !== "r") return;
  if ($("wrapup").hidden || $("wrapup-find").hidden) return;
  event.preventDefault();
  $("wrapup-search").focus();
});

async function saveWrapup() {
  if (!wrapup.key) return;
  const key = wrapup.key;
  const chosen = $("wrapup-record").value;
  const body = {
    notes: $("wrapup-notes").value,
    outcome: $("wrapup-outcome").value || null,
    record: chosen ? JSON.parse(chosen) : null,
    revision: wrapup.revision + 1,
  };
  $("wrapup-result").textContent = "Saving…";
  try {
    const response = await fetch(api(`v1/calls/${encodeURIComponent(key)}/wrap-up`), {
      method: "POST",
      headers: authHeaders({ "Content-Type": "application/json" }),
      body: JSON.stringify(body),
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(answer.detail || `HTTP ${response.status}`);
    if (wrapup.key === key) wrapup.revision = answer.revision;
    $("wrapup-result").textContent = `Saved (revision ${answer.revision})`;
  } catch (error) {
    $("wrapup-result").textContent = `Not saved: ${error.message}`;
  }
}

$("wrapup").addEventListener("submit", (event) => { event.preventDefault(); saveWrapup(); });
$("wrapup").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); saveWrapup(); }
});

function onPop(pop) {
  const call = pop.call || {};
  const id = String(call.external_id || call.key || "");
  if (!id) return;
  const number = call.remote_e164 || call.remote_number || "";
  const known = state.calls.get(id) || { state: "new", number };
  const contact = (pop.contacts || {}).hubspot || null;
  if (call.state === "ringing" && !state.announced.has(id) && call.direction === "inbound") {
    state.announced.add(id);
    cti.incomingCall({
      externalCallId: id,
      fromNumber: number,
      toNumber: call.extension || creds().extension,
      callStartTime: Date.parse(call.ring_at || "") || Date.now(),
      createEngagement: false,
    });
    navigateTo(contact);
  } else if (call.state === "answered" && known.state !== "answered") {
    cti.callAnswered({ externalCallId: id });
  } else if (call.state === "ended" && known.state !== "ended") {
    cti.callEnded({ externalCallId: id, callEndStatus: endStatus(call) });
    cti.callCompleted({ externalCallId: id, hideWidget: true });
  }
  state.calls.set(id, { state: call.state, number });
  renderCall({ number, direction: call.direction, state: call.state, contact });
  showWrapup(call, contact);
}

function navigateTo(contact) {
  if (!contact || (contact.candidates || []).length) return;
  const portalId = Number(state.portalId || (contact.url || "").split("/contacts/")[1]?.split("/")[0]);
  const objectId = Number(contact.record_id);
  if (!portalId || !objectId) return;
  cti.navigateToRecord({ objectCoordinates: { portalId, objectId, objectTypeId: "0-1" } });
}

function parseEvents(buffer, onEvent) {
  // Server-sent events over fetch (EventSource cannot send the bearer token).
  let start = 0;
  let end;
  while ((end = buffer.indexOf("\n\n", start)) !== -1) {
    const block = buffer.slice(start, end);
    start = end + 2;
    const event = { type: "message", data: [], id: null };
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") event.type = value;
      else if (field === "data") event.data.push(value);
      else if (field === "id") event.id = value;
    }
    onEvent(event);
  }
  return buffer.slice(start);
}

async function connect() {
  if (state.streamAbort) return;
  const { extension } = creds();
  const abort = new AbortController();
  state.streamAbort = abort;
  const headers = authHeaders({ Accept: "text/event-stream" });
  if (state.lastEventId) headers["Last-Event-ID"] = state.lastEventId;
  try {
    const response = await fetch(api(`v1/agents/${encodeURIComponent(extension)}/events`), {
      headers,
      signal: abort.signal,
    });
    if (response.status === 401 || response.status === 403) {
      setStatus("callbridge refused the token: sign in again");
      state.streamAbort = null;
      return;
    }
    if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
    setStatus("connected");
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer = parseEvents((buffer + value).replace(/\r\n?/g, "\n"), (event) => {
        if (event.id) state.lastEventId = event.id;
        if (event.type === "pop" && event.data.length) {
          try { onPop(JSON.parse(event.data.join("\n"))); } catch (e) { console.warn(e); }
        }
      });
    }
  } catch (error) {
    if (abort.signal.aborted) return;
    setStatus(`reconnecting (${error.message})`);
  }
  state.streamAbort = null;
  if (loggedIn()) setTimeout(connect, 2000);
}

// --- the small UI ------------------------------------------------------------------------

function renderCall({ number, direction, state: callState, contact }) {
  const box = $("call");
  box.textContent = "";
  const line = document.createElement("p");
  line.textContent = `${direction === "outbound" ? "To" : "From"} ${number}: ${callState}`;
  box.append(line);
  if (contact) {
    const who = document.createElement("p");
    who.className = "contact";
    const link = document.createElement("a");
    link.href = contact.url || "#";
    link.target = "_blank";
    link.rel = "noopener";
    link.textContent = contact.name;
    who.append(link);
    box.append(who);
    if ((contact.candidates || []).length) {
      const list = document.createElement("ul");
      list.className = "candidates";
      for (const c of contact.candidates) {
        const item = document.createElement("li");
        const a = document.createElement("a");
        a.href = c.url || "#";
        a.target = "_blank";
        a.rel = "noopener";
        a.textContent = c.name;
        item.append(a);
        list.append(item);
      }
      box.append(list);
    }
  }
}

function render() {
  const c = creds();
  $("login").hidden = loggedIn();
  $("agent").hidden = !loggedIn();
  $("agent-extension").textContent = c.extension;
  if (!loggedIn()) setStatus("sign in");
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  localStorage.setItem(STORE + "extension", $("extension").value.trim());
  localStorage.setItem(STORE + "token", $("token").value.trim());
  $("token").value = "";
  render();
  if (state.ready) cti.userLoggedIn();
  connect();
});

$("logout").addEventListener("click", () => {
  localStorage.removeItem(STORE + "token");
  if (state.streamAbort) state.streamAbort.abort();
  state.streamAbort = null;
  if (state.ready) cti.userLoggedOut();
  render();
});

const preset = new URLSearchParams(window.location.search).get("extension");
if (preset) $("extension").value = preset;
render();
window.callbridgeHubspot = { state, cti };
