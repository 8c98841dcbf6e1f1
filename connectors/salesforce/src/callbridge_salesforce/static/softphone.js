/*
 * callbridge softphone for Salesforce Open CTI (Lightning Experience).
 *
 * - Listens to callbridge's agent stream (GET /v1/agents/{extension}/events, server-sent
 *   events read through fetch so the API token travels in a header, never in a URL) and
 *   calls sforce.opencti.screenPop for the Salesforce record when a call rings.
 * - Enables Open CTI click-to-dial and turns each click into POST /v1/calls with the record
 *   as CRM context, so the call's Task lands on the record the agent clicked from.
 *
 * The extension and token come from the fragment (#extension=201&token=...) once, or from
 * the form; they are kept in this browser's localStorage. Data from the CRM or the PBX is
 * shown with textContent only.
 */
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("callbridge-config").textContent);
  var STORE = "callbridge.salesforce.";
  var state = {
    extension: "", token: "", popped: {}, controller: null, retry: 1000, lastId: ""
  };

  function $(id) { return document.getElementById(id); }
  function status(text) { $("status").textContent = text; }
  function cti() { return window.sforce && window.sforce.opencti; }

  function readSetup() {
    var hash = new URLSearchParams(window.location.hash.replace(/^#/, ""));
    if (hash.get("extension")) {
      localStorage.setItem(STORE + "extension", hash.get("extension"));
      if (hash.get("token")) { localStorage.setItem(STORE + "token", hash.get("token")); }
      history.replaceState(null, "", window.location.pathname + window.location.search);
    }
    state.extension = localStorage.getItem(STORE + "extension") || "";
    state.token = localStorage.getItem(STORE + "token") || "";
  }

  function showSetup(show) {
    $("setup").hidden = !show;
    $("change").hidden = show;
    if (show) {
      $("setup-extension").value = state.extension;
      $("setup-token").value = state.token;
    }
  }

  function authHeaders(extra) {
    var headers = extra || {};
    if (state.token) { headers.Authorization = "Bearer " + state.token; }
    return headers;
  }

  // --- Open CTI ---------------------------------------------------------------------------

  function loadOpenCti(done) {
    if (cti()) { done(); return; }
    if (!config.openctiUrl) {
      status("Open CTI URL unknown: set CALLBRIDGE_SALESFORCE_OPENCTI_URL.");
      return;
    }
    var script = document.createElement("script");
    script.src = config.openctiUrl;
    script.onload = function () {
      if (cti()) { done(); } else { status("Open CTI did not load (sforce.opencti missing)."); }
    };
    script.onerror = function () { status("Open CTI could not be loaded from " + config.openctiUrl); };
    document.head.appendChild(script);
  }

  function initCti() {
    var api = cti();
    api.enableClickToDial({ callback: function (result) {
      if (result && result.success === false) { status("Click-to-dial could not be enabled."); }
    } });
    api.onClickToDial({ listener: onClickToDial });
  }

  function screenPop(recordId) {
    var api = cti();
    if (!api || !recordId) { return; }
    api.screenPop({
      type: api.SCREENPOP_TYPE.SOBJECT,
      params: { recordId: recordId },
      callback: function (result) {
        if (result && result.success === false) { status("Screen-pop failed for " + recordId); }
      }
    });
  }

  function onClickToDial(payload) {
    payload = payload || {};
    if (!state.extension) { status("Set your extension first."); showSetup(true); return; }
    var body = { agent: state.extension, number: String(payload.number || "") };
    if (payload.recordId) {
      body.crm = {
        connector: config.connector,
        record_type: String(payload.objectType || ""),
        record_id: String(payload.recordId)
      };
    }
    status("Calling " + body.number + "…");
    fetch(config.apiBase + "/v1/calls", {
      method: "POST",
      headers: authHeaders({ "Content-Type": "application/json" }),
      body: JSON.stringify(body)
    }).then(function (response) {
      if (!response.ok) {
        return response.text().then(function (text) {
          throw new Error("HTTP " + response.status + " " + text.slice(0, 200));
        });
      }
      return response.json().catch(function () { return {}; }).then(function (answer) {
        // "unconfirmed": the PBX got the request but its answer was unreadable; the phone
        // may be ringing, so the agent must check it rather than dial again. A 200 is the
        // service answering with a request of the same number already under way.
        if (answer.state === "unconfirmed") {
          status("Call to " + body.number + " unconfirmed: check your phone (it may be ringing; do not dial again)");
        } else if (response.status === 200) {
          status("Already calling " + body.number + ": check your phone");
        } else {
          status("Calling " + body.number);
        }
        var api = cti();
        if (api && api.setSoftphonePanelVisibility) { api.setSoftphonePanelVisibility({ visible: true }); }
      });
    }).catch(function (error) { status("Call failed: " + error.message); });
  }

  // --- the agent stream -------------------------------------------------------------------

  function render(call, contact) {
    $("call").hidden = false;
    $("call-state").textContent = call.state || "";
    $("call-number").textContent = call.remote_e164 || call.remote_number || "";
    $("call-name").textContent = contact ? contact.name : "Unknown caller";
    $("call-company").textContent = contact && contact.company ? contact.company : "";
    var list = $("candidates");
    while (list.firstChild) { list.removeChild(list.firstChild); }
    var candidates = (contact && contact.candidates) || [];
    candidates.forEach(function (candidate) {
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = candidate.record_type + ": " + candidate.name;
      button.addEventListener("click", function () { screenPop(candidate.record_id); });
      list.appendChild(button);
    });
    if (candidates.length) { $("call-name").textContent = "Several records match: choose one"; }
  }

  // --- the wrap-up (docs/wrap-up.md): notes, CallDisposition, the record -------------------

  var wrapup = { key: null, revision: 0 };

  function showWrapup(call, contact) {
    if (!call.key) { return; }
    $("wrapup").hidden = false;
    // Search and create are offered when the lookup was ambiguous or found nothing.
    var ambiguous = Boolean(contact && contact.candidates && contact.candidates.length);
    $("wrapup-find").hidden = Boolean(contact) && !ambiguous;
    finder.number = call.remote_e164 || call.remote_number || "";
    $("wrapup-new").hidden = Boolean(contact) || !finder.number || finder.created;
    if (wrapup.key === call.key) { return; }
    wrapup.key = call.key;
    wrapup.revision = 0;
    finder.created = false;
    $("wrapup-notes").value = "";
    $("wrapup-outcome").value = "";
    $("wrapup-result").textContent = "";
    $("wrapup-search").value = "";
    $("wrapup-found").textContent = "";
    $("new-name").value = "";
    $("new-company").value = "";
    finder.candidates = ambiguous ? contact.candidates : (contact ? [contact] : []);
    fillRecords(finder.candidates, false);
  }

  // --- finding or creating the record: search as you type through /v1/contacts ------------

  var finder = { timer: null, seq: 0, candidates: [], number: "", created: false };

  function fillRecords(list, pick) {
    var select = $("wrapup-record");
    while (select.options.length > 1) { select.remove(1); }
    list.forEach(function (c) {
      var value = JSON.stringify({ connector: config.connector, record_type: c.record_type, record_id: c.record_id });
      select.add(new Option(c.record_type + ": " + c.name + (c.company ? " (" + c.company + ")" : ""), value));
    });
    if (pick && list.length) { select.selectedIndex = 1; }
  }

  function answerOf(response) {
    return response.json().catch(function () { return {}; }).then(function (answer) {
      if (!response.ok) {
        var wait = response.headers.get("Retry-After");
        throw new Error((answer.detail || ("HTTP " + response.status)) + (wait ? " (retry in " + wait + " s)" : ""));
      }
      return answer;
    });
  }

  function searchRecords() {
    clearTimeout(finder.timer);
    var query = $("wrapup-search").value.trim();
    var seq = ++finder.seq;
    if (query.length < 2) { fillRecords(finder.candidates, false); $("wrapup-found").textContent = ""; return; }
    $("wrapup-found").textContent = "Searching…";
    var url = config.apiBase + "/v1/contacts/search?connector=" + encodeURIComponent(config.connector) +
      "&q=" + encodeURIComponent(query);
    fetch(url, { headers: authHeaders() }).then(answerOf).then(function (found) {
      if (seq !== finder.seq) { return; }  // the agent typed on: a newer search answers
      fillRecords(found, true);
      $("wrapup-found").textContent = found.length ? found.length + " found: ↓ to choose" : "No record matches " + query;
    }).catch(function (error) {
      if (seq === finder.seq) { $("wrapup-found").textContent = "Search failed: " + error.message; }
    });
  }

  function createRecord() {
    var name = $("new-name").value.trim();
    if (!name) { $("wrapup-found").textContent = "Type a name to create a record"; $("new-name").focus(); return; }
    var body = {
      connector: config.connector, name: name, number: finder.number, kind: $("new-kind").value,
      company: $("new-company").value.trim() || null, extension: state.extension || null
    };
    $("wrapup-found").textContent = "Creating…";
    fetch(config.apiBase + "/v1/contacts", {
      method: "POST",
      headers: authHeaders({ "Content-Type": "application/json" }),
      body: JSON.stringify(body)
    }).then(answerOf).then(function (created) {
      finder.created = true;
      finder.candidates = [created];
      fillRecords(finder.candidates, true);
      $("wrapup-new").hidden = true;
      $("wrapup-found").textContent = "Created " + created.record_type + " " + created.name + ": Ctrl+Enter logs the call on it";
      $("wrapup-record").focus();
    }).catch(function (error) { $("wrapup-found").textContent = "Not created: " + error.message; });
  }

  $("wrapup-search").addEventListener("input", function () {
    clearTimeout(finder.timer);
    finder.timer = setTimeout(searchRecords, 300);
  });
  $("wrapup-search").addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    var select = $("wrapup-record");
    if (event.key === "ArrowDown") {
      event.preventDefault();
      select.focus();
      if (select.selectedIndex < 1 && select.options.length > 1) { select.selectedIndex = 1; }
    } else if (event.key === "Enter") {
      event.preventDefault();
      searchRecords();
    } else if (event.key === "Escape") {
      event.preventDefault();
      $("wrapup-search").value = "";
      searchRecords();
    }
  });
  $("wrapup-record").addEventListener("keydown", function (event) {
    if (event.key === "Escape" && !$("wrapup-find").hidden) { event.preventDefault(); $("wrapup-search").focus(); }
  });
  $("new-create").addEventListener("click", createRecord);
  $("wrapup-new").addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.ctrlKey && !event.metaKey) { event.preventDefault(); createRecord(); }
  });
  // Alt+R: to the record search from anywhere on the page.
  document.addEventListener("keydown", function (event) {
    if (event.altKey && !event.ctrlKey && event.key.toLowerCase() === "r" && !$("wrapup-find").hidden && !$("wrapup").hidden) {
      event.preventDefault();
      $("wrapup-search").focus();
    }
  });

  function saveWrapup() {
    if (!wrapup.key) { return; }
    var key = wrapup.key;
    var chosen = $("wrapup-record").value;
    var body = {
      notes: $("wrapup-notes").value,
      outcome: $("wrapup-outcome").value.trim() || null,
      record: chosen ? JSON.parse(chosen) : null,
      revision: wrapup.revision + 1
    };
    $("wrapup-result").textContent = "Saving…";
    fetch(config.apiBase + "/v1/calls/" + encodeURIComponent(key) + "/wrap-up", {
      method: "POST",
      headers: authHeaders({ "Content-Type": "application/json" }),
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (answer) {
        if (!response.ok) { throw new Error(answer.detail || ("HTTP " + response.status)); }
        if (wrapup.key === key) { wrapup.revision = answer.revision; }
        $("wrapup-result").textContent = "Saved (revision " + answer.revision + ")";
      });
    }).catch(function (error) { $("wrapup-result").textContent = "Not saved: " + error.message; });
  }

  $("wrapup").addEventListener("submit", function (event) { event.preventDefault(); saveWrapup(); });
  $("wrapup").addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); saveWrapup(); }
  });

  function onPop(data) {
    var call = data.call || {};
    var contact = (data.contacts || {})[config.connector] || null;
    render(call, contact);
    showWrapup(call, contact);
    if (call.state !== "ringing" || !contact) { return; }
    if (contact.candidates && contact.candidates.length) { return; }
    if (state.popped[call.key]) { return; }
    state.popped[call.key] = true;
    screenPop(contact.record_id);
  }

  // A click-to-call's state, from the agent stream: say when no call followed it.
  function onRequest(data) {
    if (data.state === "unmatched") {
      status("Call to " + (data.number || "") + ": the PBX reported no call (unmatched)");
    }
  }

  function dispatch(block) {
    var event = "message";
    var data = [];
    block.split(/\r?\n/).forEach(function (line) {
      if (!line || line.charAt(0) === ":") { return; }
      var colon = line.indexOf(":");
      var field = colon < 0 ? line : line.slice(0, colon);
      var value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") { event = value; }
      else if (field === "data") { data.push(value); }
      else if (field === "id") { state.lastId = value; }
    });
    if (event === "call" && data.length) {
      try { onRequest(JSON.parse(data.join("\n"))); } catch (error) { status("Bad message: " + error.message); }
      return;
    }
    if (event !== "pop" || !data.length) { return; }
    try { onPop(JSON.parse(data.join("\n"))); } catch (error) { status("Bad pop: " + error.message); }
  }

  function read(reader) {
    var decoder = new TextDecoder();
    var buffer = "";
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) { return; }
        buffer += decoder.decode(chunk.value, { stream: true });
        var blocks = buffer.split(/\r?\n\r?\n/);
        buffer = blocks.pop();
        blocks.forEach(dispatch);
        return pump();
      });
    }
    return pump();
  }

  function listen() {
    if (state.controller) { state.controller.abort(); }
    if (!state.extension) { status("Not connected: set your extension."); showSetup(true); return; }
    var controller = new AbortController();
    state.controller = controller;
    var url = config.apiBase + "/v1/agents/" + encodeURIComponent(state.extension) + "/events";
    var headers = authHeaders({ Accept: "text/event-stream" });
    // After a drop, the server replays what was missed since the last message seen.
    if (state.lastId) { headers["Last-Event-ID"] = state.lastId; }
    fetch(url, {
      headers: headers,
      cache: "no-store",
      signal: controller.signal
    }).then(function (response) {
      if (!response.ok || !response.body) { throw new Error("HTTP " + response.status); }
      state.retry = 1000;
      status("Connected as extension " + state.extension);
      return read(response.body.getReader());
    }).catch(function (error) {
      if (controller.signal.aborted) { return; }
      status("Disconnected (" + error.message + "), retrying…");
    }).then(function () {
      if (controller.signal.aborted || state.controller !== controller) { return; }
      setTimeout(listen, state.retry);
      state.retry = Math.min(state.retry * 2, 30000);
    });
  }

  // --- start ------------------------------------------------------------------------------

  $("setup").addEventListener("submit", function (event) {
    event.preventDefault();
    state.extension = $("setup-extension").value.trim();
    state.token = $("setup-token").value.trim();
    localStorage.setItem(STORE + "extension", state.extension);
    localStorage.setItem(STORE + "token", state.token);
    showSetup(false);
    listen();
  });
  $("change").addEventListener("click", function () { showSetup(true); });

  readSetup();
  showSetup(!state.extension);
  loadOpenCti(function () {
    initCti();
    if (state.extension) { listen(); }
  });
  window.callbridgeSoftphone = { state: state, onPop: onPop, onClickToDial: onClickToDial };
})();
