// callbridge agent panel: when a call rings while this tab is in the background, a ring tone
// (Web Audio: two tones, no sound file) and a desktop notification (Notification API).
// agent.js announces every pop with a "callbridge:pop" event; this file only listens.
// The agent's choices stay in localStorage; the browser's permission is asked once, when the
// agent ticks the notification box, never by itself.
"use strict";

(function alerts() {
  const $ = (id) => document.getElementById(id);
  const box = $("alerts"), ring = $("alert-ring"), notify = $("alert-notify"), note = $("alert-note");
  const KEY = "callbridge.alerts";
  const saved = JSON.parse(localStorage.getItem(KEY) || "{}");
  const supported = "Notification" in window;
  const permission = () => (supported ? Notification.permission : "denied");
  let audio = null, ringTimer = null, ringingKey = null, shown = null;
  const alerted = new Set();

  ring.checked = saved.ring !== false;
  notify.checked = saved.notify === true && permission() === "granted";
  function save() {
    localStorage.setItem(KEY, JSON.stringify({ ring: ring.checked, notify: notify.checked, asked: saved.asked }));
  }
  function explain() {
    if (!supported) note.textContent = "This browser has no desktop notifications.";
    else if (permission() === "denied") note.textContent = "Desktop notifications are blocked for this site in the browser's settings.";
    else if (permission() === "default" && saved.asked) note.textContent = "Allow notifications for this site in the browser's settings.";
    else note.textContent = "";
    notify.disabled = !supported || permission() === "denied";
  }
  explain();
  // The agent may change the permission in the browser's settings while the panel is open.
  if (supported && navigator.permissions) {
    navigator.permissions.query({ name: "notifications" }).then((status) => {
      status.onchange = () => { if (permission() !== "granted") notify.checked = false; save(); explain(); };
    }).catch(() => {});
  }

  ring.addEventListener("change", () => { if (!ring.checked) stopRing(); save(); });
  notify.addEventListener("change", () => {
    if (notify.checked && permission() === "default" && !saved.asked) {
      saved.asked = true;  // asked once: the browser remembers the answer
      Notification.requestPermission().then((answer) => {
        notify.checked = answer === "granted"; save(); explain();
      });
    } else if (notify.checked && permission() !== "granted") {
      notify.checked = false;
    }
    save(); explain();
  });

  // Browsers start audio only after a gesture on the page: the first click or key unlocks it.
  function unlock() {
    if (!audio) audio = new (window.AudioContext || window.webkitAudioContext)();
    if (audio.state === "suspended") audio.resume();
  }
  document.addEventListener("pointerdown", unlock, { once: true, capture: true });
  document.addEventListener("keydown", unlock, { once: true, capture: true });

  function ringOnce() {
    if (!audio) audio = new (window.AudioContext || window.webkitAudioContext)();
    if (audio.state === "suspended") {
      audio.resume();
      note.textContent = "Click anywhere in the panel once so the browser lets it ring.";
    }
    const now = audio.currentTime;
    const gain = audio.createGain();
    gain.connect(audio.destination);
    gain.gain.setValueAtTime(0, now);
    gain.gain.linearRampToValueAtTime(0.2, now + 0.03);
    gain.gain.setValueAtTime(0.2, now + 0.95);
    gain.gain.linearRampToValueAtTime(0, now + 1.0);
    for (const frequency of [440, 480]) {
      const tone = audio.createOscillator();
      tone.frequency.value = frequency;
      tone.connect(gain);
      tone.start(now);
      tone.stop(now + 1.0);
    }
  }
  function startRing() {
    if (ringTimer !== null) return;
    ringOnce();
    ringTimer = setInterval(ringOnce, 3000);
    box.dataset.ringing = "true";
  }
  function stopRing() {
    if (ringTimer !== null) clearInterval(ringTimer);
    ringTimer = null;
    delete box.dataset.ringing;
  }
  function closeNotification() {
    if (shown) shown.close();
    shown = null;
  }

  document.addEventListener("callbridge:pop", (event) => {
    const { call, contact, name } = event.detail;
    const key = call.key || call.user_call_id;
    if (call.state !== "ringing") {
      if (key === ringingKey) { stopRing(); closeNotification(); ringingKey = null; }
      return;
    }
    if (!document.hidden || alerted.has(key)) return;
    alerted.add(key);
    ringingKey = key;
    if (ring.checked) startRing();
    if (notify.checked && permission() === "granted") {
      const number = call.remote_e164 || call.remote_number || "";
      const body = [contact && contact.company, number].filter(Boolean).join(" · ");
      shown = new Notification("Call from " + name, { body, tag: "callbridge-" + key, requireInteraction: true });
      shown.onclick = () => { window.focus(); closeNotification(); };
    }
  });
  // Back on the tab, the agent sees the call: the tone stops (the notification goes too).
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) { stopRing(); closeNotification(); }
  });
})();
