/* The inbox: j/k row cursor, selection for bulk actions, and live updates (a banner for
   new or changed tickets, debounced counts, who is viewing which ticket). */
(function () {
  "use strict";

  const Enque = window.Enque;
  let cursor = -1;
  let newTickets = 0;
  let changed = false;
  let countsTimer = null;
  const viewers = new Map(); // ticket number → [{agent, name, state}]

  const rows = () => Array.from(document.querySelectorAll("#inbox-results .ticket-row"));

  function moveCursor(step) {
    const all = rows();
    if (!all.length) return;
    cursor = Math.max(0, Math.min(all.length - 1, cursor + step));
    all.forEach((row, index) => row.classList.toggle("is-cursor", index === cursor));
    const link = all[cursor].querySelector(".ticket-link");
    if (link) link.focus({ preventScroll: true });
    all[cursor].scrollIntoView({ block: "nearest" });
  }

  function currentRow() {
    const all = rows();
    const focused = document.activeElement && document.activeElement.closest(".ticket-row");
    return focused || all[cursor] || null;
  }

  function updateSelection() {
    const boxes = Array.from(document.querySelectorAll('#inbox-results input[name="numbers"]'));
    const selected = boxes.filter((box) => box.checked);
    boxes.forEach((box) => box.closest(".ticket-row").classList.toggle("is-selected", box.checked));
    const label = document.querySelector("[data-selected-count]");
    if (label) label.textContent = selected.length ? selected.length + " selected" : "Select";
    const actions = document.querySelector("[data-bulk-actions]");
    if (actions) actions.disabled = selected.length === 0;
    const all = document.querySelector("[data-select-all]");
    if (all) {
      all.checked = selected.length > 0 && selected.length === boxes.length;
      all.indeterminate = selected.length > 0 && selected.length < boxes.length;
    }
  }

  function wire() {
    cursor = -1;
    const results = document.getElementById("inbox-results");
    if (!results || results.dataset.wired) return;
    results.dataset.wired = "1";
    results.addEventListener("change", (event) => {
      if (event.target.matches("[data-select-all]")) {
        results
          .querySelectorAll('input[name="numbers"]')
          .forEach((box) => (box.checked = event.target.checked));
      }
      updateSelection();
    });
    // A click anywhere on a row opens it (links and checkboxes keep their own behaviour).
    results.addEventListener("click", (event) => {
      const row = event.target.closest(".ticket-row");
      if (!row || event.target.closest("a, input, button, label, select")) return;
      if (window.getSelection && String(window.getSelection())) return;
      window.location.href = row.dataset.href;
    });
    updateSelection();
    paintPresence();
  }

  // --- Live updates --------------------------------------------------------------------------
  function showBanner() {
    const banner = document.getElementById("live-banner");
    if (!banner) return;
    const text = banner.querySelector("[data-banner-text]");
    const parts = [];
    if (newTickets) parts.push(newTickets + " new ticket" + (newTickets === 1 ? "" : "s"));
    if (changed) parts.push("updates in this list");
    text.textContent = parts.join(" and ").replace(/^./, (c) => c.toUpperCase());
    banner.hidden = parts.length === 0;
  }

  function refreshList() {
    const results = document.getElementById("inbox-results");
    if (!results || !window.htmx) return;
    newTickets = 0;
    changed = false;
    showBanner();
    window.htmx.ajax("GET", results.dataset.refreshUrl, { target: "#inbox-results", swap: "innerHTML" });
  }

  function refreshCounts() {
    clearTimeout(countsTimer);
    countsTimer = setTimeout(() => {
      const url = document.body.dataset.countsUrl;
      if (url && window.htmx) window.htmx.ajax("GET", url, { swap: "none" });
    }, 3000);
  }

  function onEvent(event) {
    if (!event || typeof event.ticket !== "number") return;
    if (event.type === "ticket.created") {
      newTickets += 1;
    } else if (document.querySelector('.ticket-row[data-number="' + event.ticket + '"]')) {
      changed = true;
    }
    showBanner();
    refreshCounts();
  }

  function paintPresence() {
    document.querySelectorAll("[data-presence-for]").forEach((badge) => {
      const others = (viewers.get(Number(badge.dataset.presenceFor)) || []).filter(
        (v) => v.agent !== Enque.realtime.me
      );
      badge.hidden = others.length === 0;
      if (others.length) {
        const typing = others.some((v) => v.state === "typing");
        badge.textContent =
          others.map((v) => v.name).join(", ") + (typing ? " typing…" : " viewing");
      }
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    wire();
    Enque.shortcuts.j = () => moveCursor(1);
    Enque.shortcuts.k = () => moveCursor(-1);
    Enque.shortcuts.o = () => {
      const row = currentRow();
      if (row) window.location.href = row.dataset.href;
    };
    Enque.shortcuts.x = () => {
      const row = currentRow();
      const box = row && row.querySelector('input[name="numbers"]');
      if (box) {
        box.checked = !box.checked;
        updateSelection();
      }
    };
    const banner = document.querySelector("[data-refresh-list]");
    if (banner) banner.addEventListener("click", refreshList);

    if (Enque.realtime) {
      Enque.realtime.subscribe("tickets");
      Enque.realtime.subscribe("presence");
      ["ticket.created", "ticket.updated", "comment.created", "ticket.assigned", "ticket.merged"].forEach(
        (type) => Enque.realtime.on(type, onEvent)
      );
      Enque.realtime.on("presence.changed", (event) => {
        const data = event.data || {};
        viewers.set(data.ticket, data.viewers || []);
        paintPresence();
      });
      // Events sent while the socket was down are not replayed: after a reconnect, say the
      // list may be stale and recount.
      let dropped = false;
      Enque.realtime.on("disconnected", () => {
        dropped = true;
      });
      Enque.realtime.on("connected", () => {
        if (!dropped) return;
        dropped = false;
        changed = true;
        showBanner();
        refreshCounts();
      });
    }
  });

  document.addEventListener("htmx:afterSwap", (event) => {
    if (event.detail.target && event.detail.target.id === "inbox-results") {
      // The container keeps its listeners; only the rows are new.
      cursor = -1;
      updateSelection();
      paintPresence();
    }
  });
})();
