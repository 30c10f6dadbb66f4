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

  const source = new EventSource(url);
  source.addEventListener("notification", (e) => {
    let n;
    try { n = JSON.parse(e.data); } catch (_) { return; }
    toast(n);
    setCount((parseInt(count && count.textContent, 10) || 0) + 1);
  });
  source.addEventListener("resync", () => {
    fetch("/notifications/unread", { headers: { Accept: "application/json" } })
      .then((r) => r.json())
      .then((j) => setCount(j.unread))
      .catch(() => {});
  });
})();
