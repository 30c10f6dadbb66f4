// Live notifications: one event stream per tab, a toast bottom-right per notification, the
// unread count in the header. Pages without a tenant user (sign-in, support) stay static.
"use strict";

(function () {
  const body = document.body;
  const url = body && body.dataset.live;
  if (!url || !window.EventSource) return;
  const toasts = document.getElementById("toasts");
  const count = document.getElementById("unread-count");

  function setCount(n) {
    if (!count) return;
    count.textContent = String(n);
    count.classList.toggle("zero", n === 0);
  }

  function toast(n) {
    if (!toasts) return;
    const el = document.createElement("div");
    el.className = "toast";
    el.setAttribute("role", "status");
    const link = document.createElement("a");
    link.href = n.open || n.link || "/notifications";
    const title = document.createElement("strong");
    title.textContent = n.title || "";
    const preview = document.createElement("span");
    preview.textContent = n.preview || "";
    link.append(title, document.createElement("br"), preview);
    const close = document.createElement("button");
    close.type = "button";
    close.className = "close";
    close.textContent = "×";
    close.setAttribute("aria-label", body.dataset.toastClose || "Close");
    close.addEventListener("click", () => el.remove());
    el.append(link, close);
    toasts.append(el);
    while (toasts.children.length > 5) toasts.firstElementChild.remove();
    setTimeout(() => el.remove(), 12000);
  }

  // Conversation page: refresh the messages when one of them changes (new, ticks).
  const messages = document.getElementById("messages");
  const list = document.getElementById("conversations");
  let refreshing = false;
  let again = false;
  // One fetch at a time; a change during a fetch triggers one more afterwards.
  function fetchOnce(url, apply) {
    if (refreshing) { again = true; return; }
    refreshing = true;
    fetch(url, { headers: { Accept: "text/html" }, credentials: "same-origin" })
      .then((r) => (r.ok ? r.text() : null))
      .then((html) => { if (html !== null) apply(html); })
      .catch(() => {})
      .finally(() => {
        refreshing = false;
        if (again) { again = false; fetchOnce(url, apply); }
      });
  }
  function refresh(conversation) {
    if (messages && String(conversation) === messages.dataset.conversation) {
      fetchOnce("/inbox/" + conversation + "/messages", (html) => {
        // A reader at the newest message stays there as messages arrive.
        const atEnd = atBottom();
        messages.innerHTML = html;
        localTimes(messages);
        if (atEnd) toBottom();
      });
    } else if (list) {
      // The list as this address shows it now, in place: what is typed into the search
      // field and where the page is scrolled stay as they are.
      fetchOnce(window.location.href, (html) => {
        const fresh = new DOMParser().parseFromString(html, "text/html").getElementById("conversations");
        if (!fresh) return;
        list.innerHTML = fresh.innerHTML;
        localTimes(list);
      });
    }
  }

  // The open conversation's newest messages are on the screen while its tab is visible: a
  // customer message arriving then, or the tab coming back, reads them (at Meta too).
  function inView() {
    return !!(messages && messages.dataset.seen) && document.visibilityState === "visible";
  }
  function seen() {
    if (!inView()) return;
    fetch(messages.dataset.seen, { method: "POST", credentials: "same-origin", headers: { Accept: "application/json", "X-CSRF-Token": messages.dataset.csrf } })
      .then((r) => (r.ok ? r.json() : null))
      .then((j) => { if (j) setCount(j.unread); })
      .catch(() => {});
  }
  // The unread count as the server has it (read in another tab, or while this one was hidden).
  function refreshCount() {
    fetch("/notifications/unread", { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then((r) => (r.ok ? r.json() : null))
      .then((j) => { if (j) setCount(j.unread); })
      .catch(() => {});
  }
  // Reads what is in view, which answers the count; else just the count.
  function catchUp() {
    if (inView()) seen();
    else refreshCount();
  }
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") catchUp(); });

  const source = new EventSource(url);
  // Tests wait for readyState OPEN before sending a webhook.
  window.wabridgeLive = source;
  source.addEventListener("message", (e) => {
    let m;
    try { m = JSON.parse(e.data); } catch (_) { return; }
    refresh(m.conversation);
    if (m.inbound && messages && String(m.conversation) === messages.dataset.conversation) seen();
  });
  // A conversation was read (by this user elsewhere, or another): the list says so.
  source.addEventListener("conversation", () => { if (list) refresh(null); });
  source.addEventListener("notification", (e) => {
    let n;
    try { n = JSON.parse(e.data); } catch (_) { return; }
    // A message of the conversation in view needs no toast: it appears there, and reads itself.
    if (n.chat && inView() && (messages.dataset.chat || "").split(" ").includes(n.chat)) return;
    toast(n);
    setCount((parseInt(count && count.textContent, 10) || 0) + 1);
  });
  // Features' own pages listen for their events on the window (one stream per tab).
  source.addEventListener("onboarding", (e) => {
    let detail = null;
    try { detail = JSON.parse(e.data); } catch (_) { /* keep null */ }
    window.dispatchEvent(new CustomEvent("wabridge:onboarding", { detail: detail }));
  });
  // The stream fell behind, or began before the server restarted: events may be missing, so
  // everything this page shows live is fetched again (toasts missed stay in the list).
  source.addEventListener("resync", () => {
    // Customer messages may have come among the missed events.
    catchUp();
    if (messages) refresh(messages.dataset.conversation);
    else if (list) refresh(null);
    window.dispatchEvent(new CustomEvent("wabridge:onboarding", { detail: null }));
  });
})();

// Instants in the reader's time zone and the page's language: the server writes each as a
// `<time class="local" datetime>` in UTC, labelled (see `web/when.rs`); the UTC text stays as
// the element's title.
function localTimes(root) {
  let format;
  try {
    format = new Intl.DateTimeFormat(document.documentElement.lang || undefined, { dateStyle: "medium", timeStyle: "short" });
  } catch (_) {
    return;
  }
  root.querySelectorAll("time.local[datetime]").forEach((el) => {
    const at = new Date(el.getAttribute("datetime"));
    if (isNaN(at.getTime())) return;
    if (!el.title) el.title = el.textContent;
    el.textContent = format.format(at);
  });
}
window.wabridgeLocalTimes = localTimes;
localTimes(document);

// Whether the page is scrolled to its end (within a line), and scrolling it there.
function atBottom() {
  const page = document.documentElement;
  return window.innerHeight + window.scrollY >= page.scrollHeight - 40;
}
function toBottom() {
  window.scrollTo(0, document.documentElement.scrollHeight);
}

// A conversation opens at its newest message and the composer, as a chat is read; a link to
// one message (`#msg-N`, a toast's) opens at that one instead, which the browser scrolls to and
// the style marks.
(function () {
  if (document.getElementById("messages") && !window.location.hash) toBottom();
})();

// The 24-hour window's countdown, on every element that carries its closing time.
(function () {
  function tick() {
    const now = Date.now();
    document.querySelectorAll("[data-closes-at]").forEach((el) => {
      const left = Number(el.dataset.closesAt) - now;
      const out = el.querySelector(".countdown");
      if (!out) return;
      if (left <= 0) {
        if (document.getElementById("composer")) window.location.reload();
        return;
      }
      const minutes = Math.floor(left / 60000);
      out.textContent = Math.floor(minutes / 60) + " h " + String(minutes % 60).padStart(2, "0") + " min";
    });
  }
  tick();
  setInterval(tick, 30000);
})();

// Template parameters: the preview follows what is typed (the server renders the same on
// "Vorschau" and checks it again on sending).
(function () {
  const body = document.getElementById("preview-body");
  const form = document.getElementById("template-form");
  if (!body || !form || !body.dataset.template) return;
  const template = body.dataset.template;
  function render() {
    body.textContent = template.replace(/\{\{\s*([a-z0-9_]+)\s*\}\}/g, (whole, name) => {
      const input = document.getElementById("v_" + name);
      return input && input.value.trim() ? input.value.trim() : whole;
    });
  }
  form.addEventListener("input", render);
})();
